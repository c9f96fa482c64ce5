package watch

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/diag/check"
	"github.com/vrrpdoctor/vrrpdoctor/fw"
	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
	"github.com/vrrpdoctor/vrrpdoctor/fw/iptsave"
)

// TestFirewallStateReadsOnlyWhenNeeded: the verdicts are evaluated once per
// firewall reading and set of adverts; the ruleset is let go after
// releaseAfter unchanged windows and read again only when a new peer needs
// a verdict. The saved ruleset: docker's chains with INPUT policy drop.
func TestFirewallStateReadsOnlyWhenNeeded(t *testing.T) {
	dir := "../../testdata/rulesets/docker-like-input-drop/"
	rs, err := fw.LoadFiles([]string{dir + "nft.json", dir + "iptables-nft-save.txt"}, iptsave.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reads := 0
	s := &firewallState{readLive: func(context.Context) (*fw.Live, error) {
		reads++
		return &fw.Live{Ruleset: rs}, nil
	}}
	ctx, log := context.Background(), slog.New(slog.DiscardHandler)
	report := func(peers ...string) *check.Report {
		in := check.Instance{Interface: "eth0", VRID: 51, Family: 4, Version: 3, Observed: true, SrcIP: netip.MustParseAddr("198.51.100.2")}
		for _, p := range peers {
			in.Peers = append(in.Peers, check.Peer{Advertiser: check.Advertiser{Address: netip.MustParseAddr(p), Adverts: 3, Priority: 150}})
		}
		return &check.Report{Instances: []check.Instance{in}, Interfaces: []check.Interface{{Name: "eth0", Exists: true}}}
	}

	s.refresh(ctx, t0, "/nonexistent", log) // no netfilter socket: read once
	if reads != 1 {
		t.Fatalf("%d readings at start, want 1", reads)
	}
	r := report()
	if changed := s.facts(ctx, r, t0, log); changed {
		t.Error("first evaluation reported as a change")
	}
	if v := r.Instances[0].FirewallIn; len(v) != 1 || v[0].Verdict != eval.Drop || v[0].Rule == nil {
		t.Fatalf("verdicts in %+v", v)
	}
	for i := range releaseAfter {
		s.refresh(ctx, t0, "/nonexistent", log)
		r := report()
		if s.facts(ctx, r, t0, log) || len(r.Instances[0].FirewallIn) != 1 {
			t.Fatalf("window %d: cached verdicts %+v", i, r.Instances[0].FirewallIn)
		}
	}
	if reads != 1 || s.live != nil {
		t.Fatalf("after %d unchanged windows: %d readings, ruleset kept %v", releaseAfter, reads, s.live != nil)
	}
	// A peer heard: its adverts need a verdict, so the ruleset is read
	// again, once.
	r = report("198.51.100.1")
	s.facts(ctx, r, t0, log)
	if reads != 2 {
		t.Fatalf("new peer: %d readings, want 2", reads)
	}
	if v := r.Instances[0].FirewallIn; len(v) != 1 || v[0].Src != netip.MustParseAddr("198.51.100.1") || v[0].Verdict != eval.Drop {
		t.Fatalf("verdicts for the peer %+v", v)
	}
	r = report("198.51.100.1")
	s.facts(ctx, r, t0, log)
	if reads != 2 || len(r.Instances[0].FirewallIn) != 1 {
		t.Errorf("same peer again: %d readings, verdicts %+v", reads, r.Instances[0].FirewallIn)
	}
}

// TestVerdictSignature: a firewall change that moves a verdict (a rule
// removed) unsettles the window; the same verdicts for other addresses do
// not.
func TestVerdictSignature(t *testing.T) {
	rule := &eval.RuleRef{Table: "filter", Chain: "INPUT", Text: "-A INPUT -d 224.0.0.18/32 -j DROP"}
	rep := func(src string, v eval.Verdict, r *eval.RuleRef) *check.Report {
		return &check.Report{Instances: []check.Instance{{VRID: 51, FirewallIn: []check.Verdict{{Direction: eval.In, Src: netip.MustParseAddr(src), Verdict: v, Rule: r}}}}}
	}
	a := verdictSignature(rep("198.51.100.1", eval.Drop, rule))
	if b := verdictSignature(rep("198.51.100.3", eval.Drop, rule)); a != b {
		t.Errorf("other source, same verdict: %q != %q", a, b)
	}
	if b := verdictSignature(rep("198.51.100.1", eval.Accept, nil)); a == b {
		t.Errorf("drop and accept alike: %q", a)
	}
}
