package runtime

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// deadlineTimer wakes an instance's loop at its machine's deadline, to the
// microsecond. Go's own timers are run by a thread sleeping in epoll_wait,
// whose timeout is in whole milliseconds (truncated, then a 1 ms nap), so
// they fire up to a millisecond late: that lateness adds to every
// take-over (Skew_Time after a priority 0 advert, Master_Down_Interval).
// A timerfd, like keepalived's scheduler uses, fires on time; the Go
// netpoller still does the waiting, so no thread is blocked.
//
// C receives a value when the timer fires. A value may be left over from
// an expiry that raced a Set: the loop must treat C as "look at the
// deadline now", which router.Machine.Tick does.
type deadlineTimer struct {
	C  chan struct{}
	fd int
	f  *os.File
	// done closes when the reader has stopped.
	done chan struct{}
}

// newDeadlineTimer returns a disarmed timer.
func newDeadlineTimer() (*deadlineTimer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd: %w", err)
	}
	t := &deadlineTimer{C: make(chan struct{}, 1), fd: fd, done: make(chan struct{})}
	// A non-blocking descriptor makes a pollable File: Read parks the
	// goroutine in the netpoller.
	t.f = os.NewFile(uintptr(fd), "timerfd")
	go t.read()
	return t, nil
}

func (t *deadlineTimer) read() {
	defer close(t.done)
	var buf [8]byte // expiry count
	for {
		if _, err := t.f.Read(buf[:]); err != nil {
			return // closed
		}
		select {
		case t.C <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

// Set arms the timer for deadline (at once if it has passed); a zero
// deadline disarms it.
func (t *deadlineTimer) Set(deadline time.Time) error {
	var spec unix.ItimerSpec
	if !deadline.IsZero() {
		// Relative to CLOCK_MONOTONIC, the clock behind time.Until; a
		// zero it_value would disarm, so "now" is 1 ns.
		spec.Value = unix.NsecToTimespec(max(int64(time.Until(deadline)), 1))
	}
	return unix.TimerfdSettime(t.fd, 0, &spec, nil)
}

// Close stops the timer and its reader.
func (t *deadlineTimer) Close() {
	t.f.Close()
	<-t.done
}
