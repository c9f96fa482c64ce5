package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/vrrpdoctor/vrrpdoctor/diag/check"
	"github.com/vrrpdoctor/vrrpdoctor/fw"
	"github.com/vrrpdoctor/vrrpdoctor/fw/firewalld"
	"github.com/vrrpdoctor/vrrpdoctor/fw/fix"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/keepalived"
)

// Exit statuses of fix-firewall (docs/fix-firewall.md).
const (
	fixExitOK      = 0 // nothing to do, plan printed, applied, undone
	fixExitFailed  = 1 // applying or undoing failed; what was added is rolled back
	fixExitRefused = 2 // the evaluator says no narrow rule would work, or cannot decide
	fixExitUsage   = 3 // bad usage, unreadable configuration or ruleset
)

// DefaultFixState records the firewalld rich rules fix-firewall added.
const DefaultFixState = "/var/lib/vrrpdoctor/fix-firewall.json"

type fixFirewallOptions struct {
	config    string
	configSet bool
	iface     string
	peers     []string
	self      string
	family    int
	in, out   bool
	backend   string
	apply     bool
	undo      bool
	force     bool
	json      bool
	state     string
	rulesets  []string
	// deliveryWait bounds the live delivery check after --apply: 0 skips
	// it, negative means three advert intervals (plus half a second).
	deliveryWait time.Duration
	// maxAdvert is the longest advert_int of the instances planned.
	maxAdvert time.Duration
	// defaultConfig is read when -c is not given, no VRRP daemon runs
	// here, and it exists.
	defaultConfig string
	// daemonConfig finds the VRRP daemon running in this network
	// namespace, whose configuration is read when -c is not given (check's
	// discovery); nil means none (tests).
	daemonConfig func() (check.Process, bool)
	// configUsed and configSource say which configuration was read, and
	// why: flag (-c), process (the running daemon's) or default.
	configUsed, configSource, configWhy string
	// ownAddr finds this host's address on an interface; nil means the
	// current network namespace's (tests set it).
	ownAddr func(iface string, family int, linkLocal bool) netip.Addr
	// session runs and reads the host's firewall; nil means this network
	// namespace (tests run the binary under ip netns exec).
	session *fix.Session
}

func newFixFirewallCmd(s streams) *cobra.Command {
	return newFixFirewallCmdWith(s, fixFirewallOptions{defaultConfig: DefaultConfig,
		daemonConfig: func() (check.Process, bool) { return check.DaemonConfig("") }})
}

// newFixFirewallCmdWith builds the command on o (tests set the default
// configuration path and a session on saved rulesets).
func newFixFirewallCmdWith(s streams, o fixFirewallOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fix-firewall [-c keepalived.conf | -i IFACE [--peer ADDR]... [--family 4|6]] [--in|--out] [--backend B] [--apply|--undo] [--force] [--json]",
		Short: "Print, or apply, the narrowest firewall rules that let VRRP through",
		Long: `fix-firewall finds where the host's firewall drops VRRP adverts (fw explain's
evaluator: every base chain of every table, nftables, iptables-nft,
iptables-legacy and firewalld) and plans, for each advert that is dropped, one
accept of exactly that advert (IP protocol 112, to the VRRP group (224.0.0.18,
ff02::12 or vrrp_mcast_group) or between this node and each unicast peer, on
the VRRP interface) in the chain that drops it, before the deciding rule. An
accept is not final in netfilter: a rule in a table of its own would not
override another table's drop, so the fix goes where the drop is, and the
evaluator must accept the adverts on the ruleset as it would be; otherwise
fix-firewall refuses.

When firewalld owns the deciding rule, the fix is a rich rule in the zone of
the interface (rich rules cannot name an interface: the zone narrows). The
classic direct rules are printed too, with the evaluator's verdict: they work
with firewalld's iptables backend and NOT with its nftables backend.

The adverts come from keepalived.conf: -c, else the file the VRRP daemon
running in this network namespace reads (keepalived's -f, vrrpdoctor run's
-c; found in /proc as check finds it, and named on the first line), else
` + DefaultConfig + ` when it exists; or from -i and --peer.

By default it prints the commands. --apply (root) runs them, reads the live
ruleset again and evaluates, then watches the peers' adverts on the wire and
at a raw VRRP socket for three advert intervals (--delivery-wait): if the
adverts are still not accepted, or arrive but do not reach the socket, it
removes what it added. Rules it adds carry the comment "vrrpdoctor: allow VRRP"
(firewalld rich rules are recorded in --state); --undo removes exactly those.
A second --apply adds nothing.

A run never leaves half a change: the nftables rules go in one netlink
batch, the rules of each iptables program in one iptables-restore commit,
and firewalld rich rules are recorded in --state before they are added. If
a run is killed anyway, the next --apply completes the fix and --undo
removes all of it. --apply refuses a live ruleset that could not be read in
full (a tool missing, an expression nothing could decode) unless --force.

Exit status: 0 done (or nothing to do), 1 applying failed (rolled back),
2 refused (no narrow rule would work, the verdict is unknown, or the
ruleset was not read in full, without --force), 3 bad usage or unreadable
configuration or ruleset.`,
		Example: `  vrrpdoctor fix-firewall
  vrrpdoctor fix-firewall -c /etc/keepalived/keepalived.conf --apply
  vrrpdoctor fix-firewall -i eth0 --peer 198.51.100.1 --in --json
  vrrpdoctor fix-firewall -i eth0 --ruleset nft.json --ruleset iptables-save.txt
  vrrpdoctor fix-firewall --undo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.configSet = cmd.Flags().Changed("config")
			return runFixFirewall(cmd.Context(), s, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.config, "config", "c", DefaultConfig, "keepalived configuration (default: the running VRRP daemon's, as check finds it, else this file when it exists)")
	f.StringVarP(&o.iface, "interface", "i", "", "VRRP interface (narrows the configuration's instances, or stands alone)")
	f.StringSliceVar(&o.peers, "peer", nil, "unicast peer address (repeat for several); without -c")
	f.StringVar(&o.self, "self", "", "this node's unicast source address (default: unicast_src_ip, else the interface's)")
	f.IntVar(&o.family, "family", 0, "address family, 4 or 6")
	f.BoolVar(&o.in, "in", false, "only incoming adverts")
	f.BoolVar(&o.out, "out", false, "only this node's outgoing adverts")
	f.StringVar(&o.backend, "backend", "", "only add rules to this backend: firewalld, nftables, iptables-nft, iptables-legacy (default: the one that drops)")
	f.BoolVar(&o.apply, "apply", false, "apply the rules (root), verify them live, roll back on failure")
	f.BoolVar(&o.undo, "undo", false, "remove every rule fix-firewall added")
	f.BoolVar(&o.force, "force", false, "plan and apply past verdicts the evaluator cannot decide, and on a ruleset not read in full")
	f.BoolVar(&o.json, "json", false, "JSON output")
	f.StringVar(&o.state, "state", DefaultFixState, "file recording the firewalld rich rules added")
	f.StringSliceVar(&o.rulesets, "ruleset", nil, "plan on saved rulesets (nft -j list ruleset, iptables-save) instead of the live one; print only")
	f.DurationVar(&o.deliveryWait, "delivery-wait", -1, "after --apply, how long to watch the peers' adverts reach the VRRP socket (0: do not watch; default three advert intervals)")
	return cmd
}

func fixErr(code int, format string, args ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, args...)}
}

func runFixFirewall(ctx context.Context, s streams, o fixFirewallOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.apply && o.undo {
		return fixErr(fixExitUsage, "--apply and --undo exclude each other")
	}
	if len(o.rulesets) > 0 && (o.apply || o.undo) {
		return fixErr(fixExitUsage, "--ruleset plans on saved files: it cannot be combined with --apply or --undo")
	}
	if o.family != 0 && o.family != 4 && o.family != 6 {
		return fixErr(fixExitUsage, "--family %d: want 4 or 6", o.family)
	}
	var opts fix.Options
	if o.backend != "" {
		b, err := fix.ParseBackend(o.backend)
		if err != nil {
			return fixErr(fixExitUsage, "%v", err)
		}
		opts.Backend = b
	}
	opts.Force = o.force
	if (o.apply || o.undo) && os.Geteuid() != 0 {
		return fixErr(fixExitUsage, "--apply and --undo change the firewall: run as root")
	}
	sess := o.session
	if sess == nil && len(o.rulesets) > 0 {
		files := o.rulesets
		sess = &fix.Session{Read: func(ctx context.Context) (*fw.Live, error) {
			return fw.Read(ctx, fw.Options{Rulesets: files})
		}}
	}
	if sess == nil {
		sess = &fix.Session{Run: fix.Exec, Read: fw.ReadLive, State: o.state, NFT: fix.Netlink{}, Restore: fix.ExecInput, Step: killStep(s)}
		if o.apply || o.undo {
			// firewalld over D-Bus where it answers; firewall-cmd otherwise.
			if bus, err := fix.ConnectBus(ctx); err == nil {
				sess.Bus = bus
				defer bus.Close()
			}
		}
	}
	report := fix.Report{Mode: "print"}
	emit := func(code int, err error) error {
		if err != nil {
			report.Error = err.Error()
		}
		if o.json {
			if jerr := fix.RenderJSON(s.Out, report); jerr != nil {
				return jerr
			}
		}
		if code == fixExitOK {
			return nil
		}
		if o.json {
			return &exitError{code: code}
		}
		return &exitError{code: code, err: err}
	}

	if o.undo {
		report.Mode = "undo"
		out, err := sess.Undo(ctx)
		report.Outcome = out
		if err != nil {
			report.Status = "error"
			if permissionDenied(err) {
				err = fmt.Errorf("--undo needs CAP_NET_ADMIN, which this process lacks (%w): run it as root", err)
			}
			return emit(fixExitFailed, err)
		}
		report.Status = "undone"
		if !o.json {
			if err := fix.RenderOutcome(s.Out, "removed", out); err != nil {
				return err
			}
		}
		return emit(fixExitOK, nil)
	}

	targets, err := o.targets(s)
	if err != nil {
		return err
	}
	report.Config, report.ConfigSource = o.configUsed, o.configSource
	if !o.json && o.configSource != "" && o.configSource != "flag" {
		// -c names it already; otherwise say which file was found.
		fmt.Fprintf(s.Out, "Configuration: %s (%s)\n\n", o.configUsed, o.configWhy)
	}
	live, err := sess.Read(ctx)
	if err != nil {
		if permissionDenied(err) {
			return fixErr(fixExitUsage, "reading the firewall needs CAP_NET_ADMIN, which this process lacks (%v): run it as root, or plan on saved rulesets with --ruleset", err)
		}
		return fixErr(fixExitUsage, "reading the firewall: %v", err)
	}
	for _, w := range live.Warnings {
		fmt.Fprintf(s.ErrOut, "warning: %s\n", w)
	}
	opts.Firewalld = live.Firewalld
	if live.Firewalld != nil && len(targets) > 0 {
		// Ask again for the zone of the VRRP interface.
		if info, err := firewalld.Query(ctx, firewalld.Options{Interface: targets[0].Iface}); err == nil && info.Running {
			opts.Firewalld = info
		}
	}
	plan, err := fix.Make(live.Ruleset, targets, opts)
	if err != nil {
		return fixErr(fixExitUsage, "%v", err)
	}
	report.Plan = plan
	switch {
	case len(plan.Refused) > 0:
		report.Status = "refused"
	case plan.NothingToDo():
		report.Status = "nothing-to-do"
	default:
		report.Status = "fix"
	}
	if !o.json && !(o.apply && plan.NothingToDo()) {
		if err := fix.RenderText(s.Out, plan); err != nil {
			return err
		}
	}
	if report.Status == "refused" {
		return emit(fixExitRefused, errors.New("refused: "+strings.Join(plan.Refused, "; ")))
	}
	if !o.apply {
		return emit(fixExitOK, nil)
	}
	report.Mode = "apply"
	if plan.NothingToDo() {
		if note, err := sess.Settle(); err != nil {
			fmt.Fprintf(s.ErrOut, "warning: state file: %v\n", err)
		} else if note != "" {
			fmt.Fprintf(s.ErrOut, "note: %s\n", note)
		}
		if !o.json {
			fmt.Fprintln(s.Out, "Nothing to do: the firewall already lets these VRRP adverts through; nothing added.")
		}
		return emit(fixExitOK, nil)
	}
	if gaps := fix.Unread(live); len(gaps) > 0 && !o.force {
		report.Status = "refused"
		plan.Refused = append(plan.Refused, "the live ruleset was not read in full: "+strings.Join(gaps, "; "))
		return emit(fixExitRefused, fmt.Errorf("refusing to change a ruleset that was not read in full (%s): a rule vrrpdoctor cannot see may decide the adverts or be disturbed; --force applies anyway", strings.Join(gaps, "; ")))
	}
	out, err := sess.Apply(ctx, plan, o.force)
	report.Outcome = out
	if err != nil {
		report.Status = "error"
		if out != nil && out.RolledBack {
			report.Status = "rolled-back"
		}
		return emit(fixExitFailed, err)
	}
	if o.deliveryWait != 0 {
		if failed := o.checkDelivery(ctx, targets, out); failed {
			report.Status = "rolled-back"
			err := errors.New("the peers' adverts arrive on the wire but still do not reach the VRRP socket")
			if rerr := sess.Remove(ctx, out.Added); rerr != nil {
				err = fmt.Errorf("%w; rollback failed: %v", err, rerr)
			} else {
				out.RolledBack = true
				err = fmt.Errorf("%w; rolled back what was added", err)
			}
			if !o.json {
				_ = fix.RenderOutcome(s.Out, "added, then removed", out)
			}
			return emit(fixExitFailed, err)
		}
	}
	out.Notes = append(out.Notes, persistNotes(plan)...)
	report.Status = "applied"
	if !o.json {
		fmt.Fprintln(s.Out)
		if err := fix.RenderOutcome(s.Out, "added", out); err != nil {
			return err
		}
	}
	return emit(fixExitOK, nil)
}

// permissionDenied reports whether err comes from a missing privilege
// (EPERM or EACCES, as netlink and the iptables tools report it).
func permissionDenied(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) ||
		strings.Contains(err.Error(), "operation not permitted") || strings.Contains(err.Error(), "Permission denied")
}

// killStepEnv names the environment variable that makes fix-firewall kill
// itself with SIGKILL at the N-th change it is about to make (counted from
// 1): the lab tests (internal/e2e/fault_fixfirewall_test.go) use it to check
// that no kill leaves a half-applied change.
const killStepEnv = "VRRPDOCTOR_TEST_KILL_STEP"

// killStep returns the Step hook of killStepEnv, or nil when it is unset.
func killStep(s streams) func(string) {
	n, err := strconv.Atoi(os.Getenv(killStepEnv))
	if err != nil || n <= 0 {
		return nil
	}
	seen := 0
	return func(what string) {
		seen++
		if seen == n {
			fmt.Fprintf(s.ErrOut, "%s=%d: killed before %s\n", killStepEnv, n, what)
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // SIGKILL is not delivered synchronously
		}
	}
}

// checkDelivery watches the peers' adverts reach the VRRP socket after
// --apply, fills out.Delivery and its notes, and reports whether the check
// failed (adverts on the wire, none delivered).
func (o *fixFirewallOptions) checkDelivery(ctx context.Context, targets []fix.Target, out *fix.Outcome) bool {
	wait := o.deliveryWait
	if wait < 0 {
		adv := o.maxAdvert
		if adv == 0 {
			adv = time.Second
		}
		wait = 3*adv + 500*time.Millisecond
	}
	ws, notes := deliveryWatches(targets)
	out.Notes = append(out.Notes, notes...)
	if len(ws) == 0 {
		return false
	}
	ds, err := watchDelivery(ctx, ws, wait)
	out.Delivery = ds
	if err != nil {
		out.Notes = append(out.Notes, "delivery to the VRRP socket not checked: "+err.Error())
		return false
	}
	failed, notes := judgeDelivery(ds, wait)
	out.Notes = append(out.Notes, notes...)
	return failed
}

// persistNotes says how the nftables and iptables rules applied survive a
// reboot (Apply says it of the firewalld rich rules, which are permanent).
func persistNotes(plan *fix.Plan) []string {
	var notes []string
	seen := map[fix.Backend]bool{}
	for _, r := range plan.Rules {
		if seen[r.Backend] {
			continue
		}
		seen[r.Backend] = true
		switch r.Backend {
		case fix.NFT:
			n := "nftables: added to the running ruleset only."
			if _, err := os.Stat("/etc/nftables.conf"); err == nil {
				n += " This host loads /etc/nftables.conf at boot: add the same rules there, in the same chains, before the rules that drop:"
				for _, x := range plan.Rules {
					if x.Backend == fix.NFT {
						n += fmt.Sprintf("\n    table %s %s, chain %s: %s", x.Family, x.Table, x.Chain, x.Text)
					}
				}
			}
			notes = append(notes, n)
		case fix.IptablesNFT, fix.IptablesLegacy:
			n := string(r.Backend) + ": added to the running ruleset only."
			if _, err := os.Stat("/etc/iptables/rules.v4"); err == nil {
				n += " iptables-persistent is installed: save with iptables-save > /etc/iptables/rules.v4 (ip6tables-save > /etc/iptables/rules.v6)."
			}
			notes = append(notes, n)
		}
	}
	return notes
}

// targets are the VRRP traffic to let through: the configuration's
// instances (narrowed by -i and --family), or the flags alone.
func (o *fixFirewallOptions) targets(s streams) ([]fix.Target, error) {
	cfg, err := o.loadConfig(s)
	if err != nil {
		return nil, err
	}
	var self netip.Addr
	if o.self != "" {
		if self, err = netip.ParseAddr(o.self); err != nil {
			return nil, fixErr(fixExitUsage, "--self %q: %v", o.self, err)
		}
	}
	var peers []netip.Addr
	for _, p := range o.peers {
		a, err := netip.ParseAddr(p)
		if err != nil {
			return nil, fixErr(fixExitUsage, "--peer %q: %v", p, err)
		}
		peers = append(peers, a)
	}
	var out []fix.Target
	if cfg != nil && len(peers) == 0 {
		var ifaces []string
		for i := range cfg.Instances {
			inst := &cfg.Instances[i]
			ifaces = append(ifaces, inst.Interface)
			fam := int(inst.Family)
			if (o.iface != "" && inst.Interface != o.iface) || (o.family != 0 && fam != o.family) {
				continue
			}
			t := fix.Target{Name: fmt.Sprintf("%s (VRID %d)", inst.Name, inst.VRID), Iface: inst.Interface, Family: fam, Group: inst.McastGroup, In: o.in, Out: o.out}
			o.maxAdvert = max(o.maxAdvert, inst.AdvertInt)
			for _, p := range inst.UnicastPeers {
				t.Peers = append(t.Peers, p.Addr)
			}
			if len(t.Peers) > 0 {
				t.Group = netip.Addr{}
			}
			t.Self = inst.SrcIP
			if self.IsValid() {
				t.Self = self
			}
			if err := o.resolveSelf(&t); err != nil {
				return nil, fixErr(fixExitUsage, "%s sends to unicast peers and has no unicast_src_ip, and %v", inst.Name, err)
			}
			out = append(out, t)
		}
		if len(out) > 0 {
			return out, nil
		}
		if o.configSet {
			return nil, fixErr(fixExitUsage, "%s: no vrrp_instance matches -i %q --family %d (interfaces: %s)", o.config, o.iface, o.family, strings.Join(ifaces, ", "))
		}
		// The found configuration has nothing on -i: the flags alone say
		// what to let through.
		o.configUsed, o.configSource, o.configWhy = "", "", ""
	}
	if o.iface == "" {
		return nil, fixErr(fixExitUsage, "no VRRP daemon runs in this network namespace and there is no keepalived.conf at %s: name the interface with -i (or give a keepalived.conf with -c)", o.defaultConfig)
	}
	fam := o.family
	for _, a := range append(peers, self) {
		if !a.IsValid() {
			continue
		}
		af := 4
		if a.Is6() {
			af = 6
		}
		if fam == 0 {
			fam = af
		}
		if af != fam {
			return nil, fixErr(fixExitUsage, "%s is not an IPv%d address", a, fam)
		}
	}
	if fam == 0 {
		fam = 4
	}
	t := fix.Target{Iface: o.iface, Family: fam, In: o.in, Out: o.out, Peers: peers, Self: self}
	if len(peers) == 0 {
		t.Group = keepalived.DefaultMcastGroup4
		if fam == 6 {
			t.Group = keepalived.DefaultMcastGroup6
		}
	}
	if err := o.resolveSelf(&t); err != nil {
		return nil, fixErr(fixExitUsage, "%v", err)
	}
	return []fix.Target{t}, nil
}

// resolveSelf completes t.Self, the source of this node's adverts, from
// the interface (its link-local address for multicast over IPv6, as
// keepalived sends VRRPv3 adverts from it). Unicast needs one; multicast
// does without (rules never match on it, but the evaluator decides more
// with it).
func (o *fixFirewallOptions) resolveSelf(t *fix.Target) error {
	if t.Self.IsValid() {
		return nil
	}
	lookup := o.ownAddr
	switch {
	case len(o.rulesets) > 0:
		// Saved rulesets may come from another host.
		lookup = func(string, int, bool) netip.Addr { return netip.Addr{} }
	case lookup == nil:
		lookup = ownAddr
	}
	unicast := len(t.Peers) > 0
	t.Self = lookup(t.Iface, t.Family, !unicast && t.Family == 6)
	if unicast && !t.Self.IsValid() {
		return fmt.Errorf("%s has no IPv%d address: give this node's address with --self", t.Iface, t.Family)
	}
	return nil
}

// loadConfig reads keepalived.conf as check does: the -c file; else the
// one the VRRP daemon running in this network namespace reads; else the
// default one when it exists. nil means no configuration. It records
// which file was read, and why, in o.
func (o *fixFirewallOptions) loadConfig(s streams) (*keepalived.Config, error) {
	path, source, why := o.config, "flag", "-c"
	switch {
	case o.configSet && len(o.peers) > 0:
		return nil, fixErr(fixExitUsage, "--peer and -c exclude each other: the configuration names the peers")
	case o.configSet:
	case len(o.peers) > 0:
		return nil, nil
	default:
		p, ok := check.Process{}, false
		if o.daemonConfig != nil {
			p, ok = o.daemonConfig()
		}
		if ok {
			path, source, why = p.Config, "process", fmt.Sprintf("read by the running %s, pid %d", p.Kind, p.PID)
		} else {
			path, source, why = o.defaultConfig, "default", "the default; no VRRP daemon runs in this network namespace"
			if _, err := os.Stat(path); err != nil {
				return nil, nil
			}
		}
	}
	where := path
	if source == "process" {
		where = fmt.Sprintf("%s (%s)", path, why)
	}
	cfg, err := keepalived.ParseFile(path)
	if err != nil {
		var list keepalived.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				fmt.Fprintf(s.ErrOut, "%s\n", e)
			}
			return nil, fixErr(fixExitUsage, "%s: %d error(s) in the configuration", where, len(list))
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fixErr(fixExitUsage, "%s: no such file", where)
		}
		return nil, fixErr(fixExitUsage, "%v", err)
	}
	if len(cfg.Instances) == 0 {
		if source != "default" {
			return nil, fixErr(fixExitUsage, "%s has no vrrp_instance", where)
		}
		return nil, nil
	}
	o.configUsed, o.configSource, o.configWhy = path, source, why
	return cfg, nil
}
