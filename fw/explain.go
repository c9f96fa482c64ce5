// Package fw inspects a host's firewall for VRRP: it reads the ruleset
// (saved files or the live network namespace: nftables, iptables-nft,
// iptables-legacy) and explains what happens to an advert — the verdict, the
// deciding rule with the tool that owns it, and the rules on the way.
//
// Explain is the library entry point behind `vrrpdoctor fw explain`;
// RenderText and RenderJSON print its result.
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
	// Packet is the advert to explain (see eval.VRRPAdvert).
	Packet eval.Packet
	// Live reads the live ruleset when Rulesets is empty; nil means ReadLive.
	Live func(ctx context.Context) (*Live, error)
}

// Explanation is Explain's answer.
type Explanation struct {
	eval.Result
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

// Explain reads the ruleset and walks the packet through it.
func Explain(ctx context.Context, opts Options) (*Explanation, error) {
	live := &Live{}
	if len(opts.Rulesets) > 0 {
		rs, err := LoadFiles(opts.Rulesets, opts.Iptables)
		if err != nil {
			return nil, err
		}
		live.Ruleset = rs
	} else {
		read := opts.Live
		if read == nil {
			read = ReadLive
		}
		var err error
		if live, err = read(ctx); err != nil {
			return nil, err
		}
	}
	rs := live.Ruleset
	res, err := eval.Evaluate(rs, opts.Packet)
	if err != nil {
		return nil, err
	}
	return &Explanation{Result: res, Sources: rs.Sources, Backends: rs.Backends(), Warnings: live.Warnings, Firewalld: live.Firewalld}, nil
}

// jsonExplanation is the JSON shape: verdict, rule {backend, family, table,
// chain, handle, text, owner}, path[], unknown_reason, plus context.
type jsonExplanation struct {
	Verdict       eval.Verdict      `json:"verdict"`
	Rule          *eval.RuleRef     `json:"rule"`
	Path          []eval.Step       `json:"path"`
	UnknownReason string            `json:"unknown_reason,omitempty"`
	Notes         []string          `json:"notes,omitempty"`
	Packet        string            `json:"packet"`
	Sources       []string          `json:"sources"`
	Backends      []ruleset.Backend `json:"backends"`
	Warnings      []string          `json:"warnings,omitempty"`
	Firewalld     *firewalld.Info   `json:"firewalld,omitempty"`
}

// RenderJSON writes the explanation as one indented JSON object.
func RenderJSON(w io.Writer, ex *Explanation) error {
	path := ex.Path
	if path == nil {
		path = []eval.Step{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(jsonExplanation{
		Verdict: ex.Verdict, Rule: ex.Rule, Path: path, UnknownReason: ex.UnknownReason, Notes: ex.Notes,
		Packet: ex.Packet.String(), Sources: ex.Sources, Backends: ex.Backends, Warnings: ex.Warnings, Firewalld: ex.Firewalld,
	})
}

// RenderText writes the explanation for a person.
func RenderText(w io.Writer, ex *Explanation) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "Packet:   %s\n", ex.Packet)
	fmt.Fprintf(&sb, "Ruleset:  %s", strings.Join(ex.Sources, ", "))
	if len(ex.Backends) > 0 {
		bs := make([]string, len(ex.Backends))
		for i, b := range ex.Backends {
			bs[i] = string(b)
		}
		fmt.Fprintf(&sb, " (%s)", strings.Join(bs, ", "))
	}
	sb.WriteString("\n")
	fmt.Fprintf(&sb, "Verdict:  %s\n", strings.ToUpper(string(ex.Verdict)))
	if ex.Rule != nil {
		r := ex.Rule
		fmt.Fprintf(&sb, "Decided by %s (%s %s %s %s%s, owner %s):\n    %s\n", kindOf(r), r.Backend, r.Family, r.Table, r.Chain, ident(*r), r.Owner, r.Text)
	}
	if ex.UnknownReason != "" {
		fmt.Fprintf(&sb, "Unknown because %s\n", ex.UnknownReason)
	}
	for _, n := range ex.Notes {
		fmt.Fprintf(&sb, "Note: %s\n", n)
	}
	for _, wn := range ex.Warnings {
		fmt.Fprintf(&sb, "Warning: %s\n", wn)
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
			fmt.Fprintf(&sb, "  %s %s | %s %s %s %s%s [%s]: %s%s\n      %s\n", s.Hook, ruleset.PriorityName(s.Family, s.Hook, s.Priority),
				s.Backend, s.Family, s.Table, s.Chain, ident(s.RuleRef), s.Owner, s.Action, note, s.Text)
		}
		if hidden > 0 {
			fmt.Fprintf(&sb, "  (%d jumps, gotos, returns and rules without a verdict not shown; --json lists them)\n", hidden)
		}
	}
	_, err := io.WriteString(w, sb.String())
	return err
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
