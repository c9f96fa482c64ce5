package runtime

import (
	"container/heap"
	"sync"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/timerfd"
)

// deadlineTimer wakes an instance's loop at its machine's deadline, to the
// microsecond. Go's own timers are run by a thread sleeping in epoll_wait,
// whose timeout is in whole milliseconds (truncated, then a 1 ms nap), so
// they fire up to a millisecond late: that lateness adds to every
// take-over (Skew_Time after a priority 0 advert, Master_Down_Interval).
// A timerfd, like keepalived's scheduler uses, fires on time; the Go
// netpoller still does the waiting, so no thread is blocked.
//
// Every deadlineTimer of the process shares one timerfd and one goroutine
// (timerHub), as keepalived's single scheduler does: the timerfd is armed
// for the earliest deadline of all. A descriptor and a reading goroutine
// per instance cost a stack each, and as many wake-ups.
//
// C receives a value when the timer fires. A value may be left over from
// an expiry that raced a Set: the loop must treat C as "look at the
// deadline now", which router.Machine.Tick does.
type deadlineTimer struct {
	C   chan struct{}
	hub *timerHub
	// deadline and index are the hub's, under its lock: index is the
	// timer's place in the hub's heap, -1 while disarmed.
	deadline time.Time
	index    int
}

// newDeadlineTimer returns a disarmed timer.
func newDeadlineTimer() (*deadlineTimer, error) {
	h, err := acquireHub()
	if err != nil {
		return nil, err
	}
	return &deadlineTimer{C: make(chan struct{}, 1), hub: h, index: -1}, nil
}

// Set arms the timer for deadline (at once if it has passed); a zero
// deadline disarms it.
func (t *deadlineTimer) Set(deadline time.Time) error {
	return t.hub.set(t, deadline)
}

// Close stops the timer.
func (t *deadlineTimer) Close() {
	t.hub.set(t, time.Time{}) // disarming a valid timerfd does not fail
	releaseHub(t.hub)
}

// timerHub is the timerfd behind every deadlineTimer, and the goroutine
// that reads it and wakes the timers whose deadline has come.
type timerHub struct {
	t    *timerfd.Timer
	done chan struct{} // closes when the reader has stopped

	mu     sync.Mutex
	timers timerHeap
	armed  time.Time // the deadline the timerfd is set for; zero: disarmed
	users  int       // under hubMu
}

var (
	hubMu sync.Mutex
	hub   *timerHub // nil while no timer exists
)

// acquireHub returns the process's hub, creating it for the first timer.
func acquireHub() (*timerHub, error) {
	hubMu.Lock()
	defer hubMu.Unlock()
	if hub == nil {
		t, err := timerfd.New()
		if err != nil {
			return nil, err
		}
		hub = &timerHub{t: t, done: make(chan struct{})}
		go hub.read()
	}
	hub.users++
	return hub, nil
}

// releaseHub closes the hub when its last timer is closed.
func releaseHub(h *timerHub) {
	hubMu.Lock()
	defer hubMu.Unlock()
	h.users--
	if h.users > 0 {
		return
	}
	h.t.Close()
	<-h.done
	if hub == h {
		hub = nil
	}
}

// set moves t to deadline (zero: out of the heap) and re-arms the timerfd
// if the earliest deadline changed.
func (h *timerHub) set(t *deadlineTimer, deadline time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case deadline.IsZero():
		if t.index >= 0 {
			heap.Remove(&h.timers, t.index)
		}
	case t.index >= 0:
		t.deadline = deadline
		heap.Fix(&h.timers, t.index)
	default:
		t.deadline = deadline
		heap.Push(&h.timers, t)
	}
	return h.arm()
}

// arm sets the timerfd for the earliest deadline, unless it is set for it
// already. h.mu is held.
func (h *timerHub) arm() error {
	var next time.Time
	if len(h.timers) > 0 {
		next = h.timers[0].deadline
	}
	if next.Equal(h.armed) {
		return nil
	}
	var err error
	if next.IsZero() {
		err = h.t.Disarm()
	} else {
		err = h.t.Set(time.Until(next))
	}
	if err != nil {
		h.armed = time.Time{} // unknown: set it again next time
		return err
	}
	h.armed = next
	return nil
}

// read waits for the timerfd and wakes every timer whose deadline has
// come, until the timerfd is closed.
func (h *timerHub) read() {
	defer close(h.done)
	h.t.Wait(h.expired)
}

// expired wakes every timer whose deadline has come and sets the timerfd
// for the next.
func (h *timerHub) expired() {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	for len(h.timers) > 0 && !h.timers[0].deadline.After(now) {
		t := heap.Pop(&h.timers).(*deadlineTimer)
		select {
		case t.C <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
	h.armed = time.Time{} // it fired
	if err := h.arm(); err != nil {
		// Not expected of a valid timerfd. The timers left would
		// never fire: wake them all, their loops set them again.
		for len(h.timers) > 0 {
			t := heap.Pop(&h.timers).(*deadlineTimer)
			select {
			case t.C <- struct{}{}:
			default:
			}
		}
	}
}

// timerHeap orders armed timers by deadline (container/heap).
type timerHeap []*deadlineTimer

func (q timerHeap) Len() int           { return len(q) }
func (q timerHeap) Less(i, j int) bool { return q[i].deadline.Before(q[j].deadline) }
func (q timerHeap) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}

func (q *timerHeap) Push(x any) {
	t := x.(*deadlineTimer)
	t.index = len(*q)
	*q = append(*q, t)
}

func (q *timerHeap) Pop() any {
	old := *q
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*q = old[:len(old)-1]
	return t
}
