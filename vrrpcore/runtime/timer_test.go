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
