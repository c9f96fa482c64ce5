package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/vrrpdoctor/vrrpdoctor/fw/firewalld"
)

// lab is one throwaway two-host lab: a host namespace (the firewall under
// test) and a peer namespace, joined by a veth pair. Everything it starts is
// stopped by PID and every namespace removed by close.
type lab struct {
	dir        string
	host, peer string
	procs      []*exec.Cmd
	busAddr    string // private D-Bus for firewalld, if started
}

const (
	hostV4 = "198.51.100.2"
	peerV4 = "198.51.100.1"
	hostV6 = "2001:db8::2"
	peerV6 = "2001:db8::1"
	hostLL = "fe80::2"
	peerLL = "fe80::1"
)

func newLab(name string) (*lab, error) {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	id := fmt.Sprintf("%d%s", os.Getpid(), hex.EncodeToString(b))
	dir, err := os.MkdirTemp("", "rulesetlab-"+name+"-")
	if err != nil {
		return nil, err
	}
	l := &lab{dir: dir, host: "vdrl" + id + "h", peer: "vdrl" + id + "p"}
	steps := [][]string{
		{"ip", "netns", "add", l.host},
		{"ip", "netns", "add", l.peer},
		{"ip", "link", "add", "vdrl" + id, "netns", l.host, "type", "veth", "peer", "name", "vdrp" + id, "netns", l.peer},
		{"ip", "-n", l.host, "link", "set", "vdrl" + id, "name", "eth0"},
		{"ip", "-n", l.peer, "link", "set", "vdrp" + id, "name", "eth0"},
	}
	for _, ns := range []struct{ ns, v4, v6, ll string }{{l.host, hostV4, hostV6, hostLL}, {l.peer, peerV4, peerV6, peerLL}} {
		steps = append(steps,
			[]string{"ip", "netns", "exec", ns.ns, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=0"},
			[]string{"ip", "-n", ns.ns, "link", "set", "eth0", "addrgenmode", "none"},
			[]string{"ip", "-n", ns.ns, "link", "set", "lo", "up"},
			[]string{"ip", "-n", ns.ns, "addr", "add", ns.v4 + "/24", "dev", "eth0"},
			[]string{"ip", "-n", ns.ns, "addr", "add", ns.v6 + "/64", "dev", "eth0", "nodad"},
			[]string{"ip", "-n", ns.ns, "addr", "add", ns.ll + "/64", "dev", "eth0", "nodad"},
			[]string{"ip", "-n", ns.ns, "link", "set", "eth0", "up"},
		)
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			l.close()
			return nil, fmt.Errorf("%s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
	return l, nil
}

// start runs a long-lived process and remembers it for close.
func (l *lab) start(logName string, env []string, argv ...string) (*exec.Cmd, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	f, err := os.Create(filepath.Join(l.dir, logName))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", argv[0], err)
	}
	f.Close()
	l.procs = append(l.procs, cmd)
	return cmd, nil
}

// stop ends one process started by start: SIGTERM, then SIGKILL.
func stop(cmd *exec.Cmd) {
	if cmd.Process == nil || cmd.ProcessState != nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func (l *lab) close() {
	for i := len(l.procs) - 1; i >= 0; i-- {
		stop(l.procs[i])
	}
	for _, ns := range []string{l.host, l.peer} {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
	_ = os.RemoveAll(l.dir)
}

// run runs a command in a namespace and returns its stdout.
func (l *lab) run(ns string, env []string, stdin string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %v: %s%s", strings.Join(argv, " "), err, errb.String(), out.String())
	}
	return out.String(), nil
}

// sh runs a setup script with sh -e in a namespace.
func (l *lab) sh(ns, script string) error {
	env := []string{"LAB_DIR=" + l.dir}
	if l.busAddr != "" {
		env = append(env, "DBUS_SYSTEM_BUS_ADDRESS="+l.busAddr)
	}
	// Refuse to run anywhere but the lab namespace it was meant for.
	guard := fmt.Sprintf("[ \"$(ip netns identify)\" = %q ] || { echo 'not in namespace %s' >&2; exit 99; }\n", ns, ns)
	_, err := l.run(ns, env, "", "sh", "-e", "-c", guard+script)
	return err
}

// startFirewalld runs a real firewalld in the host namespace with a private
// D-Bus, a copy of /etc/firewalld and a tmpfs /run in its own mount
// namespace. backend is "nftables", "iptables" (Debian's iptables, the nft
// flavour) or "iptables-legacy" (the iptables backend with the legacy
// binaries bind-mounted in firewalld's mount namespace, as on CentOS 7).
func (l *lab) startFirewalld(backend string) error {
	sock := filepath.Join(l.dir, "bus")
	conf := filepath.Join(l.dir, "bus.conf")
	if err := netlab.WriteBusConfig(conf, sock); err != nil {
		return err
	}
	if _, err := l.start("dbus.log", nil, "dbus-daemon", "--config-file="+conf, "--nofork"); err != nil {
		return err
	}
	if err := waitFor(10*time.Second, func() bool { _, err := os.Stat(sock); return err == nil }); err != nil {
		return fmt.Errorf("dbus-daemon socket: %w", err)
	}
	l.busAddr = "unix:path=" + sock
	script, err := netlab.FirewalldScript(l.dir, backend)
	if err != nil {
		return err
	}
	if _, err := l.start("firewalld.out", []string{"DBUS_SYSTEM_BUS_ADDRESS=" + l.busAddr},
		"ip", "netns", "exec", l.host, "unshare", "--mount", "--propagation", "private", "sh", "-c", script); err != nil {
		return err
	}
	// Ask over D-Bus rather than with firewall-cmd: a Python start every
	// poll would slow firewalld's own start on a small machine.
	return waitFor(60*time.Second, func() bool {
		conn, err := dbus.Connect(l.busAddr)
		if err != nil {
			return false
		}
		defer conn.Close()
		info, err := firewalld.Query(context.Background(), firewalld.Options{Conn: conn})
		return err == nil && info.Running
	})
}

// keepalivedConf is a MASTER that sends VRRP adverts every second: VRRPv2 to
// 224.0.0.18 for IPv4, VRRPv3 to ff02::12 for IPv6.
func keepalivedConf(family int) string {
	vip := "198.51.100.10/24"
	if family == 6 {
		vip = "2001:db8::10/64"
	}
	return fmt.Sprintf(`global_defs {
  router_id lab
}
vrrp_instance VI_1 {
  state MASTER
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 1
  virtual_ipaddress {
    %s
  }
}
`, vip)
}

func (l *lab) startKeepalived(ns string, family int) (*exec.Cmd, error) {
	conf := filepath.Join(l.dir, "keepalived-"+ns+".conf")
	if err := os.WriteFile(conf, []byte(keepalivedConf(family)), 0o644); err != nil {
		return nil, err
	}
	return l.start("keepalived-"+ns+".log", nil, "ip", "netns", "exec", ns, "keepalived", "-f", conf,
		"-p", filepath.Join(l.dir, ns+".pid"), "-r", filepath.Join(l.dir, ns+"-vrrp.pid"), "-n", "-l", "-D")
}

func waitFor(d time.Duration, ok func() bool) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ok() {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %v", d)
}
