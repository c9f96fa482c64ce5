#!/usr/bin/env bash
# Take-over latency, peak RSS and CPU of `vrrpdoctor run` against
# keepalived in a network-namespace lab (issue 3 item 6). Prints median and
# p95 of TRIALS trials per measurement and the ratios against the targets:
# take-over after SIGKILL and SIGTERM of a keepalived Master, VRRPv2 at
# advert_int 1 and VRRPv3 at 0.1; CPU of 100 instances at 0.1 s as Master
# and as backup. Results: docs/performance-engine.md.
#
#   bench/takeover.sh                      # 20 trials, 60 s CPU runs (about 12 minutes)
#   TRIALS=5 CPU=20s bench/takeover.sh
#   ONLY=rss bench/takeover.sh             # takeover, rss or cpu
#   ARGS="-event SIGTERM -v" bench/takeover.sh  # more flags: go run ./bench/takeover -h
#
# Needs root, go, keepalived and iproute2. Everything runs in namespaces
# named vdbench-<pid>-*, removed at the end; nothing touches the machine's
# own network.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

[[ $(id -u) == 0 ]] || { echo "takeover.sh: needs root (network namespaces)" >&2; exit 1; }
for prog in go keepalived ip; do
	command -v "$prog" >/dev/null || { echo "takeover.sh: $prog not found (Debian: apt-get install golang keepalived iproute2)" >&2; exit 1; }
done

cd "$root"
CGO_ENABLED=0 go build -o "$tmp/vrrpdoctor" ./cmd/vrrpdoctor
CGO_ENABLED=0 go build -o "$tmp/takeover" ./bench/takeover
"$tmp/takeover" -bin "$tmp/vrrpdoctor" -trials "${TRIALS:-20}" -cpu "${CPU:-60s}" -only "${ONLY:-}" ${ARGS:-}
