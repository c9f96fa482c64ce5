package runtime

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/scripts"
)

// TestNotifierLazy checks that a notifier starts no goroutine while no
// notify script is configured, starts one when a reload brings a script,
// and runs the scripts of the events it queued, in order, before close
// returns.
func TestNotifierLazy(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	script := filepath.Join(dir, "notify.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$1 $2 $3 $4\" >> "+out+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var plan atomic.Pointer[notifyPlan]
	plan.Store(&notifyPlan{})
	n := newNotifier("VI_1", "INSTANCE", 5*time.Second, func() notifyPlan { return *plan.Load() },
		slog.New(slog.NewTextHandler(io.Discard, nil)))

	n.post(notifyEvent{state: "BACKUP", priority: 100})
	n.mu.Lock()
	started := n.queue != nil
	n.mu.Unlock()
	if started {
		t.Fatal("a notifier without scripts started its goroutine")
	}

	cmd := &scripts.Command{Argv: []string{script}, UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
	plan.Store(&notifyPlan{any: cmd})
	n.post(notifyEvent{state: "MASTER", priority: 100})
	n.post(notifyEvent{state: "STOP", priority: 100})
	n.close()
	n.post(notifyEvent{state: "BACKUP", priority: 100}) // after close: ignored, no panic

	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := "INSTANCE VI_1 MASTER 100\nINSTANCE VI_1 STOP 100\n"
	if got := string(b); got != want {
		t.Fatalf("scripts ran with:\n%s\nwant:\n%s", strings.TrimSpace(got), strings.TrimSpace(want))
	}
}
