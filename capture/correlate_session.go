package capture

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// A Session runs both taps on one interface and feeds a Correlator: the
// wire tap, one socket tap per address family, and optionally probes. It
// is what `vrrpdoctor capture` and the diagnosis run.

// SessionOptions configure a Session.
type SessionOptions struct {
	Interface string
	Wire      WireOptions
	Socket    SocketOptions
	// Families lists the socket taps to open (4, 6); default both, or the
	// family of Socket.Unicast when that is set (keepalived's unicast
	// mode: the socket tap is bound to that address, not joined). A
	// family the interface cannot receive (no IPv6 on it, say) is left out
	// with a note in SessionStats.Sockets rather than failing the session.
	Families []uint8
	// ProbeVRID, when not 0, sends a probe advert (see Prober) for this
	// VRID every ProbeInterval (default 1 s) for each family in
	// ProbeFamilies (default 4), and reports each attempt to the
	// correlator.
	ProbeVRID     uint8
	ProbeInterval time.Duration
	ProbeFamilies []uint8
	Correlator    CorrelatorOptions
	// OnStart, when set, is called with the open wire tap before any frame
	// is read (e.g. to start a pcapng file with its link type); an error
	// ends StartSession.
	OnStart func(*WireTap) error
	// OnFrame, when set, gets every frame of the wire tap, in order, from
	// the goroutine reading it (e.g. to write a pcapng file). An error
	// stops the session.
	OnFrame func(*WireFrame) error
	// AdvanceEvery is how often undecided observations are checked;
	// default 100 ms.
	AdvanceEvery time.Duration
	// AdvanceOnStats, instead of a periodic check, decides the undecided
	// observations only when Stats is called (those older than the
	// correlator's Window and Grace): for a reader that takes Stats at
	// intervals anyway, it spares the session a wake-up every
	// AdvanceEvery. Probes still send on their own ticker.
	AdvanceOnStats bool
	// IncomingOnly keeps the wire tap's outgoing frames (this host's own
	// adverts) out of the correlator: they still reach OnFrame, undecoded
	// by the session, but no outgoing flow counts them and no send attempt
	// is matched with them (AddSend's attempts would all end as
	// SentMissing). For a reader that analyses the frames itself and
	// counts the speaker's attempts on its own: the per-advert matching
	// is what a busy speaker's own adverts cost most.
	IncomingOnly bool
	// Drain is how long Stop keeps reading both taps for packets that
	// arrived before it was called; default 200 ms.
	Drain time.Duration
}

// SocketStatus is one socket tap of a session.
type SocketStatus struct {
	Family uint8
	Open   bool
	Error  string // why it could not open, when !Open
	Stats  SocketStats
}

// SessionStats are a session's figures at one moment.
type SessionStats struct {
	Snapshot
	Interface  string
	Start, Now time.Time
	// Frames counts the wire tap's frames the session took in (those
	// arriving after Stop was called are read but not counted; OnFrame
	// gets exactly these). Wire holds the kernel's counters, which include
	// those late frames.
	Frames  uint64
	Wire    WireStats
	Sockets []SocketStatus
	// Undecodable counts VRRP packets (IP protocol 112) that did not
	// decode, on either tap; LastUndecodable is the latest reason.
	Undecodable     uint64
	LastUndecodable string
}

// Session is a running capture on one interface.
type Session struct {
	o     SessionOptions
	corr  *Correlator
	wire  *WireTap
	socks []*SocketTap
	probs []*Prober
	start time.Time

	mu              sync.Mutex
	sockStatus      []SocketStatus
	undecodable     uint64
	lastUndecodable string
	err             error

	cutoff   atomic.Int64 // UnixNano of the Stop call; 0 while running
	frames   atomic.Uint64
	errc     chan struct{} // closed on the first fatal error
	errOnce  sync.Once
	stop     chan struct{}
	wireDone chan struct{}
	wg       sync.WaitGroup // socket readers and ticker
	stopOnce sync.Once
	final    SessionStats
}

// StartSession opens the taps in the calling thread's network namespace
// and starts reading. A failure to open the wire tap, or every socket
// tap, is an error (a *PermissionError without CAP_NET_RAW).
func StartSession(o SessionOptions) (*Session, error) {
	if o.AdvanceEvery <= 0 {
		o.AdvanceEvery = 100 * time.Millisecond
	}
	if o.Drain <= 0 {
		o.Drain = 200 * time.Millisecond
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = time.Second
	}
	switch {
	case len(o.Families) > 0:
	case o.Socket.Unicast.IsValid() && o.Socket.Unicast.Unmap().Is4():
		o.Families = []uint8{4}
	case o.Socket.Unicast.IsValid():
		o.Families = []uint8{6}
	default:
		o.Families = []uint8{4, 6}
	}
	if len(o.ProbeFamilies) == 0 {
		o.ProbeFamilies = []uint8{4}
	}
	s := &Session{o: o, corr: NewCorrelator(o.Correlator), errc: make(chan struct{}), stop: make(chan struct{}), wireDone: make(chan struct{})}
	var err error
	if s.wire, err = OpenWire(o.Interface, o.Wire); err != nil {
		return nil, err
	}
	var errs []error
	for _, fam := range o.Families {
		t, err := OpenSocket(o.Interface, fam, o.Socket)
		st := SocketStatus{Family: fam, Open: err == nil}
		if err != nil {
			var pe *PermissionError
			if errors.As(err, &pe) {
				s.close()
				return nil, err
			}
			st.Error = err.Error()
			errs = append(errs, err)
		} else {
			s.socks = append(s.socks, t)
		}
		s.sockStatus = append(s.sockStatus, st)
	}
	if len(s.socks) == 0 {
		s.close()
		return nil, errors.Join(errs...)
	}
	if o.ProbeVRID != 0 {
		for _, fam := range o.ProbeFamilies {
			p, err := OpenProber(o.Interface, fam, o.ProbeVRID)
			if err != nil {
				s.close()
				return nil, err
			}
			s.probs = append(s.probs, p)
		}
	}
	if o.OnStart != nil {
		if err := o.OnStart(s.wire); err != nil {
			s.close()
			return nil, err
		}
	}
	s.start = time.Now()
	go s.readWire()
	for i, t := range s.socks {
		s.wg.Add(1)
		go s.readSocket(i, t)
	}
	if !o.AdvanceOnStats || len(s.probs) > 0 {
		s.wg.Add(1)
		go s.tick()
	}
	return s, nil
}

// close closes whatever is open.
func (s *Session) close() {
	if s.wire != nil {
		s.wire.Close()
	}
	for _, t := range s.socks {
		t.Close()
	}
	for _, p := range s.probs {
		p.Close()
	}
}

// Correlator is the session's correlator; a VRRP runtime sharing the
// interface reports its send attempts to it with AddSend.
func (s *Session) Correlator() *Correlator { return s.corr }

// Failed is closed when the session hit an error that stopped a tap; Stop
// returns it.
func (s *Session) Failed() <-chan struct{} { return s.errc }

func (s *Session) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.errOnce.Do(func() { close(s.errc) })
}

func (s *Session) undecoded(err error) {
	s.mu.Lock()
	s.undecodable++
	s.lastUndecodable = err.Error()
	s.mu.Unlock()
}

func (s *Session) readWire() {
	defer close(s.wireDone)
	dec := NewDecoder()
	lt := s.wire.LinkType()
	var f WireFrame
	var p Packet
	for {
		err := s.wire.Next(&f)
		if errors.Is(err, ErrClosed) || s.stopping() && errors.Is(err, os.ErrDeadlineExceeded) {
			return
		}
		if err != nil {
			s.fail(err)
			return
		}
		if s.afterStop(f.Time) {
			continue
		}
		s.frames.Add(1)
		if s.o.OnFrame != nil {
			if err := s.o.OnFrame(&f); err != nil {
				s.fail(err)
				return
			}
		}
		if s.o.IncomingOnly && f.Direction == DirOut {
			// The ring's packet type says so: a live frame's own
			// headers carry no direction.
			continue
		}
		p.Time = f.Time
		err = dec.Decode(lt, f.Data, &p)
		if p.Direction == DirUnknown {
			p.Direction = f.Direction
		}
		switch {
		case err == nil:
			s.corr.AddWire(s.o.Interface, &p, false)
		case isChecksumError(err):
			s.corr.AddWire(s.o.Interface, &p, true)
		case errors.Is(err, ErrNotVRRP):
		default:
			s.undecoded(fmt.Errorf("wire: %w", err))
		}
	}
}

func (s *Session) readSocket(i int, t *SocketTap) {
	defer s.wg.Done()
	var p Packet
	for {
		err := t.Next(&p)
		var be *BadPacketError
		switch {
		case errors.Is(err, ErrClosed) || s.stopping() && errors.Is(err, os.ErrDeadlineExceeded):
			return
		case (err == nil || errors.As(err, &be)) && s.afterStop(p.Time):
		case err == nil:
			s.corr.AddSocket(s.o.Interface, &p, false)
		case errors.As(err, &be) && isChecksumError(err):
			s.corr.AddSocket(s.o.Interface, &p, true)
		case errors.As(err, &be):
			s.undecoded(fmt.Errorf("socket: %w", err))
		default:
			s.fail(err)
			return
		}
	}
}

// stopping reports whether Stop has been called.
func (s *Session) stopping() bool { return s.cutoff.Load() != 0 }

// afterStop reports whether a packet stamped t arrived after Stop was
// called: such packets are read (to empty the queues) but not counted, so
// that both taps cover the same time.
func (s *Session) afterStop(t time.Time) bool {
	c := s.cutoff.Load()
	return c != 0 && t.UnixNano() > c
}

// tick advances the correlator and sends the probes.
func (s *Session) tick() {
	defer s.wg.Done()
	adv := time.NewTicker(s.o.AdvanceEvery)
	defer adv.Stop()
	var probe <-chan time.Time
	if len(s.probs) > 0 {
		pt := time.NewTicker(s.o.ProbeInterval)
		defer pt.Stop()
		probe = pt.C
		s.sendProbes()
	}
	for {
		select {
		case <-s.stop:
			return
		case now := <-adv.C:
			if !s.o.AdvanceOnStats {
				s.corr.Advance(now)
			}
		case <-probe:
			s.sendProbes()
		}
	}
}

func (s *Session) sendProbes() {
	for _, p := range s.probs {
		s.corr.AddSend(p.Send())
	}
}

// Stats returns the session's figures now (with AdvanceOnStats, after
// deciding what is old enough).
func (s *Session) Stats() SessionStats {
	now := time.Now()
	if s.o.AdvanceOnStats && !s.stopping() {
		s.corr.Advance(now)
	}
	st := SessionStats{Snapshot: s.corr.Snapshot(), Interface: s.o.Interface, Start: s.start, Now: now, Frames: s.frames.Load()}
	st.Wire, _ = s.wire.Stats()
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Sockets = append([]SocketStatus(nil), s.sockStatus...)
	j := 0
	for i := range st.Sockets {
		if st.Sockets[i].Open {
			st.Sockets[i].Stats = s.socks[j].Stats()
			j++
		}
	}
	st.Undecodable, st.LastUndecodable = s.undecodable, s.lastUndecodable
	return st
}

// Stop ends the session: it reads both taps for Drain longer, counting
// only packets that arrived before the call, so that every packet is seen
// by both taps or known missing from one; then it closes the taps, decides
// every undecided observation and returns the final figures with the error
// that stopped a tap, if any. Stop may be called more than once.
func (s *Session) Stop() (SessionStats, error) {
	s.stopOnce.Do(func() {
		now := time.Now()
		s.cutoff.Store(now.UnixNano())
		close(s.stop)
		until := now.Add(s.o.Drain)
		s.wire.SetReadDeadline(until)
		for _, t := range s.socks {
			t.SetReadDeadline(until)
		}
		<-s.wireDone
		s.wg.Wait()
		s.final = s.Stats()
		s.final.Now = now
		s.close()
		// Every packet has had its chance: decide all.
		s.corr.Advance(now.Add(24 * time.Hour))
		s.final.Snapshot = s.corr.Snapshot()
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.final, s.err
}
