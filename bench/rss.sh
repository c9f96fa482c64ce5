#!/usr/bin/env bash
# Peak RSS of `vrrpdoctor run` against keepalived's processes combined on
# the same keepalived.conf, with 1 and 100 instances (issue 3 item 6,
# issue 8 item 7), and what single imports cost a Go program at init.
# Prints the figures and the ratios from one run (about 4 minutes;
# SETTLE=7s for a quicker look).
#
#   bench/rss.sh
#   INSTANCES=1,10,100 bench/rss.sh
#   BIN=/path/to/other/vrrpdoctor bench/rss.sh   # e.g. an older build
#
# Needs root, go, keepalived and iproute2. The daemons run in namespaces
# named vdrss-<id>-*, removed at the end; nothing touches the machine's own
# network.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

[[ $(id -u) == 0 ]] || { echo "rss.sh: needs root (network namespaces)" >&2; exit 1; }
for prog in go keepalived ip; do
	command -v "$prog" >/dev/null || { echo "rss.sh: $prog not found (Debian: apt-get install golang keepalived iproute2)" >&2; exit 1; }
done

cd "$root"
bin=${BIN:-}
if [[ -z $bin ]]; then
	CGO_ENABLED=0 go build -o "$tmp/vrrpdoctor" ./cmd/vrrpdoctor
	bin=$tmp/vrrpdoctor
fi
mkdir "$tmp/probes"
for dir in bench/rss/probe/*/; do
	CGO_ENABLED=0 go build -o "$tmp/probes/$(basename "$dir")" "./$dir"
done

CGO_ENABLED=0 go build -o "$tmp/rss" ./bench/rss
"$tmp/rss" -probes "$tmp/probes" -bin "$bin" -instances "${INSTANCES:-1,100}" -settle "${SETTLE:-30s}"
echo "keepalived: $(keepalived --version 2>&1 | head -n1)"
