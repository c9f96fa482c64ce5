package ruleset_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/fw/iptsave"
	"github.com/vrrpdoctor/vrrpdoctor/fw/nftjson"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

func load(t *testing.T, scenario, file string) *ruleset.Ruleset {
	t.Helper()
	p := filepath.Join("../../testdata/rulesets", scenario, file)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var rs *ruleset.Ruleset
	if filepath.Ext(p) == ".json" {
		rs, err = nftjson.Parse(data, p)
	} else {
		rs, err = iptsave.Parse(data, p, iptsave.Options{})
	}
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestOwners checks the ownership heuristics on rulesets the real tools made.
func TestOwners(t *testing.T) {
	cases := []struct {
		scenario, file string
		family         ruleset.Family
		table, chain   string
		rule           int // 1-based; 0 asks about the chain
		want           ruleset.Owner
	}{
		{"firewalld-nft-default", "nft.json", "inet", "firewalld", "filter_IN_public", 0, ruleset.OwnerFirewalld},
		{"firewalld-ipt-default", "iptables-nft-save.txt", "ip", "filter", "IN_public", 1, ruleset.OwnerFirewalld},
		{"firewalld-ipt-default", "iptables-nft-save.txt", "ip", "filter", "INPUT", 1, ruleset.OwnerFirewalld},
		{"firewalld-legacy-direct", "iptables-legacy-save.txt", "ip", "filter", "INPUT_direct", 1, ruleset.OwnerFirewalld},
		{"docker-like", "iptables-nft-save.txt", "ip", "filter", "FORWARD", 1, ruleset.OwnerDocker},
		{"docker-like", "iptables-nft-save.txt", "ip", "nat", "POSTROUTING", 1, ruleset.OwnerDocker},
		{"kube-proxy-like", "iptables-nft-save.txt", "ip", "filter", "INPUT", 1, ruleset.OwnerKubeProxy},
		{"kube-proxy-like", "iptables-nft-save.txt", "ip", "nat", "KUBE-SERVICES", 1, ruleset.OwnerKubeProxy},
		{"ufw-like", "iptables-nft-save.txt", "ip", "filter", "INPUT", 2, ruleset.OwnerUFW},
		{"ufw-like", "iptables-nft-save.txt", "ip", "filter", "INPUT", 0, ruleset.OwnerUFW},
		{"docker-like-input-drop", "iptables-nft-save.txt", "ip", "filter", "INPUT", 0, ruleset.OwnerHand},
		{"nft-hand-sets", "nft.json", "inet", "hand", "input", 1, ruleset.OwnerHand},
		{"raw-prerouting-drop", "iptables-nft-save.txt", "ip", "raw", "PREROUTING", 1, ruleset.OwnerHand},
	}
	for _, c := range cases {
		rs := load(t, c.scenario, c.file)
		var tb *ruleset.Table
		for _, x := range rs.Tables {
			if x.Family == c.family && x.Name == c.table {
				tb = x
			}
		}
		if tb == nil {
			t.Fatalf("%s: no table %s %s", c.scenario, c.family, c.table)
		}
		ch := tb.Chain(c.chain)
		if ch == nil {
			t.Fatalf("%s: no chain %s", c.scenario, c.chain)
		}
		var r *ruleset.Rule
		if c.rule > 0 {
			r = ch.Rules[c.rule-1]
		}
		got, why := ruleset.OwnerOf(tb, ch, r)
		if got != c.want {
			t.Errorf("%s %s %s rule %d: owner %s (%s), want %s", c.scenario, c.table, c.chain, c.rule, got, why, c.want)
		}
	}
}

func TestPriorityName(t *testing.T) {
	cases := []struct {
		f    ruleset.Family
		h    ruleset.Hook
		p    int
		want string
	}{
		{"inet", "input", 10, "filter + 10"}, {"inet", "prerouting", -140, "mangle + 10"}, {"ip", "prerouting", -90, "dstnat + 10"},
		{"ip", "postrouting", 110, "srcnat + 10"}, {"ip", "input", -300, "raw"}, {"ip", "output", -90, "dstnat + 10"}, {"ip", "forward", -90, "-90"}, {"netdev", "ingress", 0, "filter"},
	}
	for _, c := range cases {
		if got := ruleset.PriorityName(c.f, c.h, c.p); got != c.want {
			t.Errorf("%s %s %d: %q, want %q", c.f, c.h, c.p, got, c.want)
		}
	}
}
