#!/usr/bin/env bash
# Time to verdict and CPU of `vrrpdoctor check` on the backup of a live
# keepalived pair, against the Performance targets of issue 6 (verdict
# within 3 advert intervals + 1 s, under 5 % of a core), with the backup's
# keepalived VRRP process over the same windows as the peer figure.
# VRRPv2 advert_int 1 and VRRPv3 advert_int 0.25, RUNS runs each.
#
#   bench/checkcpu.sh            # 5 runs per configuration (about 45 s)
#   RUNS=10 V=1 bench/checkcpu.sh
#
# Needs root, go, keepalived and iproute2. Everything runs in namespaces
# named vdbench-<pid>-*, removed at the end; nothing touches the machine's
# own network.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

[[ $(id -u) == 0 ]] || { echo "checkcpu.sh: needs root (network namespaces)" >&2; exit 1; }
for prog in go keepalived ip; do
	command -v "$prog" >/dev/null || { echo "checkcpu.sh: $prog not found (Debian: apt-get install golang keepalived iproute2)" >&2; exit 1; }
done

cd "$root"
CGO_ENABLED=0 go build -o "$tmp/vrrpdoctor" ./cmd/vrrpdoctor
CGO_ENABLED=0 go build -o "$tmp/checkcpu" ./bench/checkcpu
verbose=()
[[ -n ${V:-} ]] && verbose=(-v)
"$tmp/checkcpu" -bin "$tmp/vrrpdoctor" -runs "${RUNS:-5}" "${verbose[@]}"
