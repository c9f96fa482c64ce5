package procfs

import (
	"os"
	"os/exec"
	"slices"
	"testing"
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
