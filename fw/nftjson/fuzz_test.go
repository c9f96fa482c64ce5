package nftjson

import (
	"net/netip"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// FuzzParse feeds arbitrary documents to Parse: it must return a ruleset or
// an error, never panic, and whatever it returns must render and evaluate
// without panicking.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"nftables": [{"metainfo": {"json_schema_version": 1}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := Parse(data, "fuzz")
		if err != nil {
			return
		}
		for _, tb := range rs.Tables {
			for _, c := range tb.Chains {
				for _, r := range c.Rules {
					_ = ruleset.RuleText(r.Exprs, r.Comment)
				}
			}
		}
		for _, dir := range []eval.Direction{eval.In, eval.Out} {
			p := eval.VRRPAdvert(dir, "eth0", netip.MustParseAddr("198.51.100.1"), netip.Addr{})
			if _, err := eval.Evaluate(rs, p); err != nil {
				t.Fatal(err)
			}
		}
	})
}
