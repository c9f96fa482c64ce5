package demo

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startSleep starts a process this test owns and returns it with its
// identity; it is killed at the end of the test whatever happens.
func startSleep(t *testing.T) (*exec.Cmd, Proc, <-chan struct{}) {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start sleep: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	var p Proc
	if err := waitFor(t.Context(), 5*time.Second, func() (bool, error) {
		var err error
		p, err = Identify(cmd.Process.Pid, "a", "keepalived")
		return err == nil && strings.HasPrefix(p.Cmdline, "sleep"), nil
	}); err != nil {
		t.Fatal(err)
	}
	return cmd, p, done
}

// TestTeardownStopsOnlyRecordedIdentity: a PID whose start time or command
// line differs from the record is never signalled; the recorded one is.
func TestTeardownStopsOnlyRecordedIdentity(t *testing.T) {
	stateDir := t.TempDir()
	_, real, done := startSleep(t)
	for _, impostor := range []Proc{
		{Node: "a", Role: "keepalived", PID: real.PID, Start: real.Start + 1, Cmdline: real.Cmdline},
		{Node: "a", Role: "keepalived", PID: real.PID, Start: real.Start, Cmdline: "keepalived -f other.conf"},
	} {
		dataDir := filepath.Join(t.TempDir(), "vrrpdoctor-lab-1")
		if err := os.Mkdir(dataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		st := testState()
		st.Dir, st.Namespaces, st.Nodes, st.Procs = dataDir, []string{"vdlab-zzunit"}, nil, []Proc{impostor}
		if err := st.Save(stateDir); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := teardown(newPrinter(&out, false, ""), st, stateDir); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
			t.Fatalf("teardown killed pid %d recorded as %+v (it is %+v)", real.PID, impostor, real)
		case <-time.After(200 * time.Millisecond):
		}
		if strings.Contains(out.String(), "kill") {
			t.Errorf("teardown printed a kill for an impostor:\n%s", out.String())
		}
		if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
			t.Errorf("data directory not removed: %v", err)
		}
		if _, err := LoadState(stateDir); err != ErrNoLab {
			t.Errorf("state file after teardown: %v", err)
		}
	}

	st := testState()
	st.Dir, st.Namespaces, st.Nodes, st.Procs = "", nil, nil, []Proc{real}
	var out bytes.Buffer
	if err := teardown(newPrinter(&out, false, ""), st, stateDir); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("teardown did not stop the recorded process")
	}
	if want := "$ kill " + itoa(real.PID) + "   # keepalived on a"; !strings.Contains(out.String(), want) {
		t.Errorf("teardown output %q lacks %q", out.String(), want)
	}
}

func TestStopRank(t *testing.T) {
	order := []string{"keepalived", "keepalived-vrrp", "firewalld", "dbus-daemon", "something-else"}
	for i := 1; i < len(order); i++ {
		if stopRank(order[i-1]) >= stopRank(order[i]) {
			t.Errorf("%s does not stop before %s", order[i-1], order[i])
		}
	}
	if stopRank("vrrpdoctor-run") != stopRank("keepalived") {
		t.Error("the two daemons stop at different ranks")
	}
}

// The lock admits one lab command at a time.
func TestAcquire(t *testing.T) {
	dir := t.TempDir()
	first, err := acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acquire(dir); err == nil || !strings.Contains(err.Error(), "lab busy") {
		t.Errorf("second acquire: %v", err)
	}
	first.Close()
	again, err := acquire(dir)
	if err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	again.Close()
}
