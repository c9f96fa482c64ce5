package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// sdNotifier speaks systemd's service notification protocol (sd_notify(3)):
// one datagram per message to the unix socket named by $NOTIFY_SOCKET. It
// is a few lines over a datagram socket, so no library is pulled in for
// it. A nil *sdNotifier (no $NOTIFY_SOCKET: not run by systemd with
// Type=notify) does nothing.
type sdNotifier struct {
	conn *net.UnixConn
	// watchdog is how often to send WATCHDOG=1 (half of WatchdogSec), 0
	// when systemd expects no pings.
	watchdog time.Duration
}

// newSDNotifier connects to $NOTIFY_SOCKET; it returns nil when the
// variable is unset. The variables are unset afterwards so that notify
// scripts and other children do not talk to systemd in our name.
func newSDNotifier() (*sdNotifier, error) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil, nil
	}
	defer os.Unsetenv("NOTIFY_SOCKET")
	// An address starting with "@" is in the abstract namespace; Go
	// translates the "@" into the leading NUL byte.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("NOTIFY_SOCKET=%s: %w", path, err)
	}
	n := &sdNotifier{conn: conn}
	n.watchdog, err = watchdogInterval()
	os.Unsetenv("WATCHDOG_USEC")
	os.Unsetenv("WATCHDOG_PID")
	if err != nil {
		conn.Close()
		return nil, err
	}
	return n, nil
}

// watchdogInterval reads $WATCHDOG_USEC (and $WATCHDOG_PID, which must
// name this process when set) and returns half the timeout, as
// sd_watchdog_enabled(3) advises; 0 when no watchdog is asked for.
func watchdogInterval() (time.Duration, error) {
	s := os.Getenv("WATCHDOG_USEC")
	if s == "" {
		return 0, nil
	}
	if p := os.Getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(os.Getpid()) {
		return 0, nil // meant for another process
	}
	usec, err := strconv.ParseUint(s, 10, 63)
	if err != nil || usec == 0 {
		return 0, fmt.Errorf("WATCHDOG_USEC=%q: want a positive number of microseconds", s)
	}
	return time.Duration(usec) * time.Microsecond / 2, nil
}

// send sends one notification made of lines such as "READY=1".
func (n *sdNotifier) send(lines ...string) error {
	if n == nil {
		return nil
	}
	_, err := n.conn.Write([]byte(strings.Join(lines, "\n")))
	return err
}

// ready says the service is up (Type=notify).
func (n *sdNotifier) ready(status string) error {
	return n.send("READY=1", "STATUS="+status)
}

// reloading says a reload started (Type=notify-reload, systemd 253): systemd
// waits for the next READY=1. MONOTONIC_USEC lets it tell this reload from
// an earlier one.
func (n *sdNotifier) reloading() error {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return err
	}
	return n.send("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatInt(ts.Nano()/1000, 10))
}

// stopping says the service is shutting down.
func (n *sdNotifier) stopping() error { return n.send("STOPPING=1") }

// ping tells the watchdog the main loop is alive.
func (n *sdNotifier) ping() error { return n.send("WATCHDOG=1") }

// status updates the one-line status systemctl status shows.
func (n *sdNotifier) status(s string) error { return n.send("STATUS=" + s) }

// watchdogEvery returns the ping interval, 0 without a watchdog.
func (n *sdNotifier) watchdogEvery() time.Duration {
	if n == nil {
		return 0
	}
	return n.watchdog
}

func (n *sdNotifier) close() {
	if n != nil {
		n.conn.Close()
	}
}
