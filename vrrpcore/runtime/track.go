package runtime

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/nlsub"
)

// trackState is the state of a tracked object.
type trackState uint8

const (
	trackUnknown trackState = iota // a script that has not reported yet
	trackUp
	trackDown
)

func (s trackState) String() string {
	switch s {
	case trackUp:
		return "up"
	case trackDown:
		return "down"
	}
	return "init"
}

// subscribers is a set of instances to wake when a tracked object changes.
type subscribers struct {
	mu  sync.Mutex
	set map[chan struct{}]struct{}
}

func (s *subscribers) add(kick chan struct{}) {
	s.mu.Lock()
	if s.set == nil {
		s.set = map[chan struct{}]struct{}{}
	}
	s.set[kick] = struct{}{}
	s.mu.Unlock()
}

func (s *subscribers) remove(kick chan struct{}) {
	s.mu.Lock()
	delete(s.set, kick)
	s.mu.Unlock()
}

// wake signals every subscriber without blocking: kick channels have a
// buffer of one and a pending kick already says "look again".
func (s *subscribers) wake() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.set {
		select {
		case k <- struct{}{}:
		default:
		}
	}
}

// scriptTracker runs one vrrp_script every interval and keeps its state
// with keepalived's rise/fall rules: a script that has never run is
// "init", and its first result decides (unless init_fail, which starts it
// down); after that it goes down after fall failures in a row and up after
// rise successes in a row.
type scriptTracker struct {
	plan *scriptPlan
	log  *slog.Logger
	subs subscribers

	mu    sync.Mutex
	state trackState
	count int // results in a row that disagree with state

	cancel context.CancelFunc
	done   chan struct{}
}

func newScriptTracker(p *scriptPlan, log *slog.Logger) *scriptTracker {
	t := &scriptTracker{plan: p, log: log.With("script", p.name), done: make(chan struct{})}
	if p.initFail {
		t.state = trackDown
	}
	return t
}

func (t *scriptTracker) start() {
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	go t.run(ctx)
}

func (t *scriptTracker) run(ctx context.Context) {
	defer close(t.done)
	tick := time.NewTicker(t.plan.interval)
	defer tick.Stop()
	for {
		r := t.plan.cmd.Run(ctx, t.plan.timeout)
		if ctx.Err() != nil {
			return
		}
		if !r.OK() {
			t.log.Debug("track script failed", "err", r.Err, "exit", r.ExitCode, "stderr", r.Stderr)
		}
		t.result(r.OK())
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// result applies one run's outcome.
func (t *scriptTracker) result(ok bool) {
	t.mu.Lock()
	old := t.state
	switch {
	case t.state == trackUnknown && ok:
		t.state = trackUp
	case t.state == trackUnknown:
		t.state = trackDown
	case (t.state == trackUp) == ok:
		t.count = 0
	default:
		t.count++
		need := t.plan.fall
		if t.state == trackDown {
			need = t.plan.rise
		}
		if t.count >= need {
			t.state, t.count = trackDown, 0
			if ok {
				t.state = trackUp
			}
		}
	}
	now := t.state
	t.mu.Unlock()
	if now != old {
		t.log.Info("track script changed", "from", old.String(), "to", now.String())
		t.subs.wake()
	}
}

func (t *scriptTracker) get() trackState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state
}

func (t *scriptTracker) stop() {
	if t.cancel != nil {
		t.cancel()
		<-t.done
	}
}

// linkMonitor follows the up/down state of interfaces through netlink
// link notifications.
type linkMonitor struct {
	host netHost
	log  *slog.Logger

	mu    sync.Mutex
	state map[string]bool
	subs  map[string]*subscribers

	done chan struct{} // closes the subscription
}

// newLinkMonitor subscribes to link changes in the daemon's namespace.
func newLinkMonitor(host netHost, enter func(func() error) error, log *slog.Logger) (*linkMonitor, error) {
	m := &linkMonitor{host: host, log: log, state: map[string]bool{}, subs: map[string]*subscribers{}, done: make(chan struct{})}
	updates := make(chan netlink.LinkUpdate, 64)
	err := enter(func() error {
		return nlsub.Links(updates, m.done, func(err error) {
			select {
			case <-m.done: // closing
			default:
				log.Warn("link monitor", "err", err)
			}
		})
	})
	if err != nil {
		return nil, err
	}
	go func() {
		for u := range updates {
			a := u.Attrs()
			up := linkUp(a)
			if u.Header.Type == unix.RTM_DELLINK {
				up = false
			}
			m.set(a.Name, up)
		}
	}()
	return m, nil
}

// linkUp reports whether an interface is usable: administratively up and
// operationally up (or unknown, as for loopback and some virtual links).
func linkUp(a *netlink.LinkAttrs) bool {
	return a.Flags&net.FlagUp != 0 && (a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown)
}

func (m *linkMonitor) set(name string, up bool) {
	m.mu.Lock()
	old, known := m.state[name]
	m.state[name] = up
	subs := m.subs[name]
	m.mu.Unlock()
	if known && old != up && subs != nil {
		m.log.Info("tracked interface changed", "interface", name, "up", up)
		subs.wake()
	}
}

// subscribe wakes kick when ifname changes state.
func (m *linkMonitor) subscribe(ifname string, kick chan struct{}) {
	m.mu.Lock()
	s := m.subs[ifname]
	if s == nil {
		s = &subscribers{}
		m.subs[ifname] = s
	}
	_, known := m.state[ifname]
	m.mu.Unlock()
	s.add(kick)
	if !known {
		up := false
		if l, err := m.host.link(ifname); err == nil {
			up = linkUp(l.Attrs())
		}
		m.mu.Lock()
		if _, known := m.state[ifname]; !known {
			m.state[ifname] = up
		}
		m.mu.Unlock()
	}
}

func (m *linkMonitor) unsubscribe(ifname string, kick chan struct{}) {
	m.mu.Lock()
	s := m.subs[ifname]
	m.mu.Unlock()
	if s != nil {
		s.remove(kick)
	}
}

func (m *linkMonitor) up(ifname string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state[ifname]
}

func (m *linkMonitor) close() { close(m.done) }
