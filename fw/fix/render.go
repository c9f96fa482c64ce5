package fix

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
)

// Shell renders argv as a line a user pastes into a POSIX shell. An nft
// command's rule goes in one single-quoted word (nft joins its arguments,
// and the rule's own double quotes must reach it).
func Shell(argv []string) string {
	if len(argv) > 1 && argv[0] == "nft" {
		return "nft " + quote(strings.Join(argv[1:], " "))
	}
	parts := make([]string, len(argv))
	for i, a := range argv {
		if opt, val, ok := strings.Cut(a, "="); ok && strings.HasPrefix(opt, "--") && needsQuote(val) && !needsQuote(opt) {
			parts[i] = opt + "=" + quote(val)
			continue
		}
		parts[i] = a
		if needsQuote(a) {
			parts[i] = quote(a)
		}
	}
	return strings.Join(parts, " ")
}

func needsQuote(s string) bool {
	return s == "" || strings.ContainsAny(s, " \t\n\"'\\$`!*?[]{}()<>|&;#~")
}

func quote(s string) string {
	if !needsQuote(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// RenderText writes the plan for a person: each advert with its verdict,
// then the commands, each with why, then the alternatives and notes.
func RenderText(w io.Writer, plan *Plan) error {
	var b strings.Builder
	for _, c := range plan.Checks {
		fmt.Fprintf(&b, "%s\n  now: %s", c.Label, c.Before)
		if c.Rule != nil && c.Before != eval.Accept {
			fmt.Fprintf(&b, " by %s", c.Rule)
		}
		fmt.Fprintf(&b, "\n  with the fix: %s\n", c.After)
		if c.Reason != "" {
			fmt.Fprintf(&b, "  cannot fix: %s\n", c.Reason)
		}
	}
	switch {
	case len(plan.Refused) > 0:
		b.WriteString("\nRefused: ")
		b.WriteString(strings.Join(plan.Refused, "\n  "))
		b.WriteString("\n")
	case len(plan.Rules) == 0:
		b.WriteString("\nNothing to do: the firewall already lets these VRRP adverts through.\n")
	default:
		b.WriteString("\nThe narrowest rules that let VRRP through (checked with the evaluator on the ruleset as it would be):\n")
		for _, r := range plan.Rules {
			fmt.Fprintf(&b, "\n  # %s\n  %s\n", r.Why, Shell(r.Command))
			if r.Persist != nil {
				fmt.Fprintf(&b, "  %s\n", Shell(r.Persist))
			}
		}
	}
	for _, a := range plan.Alternatives {
		fmt.Fprintf(&b, "\nAlternative, %s:\n", a.Title)
		for _, c := range a.Commands {
			fmt.Fprintf(&b, "  %s\n", Shell(c))
		}
		fmt.Fprintf(&b, "  Note: %s\n", a.Note)
	}
	for _, n := range plan.Notes {
		fmt.Fprintf(&b, "\nNote: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// RenderOutcome writes what Apply or Undo did.
func RenderOutcome(w io.Writer, verb string, o *Outcome) error {
	var b strings.Builder
	if len(o.Added) == 0 {
		fmt.Fprintf(&b, "Nothing %s.\n", verb)
	}
	for _, a := range o.Added {
		fmt.Fprintf(&b, "%s: %s\n", verb, a)
	}
	for _, c := range o.Checks {
		fmt.Fprintf(&b, "live check: %s: %s\n", c.Label, c.After)
	}
	for _, n := range o.Notes {
		fmt.Fprintf(&b, "Note: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// String describes an added rule.
func (a Added) String() string {
	switch a.Backend {
	case Firewalld:
		return fmt.Sprintf("firewalld %s rich rule %s (runtime and permanent)", a.Selector, quote(a.Rich))
	case NFT:
		return fmt.Sprintf("nftables %s %s %s handle %d: %s", a.Family, a.Table, a.Chain, a.Handle, a.Text)
	}
	return fmt.Sprintf("%s %s %s: %s", a.Backend, a.Family, a.Table, a.Text)
}

// Report is the JSON document of fix-firewall (docs/fix-firewall.md).
type Report struct {
	Schema string `json:"schema"`
	Mode   string `json:"mode"`   // print, apply, undo
	Status string `json:"status"` // nothing-to-do, fix, applied, undone, refused, rolled-back, error
	// Config is the keepalived.conf read; ConfigSource says why: flag
	// (-c), process (the running VRRP daemon's) or default.
	Config       string   `json:"config,omitempty"`
	ConfigSource string   `json:"config_source,omitempty"`
	Plan         *Plan    `json:"plan,omitempty"`
	Outcome      *Outcome `json:"outcome,omitempty"`
	Error        string   `json:"error,omitempty"`
}

// RenderJSON writes the report as indented JSON.
func RenderJSON(w io.Writer, r Report) error {
	r.Schema = "vrrpdoctor/fix-firewall/v1"
	if r.Plan != nil {
		for i := range r.Plan.Rules {
			r.Plan.Rules[i].Shell = Shell(r.Plan.Rules[i].Command)
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
