package runtime

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/announce"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/keepalived"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
)

// DefaultNotifyTimeout bounds each notify script run.
const DefaultNotifyTimeout = 30 * time.Second

// Options configure a Daemon. The zero value is usable.
type Options struct {
	// Logger receives state changes, send failures, discards and
	// warnings; default slog.Default().
	Logger *slog.Logger
	// Enter runs fn in the network namespace the daemon manages. Every
	// socket and netlink handle the daemon opens is opened through it.
	// nil runs fn directly: the process's own namespace.
	Enter func(fn func() error) error
	// NotifyTimeout bounds each notify script; default
	// DefaultNotifyTimeout.
	NotifyTimeout time.Duration
	// OnEvent, when set, receives every state change, advert sent, send
	// refused, advert received and advert discarded, synchronously from the
	// instance and socket goroutines; it must return quickly and not block.
	OnEvent func(Event)
}

// Daemon runs the VRRP instances of a keepalived configuration on the
// host: one goroutine per instance drives its router.Machine, one per
// socket reads adverts, and netlink adds and removes the virtual
// addresses.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	enter   func(func() error) error
	handle  *netlink.Handle
	host    netHost
	limiter logLimiter

	mu       sync.Mutex // serialises Start, Reload and Stop
	started  bool
	stopped  bool
	links    *linkMonitor
	watch    *netWatch // interfaces created again, addresses removed (netwatch.go)
	plans    []*plan
	scripts  map[string]*scriptPlan
	warnings []keepalived.Warning
	// accept is the AcceptTable, opened by the first instance without
	// Accept_Mode; nil until then.
	accept *acceptFilter
	// sysctls changed for use_vmac, restored on exit.
	sysctls   sysctls
	instances map[string]*instance
	groups    map[string]*syncGroup
	sockets   map[sockKey]*vrrpSocket

	trackMu  sync.RWMutex
	trackers map[string]*scriptTracker

	sendersMu sync.Mutex
	senders   map[string]*announce.Sender
}

// New checks cfg against the host and prepares a Daemon; nothing runs until
// Start. Configuration problems come back as a keepalived.ErrorList, each
// with its file:line:column; warnings (features vrrpdoctor does not
// implement, insecure scripts) are logged.
func New(cfg *keepalived.Config, opts Options) (*Daemon, error) {
	d := &Daemon{
		opts:      opts,
		log:       opts.Logger,
		enter:     opts.Enter,
		instances: map[string]*instance{},
		groups:    map[string]*syncGroup{},
		sockets:   map[sockKey]*vrrpSocket{},
		trackers:  map[string]*scriptTracker{},
		senders:   map[string]*announce.Sender{},
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.enter == nil {
		d.enter = func(fn func() error) error { return fn() }
	}
	if d.opts.NotifyTimeout <= 0 {
		d.opts.NotifyTimeout = DefaultNotifyTimeout
	}
	if err := d.enter(func() error {
		h, err := netlink.NewHandle()
		d.handle = h
		return err
	}); err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	d.host = netHost{h: d.handle}
	d.sysctls.enter = d.enter
	plans, scripts, warnings, err := makePlans(cfg, d.host)
	d.logWarnings(warnings)
	d.warnings = warnings
	if err != nil {
		d.handle.Close()
		return nil, err
	}
	d.plans, d.scripts = plans, scripts
	return d, nil
}

// Warnings returns what New or the last Reload found worth a warning in
// the configuration: features vrrpdoctor does not implement, insecure
// scripts. They are logged too.
func (d *Daemon) Warnings() []keepalived.Warning {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.warnings)
}

func (d *Daemon) logWarnings(ws []keepalived.Warning) {
	for _, w := range ws {
		d.log.Warn(w.Msg, "at", w.Pos.String())
	}
}

// Start starts every instance. On error nothing is left running.
func (d *Daemon) Start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started {
		return errors.New("daemon already started")
	}
	d.started = true
	links, err := newLinkMonitor(d.host, d.enter, d.log)
	if err != nil {
		return fmt.Errorf("link monitor: %w", err)
	}
	d.links = links
	if d.watch, err = startNetWatch(d); err != nil {
		links.close()
		return err
	}
	d.trackMu.Lock()
	for name, sp := range d.scripts {
		d.trackers[name] = newScriptTracker(sp, d.log)
	}
	d.trackMu.Unlock()
	for _, t := range d.trackerList() {
		t.start()
	}
	held := newHeldAtStart(d.host)
	for _, p := range d.plans {
		if err := d.startInstance(p, held); err != nil {
			d.stopAll()
			return err
		}
	}
	return nil
}

// Stop shuts every instance down as RFC 5798 §6.4.3 says (a Master sends
// an advert with priority 0 and removes its virtual addresses), runs the
// notify_stop scripts, and releases every socket. It is safe to call more
// than once.
func (d *Daemon) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopAll()
}

func (d *Daemon) stopAll() {
	if d.stopped {
		return
	}
	d.stopped = true
	d.stopInstances(d.instanceList())
	for _, t := range d.trackerList() {
		t.stop()
	}
	if d.links != nil {
		d.links.close()
	}
	if d.watch != nil {
		d.watch.close()
	}
	d.sendersMu.Lock()
	for _, s := range d.senders {
		s.Close()
	}
	d.senders = map[string]*announce.Sender{}
	d.sendersMu.Unlock()
	for k, s := range d.sockets {
		s.close()
		delete(d.sockets, k)
	}
	if err := d.sysctls.restore(); err != nil {
		d.log.Error("use_vmac: restoring sysctls", "err", err)
	}
	if d.accept != nil {
		if err := d.accept.close(); err != nil {
			d.log.Error("removing the accept-mode table", "table", "inet "+AcceptTable, "err", err)
		}
		d.accept = nil
	}
	d.handle.Close()
}

// Reload switches to cfg without disturbing the instances it keeps: they
// keep their state (a Master stays Master) and take the changes a running
// instance can take in place (reload.go: priority, advert_int, preempt,
// virtual addresses, tracking, notify, GARP, ...), each logged. Instances
// that are gone, or changed in what needs a restart (interface, VRID,
// family, multicast group or unicast, use_vmac, sync group, accept mode,
// address owner), are shut down (priority 0, addresses removed); new and
// restarted ones start. If cfg does
// not check out against the host, nothing changes and the error says why.
func (d *Daemon) Reload(cfg *keepalived.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.started || d.stopped {
		return errors.New("daemon not running")
	}
	plans, scripts, warnings, err := makePlans(cfg, d.host)
	d.logWarnings(warnings)
	if err != nil {
		return err
	}
	d.warnings = warnings
	byName := map[string]*plan{}
	for _, p := range plans {
		byName[p.name] = p
	}
	var stop []*instance
	type inPlace struct {
		in      *instance
		plan    *plan
		changes []string
	}
	var apply []inPlace
	kept := map[string]bool{}
	for name, in := range d.instances {
		old := in.currentPlan()
		np, ok := byName[name]
		if !ok {
			stop = append(stop, in)
			continue
		}
		np = d.withSource(np)
		changes, restart := old.reloadDiff(np, d.scripts, scripts)
		if len(restart) > 0 {
			in.log.Info("configuration changed: restarting the instance", "restart_for", strings.Join(restart, "; "))
			stop = append(stop, in)
			continue
		}
		if np.sync != nil {
			d.groups[np.sync.name].setPlan(np.sync)
		}
		kept[name] = true
		// Tracked objects are subscribed to again below, once the
		// trackers of the new configuration exist.
		d.unsubscribe(in, old)
		apply = append(apply, inPlace{in, np, changes})
	}
	d.stopInstances(stop)

	// Trackers: keep those whose script did not change.
	d.trackMu.Lock()
	var oldTrackers, newTrackers []*scriptTracker
	next := map[string]*scriptTracker{}
	for name, sp := range scripts {
		if t, ok := d.trackers[name]; ok && d.scripts[name].equal(sp) {
			next[name] = t
			continue
		}
		t := newScriptTracker(sp, d.log)
		next[name] = t
		newTrackers = append(newTrackers, t)
	}
	for name, t := range d.trackers {
		if next[name] != t {
			oldTrackers = append(oldTrackers, t)
		}
	}
	d.trackers = next
	d.trackMu.Unlock()
	for _, t := range oldTrackers {
		t.stop()
	}
	for _, t := range newTrackers {
		t.start()
	}
	d.plans, d.scripts = plans, scripts

	changed := 0
	for _, a := range apply {
		d.subscribe(a.in, a.plan)
		if len(a.changes) == 0 {
			a.in.setPlan(a.plan) // nothing the instance sees changed
			// A tracked object may have changed while unsubscribed.
			select {
			case a.in.kick <- struct{}{}:
			default:
			}
			continue
		}
		a.in.reload(a.plan, a.changes)
		changed++
	}

	var errs []error
	started, restarted := 0, len(stop)
	held := newHeldAtStart(d.host)
	for _, p := range plans {
		if kept[p.name] {
			continue
		}
		if err := d.startInstance(p, held); err != nil {
			errs = append(errs, err)
			continue
		}
		started++
	}
	d.log.Info("configuration reloaded", "unchanged", len(kept)-changed, "applied_in_place", changed, "stopped", restarted, "started", started)
	return errors.Join(errs...)
}

// startInstance opens what p needs and starts its goroutine. held is the
// addresses held before it and the instances starting with it started.
func (d *Daemon) startInstance(p *plan, held *heldAtStart) error {
	m, err := router.New(p.rc)
	if err != nil {
		return fmt.Errorf("vrrp_instance %s: %w", p.name, err)
	}
	if p.noAccept && d.accept == nil {
		if d.accept, err = openAcceptFilter(d.enter); err != nil {
			return fmt.Errorf("vrrp_instance %s: no_accept: %w", p.name, err)
		}
	}
	dropVMAC := func() {}
	if v := p.vmac; v != nil {
		if err := d.host.addVMAC(v, p.rc.PrimaryAddr); err != nil {
			return fmt.Errorf("vrrp_instance %s: %w", p.name, err)
		}
		dropVMAC = func() { d.host.delVMAC(v.name) }
		if v.family == 4 {
			// Only the macvlan answers ARP for the virtual addresses,
			// and only for them; the base interface's own requests name
			// its own address, never a virtual one.
			if err := errors.Join(d.sysctls.set(v.base, "arp_ignore", "1"), d.sysctls.set(v.base, "arp_announce", "2"),
				d.sysctls.set(v.name, "arp_ignore", "1")); err != nil {
				dropVMAC()
				return fmt.Errorf("vrrp_instance %s: use_vmac: %w", p.name, err)
			}
		}
	}
	key := sockKey{p.sockIf(), p.family}
	sock := d.sockets[key]
	if sock == nil {
		ifi, err := d.host.netInterface(key.ifname)
		if err != nil {
			dropVMAC()
			return fmt.Errorf("vrrp_instance %s: %w", p.name, err)
		}
		sock, err = openSocket(key, ifi, d.enter, d.log, d.emit)
		if err != nil {
			dropVMAC()
			return fmt.Errorf("vrrp_instance %s: %w", p.name, err)
		}
		d.sockets[key] = sock
	}
	log := d.log.With("instance", p.name, "vrid", p.rc.VRID, "interface", p.ifname, "family", fmt.Sprintf("IPv%d", p.family))
	in := &instance{
		d:           d,
		log:         log,
		m:           m,
		heldAtStart: held,
		sock:        sock,
		tx:          newAdvertSender(sock),
		rx:          make(chan packet, rxQueue),
		kick:        make(chan struct{}, 1),
		ctl:         make(chan any, 1),
		done:        make(chan struct{}),
		plan:        p,
	}
	if p.noAccept {
		in.accept = d.accept
	}
	if in.timer, err = newDeadlineTimer(); err != nil {
		d.releaseSocket(key, sock)
		dropVMAC()
		return fmt.Errorf("vrrp_instance %s: %w", p.name, err)
	}
	if err := sock.addRoute(p.rc.VRID, route{name: p.name, ch: in.rx, group: p.group, drops: &in.drops}); err != nil {
		in.timer.Close()
		d.releaseSocket(key, sock)
		dropVMAC()
		return fmt.Errorf("vrrp_instance %s: %w", p.name, err)
	}
	in.notify = newNotifier(p.name, "INSTANCE", d.opts.NotifyTimeout, func() notifyPlan { return in.currentPlan().notify }, log)
	if p.sync != nil {
		g := d.groups[p.sync.name]
		if g == nil {
			g = newSyncGroup(p.sync, d.opts.NotifyTimeout, d.log)
			d.groups[p.sync.name] = g
		}
		g.join(p.name, in.kick)
		in.group = g
	}
	d.subscribe(in, p)
	d.instances[p.name] = in
	go in.run()
	return nil
}

func (d *Daemon) releaseSocket(key sockKey, sock *vrrpSocket) {
	sock.mu.Lock()
	empty := len(sock.routes) == 0
	sock.mu.Unlock()
	if empty {
		sock.close()
		delete(d.sockets, key)
	}
}

func (d *Daemon) subscribe(in *instance, p *plan) {
	for _, t := range p.tracks {
		if t.script != "" {
			d.trackMu.RLock()
			if tr := d.trackers[t.script]; tr != nil {
				tr.subs.add(in.kick)
			}
			d.trackMu.RUnlock()
		} else {
			d.links.subscribe(t.iface, in.kick)
		}
	}
}

func (d *Daemon) unsubscribe(in *instance, p *plan) {
	for _, t := range p.tracks {
		if t.script != "" {
			d.trackMu.RLock()
			if tr := d.trackers[t.script]; tr != nil {
				tr.subs.remove(in.kick)
			}
			d.trackMu.RUnlock()
		} else {
			d.links.unsubscribe(t.iface, in.kick)
		}
	}
}

// stopInstances shuts the instances down in parallel and waits for them.
func (d *Daemon) stopInstances(list []*instance) {
	var wg sync.WaitGroup
	for _, in := range list {
		wg.Go(func() {
			s := ctlStop{done: make(chan struct{})}
			in.ctl <- s
			<-s.done
			<-in.done
			in.notify.close()
		})
	}
	wg.Wait()
	for _, in := range list {
		p := in.currentPlan()
		d.unsubscribe(in, p)
		key := sockKey{p.sockIf(), p.family}
		if in.sock.removeRoute(p.rc.VRID) {
			in.sock.close()
			delete(d.sockets, key)
		}
		if p.vmac != nil {
			if err := d.host.delVMAC(p.vmac.name); err != nil {
				d.log.Error("use_vmac: removing the macvlan", "interface", p.vmac.name, "err", err)
			}
		}
		delete(d.instances, p.name)
		if g := in.group; g != nil {
			g.leave(p.name)
			if g.empty() && d.groups[g.name] == g {
				g.notify.post(notifyEvent{state: "STOP"}) // the group's notify_stop
				g.notify.close()
				delete(d.groups, g.name)
			}
		}
	}
}

func (d *Daemon) instanceList() []*instance {
	list := make([]*instance, 0, len(d.instances))
	for _, in := range d.instances {
		list = append(list, in)
	}
	return list
}

func (d *Daemon) trackerList() []*scriptTracker {
	d.trackMu.RLock()
	defer d.trackMu.RUnlock()
	list := make([]*scriptTracker, 0, len(d.trackers))
	for _, t := range d.trackers {
		list = append(list, t)
	}
	return list
}

// scriptState returns the state of the named track script.
func (d *Daemon) scriptState(name string) trackState {
	d.trackMu.RLock()
	t := d.trackers[name]
	d.trackMu.RUnlock()
	if t == nil {
		return trackDown
	}
	return t.get()
}

// announce sends one gratuitous ARP or unsolicited NA for ip on dev. The
// lock is held while sending: a sender of an interface created again is
// closed under it (dropStaleSenders).
func (d *Daemon) announce(dev string, ip netip.Addr) error {
	d.sendersMu.Lock()
	defer d.sendersMu.Unlock()
	s := d.senders[dev]
	if s == nil {
		err := d.enter(func() error {
			var err error
			s, err = announce.Open(dev)
			return err
		})
		if err != nil {
			return err
		}
		d.senders[dev] = s
	}
	return s.Announce(ip)
}

// Status is a snapshot of a running Daemon.
type Status struct {
	Instances []InstanceStatus
	Sockets   []SocketStats
}

// Status returns the state and counters of every instance and socket,
// instances sorted by name.
func (d *Daemon) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	var st Status
	for _, in := range d.instances {
		req := ctlStatus{reply: make(chan InstanceStatus, 1)}
		select {
		case in.ctl <- req:
			select {
			case s := <-req.reply:
				st.Instances = append(st.Instances, s)
			case <-in.done:
			}
		case <-in.done:
		}
	}
	slices.SortFunc(st.Instances, func(a, b InstanceStatus) int { return strings.Compare(a.Name, b.Name) })
	for _, s := range d.sockets {
		st.Sockets = append(st.Sockets, s.stats())
	}
	slices.SortFunc(st.Sockets, func(a, b SocketStats) int {
		if c := strings.Compare(a.Interface, b.Interface); c != 0 {
			return c
		}
		return a.Family - b.Family
	})
	return st
}
