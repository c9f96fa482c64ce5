package fwlab

import (
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

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
	script, err := netlab.FirewalldScript(dir, backend)
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

// StartBus runs a private system-type dbus-daemon, stopped by PID when the
// test ends, and returns its address.
func StartBus(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "bus")
	conf := filepath.Join(dir, "bus.conf")
	if err := netlab.WriteBusConfig(conf, sock); err != nil {
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
