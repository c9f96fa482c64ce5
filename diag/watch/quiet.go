package watch

import (
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/timerfd"
)

// Quiet windows.
//
// While nothing happens the window is long: after a window that was
// settled, not dropped, had no finding at all and left the tracker empty
// (nothing pending, nothing active), the next window lasts quietWindow
// instead of the base window. Anything that could cause or show a finding
// ends a quiet window at once (poke): a kernel notification of a link or an
// address, an nftables commit, an instance's state change or failed send
// (self mode), a capture's new or resumed sender, lost advert, bad
// checksum or failed send (capture.CorrelatorOptions.Notify), the end of a
// known VRRP daemon (Monitor: its pidfd). The window so ended is judged
// right away, and the windows after it are base windows until one is quiet
// again. What has no notification (the group memberships, this node's
// adverts dropped after the OUTPUT hook: counted only at the quiet
// window's end, planCounting) is read when the quiet window ends: up to
// quietWindow late. The iptables-legacy tables have no notification either:
// while some exist a quiet window lasts legacyQuietWindow.
//
// A quiet window is judged unsettled for new findings (tracker.update): a
// finding first seen in it counts from its end and must still hold for a
// base window to appear, so a long window does not shorten the hysteresis.

// quietWindow is the length of a quiet window. It goes straight to it, not
// by doubling: a quiet window is one that proved nothing pending, and what
// could change that ends it early; doubling would only add windows (their
// cost) without shortening the delay of what has no notification, which a
// window of any length bounds alike.
const quietWindow = 30 * time.Second

// legacyQuietWindow is a quiet window's length while iptables-legacy tables
// exist: their rules are read at the windows' ends only (legacyEvery, the
// re-read after a failed reading, is as long).
const legacyQuietWindow = legacyEvery

// nextWindow is the length of the window after one judged with the given
// outcome: a quiet window (of length quiet) when nothing was found, nothing
// is pending and the window was settled and complete; else the base
// window.
func nextWindow(base, quiet time.Duration, settled, dropped bool, findings int, tracked bool) (d time.Duration, isQuiet bool) {
	if settled && !dropped && findings == 0 && !tracked && base < quiet {
		return quiet, true
	}
	return base, false
}

// quietLength is the length of a quiet window now.
func (w *Watcher) quietLength() time.Duration {
	if w.fwall.legacyPresent {
		return legacyQuietWindow
	}
	return quietWindow
}

// poke ends a quiet window at once; in a base window it does nothing (what
// happened is judged at its end). It never blocks.
func (w *Watcher) poke() {
	select {
	case w.news <- struct{}{}:
	default:
	}
}

// NoteStateChange tells the watch that an instance of the speaker changed
// state: a quiet window ends at once (self mode).
func (w *Watcher) NoteStateChange() { w.poke() }

// windowTimer ends the windows: a timerfd (vrrpcore/timerfd) read by a
// goroutine in the Go netpoller. A Go timer would wake the runtime's
// sysmon thread at every expiry (it sleeps until the next Go timer), which
// then naps a few times before sleeping again; a descriptor the netpoller
// waits on does not.
type windowTimer struct {
	t    *timerfd.Timer
	C    chan struct{}
	done chan struct{}
}

func newWindowTimer() (*windowTimer, error) {
	t, err := timerfd.New()
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	w := &windowTimer{t: t, C: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t.Wait(func() {
			select {
			case w.C <- struct{}{}:
			default:
			}
		})
	}()
	return w, nil
}

// set arms the timer to fire once after d.
func (w *windowTimer) set(d time.Duration) error {
	if err := w.t.Set(d); err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	return nil
}

func (w *windowTimer) close() {
	w.t.Close()
	<-w.done
}

// readWaiter pokes the watch when a non-blocking socket that the window's
// end drains (the kernel's notifications) has something queued, waiting
// through the Go netpoller; after each poke it waits for rearm, called once
// the socket was drained. It peeks, so what is queued stays for the drain;
// an overrun reported to the peek (which clears the socket's error) is kept
// in overrun for the drain to report.
type readWaiter struct {
	f       *os.File
	arm     chan struct{}
	stop    chan struct{}
	done    chan struct{}
	overrun atomic.Bool
}

// newReadWaiter takes fd over (closing the waiter closes it); with a nil
// poke nothing waits on it.
func newReadWaiter(fd int, name string, poke func()) *readWaiter {
	r := &readWaiter{f: os.NewFile(uintptr(fd), name), arm: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	raw, err := r.f.SyscallConn()
	if poke == nil || err != nil {
		close(r.done)
		return r
	}
	go r.wait(raw, poke)
	return r
}

func (r *readWaiter) wait(raw syscall.RawConn, poke func()) {
	defer close(r.done)
	var b [1]byte
	// peek says whether something is queued, without taking it, with a
	// raw (unscheduled) non-blocking system call.
	peek := func(fd uintptr) bool {
		_, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1, unix.MSG_PEEK|unix.MSG_DONTWAIT|unix.MSG_TRUNC, 0, 0)
		switch errno {
		case unix.EAGAIN, unix.EINTR:
			return false
		case unix.ENOBUFS:
			r.overrun.Store(true)
		}
		return true
	}
	for {
		if err := raw.Read(peek); err != nil {
			return // closed
		}
		poke()
		select {
		case <-r.arm:
		case <-r.stop:
			return
		}
	}
}

// rearm lets the waiter wait again (the socket was drained).
func (r *readWaiter) rearm() {
	select {
	case r.arm <- struct{}{}:
	default:
	}
}

// tookOverrun says whether the waiter's peek took an overrun since the last
// call.
func (r *readWaiter) tookOverrun() bool { return r.overrun.Swap(false) }

func (r *readWaiter) close() {
	close(r.stop)
	r.f.Close()
	<-r.done
}

// exitWaiter pokes the watch when a process ends (Monitor: a keepalived
// that stops ends a quiet window at once): a pidfd, which becomes readable
// when the process has ended, waited on through the Go netpoller.
type exitWaiter struct {
	f    *os.File
	done chan struct{}
}

func newExitWaiter(pid int, poke func()) (*exitWaiter, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd of %d: %w", pid, err)
	}
	// Non-blocking, so that os.File hands it to the netpoller.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("pidfd of %d: %w", pid, err)
	}
	e := &exitWaiter{f: os.NewFile(uintptr(fd), "pidfd"), done: make(chan struct{})}
	raw, err := e.f.SyscallConn()
	if err != nil {
		e.f.Close()
		return nil, fmt.Errorf("pidfd of %d: %w", pid, err)
	}
	go func() {
		defer close(e.done)
		// The first call waits for readiness; the second, after it, is
		// the process's end.
		waited := false
		if err := raw.Read(func(uintptr) bool { r := waited; waited = true; return r }); err == nil {
			poke()
		}
	}()
	return e, nil
}

func (e *exitWaiter) close() {
	e.f.Close()
	<-e.done
}
