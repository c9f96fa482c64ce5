#!/bin/bash
# make.sh records the keepalived captures in this directory (run as root).
#
# It builds a throwaway pair of network namespaces joined by a veth pair,
# starts
# keepalived 2.2.7 in the first namespace with one instance per case below,
# captures in the second namespace for a few seconds, then stops keepalived
# with SIGTERM so that every instance sends its priority-0 advert, and
# removes everything. Only documentation addresses are used.
#
# keepalived 2.2.7 has no v3_checksum_as_v2 (a later release added it), so
# every VRRPv3 IPv4 advert here sums the pseudo-header.
#
#   vrid 51  VRRPv2 IPv4, auth PASS "vrrpdoc", prio 150, 1 s, two VIPs
#   vrid 52  VRRPv2 IPv4, no auth, prio 100, 2 s, one VIP
#   vrid 53  VRRPv3 IPv4, prio 200, 0.5 s (50 cs), three VIPs
#   vrid 54  VRRPv3 IPv4, prio 120, 1 s, one VIP
#   vrid 55  VRRPv3 IPv6, prio 110, 1 s, two VIPs (link-local source)
#   vrid 56  VRRPv3 IPv4 unicast to the peer, prio 130, 1 s
#
# Files written: eth.pcap (Ethernet, on the peer's veth), sll.pcap (Linux
# cooked v1, -i any -y LINUX_SLL) and sll2.pcap (Linux cooked v2, -i any),
# the last two taken in the sending namespace so they hold outgoing frames.
set -eu
out=$(cd "$(dirname "$0")" && pwd)
id=$$-$RANDOM
A=vdA-$id B=vdB-$id
tmp=$(mktemp -d)
kpid=""
cleanup() {
	[ -n "$kpid" ] && kill "$kpid" 2>/dev/null || true
	for p in "${tpids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
	ip netns del "$A" 2>/dev/null || true
	ip netns del "$B" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
tpids=()

ip netns add "$A"; ip netns add "$B"
ip link add va-$$ type veth peer name vb-$$
ip link set va-$$ netns "$A" name va; ip link set vb-$$ netns "$B" name vb
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; done
ip -n "$A" link set va up; ip -n "$B" link set vb up
ip -n "$A" addr add 198.51.100.1/24 dev va; ip -n "$B" addr add 198.51.100.2/24 dev vb
ip -n "$A" addr add 2001:db8:5::1/64 dev va nodad; ip -n "$B" addr add 2001:db8:5::2/64 dev vb nodad
# Wait for the IPv6 link-local address keepalived sends from.
for _ in $(seq 50); do
	ip -n "$A" -6 addr show dev va scope link | grep -q 'inet6' && ! ip -n "$A" -6 addr show dev va | grep -q tentative && break
	sleep 0.1
done

cat >"$tmp/A.conf" <<CONF
global_defs {
	router_id vrrpdoctor-vectors
	vrrp_garp_master_delay 0
	vrrp_garp_master_repeat 1
}
vrrp_instance v51 {
	state MASTER
	interface va
	virtual_router_id 51
	priority 150
	advert_int 1
	authentication {
		auth_type PASS
		auth_pass vrrpdoc
	}
	virtual_ipaddress {
		198.51.100.51/24
		198.51.100.151/24
	}
}
vrrp_instance v52 {
	state MASTER
	interface va
	virtual_router_id 52
	priority 100
	advert_int 2
	virtual_ipaddress {
		198.51.100.52/24
	}
}
vrrp_instance v53 {
	state MASTER
	version 3
	interface va
	virtual_router_id 53
	priority 200
	advert_int 0.5
	virtual_ipaddress {
		198.51.100.53/24
		198.51.100.153/24
		198.51.100.253/24
	}
}
vrrp_instance v54 {
	state MASTER
	version 3
	interface va
	virtual_router_id 54
	priority 120
	advert_int 1
	virtual_ipaddress {
		198.51.100.54/24
	}
}
vrrp_instance v55 {
	state MASTER
	version 3
	interface va
	virtual_router_id 55
	priority 110
	advert_int 1
	virtual_ipaddress {
		2001:db8:5::55/64
		2001:db8:5::155/64
	}
}
vrrp_instance v56 {
	state MASTER
	version 3
	interface va
	virtual_router_id 56
	priority 130
	advert_int 1
	unicast_src_ip 198.51.100.1
	unicast_peer {
		198.51.100.2
	}
	virtual_ipaddress {
		198.51.100.56/24
	}
}
CONF

ip netns exec "$B" tcpdump -i vb -U -w "$tmp/eth.pcap" 'ip proto 112 or ip6 proto 112' 2>/dev/null & tpids+=($!)
ip netns exec "$A" tcpdump -i any -y LINUX_SLL -U -w "$tmp/sll.pcap" 'ip proto 112 or ip6 proto 112' 2>/dev/null & tpids+=($!)
ip netns exec "$A" tcpdump -i any -U -w "$tmp/sll2.pcap" 'ip proto 112 or ip6 proto 112' 2>/dev/null & tpids+=($!)
sleep 1
ip netns exec "$A" keepalived -n -l -P -f "$tmp/A.conf" -p "$tmp/A.pid" -r "$tmp/A-vrrp.pid" >"$tmp/keepalived.log" 2>&1 &
kpid=$!
sleep 9
kill -TERM "$kpid"; wait "$kpid" || true; kpid=""
sleep 1
for p in "${tpids[@]}"; do kill -INT "$p"; wait "$p" || true; done
tpids=()
grep -i -E "error" "$tmp/keepalived.log" || true
cp "$tmp/eth.pcap" "$tmp/sll.pcap" "$tmp/sll2.pcap" "$out/"
echo "written: $out/eth.pcap $out/sll.pcap $out/sll2.pcap"
