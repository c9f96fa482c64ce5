package nftjson

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

func realFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../../testdata/rulesets/*/nft.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	return files
}

// TestRealRulesets parses every `nft -j list ruleset` the lab saved and
// checks that no table, chain, set or rule is lost.
func TestRealRulesets(t *testing.T) {
	for _, f := range realFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := Parse(data, f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var doc struct {
			Nftables []map[string]json.RawMessage `json:"nftables"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		want := map[string]int{}
		for _, o := range doc.Nftables {
			for k := range o {
				want[k]++
			}
		}
		got := map[string]int{"table": len(rs.Tables)}
		for _, tb := range rs.Tables {
			got["chain"] += len(tb.Chains)
			for _, c := range tb.Chains {
				got["rule"] += len(c.Rules)
			}
			for _, s := range tb.Sets {
				if s.IsMap() {
					got["map"]++
				} else {
					got["set"]++
				}
			}
		}
		for _, k := range []string{"table", "chain", "rule", "set", "map"} {
			if got[k] != want[k] {
				t.Errorf("%s: %d %ss, JSON has %d", f, got[k], k, want[k])
			}
		}
	}
}

var counterRE = regexp.MustCompile(`counter packets \d+ bytes \d+`)

// TestRuleTextMatchesNft checks the rendering of every rule against what
// `nft list ruleset` printed for the same ruleset (nft.txt beside nft.json),
// for the native nftables rules (nft prints iptables-nft's xt extensions in
// its own way).
func TestRuleTextMatchesNft(t *testing.T) {
	checked := 0
	for _, f := range realFiles(t) {
		txt, err := os.ReadFile(filepath.Join(filepath.Dir(f), "nft.txt"))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		lines := map[string]bool{}
		for _, l := range strings.Split(string(txt), "\n") {
			lines[counterRE.ReplaceAllString(strings.TrimSpace(l), "counter")] = true
		}
		data, _ := os.ReadFile(f)
		rs, err := Parse(data, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, tb := range rs.Tables {
			if tb.Backend != ruleset.BackendNFT {
				continue
			}
			for _, c := range tb.Chains {
				for _, r := range c.Rules {
					checked++
					if !lines[r.Text] {
						t.Errorf("%s: %s %s %s: rendered %q, not a line of nft list ruleset", f, tb.Family, tb.Name, c.Name, r.Text)
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no rule checked")
	}
}

func TestClassifyIptablesNFT(t *testing.T) {
	data, err := os.ReadFile("../../testdata/rulesets/firewalld-nft-direct/nft.json")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Parse(data, "x")
	if err != nil {
		t.Fatal(err)
	}
	if tb := rs.Table(ruleset.BackendIptablesNFT, ruleset.FamilyIP, "filter"); tb == nil {
		t.Errorf("ip filter not recognised as iptables-nft's")
	}
	if tb := rs.Table(ruleset.BackendNFT, ruleset.FamilyInet, "firewalld"); tb == nil {
		t.Errorf("inet firewalld missing")
	}
}

// TestNumberPrefix: nft 1.0.6 prints an interval of marks that is a prefix
// (0x00001000/20) with a number as its address.
func TestNumberPrefix(t *testing.T) {
	data := []byte(`{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
		{"table": {"family": "inet", "name": "t", "handle": 1}},
		{"set": {"family": "inet", "name": "markiv", "table": "t", "type": "mark", "handle": 1, "flags": ["interval"],
			"elem": [{"range": [16, 32]}, 256, {"prefix": {"addr": 4096, "len": 20}}]}}]}`)
	rs, err := Parse(data, "x")
	if err != nil {
		t.Fatal(err)
	}
	s := rs.Table(ruleset.BackendNFT, ruleset.FamilyInet, "t").Set("markiv")
	var got []string
	for _, e := range s.Elements {
		got = append(got, e.String())
	}
	if strings.Join(got, ", ") != "16-32, 256, 4096/20" {
		t.Errorf("elements %v", got)
	}
}

func TestSetsAndMaps(t *testing.T) {
	data, err := os.ReadFile("../../testdata/rulesets/nft-hand-sets/nft.json")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Parse(data, "x")
	if err != nil {
		t.Fatal(err)
	}
	tb := rs.Table(ruleset.BackendNFT, ruleset.FamilyInet, "hand")
	if tb == nil {
		t.Fatal("table inet hand missing")
	}
	peers := tb.Set("vrrp_peers")
	if peers == nil || !peers.HasFlag("interval") || len(peers.Elements) != 2 || peers.Elements[0].Key.String() != "198.51.100.0/28" {
		t.Errorf("vrrp_peers: %+v", peers)
	}
	pairs := tb.Set("pairs")
	if pairs == nil || len(pairs.Type) != 2 || len(pairs.Elements) != 1 {
		t.Fatalf("pairs: %+v", pairs)
	}
	if c, ok := pairs.Elements[0].Key.(ruleset.Concat); !ok || c.String() != "eth0 . 224.0.0.18" {
		t.Errorf("pairs element %#v", pairs.Elements[0].Key)
	}
	vm := tb.Set("protoverdict")
	if vm == nil || vm.Map != "verdict" || len(vm.Elements) != 2 {
		t.Fatalf("protoverdict: %+v", vm)
	}
	for _, el := range vm.Elements {
		if _, ok := el.Value.(ruleset.Verdict); !ok {
			t.Errorf("verdict map element %s holds %T", el, el.Value)
		}
	}
}

func TestErrorsNamePath(t *testing.T) {
	cases := []struct{ doc, want string }{
		{`[]`, "document is not a JSON object"},
		{`{"nftables": 3}`, "nftables: missing or not an array"},
		{`{"nftables": [{"rule": {"family": "ip", "table": "t", "chain": "c", "expr": []}}]}`, "nftables[0].rule: table ip t not declared before use"},
		{`{"nftables": [{"table": {"family": "ip", "name": "t"}}, {"chain": {"family": "ip", "table": "t", "name": "c"}}, {"rule": {"family": "ip", "table": "t", "chain": "c", "expr": [{"match": {"op": "==", "right": 1}}]}}]}`,
			`nftables[2].rule.expr[0].match: "left" missing`},
		{`{"nftables": [{"table": {"family": "ip", "name": "t"}}, {"chain": {"family": "ip", "table": "t", "name": "c", "hook": "input", "prio": "x"}}]}`,
			"nftables[1].chain.prio: base chain c without numeric priority"},
		{`{"nftables": [{"metainfo": {"json_schema_version": 2}}]}`, "nftables[0].metainfo.json_schema_version: unsupported schema version 2"},
		{`{"nftables": [`, "invalid JSON"},
		{`{"nftables": [{"bogus": {}}]}`, `nftables[0].bogus: unknown object kind "bogus"`},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.doc), "f")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.doc, err, c.want)
		}
	}
}

func TestUnknownExpressionsKept(t *testing.T) {
	doc := `{"nftables": [{"table": {"family": "inet", "name": "t"}},
	{"chain": {"family": "inet", "table": "t", "name": "c", "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}},
	{"rule": {"family": "inet", "table": "t", "chain": "c", "handle": 4, "expr": [
		{"match": {"op": "==", "left": {"socket": {"key": "transparent"}}, "right": 1}},
		{"xt": {"type": "match", "name": "u32"}},
		{"drop": null}]}}]}`
	rs, err := Parse([]byte(doc), "f")
	if err != nil {
		t.Fatal(err)
	}
	r := rs.Tables[0].Chains[0].Rules[0]
	if len(r.Exprs) != 3 {
		t.Fatalf("exprs %v", r.Exprs)
	}
	if m, ok := r.Exprs[0].(ruleset.Match); !ok || m.Left.(ruleset.Opaque).Kind != "socket" {
		t.Errorf("socket selector: %#v", r.Exprs[0])
	}
	if u, ok := r.Exprs[1].(ruleset.Unsupported); !ok || u.Kind != "xt" {
		t.Errorf("xt: %#v", r.Exprs[1])
	}
}

func TestLooks(t *testing.T) {
	if !Looks([]byte(` {"nftables": []}`)) || Looks([]byte(`{"x": 1}`)) || Looks([]byte("*filter\n")) {
		t.Error("Looks misdetects")
	}
}
