package timerfd

import (
	"testing"
	"time"
)

// waiting starts Wait on t and returns the times of its expiries and what
// ends when Wait returns.
func waiting(t *testing.T, tm *Timer) (<-chan time.Time, <-chan struct{}) {
	t.Helper()
	fired := make(chan time.Time, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tm.Wait(func() { fired <- time.Now() })
	}()
	return fired, done
}

func TestTimer(t *testing.T) {
	tm, err := New()
	if err != nil {
		t.Fatal(err)
	}
	fired, done := waiting(t, tm)

	// Fires once, not before its time.
	start := time.Now()
	if err := tm.Set(30 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-fired:
		if d := at.Sub(start); d < 30*time.Millisecond {
			t.Errorf("fired after %v, set for 30ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("did not fire")
	}
	select {
	case <-fired:
		t.Fatal("fired twice for one Set")
	case <-time.After(80 * time.Millisecond):
	}

	// A Set replaces the one before; Disarm cancels.
	if err := tm.Set(time.Hour); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := tm.Set(20 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-fired:
		if d := at.Sub(start); d < 20*time.Millisecond {
			t.Errorf("fired after %v, set for 20ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a Set did not replace the one before")
	}
	if err := tm.Set(20 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := tm.Disarm(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fired:
		t.Fatal("fired after Disarm")
	case <-time.After(100 * time.Millisecond):
	}

	// At once for a time not in the future; expiries keep coming to the
	// same Wait.
	for range 3 {
		if err := tm.Set(0); err != nil {
			t.Fatal(err)
		}
		select {
		case <-fired:
		case <-time.After(5 * time.Second):
			t.Fatal("Set(0) did not fire")
		}
	}

	if err := tm.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after Close")
	}
}
