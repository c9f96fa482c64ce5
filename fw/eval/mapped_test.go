package eval_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// mappedPrefixes returns pointers to every set element of rs whose key is
// the prefix addr/len, in anonymous sets of rules and in named sets.
func mappedPrefixes(rs *ruleset.Ruleset, addr string, n int) []*ruleset.Element {
	var out []*ruleset.Element
	scan := func(els []ruleset.Element) {
		for i := range els {
			if p, ok := els[i].Key.(ruleset.Prefix); ok && p.Addr == addr && p.Len == n {
				out = append(out, &els[i])
			}
		}
	}
	for _, t := range rs.Tables {
		for _, s := range t.Sets {
			scan(s.Elements)
		}
		for _, c := range t.Chains {
			for _, r := range c.Rules {
				for _, x := range r.Exprs {
					if m, ok := x.(ruleset.Match); ok {
						if s, ok := m.Right.(ruleset.SetLit); ok {
							scan(s.Elems)
						}
					}
				}
			}
		}
	}
	return out
}

// TestIPv4MappedPrefixInIPv6Set: firewalld's nftables backend rejects IPv6
// to { ::/96, ::ffff:0.0.0.0/96, 2002::/24, ... } in filter_OUTPUT and
// filter_FORWARD (testdata/rulesets/firewalld-nft-ipv6-default, made by
// firewalld 1.3.3). The IPv4-mapped prefix is an IPv6 prefix of 96 bits:
// it does not hold ff02::12, so this host's own IPv6 adverts pass
// filter_OUTPUT and meet its accept policy. Read as the IPv4 address
// 0.0.0.0 with 96 bits (as fw/nftlive once did), the element is a bad
// prefix and the verdict unknown — which made fix-firewall refuse its plan.
func TestIPv4MappedPrefixInIPv6Set(t *testing.T) {
	rs, _ := loadScenario(t, "../../testdata/rulesets/firewalld-nft-ipv6-default")
	els := mappedPrefixes(rs, "::ffff:0.0.0.0", 96)
	if len(els) != 2 {
		t.Fatalf("found %d elements ::ffff:0.0.0.0/96, want 2 (filter_OUTPUT and filter_FORWARD)", len(els))
	}
	out := eval.VRRPAdvert(eval.Out, "eth0", netip.MustParseAddr("fe80::2"), netip.MustParseAddr("ff02::12"))
	res := evaluate(t, rs, out)
	if res.Verdict != eval.Accept || res.Rule == nil || !res.Rule.Policy || res.Rule.Chain != "filter_OUTPUT" {
		t.Fatalf("out: %s by %v (%s), want accept by filter_OUTPUT's policy", res.Verdict, res.Rule, res.UnknownReason)
	}
	// The element is really evaluated on the way: in the IPv4 form the
	// old reader produced, it makes the same advert undecidable.
	for _, e := range els {
		e.Key = ruleset.Prefix{Addr: "0.0.0.0", Len: 96}
	}
	res = evaluate(t, rs, out)
	if res.Verdict != eval.Unknown || !strings.Contains(res.UnknownReason, "bad prefix 0.0.0.0/96") {
		t.Fatalf("with the element read as 0.0.0.0/96: %s (%s), want unknown, bad prefix", res.Verdict, res.UnknownReason)
	}
}

// TestIPv4MappedPrefixMatch: an IPv4-mapped IPv6 prefix compared with IPv6
// destinations contains exactly the mapped ones' space and nothing else.
func TestIPv4MappedPrefixMatch(t *testing.T) {
	for _, tc := range []struct {
		prefix ruleset.Prefix
		dst    string
		drop   bool
	}{
		{ruleset.Prefix{Addr: "::ffff:0.0.0.0", Len: 96}, "ff02::12", false},
		{ruleset.Prefix{Addr: "::ffff:0.0.0.0", Len: 96}, "2001:db8::1", false},
		{ruleset.Prefix{Addr: "::", Len: 96}, "ff02::12", false},
		{ruleset.Prefix{Addr: "ff00::", Len: 8}, "ff02::12", true},
		{ruleset.Prefix{Addr: "2001:db8::", Len: 32}, "2001:db8::1", true},
	} {
		rs := &ruleset.Ruleset{Tables: []*ruleset.Table{{
			Backend: ruleset.BackendNFT, Family: ruleset.FamilyInet, Name: "filter",
			Chains: []*ruleset.Chain{{
				Name: "output",
				Base: &ruleset.BaseChain{Type: "filter", Hook: ruleset.HookOutput, Policy: "accept"},
				Rules: []*ruleset.Rule{{Handle: 2, Position: 1, Text: "ip6 daddr { ... } drop", Exprs: []ruleset.Expr{
					ruleset.Match{Op: ruleset.OpEq, Left: ruleset.Payload{Proto: "ip6", Field: "daddr"}, Right: ruleset.SetLit{Elems: []ruleset.Element{{Key: tc.prefix}}}},
					ruleset.Verdict{Kind: "drop"},
				}}},
			}},
		}}}
		p := eval.VRRPAdvert(eval.Out, "eth0", netip.MustParseAddr("fe80::2"), netip.MustParseAddr(tc.dst))
		res := evaluate(t, rs, p)
		want := eval.Accept
		if tc.drop {
			want = eval.Drop
		}
		if res.Verdict != want {
			t.Errorf("%s against %s: %s (%s), want %s", tc.dst, tc.prefix, res.Verdict, res.UnknownReason, want)
		}
	}
}
