package nftlive_test

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
	"github.com/vrrpdoctor/vrrpdoctor/fw/internal/fwlab"
	"github.com/vrrpdoctor/vrrpdoctor/fw/nftjson"
	"github.com/vrrpdoctor/vrrpdoctor/fw/nftlive"
)

// setsRuleset has interval sets whose boundaries meet (one range's end
// element has the key of the next range's start), single addresses, ranges
// that start at zero or run to the top of the key space, and concatenations
// of keys shorter than their 4-byte registers, with and without intervals,
// marks, host-order values that interval sets hold big-endian, and
// interface wildcards (eth*), which interval sets hold as ranges, and a
// map's catch-all element.
// 240.0.0.0/4 and ff00::/8 stand for "up to the highest address": no traffic
// goes to them.
const setsRuleset = `table inet t {
	set adj4 {
		type ipv4_addr; flags interval
		elements = { 203.0.113.0/26, 203.0.113.64/26, 203.0.113.128/25,
			198.51.100.7, 198.51.100.9-198.51.100.20, 198.51.100.21,
			198.51.100.22-198.51.100.23, 240.0.0.0/4 }
	}
	set zero4 {
		type ipv4_addr; flags interval
		elements = { 0.0.0.0/8, 198.51.100.0/24 }
	}
	set all4 {
		type ipv4_addr; flags interval
		elements = { 0.0.0.0/0 }
	}
	set top4 {
		type ipv4_addr; flags interval
		elements = { 255.255.255.255 }
	}
	set adj6 {
		type ipv6_addr; flags interval
		elements = { 2001:db8:1::/48, 2001:db8:2::/48, 2001:db8::1,
			2001:db8::5-2001:db8::9, 2001:db8::a, ff00::/8 }
	}
	set ports {
		type inet_service; flags interval
		elements = { 22, 80-89, 90-99, 100, 65000-65535 }
	}
	set ssh4 {
		type ipv4_addr . inet_service
		elements = { 203.0.113.15 . 22, 198.51.100.1 . 443 }
	}
	set ssh6 {
		type ipv6_addr . inet_proto . inet_service
		elements = { 2001:db8::1 . tcp . 22, 2001:db8::2 . udp . 53 }
	}
	set ifaddr {
		type ifname . ipv4_addr
		elements = { "eth0" . 203.0.113.1, "vrrp.12" . 198.51.100.3 }
	}
	set macs {
		type ether_addr . ipv4_addr
		elements = { 02:00:00:00:00:01 . 198.51.100.1 }
	}
	set marks {
		type mark . inet_service
		elements = { 0x00000010 . 22 }
	}
	set markiv {
		type mark; flags interval
		elements = { 0x10-0x20, 0x100, 0x1000-0x1fff }
	}
	set markp {
		type mark
		elements = { 0x10, 0x100 }
	}
	set markcat {
		type mark . inet_service; flags interval
		elements = { 0x10-0x20 . 22, 0x100 . 80-89 }
	}
	set ifcat {
		type ifname . ipv6_addr; flags interval
		elements = { "eth0" . 2001:db8::/64, "vrrp*" . 2001:db8::1 }
	}
	set ifiv {
		type ifname; flags interval
		elements = { "eth*", "vrrp0" }
	}
	map catch {
		type ipv4_addr : verdict
		elements = { 203.0.113.1 : accept, * : drop }
	}
	set ranges {
		type ipv4_addr . inet_service; flags interval
		elements = { 203.0.113.0/24 . 22-25, 198.51.100.1 . 443, 198.51.100.8-198.51.100.11 . 80 }
	}
	map portmap {
		type ipv4_addr . inet_service : verdict
		elements = { 203.0.113.15 . 22 : accept, 198.51.100.1 . 80 : drop }
	}
	chain input {
		type filter hook input priority 0; policy accept;
		ip saddr @adj4 drop
		ip saddr . tcp dport @ssh4 accept
		ip saddr . tcp dport vmap @portmap
	}
}
`

// TestSetElementsMatchNft reads sets with adjacent, single-address, zero-
// and top-anchored intervals and concatenations over netlink: their
// elements must be those `nft -j list ruleset` shows, and an advert from
// an address next to (not in) the adjacent ranges must not be dropped.
func TestSetElementsMatchNft(t *testing.T) {
	fwlab.Require(t, fwlab.Tools)
	ns := fwlab.NewNS(t)
	// A set too big for one reply of the kernel's dump, between small ones.
	var big []string
	for i := 1; i <= 3000; i++ {
		big = append(big, fmt.Sprintf("2001:db8:ff::%x", i))
	}
	rules := strings.Replace(setsRuleset, "\tset zero4 {",
		"\tset big6 {\n\t\ttype ipv6_addr\n\t\telements = { "+strings.Join(big, ", ")+" }\n\t}\n\tset zero4 {", 1)
	if out, err := ns.Exec([]byte(rules), "nft", "-f", "-"); err != nil {
		t.Fatalf("nft -f: %v: %s", err, out)
	}
	live, err := nftlive.Read(nftlive.Options{NetNS: ns.FD})
	if err != nil {
		t.Fatal(err)
	}
	out, err := ns.Exec(nil, "nft", "-j", "list", "ruleset")
	if err != nil {
		t.Fatal(err)
	}
	js, err := nftjson.Parse(out, "nft -j")
	if err != nil {
		t.Fatal(err)
	}
	// nft -j prints marks in decimal, the netlink reading in hex.
	hex := regexp.MustCompile(`0x[0-9a-f]+`)
	dec := func(h string) string { n, _ := strconv.ParseUint(h, 0, 64); return strconv.FormatUint(n, 10) }
	got, want := shape(live, false), shape(js, false)
	for i := range got {
		got[i] = hex.ReplaceAllStringFunc(got[i], dec)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("netlink read:\n%s\n\nnft -j:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, s := range live.Tables[0].Sets {
		if s.Incomplete != "" {
			t.Errorf("set %s: %s", s.Name, s.Incomplete)
		}
	}
	// 198.51.100.8 lies between 198.51.100.7 and 198.51.100.9-20; a
	// misread pairing of the boundaries puts it inside.
	for _, src := range []string{"198.51.100.8", "203.0.113.200"} {
		p := eval.VRRPAdvert(eval.In, "eth0", netip.MustParseAddr(src), netip.Addr{})
		lr, err := eval.Evaluate(live, p)
		if err != nil {
			t.Fatal(err)
		}
		jr, err := eval.Evaluate(js, p)
		if err != nil {
			t.Fatal(err)
		}
		if lr.Verdict != jr.Verdict || ref(lr.Rule) != ref(jr.Rule) {
			t.Errorf("advert from %s: netlink %s by %s, nft -j %s by %s", src, lr.Verdict, ref(lr.Rule), jr.Verdict, ref(jr.Rule))
		}
	}
}
