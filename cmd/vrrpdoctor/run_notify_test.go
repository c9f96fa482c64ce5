package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestWatchdogInterval(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
		err       string
	}{
		{"", "", 0, ""},
		{"30000000", "", 15 * time.Second, ""},
		{"30000000", self, 15 * time.Second, ""},
		{"30000000", "1", 0, ""}, // meant for another process
		{"0", "", 0, "want a positive number"},
		{"soon", "", 0, "want a positive number"},
	} {
		t.Setenv("WATCHDOG_USEC", tc.usec)
		t.Setenv("WATCHDOG_PID", tc.pid)
		got, err := watchdogInterval()
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: %v, %v; want %v, %q", tc.usec, tc.pid, got, err, tc.want, tc.err)
		}
	}
}

// TestSDNotifierAbstract: an address starting with "@" is a socket in the
// abstract namespace, as systemd may pass it.
func TestSDNotifierAbstract(t *testing.T) {
	name := fmt.Sprintf("@vrrpdoctor-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOTIFY_SOCKET", name)
	t.Setenv("WATCHDOG_USEC", "")
	n, err := newSDNotifier()
	if err != nil || n == nil {
		t.Fatalf("newSDNotifier: %v, %v", n, err)
	}
	defer n.close()
	if err := n.ready("VI_1 MASTER"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	ln.SetReadDeadline(time.Now().Add(5 * time.Second))
	k, err := ln.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:k]); got != "READY=1\nSTATUS=VI_1 MASTER" {
		t.Errorf("got %q", got)
	}
	if n.watchdogEvery() != 0 {
		t.Error("a watchdog without WATCHDOG_USEC")
	}

	// No NOTIFY_SOCKET: no notifier, and its methods do nothing.
	t.Setenv("NOTIFY_SOCKET", "")
	none, err := newSDNotifier()
	if none != nil || err != nil {
		t.Fatalf("without NOTIFY_SOCKET: %v, %v", none, err)
	}
	if err := none.stopping(); err != nil || none.watchdogEvery() != 0 {
		t.Errorf("nil notifier: %v", err)
	}
	// A socket that is not there is an error naming it.
	t.Setenv("NOTIFY_SOCKET", "/nonexistent/notify")
	if _, err := newSDNotifier(); err == nil || !strings.Contains(err.Error(), "NOTIFY_SOCKET=/nonexistent/notify") {
		t.Errorf("missing socket: %v", err)
	}
}
