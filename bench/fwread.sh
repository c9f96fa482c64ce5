#!/usr/bin/env bash
# Reading and evaluating a 10,000-rule nftables ruleset (issue 5 item 7):
# vrrpdoctor's live read over netlink (fw/nftlive.Read, and fw.ReadLive as
# `fw explain` uses it) and `nft -j list ruleset` on the same ruleset, best and
# median of RUNS, the ratio, fw/eval's evaluation of a VRRP advert, and
# whether the targets (evaluate < 20 ms, live read < 200 ms) are met.
#
#   bench/fwread.sh
#   RUNS=9 RULES=20000 bench/fwread.sh
#   PROFILE=/tmp/read.pprof bench/fwread.sh   # then: go tool pprof -top /tmp/read.pprof
#
# Needs root, go, ip (iproute2) and nft (nftables). Everything happens in a
# network namespace vdbenchfw-<pid>-<random> the run creates and removes;
# the host's own network and firewall are not touched.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

[[ $(id -u) == 0 ]] || { echo "fwread.sh: needs root (network namespaces)" >&2; exit 1; }
for prog in go ip nft; do
	command -v "$prog" >/dev/null || { echo "fwread.sh: $prog not found (Debian: apt-get install golang iproute2 nftables)" >&2; exit 1; }
done

cd "$root"
CGO_ENABLED=0 go build -o "$tmp/fwread" ./bench/fwread
echo "machine: $(nproc) CPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), Linux $(uname -r), $(go version | cut -d' ' -f3), $(nft --version)"
echo "uptime: $(uptime)"
args=(-rules "${RULES:-10000}" -runs "${RUNS:-5}")
if [[ -n ${PROFILE:-} ]]; then
	args+=(-cpuprofile "$PROFILE" -profile "${PROFILE_WHAT:-nftlive}")
fi
"$tmp/fwread" "${args[@]}"
