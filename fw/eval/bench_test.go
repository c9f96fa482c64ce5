package eval_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// bigRuleset is 10,000 rules a VRRP advert must walk past: per-source
// accepts for other protocols, spread over jumped-to chains, then the
// accept for VRRP.
func bigRuleset(n int) *ruleset.Ruleset {
	t := &ruleset.Table{Backend: ruleset.BackendNFT, Family: ruleset.FamilyInet, Name: "big"}
	in := &ruleset.Chain{Name: "input", Base: &ruleset.BaseChain{Type: "filter", Hook: ruleset.HookInput, Priority: 0, Policy: "drop"}}
	t.Chains = append(t.Chains, in)
	per := 100
	for c := 0; c*per < n; c++ {
		sub := &ruleset.Chain{Name: fmt.Sprintf("c%d", c)}
		for i := 0; i < per && c*per+i < n; i++ {
			k := c*per + i
			sub.Rules = append(sub.Rules, &ruleset.Rule{Position: i + 1, Exprs: []ruleset.Expr{
				ruleset.Match{Op: ruleset.OpEq, Left: ruleset.Payload{Proto: "ip", Field: "saddr"}, Right: ruleset.Const{Value: fmt.Sprintf("10.%d.%d.%d", k>>16&255, k>>8&255, k&255)}},
				ruleset.Match{Op: ruleset.OpEq, Left: ruleset.Payload{Proto: "tcp", Field: "dport"}, Right: ruleset.Const{Value: fmt.Sprint(1024 + k%60000)}},
				ruleset.Counter{},
				ruleset.Verdict{Kind: "accept"},
			}})
		}
		t.Chains = append(t.Chains, sub)
		in.Rules = append(in.Rules, &ruleset.Rule{Position: len(in.Rules) + 1, Exprs: []ruleset.Expr{ruleset.Verdict{Kind: "jump", Target: sub.Name}}})
	}
	in.Rules = append(in.Rules, &ruleset.Rule{Position: len(in.Rules) + 1, Exprs: []ruleset.Expr{
		ruleset.Match{Op: ruleset.OpEq, Left: ruleset.Meta{Key: "l4proto"}, Right: ruleset.Const{Value: "vrrp"}},
		ruleset.Verdict{Kind: "accept"},
	}})
	return &ruleset.Ruleset{Tables: []*ruleset.Table{t}}
}

func TestBigRuleset(t *testing.T) {
	res, err := eval.Evaluate(bigRuleset(10000), eval.VRRPAdvert(eval.In, "eth0", netip.MustParseAddr("198.51.100.1"), netip.Addr{}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != eval.Accept || res.Rule == nil || res.Rule.Position != 101 {
		t.Fatalf("got %s by %v", res.Verdict, res.Rule)
	}
}

// BenchmarkEvaluate10k: the target is under 20 ms per evaluation.
func BenchmarkEvaluate10k(b *testing.B) {
	rs := bigRuleset(10000)
	p := eval.VRRPAdvert(eval.In, "eth0", netip.MustParseAddr("198.51.100.1"), netip.Addr{})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := eval.Evaluate(rs, p); err != nil {
			b.Fatal(err)
		}
	}
}
