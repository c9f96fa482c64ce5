#!/usr/bin/env bash
# Times `vrrpdoctor analyze` against tcpdump and tshark on one generated
# capture of N VRRP adverts (default 1,000,000) and prints packets/s, peak
# RSS and the ratios against the targets of issue 2 item 7.
#
#   bench/analyze.sh            # N=1000000
#   N=200000 bench/analyze.sh
#
# Needs go, tcpdump, tshark and GNU time (/usr/bin/time). The capture is
# written to a temporary directory and removed afterwards. vrrpdoctor and
# tcpdump run three times (best time and highest RSS kept), tshark once.
set -euo pipefail

N=${N:-1000000}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for prog in go tcpdump tshark /usr/bin/time; do
	command -v "$prog" >/dev/null || { echo "analyze.sh: $prog not found (Debian: apt-get install golang tcpdump tshark time)" >&2; exit 1; }
done

cd "$root"
CGO_ENABLED=0 go build -o "$tmp/vrrpdoctor" ./cmd/vrrpdoctor
go run ./bench/gencap -n "$N" -o "$tmp/bench.pcap"
cat "$tmp/bench.pcap" >/dev/null # into the page cache
size=$(stat -c %s "$tmp/bench.pcap")

# run RUNS CMD...: sets best (seconds) and rss (KiB) for CMD > /dev/null.
run() {
	local runs=$1
	shift
	best= rss=0
	for ((i = 0; i < runs; i++)); do
		local t0=$EPOCHREALTIME
		/usr/bin/time -f %M -o "$tmp/rss" "$@" >/dev/null 2>"$tmp/stderr" || true
		local t1=$EPOCHREALTIME
		local secs
		secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
		if [[ -z $best ]] || awk -v s="$secs" -v b="$best" 'BEGIN { exit !(s < b) }'; then best=$secs; fi
		local kb
		kb=$(tail -n1 "$tmp/rss")
		if ((kb > rss)); then rss=$kb; fi
	done
}

run 3 "$tmp/vrrpdoctor" analyze "$tmp/bench.pcap"
vd_s=$best vd_rss=$rss
"$tmp/vrrpdoctor" analyze --json "$tmp/bench.pcap" >"$tmp/report.json" || true
run 3 tcpdump -nr "$tmp/bench.pcap"
td_s=$best td_rss=$rss
run 1 tshark -r "$tmp/bench.pcap" -Y vrrp -T fields -e vrrp.virt_rtr_id
ts_s=$best ts_rss=$rss
adverts=$(grep -m1 '"adverts"' "$tmp/report.json" | tr -dc 0-9)

awk -v n="$N" -v adverts="$adverts" -v size="$size" \
	-v vd="$vd_s" -v vdr="$vd_rss" -v td="$td_s" -v tdr="$td_rss" -v ts="$ts_s" -v tsr="$ts_rss" '
function row(name, s, kb) { printf "%-26s %9.3f s %14.0f packets/s %9.1f MB peak RSS\n", name, s, n / s, kb / 1024 }
function check(what, ok) { printf "  %-44s %s\n", what, ok ? "met" : "NOT MET" }
BEGIN {
	printf "capture: %d VRRP adverts, %.1f MB (vrrpdoctor decoded %d)\n\n", n, size / 1e6, adverts
	row("vrrpdoctor analyze", vd, vdr)
	row("tcpdump -nr", td, tdr)
	row("tshark -Y vrrp -T fields", ts, tsr)
	printf "\nvrrpdoctor is %.1fx faster than tcpdump and %.1fx faster than tshark\n\n", td / vd, ts / vd
	print "targets:"
	check(">= 3,000,000 packets/s", n / vd >= 3e6)
	check(">= 2x faster than tcpdump", td / vd >= 2)
	check(">= 20x faster than tshark", ts / vd >= 20)
	check("peak RSS < 50 MB", vdr / 1024 < 50)
	check("every advert decoded", adverts == n)
}'
