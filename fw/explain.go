// Package fw inspects a host's firewall for VRRP: it reads the ruleset
// (saved files or the live network namespace: nftables, iptables-nft,
// iptables-legacy, firewalld) and explains what happens to an advert — the
// verdict, the deciding rule with the tool that owns it, the rules on the
// way, and where the fix belongs — and, live, asks the kernel itself with an
// nftables trace of real adverts (Trace).
//
// Read and Live.Explain are the library behind `vrrpdoctor fw explain`;
// RenderText and RenderJSON print their results.
package fw

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
	"github.com/vrrpdoctor/vrrpdoctor/fw/firewalld"
	"github.com/vrrpdoctor/vrrpdoctor/fw/iptsave"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// Options says which ruleset to read and which packet to explain.
type Options struct {
	// Rulesets are saved rulesets of one host: `nft -j list ruleset` JSON
	// and iptables-save / ip6tables-save output of either flavour, format
	// detected. Empty means: read the live ruleset of the current network
	// namespace with Live.
	Rulesets []string
	// Iptables overrides what headerless iptables-save files are
	// (family, flavour).
	Iptables iptsave.Options
	// Packet is the advert to explain (see eval.VRRPAdvert); Explain only.
	Packet eval.Packet
	// Live reads the live ruleset when Rulesets is empty; nil means ReadLive.
	Live func(ctx context.Context) (*Live, error)
}

// Explanation is the answer for one packet.
type Explanation struct {
	eval.Result
	// Label names the advert for a person ("VI_1: adverts from the
	// group's other routers, in on eth0"); set by the caller.
	Label string
	// Advice says where the fix belongs (set when firewalld owns the
	// deciding rule).
	Advice []string
	// Trace is what the kernel did with real adverts (Trace only).
	Trace *TraceReport
	// Sources lists where the ruleset was read from.
	Sources []string
	// Backends lists the backends that have tables.
	Backends []ruleset.Backend
	// Warnings are things about the ruleset the reader must know (for
	// example rules a reader could not decode in full).
	Warnings []string
	// Firewalld is what a running firewalld said (live reading only).
	Firewalld *firewalld.Info
}

// Read reads the ruleset once: the saved files of opts.Rulesets, or else the
// live ruleset of the current network namespace.
func Read(ctx context.Context, opts Options) (*Live, error) {
	if len(opts.Rulesets) > 0 {
		rs, err := LoadFiles(opts.Rulesets, opts.Iptables)
		if err != nil {
			return nil, err
		}
		return &Live{Ruleset: rs}, nil
	}
	read := opts.Live
	if read == nil {
		read = ReadLive
	}
	return read(ctx)
}

// Explain walks the packet through the ruleset read.
func (l *Live) Explain(p eval.Packet) (*Explanation, error) {
	res, err := eval.Evaluate(l.Ruleset, p)
	if err != nil {
		return nil, err
	}
	return &Explanation{Result: res, Advice: advise(res, l.Firewalld), Sources: l.Ruleset.Sources, Backends: l.Ruleset.Backends(), Warnings: l.Warnings, Firewalld: l.Firewalld}, nil
}

// Explain reads the ruleset and walks opts.Packet through it.
func Explain(ctx context.Context, opts Options) (*Explanation, error) {
	l, err := Read(ctx, opts)
	if err != nil {
		return nil, err
	}
	return l.Explain(opts.Packet)
}

// Final is the verdict to act on: the evaluator's, unless a kernel trace
// says otherwise (see TraceReport.Final).
func (ex *Explanation) Final() eval.Verdict {
	if ex.Trace != nil {
		return ex.Trace.Final(ex.Result)
	}
	return ex.Verdict
}

// Overall is the worst final verdict of several explanations: a drop or
// reject anywhere, else unknown anywhere, else accept.
func Overall(exs []*Explanation) eval.Verdict {
	v := eval.Accept
	for _, ex := range exs {
		switch f := ex.Final(); f {
		case eval.Drop, eval.Reject:
			return f
		case eval.Unknown:
			v = eval.Unknown
		}
	}
	return v
}

// jsonReport is the JSON shape: the overall verdict, one object per advert
// explained, and what the ruleset was read from.
type jsonReport struct {
	Verdict     eval.Verdict      `json:"verdict"`
	Evaluations []jsonExplanation `json:"evaluations"`
	Sources     []string          `json:"sources"`
	Backends    []ruleset.Backend `json:"backends"`
	Warnings    []string          `json:"warnings,omitempty"`
	Firewalld   *firewalld.Info   `json:"firewalld,omitempty"`
}

// jsonExplanation is one advert: verdict, rule {backend, family, table,
// chain, handle, text, owner}, path[], unknown_reason, plus context.
type jsonExplanation struct {
	Label         string        `json:"label,omitempty"`
	Packet        jsonPacket    `json:"packet"`
	Verdict       eval.Verdict  `json:"verdict"`
	Rule          *eval.RuleRef `json:"rule"`
	Path          []eval.Step   `json:"path"`
	UnknownReason string        `json:"unknown_reason,omitempty"`
	Notes         []string      `json:"notes,omitempty"`
	Advice        []string      `json:"advice,omitempty"`
	Trace         *TraceReport  `json:"trace,omitempty"`
	Final         eval.Verdict  `json:"final_verdict"`
}

type jsonPacket struct {
	Text      string `json:"text"`
	Direction string `json:"direction"`
	Family    int    `json:"family"`
	Interface string `json:"interface"`
	Src       string `json:"src,omitempty"`
	Dst       string `json:"dst"`
}

func packetJSON(p eval.Packet) jsonPacket {
	j := jsonPacket{Text: p.String(), Direction: string(p.Direction), Family: p.Family, Interface: p.InIface, Dst: p.Dst.String()}
	if p.Direction == eval.Out {
		j.Interface = p.OutIface
	}
	if p.Src.IsValid() {
		j.Src = p.Src.String()
	}
	return j
}

// RenderJSON writes the explanations (of adverts of one host, read from one
// ruleset) as one indented JSON object (docs/fw.md describes it).
func RenderJSON(w io.Writer, exs ...*Explanation) error {
	rep := jsonReport{Verdict: Overall(exs), Evaluations: []jsonExplanation{}}
	for _, ex := range exs {
		path := ex.Path
		if path == nil {
			path = []eval.Step{}
		}
		rep.Evaluations = append(rep.Evaluations, jsonExplanation{
			Label: ex.Label, Packet: packetJSON(ex.Packet), Verdict: ex.Verdict, Rule: ex.Rule, Path: path,
			UnknownReason: ex.UnknownReason, Notes: ex.Notes, Advice: ex.Advice, Trace: ex.Trace, Final: ex.Final(),
		})
		rep.Sources, rep.Backends, rep.Warnings, rep.Firewalld = ex.Sources, ex.Backends, ex.Warnings, ex.Firewalld
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// RenderText writes the explanations for a person: what was read, then one
// section per advert.
func RenderText(w io.Writer, exs ...*Explanation) error {
	var sb strings.Builder
	if len(exs) > 0 {
		ex := exs[0]
		fmt.Fprintf(&sb, "Ruleset:  %s", strings.Join(ex.Sources, ", "))
		if len(ex.Backends) > 0 {
			bs := make([]string, len(ex.Backends))
			for i, b := range ex.Backends {
				bs[i] = string(b)
			}
			fmt.Fprintf(&sb, " (%s)", strings.Join(bs, ", "))
		}
		sb.WriteString("\n")
		if fd := ex.Firewalld; fd != nil && fd.Running {
			fmt.Fprintf(&sb, "firewalld %s runs, backend %s, default zone %s\n", fd.Version, fd.Backend, fd.DefaultZone)
		}
		for _, wn := range ex.Warnings {
			fmt.Fprintf(&sb, "Warning: %s\n", wn)
		}
	}
	for _, ex := range exs {
		sb.WriteString("\n")
		if ex.Label != "" {
			fmt.Fprintf(&sb, "== %s\n", ex.Label)
		}
		renderOne(&sb, ex)
	}
	if len(exs) > 1 {
		fmt.Fprintf(&sb, "\nOverall:  %s\n", strings.ToUpper(string(Overall(exs))))
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

func renderOne(sb *strings.Builder, ex *Explanation) {
	fmt.Fprintf(sb, "Packet:   %s\n", ex.Packet)
	fmt.Fprintf(sb, "Verdict:  %s\n", strings.ToUpper(string(ex.Verdict)))
	if ex.Rule != nil {
		r := ex.Rule
		fmt.Fprintf(sb, "Decided by %s (%s %s %s %s%s, owner %s):\n    %s\n", kindOf(r), r.Backend, r.Family, r.Table, r.Chain, ident(*r), r.Owner, r.Text)
	}
	if ex.UnknownReason != "" {
		fmt.Fprintf(sb, "Unknown because %s\n", ex.UnknownReason)
	}
	for _, n := range ex.Notes {
		fmt.Fprintf(sb, "Note: %s\n", n)
	}
	if len(ex.Path) > 0 {
		sb.WriteString("Path (rules that matched, in order):\n")
		hidden := 0
		for _, s := range ex.Path {
			if isFlow(s.Action) {
				hidden++
				continue
			}
			note := ""
			if s.Note != "" {
				note = " — " + s.Note
			}
			fmt.Fprintf(sb, "  %s %s | %s %s %s %s%s [%s]: %s%s\n      %s\n", s.Hook, ruleset.PriorityName(s.Family, s.Hook, s.Priority),
				s.Backend, s.Family, s.Table, s.Chain, ident(s.RuleRef), s.Owner, s.Action, note, s.Text)
		}
		if hidden > 0 {
			fmt.Fprintf(sb, "  (%d jumps, gotos, returns and rules without a verdict not shown; --json lists them)\n", hidden)
		}
	}
	for i, a := range ex.Advice {
		if i == 0 {
			fmt.Fprintf(sb, "Fix: %s\n", a)
			continue
		}
		fmt.Fprintf(sb, "     %s\n", a)
	}
	if ex.Trace != nil {
		renderTrace(sb, ex)
	}
}

func kindOf(r *eval.RuleRef) string {
	if r.Policy {
		return "the chain policy"
	}
	return "rule"
}

func ident(r eval.RuleRef) string {
	switch {
	case r.Policy:
		return " policy"
	case r.Handle != 0:
		return fmt.Sprintf(" handle %d", r.Handle)
	case r.Position != 0:
		return fmt.Sprintf(" #%d", r.Position)
	}
	return ""
}

// isFlow reports whether a path step only moves between chains.
func isFlow(action string) bool {
	return action == "continue" || action == "return" || strings.HasPrefix(action, "jump ") || strings.HasPrefix(action, "goto ")
}
