package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
)

// fwStartFirewalld runs a real firewalld (nftables backend, default zone
// public) in host, on a private D-Bus, with a copy of /etc/firewalld and a
// tmpfs /run in a mount namespace of its own; the lab stops both by PID.
// It returns the bus address.
func fwStartFirewalld(t *testing.T, lab *netlab.Lab, host *netlab.Host) string {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "bus")
	conf := filepath.Join(dir, "bus.conf")
	if err := netlab.WriteBusConfig(conf, sock); err != nil {
		t.Fatal(err)
	}
	busProc, err := host.Start("dbus-daemon", "--config-file="+conf, "--nofork")
	if err != nil {
		t.Fatal(err)
	}
	fwWaitUntil(t, 10*time.Second, "private D-Bus", func() bool { _, err := os.Stat(sock); return err == nil })
	bus := "unix:path=" + sock
	script, err := netlab.FirewalldScript(dir, "nftables")
	if err != nil {
		t.Fatal(err)
	}
	fwProc, err := host.Start("env", "DBUS_SYSTEM_BUS_ADDRESS="+bus, "unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	if err != nil {
		t.Fatal(err)
	}
	// Stop firewalld before its bus (the lab stops everything at once, and
	// firewalld exits 1 when its bus goes first), by PID.
	t.Cleanup(func() {
		_ = fwProc.Stop(10 * time.Second)
		_ = busProc.Stop(5 * time.Second)
	})
	fwWaitUntil(t, 60*time.Second, "firewalld", func() bool {
		out, _ := fwFirewallCmd(host, bus, "--state")
		return strings.TrimSpace(out) == "running"
	})
	return bus
}

func fwFirewallCmd(host *netlab.Host, bus string, args ...string) (string, error) {
	cmd := host.Command(context.Background(), "firewall-cmd", args...)
	cmd.Env = append(cmd.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+bus)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func fwWaitUntil(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready after %v", what, d)
}

// fwExplain runs `vrrpdoctor fw explain args...` in host, talking to the
// firewalld on bus, and returns stdout, stderr and the exit status.
func fwExplain(t *testing.T, host *netlab.Host, bus string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := host.Command(ctx, vrrpdoctor(t), append([]string{"fw", "explain"}, args...)...)
	cmd.Env = append(cmd.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+bus)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return stdout.String(), stderr.String(), ee.ExitCode()
	case err != nil:
		t.Fatalf("vrrpdoctor fw explain: %v", err)
	}
	return stdout.String(), stderr.String(), 0
}

// fwReport is the part of `fw explain --json` (docs/fw.md) the test reads.
type fwReport struct {
	Verdict     string `json:"verdict"`
	Evaluations []struct {
		Label  string `json:"label"`
		Packet struct {
			Direction string `json:"direction"`
		} `json:"packet"`
		Verdict string `json:"verdict"`
		Rule    *struct {
			Backend, Family, Table, Chain, Text, Owner string
			Handle                                     uint64
		} `json:"rule"`
		Advice []string `json:"advice"`
		Trace  *struct {
			Packets []struct {
				Src     string `json:"src"`
				Verdict string `json:"verdict"`
			} `json:"packets"`
			Verdict string `json:"verdict"`
			Rule    *struct {
				Table, Chain string
				Handle       uint64
			} `json:"rule"`
			Agreement string   `json:"agreement"`
			Notes     []string `json:"notes"`
		} `json:"trace"`
		Final string `json:"final_verdict"`
	} `json:"evaluations"`
	Firewalld *struct {
		Running     bool   `json:"running"`
		Backend     string `json:"backend"`
		DefaultZone string `json:"default_zone"`
	} `json:"firewalld"`
}

func fwTraceTables(t *testing.T, host *netlab.Host) []string {
	t.Helper()
	out, err := host.Run("nft", "list", "tables")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, ln := range strings.Split(out, "\n") {
		if strings.Contains(ln, "vrrpdoctor_trace") {
			found = append(found, strings.TrimSpace(ln))
		}
	}
	return found
}

// fwKeepalived is the keepalived.conf of both nodes: VRRPv3 to 224.0.0.18
// every 200ms, VRID 51.
func fwKeepalived(state string, prio int) string {
	return fmt.Sprintf(`global_defs {
  router_id %s
  vrrp_version 3
}
vrrp_instance VI_1 {
  state %s
  interface eth0
  virtual_router_id 51
  priority %d
  advert_int 0.2
  virtual_ipaddress {
    198.51.100.100/24
  }
}
`, strings.ToLower(state), state, prio)
}

// TestFwExplainFirewalld is issue 5's "done when", live: host b runs a real
// firewalld 1.3.3 with its default zone and keepalived as BACKUP; a runs the
// MASTER. `vrrpdoctor fw explain` in b (keepalived.conf given with -c) must
// name firewalld's rule that rejects the adverts, say the fix belongs in
// firewalld, and with --trace the kernel must agree. Then the advice is
// followed (a rich rule in zone public) and explain must answer accept,
// confirmed by the kernel. Ctrl-C and SIGKILL during --trace must leave no
// table behind (the killed one's is removed at the next --trace).
func TestFwExplainFirewalld(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t, "keepalived", "nft", "firewalld", "firewall-cmd", "dbus-daemon", "unshare")
	vrrpdoctor(t)
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	bus := fwStartFirewalld(t, lab, b)
	conf := lab.Path("b-keepalived-fw.conf")
	if err := os.WriteFile(conf, []byte(fwKeepalived("BACKUP", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := b.StartKeepalived(fwKeepalived("BACKUP", 100)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.StartKeepalived(fwKeepalived("MASTER", 150)); err != nil {
		t.Fatal(err)
	}

	// Without --trace: the evaluation of the live ruleset.
	out, errOut, code := fwExplain(t, b, bus, "-c", conf)
	t.Logf("fw explain:\n%s%s", out, errOut)
	if code != 2 {
		t.Fatalf("exit %d, want 2 (reject)", code)
	}
	for _, want := range []string{
		"firewalld 1.3.3 runs, backend nftables, default zone public",
		"== VI_1 (VRID 51): adverts from any router to 224.0.0.18, in on eth0",
		"Verdict:  REJECT",
		"Decided by rule (nftables inet firewalld filter_IN_public handle",
		"owner firewalld):\n    reject with icmpx admin-prohibited",
		"The fix belongs in firewalld, not beside it",
		"firewall-cmd --permanent --zone=public --add-rich-rule='rule family=\"ipv4\" destination address=\"224.0.0.18\" protocol value=\"vrrp\" accept'",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	// --trace: the kernel's own verdict on a's adverts, and on b's own
	// (b never hears a, so it became MASTER too: split brain).
	out, errOut, code = fwExplain(t, b, bus, "-c", conf, "--trace", "--trace-count", "3", "--json")
	var rep fwReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("JSON: %v\n%s\n%s", err, out, errOut)
	}
	if code != 2 || rep.Verdict != "reject" || len(rep.Evaluations) != 2 || rep.Firewalld == nil || !rep.Firewalld.Running || rep.Firewalld.Backend != "nftables" {
		t.Fatalf("exit %d: %s\n%s", code, out, errOut)
	}
	in, own := rep.Evaluations[0], rep.Evaluations[1]
	if in.Packet.Direction != "in" || in.Rule == nil || in.Rule.Chain != "filter_IN_public" || in.Rule.Owner != "firewalld" || len(in.Advice) == 0 {
		t.Fatalf("in: %+v", in)
	}
	tr := in.Trace
	if tr == nil || len(tr.Packets) != 3 || tr.Verdict != "reject" || tr.Agreement != "agrees" || tr.Rule == nil || tr.Rule.Handle != in.Rule.Handle {
		t.Fatalf("in, kernel trace: %+v", tr)
	}
	for _, p := range tr.Packets {
		if p.Src != "198.51.100.1" || p.Verdict != "drop" {
			t.Fatalf("traced advert %+v", p)
		}
	}
	if own.Packet.Direction != "out" || own.Verdict != "accept" || own.Trace == nil || own.Trace.Verdict != "accept" || own.Trace.Agreement != "agrees" {
		t.Fatalf("out: %+v, trace %+v", own, own.Trace)
	}
	if tables := fwTraceTables(t, b); len(tables) != 0 {
		t.Fatalf("--trace left %v", tables)
	}

	// Follow the advice: the rich rule in zone public.
	for _, args := range [][]string{
		{"--permanent", "--zone=public", `--add-rich-rule=rule family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept`},
		{"--reload"},
	} {
		if out, err := fwFirewallCmd(b, bus, args...); err != nil {
			t.Fatalf("firewall-cmd %v: %v: %s", args, err, out)
		}
	}
	out, errOut, code = fwExplain(t, b, bus, "-c", conf, "--direction", "in", "--trace", "--trace-count", "2")
	t.Logf("after the fix:\n%s%s", out, errOut)
	if code != 0 || !strings.Contains(out, "Verdict:  ACCEPT") || !strings.Contains(out, "filter_IN_public_allow") || !strings.Contains(out, "The kernel agrees with the evaluation.") {
		t.Fatalf("exit %d after the fix", code)
	}

	// Ctrl-C during --trace: what was traced is reported, the table goes.
	cmd := b.Command(context.Background(), vrrpdoctor(t), "fw", "explain", "-c", conf, "--trace", "--trace-count", "100000", "--trace-timeout", "1m")
	cmd.Env = append(cmd.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+bus)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.Contains(sc.Text(), "tracing VRRP adverts") {
	}
	fwWaitUntil(t, 10*time.Second, "trace table", func() bool { return len(fwTraceTables(t, b)) > 0 })
	time.Sleep(time.Second)
	// `ip netns exec` execs vrrpdoctor: the PID is vrrpdoctor's.
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "Kernel trace (nftables,") || !strings.Contains(stdout.String(), "tracing stopped early: context canceled") {
		t.Fatalf("interrupted trace printed:\n%s", stdout.String())
	}
	if tables := fwTraceTables(t, b); len(tables) != 0 {
		t.Fatalf("Ctrl-C left %v", tables)
	}

	// SIGKILL (a crash): the table stays; the next --trace removes it.
	cmd = b.Command(context.Background(), vrrpdoctor(t), "fw", "explain", "-c", conf, "--trace", "--trace-count", "100000", "--trace-timeout", "1m")
	cmd.Env = append(cmd.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+bus)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	fwWaitUntil(t, 10*time.Second, "trace table", func() bool { return len(fwTraceTables(t, b)) > 0 })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if tables := fwTraceTables(t, b); len(tables) == 0 {
		t.Fatal("the killed trace's table is gone already")
	}
	if _, errOut, code := fwExplain(t, b, bus, "-c", conf, "--direction", "in", "--trace", "--trace-count", "1"); code != 0 {
		t.Fatalf("--trace after a crash: exit %d: %s", code, errOut)
	}
	if tables := fwTraceTables(t, b); len(tables) != 0 {
		t.Fatalf("stale table not removed: %v", tables)
	}
}
