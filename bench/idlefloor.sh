#!/usr/bin/env bash
# The floor the Go runtime sets for an idle VRRP Master, beside keepalived
# and vrrpdoctor: bench/idlefloor (a timerfd wake-up and one advert a
# second, nothing else), `vrrpdoctor run --no-diagnose`, `vrrpdoctor run`
# and keepalived, one instance each (VRRPv2, advert_int 1), side by side in
# namespaces of their own for SECONDS (default 120). Prints each one's
# exact CPU time (schedstat, all threads and processes) and its ratio to
# keepalived's.
#
#   bench/idlefloor.sh [SECONDS]
#
# Needs root, go, keepalived and iproute2. Namespaces are named
# vdf-<pid>-*, removed at the end; nothing touches the machine's own network.
set -euo pipefail
[[ $(id -u) == 0 ]] || { echo "idlefloor.sh: needs root (network namespaces)" >&2; exit 1; }
for prog in go keepalived ip; do
	command -v "$prog" >/dev/null || { echo "idlefloor.sh: $prog not found" >&2; exit 1; }
done
secs=${1:-120}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
pfx=vdf-$$
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	sleep 1
	for n in $(ip netns list | awk -v p="$pfx-" 'index($1, p) == 1 {print $1}'); do ip netns del "$n"; done
	rm -rf "$tmp"
}
trap cleanup EXIT

cd "$root"
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$tmp/vrrpdoctor" ./cmd/vrrpdoctor
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$tmp/idlefloor" ./bench/idlefloor
cat > "$tmp/k.conf" <<CONF
global_defs {
 router_id floor
}
vrrp_instance VI_1 {
 state MASTER
 interface eth0
 virtual_router_id 1
 version 2
 priority 150
 advert_int 1
 virtual_ipaddress {
  198.51.100.100/24
 }
}
CONF

names=(idlefloor "vrrpdoctor --no-diagnose" vrrpdoctor keepalived)
i=0
for name in "${names[@]}"; do
	a=$pfx-$i-a b=$pfx-$i-b
	ip netns add "$a"
	ip netns add "$b"
	ip link add eth0 netns "$a" type veth peer name eth0 netns "$b"
	ip -n "$a" addr add 198.51.100.1/24 dev eth0
	ip -n "$b" addr add 198.51.100.2/24 dev eth0
	for n in "$a" "$b"; do ip -n "$n" link set lo up; ip -n "$n" link set eth0 up; done
	case $name in
	idlefloor) ip netns exec "$a" "$tmp/idlefloor" -i eth0 & ;;
	"vrrpdoctor --no-diagnose") ip netns exec "$a" "$tmp/vrrpdoctor" run -c "$tmp/k.conf" --no-diagnose >"$tmp/$i.log" 2>&1 & ;;
	vrrpdoctor) ip netns exec "$a" "$tmp/vrrpdoctor" run -c "$tmp/k.conf" >"$tmp/$i.log" 2>&1 & ;;
	keepalived) ip netns exec "$a" keepalived -f "$tmp/k.conf" -p "$tmp/k.pid" -r "$tmp/kv.pid" -n -l -D >"$tmp/$i.log" 2>&1 & ;;
	esac
	pids+=($!)
	i=$((i + 1))
done
sleep 5

# run_ns PID: the run time of the threads of the process and its
# descendants.
run_ns() {
	local total=0 tree=("$1") n=0 p f
	while ((n < ${#tree[@]})); do
		tree+=($(pgrep -P "${tree[$n]}" || true))
		n=$((n + 1))
	done
	for p in "${tree[@]}"; do
		for f in /proc/"$p"/task/*/schedstat; do
			[[ -r $f ]] && total=$((total + $(cut -d' ' -f1 "$f")))
		done
	done
	echo "$total"
}
before=()
for p in "${pids[@]}"; do before+=("$(run_ns "$p")"); done
echo "idle Master, 1 instance, advert_int 1, ${secs} s, $(nproc) CPU(s), $(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"
sleep "$secs"
after=()
for p in "${pids[@]}"; do after+=("$(run_ns "$p")"); done
k=$((after[3] - before[3]))
for i in "${!names[@]}"; do
	ms=$(((after[i] - before[i]) / 1000000))
	if ((k > 0)); then r=$(awk -v a=$((after[i] - before[i])) -v b=$k 'BEGIN {printf "%.2f", a / b}'); else r=n/a; fi
	printf "   %-26s %6d ms  ratio to keepalived %s\n" "${names[$i]}" "$ms" "$r"
done
