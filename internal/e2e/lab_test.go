package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/demo"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
)

// The `vrrpdoctor lab` commands (issue 9): the built binary builds its own
// lab in namespaces vdlab-a and vdlab-b, so these tests run one after the
// other, and each checks that nothing of the lab is left afterwards.

// labRequire skips (or fails in CI) without root and the programs, and
// refuses to run beside a lab someone else has up.
func labRequire(t *testing.T, programs ...string) string {
	t.Helper()
	netlabtest.Require(t, append([]string{"ip", "nft"}, programs...)...)
	bin := vrrpdoctor(t)
	if _, err := demo.LoadState(demo.DefaultStateDir); err == nil {
		t.Fatalf("a lab is recorded in %s (someone's `vrrpdoctor lab up`?): remove it with vrrpdoctor lab down before running this test", demo.DefaultStateDir)
	}
	for _, ns := range []string{"vdlab-a", "vdlab-b"} {
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); err == nil {
			t.Fatalf("network namespace %s exists but no lab records it", ns)
		}
	}
	return bin
}

// runLabCmd runs the binary with args (NO_COLOR) and returns its output and
// exit code.
func runLabCmd(t *testing.T, bin string, timeout time.Duration, args ...string) (string, int) {
	t.Helper()
	return runLabCmdEnv(t, bin, timeout, nil, args...)
}

// runLabCmdEnv is runLabCmd with more environment.
func runLabCmdEnv(t *testing.T, bin string, timeout time.Duration, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(append(os.Environ(), "NO_COLOR=1"), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("vrrpdoctor %s: %v", strings.Join(args, " "), time.Since(start).Round(100*time.Millisecond))
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	case err != nil:
		t.Fatalf("vrrpdoctor %v: %v\n%s", args, err, out.String())
	}
	return out.String(), 0
}

var labDirRE = regexp.MustCompile(`/tmp/vrrpdoctor-lab-[0-9]+`)

// labLeftovers lists what a lab run left: vdlab namespaces, a state file,
// its data directory, and processes whose command line names that directory
// (every daemon, firewalld and bus the lab starts has its files there).
func labLeftovers(t *testing.T, output string) []string {
	t.Helper()
	var left []string
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "vdlab-") {
			left = append(left, "namespace "+e.Name())
		}
	}
	if _, err := os.Stat(demo.StatePath(demo.DefaultStateDir)); err == nil {
		left = append(left, "state file")
	}
	dir := labDirRE.FindString(output)
	if dir == "" {
		return append(left, "no lab directory in the output")
	}
	if _, err := os.Stat(dir); err == nil {
		left = append(left, "directory "+dir)
	}
	// Processes end a moment after the signal; the lab waits for its own,
	// so allow only a short grace for the kernel to reap.
	deadline := time.Now().Add(3 * time.Second)
	for {
		procs := procsMentioning(dir)
		if len(procs) == 0 || time.Now().After(deadline) {
			return append(left, procs...)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// procsMentioning lists live (non-zombie) processes whose command line
// contains s.
func procsMentioning(s string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cl, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cl), s) {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if i := bytes.LastIndexByte(st, ')'); i > 0 && i+2 < len(st) && st[i+2] == 'Z' {
				continue
			}
		}
		out = append(out, "process "+e.Name()+": "+strings.ReplaceAll(string(cl), "\x00", " "))
	}
	return out
}

// TestLabDemo runs `vrrpdoctor lab demo` as a user would: the split brain
// is staged, check on b names the rule, fix-firewall adds the narrow rule,
// the pair converges, and nothing of the lab is left.
func TestLabDemo(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		programs []string
		rule     string // how check names the deciding rule on b
		added    string // fix-firewall's line for what it added
	}{
		{"firewalld", nil, []string{"keepalived", "firewalld", "firewall-cmd", "dbus-daemon", "unshare"},
			"chain filter_IN_public of table inet firewalld", `added: firewalld --zone=public rich rule 'rule family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept'`},
		{"nft", []string{"--no-firewalld"}, []string{"keepalived"},
			"rule `meta nfproto ipv4 ip protocol vrrp drop` in chain input of table inet filter", "added: nftables inet filter input"},
		{"vrrpdoctor-run", []string{"--no-firewalld", "--daemon", "vrrpdoctor"}, nil,
			"rule `meta nfproto ipv4 ip protocol vrrp drop` in chain input of table inet filter", "added: nftables inet filter input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := labRequire(t, tc.programs...)
			out, code := runLabCmd(t, bin, 4*time.Minute, append([]string{"lab", "demo"}, tc.args...)...)
			if code != 0 {
				t.Errorf("exit %d, want 0", code)
			}
			for _, want := range []string{
				"== 2/6  Split brain: both nodes hold the virtual IP",
				"VRRP state: a MASTER, b MASTER",
				"[b] $ tcpdump -c 4 -ni eth0 vrrp",
				"IP 198.51.100.1 > 224.0.0.18: VRRPv2, Advertisement, vrid 51, prio 150",
				"[b] $ vrrpdoctor check -c ",
				"firewall-input-drop: the firewall",
				tc.rule,
				"adverts at priority 150 on the wire, 0 at the VRRP socket",
				"$ vrrpdoctor check --combine ",
				"Cause on b's side.",
				"[b] $ vrrpdoctor fix-firewall -c ",
				tc.added,
				"VRRP state: a MASTER, b BACKUP",
				"✔ converged: only a holds 198.51.100.100, b is BACKUP",
				"== Tear down",
				"$ ip netns delete vdlab-b",
				"✔ demo done in ",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q", want)
				}
			}
			if tc.name == "vrrpdoctor-run" && strings.Contains(out, "keepalived-not-running") {
				t.Error("check on the nodes did not recognise vrrpdoctor run as the VRRP daemon")
			}
			if left := labLeftovers(t, out); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
			if t.Failed() {
				t.Logf("output:\n%s", out)
			}
		})
	}
}

// TestLabDemoWithoutTcpdump: on a machine without tcpdump, step 3 shows
// vrrpdoctor capture's wire view instead. PATH is a directory of links to
// every program on the real PATH but tcpdump.
func TestLabDemoWithoutTcpdump(t *testing.T) {
	bin := labRequire(t, "keepalived")
	pathDir := t.TempDir()
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if e.Name() == "tcpdump" {
				continue
			}
			// The first directory on PATH wins, as for the shell.
			_ = os.Symlink(filepath.Join(d, e.Name()), filepath.Join(pathDir, e.Name()))
		}
	}
	out, code := runLabCmdEnv(t, bin, 4*time.Minute, []string{"PATH=" + pathDir}, "lab", "demo", "--no-firewalld")
	if code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	for _, want := range []string{
		"(tcpdump is not installed: vrrpdoctor capture's wire column is what tcpdump would see)",
		"[b] $ vrrpdoctor capture -i eth0 --duration 3s",
		"✔ converged: only a holds 198.51.100.100, b is BACKUP",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "$ tcpdump") {
		t.Error("tcpdump ran although PATH has none")
	}
	if left := labLeftovers(t, out); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}

// TestLabUpStatusExecDown: the lab stays up for commands of one's own, and
// down removes it, twice without harm.
func TestLabUpStatusExecDown(t *testing.T) {
	bin := labRequire(t, "keepalived")
	var all strings.Builder
	t.Cleanup(func() {
		if _, err := demo.LoadState(demo.DefaultStateDir); err == nil {
			out, _ := runLabCmd(t, bin, time.Minute, "lab", "down")
			t.Logf("cleanup: %s", out)
		}
		if t.Failed() {
			t.Logf("output:\n%s", all.String())
		}
	})
	step := func(want int, args ...string) string {
		t.Helper()
		out, code := runLabCmd(t, bin, 3*time.Minute, args...)
		all.WriteString("$ vrrpdoctor " + strings.Join(args, " ") + "\n" + out)
		if code != want {
			t.Fatalf("vrrpdoctor %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, out)
		}
		return out
	}
	upOut := step(0, "lab", "up", "--no-firewalld")
	if !strings.Contains(upOut, "✔ lab up: the split brain is staged") {
		t.Errorf("up: %s", upOut)
	}
	st, err := demo.LoadState(demo.DefaultStateDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Procs) != 4 || !st.Complete || st.Mode != demo.ModeUp {
		t.Errorf("state: %+v", st)
	}
	// The lab's processes outlive `lab up`.
	for _, p := range st.Procs {
		if !p.Alive() {
			t.Errorf("%s on %s (pid %d) is not running after lab up", p.Role, p.Node, p.PID)
		}
	}
	out := step(0, "lab", "status")
	for _, want := range []string{"vdlab-a", "vdlab-b", "MASTER  holds", "keepalived", "running", "both nodes hold 198.51.100.100: split brain"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	out = step(2, "lab", "exec", "b", "--", "vrrpdoctor", "check", "--nagios")
	if !strings.HasPrefix(out, "VRRP CRITICAL - firewall-input-drop") {
		t.Errorf("check on b via exec: %s", out)
	}
	step(7, "lab", "exec", "a", "--", "sh", "-c", "exit 7")
	// D-Bus is not bound to namespaces: a node must never reach the
	// machine's system bus (and through it the machine's firewalld).
	if out := step(0, "lab", "exec", "a", "--", "sh", "-c", "echo $DBUS_SYSTEM_BUS_ADDRESS"); !strings.Contains(out, "/a/no-system-bus") {
		t.Errorf("system bus in node a: %q", out)
	}
	// The fix as lab up suggests it.
	fixLine := regexp.MustCompile(`sudo vrrpdoctor lab exec b -- (vrrpdoctor fix-firewall .*)`).FindStringSubmatch(upOut)
	if fixLine == nil {
		t.Fatalf("lab up suggests no fix-firewall command:\n%s", upOut)
	}
	step(0, append([]string{"lab", "exec", "b", "--"}, strings.Fields(fixLine[1])...)...)
	var statusOut string
	for deadline := time.Now().Add(20 * time.Second); ; {
		statusOut = step(0, "lab", "status")
		if strings.Contains(statusOut, "one VIP holder: a") || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !strings.Contains(statusOut, "one VIP holder: a") || !strings.Contains(statusOut, "BACKUP") {
		t.Errorf("after fix-firewall via exec, status:\n%s", statusOut)
	}
	// A second up refuses while this one runs.
	out = step(1, "lab", "up")
	if !strings.Contains(out, "a lab is already up") {
		t.Errorf("second up: %s", out)
	}
	out = step(0, "lab", "down")
	if !strings.Contains(out, "lab removed") {
		t.Errorf("down: %s", out)
	}
	for _, p := range st.Procs {
		if p.Alive() {
			t.Errorf("%s (pid %d) still runs after down", p.Role, p.PID)
		}
	}
	if left := labLeftovers(t, upOut); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if out := step(0, "lab", "down"); !strings.Contains(out, "no lab to remove") {
		t.Errorf("second down: %s", out)
	}
	step(1, "lab", "status")
	step(1, "lab", "exec", "a", "--", "true")
}

// startDemo starts `lab demo` and returns it with a reader of its output
// lines and a buffer of everything read.
func startDemo(t *testing.T, bin string, args ...string) (*exec.Cmd, *bufio.Scanner, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"lab", "demo"}, args...)...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	t.Cleanup(func() { pr.Close() })
	return cmd, bufio.NewScanner(pr), &strings.Builder{}
}

// readUntil reads output lines until one contains s.
func readUntil(t *testing.T, sc *bufio.Scanner, all *strings.Builder, s string) {
	t.Helper()
	for sc.Scan() {
		all.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), s) {
			return
		}
	}
	t.Fatalf("output ended before %q:\n%s", s, all.String())
}

// TestLabDemoInterrupt: Ctrl-C (SIGINT) in the middle of the demo removes
// the lab and exits 130.
func TestLabDemoInterrupt(t *testing.T) {
	bin := labRequire(t, "keepalived")
	cmd, sc, all := startDemo(t, bin, "--no-firewalld")
	readUntil(t, sc, all, "== 4/6")
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		all.WriteString(sc.Text() + "\n")
	}
	err := cmd.Wait()
	out := all.String()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("exit %v, want 130", err)
	}
	for _, want := range []string{"== Tear down", "$ ip netns delete vdlab-a", "interrupted by a signal at step 4: the lab is removed"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if left := labLeftovers(t, out); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}

// TestLabStale: a demo killed outright (SIGKILL: no teardown) leaves its
// lab; status calls it stale and the next start removes it first.
func TestLabStale(t *testing.T) {
	bin := labRequire(t, "keepalived")
	cmd, sc, all := startDemo(t, bin, "--no-firewalld")
	readUntil(t, sc, all, "== 2/6")
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	first := all.String()
	t.Cleanup(func() {
		if _, err := demo.LoadState(demo.DefaultStateDir); err == nil {
			out, _ := runLabCmd(t, bin, time.Minute, "lab", "down")
			t.Logf("cleanup: %s", out)
		}
	})
	out, code := runLabCmd(t, bin, time.Minute, "lab", "status")
	if code != 0 || !strings.Contains(out, "stale: the run that built it (pid "+strconv.Itoa(cmd.Process.Pid)+") is gone") {
		t.Errorf("status of the killed demo's lab: exit %d\n%s", code, out)
	}
	out, code = runLabCmd(t, bin, 3*time.Minute, "lab", "up", "--no-firewalld")
	if code != 0 || !strings.Contains(out, "a lab left by an earlier run (pid "+strconv.Itoa(cmd.Process.Pid)+", demo") {
		t.Errorf("up after the killed demo: exit %d\n%s", code, out)
	}
	// The killed demo's own directory and processes are gone.
	if dir := labDirRE.FindString(first); dir == "" {
		t.Errorf("no lab directory in the killed demo's output:\n%s", first)
	} else if procs := procsMentioning(dir); len(procs) > 0 {
		t.Errorf("the killed demo's processes still run: %v", procs)
	}
	down, code := runLabCmd(t, bin, time.Minute, "lab", "down")
	if code != 0 {
		t.Errorf("down: exit %d\n%s", code, down)
	}
	if left := labLeftovers(t, out); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}
