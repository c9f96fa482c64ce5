package nftlive_test

import (
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/fw/internal/fwlab"
	"github.com/vrrpdoctor/vrrpdoctor/fw/nftjson"
	"github.com/vrrpdoctor/vrrpdoctor/fw/nftlive"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// rejectRules are reject statements in every family and form nft knows;
// the netlink reading must name them as nft does.
const rejectRules = `
table ip t4 {
	chain c {
		ip protocol 112 reject
		ip protocol 112 reject with icmp host-prohibited
		ip protocol 112 reject with icmp admin-prohibited
		tcp dport 1 reject with tcp reset
	}
}
table ip6 t6 {
	chain c {
		meta l4proto 112 reject
		meta l4proto 112 reject with icmpv6 admin-prohibited
		meta l4proto 112 reject with icmpv6 addr-unreachable
	}
}
table inet ti {
	chain c {
		meta l4proto 112 reject
		meta l4proto 112 reject with icmpx admin-prohibited
		meta nfproto ipv4 meta l4proto 112 reject with icmp host-prohibited
		meta nfproto ipv6 meta l4proto 112 reject with icmpv6 admin-prohibited
	}
}
`

// rejects lists each rule's reject statement per table, in order.
func rejects(rs *ruleset.Ruleset) map[string][]string {
	out := map[string][]string{}
	for _, tb := range rs.Tables {
		for _, c := range tb.Chains {
			for _, r := range c.Rules {
				for _, e := range r.Exprs {
					if rj, ok := e.(ruleset.Reject); ok {
						out[tb.Name] = append(out[tb.Name], rj.String())
					}
				}
			}
		}
	}
	return out
}

// TestRejectTextMatchesNft: the reject type and code read over netlink
// (ICMP, ICMPv6, ICMPx, TCP reset; nft's default printed bare) are those
// `nft -j` shows, in ip, ip6 and inet tables.
func TestRejectTextMatchesNft(t *testing.T) {
	fwlab.Require(t, fwlab.Tools)
	ns := fwlab.NewNS(t)
	if out, err := ns.Exec([]byte(rejectRules), "nft", "-f", "-"); err != nil {
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
	got, want := rejects(live), rejects(js)
	for _, tb := range []string{"t4", "t6", "ti"} {
		if len(want[tb]) == 0 {
			t.Fatalf("nft -j shows no reject in table %s", tb)
		}
		if len(got[tb]) != len(want[tb]) {
			t.Fatalf("table %s: netlink %q, nft -j %q", tb, got[tb], want[tb])
		}
		for i := range want[tb] {
			if got[tb][i] != want[tb][i] {
				t.Errorf("table %s rule %d: netlink %q, nft -j %q", tb, i+1, got[tb][i], want[tb][i])
			}
		}
	}
}
