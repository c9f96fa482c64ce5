package fix

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/fw"
	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
	"github.com/vrrpdoctor/vrrpdoctor/fw/firewalld"
	"github.com/vrrpdoctor/vrrpdoctor/fw/iptsave"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// load reads a testdata/rulesets scenario made by the real tools.
func load(t *testing.T, name string) *ruleset.Ruleset {
	t.Helper()
	dir := filepath.Join("..", "..", "testdata", "rulesets", name)
	var files []string
	for _, pat := range []string{"nft.json", "*-save.txt"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatalf("no ruleset in %s", dir)
	}
	rs, err := fw.LoadFiles(files, iptsave.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

var (
	group4 = netip.MustParseAddr("224.0.0.18")
	group6 = netip.MustParseAddr("ff02::12")
	peer4  = netip.MustParseAddr("198.51.100.1")
	self4  = netip.MustParseAddr("198.51.100.2")
)

func multicast4() []Target {
	return []Target{{Name: "VI_1", Iface: "eth0", Family: 4, Group: group4}}
}

// TestPlanPlacesBeforeDecidingRule: on each scenario the fix goes into the
// chain that decides, before the deciding rule (or at the chain's end for a
// policy), and the evaluator accepts the adverts afterwards.
func TestPlanPlacesBeforeDecidingRule(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		targets  []Target
		want     []string // Shell of each rule, in order
	}{
		{"nft-two-tables-reject", multicast4(), []string{
			`nft 'insert rule ip late input position 2 iifname "eth0" ip daddr 224.0.0.18 meta l4proto vrrp accept comment "vrrpdoctor: allow VRRP"'`,
		}},
		{"legacy-accept-nft-drop", multicast4(), nil},
		{"nft-output-drop", multicast4(), nil},
		{"ip6tables-nft-accept", []Target{{Iface: "eth0", Family: 6, Group: group6}}, nil},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			rs := load(t, tc.scenario)
			plan, err := Make(rs, tc.targets, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var text bytes.Buffer
			if err := RenderText(&text, plan); err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s", text.String())
			if len(plan.Refused) > 0 {
				t.Fatalf("refused: %v", plan.Refused)
			}
			for _, c := range plan.Checks {
				if c.After != eval.Accept {
					t.Errorf("%s: after the fix %s", c.Label, c.After)
				}
			}
			for i, w := range tc.want {
				if i >= len(plan.Rules) || Shell(plan.Rules[i].Command) != w {
					t.Errorf("rule %d: got %v, want %s", i, plan.Rules, w)
				}
			}
			// The plan never changes the ruleset it was made on.
			again, err := Make(rs, tc.targets, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(again.Rules) != len(plan.Rules) {
				t.Errorf("second plan on the same ruleset: %d rules, first %d", len(again.Rules), len(plan.Rules))
			}
		})
	}
}

// TestPlanPerBackend checks, scenario by scenario, the backend, chain and
// rule text of the fix.
func TestPlanPerBackend(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		targets  []Target
		backend  Backend
		chain    string
		contains string
		nothing  bool
	}{
		{"legacy-accept-nft-drop", multicast4(), NFT, "", "meta l4proto vrrp accept", false},
		{"nft-output-drop", multicast4(), NFT, "output", `oifname "eth0" ip daddr 224.0.0.18`, false},
		{"raw-prerouting-drop", multicast4(), "", "", "", false},
		{"ufw-like", multicast4(), IptablesNFT, "", "may rebuild it", false},
		{"docker-like-input-drop", []Target{{Iface: "eth0", Family: 4, Group: group4, Self: self4}}, IptablesNFT, "INPUT", "-A INPUT -i eth0 -d 224.0.0.18 -p vrrp", false},
		{"nft-accept-vrrp", multicast4(), "", "", "", true},
		{"three-flavours-accept", multicast4(), "", "", "", true},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			plan, err := Make(load(t, tc.scenario), tc.targets, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var text bytes.Buffer
			_ = RenderText(&text, plan)
			t.Logf("\n%s", text.String())
			if got := plan.NothingToDo(); got != tc.nothing {
				t.Fatalf("nothing to do %v, want %v", got, tc.nothing)
			}
			if tc.nothing {
				return
			}
			if len(plan.Refused) > 0 {
				t.Fatalf("refused: %v", plan.Refused)
			}
			if len(plan.Rules) == 0 {
				t.Fatal("no rule planned")
			}
			r := plan.Rules[0]
			if tc.backend != "" && r.Backend != tc.backend {
				t.Errorf("backend %s, want %s", r.Backend, tc.backend)
			}
			if tc.chain != "" && r.Chain != tc.chain {
				t.Errorf("chain %s, want %s", r.Chain, tc.chain)
			}
			if !strings.Contains(Shell(r.Command)+" "+r.Why, tc.contains) {
				t.Errorf("command %s (why: %s) lacks %q", Shell(r.Command), r.Why, tc.contains)
			}
			if strings.Contains(text.String(), "224.0.0.0/") {
				t.Error("the fix widens beyond the VRRP group")
			}
		})
	}
}

// TestPlanIptablesUnicast: unicast peers get one rule each (source = peer,
// destination = this node), inserted at the deciding rule's position in
// iptables-nft's chain.
func TestPlanIptablesUnicast(t *testing.T) {
	rs, err := fw.Parse("save", []byte("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -p vrrp -j DROP\nCOMMIT\n"),
		iptsave.Options{Backend: ruleset.BackendIptablesNFT, Family: ruleset.FamilyIP})
	if err != nil {
		t.Fatal(err)
	}
	peer2 := netip.MustParseAddr("198.51.100.3")
	plan, err := Make(rs, []Target{{Iface: "eth0", Family: 4, Peers: []netip.Addr{peer4, peer2}, Self: self4}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"iptables-nft -w -t filter -I INPUT 2 -i eth0 -s 198.51.100.1 -d 198.51.100.2 -p vrrp -m comment --comment 'vrrpdoctor: allow VRRP' -j ACCEPT",
		"iptables-nft -w -t filter -I INPUT 3 -i eth0 -s 198.51.100.3 -d 198.51.100.2 -p vrrp -m comment --comment 'vrrpdoctor: allow VRRP' -j ACCEPT",
	}
	if len(plan.Rules) != len(want) {
		t.Fatalf("rules %+v", plan.Rules)
	}
	for i, w := range want {
		if got := Shell(plan.Rules[i].Command); got != w {
			t.Errorf("rule %d:\n got %s\nwant %s", i, got, w)
		}
	}
	if len(plan.Checks) != 4 || plan.Checks[2].Before != eval.Accept {
		t.Errorf("checks %+v", plan.Checks)
	}
}

// TestPlanBackendMismatch: forcing another backend than the one that drops
// is refused, because an accept elsewhere is not final.
func TestPlanBackendMismatch(t *testing.T) {
	plan, err := Make(load(t, "legacy-accept-nft-drop"), multicast4(), Options{Backend: IptablesLegacy})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Refused) == 0 || !strings.Contains(plan.Refused[0], "not final") {
		t.Errorf("refused %v", plan.Refused)
	}
}

// TestPlanUnknownRefused: a rate limit makes the verdict unknown: refused
// without --force.
func TestPlanUnknownRefused(t *testing.T) {
	rs := load(t, "nft-limit")
	plan, err := Make(rs, multicast4(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Checks[0].Before == eval.Unknown && len(plan.Refused) == 0 {
		t.Errorf("unknown verdict not refused: %+v", plan.Checks[0])
	}
	if plan.Checks[0].Before != eval.Unknown {
		t.Fatalf("nft-limit is %s for this advert, want unknown", plan.Checks[0].Before)
	}
	// --force: the accept goes at the end of the chain whose policy drops
	// what the limit lets through, and then every way accepts.
	plan, err = Make(rs, multicast4(), Options{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Refused) > 0 || len(plan.Rules) != 1 || plan.Checks[0].After != eval.Accept ||
		Shell(plan.Rules[0].Command) != `nft 'add rule inet filter input iifname "eth0" ip daddr 224.0.0.18 meta l4proto vrrp accept comment "vrrpdoctor: allow VRRP"'` {
		t.Errorf("forced plan: refused %v, rules %+v, checks %+v", plan.Refused, plan.Rules, plan.Checks)
	}
}

// TestPlanFirewalld: the fix is the zone rich rule; the classic direct
// rules are printed as an alternative that works with the iptables backend
// and not with the nftables backend.
func TestPlanFirewalld(t *testing.T) {
	for _, tc := range []struct {
		scenario, backend string
		directWorks       bool
	}{
		{"firewalld-nft-default", "nftables", false},
		{"firewalld-ipt-default", "iptables", true},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			info := &firewalld.Info{Running: true, Version: "1.3.3", Backend: tc.backend, DefaultZone: "public"}
			plan, err := Make(load(t, tc.scenario), multicast4(), Options{Firewalld: info})
			if err != nil {
				t.Fatal(err)
			}
			var text bytes.Buffer
			_ = RenderText(&text, plan)
			t.Logf("\n%s", text.String())
			if len(plan.Refused) > 0 || len(plan.Rules) != 1 {
				t.Fatalf("refused %v, rules %+v", plan.Refused, plan.Rules)
			}
			r := plan.Rules[0]
			if r.Backend != Firewalld || r.Zone != "public" || r.Rich != `rule family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept` {
				t.Errorf("rule %+v", r)
			}
			if got := Shell(r.Persist); got != `firewall-cmd --permanent --zone=public --add-rich-rule='rule family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept'` {
				t.Errorf("persist %s", got)
			}
			if len(plan.Alternatives) != 1 || plan.Alternatives[0].Works != tc.directWorks {
				t.Fatalf("alternatives %+v", plan.Alternatives)
			}
			direct := Shell(plan.Alternatives[0].Commands[0])
			if direct != "firewall-cmd --direct --permanent --add-rule ipv4 filter INPUT 0 --in-interface eth0 --destination 224.0.0.18 --protocol vrrp -j ACCEPT" {
				t.Errorf("direct rule %s", direct)
			}
			if !tc.directWorks && !strings.Contains(plan.Alternatives[0].Note, "Do NOT use") {
				t.Errorf("no warning on the direct rules: %s", plan.Alternatives[0].Note)
			}
			if !strings.Contains(text.String(), "cannot name an interface") {
				t.Error("text lacks the note on rich rules and interfaces")
			}
		})
	}
}

// TestPlanFirewalldIPv6BothDirections: on firewalld's IPv6 ruleset (nftables
// backend, default zone) the way out passes filter_OUTPUT, whose reject set
// holds ::ffff:0.0.0.0/96 (an IPv6 prefix that does not hold ff02::12), so
// the plan for both directions is decided, not refused: the one rich rule
// for the way in, nothing for the way out.
func TestPlanFirewalldIPv6BothDirections(t *testing.T) {
	info := &firewalld.Info{Running: true, Version: "1.3.3", Backend: "nftables", DefaultZone: "public"}
	targets := []Target{{Name: "VI_1", Iface: "eth0", Family: 6, Group: group6, Self: netip.MustParseAddr("fe80::2")}}
	plan, err := Make(load(t, "firewalld-nft-ipv6-default"), targets, Options{Firewalld: info})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Refused) > 0 {
		t.Fatalf("refused: %v", plan.Refused)
	}
	if len(plan.Checks) != 2 {
		t.Fatalf("checks %+v, want in and out", plan.Checks)
	}
	in, out := plan.Checks[0], plan.Checks[1]
	if in.Packet.Direction != eval.In || in.Before != eval.Reject || in.After != eval.Accept {
		t.Errorf("in: %s: %s -> %s (%s)", in.Label, in.Before, in.After, in.Reason)
	}
	if out.Packet.Direction != eval.Out || out.Before != eval.Accept || out.After != eval.Accept ||
		out.Rule == nil || !out.Rule.Policy || out.Rule.Chain != "filter_OUTPUT" {
		t.Errorf("out: %s: %s by %v -> %s (%s)", out.Label, out.Before, out.Rule, out.After, out.Reason)
	}
	if len(plan.Rules) != 1 || plan.Rules[0].Rich != `rule family="ipv6" destination address="ff02::12" protocol value="vrrp" accept` || plan.Rules[0].Zone != "public" {
		t.Errorf("rules %+v, want the one IPv6 rich rule in zone public", plan.Rules)
	}
}

// TestRenderJSON round-trips the report.
func TestRenderJSON(t *testing.T) {
	plan, err := Make(load(t, "nft-two-tables-reject"), multicast4(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := RenderJSON(&b, Report{Mode: "print", Status: "fix", Plan: plan}); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Schema string `json:"schema"`
		Plan   struct {
			Rules []struct {
				Shell string `json:"shell"`
			} `json:"rules"`
			Checks []struct {
				Before string `json:"before"`
				After  string `json:"after"`
			} `json:"checks"`
		} `json:"plan"`
	}
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Schema != "vrrpdoctor/fix-firewall/v1" || len(back.Plan.Rules) != 1 || !strings.HasPrefix(back.Plan.Rules[0].Shell, "nft 'insert rule") ||
		back.Plan.Checks[0].Before != "reject" || back.Plan.Checks[0].After != "accept" {
		t.Errorf("JSON %s", b.String())
	}
}

// TestStateFile: rich rules recorded and dropped; the file goes when empty.
func TestStateFile(t *testing.T) {
	s := &Session{State: filepath.Join(t.TempDir(), "sub", "state.json")}
	a := Added{Backend: Firewalld, Selector: "--zone=public", Rich: RichRule(eval.VRRPAdvert(eval.In, "eth0", netip.Addr{}, group4))}
	if err := s.record([]Added{a, a}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.load()
	if err != nil || len(got) != 1 || got[0] != a {
		t.Fatalf("load %v %v", got, err)
	}
	if err := s.record(nil, []Added{a}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.State); !os.IsNotExist(err) {
		t.Errorf("state file left: %v", err)
	}
}
