package watch

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWindowTimer: the timer fires once after the time set, and setting it
// again moves the expiry.
func TestWindowTimer(t *testing.T) {
	tm, err := newWindowTimer()
	if err != nil {
		t.Fatal(err)
	}
	defer tm.close()
	start := time.Now()
	if err := tm.set(50 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := tm.set(150 * time.Millisecond); err != nil { // moved later
		t.Fatal(err)
	}
	select {
	case <-tm.C:
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Errorf("fired after %s, want 150 ms", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("did not fire")
	}
	select {
	case <-tm.C:
		t.Fatal("fired twice")
	case <-time.After(200 * time.Millisecond):
	}
}

// TestReadWaiter: the waiter pokes once something is queued, leaves it
// queued, and pokes again only after a drain and rearm.
func TestReadWaiter(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	pokes := make(chan struct{}, 10)
	r := newReadWaiter(fds[0], "test", func() { pokes <- struct{}{} })
	defer r.close()
	poked := func(within time.Duration) bool {
		select {
		case <-pokes:
			return true
		case <-time.After(within):
			return false
		}
	}
	if poked(100 * time.Millisecond) {
		t.Fatal("poked with nothing queued")
	}
	if _, err := unix.Write(fds[1], []byte("x")); err != nil {
		t.Fatal(err)
	}
	if !poked(2 * time.Second) {
		t.Fatal("not poked with something queued")
	}
	if _, err := unix.Write(fds[1], []byte("y")); err != nil {
		t.Fatal(err)
	}
	if poked(100 * time.Millisecond) {
		t.Fatal("poked again before the drain")
	}
	buf := make([]byte, 8)
	for _, want := range []string{"x", "y"} { // the peek took nothing
		n, err := unix.Read(fds[0], buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("read %q %v, want %q", buf[:n], err, want)
		}
	}
	r.rearm()
	if poked(100 * time.Millisecond) {
		t.Fatal("poked after the drain with nothing queued")
	}
	if _, err := unix.Write(fds[1], []byte("z")); err != nil {
		t.Fatal(err)
	}
	if !poked(2 * time.Second) {
		t.Fatal("not poked after the rearm")
	}
}
