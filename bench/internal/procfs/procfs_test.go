package procfs

import (
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

func TestTreeAndStatus(t *testing.T) {
	child := exec.Command("sleep", "5")
	if err := child.Start(); err != nil {
		t.Skip("no sleep to start:", err)
	}
	defer child.Process.Kill()
	tree := Tree(os.Getpid())
	if tree[0] != os.Getpid() || !slices.Contains(tree, child.Process.Pid) {
		t.Fatalf("Tree(%d) = %v, want this process first and its child %d", os.Getpid(), tree, child.Process.Pid)
	}
	if kb := StatusKB(os.Getpid(), "VmHWM:"); kb <= 0 {
		t.Fatalf("VmHWM of this process: %d kB", kb)
	}
	if kb := StatusKB(os.Getpid(), "NoSuchField:"); kb != 0 {
		t.Fatalf("a missing field read %d", kb)
	}
}

func TestRunNs(t *testing.T) {
	before := RunNs(os.Getpid())
	if before <= 0 {
		t.Fatalf("RunNs of this process: %d", before)
	}
	// Spin for 50 ms of wall time on this thread: all of it is CPU time.
	x := 0
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
		x++
	}
	if got := RunNs(os.Getpid()) - before; got < int64(40*time.Millisecond) {
		t.Fatalf("50 ms of spinning (%d rounds) counted %v", x, time.Duration(got))
	}
	if RunNs(1<<30) != 0 {
		t.Fatal("a missing process counted time")
	}
}
