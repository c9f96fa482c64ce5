package fix

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"

	"github.com/vrrpdoctor/vrrpdoctor/fw"
	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// Runner runs one command (argv, never through a shell) and returns its
// combined output.
type Runner func(ctx context.Context, argv []string) ([]byte, error)

// Exec runs argv in the current network namespace.
func Exec(ctx context.Context, argv []string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// Session applies and undoes fixes on one host.
type Session struct {
	// Run runs the firewall tools (nft, iptables-*, firewall-cmd).
	Run Runner
	// Read reads the live ruleset of the same host (with firewalld's
	// settings).
	Read func(ctx context.Context) (*fw.Live, error)
	// State is the file recording the firewalld rich rules added (they
	// cannot carry a comment) and a run in progress.
	State string
	// NFT, when set, adds and deletes nftables rules (Netlink), all of one
	// call in one transaction; nil runs the nft program with Run.
	NFT NFTRules
	// Bus, when set, is used for firewalld (firewall-cmd otherwise, and
	// when D-Bus fails).
	Bus *Bus
	// Restore, when set, runs an iptables *-restore program with input on
	// its standard input: the rules of one iptables program are then added
	// (and removed) in one commit. nil runs one iptables command per rule.
	Restore func(ctx context.Context, argv []string, input []byte) ([]byte, error)
	// Step, when set, is called before each change to the firewall or the
	// state file, with what is about to change (tests stop the process
	// there to check that no kill leaves a half-applied change).
	Step func(what string)
}

// Added is a rule vrrpdoctor added, as found in the live ruleset (nftables,
// iptables: by its comment) or in the state file (firewalld).
type Added struct {
	Backend  Backend        `json:"backend"`
	Family   ruleset.Family `json:"family,omitempty"`
	Table    string         `json:"table,omitempty"`
	Chain    string         `json:"chain,omitempty"`
	Handle   uint64         `json:"handle,omitempty"`
	Position int            `json:"position,omitempty"`
	Text     string         `json:"text,omitempty"`
	// Selector is --zone=Z or --policy=P; Rich the rich rule (firewalld).
	Selector string `json:"selector,omitempty"`
	Rich     string `json:"rich_rule,omitempty"`
}

func (a Added) key() string {
	return fmt.Sprintf("%s|%s|%s|%s|%d|%s|%s|%s", a.Backend, a.Family, a.Table, a.Chain, a.Handle, a.Text, a.Selector, a.Rich)
}

// Marked lists the rules carrying Marker in rs.
func Marked(rs *ruleset.Ruleset) []Added {
	var out []Added
	for _, t := range rs.Tables {
		b := NFT
		switch t.Backend {
		case ruleset.BackendIptablesNFT:
			b = IptablesNFT
		case ruleset.BackendIptablesLegacy:
			b = IptablesLegacy
		}
		for _, c := range t.Chains {
			for _, r := range c.Rules {
				if r.Comment == Marker {
					out = append(out, Added{Backend: b, Family: t.Family, Table: t.Name, Chain: c.Name, Handle: r.Handle, Position: r.Position, Text: r.Text})
				}
			}
		}
	}
	return out
}

// Outcome is what Apply or Undo did.
type Outcome struct {
	// Added are the rules added (Apply) or removed (Undo).
	Added []Added `json:"added"`
	// Checks are the adverts evaluated on the live ruleset afterwards.
	Checks []Check `json:"checks,omitempty"`
	// RolledBack is set when the live check failed and the rules were
	// removed again.
	RolledBack bool `json:"rolled_back,omitempty"`
	// Delivery is what reached the VRRP socket after applying (filled by
	// the caller, which watches the interface).
	Delivery []Delivery `json:"delivery,omitempty"`
	Notes    []string   `json:"notes,omitempty"`
}

// Delivery is one sender's adverts on one interface after the fix: seen on
// the wire, and delivered to a raw socket as keepalived's.
type Delivery struct {
	Interface string     `json:"interface"`
	Family    uint8      `json:"family"`
	Sender    netip.Addr `json:"sender"`
	Wire      uint64     `json:"wire"`
	Socket    uint64     `json:"socket"`
}

// Remove takes out the rules of an Apply again (its Outcome.Added), for a
// caller whose own check failed.
func (s *Session) Remove(ctx context.Context, added []Added) error {
	var rich []Added
	for _, a := range added {
		if a.Backend == Firewalld {
			rich = append(rich, a)
		}
	}
	// Positions of iptables rules may have moved since Apply read them.
	live, err := s.Read(ctx)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, a := range added {
		want[identity(a)] = true
	}
	var undo []Added
	for _, a := range Marked(live.Ruleset) {
		if want[identity(a)] {
			undo = append(undo, a)
		}
	}
	if _, err := s.begin("remove", nil); err != nil {
		return err
	}
	if err := s.remove(ctx, append(undo, rich...)); err != nil {
		return err
	}
	return s.finish(rich)
}

// Apply adds the plan's rules (runtime, and permanent for firewalld), reads
// the live ruleset again and evaluates every advert of the plan: if one is
// not accepted, it removes what it added and says so. It refuses, without
// force, to change a ruleset that was not read in full (see Unread).
func (s *Session) Apply(ctx context.Context, plan *Plan, force bool) (*Outcome, error) {
	if len(plan.Refused) > 0 {
		return nil, fmt.Errorf("refusing to apply: %s", strings.Join(plan.Refused, "; "))
	}
	before, err := s.Read(ctx)
	if err != nil {
		return nil, err
	}
	if gaps := Unread(before); len(gaps) > 0 && !force {
		return nil, fmt.Errorf("refusing to change a ruleset that was not read in full (%s): a rule vrrpdoctor cannot see may decide the adverts or be disturbed; --force applies anyway", strings.Join(gaps, "; "))
	}
	old := map[string]bool{}
	for _, a := range Marked(before.Ruleset) {
		old[identity(a)] = true
	}
	var rich []Added
	for _, r := range plan.Rules {
		if r.Backend == Firewalld {
			rich = append(rich, Added{Backend: Firewalld, Selector: r.Command[1], Rich: r.Rich})
		}
	}
	out := &Outcome{}
	// Write-ahead: the rich rules are in the state file before they exist.
	note, err := s.begin("apply", rich)
	if err != nil {
		return out, err
	}
	if note != "" {
		out.Notes = append(out.Notes, note)
	}
	var vias []string
	count := map[string]int{}
	for _, a := range rich {
		s.step("firewalld: add rich rule %s %s", a.Selector, a.Rich)
		via, err := s.firewalldRich(ctx, a, true)
		if err != nil {
			return out, s.abort(ctx, old, rich, err)
		}
		if count[via] == 0 {
			vias = append(vias, via)
		}
		count[via]++
	}
	// One note per way the rules went in (D-Bus, or firewall-cmd and why).
	for _, via := range vias {
		n := ""
		if count[via] > 1 {
			n = fmt.Sprintf(" (%d rules)", count[via])
		}
		out.Notes = append(out.Notes, fmt.Sprintf("firewalld: rich rule added %s%s to the runtime and the permanent configuration, kept across reloads and reboots", via, n))
	}
	if err := s.add(ctx, plan.Rules); err != nil {
		return out, s.abort(ctx, old, rich, err)
	}
	after, err := s.Read(ctx)
	if err != nil {
		return out, s.abort(ctx, old, rich, fmt.Errorf("reading the ruleset again: %w", err))
	}
	for _, a := range Marked(after.Ruleset) {
		if !old[identity(a)] {
			out.Added = append(out.Added, a)
		}
	}
	out.Added = append(out.Added, rich...)
	var bad []string
	for _, c := range plan.Checks {
		res, err := eval.Evaluate(after.Ruleset, c.Packet)
		if err != nil {
			return out, s.abort(ctx, old, rich, err)
		}
		c.After, c.Result = res.Verdict, &res
		out.Checks = append(out.Checks, c)
		if res.Verdict != eval.Accept && !(force && res.Verdict == eval.Unknown) {
			bad = append(bad, fmt.Sprintf("%s: %s by %s", c.Label, res.Verdict, refString(res.Rule)))
		}
	}
	if len(bad) > 0 {
		out.RolledBack = true
		return out, s.abort(ctx, old, rich, fmt.Errorf("the live ruleset still does not accept the adverts (%s)", strings.Join(bad, "; ")))
	}
	if err := s.finish(nil); err != nil {
		return out, fmt.Errorf("applied, but the state file: %w", err)
	}
	return out, nil
}

// identity names a marked rule independently of positions that shift.
func identity(a Added) string {
	if a.Backend == NFT {
		return a.key()
	}
	return fmt.Sprintf("%s|%s|%s|%s|%s", a.Backend, a.Family, a.Table, a.Chain, a.Text)
}

// abort removes what this run added (marked rules not there before, and the
// rich rules it added) and returns cause, completed with the rollback's
// failure if any.
func (s *Session) abort(ctx context.Context, old map[string]bool, rich []Added, cause error) error {
	live, err := s.Read(ctx)
	if err != nil {
		return fmt.Errorf("%w; rollback impossible, the ruleset cannot be read: %v", cause, err)
	}
	var undo []Added
	for _, a := range Marked(live.Ruleset) {
		if !old[identity(a)] {
			undo = append(undo, a)
		}
	}
	undo = append(undo, rich...)
	if err := s.remove(ctx, undo); err != nil {
		return fmt.Errorf("%w; rollback failed: %v", cause, err)
	}
	if err := s.finish(rich); err != nil {
		return fmt.Errorf("%w; rolled back, but the state file: %v", cause, err)
	}
	return fmt.Errorf("%w; rolled back what was added", cause)
}

// Undo removes every rule vrrpdoctor added: the marked nftables and
// iptables rules, and the firewalld rich rules of the state file.
func (s *Session) Undo(ctx context.Context) (*Outcome, error) {
	live, err := s.Read(ctx)
	if err != nil {
		return nil, err
	}
	undo := Marked(live.Ruleset)
	rich, err := s.load()
	if err != nil {
		return nil, err
	}
	undo = append(undo, rich...)
	note, err := s.begin("undo", nil)
	if err != nil {
		return nil, err
	}
	if err := s.remove(ctx, undo); err != nil {
		return nil, err
	}
	if err := s.finish(rich); err != nil {
		return nil, err
	}
	out := &Outcome{Added: undo}
	if note != "" {
		out.Notes = append(out.Notes, note)
	}
	return out, nil
}

// remove deletes rules: nftables by handle (in one transaction with NFT),
// iptables by position (highest first, so earlier positions stay valid; in
// one commit per program with Restore), firewalld runtime and permanent.
func (s *Session) remove(ctx context.Context, as []Added) error {
	as = slices.Clone(as)
	slices.SortStableFunc(as, func(a, b Added) int { return b.Position - a.Position })
	var errs []error
	var nft []Added
	restore := map[string][]string{}
	var order []string
	for _, a := range as {
		var cmd []string
		switch a.Backend {
		case NFT:
			if s.NFT != nil {
				nft = append(nft, a)
				continue
			}
			cmd = []string{"nft", "delete", "rule", string(a.Family), a.Table, a.Chain, "handle", fmt.Sprint(a.Handle)}
		case IptablesNFT, IptablesLegacy:
			cmd = []string{iptablesBinary(a.Backend, a.Family), "-w", "-t", a.Table, "-D", a.Chain, fmt.Sprint(a.Position)}
			if s.Restore != nil {
				prog, line := restoreLine(cmd)
				if _, ok := restore[prog]; !ok {
					order = append(order, prog)
				}
				restore[prog] = append(restore[prog], line)
				continue
			}
		case Firewalld:
			s.step("firewalld: remove rich rule %s %s", a.Selector, a.Rich)
			if _, err := s.firewalldRich(ctx, a, false); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		s.step("run %s", Shell(cmd))
		if out, err := s.Run(ctx, cmd); err != nil && !strings.Contains(string(out), "NOT_ENABLED") {
			errs = append(errs, err)
		}
	}
	if len(nft) > 0 {
		s.step("nftables: delete %d rule(s) in one transaction", len(nft))
		if err := s.NFT.Delete(nft); err != nil {
			errs = append(errs, err)
		}
	}
	for _, prog := range order {
		if err := s.restore(ctx, prog, restore[prog]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// firewalldRich adds or removes a rich rule, runtime and permanent: over
// D-Bus when the session has a bus and the rule is a zone's, else (or when
// D-Bus fails) with firewall-cmd. It says which was used.
func (s *Session) firewalldRich(ctx context.Context, a Added, add bool) (string, error) {
	var busErr error
	if zone := zoneOfSelector(a.Selector); s.Bus != nil && zone != "" {
		if busErr = s.Bus.rich(ctx, zone, a.Rich, add); busErr == nil {
			return "over D-Bus", nil
		}
	}
	op := "--remove-rich-rule="
	if add {
		op = "--add-rich-rule="
	}
	for _, c := range [][]string{
		{"firewall-cmd", a.Selector, op + a.Rich},
		{"firewall-cmd", "--permanent", a.Selector, op + a.Rich},
	} {
		if out, err := s.Run(ctx, c); err != nil && !strings.Contains(string(out), "NOT_ENABLED") {
			if busErr != nil {
				err = fmt.Errorf("%w (D-Bus before: %v)", err, busErr)
			}
			return "", err
		}
	}
	if busErr != nil {
		return fmt.Sprintf("with firewall-cmd (D-Bus failed: %v)", busErr), nil
	}
	return "with firewall-cmd", nil
}
