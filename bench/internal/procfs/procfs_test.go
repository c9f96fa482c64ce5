package procfs

import (
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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
	// The process's CPU time as the POSIX clock tells it: the same
	// scheduler count, through another interface.
	cpu := func() time.Duration {
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ts.Nano())
	}
	before, c0 := RunNs(os.Getpid()), cpu()
	if before <= 0 {
		t.Fatalf("RunNs of this process: %d", before)
	}
	// Spin for 50 ms of CPU time (not wall time: on a loaded machine the
	// thread is not on a CPU all along).
	x := 0
	for cpu()-c0 < 50*time.Millisecond {
		x++
	}
	got, spent := time.Duration(RunNs(os.Getpid())-before), cpu()-c0
	// schedstat may not yet count the running thread's last few ms.
	if got < spent-10*time.Millisecond || got > spent+10*time.Millisecond {
		t.Fatalf("%v of CPU (%d rounds of spinning) counted %v", spent, x, got)
	}
	if RunNs(1<<30) != 0 {
		t.Fatal("a missing process counted time")
	}
}
