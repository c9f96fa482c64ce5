package fwlab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
</busconfig>
`

// FirewalldTools are the programs StartFirewalld needs.
var FirewalldTools = map[string]string{"firewalld": "firewalld", "firewall-cmd": "firewalld", "dbus-daemon": "dbus-daemon", "unshare": "util-linux"}

// StartFirewalld runs a real firewalld in the namespace, with a private
// D-Bus, a copy of /etc/firewalld (FirewallBackend set to backend) and a
// tmpfs /run in a mount namespace of its own; both are stopped, by PID, when
// the test ends. It returns the bus address.
func (ns *NS) StartFirewalld(t *testing.T, backend string) string {
	t.Helper()
	bus := StartBus(t)
	dir := t.TempDir()
	script, err := FirewalldScript(dir, backend)
	if err != nil {
		t.Fatal(err)
	}
	start(t, dir, []string{"DBUS_SYSTEM_BUS_ADDRESS=" + bus}, "ip", "netns", "exec", ns.Name, "unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	waitFor(t, 60*time.Second, "firewalld", func() bool {
		out, _ := ns.FirewallCmd(bus, "--state")
		return strings.TrimSpace(string(out)) == "running"
	})
	return bus
}

// FirewalldScript copies /etc/firewalld under dir, sets FirewallBackend
// (backend "iptables-legacy" means the iptables backend with the legacy
// binaries, as on CentOS 7) and CleanupModulesOnExit=no, and returns the sh
// script that runs firewalld on that copy: to be run under
// `unshare --mount --propagation private` inside the lab namespace, so its
// bind mounts and tmpfs /run stay private.
func FirewalldScript(dir, backend string) (string, error) {
	etc := filepath.Join(dir, "etc-firewalld")
	if out, err := exec.Command("cp", "-a", "/etc/firewalld", etc).CombinedOutput(); err != nil {
		return "", fmt.Errorf("copy /etc/firewalld: %v: %s", err, out)
	}
	fb := backend
	if backend == "iptables-legacy" {
		fb = "iptables"
	}
	cf := filepath.Join(etc, "firewalld.conf")
	b, err := os.ReadFile(cf)
	if err != nil {
		return "", err
	}
	var lines []string
	for _, ln := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(ln, "CleanupModulesOnExit="):
			ln = "CleanupModulesOnExit=no"
		case strings.HasPrefix(ln, "FirewallBackend="):
			ln = "FirewallBackend=" + fb
		}
		lines = append(lines, ln)
	}
	if err := os.WriteFile(cf, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		return "", err
	}
	mounts := fmt.Sprintf("mount --bind %s /etc/firewalld && mount -t tmpfs tmpfs /run", etc)
	if backend == "iptables-legacy" {
		mounts += " && mount --bind /usr/sbin/xtables-legacy-multi /usr/sbin/xtables-nft-multi"
	}
	return fmt.Sprintf("%s && exec firewalld --nofork --nopid --system-config %s --log-file %s", mounts, etc, filepath.Join(dir, "firewalld.log")), nil
}

// WriteBusConfig writes a private system-type bus configuration listening
// on sock (any user may own any name: firewalld then treats callers as
// root, as it does without polkit).
func WriteBusConfig(path, sock string) error {
	return os.WriteFile(path, []byte(fmt.Sprintf(busConfig, sock)), 0o644)
}

// StartBus runs a private system-type dbus-daemon, stopped by PID when the
// test ends, and returns its address.
func StartBus(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "bus")
	conf := filepath.Join(dir, "bus.conf")
	if err := WriteBusConfig(conf, sock); err != nil {
		t.Fatal(err)
	}
	start(t, dir, nil, "dbus-daemon", "--config-file="+conf, "--nofork")
	waitFor(t, 10*time.Second, "dbus-daemon socket", func() bool { _, err := os.Stat(sock); return err == nil })
	return "unix:path=" + sock
}

// start runs a process for the test's duration; it is stopped by PID.
func start(t *testing.T, dir string, env []string, argv ...string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	log, err := os.Create(filepath.Join(dir, filepath.Base(argv[0])+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	log.Close()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
}

// FirewallCmd runs firewall-cmd against the firewalld on bus.
func (ns *NS) FirewallCmd(bus string, args ...string) ([]byte, error) {
	cmd := exec.Command("firewall-cmd", args...)
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+bus)
	return cmd.CombinedOutput()
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s not ready after %v", what, d)
}
