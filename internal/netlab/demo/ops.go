package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// Up builds the lab with the split brain staged and leaves it running:
// the processes are detached (their own sessions), and the state file
// records them for Status, Exec and Down. On error or when ctx is cancelled
// it removes what it made.
func Up(ctx context.Context, o Options) (err error) {
	l, err := begin(o, ModeUp)
	if err != nil {
		return err
	}
	defer l.release()
	p := l.p
	defer func() {
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("%w by a signal: the lab is removed", ErrInterrupted)
		}
		fmt.Fprintf(p.w, "\n%s\n", p.head.Sprint("== Tear down"))
		err = errors.Join(err, teardown(p, l.st, l.opts.stateDir()))
	}()
	l.intro()
	p.heading("Build the lab: two nodes, one link, a firewall on b, " + l.st.Daemon + " on both")
	if err := l.build(ctx); err != nil {
		return fmt.Errorf("building the lab: %w", err)
	}
	if err := l.splitBrain(ctx); err != nil {
		return err
	}
	l.st.Complete = true
	if err := l.save(); err != nil {
		return err
	}
	fmt.Fprintln(p.w)
	p.good("lab up: the split brain is staged. Try:")
	p.say("    sudo vrrpdoctor lab status")
	p.say("    sudo vrrpdoctor lab exec b -- tcpdump -c 4 -ni eth0 vrrp")
	p.say("    sudo vrrpdoctor lab exec b -- vrrpdoctor check")
	// fix-firewall's own --state would record the lab's rich rule in the
	// machine's /var/lib/vrrpdoctor: keep it in the lab's directory.
	p.say("    sudo vrrpdoctor lab exec b -- vrrpdoctor fix-firewall -i eth0 --in --apply --state %s", filepath.Join(l.nodeDir("b"), "fix-firewall.json"))
	p.say("    sudo vrrpdoctor lab down")
	return nil
}

// Down removes the recorded lab: it stops the recorded processes that are
// still the recorded ones, deletes the recorded namespaces and the lab's
// directory and state file. Without a recorded lab it does nothing and
// returns nil; removed reports whether there was one.
func Down(o Options) (removed bool, err error) {
	if os.Geteuid() != 0 {
		return false, errors.New("removing the lab needs root: run it with sudo")
	}
	st, err := LoadState(o.stateDir())
	if errors.Is(err, ErrNoLab) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w (remove the file if no lab is running)", err)
	}
	lk, err := acquire(o.stateDir())
	if err != nil {
		return false, err
	}
	defer lk.Close()
	// Read again under the lock: a demo may have removed it meanwhile.
	if st, err = LoadState(o.stateDir()); errors.Is(err, ErrNoLab) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if st.Mode == ModeDemo && st.Owner.Alive() {
		return false, fmt.Errorf("%w: vrrpdoctor lab demo (pid %d) runs this lab and removes it itself (Ctrl-C it to stop it early)", ErrBusy, st.Owner.PID)
	}
	p := newPrinter(o.Out, o.Colour, o.Self)
	return true, teardown(p, st, o.stateDir())
}

// Status writes the recorded lab's nodes, processes, VIP holders and VRRP
// states to o.Out. It returns ErrNoLab when no lab is recorded.
func Status(ctx context.Context, o Options) error {
	st, err := LoadState(o.stateDir())
	if err != nil {
		return err
	}
	p := newPrinter(o.Out, o.Colour, o.Self)
	fw := st.Firewall
	if fw == FirewallFirewalld {
		fw = "firewalld (private D-Bus " + st.Bus + ")"
	}
	p.say("%s since %s: daemon %s, firewall on b: %s", p.cmd.Sprint("vrrpdoctor lab"), st.Created.Local().Format("2006-01-02 15:04:05"), st.Daemon, fw)
	p.say("VRID %d, VIP %s, files in %s", VRID, st.VIP, st.Dir)
	switch {
	case st.Owner.Alive() && st.Mode == ModeDemo:
		p.note("a demo (pid %d) is running it and removes it when it ends", st.Owner.PID)
	case st.Owner.Alive() && !st.Complete:
		p.note("being built by pid %d", st.Owner.PID)
	case !st.Complete || st.Mode == ModeDemo:
		p.warnf("stale: the run that built it (pid %d) is gone; vrrpdoctor lab down removes it", st.Owner.PID)
	}
	fmt.Fprintln(p.w)
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tNAMESPACE\tADDRESS\tPRIO\tVRRP\tVIP\tPROCESSES")
	var holders []string
	for _, n := range st.Nodes {
		ns := n.Namespace
		if !nsExists(ns) {
			ns += " (gone)"
		}
		vip := "-"
		if ok, err := st.holds(ctx, n.Name); err == nil && ok {
			vip = "holds"
			holders = append(holders, n.Name)
		} else if err != nil {
			vip = "?"
		}
		vrrp := st.VRRPState(n.Name)
		if vrrp == "" {
			vrrp = "?"
		}
		var procs []string
		for _, pr := range st.Procs {
			if pr.Node != n.Name {
				continue
			}
			mark := "running"
			if !pr.Alive() {
				mark = "GONE"
			}
			procs = append(procs, fmt.Sprintf("%s %d %s", pr.Role, pr.PID, mark))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", n.Name, ns, n.Addr, n.Priority, vrrp, vip, strings.Join(procs, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(p.w)
	switch len(holders) {
	case 0:
		p.fail("no node holds %s", st.VIP)
	case 1:
		p.good("one VIP holder: %s", holders[0])
	default:
		fmt.Fprintf(p.w, "%s both nodes hold %s: split brain\n", p.bad.Sprint("✘"), st.VIP)
	}
	return nil
}

// Exec runs argv in node's namespace with stdin, stdout and stderr passed
// through and returns its exit code ("vrrpdoctor" means this binary; b's
// commands get its firewalld's private bus). Signals the terminal sends
// reach the command; this process waits for it.
func Exec(ctx context.Context, o Options, node string, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	st, err := LoadState(o.stateDir())
	if errors.Is(err, ErrNoLab) {
		return 0, errors.New("no lab is up: start one with `vrrpdoctor lab up`")
	}
	if err != nil {
		return 0, err
	}
	self := o.Self
	if self == "" {
		if self, err = os.Executable(); err != nil {
			return 0, err
		}
	}
	w, env, err := st.NodeCommand(node, self, argv)
	if err != nil {
		return 0, err
	}
	if !nsExists(st.Node(node).Namespace) {
		return 0, fmt.Errorf("namespace %s of node %s is gone: vrrpdoctor lab down, then lab up", st.Node(node).Namespace, node)
	}
	cmd := exec.CommandContext(ctx, w[0], w[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.WaitDelay = 5 * time.Second
	// The command decides what a signal means (tcpdump prints its counts on
	// Ctrl-C): pass them on and wait for its exit.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case s := <-sigs:
				// ip netns exec execs the command: the PID is the command's.
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	return exitCode(cmd.Wait())
}

// exitCode turns a command's end into a shell-style exit code: its status,
// or 128 + the signal that ended it.
func exitCode(err error) (int, error) {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return 0, err
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ee.ExitCode(), nil
}
