package fix

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables/expr"

	"github.com/vrrpdoctor/vrrpdoctor/fw"
	"github.com/vrrpdoctor/vrrpdoctor/fw/firewalld"
	"github.com/vrrpdoctor/vrrpdoctor/fw/iptsave"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// errKilled stands for the process being killed at a step.
var errKilled = errors.New("killed")

// killAt returns a Step hook that panics with errKilled at the n-th step
// (from 1), and the list of steps seen.
func killAt(n int) (func(string), *[]string) {
	var seen []string
	return func(what string) {
		seen = append(seen, what)
		if len(seen) == n {
			panic(errKilled)
		}
	}, &seen
}

// run calls f and reports whether it was "killed".
func run(f func()) (killed bool) {
	defer func() {
		if r := recover(); r != nil {
			if r != errKilled {
				panic(r)
			}
			killed = true
		}
	}()
	f()
	return false
}

// TestApplyKilledFirewalld: a rich rule is in the state file before it is
// added, so whichever step the run is killed at, --undo removes every rich
// rule that may exist, and the run left behind is named.
func TestApplyKilledFirewalld(t *testing.T) {
	info := &firewalld.Info{Running: true, Version: "1.3.3", Backend: "nftables", DefaultZone: "public"}
	rs := load(t, "firewalld-nft-default")
	plan, err := Make(rs, multicast4(), Options{Firewalld: info})
	if err != nil || len(plan.Rules) != 1 {
		t.Fatalf("plan %+v %v", plan, err)
	}
	for n := 1; ; n++ {
		state := filepath.Join(t.TempDir(), "state.json")
		h := &fakeHost{rulesets: []*ruleset.Ruleset{rs}}
		s := h.session()
		s.State = state
		var seen *[]string
		s.Step, seen = killAt(n)
		killed := run(func() { _, _ = s.Apply(context.Background(), plan, false) })
		if !killed {
			if n < 3 {
				t.Fatalf("only %d steps: %v", n-1, *seen)
			}
			break
		}
		added := slices.ContainsFunc(h.cmds, func(c string) bool { return strings.Contains(c, "--add-rich-rule") })
		st, err := s.readState()
		if err != nil {
			t.Fatal(err)
		}
		if added && len(st.Firewalld) != 1 {
			t.Errorf("killed at %q: a rich rule was added but the state file holds %v", (*seen)[n-1], st.Firewalld)
		}
		if n > 1 && st.Running == "" {
			t.Errorf("killed at %q: the state file does not say a run was interrupted", (*seen)[n-1])
		}
		// The next --undo removes whatever may have been added.
		h.cmds = nil
		s.Step = nil
		out, err := s.Undo(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if added && !slices.ContainsFunc(h.cmds, func(c string) bool { return strings.Contains(c, "--permanent --zone=public --remove-rich-rule") }) {
			t.Errorf("killed at %q: undo ran %v", (*seen)[n-1], h.cmds)
		}
		if n > 1 && (len(out.Notes) == 0 || !strings.Contains(out.Notes[0], "interrupted")) {
			t.Errorf("killed at %q: undo notes %v", (*seen)[n-1], out.Notes)
		}
		if _, err := os.Stat(state); !os.IsNotExist(err) {
			t.Errorf("killed at %q: state file left after undo (%v)", (*seen)[n-1], err)
		}
	}
}

// fakeBatch records the batches of NFTRules and Restore.
type fakeBatch struct {
	adds    [][]Rule
	dels    [][]Added
	restore []string
}

func (f *fakeBatch) Add(rs []Rule) error     { f.adds = append(f.adds, rs); return nil }
func (f *fakeBatch) Delete(as []Added) error { f.dels = append(f.dels, as); return nil }

// TestApplyOneTransactionPerBackend: two nftables rules go in one netlink
// batch, two iptables-legacy rules in one iptables-legacy-restore commit
// (the comment quoted as iptables-restore reads it), and undo likewise.
func TestApplyOneTransactionPerBackend(t *testing.T) {
	rs := nftInput(t, dropVRRP)
	ipt, err := fw.Parse("save", []byte("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n"),
		iptsave.Options{Backend: ruleset.BackendIptablesLegacy, Family: ruleset.FamilyIP})
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Add(ipt); err != nil {
		t.Fatal(err)
	}
	targets := []Target{{Iface: "eth0", Family: 4, Group: group4}, {Iface: "eth1", Family: 4, Group: group4}}
	plan, err := Make(rs, targets, Options{})
	if err != nil || len(plan.Refused) > 0 {
		t.Fatalf("plan %+v %v", plan, err)
	}
	h := &fakeHost{rulesets: []*ruleset.Ruleset{rs}}
	s := h.session()
	fb := &fakeBatch{}
	s.NFT = fb
	s.Restore = func(_ context.Context, argv []string, in []byte) ([]byte, error) {
		fb.restore = append(fb.restore, strings.Join(argv, " ")+"\n"+string(in))
		return nil, nil
	}
	var steps []string
	s.Step = func(w string) { steps = append(steps, w) }
	// The fake host's ruleset does not change: the check rolls back.
	_, err = s.Apply(context.Background(), plan, false)
	if err == nil || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("apply: %v", err)
	}
	if len(fb.adds) != 1 || len(fb.adds[0]) != 2 {
		t.Errorf("nftables batches %v", fb.adds)
	}
	want := "iptables-legacy-restore --noflush -w\n*filter\n" +
		`-A OUTPUT -o eth0 -d 224.0.0.18 -p vrrp -m comment --comment "vrrpdoctor: allow VRRP" -j ACCEPT` + "\n" +
		`-A OUTPUT -o eth1 -d 224.0.0.18 -p vrrp -m comment --comment "vrrpdoctor: allow VRRP" -j ACCEPT` + "\nCOMMIT\n"
	if len(fb.restore) != 1 || fb.restore[0] != want {
		t.Errorf("restore runs\n%q\nwant\n%q", fb.restore, want)
	}
	if len(h.cmds) != 0 {
		t.Errorf("commands run one by one: %v", h.cmds)
	}
	if want := []string{"nftables: add 2 rule(s) in one transaction", "iptables-legacy-restore: 2 change(s) in one commit"}; !slices.Equal(steps, want) {
		t.Errorf("steps %q, want %q", steps, want)
	}
}

// TestApplyRefusesUnread: a ruleset read with gaps (a warning of the
// reading, an incomplete rule) is not changed without force.
func TestApplyRefusesUnread(t *testing.T) {
	rs := nftInput(t, dropVRRP)
	plan, err := Make(rs, multicast4(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	incomplete := nftInput(t, dropVRRP)
	incomplete.Tables[0].Chains[0].Rules[0].Incomplete = "expression byteorder not decoded"
	for _, live := range []*fw.Live{
		{Ruleset: rs, Warnings: []string{"iptables-nft-save: not installed"}},
		{Ruleset: incomplete},
	} {
		h := &fakeHost{}
		s := h.session()
		s.Read = func(context.Context) (*fw.Live, error) { return live, nil }
		_, err := s.Apply(context.Background(), plan, false)
		if err == nil || !strings.Contains(err.Error(), "not read in full") || !strings.Contains(err.Error(), "--force") || len(h.cmds) != 0 {
			t.Errorf("without force: %v, commands %v", err, h.cmds)
		}
		_, err = s.Apply(context.Background(), plan, true)
		if len(h.cmds) != 1 {
			t.Errorf("with force: %v, commands %v", err, h.cmds)
		}
	}
}

// TestForceNeverClaimsNothingToDo: with --force, an advert whose verdict
// stays unknown and before which no rule could be placed is refused — it
// used to give an empty plan, "nothing to do: the firewall already lets
// these VRRP adverts through".
func TestForceNeverClaimsNothingToDo(t *testing.T) {
	rs := nftInput(t, dropVRRP)
	rs.Tables[0].Chains[0].Rules[0].Incomplete = "xt match comment not evaluated"
	plan, err := Make(rs, multicast4(), Options{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range plan.Checks {
		if c.After != "accept" && len(plan.Rules) == 0 && len(plan.Refused) == 0 {
			t.Errorf("%s: %s, no rule and no refusal: the plan says nothing to do", c.Label, c.After)
		}
	}
	if plan.NothingToDo() {
		t.Errorf("nothing to do on an undecidable drop: %+v", plan)
	}
}

// TestPlanNeverWidens: on every saved ruleset, for multicast and unicast
// targets of both families, every rule planned matches IP protocol 112,
// the target's interface, and only its group or its peers and itself —
// in the command printed, in the model, and in the netlink expressions
// that --apply sends.
func TestPlanNeverWidens(t *testing.T) {
	self6, peer6 := netip.MustParseAddr("2001:db8::2"), netip.MustParseAddr("2001:db8::1")
	targetSets := [][]Target{
		{{Iface: "eth0", Family: 4, Group: group4, Self: self4}},
		{{Iface: "eth0", Family: 4, Peers: []netip.Addr{peer4}, Self: self4}},
		{{Iface: "eth0", Family: 6, Group: group6, Self: netip.MustParseAddr("fe80::2")}},
		{{Iface: "eth0", Family: 6, Peers: []netip.Addr{peer6}, Self: self6}},
	}
	ents, err := os.ReadDir(filepath.Join("..", "..", "testdata", "rulesets"))
	if err != nil {
		t.Fatal(err)
	}
	rules := 0
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		rs := load(t, e.Name())
		for _, ts := range targetSets {
			info := &firewalld.Info{Running: true, Version: "1.3.3", Backend: "nftables", DefaultZone: "public"}
			plan, err := Make(rs, ts, Options{Force: true, Firewalld: info})
			if err != nil {
				t.Fatalf("%s: %v", e.Name(), err)
			}
			tg := ts[0]
			allowed := append([]netip.Addr{tg.Group, tg.Self}, tg.Peers...)
			for _, r := range plan.Rules {
				rules++
				if msg := widens(r, tg, allowed); msg != "" {
					t.Errorf("%s, %+v: %s: %s", e.Name(), tg, msg, Shell(r.Command))
				}
			}
		}
	}
	if rules < 20 {
		t.Errorf("only %d rules planned in all: the test checks too little", rules)
	}
}

// widens says how rule r is wider than VRRP of target tg ("" if it is not).
func widens(r Rule, tg Target, allowed []netip.Addr) string {
	okAddr := func(s string) bool {
		a, err := netip.ParseAddr(s)
		return err == nil && a.IsValid() && slices.Contains(allowed, a)
	}
	if r.Backend == Firewalld {
		if !strings.Contains(r.Rich, `protocol value="vrrp"`) || !strings.HasSuffix(r.Rich, " accept") {
			return "rich rule not limited to VRRP"
		}
		for _, k := range []string{`destination address="`, `source address="`} {
			if _, rest, ok := strings.Cut(r.Rich, k); ok {
				if a, _, _ := strings.Cut(rest, `"`); !okAddr(a) {
					return "rich rule address " + a
				}
			}
		}
		if !strings.Contains(r.Rich, `destination address="`) && !strings.Contains(r.Rich, `source address="`) {
			return "rich rule matches no address"
		}
		return ""
	}
	// The model.
	var proto, dst, iface bool
	for _, x := range r.model.Exprs {
		m, ok := x.(ruleset.Match)
		if !ok {
			continue
		}
		c, _ := m.Right.(ruleset.Const)
		switch l := m.Left.(type) {
		case ruleset.Meta:
			switch l.Key {
			case "l4proto":
				proto = c.Value == "vrrp"
			case "iifname", "oifname":
				iface = c.Value == tg.Iface
			}
		case ruleset.Payload:
			if !okAddr(c.Value) {
				return "model address " + c.Value
			}
			dst = dst || l.Field == "daddr"
		}
	}
	if !proto || !dst || (!iface && r.Family != ruleset.FamilyNetdev) {
		return "model does not match protocol 112, a destination and the interface"
	}
	// What goes live.
	switch r.Backend {
	case NFT:
		ex := nftExprs(r.packet, r.Family)
		var l4 bool
		for i, x := range ex {
			if m, ok := x.(*expr.Meta); ok && m.Key == expr.MetaKeyL4PROTO {
				c, ok := ex[i+1].(*expr.Cmp)
				l4 = ok && c.Op == expr.CmpOpEq && bytes.Equal(c.Data, []byte{112})
			}
			if p, ok := x.(*expr.Payload); ok {
				c := ex[i+1].(*expr.Cmp)
				a, ok := netip.AddrFromSlice(c.Data)
				if !ok || p.Len != uint32(len(c.Data)) || !slices.Contains(allowed, a) {
					return "netlink payload match " + a.String()
				}
			}
		}
		if !l4 {
			return "netlink rule without protocol 112"
		}
		if v, ok := ex[len(ex)-1].(*expr.Verdict); !ok || v.Kind != expr.VerdictAccept {
			return "netlink rule does not end in accept"
		}
	case IptablesNFT, IptablesLegacy:
		cmd := r.Command
		if !slices.Contains(cmd, "vrrp") || !slices.Contains(cmd, "ACCEPT") {
			return "iptables rule not limited to vrrp"
		}
		i := slices.Index(cmd, "-d")
		if i < 0 || !okAddr(cmd[i+1]) {
			return "iptables destination"
		}
		if i := slices.Index(cmd, "-s"); i >= 0 && !okAddr(cmd[i+1]) {
			return "iptables source"
		}
	}
	return ""
}
