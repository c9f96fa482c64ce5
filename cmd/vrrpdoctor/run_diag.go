package main

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/capture"
	"github.com/vrrpdoctor/vrrpdoctor/diag"
	"github.com/vrrpdoctor/vrrpdoctor/diag/metrics"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/keepalived"
	vrrpruntime "github.com/vrrpdoctor/vrrpdoctor/vrrpcore/runtime"
)

// diagnoser is the self-diagnosis running beside the daemon, or alone in
// monitor mode: a diag/watch Watcher.
type diagnoser interface {
	Run(ctx context.Context) error
	Findings() []diag.Finding
	// Flows returns a new slice at each call.
	Flows() []metrics.Flow
	NoteSend(capture.SendAttempt)
	// NoteStateChange tells of an instance's state change (a quiet
	// window ends at once).
	NoteStateChange()
	Ready() bool
}

// diagSpec is what a diagnoser is built from.
type diagSpec struct {
	cfg      *keepalived.Config
	path     string
	window   time.Duration
	monitor  bool
	log      *slog.Logger
	onChange func(findingChange)
}

// findingChange is a finding that appeared (Active) or cleared.
type findingChange struct {
	Time    time.Time
	Finding diag.Finding
	Active  bool
}

// selfDiag runs one diagnoser at a time and replaces it when the
// configuration is reloaded. It logs each finding once when it appears
// and once when it clears, across replacements: a finding the new
// diagnoser finds again is not logged a second time, and one it no longer
// finds is logged as cleared once its first window is complete.
type selfDiag struct {
	log  *slog.Logger
	make func(diagSpec) (diagnoser, error)
	spec diagSpec
	// changed, when set, is called (without blocking) after a finding
	// appeared or cleared.
	changed func()

	mu     sync.Mutex
	cur    diagnoser
	cancel context.CancelFunc
	done   chan struct{}
	// active are the findings logged as appeared and not yet as cleared,
	// by ID and subject.
	active map[string]diag.Finding
	// err is why the last diagnoser could not be built or run.
	err error
	// flowBase is what the diagnosers that reloads replaced counted of
	// each flow, added to the current one's figures (flows), so that the
	// wire and socket counters go on across reloads.
	flowBase map[flowID]flowCounts
}

// flowID names a flow of metrics.Flow.
type flowID struct {
	iface  string
	family int
	vrid   uint8
	src    netip.Addr
}

// flowCounts are a flow's counters.
type flowCounts struct{ wire, socket uint64 }

// maxFlowBase bounds selfDiag.flowBase: beyond, the counters of new flows
// restart on a reload.
const maxFlowBase = 1024

func idOf(f metrics.Flow) flowID { return flowID{f.Interface, f.Family, f.VRID, f.Src} }

// failed returns why the diagnosis is not running, nil while it runs.
func (s *selfDiag) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func findingKey(f diag.Finding) string { return f.ID + "\x00" + f.Subject }

// start builds a diagnoser for cfg and runs it, stopping the one before.
func (s *selfDiag) start(cfg *keepalived.Config) error {
	spec := s.spec
	spec.cfg = cfg
	spec.log = s.log
	spec.onChange = s.change
	w, err := s.make(spec)
	if err != nil {
		s.mu.Lock()
		if s.cur == nil { // else the previous diagnoser carries on
			s.err = err
		}
		s.mu.Unlock()
		return err
	}
	old := s.current()
	s.stop()
	if old != nil {
		s.keepFlows(old.Flows())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.mu.Lock()
	s.cur, s.cancel, s.done, s.err = w, cancel, done, nil
	if s.active == nil {
		s.active = map[string]diag.Finding{}
	}
	carried := len(s.active) > 0
	s.mu.Unlock()
	go func() {
		defer close(done)
		if err := w.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("self-diagnosis stopped", "err", err)
			s.mu.Lock()
			if s.cur == w {
				s.err = err
			}
			s.mu.Unlock()
		}
	}()
	if carried {
		go s.reconcile(ctx, w)
	}
	return nil
}

// reconcile logs as cleared the findings the previous diagnoser had
// reported and w does not, once w's first window is complete.
func (s *selfDiag) reconcile(ctx context.Context, w diagnoser) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for !w.Ready() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	still := map[string]bool{}
	for _, f := range w.Findings() {
		still[findingKey(f)] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != w {
		return
	}
	cleared := false
	for k, f := range s.active {
		if !still[k] {
			delete(s.active, k)
			logFinding(s.log, findingChange{Time: time.Now(), Finding: f})
			cleared = true
		}
	}
	if cleared && s.changed != nil {
		s.changed()
	}
}

// change is the diagnoser's OnChange.
func (s *selfDiag) change(c findingChange) {
	k := findingKey(c.Finding)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active == nil {
		s.active = map[string]diag.Finding{}
	}
	_, was := s.active[k]
	switch {
	case c.Active && !was:
		s.active[k] = c.Finding
	case !c.Active && was:
		delete(s.active, k)
	default:
		return // already logged
	}
	logFinding(s.log, c)
	if s.changed != nil {
		s.changed()
	}
}

// stop stops the running diagnoser, if any, and waits for it.
func (s *selfDiag) stop() {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.cur, s.cancel, s.done = nil, nil, nil
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (s *selfDiag) current() diagnoser {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// findings returns the current diagnoser's findings.
func (s *selfDiag) findings() []diag.Finding {
	if w := s.current(); w != nil {
		return w.Findings()
	}
	return nil
}

// flows returns the current diagnoser's wire-versus-socket flows, with
// what the diagnosers before it counted added.
func (s *selfDiag) flows() []metrics.Flow {
	w := s.current()
	if w == nil {
		return nil
	}
	fs := w.Flows()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range fs {
		b := s.flowBase[idOf(fs[i])]
		fs[i].Wire += b.wire
		fs[i].Socket += b.socket
	}
	return fs
}

// keepFlows adds the last figures of a diagnoser that a reload replaced to
// flowBase.
func (s *selfDiag) keepFlows(fs []metrics.Flow) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flowBase == nil {
		s.flowBase = map[flowID]flowCounts{}
	}
	for _, f := range fs {
		k := idOf(f)
		b, ok := s.flowBase[k]
		if !ok && len(s.flowBase) >= maxFlowBase {
			continue
		}
		b.wire += f.Wire
		b.socket += f.Socket
		s.flowBase[k] = b
	}
}

// ready reports whether the current diagnoser completed its first window.
func (s *selfDiag) ready() bool {
	w := s.current()
	return w != nil && w.Ready()
}

// activeIDs returns the IDs of the findings logged as active, for the
// systemd status line.
func (s *selfDiag) activeIDs() []string {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	var ids []string
	for _, f := range s.active {
		if !seen[f.ID] {
			seen[f.ID] = true
			ids = append(ids, f.ID)
		}
	}
	return ids
}

// noteSend tells the diagnoser about an advert the daemon sent or failed
// to send, so that it can tell an OUTPUT drop from a silent peer.
func (s *selfDiag) noteSend(e vrrpruntime.Event) {
	w := s.current()
	if w == nil {
		return
	}
	w.NoteSend(capture.SendAttempt{Time: e.Time, Interface: e.Interface, VRID: e.VRID, Src: e.Src, Dst: e.Dst, Err: e.Err,
		Priority: e.Priority, Version: e.Version, Interval: e.Interval, Checksum: e.Checksum, TTL: e.TTL})
}

// noteState tells the diagnoser that an instance changed state.
func (s *selfDiag) noteState() {
	if w := s.current(); w != nil {
		w.NoteStateChange()
	}
}

// logFinding logs a finding that appeared (at its severity: info, warn or
// error) or cleared (info), with its ID, severity, subject, summary and
// evidence.
func logFinding(log *slog.Logger, c findingChange) {
	f := c.Finding
	args := []any{"id", f.ID, "severity", f.Severity.String()}
	if f.Subject != "" {
		args = append(args, "subject", f.Subject)
	}
	args = append(args, "summary", f.Summary)
	if !c.Active {
		log.Info("finding cleared", args...)
		return
	}
	if len(f.Evidence) > 0 {
		ev := make([]string, len(f.Evidence))
		for i, e := range f.Evidence {
			ev[i] = e.Label + ": " + e.Value
		}
		args = append(args, "evidence", strings.Join(ev, "; "))
	}
	lv := slog.LevelInfo
	switch {
	case f.Severity >= diag.SeverityCritical:
		lv = slog.LevelError
	case f.Severity == diag.SeverityWarning:
		lv = slog.LevelWarn
	}
	log.Log(context.Background(), lv, "finding", args...)
}
