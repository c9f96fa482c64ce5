package main

import (
	"fmt"
	"strings"
)

// The advert the evaluation explains: from a peer on eth0 to the VRRP group.
const (
	advertIface = "eth0"
	advertSrc   = "198.51.100.2"
	// dropComment marks the one rule that must decide the advert's fate.
	dropComment = "old host hardening: no multicast to the host"
)

// genRuleset writes an nft script of exactly total rules in the shapes a
// hand-kept host firewall has: one inet filter table with input, forward and
// output base chains; a zone chain the input chain jumps to for eth0, which
// jumps in turn to per-service chains of host and prefix accepts; per-client
// forward chains; named sets (interval, concatenation) and a verdict map; and,
// after the zone dispatch, one drop that catches VRRP adverts. An advert on
// eth0 walks every service chain before it meets that drop, the worst case
// for the evaluator.
func genRuleset(total int) (string, error) {
	var b strings.Builder
	n := 0
	rule := func(format string, args ...any) {
		fmt.Fprintf(&b, "\t\t"+format+"\n", args...)
		n++
	}
	b.WriteString("flush ruleset\n\ntable inet filter {\n")
	b.WriteString("\tset blocklist4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\telements = { ")
	for i := 0; i < 64; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "10.250.%d.0/24", i)
	}
	b.WriteString(", 203.0.113.200-203.0.113.250 }\n\t}\n")
	b.WriteString("\tset trusted6 {\n\t\ttype ipv6_addr\n\t\tflags interval\n\t\telements = { 2001:db8:1::/48, 2001:db8:2::/48, 2001:db8:ff::/64 }\n\t}\n")
	b.WriteString("\tset web_ports {\n\t\ttype inet_service\n\t\telements = { 80, 443, 8080, 8443 }\n\t}\n")
	b.WriteString("\tset admin_ssh {\n\t\ttype ipv4_addr . inet_service\n\t\telements = { ")
	for i := 0; i < 32; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "203.0.113.%d . %d", i+1, 22+i%2*2200)
	}
	b.WriteString(" }\n\t}\n")

	// Regular chains first: nft needs a jump's target to exist.
	const svcChains, fwdChains = 80, 20
	svcRules := make([]int, svcChains)
	fwdRules := make([]int, fwdChains)
	// Rules outside the filled shares (the final check counts them all):
	// input 12, zone_public svcChains+4, forward fwdChains+5, output 6,
	// svc_ssh 3, svc_dns 3, and the return closing each forward chain.
	fixed := 12 + svcChains + 4 + fwdChains + 5 + 6 + 3 + 3 + fwdChains
	fill := total - fixed
	if fill < svcChains+fwdChains {
		return "", fmt.Errorf("ruleset: %d rules is too few (at least %d)", total, fixed+svcChains+fwdChains)
	}
	fwdShare := fill / 10
	for i := range fwdRules {
		fwdRules[i] = fwdShare / fwdChains
	}
	fwdRules[0] += fwdShare % fwdChains
	svcShare := fill - fwdShare
	for i := range svcRules {
		svcRules[i] = svcShare / svcChains
	}
	svcRules[0] += svcShare % svcChains

	b.WriteString("\tchain svc_ssh {\n")
	rule(`ip saddr . tcp dport @admin_ssh ct state new accept`)
	rule(`ip6 saddr @trusted6 tcp dport 22 accept`)
	rule(`tcp dport 22 limit rate 10/minute burst 5 packets log prefix "ssh-flood: " drop`)
	b.WriteString("\t}\n\tchain svc_dns {\n")
	rule(`udp dport 53 ip saddr 198.51.100.0/24 accept`)
	rule(`tcp dport 53 ip saddr 198.51.100.0/24 accept`)
	rule(`meta l4proto { tcp, udp } th dport 53 counter reject`)
	b.WriteString("\t}\n")

	for c, cnt := range svcRules {
		fmt.Fprintf(&b, "\tchain svc_%d {\n", c)
		for i := 0; i < cnt; i++ {
			k := c*1000 + i
			a, h := k>>8&255, k&255
			port := 1024 + k%50000
			switch i % 10 {
			case 0, 1, 2:
				rule(`ip saddr 10.%d.%d.%d tcp dport %d accept`, c, a, h, port)
			case 3:
				rule(`ip saddr 10.%d.%d.0/24 udp dport %d counter accept`, c, a, port)
			case 4:
				rule(`ip6 saddr 2001:db8:%x:%x::/64 tcp dport %d accept`, c, k&0xffff, port)
			case 5:
				rule(`iifname "eth1" ip saddr 10.%d.%d.%d tcp dport @web_ports ct state new accept`, c, a, h)
			case 6:
				rule(`ip saddr 10.%d.%d.%d tcp dport { %d, %d } counter accept comment "client %d"`, c, a, h, port, port+1, k)
			case 7:
				rule(`ip daddr 198.51.100.%d tcp dport %d tcp flags & (syn | ack) == syn accept`, 10+h%200, port)
			case 8:
				rule(`ip saddr 10.%d.%d.%d udp dport %d-%d accept`, c, a, h, port, port+10)
			case 9:
				rule(`ip saddr 10.%d.%d.%d meta mark 0x%x log prefix "svc%d: " counter drop`, c, a, h, k+1, c)
			}
		}
		b.WriteString("\t}\n")
	}
	for c, cnt := range fwdRules {
		fmt.Fprintf(&b, "\tchain fwd_client_%d {\n", c)
		for i := 0; i < cnt; i++ {
			k := c*1000 + i
			switch i % 4 {
			case 0:
				rule(`ip saddr 172.16.%d.%d ip daddr 203.0.113.%d tcp dport %d accept`, c, k&255, k%250+1, 1024+k)
			case 1:
				rule(`ip saddr 172.16.%d.0/24 oifname "eth0" udp dport %d counter accept`, c, 1024+k)
			case 2:
				rule(`ip6 saddr 2001:db8:100:%x::/64 ip6 daddr 2001:db8:200::%x accept`, c, k+1)
			case 3:
				rule(`ip saddr 172.16.%d.%d counter drop`, c, k&255)
			}
		}
		rule(`return`)
		b.WriteString("\t}\n")
	}

	b.WriteString("\tchain zone_public {\n")
	rule(`tcp dport 22 jump svc_ssh`)
	rule(`meta l4proto { tcp, udp } th dport 53 jump svc_dns`)
	for c := range svcRules {
		rule(`jump svc_%d`, c)
	}
	rule(`ip saddr @blocklist4 counter drop`)
	rule(`return`)
	b.WriteString("\t}\n")

	b.WriteString("\tmap fwd_dispatch {\n\t\ttype ipv4_addr : verdict\n\t\telements = { ")
	for c := 0; c < fwdChains; c++ {
		if c > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "172.16.%d.1 : jump fwd_client_%d", c, c)
	}
	b.WriteString(" }\n\t}\n")

	b.WriteString("\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n")
	rule(`ct state established,related accept`)
	rule(`ct state invalid drop`)
	rule(`iifname "lo" accept`)
	rule(`ip saddr @blocklist4 drop`)
	rule(`meta l4proto icmp icmp type { echo-request, destination-unreachable, time-exceeded } accept`)
	rule(`meta l4proto ipv6-icmp accept`)
	rule(`iifname "eth0" jump zone_public`)
	rule(`ip daddr 224.0.0.0/4 counter drop comment "%s"`, dropComment)
	rule(`ip protocol vrrp ip daddr 224.0.0.18 accept`)
	rule(`ip6 daddr ff02::12 meta l4proto vrrp accept`)
	rule(`limit rate 5/second log prefix "input-drop: "`)
	rule(`counter`)
	b.WriteString("\t}\n")

	b.WriteString("\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n")
	rule(`ct state established,related accept`)
	rule(`ct state invalid drop`)
	rule(`ip saddr vmap @fwd_dispatch`)
	for c := 0; c < fwdChains; c++ {
		rule(`ip saddr 172.16.%d.0/24 jump fwd_client_%d`, c, c)
	}
	rule(`iifname "br0" oifname "eth0" ct state new accept`)
	rule(`log prefix "forward-drop: " counter`)
	b.WriteString("\t}\n")

	b.WriteString("\tchain output {\n\t\ttype filter hook output priority filter; policy accept;\n")
	rule(`oifname "lo" accept`)
	rule(`ct state established,related accept`)
	rule(`ip daddr @blocklist4 reject with icmp type admin-prohibited`)
	rule(`tcp dport 25 ip daddr != 198.51.100.25 reject with tcp reset`)
	rule(`ip protocol vrrp accept`)
	rule(`counter accept`)
	b.WriteString("\t}\n}\n")

	if n != total {
		return "", fmt.Errorf("ruleset: generated %d rules, want %d", n, total)
	}
	return b.String(), nil
}
