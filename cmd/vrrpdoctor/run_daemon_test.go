package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/capture"
	"github.com/vrrpdoctor/vrrpdoctor/diag"
	"github.com/vrrpdoctor/vrrpdoctor/diag/metrics"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
	vrrpruntime "github.com/vrrpdoctor/vrrpdoctor/vrrpcore/runtime"
)

// These tests run `run --monitor` with a fake diagnoser: no VRRP, no
// capture, nothing sent from the machine's own network namespace.

// fakeDiag is a diagnoser that reports what the test tells it.
type fakeDiag struct {
	spec     diagSpec
	ready    atomic.Bool
	mu       sync.Mutex
	findings []diag.Finding
	sends    []capture.SendAttempt
	states   int
	flows    []metrics.Flow
}

func (f *fakeDiag) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (f *fakeDiag) Flows() []metrics.Flow {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.flows)
}
func (f *fakeDiag) Ready() bool { return f.ready.Load() }
func (f *fakeDiag) Findings() []diag.Finding {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.findings
}
func (f *fakeDiag) NoteStateChange() {
	f.mu.Lock()
	f.states++
	f.mu.Unlock()
}
func (f *fakeDiag) NoteSend(a capture.SendAttempt) {
	f.mu.Lock()
	f.sends = append(f.sends, a)
	f.mu.Unlock()
}

// report makes fs the active findings, as the watcher would after a
// window: OnChange for each that appeared.
func (f *fakeDiag) report(fs ...diag.Finding) {
	f.mu.Lock()
	f.findings = fs
	f.mu.Unlock()
	for _, x := range fs {
		f.spec.onChange(findingChange{Time: time.Now(), Finding: x, Active: true})
	}
	f.ready.Store(true)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var splitBrain = diag.Finding{
	ID: "split-brain", Severity: diag.SeverityCritical, Subject: "VRID 51 (VRRPv2, IPv4)",
	Summary:  "both nodes are Master",
	Evidence: []diag.Evidence{{Label: "seen on the wire", Value: "12"}, {Label: "reached the socket", Value: "0"}},
}

// TestRunSystemdNotify: under systemd, run says READY=1 once started,
// pings the watchdog at half WatchdogSec, says RELOADING=1 with the
// monotonic time on SIGHUP and READY=1 after it, and STOPPING=1 on
// SIGTERM, in that order. Findings are logged once on appearing and once
// on clearing, also across the diagnoser's rebuild on reload.
func TestRunSystemdNotify(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "200000") // ping every 100 ms
	t.Setenv("WATCHDOG_PID", "")

	var msgs []string
	var msgMu sync.Mutex
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ln.Read(buf)
			if err != nil {
				return
			}
			msgMu.Lock()
			msgs = append(msgs, string(buf[:n]))
			msgMu.Unlock()
		}
	}()
	got := func() []string {
		msgMu.Lock()
		defer msgMu.Unlock()
		return append([]string(nil), msgs...)
	}
	has := func(prefix string) func() bool {
		return func() bool {
			for _, m := range got() {
				if strings.HasPrefix(m, prefix) {
					return true
				}
			}
			return false
		}
	}

	var diags []*fakeDiag
	var diagMu sync.Mutex
	sigs := make(chan os.Signal, 1)
	ready := make(chan struct{})
	var logs netlabtest.LogBuffer
	o := runOptions{
		config: writeConf(t, loConf), logFormat: "text", logLevel: "info", monitor: true,
		signals: sigs,
		ready:   func(*vrrpruntime.Daemon) { close(ready) },
		newDiagnoser: func(s diagSpec) (diagnoser, error) {
			f := &fakeDiag{spec: s}
			diagMu.Lock()
			diags = append(diags, f)
			diagMu.Unlock()
			return f, nil
		},
	}
	done := make(chan error, 1)
	go func() { done <- runRun(context.Background(), streams{Out: &logs, ErrOut: &logs}, o) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("run ended: %v\n%s", err, logs.String())
	}
	waitFor(t, "READY=1", has("READY=1"))
	waitFor(t, "WATCHDOG=1", has("WATCHDOG=1"))
	if os.Getenv("NOTIFY_SOCKET") != "" {
		t.Error("NOTIFY_SOCKET left in the environment of notify scripts")
	}

	diagMu.Lock()
	first := diags[0]
	diagMu.Unlock()
	if !first.spec.monitor {
		t.Error("--monitor did not build a monitor diagnoser")
	}
	first.report(splitBrain)
	first.report(splitBrain) // the same finding again: not logged twice
	waitFor(t, "the finding logged", func() bool { return strings.Contains(logs.String(), `msg=finding id=split-brain`) })
	// The status line follows at once, not at the next 10 s refresh.
	waitFor(t, "the finding in STATUS", has("STATUS=monitoring keepalived; findings: split-brain"))

	sigs <- syscall.SIGHUP
	waitFor(t, "RELOADING=1", has("RELOADING=1"))
	waitFor(t, "a new diagnoser", func() bool { diagMu.Lock(); defer diagMu.Unlock(); return len(diags) == 2 })
	diagMu.Lock()
	second := diags[1]
	diagMu.Unlock()
	// The new configuration's diagnosis no longer finds the split brain:
	// it is logged as cleared once its first window is complete.
	second.report(diag.Finding{ID: "no-adverts", Severity: diag.SeverityWarning, Summary: "silence"})
	waitFor(t, "the split brain cleared after the reload", func() bool { return strings.Contains(logs.String(), `msg="finding cleared" id=split-brain`) })

	sigs <- syscall.SIGTERM
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	waitFor(t, "STOPPING=1", has("STOPPING=1"))

	// The order: READY, WATCHDOG..., RELOADING, READY, STOPPING.
	var seq []string
	for _, m := range got() {
		kind, _, _ := strings.Cut(m, "\n")
		kind, _, _ = strings.Cut(kind, "=")
		if len(seq) == 0 || seq[len(seq)-1] != kind {
			seq = append(seq, kind)
		}
		if strings.HasPrefix(m, "RELOADING=1") && !strings.Contains(m, "\nMONOTONIC_USEC=") {
			t.Errorf("RELOADING=1 without MONOTONIC_USEC: %q", m)
		}
		if strings.HasPrefix(m, "READY=1") && !strings.Contains(m, "\nSTATUS=monitoring keepalived") {
			t.Errorf("READY=1 without the status line: %q", m)
		}
	}
	want := []string{"READY", "WATCHDOG", "RELOADING", "READY", "STOPPING"}
	if !isSubsequence(want, seq) {
		t.Errorf("notifications %v, want %v in this order", seq, want)
	}
	if seq[len(seq)-1] != "STOPPING" {
		t.Errorf("last notification %q, want STOPPING", seq[len(seq)-1])
	}
	if n := strings.Count(logs.String(), "msg=finding id=split-brain"); n != 1 {
		t.Errorf("split-brain logged %d times as appearing, want 1:\n%s", n, logs.String())
	}
	for _, w := range []string{`severity=critical`, `subject="VRID 51 (VRRPv2, IPv4)"`, `evidence="seen on the wire: 12; reached the socket: 0"`, "level=ERROR", `msg=finding id=no-adverts severity=warning`} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, logs.String())
		}
	}
}

// TestRunDaemonFlagErrors: flag problems stop run before any instance
// starts (nothing is sent).
func TestRunDaemonFlagErrors(t *testing.T) {
	p := writeConf(t, loConf)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", "-c", p, "--monitor", "--no-diagnose"}, runExitConfig, "--monitor is the diagnosis alone"},
		{[]string{"run", "-c", p, "--metrics-address", "no-port"}, runExitStart, "--metrics-address: listen tcp: address no-port: missing port"},
		{[]string{"run", "-c", p, "--log-format", "xml"}, runExitConfig, "want text, json or journal"},
	} {
		code, _, errOut := runCmd(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
	// --check-config with --monitor checks and exits.
	code, out, errOut := runCmd("run", "-t", "--monitor", "-c", p)
	if code != 0 || !strings.Contains(out, "configuration OK (1 instance(s))") {
		t.Errorf("-t --monitor: exit %d\n%s%s", code, out, errOut)
	}
}

func isSubsequence(want, got []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// TestFlowCountersSurviveReload: the wire and socket counters of a flow go
// on from what the diagnosers that reloads replaced had counted; a reload
// that fails to build a diagnoser leaves them as they are.
func TestFlowCountersSurviveReload(t *testing.T) {
	peer, other := netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.3")
	flow := func(src netip.Addr, wire, socket uint64) metrics.Flow {
		return metrics.Flow{Interface: "eth0", Family: 4, VRID: 51, Src: src, Wire: wire, Socket: socket, DeliveryRatio: 1}
	}
	next := []*fakeDiag{
		{flows: []metrics.Flow{flow(peer, 10, 8)}},
		{flows: []metrics.Flow{flow(peer, 3, 3), flow(other, 1, 0)}},
		nil, // a bad configuration: the diagnoser before carries on
		{flows: []metrics.Flow{flow(other, 2, 2)}},
	}
	s := &selfDiag{log: slog.New(slog.DiscardHandler), make: func(diagSpec) (diagnoser, error) {
		f := next[0]
		next = next[1:]
		if f == nil {
			return nil, errors.New("bad configuration")
		}
		return f, nil
	}}
	defer s.stop()
	want := func(step string, fs ...metrics.Flow) {
		t.Helper()
		if got := s.flows(); !slices.Equal(got, fs) {
			t.Errorf("%s: flows %+v, want %+v", step, got, fs)
		}
	}
	if err := s.start(nil); err != nil {
		t.Fatal(err)
	}
	want("first", flow(peer, 10, 8))
	if err := s.start(nil); err != nil {
		t.Fatal(err)
	}
	want("reloaded", flow(peer, 13, 11), flow(other, 1, 0))
	if err := s.start(nil); err == nil {
		t.Fatal("a diagnoser that fails to build: no error")
	}
	want("reload refused", flow(peer, 13, 11), flow(other, 1, 0))
	if err := s.start(nil); err != nil {
		t.Fatal(err)
	}
	want("reloaded again", flow(other, 3, 2))
}

// TestRunHealth: /healthz's verdict follows the diagnosis's readiness,
// the main loop's liveness and shutdown.
func TestRunHealth(t *testing.T) {
	f := &fakeDiag{}
	r := &daemonRun{diag: &selfDiag{log: slog.New(slog.DiscardHandler), make: func(s diagSpec) (diagnoser, error) { f.spec = s; return f, nil }}}
	if err := r.diag.start(nil); err != nil {
		t.Fatal(err)
	}
	defer r.diag.stop()
	r.alive.Store(time.Now().UnixNano())
	if err := r.health(); err == nil || !strings.Contains(err.Error(), "first window") {
		t.Errorf("before the first window: %v", err)
	}
	f.ready.Store(true)
	if err := r.health(); err != nil {
		t.Errorf("ready: %v", err)
	}
	r.alive.Store(time.Now().Add(-time.Minute).UnixNano())
	if err := r.health(); err == nil || !strings.Contains(err.Error(), "main loop stalled") {
		t.Errorf("stalled loop: %v", err)
	}
	r.alive.Store(time.Now().UnixNano())
	r.stopping.Store(true)
	if err := r.health(); err == nil || err.Error() != "stopping" {
		t.Errorf("stopping: %v", err)
	}
	// A diagnosis that could not start says why.
	r3 := &daemonRun{diag: &selfDiag{log: slog.New(slog.DiscardHandler), make: func(diagSpec) (diagnoser, error) {
		return nil, errors.New("watch: capture on eth0 needs CAP_NET_RAW")
	}}}
	r3.alive.Store(time.Now().UnixNano())
	if err := r3.diag.start(nil); err == nil {
		t.Fatal("start succeeded")
	}
	if err := r3.health(); err == nil || err.Error() != "self-diagnosis not running: watch: capture on eth0 needs CAP_NET_RAW" {
		t.Errorf("failed diagnosis: %v", err)
	}
	// Without a diagnosis, running is enough.
	r2 := &daemonRun{}
	r2.alive.Store(time.Now().UnixNano())
	if err := r2.health(); err != nil {
		t.Errorf("--no-diagnose: %v", err)
	}
}

// TestRunNoteSend: the daemon's sends reach the diagnosis as send
// attempts, refusals with their error; its state changes are told to it.
func TestRunNoteSend(t *testing.T) {
	f := &fakeDiag{}
	r := &daemonRun{kick: make(chan struct{}, 1), diag: &selfDiag{log: slog.New(slog.DiscardHandler), make: func(s diagSpec) (diagnoser, error) { return f, nil }}}
	if err := r.diag.start(nil); err != nil {
		t.Fatal(err)
	}
	defer r.diag.stop()
	r.onEvent(vrrpruntime.Event{Kind: vrrpruntime.EventAdvertSent, Interface: "eth0", VRID: 51, Src: netip.MustParseAddr("198.51.100.2"), Dst: netip.MustParseAddr("224.0.0.18")})
	r.onEvent(vrrpruntime.Event{Kind: vrrpruntime.EventSendFailed, Interface: "eth0", VRID: 51, Err: syscall.EPERM})
	r.onEvent(vrrpruntime.Event{Kind: vrrpruntime.EventAdvertReceived, Interface: "eth0", VRID: 51})
	r.onEvent(vrrpruntime.Event{Kind: vrrpruntime.EventStateChange, Interface: "eth0", VRID: 51})
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sends) != 2 || f.sends[0].Dst.String() != "224.0.0.18" || f.sends[1].Err != syscall.EPERM {
		t.Errorf("sends %+v", f.sends)
	}
	if f.states != 1 {
		t.Errorf("%d state changes told to the diagnosis, want 1", f.states)
	}
	select {
	case <-r.kick:
	default:
		t.Error("a state change did not wake the main loop")
	}
}

func TestRunLogFormats(t *testing.T) {
	var b bytes.Buffer
	log, err := newLogger(&b, "journal", "debug")
	if err != nil {
		t.Fatal(err)
	}
	log.With("instance", "VI_1").Error("advert not sent", "reason", "EPERM")
	log.Warn("w")
	log.Info("i")
	log.Debug("d")
	want := "<3>level=ERROR msg=\"advert not sent\" instance=VI_1 reason=EPERM\n<4>level=WARN msg=w\n<6>level=INFO msg=i\n<7>level=DEBUG msg=d\n"
	if b.String() != want {
		t.Errorf("journal format:\n%s\nwant:\n%s", b.String(), want)
	}

	// text: time= unless standard error is the journal's stream.
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env      string
		wantTime bool
	}{
		{"", true},
		{"1:2", true}, // another stream
		{strings.Join([]string{itoa(st.Dev), itoa(st.Ino)}, ":"), false},
	} {
		t.Setenv("JOURNAL_STREAM", tc.env)
		if err := f.Truncate(0); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Seek(0, 0); err != nil {
			t.Fatal(err)
		}
		log, err := newLogger(f, "text", "info")
		if err != nil {
			t.Fatal(err)
		}
		log.Info("x")
		out, _ := os.ReadFile(f.Name())
		if got := strings.HasPrefix(string(out), "time="); got != tc.wantTime {
			t.Errorf("JOURNAL_STREAM=%q: %q", tc.env, out)
		}
	}
}

func itoa[T ~uint64 | ~int64 | ~uint32](v T) string { return strconv.FormatUint(uint64(v), 10) }
