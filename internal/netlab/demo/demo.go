package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/diag/check"
)

// ErrInterrupted is returned when a signal ended the demo early.
var ErrInterrupted = errors.New("interrupted")

// Demo builds the lab, stages the split brain, diagnoses it with check,
// fixes it with fix-firewall --apply and waits for the pair to converge,
// printing every step and command to o.Out. It tears the lab down at the
// end, on error and when ctx is cancelled (a signal), unless o.Keep. It
// returns nil once the pair converged: one VIP holder, b in BACKUP.
func Demo(ctx context.Context, o Options) (err error) {
	l, err := begin(o, ModeDemo)
	if err != nil {
		return err
	}
	defer l.release()
	started := time.Now()
	p := l.p
	defer func() {
		if ctx.Err() != nil {
			// What the signal cut short does not matter: say so once.
			err = fmt.Errorf("%w by a signal at step %d: the lab is removed", ErrInterrupted, p.step)
		}
		if o.Keep && ctx.Err() == nil {
			l.st.Mode, l.st.Complete = ModeUp, true
			if serr := l.save(); serr != nil {
				err = errors.Join(err, serr)
			}
			fmt.Fprintln(p.w)
			p.say("The lab stays up (--keep). Look around, then remove it:")
			p.say("    sudo vrrpdoctor lab status")
			p.say("    sudo vrrpdoctor lab exec b -- vrrpdoctor check")
			p.say("    sudo vrrpdoctor lab down")
			return
		}
		fmt.Fprintf(p.w, "\n%s\n", p.head.Sprint("== Tear down"))
		if terr := teardown(p, l.st, l.opts.stateDir()); terr != nil {
			err = errors.Join(err, terr)
		} else {
			p.note("lab removed: its processes stopped, namespaces and files deleted")
		}
		if err == nil {
			p.good("demo done in %s", time.Since(started).Round(time.Second))
		}
	}()
	p.steps = 6
	l.intro()
	p.heading("Build the lab: two nodes, one link, a firewall on b, " + l.st.Daemon + " on both")
	if err := l.build(ctx); err != nil {
		return fmt.Errorf("building the lab: %w", err)
	}
	if err := l.splitBrain(ctx); err != nil {
		return err
	}
	if err := l.tcpdump(ctx); err != nil {
		return err
	}
	if err := l.check(ctx); err != nil {
		return err
	}
	if err := l.fix(ctx); err != nil {
		return err
	}
	return l.converge(ctx)
}

// intro says what the demo is about to do.
func (l *lab) intro() {
	p, st := l.p, l.st
	fw := "firewalld, default zone (nftables backend)"
	if st.Firewall == FirewallNft {
		fw = "nftables ruleset dropping IP protocol 112"
	}
	p.say("%s", p.cmd.Sprint("vrrpdoctor lab demo: the classic VRRP split brain, diagnosed and fixed"))
	p.say("  node a  %-8s %-16s %s, priority 150 (master)", "vdlab-a", "198.51.100.1", st.Daemon)
	p.say("  node b  %-8s %-16s %s, priority 100 (backup), firewall: %s", "vdlab-b", "198.51.100.2", st.Daemon, fw)
	p.say("  VRID %d, VRRPv2, one advert a second, virtual IP %s", VRID, VIP)
	if l.opts.Daemon == "" && st.Daemon == DaemonVrrpdoctor {
		p.note("keepalived is not installed: both nodes run `vrrpdoctor run`, which speaks the same VRRP and reads the same keepalived.conf")
	}
	if !l.opts.NoFirewalld && st.Firewall == FirewallNft {
		p.note("firewalld, dbus-daemon or unshare is not installed: b's firewall is an nftables rule")
	}
	p.note("Everything runs in network namespaces vdlab-a and vdlab-b; the machine's own network is not touched.")
	p.note("[b] $ CMD runs CMD in b's namespace; by hand (with --keep or lab up): sudo vrrpdoctor lab exec b -- CMD")
}

// splitBrain waits until both nodes hold the VIP and shows it.
func (l *lab) splitBrain(ctx context.Context) error {
	p := l.p
	p.heading("Split brain: both nodes hold the virtual IP")
	var hs []string
	err := waitFor(ctx, 30*time.Second, func() (bool, error) {
		var err error
		hs, err = l.st.Holders(ctx)
		return len(hs) == 2, err
	})
	if err != nil {
		return fmt.Errorf("the split brain did not happen (VIP holders %v): %w", hs, err)
	}
	if err := l.showAddrs(ctx); err != nil {
		return err
	}
	p.say("VRRP state: a %s, b %s  %s", l.st.VRRPState("a"), l.st.VRRPState("b"), p.bad.Sprint("← two masters: split brain"))
	return nil
}

// showAddrs shows eth0's addresses on both nodes, the VIP highlighted.
func (l *lab) showAddrs(ctx context.Context) error {
	for _, n := range l.st.Nodes {
		out, err := l.in(ctx, n.Name, "ip", "-br", "-4", "addr", "show", "dev", Iface)
		if err != nil {
			return err
		}
		l.p.output(out, VIP)
	}
	return nil
}

// tcpdump shows that a's adverts reach b's interface.
func (l *lab) tcpdump(ctx context.Context) error {
	p := l.p
	p.heading("tcpdump on b: a's adverts arrive")
	a := strings.Split(l.st.Nodes[0].Addr, "/")[0]
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := lookPath("tcpdump"); err == nil {
		out, err := l.in(cctx, "b", "tcpdump", "-c", "4", "-ni", Iface, "vrrp")
		if err != nil {
			return fmt.Errorf("tcpdump on b: %w", err)
		}
		p.output(out, a+" > ")
		if !strings.Contains(out, a+" > 224.0.0.18") {
			return fmt.Errorf("tcpdump on b saw no advert from a (%s)", a)
		}
	} else {
		p.note("(tcpdump is not installed: vrrpdoctor capture's wire column is what tcpdump would see)")
		out, err := l.in(cctx, "b", "vrrpdoctor", "capture", "-i", Iface, "--duration", "3s")
		if err != nil {
			return fmt.Errorf("capture on b: %w", err)
		}
		p.output(out, a)
		if !strings.Contains(out, a) {
			return fmt.Errorf("capture on b saw no advert from a (%s)", a)
		}
	}
	p.say("a's adverts (%s > 224.0.0.18) reach b's eth0 every second, so \"the network is fine\"...", a)
	p.say("yet b is MASTER too. tcpdump taps the packet %s the firewall; b's %s reads after it.", p.hl.Sprint("before"), l.st.Daemon)
	return nil
}

// check runs vrrpdoctor check on both nodes at once, shows b's report and
// the combined verdict.
func (l *lab) check(ctx context.Context) error {
	p := l.p
	p.heading("vrrpdoctor check on both nodes")
	type result struct {
		out  []byte
		err  error
		file string
	}
	res := map[string]*result{}
	var wg sync.WaitGroup
	for _, n := range l.st.Nodes {
		r := &result{file: filepath.Join(l.st.Dir, n.Name+".json")}
		res[n.Name] = r
		argv := []string{"vrrpdoctor", "check", "-c", n.Config, "--node", n.Name, "--json"}
		fmt.Fprintf(p.w, "%s %s %s\n", p.dim.Sprint("["+n.Name+"] $"), p.cmd.Sprint(p.quote(argv)), p.cmd.Sprint("> "+r.file))
		w, env, err := l.st.NodeCommand(n.Name, l.opts.Self, argv)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(cctx, w[0], w[1:]...)
			cmd.Env = append(os.Environ(), env...)
			var errb bytes.Buffer
			cmd.Stderr = &errb
			r.out, r.err = cmd.Output()
			var ee *exec.ExitError
			if errors.As(r.err, &ee) && len(r.out) > 0 {
				r.err = nil // check exits 2 on a critical finding: the report is what counts
			} else if r.err != nil {
				r.err = fmt.Errorf("check on %s: %w: %s", n.Name, r.err, strings.TrimSpace(errb.String()))
			}
		}()
	}
	wg.Wait()
	reports := map[string]*check.Report{}
	verdicts := map[string]verdictJSON{}
	for _, n := range l.st.Nodes {
		r := res[n.Name]
		if r.err != nil {
			return r.err
		}
		if err := os.WriteFile(r.file, r.out, 0o644); err != nil {
			return err
		}
		rep, err := check.ReadJSON(bytes.NewReader(r.out), r.file)
		if err != nil {
			return err
		}
		reports[n.Name] = rep
		var v verdictJSON
		if err := json.Unmarshal(r.out, &v); err != nil {
			return fmt.Errorf("%s: %w", r.file, err)
		}
		verdicts[n.Name] = v
	}
	fmt.Fprintln(p.w)
	for _, n := range l.st.Nodes {
		l.verdict(n.Name, verdicts[n.Name])
	}
	// The evidence: b's instance as check prints it.
	fmt.Fprintf(p.w, "\n%s\n", p.cmd.Sprint("The evidence, from b's report:"))
	var buf bytes.Buffer
	if err := check.WriteText(&buf, reports["b"], false); err != nil {
		return err
	}
	p.output(evidenceLines(buf.String()), "0 at the VRRP socket", "firewall in ")
	p.note("(whole reports: %s, %s; or run check by hand: sudo vrrpdoctor lab exec b -- vrrpdoctor check)", res["a"].file, res["b"].file)
	// The combined verdict, from the binary as a user runs it (no
	// namespace needed: it only reads the two reports).
	fmt.Fprintln(p.w)
	argv := []string{l.opts.Self, "check", "--combine", "--json", res["a"].file, res["b"].file}
	p.command("", argv)
	out, err := run(ctx, nil, argv...)
	var c verdictJSON
	if jerr := json.Unmarshal([]byte(out), &c); jerr != nil {
		return fmt.Errorf("check --combine: %w (%v)", jerr, err)
	}
	// The cause comes first; the rest repeats the nodes' findings.
	c.Findings = c.Findings[:min(1, len(c.Findings))]
	l.verdict("a+b", c)
	if !slices.ContainsFunc(verdicts["b"].Findings, func(f findingJSON) bool { return f.ID == "firewall-input-drop" }) {
		return fmt.Errorf("check on b did not find the firewall drop (findings: %s)", verdicts["b"].ids())
	}
	return nil
}

// verdictJSON is the part of a check --json report, one node's or combined
// (docs/check.md), that the demo prints.
type verdictJSON struct {
	Status   string        `json:"status"`
	Findings []findingJSON `json:"findings"`
}

type findingJSON struct {
	ID      string `json:"id"`
	Summary string `json:"summary"`
}

// ids lists the finding IDs for messages.
func (v verdictJSON) ids() string {
	var ids []string
	for _, f := range v.Findings {
		ids = append(ids, f.ID)
	}
	return strings.Join(ids, ", ")
}

// verdict prints a report's status and each finding's summary, wrapped.
func (l *lab) verdict(who string, v verdictJSON) {
	p := l.p
	fs := v.Findings
	st := strings.ToUpper(v.Status)
	switch st {
	case "OK":
		st = p.ok.Sprint(st)
	case "CRITICAL":
		st = p.bad.Sprint(st)
	default:
		st = p.hl.Sprint(st)
	}
	fmt.Fprintf(p.w, "%-4s %s\n", who, st)
	for _, f := range fs {
		lines := wrap(f.ID+": "+f.Summary, 95)
		fmt.Fprintf(p.w, "     %s%s\n", p.cmd.Sprint(f.ID+":"), strings.TrimPrefix(lines[0], f.ID+":"))
		for _, ln := range lines[1:] {
			fmt.Fprintf(p.w, "       %s\n", ln)
		}
	}
}

// wrap breaks text into lines of at most width runes at spaces.
func wrap(text string, width int) []string {
	var lines []string
	var cur []string
	n := 0
	for _, w := range strings.Fields(text) {
		if n > 0 && n+1+len([]rune(w)) > width {
			lines = append(lines, strings.Join(cur, " "))
			cur, n = nil, 0
		}
		if n > 0 {
			n++
		}
		cur = append(cur, w)
		n += len([]rune(w))
	}
	if len(cur) > 0 || len(lines) == 0 {
		lines = append(lines, strings.Join(cur, " "))
	}
	return lines
}

// evidenceLines keeps the lines of check's text report that show an
// instance as this node sees it: its state, the peers' adverts on the wire
// and at the socket, and the firewall's verdicts.
func evidenceLines(report string) string {
	var keep []string
	for _, ln := range strings.Split(report, "\n") {
		t := strings.TrimSpace(ln)
		if t == "Findings" {
			break
		}
		for _, prefix := range []string{"this node ", "VIPs held ", "peer ", "firewall in ", "firewall out "} {
			if strings.HasPrefix(t, prefix) {
				keep = append(keep, t)
				break
			}
		}
	}
	return strings.Join(keep, "\n")
}

// fix applies fix-firewall's narrow rule on b.
func (l *lab) fix(ctx context.Context) error {
	p := l.p
	p.heading("vrrpdoctor fix-firewall --apply on b")
	b := l.st.Node("b")
	out, err := l.in(ctx, "b", "vrrpdoctor", "fix-firewall", "-c", b.Config, "--apply", "--state", filepath.Join(l.nodeDir("b"), "fix-firewall.json"))
	p.output(out, "added:", "live check:", "reached the VRRP socket")
	if err != nil {
		return fmt.Errorf("fix-firewall --apply on b: %w", err)
	}
	return nil
}

// converge waits for exactly one VIP holder (a) and b in BACKUP.
func (l *lab) converge(ctx context.Context) error {
	p := l.p
	p.heading("Converged: one master, one VIP holder")
	var hs []string
	err := waitFor(ctx, 20*time.Second, func() (bool, error) {
		var err error
		hs, err = l.st.Holders(ctx)
		return slices.Equal(hs, []string{"a"}) && l.st.VRRPState("b") == "BACKUP", err
	})
	if serr := l.showAddrs(ctx); serr != nil && err == nil {
		err = serr
	}
	sa, sb := l.st.VRRPState("a"), l.st.VRRPState("b")
	if err != nil {
		p.fail("not converged: VIP holders %v, a %s, b %s", hs, sa, sb)
		return fmt.Errorf("the pair did not converge after the fix (VIP holders %v, a %s, b %s): %w", hs, sa, sb, err)
	}
	p.say("VRRP state: a %s, b %s", sa, sb)
	p.good("converged: only a holds %s, b is BACKUP", VIP)
	return nil
}
