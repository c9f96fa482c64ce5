// Package watch keeps `vrrpdoctor check`'s diagnosis running: inside the
// VRRP daemon (`vrrpdoctor run`) about itself, or beside keepalived
// (`vrrpdoctor run --monitor`). It opens the wire and socket taps once per
// interface and keeps them, cuts what they see into windows, builds a check
// Report for each window from the taps and the latest host and firewall
// facts, judges it with check.Evaluate (so findings carry check's IDs) and
// reports each finding once when it appears and once when it clears.
//
// While nothing happens the windows are long (quiet windows, 30 s), and
// anything that could cause or show a finding — a kernel notification, an
// nftables commit, the speaker's state change or failed send, a new sender
// or a lost advert in the capture — ends one at once (quiet.go).
//
// Hysteresis: a finding appears once it has held for a full window and
// clears after a full window without it. The firewall is read again only
// when it may have changed: the nftables generation moved, or the
// iptables-legacy tables' fingerprint changed (and every 60 s while legacy
// tables exist, every 10 s while they cannot be fingerprinted or after a
// failed reading). docs/watch.md describes what is watched and what it
// costs.
package watch

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/netlink"

	"github.com/vrrpdoctor/vrrpdoctor/capture"
	"github.com/vrrpdoctor/vrrpdoctor/diag"
	"github.com/vrrpdoctor/vrrpdoctor/diag/check"
	"github.com/vrrpdoctor/vrrpdoctor/fw"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/keepalived"
)

// Config says what a Watcher watches.
type Config struct {
	// Config holds the instances to watch.
	Config     *keepalived.Config
	ConfigPath string
	// Enter runs fn in the watched network namespace; nil runs it in the
	// caller's. With Enter the firewall is not evaluated (its reader reads
	// the process's namespace): run the watcher in the watched namespace
	// for that.
	Enter func(fn func() error) error
	// Window is the evaluation window; 0 means check's default for the
	// configuration's longest advert interval (check.DefaultDuration).
	Window time.Duration
	// NoFirewall skips the firewall evaluation.
	NoFirewall bool
	// Monitor says a keepalived host is watched (keepalived-not-running and
	// the like apply); false means this process is the VRRP speaker
	// (self-diagnosis inside `vrrpdoctor run`): no keepalived process is
	// expected, and the sends it reports with NoteSend are compared with
	// the wire.
	Monitor bool
	Logger  *slog.Logger
	// OnChange is called, from the watcher's goroutine, for every finding
	// that appeared or cleared.
	OnChange func(Change)
}

// Change is a finding that appeared (Active) or cleared.
type Change struct {
	Time    time.Time
	Finding diag.Finding
	Active  bool
}

// Flow is what the taps saw of one peer's adverts for one virtual router.
type Flow struct {
	Interface string
	Family    int
	VRID      uint8
	Src       netip.Addr
	// Wire and Socket count the adverts seen on the wire and delivered to
	// the VRRP socket since the watch began.
	Wire, Socket uint64
	// DeliveryRatio is the share of the last window's adverts on the wire
	// that reached the socket; -1 when none was on the wire.
	DeliveryRatio float64
	LastSeen      time.Time
}

// Tuning of the watch.
const (
	// The wire tap's ring (its pages stay resident) is sized for what the
	// interface's instances should see (wireRingFor): wireRingMax, some
	// 1,500 adverts, is over a second of 100 instances at 0.1 s with both
	// routers advertising while the reader is busy; wireRingMin, some 375
	// adverts, is minutes of a few instances at 1 s, and a tenth of a
	// second of a flood at 3,000 adverts/s (the kernel counts what it
	// drops; the window reports it).
	wireRingMin = 64 << 10
	wireRingMax = 256 << 10
	// wireSlot is the ring's room per advert (frame and headers, aligned).
	wireSlot = 176
	// socketBuffer is each socket tap's receive buffer.
	socketBuffer = 64 << 10
	// maxEvents bounds the correlator's event log, unused here.
	maxEvents = 8
	// processEvery is how often the VRRP daemons are listed (Monitor)
	// while none runs, processRescan while those known run (a known one
	// that ends is noticed every window).
	processEvery  = 10 * time.Second
	processRescan = 60 * time.Second
	// legacyEvery is how long after a failed reading the firewall is read
	// again, and how often while iptables-legacy tables exist whose
	// fingerprint (legacyFingerprint) cannot be read.
	legacyEvery = 10 * time.Second
	// unchangedEvery re-reads the firewall when the generation cannot be
	// read, or legacy tables exist (a rule replaced by one of the same
	// size leaves their fingerprint unchanged).
	unchangedEvery = 60 * time.Second
	// maxFlows bounds Flows; maxCorrelatorFlows bounds a session's
	// correlator (every sender it ever saw): beyond, the session reopens.
	maxFlows           = 64
	maxCorrelatorFlows = 1024
	// flowExpiry is how many windows a silent flow stays in Flows.
	flowExpiry = 10
)

// Watcher watches the instances of a configuration. Its methods are safe
// for concurrent use.
type Watcher struct {
	c       Config
	window  time.Duration
	log     *slog.Logger
	base    []check.Instance
	ifaces  []string
	procDir string
	node    string
	running atomic.Bool
	// news ends a quiet window (poke).
	news chan struct{}
	// windowLen is the current window's length (under mu).
	windowLen time.Duration
	// sends counts the speaker's send attempts (NoteSend) per instance,
	// by VRID and family (a key NoteSend hashes cheaply), then interface;
	// the map is fixed at New.
	sends map[vrSlot][]*sendCount

	mu    sync.Mutex
	taps  map[string]*tap
	track *tracker
	flows map[flowKey]*Flow
	ready bool

	// Used by the watcher goroutine only.
	// sendOut, cutOut, rep, flowWin, shares are reused from window to
	// window (sendFlows, cut, report, updateFlows, onWireShares): nothing
	// of them outlives the step that made them.
	sendOut  map[string][]capture.FlowStats
	shares   []*sendCount
	cutOut   map[string]*windowData
	rep      *check.Report
	flowWin  map[capture.FlowKey]capture.FlowStats
	held     [][]check.HeldAddr // per instance, at the last window's end
	retry    map[string]retry   // interfaces whose taps failed to open
	procs    []check.Process
	procsErr []string
	procsAt  time.Time
	// exits waits for the end of each VRRP daemon in procs (Monitor).
	exits map[int]*exitWaiter
	fwall firewallState
	kern  kernFacts
	// vipList lists every instance's virtual addresses; held was read
	// at heldAt, when they were on the interfaces heldLinks (vipLinks);
	// heldFresh says that reading was complete.
	vipList   []netip.Addr
	heldLinks []int
	heldAt    time.Time
	heldFresh bool
}

type flowKey struct {
	iface  string
	family uint8
	vrid   uint8
	src    netip.Addr
}

// vrSlot is a VRID and an address family.
type vrSlot struct{ vrid, family uint8 }

// sendCount counts an instance's send attempts since the watch began, and
// keeps what its accepted adverts carried: in self mode the wire tap does
// not take this node's frames, and these facts stand for them. NoteSend
// writes it without a lock or an allocation (but when the source address
// or a new destination first shows); the watcher goroutine reads it when
// the window is cut.
type sendCount struct {
	iface            string
	slot             vrSlot
	attempts, failed atomic.Uint64
	lastErr          atomic.Pointer[string]
	// Of the accepted attempts: counts by kind since the watch began; the
	// versions sent (bit v), the first send time (UnixNano) since the
	// last cut, taken (swapped out) at the cut; the last advert's
	// figures.
	resigned, message, pseudo, old atomic.Uint64
	versions                       atomic.Uint32
	first, last                    atomic.Int64
	priority, ttl                  atomic.Uint32
	interval                       atomic.Int64
	src                            atomic.Pointer[netip.Addr]
	dsts                           [maxSentDsts]atomic.Pointer[netip.Addr]
	// times is a ring of the send times (UnixNano) of the accepted
	// adverts with a priority above 0, the next at index timesNext (mod
	// the ring's power-of-two size).
	times     []atomic.Int64
	timesNext atomic.Uint64
	// advertInt is the shortest advert interval configured for the
	// instance (sizes times).
	advertInt time.Duration

	// The watcher goroutine's: figures at the last window's end, and the
	// last window's (sentFacts); countedFrom is the accepted attempts
	// when the interface's advert counter began to count the window
	// (resumeCounters, or the last window's end).
	prevAttempts, prevFailed                       uint64
	countedFrom                                    uint64
	prevResigned, prevMessage, prevPseudo, prevOld uint64
	prevTimes                                      uint64
	win                                            sentWindow
	// onWire is the share of the window's accepted adverts that reached
	// the wire (onWireShares); sent what sentFacts made of them, reused.
	onWire uint64
	sent   check.Sent
}

// sentWindow is what an instance's accepted send attempts of one window
// carried.
type sentWindow struct {
	accepted, resigned, message, pseudo, old uint64
	// counted is how many of the accepted adverts were sent while the
	// interface's advert counter counted.
	counted  uint64
	versions uint32
	first    int64
	times    []time.Time
}

// maxSentDsts bounds the destinations kept per instance.
const maxSentDsts = 8

// tap is the capture session on one interface.
type tap struct {
	name string
	sess *capture.Session
	wire *capture.WireTap
	win  atomic.Pointer[check.Window]
	// spare is the window before the last, reset and taken again at the
	// next cut, and data what cut made of the last (the watcher
	// goroutine's).
	spare *check.Window
	data  windowData
	prev  map[capture.FlowKey]capture.FlowStats // figures at the window's start
	// own4 and own6 are the group memberships the session's socket taps
	// hold.
	own4, own6 int
	// In self mode, out counts this node's adverts that reached the
	// device, per family (out[0] IPv4, out[1] IPv6; nil for a family no
	// instance uses) while counting says so; onWire holds the last
	// window's counts and counted says the counter counted during that
	// window (cut); credit holds the adverts a window counted beyond its
	// accepted attempts, carried to the next (onWireShares) while the
	// counter keeps counting.
	out      [2]*capture.OutCounter
	counting [2]bool
	counted  [2]bool
	onWire   [2]uint64
	credit   [2]uint64
}

// stop stops the tap's session and closes its advert counters.
func (t *tap) stop() (capture.SessionStats, error) {
	for _, c := range t.out {
		if c != nil {
			c.Close()
		}
	}
	return t.sess.Stop()
}

// familyAt is the address family at index i of tap.out, the inverse of
// familyIndex.
func familyAt(i int) uint8 { return [2]uint8{4, 6}[i] }

// familyIndex is the index of an address family (4 or 6) in tap.out.
func familyIndex(family uint8) int {
	if family == 6 {
		return 1
	}
	return 0
}

// New checks the configuration and prepares a watch; Run starts it.
func New(c Config) (*Watcher, error) {
	if c.Config == nil {
		return nil, errors.New("watch: no configuration")
	}
	w := &Watcher{c: c, log: c.Logger, procDir: "/proc", taps: map[string]*tap{}, flows: map[flowKey]*Flow{}, retry: map[string]retry{},
		sends: map[vrSlot][]*sendCount{}, news: make(chan struct{}, 1)}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	longest := time.Duration(0)
	for i := range c.Config.Instances {
		ci := &c.Config.Instances[i]
		if ci.VRID == 0 || ci.Interface == "" {
			continue
		}
		in := check.InstanceFrom(ci)
		w.base = append(w.base, in)
		w.vipList = append(w.vipList, in.VIPs...)
		w.countSends(in.Interface, in.VRID, in.Family, ci.AdvertInt)
		longest = max(longest, ci.AdvertInt)
		if !slices.Contains(w.ifaces, ci.Interface) {
			w.ifaces = append(w.ifaces, ci.Interface)
		}
	}
	if len(w.base) == 0 {
		return nil, fmt.Errorf("watch: %s has no vrrp_instance with an interface and a virtual router ID", orUnnamed(c.ConfigPath))
	}
	w.window = c.Window
	if w.window <= 0 {
		w.window = check.DefaultDuration(longest)
	}
	if !c.Monitor {
		w.sizeSendTimes() // (NoteSend is the speaker's)
	}
	w.track = newTracker(w.window)
	w.windowLen = w.window
	w.held = make([][]check.HeldAddr, len(w.base))
	w.node, _ = os.Hostname()
	if c.Enter != nil && !c.NoFirewall {
		w.log.Warn("watch: firewall not evaluated", "reason", w.noFirewallReason())
	}
	return w, nil
}

// noFirewallReason says why the firewall is not evaluated. With Enter it
// cannot be: the firewall reader (fw.ReadLive) dumps the nftables rules
// from goroutines of its own, which run in the process's namespace, not in
// the one Enter switches a thread to — its verdicts would be about another
// firewall.
func (w *Watcher) noFirewallReason() string {
	if w.c.NoFirewall {
		return "switched off"
	}
	return "the firewall reader reads the process's own network namespace; run the watcher in the watched namespace (ip netns exec) to evaluate it"
}

func orUnnamed(p string) string {
	if p == "" {
		return "the configuration"
	}
	return p
}

// Window is the evaluation window in use (the base window).
func (w *Watcher) Window() time.Duration { return w.window }

// CurrentWindow is the length of the window in progress: Window, or a
// quiet window's while nothing happens (an event may end it early).
func (w *Watcher) CurrentWindow() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.windowLen
}

func (w *Watcher) enter(fn func() error) error {
	if w.c.Enter == nil {
		return fn()
	}
	return w.c.Enter(fn)
}

// Run watches until ctx ends, then releases the taps. It returns an error
// only when the watch cannot run at all (no CAP_NET_RAW, no timerfd, or Run
// called twice); taps that cannot open on an interface are tried again,
// after a window at first and up to a minute apart.
//
// Windows follow each other without overlap: base windows (Window), and
// while nothing happens quiet windows (quietWindow), which anything that
// could cause or show a finding ends at once (see quiet.go).
func (w *Watcher) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("watch: Run called twice")
	}
	tm, err := newWindowTimer()
	if err != nil {
		return err
	}
	defer tm.close()
	defer w.closeExits()
	defer w.closeTaps()
	defer w.fwall.close()
	start := time.Now()
	var openErr error
	err = w.enter(func() error {
		openErr = w.openTaps(start)
		var poke func()
		if w.firewallEvaluated() {
			poke = w.poke // else the nftables notifications are never drained
		}
		w.fwall.open(poke)
		w.followKernel()
		w.readHeld(nil, start)
		return nil
	})
	defer w.closeKernel()
	if err == nil {
		err = openErr
	}
	if err != nil {
		return err
	}
	cur, quiet := w.window, false
	deadline := start.Add(cur)
	// countAt is when a quiet window's advert counting begins (zero when
	// none is due).
	var countAt time.Time
	if err := tm.set(cur); err != nil {
		return err
	}
	for {
		var news chan struct{}
		if quiet {
			news = w.news // a base window judges what happened at its end
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tm.C:
			if time.Until(wakeAt(countAt, deadline)) > cur/slack {
				continue // an expiry from before the timer was set again
			}
			if !countAt.IsZero() {
				countAt = time.Time{}
				w.resumeCounters()
				if err := tm.set(time.Until(deadline)); err != nil {
					return err
				}
				continue
			}
		case <-news:
		}
		now := time.Now()
		// What is told from here on happened after the cut: it ends the
		// next window if that is quiet.
		select {
		case <-w.news:
		default:
		}
		next, nextQuiet := w.step(ctx, start, now, quiet)
		if quiet && now.Before(deadline) {
			// What ended it may not show in this window's report yet
			// (a keepalived exit told before its processes are all
			// gone): a base window follows, never another quiet one
			// (docs/watch.md).
			next, nextQuiet = w.window, false
			w.log.Debug("watch: quiet window ended early", "after", now.Sub(start))
		}
		w.mu.Lock()
		w.windowLen = next
		w.mu.Unlock()
		// A window ended on time starts the next at its deadline, so that
		// base windows keep their cadence; one ended early, now.
		from := deadline
		if now.Before(deadline) || now.Sub(deadline) > cur {
			from = now
		}
		start, cur, quiet, deadline = now, next, nextQuiet, from.Add(next)
		countAt = w.planCounting(quiet, deadline)
		if err := tm.set(time.Until(wakeAt(countAt, deadline))); err != nil {
			return err
		}
	}
}

// wakeAt is when the window timer is due: at countAt, if any, else at the
// window's deadline.
func wakeAt(countAt, deadline time.Time) time.Time {
	if countAt.IsZero() {
		return deadline
	}
	return countAt
}

// planCounting sets the advert counters (self mode) for the next window:
// a base window is counted whole; a quiet window only in its last base
// window's length, and it returns when that begins. While it counts, a
// counter costs the kernel a copy of every frame the host sends out of
// the interface; a quiet window only needs enough of this node's adverts to
// tell whether they reach the device (a drop that starts earlier in it is
// seen at its end, and then the windows are base ones).
func (w *Watcher) planCounting(quiet bool, deadline time.Time) (countAt time.Time) {
	if w.c.Monitor {
		return time.Time{} // no counters: the wire tap sees this node's adverts
	}
	if !quiet {
		w.resumeCounters()
		return time.Time{}
	}
	countAt = deadline.Add(-w.window)
	for _, t := range w.tapList() {
		for i, c := range t.out {
			if c == nil || !t.counting[i] {
				continue
			}
			if err := c.Pause(); err != nil {
				w.log.Warn("watch: advert counter", "interface", t.name, "err", err)
				continue
			}
			t.counting[i] = false
			w.log.Debug("watch: advert counter paused", "interface", t.name, "family", familyAt(i), "until", countAt)
		}
	}
	return countAt
}

// resumeCounters has the advert counters that are paused count again, from
// now on.
func (w *Watcher) resumeCounters() {
	for _, t := range w.tapList() {
		for i, c := range t.out {
			if c == nil || t.counting[i] {
				continue
			}
			if err := c.Resume(); err != nil {
				w.log.Warn("watch: advert counter", "interface", t.name, "err", err)
				continue
			}
			t.counting[i], t.credit[i] = true, 0
			w.countFrom(t.name, familyAt(i))
			w.log.Debug("watch: advert counter counts", "interface", t.name, "family", familyAt(i))
		}
	}
}

// countFrom notes the accepted send attempts of the instances of an
// interface and family when its advert counter begins to count. Called
// after the counter resumed: an advert sent in between is counted beyond
// the accepted attempts (and credited), never short of them.
func (w *Watcher) countFrom(iface string, family uint8) {
	for _, cs := range w.sends {
		for _, c := range cs {
			if c.iface == iface && c.slot.family == family {
				failed := c.failed.Load()
				c.countedFrom = c.attempts.Load() - failed
			}
		}
	}
}

// tapList lists the open taps.
func (w *Watcher) tapList() []*tap {
	w.mu.Lock()
	defer w.mu.Unlock()
	taps := make([]*tap, 0, len(w.taps))
	for _, t := range w.taps {
		taps = append(taps, t)
	}
	return taps
}

// firewallEvaluated says whether the watch evaluates the firewall.
func (w *Watcher) firewallEvaluated() bool { return !w.c.NoFirewall && w.c.Enter == nil }

// openTaps starts a session on every watched interface that has none; a
// missing privilege is an error, other failures are logged and retried.
func (w *Watcher) openTaps(now time.Time) error {
	for _, name := range w.ifaces {
		w.mu.Lock()
		_, ok := w.taps[name]
		w.mu.Unlock()
		if r := w.retry[name]; ok || now.Before(r.at) {
			continue
		}
		t, err := w.openTap(name)
		if err != nil {
			var pe *capture.PermissionError
			if errors.As(err, &pe) {
				return fmt.Errorf("watch: %w", err)
			}
			// Tried again after one window, then twice as long each
			// time, up to a minute.
			r := w.retry[name]
			r.wait = min(max(2*r.wait, w.window), maxRetryWait)
			r.at = now.Add(r.wait - w.window/slack)
			w.retry[name] = r
			w.log.Debug("watch: taps not open", "interface", name, "err", err, "retry in", r.wait)
			continue
		}
		delete(w.retry, name)
		w.mu.Lock()
		w.taps[name] = t
		w.mu.Unlock()
	}
	return nil
}

// retry is when taps that failed to open are tried again.
type retry struct {
	at   time.Time
	wait time.Duration
}

// maxRetryWait bounds the wait before taps that failed are tried again.
const maxRetryWait = time.Minute

func (w *Watcher) openTap(name string) (*tap, error) {
	t := &tap{name: name, prev: map[capture.FlowKey]capture.FlowStats{}}
	var fams []uint8
	var unicast []netip.Addr
	multicast := false
	ifc := check.InterfaceState(name, w.procDir, 0, 0)
	for i := range w.base {
		in := &w.base[i]
		if in.Interface != name {
			continue
		}
		if !slices.Contains(fams, in.Family) {
			fams = append(fams, in.Family)
		}
		if in.Unicast {
			if a := check.LocalAddr(in, &ifc); a.IsValid() && !slices.Contains(unicast, a) {
				unicast = append(unicast, a)
			}
		} else {
			multicast = true
		}
	}
	so := capture.SessionOptions{
		Interface: name,
		Families:  fams,
		// In self mode this node's adverts are known from NoteSend and
		// counted on the wire by t.out: the kernel keeps them out of
		// the wire tap, which no longer wakes for each.
		Wire:   capture.WireOptions{BufferSize: wireRingFor(w.base, name), IncomingOnly: !w.c.Monitor},
		Socket: capture.SocketOptions{BufferSize: socketBuffer},
		// Whatever new or wrong the correlator sees ends a quiet window.
		Correlator: capture.CorrelatorOptions{MaxEvents: maxEvents, Notify: w.news},
		// Pending observations are decided when the window is cut
		// (matches need not be decided faster), without a ticker of
		// their own. This node's adverts are analysed by the window
		// (Frame) and its send attempts counted by NoteSend: matching
		// each send with its frame cost more than the rest of the
		// watch on a busy speaker, and check judges neither.
		AdvanceOnStats: true,
		IncomingOnly:   true,
		OnStart: func(wt *capture.WireTap) error {
			t.wire = wt
			t.win.Store(check.NewWindow(wt))
			return nil
		},
		OnFrame: func(f *capture.WireFrame) error {
			t.win.Load().Frame(f)
			return nil
		},
	}
	if !multicast && len(unicast) == 1 && len(fams) == 1 {
		so.Socket.Unicast = unicast[0]
	}
	if !w.c.Monitor {
		for _, f := range fams {
			c, err := capture.OpenOutCounter(name, f)
			if err != nil {
				for _, c := range t.out {
					if c != nil {
						c.Close()
					}
				}
				return nil, err
			}
			t.out[familyIndex(f)] = c
			t.counting[familyIndex(f)] = true
			w.countFrom(name, f)
		}
	}
	sess, err := capture.StartSession(so)
	if err != nil {
		for _, c := range t.out {
			if c != nil {
				c.Close()
			}
		}
		return nil, err
	}
	t.sess = sess
	if so.Socket.Unicast.IsValid() {
		return t, nil
	}
	for _, s := range sess.Stats().Sockets {
		switch {
		case s.Open && s.Family == 4:
			t.own4++
		case s.Open && s.Family == 6:
			t.own6++
		}
	}
	return t, nil
}

// wireRingFor sizes the wire ring of interface name: two seconds of the
// adverts its instances' routers send when both advertise, between
// wireRingMin and wireRingMax.
func wireRingFor(base []check.Instance, name string) int {
	perSecond := 0.0
	for i := range base {
		if in := &base[i]; in.Interface == name {
			interval := in.AdvertInt
			if interval <= 0 {
				interval = 0.01 // not known: the shortest VRRPv3 allows
			}
			perSecond += 2 / interval
		}
	}
	return min(max(int(2*perSecond*wireSlot), wireRingMin), wireRingMax)
}

func (w *Watcher) closeTaps() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, t := range w.taps {
		t.stop()
		delete(w.taps, name)
	}
}

// NoteSend reports one of the daemon's own send attempts: failures
// (sendto EPERM, an OUTPUT drop) confirm a firewall drop, and each
// window's accepted attempts are compared by count with this node's
// adverts that reached the device (the advert counters); what they carried
// (priority, version, interval, checksum variant, TTL, time) stands for
// this node's adverts in the window, which the wire tap does not take in
// self mode. It takes no lock and allocates nothing (but when an
// instance's source address or a new destination first shows); attempts of
// unwatched instances are ignored.
func (w *Watcher) NoteSend(a capture.SendAttempt) {
	family := uint8(6)
	if a.Src.Unmap().Is4() {
		family = 4
	}
	var c *sendCount
	for _, x := range w.sends[vrSlot{a.VRID, family}] {
		if x.iface == a.Interface {
			c = x
		}
	}
	if c == nil {
		return
	}
	if a.Err == nil {
		c.noteAccepted(&a)
	}
	c.attempts.Add(1)
	if a.Err != nil {
		msg := a.Err.Error()
		c.lastErr.Store(&msg)
		c.failed.Add(1)
		w.poke()
	}
}

// noteAccepted keeps what an accepted advert carried.
func (c *sendCount) noteAccepted(a *capture.SendAttempt) {
	t := a.Time.UnixNano()
	if a.Time.IsZero() {
		t = time.Now().UnixNano()
	}
	if a.Priority == 0 {
		c.resigned.Add(1)
	} else if n := uint64(len(c.times)); n > 0 {
		i := c.timesNext.Add(1) - 1
		c.times[i&(n-1)].Store(t)
	}
	switch a.Checksum {
	case vrrpcore.ChecksumMessage:
		c.message.Add(1)
	case vrrpcore.ChecksumOldUnicast:
		c.old.Add(1)
	default:
		c.pseudo.Add(1)
	}
	if a.Version < 32 {
		c.versions.Or(1 << a.Version)
	}
	c.first.CompareAndSwap(0, t)
	c.last.Store(t)
	c.priority.Store(uint32(a.Priority))
	c.ttl.Store(uint32(a.TTL))
	c.interval.Store(int64(a.Interval))
	if p := c.src.Load(); p == nil || *p != a.Src {
		src := a.Src
		c.src.Store(&src)
	}
	if a.Dst.IsValid() {
		for i := range c.dsts {
			p := c.dsts[i].Load()
			if p == nil {
				dst := a.Dst
				if c.dsts[i].CompareAndSwap(nil, &dst) {
					break
				}
				p = c.dsts[i].Load()
			}
			if *p == a.Dst {
				break
			}
		}
	}
}

// sendFlows returns, per interface, the send attempts of the window just
// ended as outgoing flows (what check.Window.Fill reads of them). The map
// and its slices are reused by the next call.
func (w *Watcher) sendFlows() map[string][]capture.FlowStats {
	out := w.sendOut
	if out == nil {
		out = map[string][]capture.FlowStats{}
		w.sendOut = out
	}
	for k, v := range out {
		out[k] = v[:0]
	}
	for _, cs := range w.sends {
		for _, c := range cs {
			// failed before attempts: a failure is counted after its
			// attempt, so failed never exceeds attempts.
			failed := c.failed.Load()
			attempts := c.attempts.Load()
			f := capture.FlowStats{FlowKey: capture.FlowKey{Interface: c.iface, VRID: c.slot.vrid, Family: c.slot.family, Direction: capture.DirOut},
				Sends: attempts - c.prevAttempts, SendErrors: failed - c.prevFailed}
			c.prevAttempts, c.prevFailed = attempts, failed
			c.cutSent(f.Sends - f.SendErrors)
			c.win.counted = min(c.win.accepted, attempts-failed-min(attempts-failed, c.countedFrom))
			c.countedFrom = attempts - failed
			if f.Sends == 0 {
				continue
			}
			if e := c.lastErr.Load(); e != nil {
				f.LastSendError = *e
			}
			out[c.iface] = append(out[c.iface], f)
		}
	}
	for k, v := range out {
		if len(v) == 0 {
			delete(out, k)
		}
	}
	return out
}

// cutSent takes the facts of the window's accepted adverts (accepted of
// them) into c.win.
func (c *sendCount) cutSent(accepted uint64) {
	resigned, message, pseudo, old := c.resigned.Load(), c.message.Load(), c.pseudo.Load(), c.old.Load()
	win := &c.win
	*win = sentWindow{accepted: accepted, resigned: resigned - c.prevResigned, message: message - c.prevMessage, pseudo: pseudo - c.prevPseudo,
		old: old - c.prevOld, versions: c.versions.Swap(0), first: c.first.Swap(0), times: win.times[:0]}
	c.prevResigned, c.prevMessage, c.prevPseudo, c.prevOld = resigned, message, pseudo, old
	// The send times written since the last cut: a time being written
	// at the cut is read as the ring's older one, and left out.
	next, n := c.timesNext.Load(), uint64(len(c.times))
	from := max(c.prevTimes, next-min(next, n))
	for i := from; i < next; i++ {
		if t := c.times[i&(n-1)].Load(); t >= win.first && win.first != 0 {
			win.times = append(win.times, time.Unix(0, t))
		}
	}
	c.prevTimes = next
	slices.SortFunc(win.times, time.Time.Compare)
}

// countSends prepares the counting of an instance's send attempts.
func (w *Watcher) countSends(iface string, vrid, family uint8, advertInt time.Duration) {
	s := vrSlot{vrid, family}
	for _, c := range w.sends[s] {
		if c.iface == iface {
			// Two instances of one virtual router: counted once.
			c.advertInt = min(c.advertInt, advertInt)
			return
		}
	}
	w.sends[s] = append(w.sends[s], &sendCount{iface: iface, slot: s, advertInt: advertInt})
}

// sizeSendTimes gives each instance's ring of send times room for twice
// the adverts of a window at its advert interval (0.01 s when not known),
// a power of two up to maxTimes.
func (w *Watcher) sizeSendTimes() {
	for _, cs := range w.sends {
		for _, c := range cs {
			iv := c.advertInt
			if iv <= 0 {
				iv = 10 * time.Millisecond
			}
			n := 16
			for n < maxTimes && time.Duration(n) < 2*w.window/iv+16 {
				n *= 2
			}
			c.times = make([]atomic.Int64, n)
		}
	}
}

// maxTimes bounds the send times kept per instance and window.
const maxTimes = 1 << 14

// Ready says whether the first window has been evaluated.
func (w *Watcher) Ready() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ready
}

// Findings returns the active findings, worst first, then by ID.
func (w *Watcher) Findings() []diag.Finding {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.track.active()
}

// Flows returns what the taps saw of each peer's adverts, by interface,
// family, VRID and sender.
func (w *Watcher) Flows() []Flow {
	w.mu.Lock()
	defer w.mu.Unlock()
	fs := make([]Flow, 0, len(w.flows))
	for _, f := range w.flows {
		fs = append(fs, *f)
	}
	slices.SortFunc(fs, func(a, b Flow) int {
		switch {
		case a.Interface != b.Interface:
			if a.Interface < b.Interface {
				return -1
			}
			return 1
		case a.Family != b.Family:
			return a.Family - b.Family
		case a.VRID != b.VRID:
			return int(a.VRID) - int(b.VRID)
		}
		return a.Src.Compare(b.Src)
	})
	return fs
}

// windowData is one interface's window, cut.
type windowData struct {
	tap   *tap
	win   *check.Window
	flows []capture.FlowStats // figures of the window
	snap  []capture.FlowStats // cumulative figures at its end
	stats capture.SessionStats
}

// step ends the window [start, now]: it cuts the taps' observations,
// builds and judges the window's report and applies the hysteresis; quiet
// says the window was a quiet one (judged unsettled for new findings). It
// returns the next window's length, and whether that is a quiet one.
func (w *Watcher) step(ctx context.Context, start, now time.Time, quiet bool) (next time.Duration, nextQuiet bool) {
	var fs []diag.Finding
	settled, dropped := false, false
	t0 := time.Now()
	err := w.enter(func() error {
		var cut map[string]*windowData
		cut, dropped = w.cut()
		var r *check.Report
		r, settled = w.report(ctx, start, now, cut)
		w.updateFlows(now, cut)
		fs = check.EvaluateProblems(r)
		if w.log.Enabled(ctx, slog.LevelDebug) {
			w.log.Debug("watch: window judged", "findings", findingIDs(fs), "settled", settled, "dropped", dropped, "quiet", quiet,
				"length", now.Sub(start), "took", time.Since(t0), "report", debugReport(r))
		}
		// Taps opened now see a whole window before they are cut.
		if err := w.openTaps(now); err != nil {
			w.log.Warn("watch: taps", "err", err)
		}
		return nil
	})
	if err != nil {
		w.log.Warn("watch: cannot enter the watched network namespace", "err", err)
		return w.window, false
	}
	changes, next, nextQuiet := w.judge(start, now, fs, settled, dropped, quiet)
	for _, c := range changes {
		if w.c.OnChange != nil {
			w.c.OnChange(c)
		}
	}
	return next, nextQuiet
}

// judge applies the hysteresis to the findings of the window [start, now]
// and says how long the next window is, and whether it is a quiet one.
func (w *Watcher) judge(start, now time.Time, fs []diag.Finding, settled, dropped, quiet bool) (changes []Change, next time.Duration, nextQuiet bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !dropped {
		// A window whose capture stopped half-way proves nothing either
		// way: the findings stay as they are. A finding first seen in a
		// quiet window counts from its end, as in an unsettled one: it
		// must then hold for a base window to appear, however long the
		// quiet window was.
		changes = w.track.update(start, now, fs, settled && !quiet)
	}
	w.ready = true
	next, nextQuiet = nextWindow(w.window, w.quietLength(), settled, dropped, len(fs), len(w.track.entries) > 0)
	return changes, next, nextQuiet
}

// cut starts a new window on every tap and returns the old ones with the
// correlator's figures over them. A session that failed is stopped (it is
// reopened after the window is judged) and its window dropped.
func (w *Watcher) cut() (out map[string]*windowData, dropped bool) {
	taps := w.tapList()
	sends := w.sendFlows()
	out = w.cutOut
	if out == nil {
		out = map[string]*windowData{}
		w.cutOut = out
	}
	clear(out)
	for _, t := range taps {
		select {
		case <-t.sess.Failed():
			_, err := t.stop()
			w.log.Warn("watch: capture stopped; reopening", "interface", t.name, "err", err)
			w.dropTap(t)
			dropped = true
			continue
		default:
		}
		// The window before the last was judged in the last step: it is
		// emptied and takes the next window's frames.
		next := t.spare
		if next == nil {
			next = check.NewWindow(t.wire)
		} else {
			next.Reset()
		}
		old := t.win.Swap(next)
		t.spare = old
		// After the send attempts (sendFlows): an advert counted on the
		// wire whose attempt was not counted yet is credited to the
		// next window.
		for i, c := range t.out {
			t.onWire[i] = 0
			t.counted[i] = c != nil && t.counting[i]
			if t.counted[i] {
				n, err := c.Count()
				if err != nil {
					w.log.Warn("watch: advert counter", "interface", t.name, "err", err)
				}
				t.onWire[i] = n
			}
		}
		st := t.sess.Stats()
		d := &t.data
		*d = windowData{tap: t, win: old, flows: d.flows[:0], snap: st.Flows, stats: st}
		// The correlator forgets no flow: prev is updated in place.
		for _, f := range st.Flows {
			if g, ok := delta(f, t.prev[f.FlowKey]); ok {
				d.flows = append(d.flows, g)
			}
			t.prev[f.FlowKey] = f
		}
		d.flows = append(d.flows, sends[t.name]...)
		out[t.name] = d
		if len(st.Flows) > maxCorrelatorFlows {
			// Bounded state: a flood of senders grows the correlator;
			// start afresh.
			w.log.Warn("watch: too many senders; capture restarted", "interface", t.name, "flows", len(st.Flows))
			t.stop()
			w.dropTap(t)
		}
	}
	return out, dropped
}

func (w *Watcher) dropTap(t *tap) {
	w.mu.Lock()
	if w.taps[t.name] == t {
		delete(w.taps, t.name)
	}
	w.mu.Unlock()
}

// delta is a flow's figures between two snapshots; ok is false when
// nothing happened.
func delta(now, before capture.FlowStats) (capture.FlowStats, bool) {
	d := now
	d.Wire.Packets -= before.Wire.Packets
	d.Wire.BadChecksum -= before.Wire.BadChecksum
	d.Socket.Packets -= before.Socket.Packets
	d.Socket.BadChecksum -= before.Socket.BadChecksum
	d.Matched -= before.Matched
	d.Lost -= before.Lost
	d.SocketOnly -= before.SocketOnly
	d.Sends -= before.Sends
	d.SendErrors -= before.SendErrors
	d.SentOnWire -= before.SentOnWire
	d.SentMissing -= before.SentMissing
	ok := d.Wire.Packets+d.Socket.Packets+d.Matched+d.Lost+d.Sends > 0
	return d, ok
}

// report builds the report of the window [start, now], in the watched
// namespace. settled is
// false when the addresses held or the firewall's verdicts changed during
// the window.
//
// The report, and the room of its slices, is the last window's: nothing
// keeps it beyond the step that judges it.
func (w *Watcher) report(ctx context.Context, start, now time.Time, cut map[string]*windowData) (r *check.Report, settled bool) {
	r = w.rep
	if r == nil {
		r = &check.Report{}
		w.rep = r
	}
	var info *check.CaptureInfo
	if info = r.Capture; info == nil {
		info = &check.CaptureInfo{}
	}
	// The window's real length: a quiet window is longer than the
	// setting, or ended early.
	*info = check.CaptureInfo{Duration: now.Sub(start).Seconds(), Interfaces: info.Interfaces[:0]}
	*r = check.Report{
		Schema: check.Schema, Node: w.node, Time: now.UTC(),
		Config:     check.ConfigFacts{Path: w.c.ConfigPath, Source: "watch", Errors: []string{}},
		Interfaces: emptied(r.Interfaces), Instances: append(r.Instances[:0], w.base...), Skipped: emptied(r.Skipped),
		Processes: r.Processes[:0],
	}
	w.processes(r, now)
	w.interfaceFacts(r, now)
	heldChanged := w.readHeld(r, now)
	heldChanged = w.vipsChanged() || heldChanged
	if info.Interfaces == nil {
		info.Interfaces = []check.CaptureIface{}
	}
	for _, name := range w.ifaces {
		d := cut[name]
		if d == nil {
			continue
		}
		w.onWireShares(d.tap)
		info.Interfaces = append(info.Interfaces, check.CaptureIface{Name: name, Frames: d.stats.Frames, KernelDropped: d.stats.Wire.Dropped})
		// Fill reads only the flows of the instance's VRID and family:
		// hand it those, not every flow of the interface. Sorted by
		// them (stable: the flows of one keep their order), each
		// instance's are a run of d.flows.
		slices.SortStableFunc(d.flows, compareVR)
		for i := range r.Instances {
			if in := &r.Instances[i]; in.Interface == name {
				key := capture.FlowStats{FlowKey: capture.FlowKey{VRID: in.VRID, Family: in.Family}}
				lo, _ := slices.BinarySearchFunc(d.flows, key, compareVR)
				hi := lo
				for hi < len(d.flows) && compareVR(d.flows[hi], key) == 0 {
					hi++
				}
				var flows []capture.FlowStats
				if hi > lo {
					flows = d.flows[lo:hi:hi]
				}
				d.win.FillSent(in, ifaceOf(r, name), flows, w.sentFacts(in))
				sendsOnWire(in)
			}
		}
	}
	r.Capture = info
	if undelivered(r) {
		// The reverse-path facts explain adverts lost before the
		// socket; a healthy window spares their reading. So may
		// the group memberships, which are otherwise read only now and
		// then.
		w.recheckMembers(r, now)
		check.SenderFacts(r, w.procDir)
	}
	fwChanged := false
	if !w.firewallEvaluated() {
		for i := range r.Instances {
			r.Instances[i].FirewallIn, r.Instances[i].FirewallOut = []check.Verdict{}, []check.Verdict{}
		}
		r.Skipped = append(r.Skipped, "firewall not evaluated: "+w.noFirewallReason())
	} else {
		w.fwall.refresh(ctx, now, w.procDir, w.log)
		fwChanged = w.fwall.facts(ctx, r, now, w.log)
	}
	return r, !heldChanged && !fwChanged
}

// compareVR orders flows by VRID and family.
func compareVR(a, b capture.FlowStats) int {
	if a.VRID != b.VRID {
		return int(a.VRID) - int(b.VRID)
	}
	return int(a.Family) - int(b.Family)
}

// emptied returns s emptied, keeping its room; an empty slice, not nil,
// when it has none.
func emptied[S ~[]E, E any](s S) S {
	if s == nil {
		return S{}
	}
	return s[:0]
}

// onWireShares shares out the adverts t's counters saw reach the device in
// the window among the instances of the interface, per family: the
// counters count per interface and family, not per instance. When as many
// reached the device as were accepted while the counter counted, each
// instance's did; when fewer, the shortfall is shared in proportion to the
// instances' accepted attempts (exact with one instance per interface and
// family, and when all or none reached the wire). A counter counts only
// the end of a quiet window (planCounting): there, an instance's share of
// the counted part is taken for the whole window (an instance that sent
// nothing in that part, the family's). Adverts beyond the
// accepted ones (an attempt not counted yet at the cut, or another sender
// on this host) are credited to the next window, up to two per instance.
// Without a counter every accepted advert counts as on the wire.
func (w *Watcher) onWireShares(t *tap) {
	if w.c.Monitor {
		return // no send attempts: the wire tap sees this node's adverts
	}
	for fi, family := range [2]uint8{4, 6} {
		var counted uint64
		w.shares = w.shares[:0]
		for _, cs := range w.sends {
			for _, c := range cs {
				if c.iface == t.name && c.slot.family == family {
					counted += c.win.counted
					c.onWire = c.win.accepted
					w.shares = append(w.shares, c)
				}
			}
		}
		if !t.counted[fi] {
			continue
		}
		seen := t.onWire[fi] + t.credit[fi]
		t.credit[fi] = min(seen-min(seen, counted), 2*uint64(len(w.shares)))
		if seen >= counted {
			continue
		}
		// c.onWire is, until the end, the share of c's counted adverts
		// that reached the device.
		left := seen
		for _, c := range w.shares {
			c.onWire = c.win.counted * seen / counted
			left -= c.onWire
		}
		if left > 0 {
			// What the rounding down left, one each to the largest
			// remainders (then the lowest VRID: w.sends is a map, whose
			// order changes from run to run).
			slices.SortFunc(w.shares, func(a, b *sendCount) int {
				ra, rb := a.win.counted*seen%counted, b.win.counted*seen%counted
				if c := cmp.Compare(rb, ra); c != 0 {
					return c
				}
				return cmp.Compare(a.slot.vrid, b.slot.vrid)
			})
			for _, c := range w.shares {
				if left > 0 && c.onWire < c.win.counted {
					c.onWire++
					left--
				}
			}
		}
		for _, c := range w.shares {
			if c.win.counted > 0 {
				c.onWire = c.win.accepted * c.onWire / c.win.counted
			} else {
				c.onWire = c.win.accepted * seen / counted
			}
		}
	}
}

// sentFacts returns this node's adverts of the window for in, as the
// speaker reported them and as far as they reached the wire; nil when none
// did. It is valid until the next window.
func (w *Watcher) sentFacts(in *check.Instance) *check.Sent {
	var c *sendCount
	for _, x := range w.sends[vrSlot{in.VRID, in.Family}] {
		if x.iface == in.Interface {
			c = x
		}
	}
	if c == nil || c.onWire == 0 {
		return nil
	}
	win, n := &c.win, c.onWire
	s := &c.sent
	*s = check.Sent{Adverts: n, Resigned: min(win.resigned, n), Priority: uint8(c.priority.Load()), Interval: time.Duration(c.interval.Load()),
		TTL: uint8(c.ttl.Load()), First: time.Unix(0, win.first), Last: time.Unix(0, c.last.Load()), Times: win.times,
		Versions: s.Versions[:0], Dsts: s.Dsts[:0]}
	if p := c.src.Load(); p != nil {
		s.Address = *p
	}
	for v := range 32 {
		if win.versions&(1<<v) != 0 {
			s.Versions = append(s.Versions, v)
		}
	}
	for i := range c.dsts {
		if p := c.dsts[i].Load(); p != nil {
			s.Dsts = append(s.Dsts, *p)
		}
	}
	// The checksum variants in the proportion they were sent.
	if kinds := win.message + win.pseudo + win.old; kinds > 0 {
		s.Checksum.Message = n * win.message / kinds
		s.Checksum.OldUnicast = n * win.old / kinds
	}
	s.Checksum.PseudoHeader = n - s.Checksum.Message - s.Checksum.OldUnicast
	if win.first == 0 {
		s.First = s.Last
	}
	return s
}

// sendsOnWire compares the window's accepted send attempts with this
// node's adverts seen on the wire, by count: the watch does not match each
// attempt with its frame (a send at the window's end may show on the wire
// in the next window).
func sendsOnWire(in *check.Instance) {
	s := in.Sends
	if s == nil {
		return
	}
	accepted := s.Attempts - s.Failed
	var seen uint64
	if in.Local != nil {
		seen = in.Local.Adverts
	}
	s.OnWire = min(accepted, seen)
	s.Missing = accepted - s.OnWire
}

// vipsChanged says whether a virtual address came or went since the last
// window's end (a notification for it was drained), or may have (the
// notifications were lost or are not followed at all: then only the
// addresses held at the window's ends are compared).
func (w *Watcher) vipsChanged() bool {
	k := &w.kern
	if k.ev == nil && !k.lost {
		return false
	}
	changed := k.vipEvents != k.vipsSeen || k.lost
	k.vipsSeen = k.vipEvents
	return changed
}

// undelivered says whether a peer's adverts reached the wire and none the
// socket in the window.
func undelivered(r *check.Report) bool {
	for _, in := range r.Instances {
		for _, p := range in.Peers {
			if p.Adverts > 0 && p.Socket == 0 {
				return true
			}
		}
	}
	return false
}

func findingIDs(fs []diag.Finding) []string {
	ids := make([]string, len(fs))
	for i, f := range fs {
		ids[i] = f.ID
	}
	return ids
}

// debugReport summarises a window's report for the debug log.
func debugReport(r *check.Report) string {
	var b strings.Builder
	for _, in := range r.Instances {
		fmt.Fprintf(&b, "[VRID %d on %s: held %d", in.VRID, in.Interface, len(in.Held))
		if in.Local != nil {
			fmt.Fprintf(&b, ", sent %d", in.Local.Adverts)
		}
		for _, p := range in.Peers {
			fmt.Fprintf(&b, ", peer %s wire %d socket %d", p.Address, p.Adverts, p.Socket)
		}
		for _, v := range append(slices.Clone(in.FirewallIn), in.FirewallOut...) {
			fmt.Fprintf(&b, ", %s %v→%v %s", v.Direction, v.Src, v.Dst, v.Verdict)
		}
		b.WriteString("]")
	}
	return b.String()
}

func ifaceOf(r *check.Report, name string) *check.Interface {
	for i := range r.Interfaces {
		if r.Interfaces[i].Name == name {
			return &r.Interfaces[i]
		}
	}
	return nil
}

// processes sets the report's VRRP daemons: in Monitor mode those running
// (listed every processEvery), else this process, the VRRP speaker.
func (w *Watcher) processes(r *check.Report, now time.Time) {
	if !w.c.Monitor {
		r.Processes = append(r.Processes[:0], check.Process{PID: os.Getpid(), Kind: "vrrpdoctor-run", Config: w.c.ConfigPath})
		return
	}
	// A full scan reads every process's command line: done every
	// processRescan, every processEvery while none runs, and at once when
	// one of those known ended.
	since := now.Sub(w.procsAt)
	due := w.procsAt.IsZero() || since >= processRescan || len(w.procs) == 0 && since >= processEvery
	for _, p := range w.procs {
		if _, err := os.Stat(filepath.Join(w.procDir, strconv.Itoa(p.PID))); err != nil {
			due = true
		}
	}
	if due {
		w.procs, w.procsErr = check.Daemons(w.procDir)
		w.procsAt = now
		w.followExits()
	}
	r.Processes = append(emptied(r.Processes), w.procs...)
	r.Skipped = append(r.Skipped, w.procsErr...)
	r.ProcessesUnreadable = len(w.procsErr) > 0
}

// followExits waits for the end of each VRRP daemon listed (it ends a
// quiet window), and no longer for those gone.
func (w *Watcher) followExits() {
	if w.exits == nil {
		w.exits = map[int]*exitWaiter{}
	}
	for pid, e := range w.exits {
		if !slices.ContainsFunc(w.procs, func(p check.Process) bool { return p.PID == pid }) {
			e.close()
			delete(w.exits, pid)
		}
	}
	for _, p := range w.procs {
		if _, ok := w.exits[p.PID]; ok {
			continue
		}
		e, err := newExitWaiter(p.PID, w.poke)
		if err != nil {
			w.log.Debug("watch: the daemon's end ends no quiet window (seen at the window's end)", "pid", p.PID, "err", err)
			continue
		}
		w.exits[p.PID] = e
	}
}

func (w *Watcher) closeExits() {
	for pid, e := range w.exits {
		e.close()
		delete(w.exits, pid)
	}
}

// readHeld reads the virtual addresses held now; with r, each instance
// keeps those held at the last window's end and now, as check keeps those
// held before and after its watch. It says whether the addresses held
// changed.
//
// While the kernel's notifications are followed and none came for a
// virtual address since the last reading, the addresses held are as then.
// Otherwise one dump of the addresses says which interface holds each
// virtual address (vipLinks); while that is as at the last full reading,
// which was complete, the addresses held are those read then and
// check.HeldAddrs' dump of every link is spared — it is done at least
// every unchangedEvery all the same, and after a notification of a link
// holding one (renamed: the addresses held carry the links' names) or
// when notifications were lost. The notifications are drained when the
// window ends (kernelNews), so none made before is read late.
func (w *Watcher) readHeld(r *check.Report, now time.Time) (changed bool) {
	k := &w.kern
	stale := k.heldStale
	links, err := w.heldLinks, error(nil)
	if quiet := k.ev != nil && !stale && k.vipEvents == k.vipsHeld && w.heldLinks != nil; !quiet {
		links, err = vipLinks(w.vipList)
	}
	k.vipsHeld, k.heldStale = k.vipEvents, false
	if r != nil && err == nil && !stale && w.heldFresh && slices.Equal(links, w.heldLinks) && now.Sub(w.heldAt) < unchangedEvery {
		for i := range r.Instances {
			r.Instances[i].Held = append([]check.HeldAddr{}, w.held[i]...)
		}
		return false
	}
	scratch := &check.Report{Instances: slices.Clone(w.base)}
	check.HeldAddrs(scratch, false)
	w.heldLinks, w.heldAt, w.heldFresh = links, now, err == nil && len(scratch.Skipped) == 0
	for i := range scratch.Instances {
		now := scratch.Instances[i].Held
		changed = changed || !slices.Equal(now, w.held[i])
		if r != nil {
			r.Instances[i].Held = slices.DeleteFunc(slices.Clone(now), func(h check.HeldAddr) bool { return !slices.Contains(w.held[i], h) })
			if r.Instances[i].Held == nil {
				r.Instances[i].Held = []check.HeldAddr{}
			}
		}
		w.held[i] = now
	}
	if r != nil {
		r.Skipped = append(r.Skipped, scratch.Skipped...)
	}
	return changed
}

// updateFlows folds the window's incoming flows into Flows.
func (w *Watcher) updateFlows(now time.Time, cut map[string]*windowData) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// The correlator keeps every sender it saw: a flow silent for
	// flowExpiry windows leaves Flows all the same.
	silent := func(last time.Time) bool { return now.Sub(last) > flowExpiry*w.window }
	if w.flowWin == nil {
		w.flowWin = map[capture.FlowKey]capture.FlowStats{}
	}
	win := w.flowWin
	for _, d := range cut {
		// The window's figures of the incoming flows (only those are
		// looked up).
		clear(win)
		for _, f := range d.flows {
			if f.Direction == capture.DirIn {
				win[f.FlowKey] = f
			}
		}
		for _, f := range d.snap {
			last := latest(f.Wire.Last, f.Socket.Last)
			if f.Direction != capture.DirIn || silent(last) {
				continue
			}
			k := flowKey{f.Interface, f.Family, f.VRID, f.Sender}
			fl := w.flows[k]
			if fl == nil {
				fl = &Flow{Interface: f.Interface, Family: int(f.Family), VRID: f.VRID, Src: f.Sender}
			}
			fl.Wire, fl.Socket, fl.LastSeen = f.Wire.Packets, f.Socket.Packets, last
			fl.DeliveryRatio = ratio(win[f.FlowKey])
			w.flows[k] = fl
		}
	}
	for k, f := range w.flows {
		if silent(f.LastSeen) {
			delete(w.flows, k)
		}
	}
	if len(w.flows) > maxFlows {
		fs := make([]*Flow, 0, len(w.flows))
		for _, f := range w.flows {
			fs = append(fs, f)
		}
		slices.SortFunc(fs, func(a, b *Flow) int { return b.LastSeen.Compare(a.LastSeen) })
		for _, f := range fs[maxFlows:] {
			delete(w.flows, flowKey{f.Interface, uint8(f.Family), f.VRID, f.Src})
		}
	}
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// ratio is the window's delivery ratio: decided wire observations matched
// at the socket, else socket deliveries per advert on the wire; -1 when
// nothing was on the wire.
func ratio(f capture.FlowStats) float64 {
	if n := f.Matched + f.Lost; n > 0 {
		return float64(f.Matched) / float64(n)
	}
	if f.Wire.Packets == 0 {
		return -1
	}
	return min(1, float64(f.Socket.Packets)/float64(f.Wire.Packets))
}

// firewallState is the firewall as last read, and when to read it again.
type firewallState struct {
	// readLive reads the firewall; nil means fw.ReadLive.
	readLive func(context.Context) (*fw.Live, error)

	nl *netlink.Conn
	// news tells when the generation may have moved (nil: the
	// notifications are not followed; the generation is asked for every
	// window); files reads the iptables-legacy table lists.
	news    *nftEvents
	files   procNetFiles
	genErr  error
	gen     uint32
	live    *fw.Live
	err     error
	read    bool
	readAt  time.Time
	version int    // counts readings
	legacy  string // iptables-legacy fingerprint at the last reading
	// legacyPresent: at the last window's end iptables-legacy tables
	// existed (or their fingerprint could not be read).
	legacyPresent bool
	// cache of the last evaluation
	cacheKey     []byte
	keyBuf       []byte // key's, reused
	cacheFW      *check.Firewall
	cacheIn      [][]check.Verdict
	cacheOut     [][]check.Verdict
	cacheSkipped []string
	// signature of the last verdicts (verdictSignature)
	signature string
	evaluated bool
	// stable counts the windows the cached verdicts served unchanged.
	stable int
}

// releaseAfter is how many windows the verdicts must serve unchanged
// before the ruleset they came from is let go.
const releaseAfter = 3

// open dials netfilter and follows the nftables notifications; poke, when
// not nil, is called when some are queued (refresh drains them).
func (s *firewallState) open(poke func()) {
	s.nl, s.genErr = dialNetfilter()
	if s.genErr == nil {
		s.news, _ = openNftEvents(poke)
	}
}

func (s *firewallState) close() {
	if s.nl != nil {
		s.nl.Close()
	}
	if s.news != nil {
		s.news.close()
	}
	s.files.close()
}

// refresh reads the firewall when it may have changed.
func (s *firewallState) refresh(ctx context.Context, now time.Time, procDir string, log *slog.Logger) {
	due := !s.read
	gen := s.gen
	if s.nl != nil && s.genDue(log) {
		var err error
		gen, err = nftGen(s.nl)
		switch {
		case err != nil:
			if s.genErr == nil {
				log.Debug("watch: nftables generation unreadable; the firewall is read periodically", "err", err)
			}
			s.genErr = err
		case s.genErr != nil || gen != s.gen:
			due = true
			s.genErr = nil
		}
	}
	legacy, legacyErr := legacyFingerprint(procDir, &s.files)
	s.legacyPresent = legacy != "" || legacyErr != nil
	since := now.Sub(s.readAt)
	switch {
	case s.err != nil && since >= legacyEvery:
		due = true
	case legacyErr == nil && legacy != s.legacy:
		due = true // a legacy table changed (or came or went)
	case legacyErr == nil && legacy != "" && since >= unchangedEvery:
		due = true // a rule replaced by one of the same size
	case legacyErr != nil && legacyTables(procDir) && since >= legacyEvery:
		due = true
	case s.genErr != nil && since >= unchangedEvery:
		due = true
	}
	if due {
		s.load(ctx, now, gen, log)
		if legacyErr == nil {
			s.legacy = legacy
		}
	}
}

// genDue says whether the generation is to be asked for: always without
// the nftables notifications, or while it cannot be read or was never
// read; with them, only when some arrived since the last window.
func (s *firewallState) genDue(log *slog.Logger) bool {
	if s.news == nil || s.genErr != nil || !s.read {
		if s.news != nil {
			// What is queued is older than the reading to come.
			_, _ = s.news.moved()
		}
		return true
	}
	moved, err := s.news.moved()
	if err != nil {
		log.Debug("watch: nftables notifications; the generation is asked for every window", "err", err)
		s.news.close()
		s.news = nil
	}
	return moved
}

// load reads the firewall.
func (s *firewallState) load(ctx context.Context, now time.Time, gen uint32, log *slog.Logger) {
	t0 := time.Now()
	readLive := s.readLive
	if readLive == nil {
		readLive = fw.ReadLive
	}
	s.live, s.err = readLive(ctx)
	s.read, s.readAt, s.gen = true, now, gen
	s.version++
	if s.err != nil {
		log.Debug("watch: firewall not read", "err", s.err)
	} else {
		log.Debug("watch: firewall read", "generation", gen, "took", time.Since(t0))
	}
}

// facts sets the report's firewall verdicts, evaluated again only when the
// firewall or the adverts to evaluate changed, and says whether the
// verdicts changed since the last window. The ruleset is let go once the
// adverts to evaluate stayed the same for releaseAfter windows (on a
// firewalld host it is far bigger than the rest of the watch) and read
// again when other adverts need a verdict.
func (s *firewallState) facts(ctx context.Context, r *check.Report, now time.Time, log *slog.Logger) (changed bool) {
	key := s.key(r)
	if !bytes.Equal(key, s.cacheKey) && s.read && s.live == nil && s.err == nil {
		s.load(ctx, now, s.gen, log)
		key = s.key(r)
	}
	if bytes.Equal(key, s.cacheKey) {
		r.Firewall = s.cacheFW
		for i := range r.Instances {
			r.Instances[i].FirewallIn, r.Instances[i].FirewallOut = s.cacheIn[i], s.cacheOut[i]
		}
		r.Skipped = append(r.Skipped, s.cacheSkipped...)
		if s.stable++; s.stable >= releaseAfter {
			s.live = nil
		}
		return false
	}
	s.stable = 0
	n := len(r.Skipped)
	check.FirewallFacts(ctx, r, s.live, s.err)
	s.cacheKey, s.cacheFW = append(s.cacheKey[:0], key...), r.Firewall
	s.cacheSkipped = slices.Clone(r.Skipped[n:])
	s.cacheIn, s.cacheOut = make([][]check.Verdict, len(r.Instances)), make([][]check.Verdict, len(r.Instances))
	for i := range r.Instances {
		s.cacheIn[i], s.cacheOut[i] = r.Instances[i].FirewallIn, r.Instances[i].FirewallOut
	}
	sig := verdictSignature(r)
	changed = s.evaluated && sig != s.signature
	s.signature, s.evaluated = sig, true
	return changed
}

// key identifies what the verdicts depend on: the firewall as read, and
// the adverts evaluated (this node's source, the peers heard). It is valid
// until the next call.
func (s *firewallState) key(r *check.Report) []byte {
	// Built every window: appended into one buffer, the last window's (a
	// string grown instance by instance was quadratic garbage with 100
	// instances).
	b := strconv.AppendInt(s.keyBuf[:0], int64(s.version), 10)
	for i := range r.Instances {
		in := &r.Instances[i]
		b = append(b, '|')
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, ':')
		if a := check.LocalAddr(in, ifaceOf(r, in.Interface)); a.IsValid() {
			b = a.AppendTo(b)
		} else {
			b = append(b, "invalid IP"...)
		}
		for _, p := range in.Peers {
			b = append(b, ',')
			b = p.Address.AppendTo(b)
		}
	}
	s.keyBuf = b
	return b
}

// verdictSignature lists the distinct verdicts of a report (direction,
// verdict, deciding rule), whatever the addresses evaluated.
func verdictSignature(r *check.Report) string {
	var vs []string
	for _, in := range r.Instances {
		for _, v := range append(slices.Clone(in.FirewallIn), in.FirewallOut...) {
			s := fmt.Sprintf("%d/%s %s %s", in.VRID, v.Direction, v.Verdict, v.UnknownReason)
			if v.Rule != nil {
				s += " " + v.Rule.String()
			}
			vs = append(vs, s)
		}
	}
	slices.Sort(vs)
	return strings.Join(slices.Compact(vs), "\n")
}

// legacyTables says whether iptables-legacy tables exist in the calling
// thread's network namespace.
func legacyTables(procDir string) bool {
	for _, f := range []string{"ip_tables_names", "ip6_tables_names"} {
		b, err := os.ReadFile(procDir + "/thread-self/net/" + f)
		if err == nil && len(b) > 0 {
			return true
		}
	}
	return false
}
