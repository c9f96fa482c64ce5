#!/usr/bin/env bash
# Measures the wire tap of `vrrpdoctor capture` against `tcpdump -w /dev/null`
# on the same VRRP traffic in a network-namespace lab (issue 4 item 7): a
# sender on one lab host pushes IPv4 adverts at increasing rates over a veth
# pair; on the other host both capture at once. Prints, per rate, what each
# captured and what the kernel dropped for each, the CPU each costs (in % of a
# core per 1,000 packets/s, each measured alone), and the highest rate at
# which vrrpdoctor's wire tap loses nothing (target: >= 100,000 packets/s).
#
#   sudo bench/capture.sh
#   RATES=50000,100000 SECONDS_PER_RATE=3 sudo bench/capture.sh
#
# Needs root, go, ip (iproute2) and tcpdump. Everything happens in network
# namespaces the run creates and removes; the host's own network is not
# touched. The machine should be otherwise idle: the sender, the kernel's
# receive work and both captures share its CPUs.
set -euo pipefail

RATES=${RATES:-1000,10000,50000,100000,150000,200000,300000}
SECONDS_PER_RATE=${SECONDS_PER_RATE:-2}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for prog in go ip tcpdump; do
	command -v "$prog" >/dev/null || { echo "capture.sh: $prog not found (Debian: apt-get install golang iproute2 tcpdump)" >&2; exit 1; }
done
if [[ $(id -u) != 0 ]]; then
	echo "capture.sh: needs root (network namespaces)" >&2
	exit 1
fi

cd "$root"
CGO_ENABLED=0 go build -o "$tmp/vrrpdoctor" ./cmd/vrrpdoctor
go run ./bench/capturebench -vrrpdoctor "$tmp/vrrpdoctor" -rates "$RATES" -seconds "$SECONDS_PER_RATE"
