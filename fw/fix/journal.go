package fix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/fw"
)

// A run that is killed half-way must leave a firewall that the next run can
// put right. So:
//
//   - every change of one backend is one transaction: the nftables rules in
//     one netlink batch, the rules of each iptables program in one
//     `*-restore --noflush` commit (with Session.Restore), so a kill leaves
//     all of a backend's rules or none;
//   - firewalld rich rules (two D-Bus calls each, runtime and permanent,
//     with no transaction) are written to the state file before they are
//     added and taken out of it after they are removed, so --undo finds
//     every rich rule that may have been added;
//   - the state file says a run is in progress from before its first change
//     to after its last; the next run names the interrupted one in its
//     notes. A second --apply then adds only what is missing, and --undo
//     removes every marked rule and recorded rich rule.

// state is the content of the state file.
type state struct {
	Firewalld []Added `json:"firewalld,omitempty"`
	// Running names a run that changes the firewall, from before its first
	// change to after its last: found set, that run was interrupted.
	Running string `json:"running,omitempty"`
}

// step tells the Step hook about a change about to be made, or just made.
func (s *Session) step(format string, args ...any) {
	if s.Step != nil {
		s.Step(fmt.Sprintf(format, args...))
	}
}

// The only entries a state file may hold: RichRule's shape, in a zone or
// policy.
var (
	selectorRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^--(zone|policy)=[A-Za-z0-9_.-]+$`) })
	richRE     = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^rule family="ipv[46]"( source address="[0-9a-fA-F.:]+")?( destination address="[0-9a-fA-F.:]+")? protocol value="vrrp" accept$`)
	})
)

// readState reads the state file (empty when there is none).
func (s *Session) readState() (state, error) {
	var st state
	if s.State == "" {
		return st, nil
	}
	b, err := os.ReadFile(s.State)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%s: %w", s.State, err)
	}
	// Undo acts on what the file names: only rich rules of the shape
	// vrrpdoctor adds, nothing a damaged or edited file could slip in.
	for i, a := range st.Firewalld {
		if a.Backend != Firewalld || !selectorRE().MatchString(a.Selector) || !richRE().MatchString(a.Rich) {
			return state{}, fmt.Errorf("%s: entry %d is not a VRRP rich rule fix-firewall adds (%s %s %q): refusing to act on the file; check it, and remove it if it is damaged", s.State, i+1, a.Backend, a.Selector, a.Rich)
		}
	}
	return st, nil
}

// writeState replaces the state file in one rename (removes it when
// empty), so that a kill leaves the old file or the new one.
func (s *Session) writeState(st state) error {
	if s.State == "" {
		return nil
	}
	if len(st.Firewalld) == 0 && st.Running == "" {
		if err := os.Remove(s.State); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.State), 0o755); err != nil {
		return err
	}
	tmp := s.State + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, s.State)
}

// load reads the firewalld rich rules recorded in the state file.
func (s *Session) load() ([]Added, error) {
	st, err := s.readState()
	return st.Firewalld, err
}

// record adds and drops rich rules in the state file (removed when empty).
func (s *Session) record(add, drop []Added) error {
	if s.State == "" || len(add) == 0 && len(drop) == 0 {
		return nil
	}
	st, err := s.readState()
	if err != nil {
		return err
	}
	st.Firewalld = merge(st.Firewalld, add, drop)
	return s.writeState(st)
}

// merge is cur plus add minus drop, without duplicates.
func merge(cur, add, drop []Added) []Added {
	gone := map[string]bool{}
	for _, a := range drop {
		gone[a.key()] = true
	}
	var keep []Added
	for _, a := range append(slices.Clone(cur), add...) {
		if !gone[a.key()] && !slices.ContainsFunc(keep, func(k Added) bool { return k.key() == a.key() }) {
			keep = append(keep, a)
		}
	}
	return keep
}

// begin records, before any change, that run what is in progress and the
// rich rules it may add. It returns a note when an earlier run was
// interrupted.
func (s *Session) begin(what string, rich []Added) (string, error) {
	if s.State == "" {
		return "", nil
	}
	st, err := s.readState()
	if err != nil {
		return "", err
	}
	note := ""
	if st.Running != "" {
		note = fmt.Sprintf("an earlier run was interrupted (%s); this run completes the firewall's state", st.Running)
	}
	st.Running = fmt.Sprintf("%s, pid %d, started %s", what, os.Getpid(), time.Now().UTC().Format(time.RFC3339))
	st.Firewalld = merge(st.Firewalld, rich, nil)
	s.step("state file: record the run and %d rich rule(s)", len(rich))
	if err := s.writeState(st); err != nil {
		return "", fmt.Errorf("state file: %w (nothing changed)", err)
	}
	return note, nil
}

// Settle ends the record of an interrupted run when this run finds nothing
// to change (an --apply killed after its last rule: the fix is complete),
// and returns a note naming it ("" when there was none).
func (s *Session) Settle() (string, error) {
	st, err := s.readState()
	if err != nil || st.Running == "" {
		return "", err
	}
	note := fmt.Sprintf("an earlier run was interrupted (%s); the firewall is complete as it is", st.Running)
	return note, s.finish(nil)
}

// finish drops the rich rules removed from the state file and ends the run.
func (s *Session) finish(drop []Added) error {
	if s.State == "" {
		return nil
	}
	st, err := s.readState()
	if err != nil {
		return err
	}
	st.Firewalld, st.Running = merge(st.Firewalld, nil, drop), ""
	s.step("state file: end the run, drop %d rich rule(s)", len(drop))
	return s.writeState(st)
}

// add adds the nftables and iptables rules of the plan, one transaction per
// backend and program where the session can (NFT, Restore).
func (s *Session) add(ctx context.Context, rules []Rule) error {
	var nft []Rule
	restore := map[string][]string{} // program -> restore lines
	var order []string
	for _, r := range rules {
		switch {
		case r.Backend == Firewalld:
		case r.Backend == NFT && s.NFT != nil:
			nft = append(nft, r)
		case r.Backend != NFT && s.Restore != nil:
			prog, line := restoreLine(r.Command)
			if _, ok := restore[prog]; !ok {
				order = append(order, prog)
			}
			restore[prog] = append(restore[prog], line)
		default:
			s.step("run %s", Shell(r.Command))
			if _, err := s.Run(ctx, r.Command); err != nil {
				return err
			}
		}
	}
	if len(nft) > 0 {
		s.step("nftables: add %d rule(s) in one transaction", len(nft))
		if err := s.NFT.Add(nft); err != nil {
			return err
		}
	}
	for _, prog := range order {
		if err := s.restore(ctx, prog, restore[prog]); err != nil {
			return err
		}
	}
	return nil
}

// restore feeds lines ("-t TABLE -I CHAIN ..." without the program) to
// prog's *-restore in one commit per table.
func (s *Session) restore(ctx context.Context, prog string, lines []string) error {
	var in bytes.Buffer
	table := ""
	for _, l := range lines {
		t, rest, _ := strings.Cut(l, "\n")
		if t != table {
			if table != "" {
				in.WriteString("COMMIT\n")
			}
			table = t
			fmt.Fprintf(&in, "*%s\n", t)
		}
		in.WriteString(rest + "\n")
	}
	in.WriteString("COMMIT\n")
	argv := []string{prog + "-restore", "--noflush", "-w"}
	s.step("%s: %d change(s) in one commit", argv[0], len(lines))
	if out, err := s.Restore(ctx, argv, in.Bytes()); err != nil {
		return fmt.Errorf("%s (nothing changed): %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// restoreLine turns an iptables command ("PROG -w -t TABLE ACTION ...")
// into its program and "TABLE\nACTION ..." in iptables-restore syntax.
func restoreLine(argv []string) (prog, line string) {
	prog, table := argv[0], "filter"
	var words []string
	for i := 1; i < len(argv); i++ {
		switch a := argv[i]; {
		case a == "-w":
		case a == "-t" && i+1 < len(argv):
			table = argv[i+1]
			i++
		case strings.ContainsAny(a, " \t\""):
			words = append(words, `"`+strings.ReplaceAll(a, `"`, `\"`)+`"`)
		default:
			words = append(words, a)
		}
	}
	return prog, table + "\n" + strings.Join(words, " ")
}

// ExecInput runs argv (never through a shell) with input on its standard
// input, in the current network namespace, and returns its combined output.
func ExecInput(ctx context.Context, argv []string, input []byte) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(input)
	return cmd.CombinedOutput()
}

// Unread lists what of the live ruleset was not read in full: the reading's
// warnings, tables whose rules are unknown, and rules with expressions that
// could not be decoded. Apply refuses to change such a ruleset without
// force: a rule it cannot see may decide the adverts' fate, or be disturbed.
func Unread(live *fw.Live) []string {
	out := slices.Clone(live.Warnings)
	if live.Ruleset == nil {
		return out
	}
	for _, t := range live.Ruleset.Tables {
		if t.Incomplete != "" {
			out = append(out, fmt.Sprintf("%s table %s %s: %s", t.Backend, t.Family, t.Name, t.Incomplete))
			continue
		}
		for _, c := range t.Chains {
			for _, r := range c.Rules {
				if r.Incomplete != "" {
					out = append(out, fmt.Sprintf("%s %s %s rule %s: %s", t.Family, t.Name, c.Name, ruleID(r.Handle, r.Position), r.Incomplete))
				}
			}
		}
	}
	return out
}

func ruleID(handle uint64, position int) string {
	if handle != 0 {
		return fmt.Sprintf("handle %d", handle)
	}
	return fmt.Sprintf("#%d", position)
}
