// Package timerfd is a CLOCK_MONOTONIC timerfd waited on in the Go
// netpoller, for daemons that wake rarely and must wake on time.
//
// Go's own timers fire up to a millisecond late (the netpoller's
// epoll_wait timeout is in whole milliseconds), and each expiry also wakes
// the runtime's sysmon thread, which sleeps until the next Go timer and
// then naps a few times. A timerfd fires to the microsecond and wakes only
// the goroutine that waits on it. Setting and reading it are raw system
// calls: the descriptor is non-blocking, and a scheduled system call would
// wake sysmon as well.
package timerfd

import (
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Timer is one timerfd. Set and Disarm may be called from any goroutine,
// Wait from one.
type Timer struct {
	fd  int
	f   *os.File
	raw syscall.RawConn // f's, for reads in the netpoller
}

// New returns a disarmed timer.
func New() (*Timer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd: %w", err)
	}
	// A non-blocking descriptor makes a pollable File: reads park the
	// goroutine in the netpoller.
	f := os.NewFile(uintptr(fd), "timerfd")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("timerfd: %w", err)
	}
	return &Timer{fd: fd, f: f, raw: raw}, nil
}

// Set arms the timer to expire once, d from now (at once if d is not
// positive), replacing what it was armed for.
func (t *Timer) Set(d time.Duration) error {
	// A zero it_value would disarm: "now" is 1 ns.
	return t.settime(unix.ItimerSpec{Value: unix.NsecToTimespec(max(int64(d), 1))})
}

// Disarm stops the timer; it does not expire until Set again.
func (t *Timer) Disarm() error { return t.settime(unix.ItimerSpec{}) }

func (t *Timer) settime(spec unix.ItimerSpec) error {
	if _, _, errno := unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, uintptr(t.fd), 0, uintptr(unsafe.Pointer(&spec)), 0, 0, 0); errno != 0 {
		return fmt.Errorf("timerfd: %w", errno)
	}
	return nil
}

// Wait calls expired after each expiry, on the calling goroutine, until
// the timer is closed. Expiries that come while expired runs are reported
// once, after it returns.
//
// It stays in one RawConn.Read, whose function handles each expiry and
// asks to wait again: every RawConn.Read starts by clearing the
// descriptor's readiness, so one per expiry would have to read until
// EAGAIN before each wait (a wasted read per wake-up). Within one, a
// wake-up that came while expired ran is kept by the poller. One read
// takes every expiry, so no expiry is left unread while it waits.
func (t *Timer) Wait(expired func()) {
	var buf [8]byte // expiry count
	_ = t.raw.Read(func(fd uintptr) bool {
		_, _, errno := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
		if errno == 0 {
			expired()
		}
		return false // wait for the next expiry (RawConn.Read returns once closed)
	})
}

// Close closes the timer; a Wait in progress returns.
func (t *Timer) Close() error { return t.f.Close() }
