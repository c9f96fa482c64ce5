package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
)

// notifyListener collects the datagrams sent to a systemd-style
// notification socket.
type notifyListener struct {
	path string
	conn *net.UnixConn
	mu   sync.Mutex
	msgs []string
}

func listenNotify(t *testing.T) *notifyListener {
	t.Helper()
	n := &notifyListener{path: filepath.Join(t.TempDir(), "notify")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n.conn = conn
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, string(buf[:k]))
			n.mu.Unlock()
		}
	}()
	return n
}

func (n *notifyListener) all() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.msgs...)
}

// wait waits for a message containing substr after the first after
// messages, and returns the index after it.
func (n *notifyListener) wait(t *testing.T, after int, substr string) int {
	t.Helper()
	var idx int
	err := netlab.WaitFor(25*time.Second, func() (bool, error) {
		for i, m := range n.all() {
			if i >= after && strings.Contains(m, substr) {
				idx = i + 1
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no notification %q after #%d; got %q", substr, after, n.all())
	}
	return idx
}

// TestDaemonSystemdNotify runs `vrrpdoctor run` the way the unit does:
// with $NOTIFY_SOCKET and $WATCHDOG_USEC, and with only CAP_NET_RAW and
// CAP_NET_ADMIN (bounding, ambient, securebits noroot, no_new_privs, as
// setpriv sets them). It must become Master next to a keepalived backup,
// say READY=1 with its state, ping the watchdog, bracket a SIGHUP reload
// with RELOADING=1 and READY=1, and say STOPPING=1 before it removes its
// address on SIGTERM.
func TestDaemonSystemdNotify(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t, "keepalived")
	bin := vrrpdoctor(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		msg := "setpriv not found: apt-get install util-linux"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.StartKeepalived(renderConf(t, "b", "", daemonSplitInstance(100))); err != nil {
		t.Fatal(err)
	}
	n := listenNotify(t)
	path := lab.Path("a-notify.conf")
	if err := os.WriteFile(path, []byte(renderConf(t, "a", "", daemonSplitInstance(150))), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := a.Start("env", "NOTIFY_SOCKET="+n.path, "WATCHDOG_USEC=1000000",
		setpriv, "--bounding-set=-all,+net_raw,+net_admin", "--inh-caps=-all,+net_raw,+net_admin",
		"--ambient-caps=-all,+net_raw,+net_admin", "--securebits=+noroot,+noroot_locked", "--no-new-privs",
		bin, "run", "-c", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("vrrpdoctor log:\n%s\nnotifications: %q", tail(p.Log(), 60), n.all())
		}
	})
	i := n.wait(t, 0, "READY=1")
	if m := n.all()[i-1]; !strings.Contains(m, "STATUS=VI_52 ") {
		t.Errorf("READY=1 without the instance's state: %q", m)
	}
	i = n.wait(t, i, "WATCHDOG=1")
	// The diagnosis runs with the two capabilities too: the status line
	// says so once its first window is complete (refreshed every 10 s).
	i = n.wait(t, i, "STATUS=VI_52 MASTER; findings: none")
	if err := netlab.WaitFor(10*time.Second, func() (bool, error) { return a.HasAddr(daemonVIP) }); err != nil {
		t.Fatalf("a never held the VIP with CAP_NET_RAW and CAP_NET_ADMIN only: %v", err)
	}
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	i = n.wait(t, i, "RELOADING=1")
	if m := n.all()[i-1]; !strings.Contains(m, "\nMONOTONIC_USEC=") {
		t.Errorf("RELOADING=1 without MONOTONIC_USEC: %q", m)
	}
	i = n.wait(t, i, "READY=1")
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	n.wait(t, i, "STOPPING=1")
	if err := p.Wait(10 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if held, err := a.HasAddr(daemonVIP); err != nil || held {
		t.Errorf("the VIP is left behind after SIGTERM (%v)", err)
	}
}
