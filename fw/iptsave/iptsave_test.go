package iptsave

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// TestRealSaves parses every save file the lab wrote and checks family and
// flavour against the tool that wrote it (the file name) and the rule count
// against the file's -A lines.
func TestRealSaves(t *testing.T) {
	files, err := filepath.Glob("../../testdata/rulesets/*/*-save.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := Parse(data, f, Options{})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		base := filepath.Base(f)
		wantFam, wantBackend := ruleset.FamilyIP, ruleset.BackendIptablesNFT
		if strings.HasPrefix(base, "ip6") {
			wantFam = ruleset.FamilyIP6
		}
		if strings.Contains(base, "legacy") {
			wantBackend = ruleset.BackendIptablesLegacy
		}
		rules := 0
		for _, tb := range rs.Tables {
			if tb.Family != wantFam || tb.Backend != wantBackend {
				t.Errorf("%s: table %s is %s %s, want %s %s", f, tb.Name, tb.Backend, tb.Family, wantBackend, wantFam)
			}
			for _, c := range tb.Chains {
				rules += len(c.Rules)
				for i, r := range c.Rules {
					if r.Position != i+1 || !strings.HasPrefix(r.Text, "-A "+c.Name+" ") {
						t.Errorf("%s: rule %d of %s: position %d text %q", f, i+1, c.Name, r.Position, r.Text)
					}
				}
			}
		}
		if want := strings.Count(string(data), "\n-A "); rules != want {
			t.Errorf("%s: %d rules, file has %d", f, rules, want)
		}
	}
}

func parseRule(t *testing.T, fam ruleset.Family, chains, line string) *ruleset.Rule {
	t.Helper()
	doc := "*filter\n:INPUT ACCEPT [0:0]\n" + chains + line + "\nCOMMIT\n"
	rs, err := Parse([]byte(doc), "t", Options{Backend: ruleset.BackendIptablesLegacy, Family: fam})
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	c := rs.Tables[0].Chain("INPUT")
	return c.Rules[len(c.Rules)-1]
}

// TestTranslation checks how save lines become model expressions, written
// here in nft syntax.
func TestTranslation(t *testing.T) {
	cases := []struct {
		fam        ruleset.Family
		line, want string
		comment    string
	}{
		{ruleset.FamilyIP, `-A INPUT -d 224.0.0.18/32 -i eth0 -p vrrp -j ACCEPT`,
			`ip daddr 224.0.0.18 iifname "eth0" ip protocol vrrp accept`, ""},
		{ruleset.FamilyIP, `-A INPUT -i eth+ -d 224.0.0.0/8 -p 112 -m pkttype --pkt-type multicast -m conntrack --ctstate NEW -j ACCEPT`,
			`iifname "eth*" ip daddr 224.0.0.0/8 ip protocol 112 meta pkttype multicast ct state new accept`, ""},
		{ruleset.FamilyIP, `-A INPUT ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`,
			`ip saddr != 127.0.0.0/8 ip daddr 127.0.0.0/8 ct state != related,established,dnat drop`, "block incoming localnet connections"},
		{ruleset.FamilyIP6, `-A INPUT -d ff02::12/128 -p vrrp -j ACCEPT`,
			`ip6 daddr ff02::12 meta l4proto vrrp accept`, ""},
		{ruleset.FamilyIP, `-A INPUT -m addrtype --dst-type MULTICAST -j RETURN`,
			`fib daddr type multicast return`, ""},
		{ruleset.FamilyIP, `-A INPUT -m mark ! --mark 0x4000/0x4000 -j RETURN`,
			`meta mark & 0x00004000 != 0x00004000 return`, ""},
		{ruleset.FamilyIP, `-A INPUT -j MARK --set-xmark 0x4000/0x4000`,
			`meta mark set meta mark & 0xffffbfff ^ 0x00004000`, ""},
		{ruleset.FamilyIP, `-A INPUT -j MARK --set-xmark 0x10/0xffffffff`,
			`meta mark set 0x00000010`, ""},
		{ruleset.FamilyIP, `-A INPUT -p udp -m udp --sport 67 --dport 68 -j ACCEPT`,
			`ip protocol udp udp sport 67 udp dport 68 accept`, ""},
		{ruleset.FamilyIP, `-A INPUT -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW BLOCK] "`,
			`-m limit --limit 3/min --limit-burst 10 log prefix "[UFW BLOCK] "`, ""},
		{ruleset.FamilyIP, `-A INPUT -p tcp -m multiport --dports 22,80 -j REJECT --reject-with icmp-port-unreachable`,
			`ip protocol tcp tcp dport { 22, 80 } reject with icmp-port-unreachable`, ""},
		{ruleset.FamilyIP, `-A INPUT -m set --match-set blocked src -j DROP`,
			`-m set --match-set blocked src drop`, ""},
		{ruleset.FamilyIP, `-A INPUT -j CT --notrack`, `notrack`, ""},
		{ruleset.FamilyIP, `-A INPUT -s 198.51.100.0/255.255.255.0 -j MASQUERADE --random-fully`,
			`ip saddr 198.51.100.0/24 -j MASQUERADE --random-fully`, ""},
		{ruleset.FamilyIP, `-A INPUT -m comment --comment "a \"b\" c\\d" -j ACCEPT`, `accept`, `a "b" c\d`},
		{ruleset.FamilyIP, `-A INPUT -j SOMETHING`, `-j SOMETHING`, ""},
	}
	for _, c := range cases {
		r := parseRule(t, c.fam, "", c.line)
		if got := ruleset.RuleText(r.Exprs, ""); got != c.want {
			t.Errorf("%s\n got %s\nwant %s", c.line, got, c.want)
		}
		if r.Comment != c.comment {
			t.Errorf("%s: comment %q, want %q", c.line, r.Comment, c.comment)
		}
		if r.Text != c.line {
			t.Errorf("text %q, want the line", r.Text)
		}
	}
}

func TestJumpAndGoto(t *testing.T) {
	r := parseRule(t, ruleset.FamilyIP, ":USER - [0:0]\n", "-A INPUT -p vrrp -g USER")
	if v, ok := r.Exprs[len(r.Exprs)-1].(ruleset.Verdict); !ok || v.Kind != "goto" || v.Target != "USER" {
		t.Errorf("goto: %#v", r.Exprs)
	}
	r = parseRule(t, ruleset.FamilyIP, ":USER - [0:0]\n", "-A INPUT -j USER")
	if v, ok := r.Exprs[0].(ruleset.Verdict); !ok || v.Kind != "jump" {
		t.Errorf("jump: %#v", r.Exprs)
	}
}

func TestHeaders(t *testing.T) {
	cases := []struct {
		header  string
		backend ruleset.Backend
		fam     ruleset.Family
	}{
		{"# Generated by iptables-save v1.8.9 (nf_tables) on Wed Nov 25 13:36:32 2026", ruleset.BackendIptablesNFT, ruleset.FamilyIP},
		{"# Generated by ip6tables-save v1.8.9 (nf_tables) on Wed Nov 25 13:36:32 2026", ruleset.BackendIptablesNFT, ruleset.FamilyIP6},
		{"# Generated by iptables-save v1.8.9 on Wed Nov 25 13:42:33 2026", ruleset.BackendIptablesLegacy, ruleset.FamilyIP},
		{"# Generated by iptables-save v1.8.4 (legacy) on Mon Jan  1 00:00:00 2024", ruleset.BackendIptablesLegacy, ruleset.FamilyIP},
		{"# Generated by iptables-save v1.4.21 on Mon Jan  1 00:00:00 2018", ruleset.BackendIptablesLegacy, ruleset.FamilyIP},
		{"# Generated by iptables-nft-save v1.8.7 on Mon Jan  1 00:00:00 2024", ruleset.BackendIptablesNFT, ruleset.FamilyIP},
	}
	for _, c := range cases {
		rs, err := Parse([]byte(c.header+"\n*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n"), "t", Options{})
		if err != nil {
			t.Fatalf("%s: %v", c.header, err)
		}
		if tb := rs.Tables[0]; tb.Backend != c.backend || tb.Family != c.fam {
			t.Errorf("%s: %s %s", c.header, tb.Backend, tb.Family)
		}
	}
}

func TestErrorsNameLine(t *testing.T) {
	h := "# Generated by iptables-save v1.8.9 on x\n"
	cases := []struct{ doc, want string }{
		{"*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n", "t:1: table filter: no \"# Generated by"},
		{h + "*filter\n:INPUT ACCEPT [0:0]\n-A FOO -j ACCEPT\nCOMMIT\n", "t:4: rule for undeclared chain FOO"},
		{h + "COMMIT\n", "t:2: COMMIT outside a table"},
		{h + "*bogus\n", "t:2: unknown table \"bogus\""},
		{h + "*filter\n:INPUT ACCEPT [0:0]\n", "t:3: table filter not ended by COMMIT"},
		{h + "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m comment --comment \"open\nCOMMIT\n", "t:4: unterminated quote"},
		{h + "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 300.1.1.1 -j ACCEPT\nCOMMIT\n", "t:4: -s 300.1.1.1: bad address"},
		{h + "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -g NOWHERE\nCOMMIT\n", "t:4: -g to undeclared chain NOWHERE"},
		{h + "*filter\n:FOO ACCEPT [0:0]\nCOMMIT\n", "t:3: chain FOO has policy ACCEPT but is not a built-in chain"},
		{h + "*filter\nhello\n", "t:3: unexpected line \"hello\""},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.doc), "t", Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.doc, err, c.want)
		}
	}
}

func TestLooks(t *testing.T) {
	if !Looks([]byte("# Generated by ip6tables-save v1.8.9 (nf_tables) on x\n")) || !Looks([]byte("\n*nat\n")) || Looks([]byte(`{"nftables":[]}`)) {
		t.Error("Looks misdetects")
	}
}
