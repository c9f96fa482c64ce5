package demo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
)

// nftRuleset is the backup's firewall when firewalld is not used: an input
// chain that drops VRRP (IP protocol 112).
const nftRuleset = `table inet filter {
	chain input {
		type filter hook input priority filter; policy accept;
		ip protocol vrrp drop
	}
}
`

// nodeDir is a node's directory in the lab's data directory.
func (l *lab) nodeDir(node string) string { return filepath.Join(l.st.Dir, node) }

// build makes the namespaces and their link, stages the firewall on b and
// starts the VRRP daemons. Each thing is recorded before it is made.
func (l *lab) build(ctx context.Context) error {
	l.st.Nodes = append([]Node(nil), nodes...)
	for i := range l.st.Nodes {
		n := &l.st.Nodes[i]
		l.st.Namespaces = append(l.st.Namespaces, n.Namespace)
		if err := os.MkdirAll(l.nodeDir(n.Name), 0o755); err != nil {
			return err
		}
		n.Config = filepath.Join(l.nodeDir(n.Name), "keepalived.conf")
		n.DaemonLog = filepath.Join(l.nodeDir(n.Name), l.st.Daemon+".log")
	}
	if err := l.save(); err != nil {
		return err
	}
	a, b := l.st.Nodes[0], l.st.Nodes[1]
	steps := [][]string{
		{"ip", "netns", "add", a.Namespace},
		{"ip", "netns", "add", b.Namespace},
		{"ip", "-n", a.Namespace, "link", "add", Iface, "type", "veth", "peer", "name", Iface, "netns", b.Namespace},
	}
	for _, n := range l.st.Nodes {
		steps = append(steps,
			[]string{"ip", "-n", n.Namespace, "addr", "add", n.Addr, "dev", Iface},
			[]string{"ip", "-n", n.Namespace, "link", "set", "lo", "up"},
			[]string{"ip", "-n", n.Namespace, "link", "set", Iface, "up"})
	}
	for _, argv := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := l.host(ctx, argv...); err != nil {
			return err
		}
	}
	switch l.st.Firewall {
	case FirewallFirewalld:
		if err := l.startFirewalld(ctx); err != nil {
			return err
		}
	default:
		if err := l.stageNft(ctx); err != nil {
			return err
		}
	}
	for _, n := range l.st.Nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := l.startDaemon(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// stageNft loads the VRRP-dropping ruleset into b.
func (l *lab) stageNft(ctx context.Context) error {
	path := filepath.Join(l.nodeDir("b"), "nftables.conf")
	if err := os.WriteFile(path, []byte(nftRuleset), 0o644); err != nil {
		return err
	}
	l.p.note("b's firewall (%s):", path)
	l.p.output(nftRuleset, "vrrp drop")
	_, err := l.in(ctx, "b", "nft", "-f", path)
	return err
}

// startFirewalld runs a real firewalld in b (nftables backend, default
// zone) as testing.md describes: a private system bus whose socket is in
// the lab's directory, and firewalld in b's network namespace and a mount
// namespace of its own, on a copy of /etc/firewalld.
func (l *lab) startFirewalld(ctx context.Context) error {
	dir := l.nodeDir("b")
	sock := filepath.Join(dir, "bus")
	conf := filepath.Join(dir, "bus.conf")
	if err := netlab.WriteBusConfig(conf, sock); err != nil {
		return err
	}
	l.p.note("firewalld on b gets a private D-Bus and its own mount namespace: the machine's own firewalld and bus are not touched")
	busLog := filepath.Join(dir, "dbus-daemon.log")
	pid, err := l.start("b", "dbus-daemon", busLog, "dbus-daemon", "--config-file="+conf, "--nofork")
	if err != nil {
		return err
	}
	if err := waitFor(ctx, 10*time.Second, func() (bool, error) {
		_, err := os.Stat(sock)
		return err == nil, nil
	}); err != nil {
		return fmt.Errorf("private D-Bus for firewalld did not start: %w\n%s", err, tailFile(busLog, 10))
	}
	if err := l.confirm(ctx, pid); err != nil {
		return err
	}
	l.st.Bus = "unix:path=" + sock
	if err := l.save(); err != nil {
		return err
	}
	fw, err := netlab.PrepareFirewalld(dir, "nftables")
	if err != nil {
		return err
	}
	// No shell: this binary's hidden exec-firewalld does the mounts in the
	// mount namespace unshare makes, and execs firewalld.
	l.p.note("firewalld's mount namespace: its copy of /etc/firewalld bound over /etc/firewalld, a tmpfs over /run")
	outLog := filepath.Join(dir, "firewalld.out")
	pid, err = l.start("b", "firewalld", outLog,
		"unshare", "--mount", "--propagation", "private", l.opts.Self, "lab", "exec-firewalld", "--etc", fw.Etc, "--log", fw.Log)
	if err != nil {
		return err
	}
	l.p.command("b", []string{"firewall-cmd", "--state"})
	w, env, _ := l.st.NodeCommand("b", l.opts.Self, []string{"firewall-cmd", "--state"})
	if err := waitFor(ctx, 90*time.Second, func() (bool, error) {
		if st, ok := readStat(pid); !ok || st.state == 'Z' {
			return false, fmt.Errorf("firewalld exited:\n%s", tailFile(outLog, 10))
		}
		out, _ := run(ctx, env, w...)
		return strings.TrimSpace(out) == "running", nil
	}); err != nil {
		return fmt.Errorf("firewalld in b did not start: %w\n%s", err, tailFile(filepath.Join(dir, "firewalld.log"), 20))
	}
	l.p.output("running")
	if err := l.confirm(ctx, pid); err != nil {
		return err
	}
	zone, err := l.in(ctx, "b", "firewall-cmd", "--get-default-zone")
	if err != nil {
		return err
	}
	l.p.output(zone)
	svc, err := l.in(ctx, "b", "firewall-cmd", "--list-services")
	if err != nil {
		return err
	}
	l.p.output(svc)
	l.p.note("the default zone allows %s, nothing for VRRP: its catch-all reject drops a's adverts", strings.TrimSpace(svc))
	return nil
}

// daemonConfig is a node's keepalived.conf: the classic pair, VRRPv2,
// adverts every second.
func daemonConfig(n Node) (string, error) {
	state := "BACKUP"
	if n.Priority == 150 {
		state = "MASTER"
	}
	return netlab.KeepalivedConfig{
		RouterID: "lab_" + n.Name,
		Instances: []netlab.VRRPInstance{{
			Name: Instance, Interface: Iface, VRID: VRID, Priority: n.Priority, Version: 2,
			AdvertInt: time.Second, State: state, VIPs: []string{vipPrefix},
		}},
	}.Render()
}

// startDaemon writes n's configuration and starts its VRRP daemon.
func (l *lab) startDaemon(ctx context.Context, n Node) error {
	conf, err := daemonConfig(n)
	if err != nil {
		return err
	}
	if err := os.WriteFile(n.Config, []byte(conf), 0o644); err != nil {
		return err
	}
	if l.st.Daemon == DaemonVrrpdoctor {
		pid, err := l.start(n.Name, "vrrpdoctor-run", n.DaemonLog, "vrrpdoctor", "run", "-c", n.Config)
		if err != nil {
			return err
		}
		return l.confirm(ctx, pid)
	}
	dir := l.nodeDir(n.Name)
	vrrpPID := filepath.Join(dir, "keepalived-vrrp.pid")
	pid, err := l.start(n.Name, "keepalived", n.DaemonLog, "keepalived",
		"--use-file", n.Config,
		"--pid", filepath.Join(dir, "keepalived.pid"),
		"--vrrp_pid", vrrpPID,
		"--vrrp", "--dont-fork", "--log-console", "--log-detail", "--no-syslog")
	if err != nil {
		return err
	}
	var child int
	if err := waitFor(ctx, 15*time.Second, func() (bool, error) {
		b, err := os.ReadFile(vrrpPID)
		if err != nil {
			return false, nil
		}
		_, err = fmt.Sscan(string(b), &child)
		return err == nil && child > 0, nil
	}); err != nil {
		return fmt.Errorf("keepalived on %s did not start its VRRP process: %w\n%s", n.Name, err, tailFile(n.DaemonLog, 20))
	}
	if err := l.confirm(ctx, pid); err != nil {
		return err
	}
	p, err := Identify(child, n.Name, "keepalived-vrrp")
	if err != nil {
		return fmt.Errorf("keepalived on %s: %w\n%s", n.Name, err, tailFile(n.DaemonLog, 20))
	}
	l.st.Procs = append(l.st.Procs, p)
	return l.save()
}

// wrapperRE matches the command lines of the programs that start the lab's
// processes and exec them: `ip netns exec`, unshare, and this binary's
// exec-firewalld.
var wrapperRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(ip netns exec|unshare) | lab exec-firewalld `) })

// confirm waits until a started process runs its program (no longer the
// `ip netns exec`, unshare or exec-firewalld that started it) and records
// its final command line.
func (l *lab) confirm(ctx context.Context, pid int) error {
	var cl string
	err := waitFor(ctx, 10*time.Second, func() (bool, error) {
		if st, ok := readStat(pid); !ok || st.state == 'Z' {
			return false, fmt.Errorf("process %d exited", pid)
		}
		// The command line reads empty in the middle of an exec.
		cl = readCmdline(pid)
		return cl != "" && !wrapperRE().MatchString(cl), nil
	})
	if err != nil {
		return fmt.Errorf("process %d: %w", pid, err)
	}
	for i := range l.st.Procs {
		if l.st.Procs[i].PID == pid {
			l.st.Procs[i].Cmdline = cl
		}
	}
	return l.save()
}

// holds reports whether node's eth0 holds the VIP.
func (s *State) holds(ctx context.Context, node string) (bool, error) {
	n := s.Node(node)
	out, err := run(ctx, nil, "ip", "-n", n.Namespace, "-o", "-4", "addr", "show", "dev", Iface)
	if err != nil {
		return false, err
	}
	return strings.Contains(out, " "+VIP+"/"), nil
}

// Holders lists the nodes holding the VIP.
func (s *State) Holders(ctx context.Context) ([]string, error) {
	var hs []string
	for _, n := range s.Nodes {
		ok, err := s.holds(ctx, n.Name)
		if err != nil {
			return nil, err
		}
		if ok {
			hs = append(hs, n.Name)
		}
	}
	return hs, nil
}

// stateRE finds state changes in keepalived's and vrrpdoctor run's logs.
var stateRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`Entering (MASTER|BACKUP|FAULT) STATE|msg="state change".* to=([A-Z]+)`)
})

// VRRPState is node's last VRRP state in its daemon's log ("" if none yet).
func (s *State) VRRPState(node string) string {
	n := s.Node(node)
	if n == nil {
		return ""
	}
	b, err := os.ReadFile(n.DaemonLog)
	if err != nil {
		return ""
	}
	return lastState(string(b))
}

// lastState returns the last state a daemon log reports.
func lastState(log string) string {
	ms := stateRE().FindAllStringSubmatch(log, -1)
	if len(ms) == 0 {
		return ""
	}
	m := ms[len(ms)-1]
	if m[1] != "" {
		return m[1]
	}
	return m[2]
}
