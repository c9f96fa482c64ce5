package fw

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
	"github.com/vrrpdoctor/vrrpdoctor/fw/trace"
)

// TraceOptions says how long to trace.
type TraceOptions struct {
	// Count is how many adverts to trace per explanation; 0 means 3.
	Count int
	// Timeout bounds the whole trace; 0 means 10s.
	Timeout time.Duration
	// NetNS is an open descriptor of the network namespace to trace in;
	// 0 is the current one (which Read read).
	NetNS int
}

// TraceReport is what the kernel did with real adverts matching one
// explanation's packet, from an nftables trace.
type TraceReport struct {
	// Packets are the adverts traced, in order.
	Packets []TracedPacket `json:"packets"`
	// Verdict is the kernel's: that of the adverts traced when they all
	// went the same way (reject when the rule that dropped them is a
	// reject), unknown when they went different ways or none was seen.
	Verdict eval.Verdict `json:"verdict"`
	// Rule is the kernel's deciding rule (for an accept, the accept of
	// the last nftables base chain the last advert met), looked up in the
	// ruleset read.
	Rule *eval.RuleRef `json:"rule"`
	// Events are the last advert's way through nftables, as the kernel
	// reported it.
	Events []trace.Event `json:"events"`
	// Agreement is "agrees", "disagrees" or "" (nothing to compare)
	// between the kernel and the evaluator.
	Agreement string `json:"agreement,omitempty"`
	// Notes say what a trace cannot show here (iptables-legacy tables,
	// adverts that never reached the input hook, lost events, ...).
	Notes []string `json:"notes,omitempty"`
}

// TracedPacket is one advert the kernel traced.
type TracedPacket struct {
	Time    time.Time     `json:"time"`
	Src     string        `json:"src"`
	Dst     string        `json:"dst"`
	VRRP    *trace.VRRP   `json:"vrrp,omitempty"`
	Verdict trace.Verdict `json:"verdict"`
	By      string        `json:"by,omitempty"`
}

// Trace watches live adverts with an nftables trace (trace.Start) in the
// network namespace the ruleset was read from, until opts.Count adverts
// matching each explanation's packet were traced or opts.Timeout passed,
// and sets each explanation's Trace. The tracer's tables are removed
// before Trace returns, also when ctx is cancelled (Ctrl-C): what was
// traced until then is reported. It needs CAP_NET_ADMIN.
func Trace(ctx context.Context, l *Live, exs []*Explanation, opts TraceOptions) error {
	if opts.Count <= 0 {
		opts.Count = 3
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	var ingress []string
	seen := map[string]bool{}
	for _, ex := range exs {
		if ex.Packet.Direction == eval.In && !seen[ex.Packet.InIface] {
			seen[ex.Packet.InIface] = true
			ingress = append(ingress, ex.Packet.InIface)
		}
	}
	tr, err := trace.Start(trace.Options{NetNS: opts.NetNS, IngressDevices: ingress})
	if err != nil {
		return err
	}
	defer tr.Close()
	got := make([][]*trace.Packet, len(exs))
	tctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	var waitErr error
	for !enough(got, opts.Count) {
		p, err := tr.Next(tctx)
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				waitErr = err
			}
			break
		}
		for i, ex := range exs {
			if matches(ex.Packet, p) && len(got[i]) < opts.Count {
				got[i] = append(got[i], p)
			}
		}
	}
	lost := tr.Lost()
	if err := tr.Close(); err != nil {
		return err
	}
	for i, ex := range exs {
		ex.Trace = report(l.Ruleset, ex, got[i], lost, opts.Timeout)
		if waitErr != nil {
			ex.Trace.Notes = append(ex.Trace.Notes, "tracing stopped early: "+waitErr.Error())
		}
	}
	return nil
}

func enough(got [][]*trace.Packet, n int) bool {
	for _, g := range got {
		if len(g) < n {
			return false
		}
	}
	return true
}

// matches reports whether a traced packet is the explanation's advert.
func matches(e eval.Packet, p *trace.Packet) bool {
	if string(p.Direction) != string(e.Direction) || p.Dst != e.Dst || p.Proto != 112 {
		return false
	}
	if e.Src.IsValid() && p.Src != e.Src {
		return false
	}
	if e.Direction == eval.In {
		return p.InIface == e.InIface
	}
	return p.OutIface == e.OutIface
}

// report builds the TraceReport of one explanation.
func report(rs *ruleset.Ruleset, ex *Explanation, ps []*trace.Packet, lost int, timeout time.Duration) *TraceReport {
	r := &TraceReport{Packets: []TracedPacket{}, Verdict: eval.Unknown, Events: []trace.Event{}}
	if lost > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d trace message(s) were lost or could not be read", lost))
	}
	if legacy := legacyTables(rs, ex.Packet.Family); len(legacy) > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("iptables-legacy tables are loaded (%s): their rules never show in an nftables trace, and they may drop what every nftables chain accepted", strings.Join(legacy, ", ")))
	}
	if len(ps) == 0 {
		what := "no advert"
		if ex.Packet.Direction == eval.Out {
			what = "no advert of this host (it sends adverts only while it is MASTER)"
		}
		r.Notes = append(r.Notes, fmt.Sprintf("%s matching the packet was traced within %s", what, timeout))
		return r
	}
	counts := map[trace.Verdict]int{}
	for _, p := range ps {
		tp := TracedPacket{Time: p.Time, Src: p.Src.String(), Dst: p.Dst.String(), VRRP: p.VRRP, Verdict: p.Verdict}
		if p.By != nil {
			tp.By = p.By.String()
		}
		r.Packets = append(r.Packets, tp)
		counts[p.Verdict]++
	}
	last := ps[len(ps)-1]
	r.Events = last.Events
	if len(counts) > 1 {
		var parts []string
		for v, n := range counts {
			parts = append(parts, fmt.Sprintf("%d %s", n, v))
		}
		r.Notes = append(r.Notes, "the adverts traced went different ways ("+strings.Join(parts, ", ")+"): the verdict depends on something that changes (a rate limit, a set that changed)")
	} else {
		switch last.Verdict {
		case trace.Accept:
			r.Verdict = eval.Accept
		case trace.Drop:
			r.Verdict = eval.Drop
		default:
			r.Notes = append(r.Notes, fmt.Sprintf("the kernel %s the adverts: a user-space program or another path decides", map[trace.Verdict]string{trace.Queue: "queued", trace.Stolen: "took over (stolen)"}[last.Verdict]))
		}
	}
	if last.By != nil {
		ref, isReject := lookup(rs, last.By)
		r.Rule = ref
		if r.Verdict == eval.Drop && isReject {
			r.Verdict = eval.Reject
		}
	}
	if ex.Packet.Direction == eval.In && last.Verdict == trace.Accept && !reachedInput(rs, last) && hasInputChains(rs, ex.Packet.Family) {
		r.Notes = append(r.Notes, "the adverts never reached the input hook: the kernel delivers multicast locally only on an interface where a socket joined the group (is keepalived running on this host?), and unicast only to this host's own addresses")
	}
	r.Agreement = agreement(ex.Result, r)
	return r
}

// lookup finds the rule (or policy) of a trace event in the ruleset.
func lookup(rs *ruleset.Ruleset, e *trace.Event) (*eval.RuleRef, bool) {
	ref := &eval.RuleRef{Backend: ruleset.BackendNFT, Family: e.Family, Table: e.Table, Chain: e.Chain, Handle: e.Handle, Text: e.String()}
	var t *ruleset.Table
	for _, tb := range rs.Tables {
		if tb.Backend != ruleset.BackendIptablesLegacy && tb.Family == e.Family && tb.Name == e.Table {
			t = tb
		}
	}
	if t == nil {
		return ref, false
	}
	ref.Backend = t.Backend
	c := t.Chain(e.Chain)
	if c == nil {
		return ref, false
	}
	if e.Type == trace.TypePolicy {
		ref.Handle, ref.Policy, ref.Text = 0, true, "policy "+e.Verdict
		ref.Owner, _ = ruleset.OwnerOf(t, c, nil)
		return ref, false
	}
	for _, rule := range c.Rules {
		if rule.Handle == e.Handle {
			ref.Position, ref.Text = rule.Position, rule.Text
			ref.Owner, _ = ruleset.OwnerOf(t, c, rule)
			for _, x := range rule.Exprs {
				if _, ok := x.(ruleset.Reject); ok {
					return ref, true
				}
			}
			return ref, false
		}
	}
	return ref, false
}

func legacyTables(rs *ruleset.Ruleset, family int) []string {
	var out []string
	for _, t := range rs.Tables {
		if t.Backend == ruleset.BackendIptablesLegacy && ((t.Family == ruleset.FamilyIP && family == 4) || (t.Family == ruleset.FamilyIP6 && family == 6)) {
			out = append(out, string(t.Family)+" "+t.Name)
		}
	}
	return out
}

// baseHook is the hook of a base chain, or "" for a regular chain.
func baseHook(rs *ruleset.Ruleset, fam ruleset.Family, table, chain string) ruleset.Hook {
	for _, t := range rs.Tables {
		if t.Backend != ruleset.BackendIptablesLegacy && t.Family == fam && t.Name == table {
			if c := t.Chain(chain); c != nil && c.Base != nil {
				return c.Base.Hook
			}
		}
	}
	return ""
}

// reachedInput reports whether a traced packet met a base chain on the
// input hook.
func reachedInput(rs *ruleset.Ruleset, p *trace.Packet) bool {
	for _, e := range p.Events {
		if baseHook(rs, e.Family, e.Table, e.Chain) == ruleset.HookInput {
			return true
		}
	}
	return false
}

func hasInputChains(rs *ruleset.Ruleset, family int) bool {
	for _, t := range rs.Tables {
		if t.Backend == ruleset.BackendIptablesLegacy || t.Name == trace.TableName {
			continue
		}
		fam := t.Family == ruleset.FamilyInet || (t.Family == ruleset.FamilyIP && family == 4) || (t.Family == ruleset.FamilyIP6 && family == 6)
		for _, c := range t.Chains {
			if fam && c.Base != nil && c.Base.Hook == ruleset.HookInput {
				return true
			}
		}
	}
	return false
}

// agreement compares the kernel's answer with the evaluator's.
func agreement(res eval.Result, r *TraceReport) string {
	if r.Verdict == eval.Unknown || res.Verdict == eval.Unknown {
		return ""
	}
	legacy := res.Rule != nil && res.Rule.Backend == ruleset.BackendIptablesLegacy
	drop := func(v eval.Verdict) bool { return v == eval.Drop || v == eval.Reject }
	switch {
	case drop(r.Verdict) && drop(res.Verdict):
		if sameRef(res.Rule, r.Rule) {
			return "agrees"
		}
	case r.Verdict == eval.Accept && res.Verdict == eval.Accept:
		return "agrees"
	case r.Verdict == eval.Accept && drop(res.Verdict) && legacy:
		return "agrees" // the drop is in iptables-legacy, which no trace shows
	}
	return "disagrees"
}

func sameRef(a, b *eval.RuleRef) bool {
	if a == nil || b == nil {
		return false
	}
	return a.Family == b.Family && a.Table == b.Table && a.Chain == b.Chain && a.Policy == b.Policy && (a.Policy || a.Handle == b.Handle)
}

// Final is the verdict to act on given the evaluator's result: the
// kernel's when it saw the adverts dropped; an accept the evaluator also
// found; the evaluator's drop by an iptables-legacy rule (no trace shows
// those); otherwise unknown, for the two disagree or the trace is not
// conclusive.
func (r *TraceReport) Final(res eval.Result) eval.Verdict {
	switch {
	case r.Verdict == eval.Drop || r.Verdict == eval.Reject:
		return r.Verdict
	case len(r.Packets) == 0:
		return res.Verdict
	case r.Verdict == eval.Accept && res.Verdict == eval.Accept:
		return eval.Accept
	case r.Verdict == eval.Accept && r.Agreement == "agrees":
		return res.Verdict // dropped by iptables-legacy
	}
	return eval.Unknown
}

// renderTrace writes the kernel's answer below an explanation.
func renderTrace(sb *strings.Builder, ex *Explanation) {
	r := ex.Trace
	fmt.Fprintf(sb, "Kernel trace (nftables, %d advert(s)):", len(r.Packets))
	if len(r.Packets) > 0 {
		fmt.Fprintf(sb, " %s", strings.ToUpper(string(r.Verdict)))
		if r.Rule != nil {
			fmt.Fprintf(sb, " by %s %s %s %s%s:\n    %s", r.Rule.Backend, r.Rule.Family, r.Rule.Table, r.Rule.Chain, ident(*r.Rule), r.Rule.Text)
		}
	}
	sb.WriteString("\n")
	for i, p := range r.Packets {
		vr := ""
		if p.VRRP != nil {
			vr = fmt.Sprintf(" (VRRPv%d VRID %d priority %d)", p.VRRP.Version, p.VRRP.VRID, p.VRRP.Priority)
		}
		fmt.Fprintf(sb, "  %d. %s %s -> %s%s: %s\n", i+1, p.Time.Format("15:04:05.000"), p.Src, p.Dst, vr, strings.ToUpper(string(p.Verdict)))
	}
	switch r.Agreement {
	case "agrees":
		sb.WriteString("  The kernel agrees with the evaluation.\n")
	case "disagrees":
		sb.WriteString("  The kernel DISAGREES with the evaluation: trust the kernel, and please report the ruleset.\n")
	}
	for _, n := range r.Notes {
		fmt.Fprintf(sb, "  Note: %s\n", n)
	}
}
