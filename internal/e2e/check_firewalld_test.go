package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
)

// checkStartOwned starts cmd with its output in dir and stops it, by PID,
// when the test ends (before the lab, whose cleanup was registered first).
func checkStartOwned(t *testing.T, cmd *exec.Cmd, dir, name string) {
	t.Helper()
	log, err := os.Create(filepath.Join(dir, name+".log"))
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

// checkStartFirewalld runs a real firewalld in host h as testing.md
// describes: a private system bus whose socket is in the test's directory,
// and firewalld in h's network namespace and a mount namespace of its own
// with a copy of /etc/firewalld (FirewallBackend=backend,
// CleanupModulesOnExit=no) and a tmpfs /run. It returns the bus address.
func checkStartFirewalld(t *testing.T, h *netlab.Host, backend string) string {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "bus")
	conf := filepath.Join(dir, "bus.conf")
	if err := netlab.WriteBusConfig(conf, sock); err != nil {
		t.Fatal(err)
	}
	// Cleanups run last-registered first: firewalld stops before its bus.
	checkStartOwned(t, exec.Command("dbus-daemon", "--config-file="+conf, "--nofork"), dir, "dbus-daemon")
	if err := netlab.WaitFor(10*time.Second, func() (bool, error) { _, err := os.Stat(sock); return err == nil, nil }); err != nil {
		t.Fatalf("private bus: %v", err)
	}
	bus := "unix:path=" + sock
	script, err := netlab.FirewalldScript(dir, backend)
	if err != nil {
		t.Fatal(err)
	}
	cmd := h.Command(context.Background(), "unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+bus)
	checkStartOwned(t, cmd, dir, "firewalld")
	if err := netlab.WaitFor(90*time.Second, func() (bool, error) {
		out, _ := checkFirewallCmd(bus, "--state")
		return strings.TrimSpace(out) == "running", nil
	}); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "firewalld.log"))
		t.Fatalf("firewalld in %s did not start: %v\n%s", h.Name(), err, log)
	}
	return bus
}

// checkFirewallCmd runs firewall-cmd against the firewalld on bus (it only
// talks D-Bus, so it needs no namespace).
func checkFirewallCmd(bus string, args ...string) (string, error) {
	cmd := exec.Command("firewall-cmd", args...)
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+bus)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestCheckFirewalldIptablesBackend: firewalld with FirewallBackend=iptables
// (CentOS 7's setup). Its default zone rejects VRRP in iptables' IN_public;
// there the classic direct rules do end the split brain, and check must say
// all is well (no false alarm).
func TestCheckFirewalldIptablesBackend(t *testing.T) {
	t.Parallel()
	for _, direct := range []bool{false, true} {
		name := "default"
		if direct {
			name = "direct"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := newCheckLab(t, "firewalld", "firewall-cmd", "dbus-daemon", "unshare", "iptables")
			bus := checkStartFirewalld(t, p.b, "iptables")
			p.envB = []string{"DBUS_SYSTEM_BUS_ADDRESS=" + bus}
			if direct {
				for _, args := range [][]string{
					{"--direct", "--add-rule", "ipv4", "filter", "INPUT", "0", "--in-interface", "eth0", "--destination", "224.0.0.18", "--protocol", "vrrp", "-j", "ACCEPT"},
					{"--direct", "--add-rule", "ipv4", "filter", "OUTPUT", "0", "--out-interface", "eth0", "--destination", "224.0.0.18", "--protocol", "vrrp", "-j", "ACCEPT"},
				} {
					if out, err := checkFirewallCmd(bus, args...); err != nil {
						t.Fatalf("firewall-cmd %v: %v: %s", args, err, out)
					}
				}
			}
			p.start(t, 3, 250*time.Millisecond)
			if direct {
				must(t, p.kb.WaitState(15*time.Second, "VI_51", "BACKUP"))
				p.waitHolders(t, p.a)
				time.Sleep(time.Second)
				rb, raw, _ := checkNode(t, p.lab, p.b, p.envB, "b")
				nodeWant{exit: 0, ids: []string{"healthy"}, not: []string{"accept-not-final", "firewall-input-drop"}}.verify(t, "b", rb, raw)
				return
			}
			p.waitHolders(t, p.a, p.b)
			rb, raw, _ := checkNode(t, p.lab, p.b, p.envB, "b")
			nodeWant{exit: 2, ids: []string{"firewall-input-drop/critical", "split-brain/critical"}, text: "in chain IN_public of table ip filter (iptables-nft"}.verify(t, "b", rb, raw)
			if fd := rb.find("firewall-input-drop"); fd != nil && (!strings.Contains(fd.evidence("deciding rule"), "owner firewalld") ||
				!strings.Contains(fd.Fix, `firewall-cmd --permanent --zone=public --add-rich-rule='rule family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept'`)) {
				t.Errorf("b: firewall-input-drop %+v", fd)
			}
		})
	}
}

// fixCommands extracts the firewall-cmd lines of a finding's fix.
func fixCommands(fix string) [][]string {
	var cmds [][]string
	for _, ln := range strings.Split(fix, "\n") {
		ln = strings.TrimSpace(ln)
		if !strings.HasPrefix(ln, "firewall-cmd ") {
			continue
		}
		// Split on spaces outside single quotes, dropping the quotes.
		var args []string
		var cur strings.Builder
		quoted := false
		for _, r := range ln {
			switch {
			case r == '\'':
				quoted = !quoted
			case r == ' ' && !quoted:
				if cur.Len() > 0 {
					args = append(args, cur.String())
					cur.Reset()
				}
			default:
				cur.WriteRune(r)
			}
		}
		if cur.Len() > 0 {
			args = append(args, cur.String())
		}
		cmds = append(cmds, args[1:])
	}
	return cmds
}

// TestCheckFirewalld: a real firewalld (nftables backend, default zone
// public) on the backup. Its zone rejects VRRP, so both nodes become master;
// check on b names firewalld's filter_IN_public reject and prints the rich
// rule for zone public. With the classic direct rules added (the CentOS 7
// fix), the split brain stays and check says why: accept-not-final. Running
// the printed firewall-cmd lines ends the split brain and check turns OK.
func TestCheckFirewalld(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		direct bool
	}{
		{"nftables-default", false},
		{"nftables-direct", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newCheckLab(t, "firewalld", "firewall-cmd", "dbus-daemon", "unshare", "nft")
			bus := checkStartFirewalld(t, p.b, "nftables")
			p.envB = []string{"DBUS_SYSTEM_BUS_ADDRESS=" + bus}
			if tc.direct {
				for _, fam := range [][]string{
					{"--direct", "--add-rule", "ipv4", "filter", "INPUT", "0", "--in-interface", "eth0", "--destination", "224.0.0.18", "--protocol", "vrrp", "-j", "ACCEPT"},
					{"--direct", "--add-rule", "ipv4", "filter", "OUTPUT", "0", "--out-interface", "eth0", "--destination", "224.0.0.18", "--protocol", "vrrp", "-j", "ACCEPT"},
				} {
					if out, err := checkFirewallCmd(bus, fam...); err != nil {
						t.Fatalf("firewall-cmd %v: %v: %s", fam, err, out)
					}
				}
			}
			p.start(t, 3, 250*time.Millisecond)
			p.waitHolders(t, p.a, p.b)
			_, rb, _, rawB := p.both(t)
			if rb.ExitCode != 2 || rb.find("split-brain") == nil {
				t.Errorf("b: exit %d, findings %v", rb.ExitCode, rb.ids())
			}
			fd := rb.find("firewall-input-drop")
			rule := ""
			if fd != nil {
				rule = fd.evidence("deciding rule")
			}
			for _, want := range []string{"rule `reject with icmpx admin-prohibited`", "chain filter_IN_public of table inet firewalld (nftables", "owner firewalld", "zone public"} {
				if !strings.Contains(rule, want) {
					t.Errorf("b: firewall-input-drop's deciding rule %q lacks %q", rule, want)
				}
			}
			rich := `firewall-cmd --permanent --zone=public --add-rich-rule='rule family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept'`
			if fd == nil || fd.Severity != "critical" || !strings.Contains(fd.Fix, rich) {
				t.Errorf("b: firewall-input-drop %+v, want the fix %s", fd, rich)
			}
			anf := rb.find("accept-not-final")
			want := "exit 2: split-brain firewall-input-drop/critical (filter_IN_public reject, owner firewalld, zone public)"
			if tc.direct {
				want += " accept-not-final/critical"
			}
			matrixRow(t, "b", want, rb)
			if tc.direct {
				if anf == nil || anf.Severity != "critical" || !strings.Contains(anf.evidence("accepted by"), "chain INPUT of table ip filter (iptables-nft, owner firewalld)") ||
					!strings.Contains(anf.evidence("then rejected by"), "filter_IN_public") {
					t.Errorf("b: accept-not-final %+v", anf)
				}
			} else if anf != nil {
				t.Errorf("b: accept-not-final without an accept: %+v", anf)
			}
			if t.Failed() {
				t.Logf("b:\n%s", rawB)
				return
			}

			// The fix as printed ends the split brain.
			for _, args := range fixCommands(fd.Fix) {
				if out, err := checkFirewallCmd(bus, args...); err != nil {
					t.Fatalf("fix: firewall-cmd %q: %v: %s", args, err, out)
				}
			}
			p.waitHolders(t, p.a)
			if err := netlab.WaitFor(10*time.Second, func() (bool, error) {
				return strings.Count(p.kb.Log(), "Entering BACKUP STATE") >= 2, nil
			}); err != nil {
				t.Fatalf("b did not return to backup: %v", err)
			}
			rb, rawB, _ = checkNode(t, p.lab, p.b, p.envB, "b-fixed")
			matrixRow(t, "b after the printed firewall-cmd fix", "exit 0: healthy", rb)
			if rb.ExitCode != 0 || rb.find("healthy") == nil {
				t.Errorf("b after the fix: exit %d, findings %v\n%s", rb.ExitCode, rb.ids(), rawB)
			}
		})
	}
}
