package runtime

import (
	"slices"
	"testing"
	"time"
)

// lateness returns the median time by which wait(deadline) returns after
// deadline, over n deadlines a few milliseconds apart.
func lateness(t *testing.T, n int, wait func(deadline time.Time)) time.Duration {
	t.Helper()
	var late []time.Duration
	for i := range n {
		// Deadlines off the millisecond grid, as Skew_Time is.
		deadline := time.Now().Add(2*time.Millisecond + time.Duration(i%10)*137*time.Microsecond)
		wait(deadline)
		late = append(late, time.Since(deadline))
	}
	slices.Sort(late)
	return late[len(late)/2]
}

// TestDeadlineTimerOnTime checks that the timerfd timer fires within a
// fraction of a millisecond of its deadline, where a Go timer (woken by
// epoll_wait's millisecond timeout) is typically most of a millisecond
// late: that lateness added to every take-over.
func TestDeadlineTimerOnTime(t *testing.T) {
	dt, err := newDeadlineTimer()
	if err != nil {
		t.Fatal(err)
	}
	defer dt.Close()
	ours := lateness(t, 40, func(deadline time.Time) {
		if err := dt.Set(deadline); err != nil {
			t.Fatal(err)
		}
		<-dt.C
		if time.Now().Before(deadline) {
			t.Fatalf("fired %v before the deadline", time.Until(deadline))
		}
	})
	goTimer := lateness(t, 40, func(deadline time.Time) {
		<-time.NewTimer(time.Until(deadline)).C
	})
	t.Logf("median lateness: timerfd %v, time.Timer %v", ours, goTimer)
	if ours > 400*time.Microsecond {
		if goTimer > 2*time.Millisecond {
			t.Skipf("machine too loaded to time: timerfd %v, time.Timer %v late", ours, goTimer)
		}
		t.Errorf("timerfd timer fires %v late (median), want < 400µs", ours)
	}
}

// TestDeadlineTimersShared checks timers sharing the hub's one timerfd:
// each fires once, never before its deadline, and close to it, whatever
// the order they were set in; moving a deadline later or disarming one
// timer does not fire it early nor disturb the others; the hub goes away
// with its last timer.
func TestDeadlineTimersShared(t *testing.T) {
	const n = 50
	timers := make([]*deadlineTimer, n)
	for i := range timers {
		dt, err := newDeadlineTimer()
		if err != nil {
			t.Fatal(err)
		}
		timers[i] = dt
	}
	start := time.Now()
	deadlines := make([]time.Time, n)
	for i, dt := range timers {
		// Set out of order, some of them twice (earlier, then later).
		deadlines[i] = start.Add(20*time.Millisecond + time.Duration((i*37)%n)*time.Millisecond + time.Duration(i)*13*time.Microsecond)
		if i%5 == 0 {
			if err := dt.Set(start.Add(5 * time.Millisecond)); err != nil {
				t.Fatal(err)
			}
		}
		if err := dt.Set(deadlines[i]); err != nil {
			t.Fatal(err)
		}
	}
	// One disarmed after being set: it must not fire.
	if err := timers[7].Set(time.Time{}); err != nil {
		t.Fatal(err)
	}
	type fired struct {
		i  int
		at time.Time
	}
	got := make(chan fired, n)
	for i, dt := range timers {
		go func() {
			select {
			case <-dt.C:
				got <- fired{i, time.Now()}
			case <-time.After(time.Duration(n)*time.Millisecond + 2*time.Second):
				got <- fired{i, time.Time{}}
			}
		}()
	}
	var late []time.Duration
	for range n {
		f := <-got
		switch {
		case f.i == 7:
			if !f.at.IsZero() {
				t.Errorf("disarmed timer 7 fired")
			}
		case f.at.IsZero():
			t.Errorf("timer %d never fired", f.i)
		case f.at.Before(deadlines[f.i]):
			t.Errorf("timer %d fired %v before its deadline", f.i, deadlines[f.i].Sub(f.at))
		default:
			late = append(late, f.at.Sub(deadlines[f.i]))
		}
	}
	slices.Sort(late)
	if len(late) > 0 {
		t.Logf("median lateness over %d shared timers: %v", len(late), late[len(late)/2])
		if med := late[len(late)/2]; med > 5*time.Millisecond {
			t.Errorf("shared timers fire %v late (median)", med)
		}
	}
	for _, dt := range timers {
		dt.Close()
	}
	hubMu.Lock()
	left := hub
	hubMu.Unlock()
	if left != nil {
		t.Error("the timer hub outlived its last timer")
	}
}

// TestDeadlineTimerDisarm checks that a zero deadline disarms the timer
// and that a passed deadline fires at once.
func TestDeadlineTimerDisarm(t *testing.T) {
	dt, err := newDeadlineTimer()
	if err != nil {
		t.Fatal(err)
	}
	defer dt.Close()
	if err := dt.Set(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := dt.Set(time.Time{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-dt.C:
		t.Fatal("a disarmed timer fired")
	case <-time.After(60 * time.Millisecond):
	}
	if err := dt.Set(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-dt.C:
	case <-time.After(time.Second):
		t.Fatal("a passed deadline did not fire")
	}
}
