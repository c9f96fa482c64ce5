// Package demo is `vrrpdoctor lab`: a two-node VRRP lab in network
// namespaces (vdlab-a, vdlab-b) with the classic split brain staged on the
// backup's firewall, the scripted demonstration that diagnoses and fixes it,
// and the up/status/exec/down commands for people who want to poke at it.
//
// The machine's own (root) network namespace is never changed: interfaces
// are created inside the lab's namespaces, every firewall and daemon command
// runs under `ip netns exec`, and firewalld gets a private D-Bus and a mount
// namespace of its own. Everything a lab makes is recorded in a state file
// (DefaultStateDir) before it is made; teardown removes exactly what is
// recorded, and stops a recorded process only while it still has the
// recorded start time and command line.
package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// DefaultStateDir holds the state file and the lock of the machine's lab.
const DefaultStateDir = "/run/vrrpdoctor-lab"

// The lab's fixed shape: two nodes on one veth link, one VRRP instance.
const (
	VRID      = 51
	VIP       = "198.51.100.100"
	vipPrefix = VIP + "/24"
	Instance  = "VI_51"
	Iface     = "eth0"
)

// Daemons and firewalls a lab can run.
const (
	DaemonKeepalived  = "keepalived"
	DaemonVrrpdoctor  = "vrrpdoctor"
	FirewallFirewalld = "firewalld"
	FirewallNft       = "nft"
)

// nodes are the lab's hosts: a is the master (priority 150), b the backup
// (priority 100) whose firewall drops VRRP.
var nodes = []Node{
	{Name: "a", Namespace: "vdlab-a", Addr: "198.51.100.1/24", Priority: 150},
	{Name: "b", Namespace: "vdlab-b", Addr: "198.51.100.2/24", Priority: 100},
}

// commandTimeout bounds each short command.
const commandTimeout = 30 * time.Second

// Options configure the lab commands.
type Options struct {
	// StateDir holds the state file; default DefaultStateDir.
	StateDir string
	// Daemon is DaemonKeepalived or DaemonVrrpdoctor; empty means
	// keepalived when it is installed, else this binary's `run`.
	Daemon string
	// NoFirewalld stages the split brain with an nftables ruleset even when
	// firewalld is installed.
	NoFirewalld bool
	// Keep leaves the demo's lab up at the end (as `lab up` would).
	Keep bool
	// Self is this vrrpdoctor binary (os.Executable()).
	Self string
	// Out receives the narrative; Colour switches ANSI colours on.
	Out    io.Writer
	Colour bool
}

func (o *Options) stateDir() string {
	if o.StateDir == "" {
		return DefaultStateDir
	}
	return o.StateDir
}

// lab is a lab being built or driven by this process.
type lab struct {
	opts Options
	p    *printer
	st   *State
	lock *os.File
}

// lookPath finds a program (a variable so tests can pretend one is missing).
var lookPath = exec.LookPath

// packages names the Debian package of each program the lab runs.
var packages = map[string]string{
	"ip": "iproute2", "keepalived": "keepalived", "nft": "nftables",
	"firewalld": "firewalld", "firewall-cmd": "firewalld", "dbus-daemon": "dbus",
	"unshare": "util-linux", "tcpdump": "tcpdump",
}

// missing lists the programs not on PATH, with their packages.
func missing(programs ...string) error {
	var msgs []string
	for _, p := range programs {
		if _, err := lookPath(p); err != nil {
			msgs = append(msgs, fmt.Sprintf("%s not found (apt-get install %s)", p, packages[p]))
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(strings.Join(msgs, "; "))
}

// choose resolves the daemon and firewall from the options and the
// programs installed.
func choose(o Options) (daemon, firewall string, err error) {
	switch o.Daemon {
	case "":
		daemon = DaemonKeepalived
		if missing("keepalived") != nil {
			daemon = DaemonVrrpdoctor
		}
	case DaemonKeepalived:
		if err := missing("keepalived"); err != nil {
			return "", "", fmt.Errorf("--daemon keepalived: %w, or use --daemon vrrpdoctor", err)
		}
		daemon = DaemonKeepalived
	case DaemonVrrpdoctor:
		daemon = DaemonVrrpdoctor
	default:
		return "", "", fmt.Errorf("--daemon %q: want keepalived or vrrpdoctor", o.Daemon)
	}
	if err := missing("ip"); err != nil {
		return "", "", err
	}
	if !o.NoFirewalld && missing("firewalld", "firewall-cmd", "dbus-daemon", "unshare") == nil {
		return daemon, FirewallFirewalld, nil
	}
	if err := missing("nft"); err != nil {
		return "", "", fmt.Errorf("no firewall to stage the split brain with: %w (or install firewalld)", err)
	}
	return daemon, FirewallNft, nil
}

// ErrBusy means another lab holds the machine's lab slot.
var ErrBusy = errors.New("lab busy")

// acquire takes the lab lock in the state directory: one lab command that
// builds or removes a lab at a time.
func acquire(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		owner := "another vrrpdoctor lab command"
		if st, err := LoadState(dir); err == nil && st.Owner.Alive() {
			owner = fmt.Sprintf("vrrpdoctor lab %s (pid %d)", st.Mode, st.Owner.PID)
		}
		return nil, fmt.Errorf("%w: %s is building or removing a lab; wait for it or stop it", ErrBusy, owner)
	}
	return f, nil
}

// nsExists reports whether a named network namespace exists.
func nsExists(ns string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", ns))
	return err == nil
}

// begin checks root, takes the lock, removes a stale lab and claims the
// namespaces for a new lab of mode.
func begin(o Options, mode string) (*lab, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the lab needs root (network namespaces, firewall, VRRP sockets): run it with sudo")
	}
	daemon, firewall, err := choose(o)
	if err != nil {
		return nil, err
	}
	if o.Self == "" {
		if o.Self, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("this binary: %w", err)
		}
	}
	lk, err := acquire(o.stateDir())
	if err != nil {
		return nil, err
	}
	l := &lab{opts: o, p: newPrinter(o.Out, o.Colour, o.Self), lock: lk}
	if err := l.removeStale(); err != nil {
		l.release()
		return nil, err
	}
	for _, n := range nodes {
		if nsExists(n.Namespace) {
			l.release()
			return nil, fmt.Errorf("network namespace %s exists but no lab records it: not touching it (if it is a left-over of yours: ip netns delete %s)", n.Namespace, n.Namespace)
		}
	}
	owner, err := Identify(os.Getpid(), "", "owner")
	if err != nil {
		l.release()
		return nil, err
	}
	dir, err := os.MkdirTemp("", "vrrpdoctor-lab-")
	if err != nil {
		l.release()
		return nil, err
	}
	l.st = &State{Version: StateVersion, Mode: mode, Owner: owner, Created: time.Now().UTC().Truncate(time.Second), Dir: dir, Daemon: daemon, Firewall: firewall, VIP: VIP}
	return l, l.save()
}

func (l *lab) save() error { return l.st.Save(l.opts.stateDir()) }

// release drops the lock.
func (l *lab) release() {
	if l.lock != nil {
		l.lock.Close()
		l.lock = nil
	}
}

// removeStale removes a recorded lab whose builder is gone and which was
// not left up on purpose; a lab that is up is an error.
func (l *lab) removeStale() error {
	st, err := LoadState(l.opts.stateDir())
	if errors.Is(err, ErrNoLab) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w (remove the file if no lab is running)", err)
	}
	if st.Mode == ModeUp && st.Complete {
		return fmt.Errorf("a lab is already up (since %s): see `vrrpdoctor lab status`, remove it with `vrrpdoctor lab down`", st.Created.Local().Format("15:04:05"))
	}
	if st.Owner.Alive() {
		return fmt.Errorf("%w: vrrpdoctor lab %s (pid %d) is running its lab", ErrBusy, st.Mode, st.Owner.PID)
	}
	l.p.warnf("a lab left by an earlier run (pid %d, %s, started %s) is still recorded: removing it", st.Owner.PID, st.Mode, st.Created.Local().Format("15:04:05"))
	return teardown(l.p, st, l.opts.stateDir())
}

// host runs a short command outside any node (ip -n ...), printing it.
func (l *lab) host(ctx context.Context, argv ...string) (string, error) {
	l.p.command("", argv)
	return run(ctx, nil, argv...)
}

// run runs argv with extra environment and returns its standard output;
// the error carries standard error.
func run(ctx context.Context, env []string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = strings.TrimSpace(out.String())
		}
		if msg != "" {
			return out.String(), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, msg)
		}
		return out.String(), fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return out.String(), nil
}

// nodeEnv is the environment of every command in node: the system bus is
// b's private one when firewalld runs there, and otherwise a socket that
// does not exist. D-Bus is not bound to network namespaces: with the
// machine's bus, firewall-cmd or fix-firewall in a lab node would read and
// change the machine's own firewalld.
func (s *State) nodeEnv(node string) []string {
	if node == "b" && s.Bus != "" {
		return []string{"DBUS_SYSTEM_BUS_ADDRESS=" + s.Bus}
	}
	dir := s.Dir
	if dir == "" {
		dir = "/nonexistent"
	}
	return []string{"DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + filepath.Join(dir, node, "no-system-bus")}
}

// NodeCommand returns argv wrapped to run in node's namespace, with the
// environment it needs. "vrrpdoctor" as the program means self.
func (s *State) NodeCommand(node, self string, argv []string) (wrapped, env []string, err error) {
	n := s.Node(node)
	if n == nil {
		names := make([]string, len(s.Nodes))
		for i, n := range s.Nodes {
			names[i] = n.Name
		}
		return nil, nil, fmt.Errorf("no node %q in the lab (nodes: %s)", node, strings.Join(names, ", "))
	}
	if len(argv) == 0 {
		return nil, nil, errors.New("no command to run")
	}
	argv = slices.Clone(argv)
	if argv[0] == "vrrpdoctor" {
		argv[0] = self
	}
	return append([]string{"ip", "netns", "exec", n.Namespace}, argv...), s.nodeEnv(node), nil
}

// in runs argv in node, printing it, and returns its standard output.
func (l *lab) in(ctx context.Context, node string, argv ...string) (string, error) {
	l.p.command(node, argv)
	w, env, err := l.st.NodeCommand(node, l.opts.Self, argv)
	if err != nil {
		return "", err
	}
	return run(ctx, env, w...)
}

// start starts argv in node in the background, detached (own session, no
// tie to this process's life), output to logPath, and records it.
func (l *lab) start(node, role, logPath string, argv ...string) (int, error) {
	l.p.command(node, argv)
	w, env, err := l.st.NodeCommand(node, l.opts.Self, argv)
	if err != nil {
		return 0, err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd := exec.Command(w[0], w[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	pid := cmd.Process.Pid
	go func() { _ = cmd.Wait() }() // reap it if it ends while this process runs
	p, err := Identify(pid, node, role)
	if err != nil {
		return 0, fmt.Errorf("%s exited at once: %s", role, tailFile(logPath, 10))
	}
	// `ip netns exec` and the shells exec the program: the start time stays,
	// the command line changes. Record it without a command line now and
	// with the final one once the program is ready (confirm).
	p.Cmdline = ""
	l.st.Procs = append(l.st.Procs, p)
	return pid, l.save()
}

// tailFile returns the last n lines of a file.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitFor polls cond every 100 ms until it holds, fails, ctx ends or
// timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopOrder ranks the roles of the lab's processes for teardown: the VRRP
// daemons first (keepalived stops its VRRP child itself), then what is left
// of them, then firewalld, then its bus. Unknown roles go last.
var stopOrder = [][]string{{"keepalived", "vrrpdoctor-run"}, {"keepalived-vrrp"}, {"firewalld"}, {"dbus-daemon"}}

func stopRank(role string) int {
	for i, roles := range stopOrder {
		if slices.Contains(roles, role) {
			return i
		}
	}
	return len(stopOrder)
}

// teardown stops the recorded processes that are still the recorded ones,
// deletes the recorded namespaces and data directory, and removes the state
// file. It reports what it could not do and goes on.
func teardown(p *printer, st *State, stateDir string) error {
	var errs []error
	for rank := 0; rank <= len(stopOrder); rank++ {
		var group []Proc
		for _, pr := range st.Procs {
			if stopRank(pr.Role) == rank && pr.Alive() {
				group = append(group, pr)
			}
		}
		errs = append(errs, stopAll(p, group)...)
	}
	for _, ns := range st.Namespaces {
		if !nsExists(ns) {
			continue
		}
		if out, err := run(context.Background(), nil, "ip", "netns", "pids", ns); err == nil && strings.TrimSpace(out) != "" {
			p.warnf("processes not started by the lab still run in %s: %s (left alone; the namespace ends when they exit)", ns, strings.Join(strings.Fields(out), " "))
		}
		p.command("", []string{"ip", "netns", "delete", ns})
		if _, err := run(context.Background(), nil, "ip", "netns", "delete", ns); err != nil {
			errs = append(errs, err)
		}
	}
	if st.Dir != "" {
		if err := os.RemoveAll(st.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("teardown: %w (the state file %s is kept)", err, StatePath(stateDir))
	}
	if err := os.Remove(StatePath(stateDir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// stopAll sends SIGTERM to the processes, waits up to 10 s, then SIGKILL.
func stopAll(p *printer, procs []Proc) []error {
	if len(procs) == 0 {
		return nil
	}
	for _, pr := range procs {
		p.command("", []string{"kill", fmt.Sprint(pr.PID)}, pr.Role+" on "+pr.Node)
		_ = syscall.Kill(pr.PID, syscall.SIGTERM)
	}
	var errs []error
	_ = waitFor(context.Background(), 10*time.Second, func() (bool, error) {
		return !slices.ContainsFunc(procs, Proc.Alive), nil
	})
	for _, pr := range procs {
		if !pr.Alive() {
			continue
		}
		p.warnf("%s (pid %d) ignored SIGTERM for 10 s: SIGKILL", pr.Role, pr.PID)
		_ = syscall.Kill(pr.PID, syscall.SIGKILL)
		if err := waitFor(context.Background(), 5*time.Second, func() (bool, error) { return !pr.Alive(), nil }); err != nil {
			errs = append(errs, fmt.Errorf("%s (pid %d) still runs after SIGKILL", pr.Role, pr.PID))
		}
	}
	return errs
}
