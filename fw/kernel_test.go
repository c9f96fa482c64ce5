package fw

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
	"github.com/vrrpdoctor/vrrpdoctor/fw/internal/fwlab"
	"github.com/vrrpdoctor/vrrpdoctor/fw/iptsave"
	"github.com/vrrpdoctor/vrrpdoctor/fw/nftlive"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
	"github.com/vrrpdoctor/vrrpdoctor/fw/trace"
)

// TestTraceAgainstEvaluation explains adverts on a live ruleset and traces
// real keepalived adverts from a peer namespace through it: the kernel's
// verdict and rule are reported beside the evaluator's, and agree.
func TestTraceAgainstEvaluation(t *testing.T) {
	fwlab.Require(t, map[string]string{"ip": "iproute2", "nft": "nftables", "keepalived": "keepalived"})
	host, peer := fwlab.NewPair(t)
	if _, err := host.Exec([]byte(`table inet filter {
	chain input {
		type filter hook input priority filter; policy accept;
		ip daddr 224.0.0.18 meta l4proto vrrp reject with icmpx admin-prohibited
	}
}
`), "nft", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	r, err := fwlab.NewReceiver(host.FD, "eth0", netip.MustParseAddr("224.0.0.18"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rs, err := nftlive.Read(nftlive.Options{NetNS: host.FD})
	if err != nil {
		t.Fatal(err)
	}
	l := &Live{Ruleset: rs}
	in, err := l.Explain(eval.VRRPAdvert(eval.In, "eth0", netip.Addr{}, netip.MustParseAddr("224.0.0.18")))
	if err != nil {
		t.Fatal(err)
	}
	out, err := l.Explain(eval.VRRPAdvert(eval.Out, "eth0", netip.Addr{}, netip.MustParseAddr("224.0.0.18")))
	if err != nil {
		t.Fatal(err)
	}
	peer.StartKeepalived(t, fwlab.KeepalivedConf(4, 100*time.Millisecond))
	exs := []*Explanation{in, out}
	start := time.Now()
	if err := Trace(context.Background(), l, exs, TraceOptions{NetNS: host.FD, Count: 2, Timeout: 6 * time.Second}); err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	if err := RenderText(&text, exs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("after %v:\n%s", time.Since(start), text.String())
	tr := in.Trace
	if in.Verdict != eval.Reject || tr == nil || len(tr.Packets) != 2 || tr.Verdict != eval.Reject || tr.Agreement != "agrees" {
		t.Fatalf("in: evaluator %s, trace %+v", in.Verdict, tr)
	}
	if tr.Rule == nil || tr.Rule.Handle != in.Rule.Handle || tr.Rule.Text != in.Rule.Text || tr.Rule.Owner != ruleset.OwnerHand {
		t.Fatalf("kernel's rule %+v, evaluator's %+v", tr.Rule, in.Rule)
	}
	if in.Final() != eval.Reject || Overall(exs) != eval.Reject {
		t.Fatalf("final %s, overall %s", in.Final(), Overall(exs))
	}
	// This host runs no keepalived: none of its own adverts go out.
	if o := out.Trace; o == nil || len(o.Packets) != 0 || o.Verdict != eval.Unknown || len(o.Notes) == 0 || !strings.Contains(o.Notes[0], "MASTER") {
		t.Fatalf("out: %+v", o)
	}
	if out.Final() != eval.Accept {
		t.Fatalf("out final %s: with nothing traced, the evaluation stands", out.Final())
	}
	if tables, _ := host.Tables(); len(tables) != 1 {
		t.Fatalf("tables after the trace: %v", tables)
	}
	// Once the interrupt comes (ctx cancelled), Trace reports what it has
	// and removes its tables.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(300 * time.Millisecond); cancel() }()
	if err := Trace(ctx, l, exs[:1], TraceOptions{NetNS: host.FD, Count: 1000, Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if n := len(in.Trace.Packets); n == 0 || n > 10 || !strings.Contains(strings.Join(in.Trace.Notes, " "), "stopped early") {
		t.Fatalf("cancelled trace: %d packets, notes %v", n, in.Trace.Notes)
	}
	if tables, _ := host.Tables(); len(tables) != 1 {
		t.Fatalf("tables after a cancelled trace: %v", tables)
	}
}

// TestTraceReport checks the report's verdict, agreement and notes on
// traced packets built by hand: legacy tables, mixed verdicts, an accept
// that never reached input, and what Final makes of them.
func TestTraceReport(t *testing.T) {
	rs, err := LoadFiles([]string{"../testdata/rulesets/legacy-drop-nft-accept/nft.json", "../testdata/rulesets/legacy-drop-nft-accept/iptables-legacy-save.txt"}, iptsave.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := &Live{Ruleset: rs}
	ex, err := l.Explain(eval.VRRPAdvert(eval.In, "eth0", netip.MustParseAddr("198.51.100.1"), netip.Addr{}))
	if err != nil {
		t.Fatal(err)
	}
	if ex.Verdict != eval.Drop || ex.Rule.Backend != ruleset.BackendIptablesLegacy {
		t.Fatalf("evaluator: %s by %v", ex.Verdict, ex.Rule)
	}
	c := rs.Table(ruleset.BackendNFT, ruleset.FamilyInet, "filter").Chain("input")
	acceptEv := trace.Event{Family: "inet", Table: "filter", Chain: "input", Type: trace.TypeRule, Verdict: "accept", Handle: c.Rules[0].Handle}
	pkt := func(v trace.Verdict, by *trace.Event) *trace.Packet {
		return &trace.Packet{Direction: trace.In, Src: netip.MustParseAddr("198.51.100.1"), Dst: netip.MustParseAddr("224.0.0.18"), Proto: 112, InIface: "eth0",
			Events: []trace.Event{*by}, Verdict: v, By: by}
	}
	r := report(rs, ex, []*trace.Packet{pkt(trace.Accept, &acceptEv), pkt(trace.Accept, &acceptEv)}, 0, time.Second)
	if r.Verdict != eval.Accept || r.Agreement != "agrees" || r.Rule == nil || r.Rule.Text != c.Rules[0].Text || !strings.Contains(strings.Join(r.Notes, " "), "iptables-legacy tables are loaded (ip filter)") {
		t.Fatalf("%+v", r)
	}
	ex.Trace = r
	if ex.Final() != eval.Drop {
		t.Fatalf("final %s: the legacy drop stands", ex.Final())
	}
	dropEv := acceptEv
	dropEv.Verdict = "drop"
	r = report(rs, ex, []*trace.Packet{pkt(trace.Accept, &acceptEv), pkt(trace.Drop, &dropEv)}, 2, time.Second)
	if r.Verdict != eval.Unknown || r.Agreement != "" || !strings.Contains(strings.Join(r.Notes, " "), "went different ways") || !strings.Contains(r.Notes[0], "2 trace message(s) were lost") {
		t.Fatalf("%+v", r)
	}
	ex.Trace = r
	if ex.Final() != eval.Unknown {
		t.Fatalf("final %s", ex.Final())
	}
	// An accept by a chain on prerouting only, with input chains present.
	preEv := trace.Event{Family: "inet", Table: trace.TableName, Chain: "prerouting", Type: trace.TypePolicy, Verdict: "accept"}
	p := pkt(trace.Accept, &preEv)
	p.Events = nil
	r = report(rs, ex, []*trace.Packet{p}, 0, time.Second)
	if !strings.Contains(strings.Join(r.Notes, " "), "never reached the input hook") {
		t.Fatalf("%+v", r.Notes)
	}
}
