package firewalld

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/fw/iptsave"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

func TestParseDirectXML(t *testing.T) {
	data := []byte(`<?xml version="1.0" encoding="utf-8"?>
<direct>
  <chain ipv="ipv4" table="filter" chain="mine"/>
  <rule priority="0" table="filter" ipv="ipv4" chain="INPUT">--in-interface eth0 --destination 224.0.0.18 --protocol vrrp -j ACCEPT</rule>
  <rule priority="-5" table="filter" ipv="ipv6" chain="OUTPUT">-m comment --comment "vrrp out" -p 112 -j ACCEPT</rule>
  <passthrough ipv="ipv4">-A INPUT -j ACCEPT</passthrough>
</direct>
`)
	if !LooksDirectXML(data) {
		t.Fatal("LooksDirectXML: false")
	}
	got, err := ParseDirectXML(data, "direct.xml")
	if err != nil {
		t.Fatal(err)
	}
	want := []DirectRule{
		{IPV: "ipv4", Table: "filter", Chain: "INPUT", Priority: 0, Args: strings.Fields("--in-interface eth0 --destination 224.0.0.18 --protocol vrrp -j ACCEPT")},
		{IPV: "ipv6", Table: "filter", Chain: "OUTPUT", Priority: -5, Args: []string{"-m", "comment", "--comment", "vrrp out", "-p", "112", "-j", "ACCEPT"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestParseDirectXMLErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`<zone><rule/></zone>`, "direct.xml:1: <zone>, want firewalld's <direct>"},
		{"<direct>\n<rule ipv=\"ipv4\" table=\"filter\" chain=\"INPUT\" priority=\"x\">-j ACCEPT</rule></direct>", "direct.xml:2: rule priority \"x\""},
		{"<direct>\n\n<rule ipv=\"ipv4\" chain=\"INPUT\">-j ACCEPT</rule></direct>", "direct.xml:3: rule without ipv, table or chain"},
		{`<direct><rule ipv="ipv4" table="filter" chain="INPUT">-m comment --comment "open</rule></direct>`, `unterminated " quote`},
		{`<direct><rule`, "direct.xml: XML syntax error"},
		{``, "direct.xml: no <direct> element"},
	} {
		_, err := ParseDirectXML([]byte(c.in), "direct.xml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.in, err, c.want)
		}
	}
}

// TestDirectXMLMarksRules: the direct.xml a real firewalld 1.3.3 wrote for
// the classic rules (testdata/rulesets) marks them as firewalld's in the
// saved iptables rules, as the live D-Bus reading does.
func TestDirectXMLMarksRules(t *testing.T) {
	for _, c := range []struct{ scenario, file, chain string }{
		{"firewalld-nft-direct", "iptables-nft-save.txt", "INPUT"},
		{"firewalld-ipt-direct", "iptables-nft-save.txt", "INPUT_direct"},
		{"firewalld-legacy-direct", "iptables-legacy-save.txt", "INPUT_direct"},
	} {
		dir := filepath.Join("../../testdata/rulesets", c.scenario)
		x, err := os.ReadFile(filepath.Join(dir, "firewalld-direct.xml"))
		if err != nil {
			t.Fatal(err)
		}
		rules, err := ParseDirectXML(x, "firewalld-direct.xml")
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, c.file)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := iptsave.Parse(data, p, iptsave.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if n := (&Info{Direct: rules}).MarkDirectRules(rs); n != 2 {
			t.Fatalf("%s: marked %d rules, want 2 (INPUT and OUTPUT)", c.scenario, n)
		}
		r := rs.Table(rs.Tables[0].Backend, ruleset.FamilyIP, "filter").Chain(c.chain).Rules[0]
		if r.Owner != ruleset.OwnerFirewalld {
			t.Errorf("%s: %s not marked", c.scenario, r.Text)
		}
	}
}

func FuzzParseDirectXML(f *testing.F) {
	f.Add([]byte(`<direct><rule priority="0" table="filter" ipv="ipv4" chain="INPUT">-p vrrp -j ACCEPT</rule></direct>`))
	f.Add([]byte(`<?xml version="1.0"?><direct><rule ipv="ipv4" table="filter" chain="INPUT">'a b' "c\"d" e\ f</rule></direct>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := ParseDirectXML(data, "f")
		if err != nil {
			return
		}
		for _, r := range rules {
			if r.IPV == "" || r.Table == "" || r.Chain == "" {
				t.Fatalf("rule without ipv/table/chain accepted: %+v", r)
			}
		}
	})
}
