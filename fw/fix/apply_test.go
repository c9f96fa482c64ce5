package fix

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/fw"
	"github.com/vrrpdoctor/vrrpdoctor/fw/iptsave"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// fakeHost is a host whose firewall Session talks to: it records the
// commands run and serves the rulesets given in turn (the last one again
// once they run out).
type fakeHost struct {
	cmds     []string
	rulesets []*ruleset.Ruleset
	reads    int
}

func (h *fakeHost) session() *Session {
	return &Session{
		Run: func(_ context.Context, argv []string) ([]byte, error) {
			h.cmds = append(h.cmds, Shell(argv))
			return nil, nil
		},
		Read: func(context.Context) (*fw.Live, error) {
			rs := h.rulesets[min(h.reads, len(h.rulesets)-1)]
			h.reads++
			return &fw.Live{Ruleset: rs}, nil
		},
	}
}

// nftInput is an inet filter input chain holding rules (nft JSON
// expressions), handles from 2.
func nftInput(t *testing.T, rules ...string) *ruleset.Ruleset {
	t.Helper()
	doc := `{"nftables":[{"table":{"family":"inet","name":"filter","handle":1}},{"chain":{"family":"inet","table":"filter","name":"input","handle":1,"type":"filter","hook":"input","prio":0,"policy":"accept"}}`
	for i, r := range rules {
		doc += fmt.Sprintf(`,{"rule":{"family":"inet","table":"filter","chain":"input","handle":%d,%s}}`, i+2, r)
	}
	rs, err := fw.Parse("test", []byte(doc+"]}"), iptsave.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

const (
	dropVRRP  = `"expr":[{"match":{"op":"==","left":{"meta":{"key":"l4proto"}},"right":"vrrp"}},{"drop":null}]`
	markedAcc = `"comment":"vrrpdoctor: allow VRRP","expr":[{"match":{"op":"==","left":{"meta":{"key":"iifname"}},"right":"eth0"}},{"match":{"op":"==","left":{"meta":{"key":"l4proto"}},"right":"vrrp"}},{"accept":null}]`
	// markedEth9 is an older fix for another interface.
	markedEth9 = `"comment":"vrrpdoctor: allow VRRP","expr":[{"match":{"op":"==","left":{"meta":{"key":"iifname"}},"right":"eth9"}},{"match":{"op":"==","left":{"meta":{"key":"l4proto"}},"right":"vrrp"}},{"accept":null}]`
)

// TestApplyRollsBack: when the live ruleset read after applying still drops
// the adverts (here the rule landed after the drop), Apply removes the rule
// it added — by handle, and only that one — and reports the rollback.
func TestApplyRollsBack(t *testing.T) {
	before := nftInput(t, markedEth9, dropVRRP)
	plan, err := Make(before, multicast4(), Options{})
	if err != nil || len(plan.Rules) != 1 {
		t.Fatalf("plan %+v, %v", plan, err)
	}
	// Handle 2 is an older marked rule that was there before this run.
	h := &fakeHost{rulesets: []*ruleset.Ruleset{before, nftInput(t, markedEth9, dropVRRP, markedAcc)}}
	out, err := h.session().Apply(context.Background(), plan, false)
	if err == nil || !strings.Contains(err.Error(), "rolled back") || out == nil || !out.RolledBack {
		t.Fatalf("apply: %v, %+v", err, out)
	}
	want := []string{
		Shell(plan.Rules[0].Command),
		"nft 'delete rule inet filter input handle 4'",
	}
	if !slices.Equal(h.cmds, want) {
		t.Errorf("commands\n%s\nwant\n%s", strings.Join(h.cmds, "\n"), strings.Join(want, "\n"))
	}
}

// TestApplyVerifies: a rule that lands where planned passes the live check.
func TestApplyVerifies(t *testing.T) {
	plan, err := Make(nftInput(t, dropVRRP), multicast4(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := &fakeHost{rulesets: []*ruleset.Ruleset{nftInput(t, dropVRRP), nftInput(t, markedAcc, dropVRRP)}}
	out, err := h.session().Apply(context.Background(), plan, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Added) != 1 || out.Added[0].Handle != 2 || len(h.cmds) != 1 {
		t.Errorf("outcome %+v, commands %v", out, h.cmds)
	}
}

// TestApplyRefusedPlan: a refused plan is never applied.
func TestApplyRefusedPlan(t *testing.T) {
	h := &fakeHost{rulesets: []*ruleset.Ruleset{nftInput(t, dropVRRP)}}
	if _, err := h.session().Apply(context.Background(), &Plan{Refused: []string{"no"}}, false); err == nil || len(h.cmds) != 0 {
		t.Errorf("err %v, commands %v", err, h.cmds)
	}
}

// TestUndoRemovesOnlyMarked: nftables rules by handle, iptables rules by
// position from the last, and nothing without the marker.
func TestUndoRemovesOnlyMarked(t *testing.T) {
	rs := nftInput(t, markedAcc, dropVRRP, markedAcc)
	ipt, err := fw.Parse("save", []byte("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"+
		"-A INPUT -i eth0 -d 224.0.0.18/32 -p vrrp -m comment --comment \"vrrpdoctor: allow VRRP\" -j ACCEPT\n"+
		"-A INPUT -p vrrp -j DROP\n"+
		"-A INPUT -i eth0 -s 198.51.100.1/32 -p vrrp -m comment --comment \"vrrpdoctor: allow VRRP\" -j ACCEPT\n"+
		"-A INPUT -p tcp -m comment --comment \"someone else\" -j ACCEPT\nCOMMIT\n"),
		iptsave.Options{Backend: ruleset.BackendIptablesLegacy, Family: ruleset.FamilyIP})
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Add(ipt); err != nil {
		t.Fatal(err)
	}
	h := &fakeHost{rulesets: []*ruleset.Ruleset{rs}}
	out, err := h.session().Undo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"nft 'delete rule inet filter input handle 4'",
		"iptables-legacy -w -t filter -D INPUT 3",
		"nft 'delete rule inet filter input handle 2'",
		"iptables-legacy -w -t filter -D INPUT 1",
	}
	if !slices.Equal(h.cmds, want) || len(out.Added) != 4 {
		t.Errorf("commands\n%s\nwant\n%s", strings.Join(h.cmds, "\n"), strings.Join(want, "\n"))
	}
}
