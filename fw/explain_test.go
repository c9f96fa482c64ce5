package fw

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
)

func proofFiles(t *testing.T) []string {
	t.Helper()
	dir := "../testdata/rulesets/firewalld-nft-direct"
	return []string{filepath.Join(dir, "nft.json"), filepath.Join(dir, "iptables-nft-save.txt")}
}

func TestExplainRenders(t *testing.T) {
	ex, err := Explain(context.Background(), Options{
		Rulesets: proofFiles(t),
		Packet:   eval.VRRPAdvert(eval.In, "eth0", netip.MustParseAddr("198.51.100.1"), netip.Addr{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := RenderText(&text, ex); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + text.String())
	for _, want := range []string{"Verdict:  REJECT", "filter_IN_public", "owner firewalld", eval.NotFinal, "-A INPUT -d 224.0.0.18/32 -i eth0 -p vrrp -j ACCEPT"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text output lacks %q", want)
		}
	}
	var js bytes.Buffer
	if err := RenderJSON(&js, ex); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Verdict     string `json:"verdict"`
		Evaluations []struct {
			Verdict string `json:"verdict"`
			Rule    struct {
				Backend, Family, Table, Chain, Text, Owner string
				Handle                                     uint64
			} `json:"rule"`
			Path          []map[string]any `json:"path"`
			UnknownReason *string          `json:"unknown_reason"`
			Advice        []string         `json:"advice"`
		} `json:"evaluations"`
	}
	if err := json.Unmarshal(js.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Verdict != "reject" || len(rep.Evaluations) != 1 {
		t.Fatalf("JSON: %s", js.String())
	}
	got := rep.Evaluations[0]
	if got.Verdict != "reject" || got.Rule.Table != "firewalld" || got.Rule.Owner != "firewalld" || got.Rule.Handle == 0 || len(got.Path) == 0 || got.UnknownReason != nil || len(got.Advice) == 0 {
		t.Fatalf("JSON: %s", js.String())
	}
}

// TestDirectRuleAdvice: the advice about firewalld's direct rule is given
// for the classic direct rule on firewalld's nftables backend, and not on
// its iptables backend, where firewalld's own not-final accepts (chain
// policies in raw and mangle) are no direct rules.
func TestDirectRuleAdvice(t *testing.T) {
	const advice = "is firewalld's direct rule"
	for _, c := range []struct {
		scenario string
		files    []string
		want     bool
	}{
		{"firewalld-nft-direct", []string{"nft.json", "iptables-nft-save.txt", "firewalld-direct.xml"}, true},
		{"firewalld-ipt-default", []string{"nft.json", "iptables-nft-save.txt"}, false},
		{"firewalld-legacy-default", []string{"nft.json", "iptables-legacy-save.txt"}, false},
	} {
		var paths []string
		for _, f := range c.files {
			paths = append(paths, filepath.Join("../testdata/rulesets", c.scenario, f))
		}
		ex, err := Explain(context.Background(), Options{
			Rulesets: paths,
			Packet:   eval.VRRPAdvert(eval.In, "eth0", netip.MustParseAddr("198.51.100.1"), netip.Addr{}),
		})
		if err != nil {
			t.Fatal(err)
		}
		var text bytes.Buffer
		if err := RenderText(&text, ex); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(text.String(), advice); got != c.want {
			t.Errorf("%s: direct-rule advice given %v, want %v:\n%s", c.scenario, got, c.want, text.String())
		}
	}
}
