package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
)

// InstanceStatus is a snapshot of one running instance.
type InstanceStatus struct {
	Name      string
	Interface string
	VRID      uint8
	Version   uint8
	Family    int
	State     router.State
	// Priority is the effective priority (configured, as changed by
	// tracking); Configured is the one in the configuration.
	Priority, Configured uint8
	// Master is the Master as this router knows it (itself when Master).
	Master         netip.Addr
	MasterPriority uint8
	Stats          router.Stats
	// SendErrors counts adverts the kernel refused to send; LastSendError
	// says why the last one failed ("" once sending works again).
	SendErrors    uint64
	LastSendError string
	// QueueDrops counts adverts dropped because the instance fell behind.
	QueueDrops uint64
	// VIPErrors counts failed address additions and removals.
	VIPErrors uint64
	// VIPRestored counts virtual addresses removed by someone else while
	// Master and added back (addrwatch.go).
	VIPRestored uint64
}

// lateTimer is how late a timer may fire before it is logged (debug).
const lateTimer = 5 * time.Millisecond

// rxQueue is the number of received adverts an instance may have pending;
// the socket drops (and counts, DiscardQueueFull) an advert beyond them.
// A loop four adverts of its Master behind has let Master_Down_Interval
// (three intervals and the skew) pass already, so a longer queue would
// only hold stale adverts: each pending one costs 175 bytes, 16 cost
// 270 KB of heap with 100 instances.
const rxQueue = 4

// ctlStop asks an instance to shut down (priority 0 advert, addresses
// removed) and closes the channel when done.
type ctlStop struct{ done chan struct{} }

// ctlStatus asks an instance for its status. The machine is read only by
// its own loop, so the status is made there, on demand.
type ctlStatus struct{ reply chan InstanceStatus }

// instance runs one state machine: a single goroutine owns the Machine and
// does all its I/O.
type instance struct {
	d     *Daemon
	log   *slog.Logger
	m     *router.Machine
	sock  *vrrpSocket
	tx    *advertSender // sends through sock
	rx    chan packet
	kick  chan struct{}
	ctl   chan any
	done  chan struct{}
	timer *deadlineTimer
	drops atomic.Uint64

	// heldAtStart is the addresses held before the instances started
	// with this one did, shared by them (clearStale).
	heldAtStart *heldAtStart

	planMu sync.Mutex
	plan   *plan // replaced on reload when only the notify scripts change

	notify *notifier
	group  *syncGroup    // nil outside a vrrp_sync_group
	accept *acceptFilter // the daemon's, for an instance without Accept_Mode
	// preexisting are the owner's addresses found configured at start.
	preexisting map[netip.Addr]bool

	buf      []byte
	sendErrs uint64
	lastErr  string
	vipErrs  uint64
	// vipCheck is set by the address monitor when one of the instance's
	// addresses was deleted; vipRestored counts those added back.
	vipCheck    atomic.Bool
	vipRestored uint64
	// srcCheck is set when the addresses of the instance's interface
	// changed; srcMissing while it has none to send from (source.go).
	srcCheck   atomic.Bool
	srcMissing bool
	// announceCtx is the context of paced announcement bursts, cancelled
	// when the instance leaves Master. Only the loop touches it.
	announceCtx    context.Context
	announceCancel context.CancelFunc
	// rxDst is the destination of the advert being processed, for the
	// events of its discards.
	rxDst netip.Addr
}

// event completes e with the instance's identity and emits it.
func (in *instance) event(p *plan, e Event) {
	if in.d.opts.OnEvent == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Instance, e.Interface, e.VRID, e.Family = p.name, p.ifname, p.rc.VRID, p.family
	in.d.opts.OnEvent(e)
}

func (in *instance) currentPlan() *plan {
	in.planMu.Lock()
	defer in.planMu.Unlock()
	return in.plan
}

func (in *instance) setPlan(p *plan) {
	in.planMu.Lock()
	in.plan = p
	in.planMu.Unlock()
}

// run is the instance's loop. It waits for the first result of every
// tracked script (keepalived keeps such instances in INIT), starts the
// machine, then feeds it timers, adverts and tracking changes until told
// to stop.
//
// The loop itself keeps a small frame: the goroutine waits in its select
// with only run's frame on the stack, and the work on each input is done
// in the frames of start, settle and the on* methods, which are gone
// again when it waits. A frame of 2 KiB (everything inlined) kept each
// instance's stack from shrinking back to the runtime's 8 KiB after the
// peak of an advert: 8 KiB more per instance.
func (in *instance) run() {
	defer close(in.done)
	defer in.timer.Close()
	l, ok := in.start()
	if !ok {
		return
	}
	for {
		l.settle(in)
		var stop bool
		select {
		case <-in.timer.C:
			l.onTimer(in)
		case l.pkt = <-in.rx:
			l.onPacket(in)
		case <-in.kick:
			l.onKick(in)
		case msg := <-in.ctl:
			stop = l.onControl(in, msg)
		}
		if stop {
			return
		}
		// Another input came first: the old deadline may still hold.
		if l.ready.Deadline.IsZero() {
			l.ready.Deadline = in.m.Deadline()
		}
	}
}

// loop is the state of an instance's run loop between inputs.
type loop struct {
	p     *plan
	ready router.Ready // what the machine asked for last
	armed time.Time    // the deadline the timer is set for; zero: none
	pkt   packet       // the advert received last
}

// start waits for the tracked scripts and starts the machine; false when
// told to stop before.
//
//go:noinline
func (in *instance) start() (*loop, bool) {
	p := in.currentPlan()
	for !in.trackersReady(p) {
		select {
		case <-in.kick:
		case msg := <-in.ctl:
			switch c := msg.(type) {
			case ctlStop:
				close(c.done)
				return nil, false
			case ctlStatus:
				c.reply <- in.snapshot()
			case ctlReload:
				p = in.reloadIdle(time.Now(), c)
			}
		}
	}
	now := time.Now()
	prio, fault := in.tracking(p)
	if in.group != nil {
		fault = in.group.setFault(p.name, fault)
	}
	var pre router.Ready
	if fault {
		pre = in.m.SetFault(now, true)
	}
	if prio != int(p.rc.Priority) {
		appendReady(&pre, in.m.SetPriority(now, prio))
	}
	in.exec(&pre)
	in.clearStale(p)
	return &loop{p: p, ready: in.m.Start(now)}, true
}

// settle carries out what the machine asked for and arms the timer.
//
//go:noinline
func (l *loop) settle(in *instance) {
	for {
		in.exec(&l.ready)
		in.restoreVIPs()
		in.rxDst = netip.Addr{}
		if in.group != nil {
			in.group.update(l.p.name, in.m.State(), in.m.WantsMaster(), l.ready.Transitions)
		}
		// Re-arm only for an earlier deadline: a Backup's moves later with
		// every advert, and re-arming each time costs a system call per
		// advert; the timer set for the old one fires early instead, Tick
		// finds nothing due, and the timer is set for the new deadline.
		d := l.ready.Deadline
		if d.IsZero() || (!l.armed.IsZero() && !d.Before(l.armed)) {
			return
		}
		if err := in.timer.Set(d); err != nil {
			l.timerFailed(in, err)
			continue
		}
		l.armed = d
		return
	}
}

// timerFailed keeps the machine moving rather than stall it when its timer
// cannot be set, which a valid timerfd does not do.
//
//go:noinline
func (l *loop) timerFailed(in *instance, err error) {
	in.log.Error("timer", "err", err)
	time.Sleep(10 * time.Millisecond)
	l.ready = in.m.Tick(time.Now())
}

// onTimer handles the timer's wake-up.
//
//go:noinline
func (l *loop) onTimer(in *instance) {
	now := time.Now()
	if late := now.Sub(l.armed); !l.armed.IsZero() && late > lateTimer {
		// The host did not run us in time (CPU contention).
		in.log.Debug("timer fired late", "late", late, "state", in.m.State().String())
	}
	l.armed = time.Time{} // fired (or a stale wake-up: re-armed below)
	l.ready = in.syncHold(now)
	appendReady(&l.ready, in.m.Tick(now))
}

// onPacket feeds an advert to the machine.
//
//go:noinline
func (l *loop) onPacket(in *instance) {
	pkt := &l.pkt
	in.rxDst = pkt.dst
	l.ready = in.m.Receive(pkt.at, router.RecvAdvert{Advert: pkt.advert, Src: pkt.src, TTL: pkt.ttl, Interface: pkt.ifname})
	if pkt.advert.Priority == 0 && in.m.State() == router.Backup && len(l.ready.Discards) == 0 {
		in.logResigned(pkt)
	}
}

// logResigned logs, at debug level, a Master's resignation the machine
// accepted. Apart from onPacket, whose frame is on every advert's stack.
//
//go:noinline
func (in *instance) logResigned(pkt *packet) {
	in.log.Debug("master resigned (priority 0): taking over after Skew_Time", "src", pkt.src,
		"skew_time", in.m.SkewTime(), "read_at", pkt.at, "queued", time.Since(pkt.at))
}

// onKick applies a change of the tracked objects.
//
//go:noinline
func (l *loop) onKick(in *instance) { l.ready = in.retrack(time.Now()) }

// onControl handles a request of the daemon; true when told to stop.
//
//go:noinline
func (l *loop) onControl(in *instance, msg any) (stop bool) {
	switch c := msg.(type) {
	case ctlStop:
		r := in.m.Shutdown(time.Now())
		in.exec(&r)
		in.restoreOwned()
		close(c.done)
		return true
	case ctlStatus:
		c.reply <- in.snapshot()
		l.ready = router.Ready{}
	case ctlReload:
		l.ready = in.applyReload(time.Now(), c)
	}
	return false
}

// appendReady appends the actions of b to a. A list a has none of takes
// b's as it is, not a copy (the common case: a is empty).
func appendReady(a *router.Ready, b router.Ready) {
	a.Adverts = concat(a.Adverts, b.Adverts)
	a.RemoveVIPs = concat(a.RemoveVIPs, b.RemoveVIPs)
	a.AddVIPs = concat(a.AddVIPs, b.AddVIPs)
	a.Announce = concat(a.Announce, b.Announce)
	a.Transitions = concat(a.Transitions, b.Transitions)
	a.Discards = concat(a.Discards, b.Discards)
	a.Notices = concat(a.Notices, b.Notices)
	a.Deadline = b.Deadline
}

// concat returns a followed by b; b itself when a is empty.
func concat[T any](a, b []T) []T {
	if len(a) == 0 {
		return b
	}
	return append(a, b...)
}

// trackersReady reports whether every tracked script has reported once.
func (in *instance) trackersReady(p *plan) bool {
	for _, t := range p.tracks {
		if t.script != "" && in.d.scriptState(t.script) == trackUnknown {
			return false
		}
	}
	return true
}

// tracking computes the effective priority and the fault condition from
// the tracked objects, as keepalived does: an object with weight 0 puts
// the instance in FAULT when down; a positive weight is added while the
// object is up, a negative one while it is down; "reverse" swaps up and
// down.
func (in *instance) tracking(p *plan) (priority int, fault bool) {
	priority = int(p.rc.Priority)
	// The socket's interface is deleted (relink.go), or has no address to
	// send from (source.go).
	fault = in.sock.missing() || in.srcMissing
	for _, t := range p.tracks {
		var up bool
		if t.script != "" {
			st := in.d.scriptState(t.script)
			if st == trackUnknown {
				// A script new on reload that has not run yet: it counts
				// from its first result, which wakes the instance.
				continue
			}
			up = st == trackUp
		} else {
			up = in.d.links.up(t.iface)
		}
		if t.reverse {
			up = !up
		}
		switch {
		case t.weight == 0 && !up:
			fault = true
		case t.weight > 0 && up, t.weight < 0 && !up:
			priority += t.weight
		}
	}
	return priority, fault
}

// retrack applies a change of the tracked objects.
func (in *instance) retrack(now time.Time) router.Ready {
	r := in.checkSource(now)
	p := in.currentPlan()
	prio, fault := in.tracking(p)
	if in.group != nil {
		fault = in.group.setFault(p.name, fault)
	}
	if fault != in.m.Faulted() {
		appendReady(&r, in.m.SetFault(now, fault))
	}
	if !in.m.Owner() && clampPriority(prio) != in.m.Priority() {
		appendReady(&r, in.m.SetPriority(now, prio))
	}
	if in.group != nil {
		switch in.group.takePending(p.name) {
		case router.Master:
			appendReady(&r, in.m.SyncMaster(now))
		case router.Backup:
			appendReady(&r, in.m.SyncBackup(now))
		}
		appendReady(&r, in.syncHold(now))
	}
	r.Deadline = in.m.Deadline()
	return r
}

// syncHold holds the machine's take-overs while the other members of its
// sync group do not all want to be Master, and releases them (a waiting
// Backup becomes Master now) when they do.
func (in *instance) syncHold(now time.Time) router.Ready {
	if in.group == nil {
		return router.Ready{}
	}
	return in.m.SetSyncHold(now, !in.group.othersWant(in.currentPlan().name))
}

func clampPriority(p int) uint8 { return uint8(min(max(p, 1), router.OwnerPriority-1)) }

// clearStale removes the instance's addresses that a previous run left
// behind (a crash, kill -9), before the machine starts: a Backup must not
// hold them. The address owner's own addresses are kept and remembered.
func (in *instance) clearStale(p *plan) {
	held := in.heldAtStart
	in.heldAtStart = nil // its job is done: let it go
	if held == nil {
		held = newHeldAtStart(in.d.host)
	}
	in.preexisting = map[netip.Addr]bool{}
	for a, v := range p.vips {
		has, err := held.has(v.dev, a)
		if err != nil || !has {
			continue
		}
		if p.owner {
			in.preexisting[a] = true
			continue
		}
		if p.rc.StartAsMaster && !in.m.Faulted() {
			// Going straight to Master: keep it rather than flap it.
			continue
		}
		in.log.Info("removing virtual address left over by a previous run", "address", v.Prefix, "dev", v.dev)
		in.delVIP(v)
	}
}

// restoreOwned puts back the owner's addresses that were configured
// before it started and that its shutdown removed.
func (in *instance) restoreOwned() {
	p := in.currentPlan()
	for a := range in.preexisting {
		if v, ok := p.vips[a]; ok {
			in.addVIP(v)
		}
	}
}

// exec carries out a Ready in the order the router package requires.
//
// It runs on every advert, at the deepest point of an instance's stack:
// what only state changes and discards need is in functions of its own,
// so that their locals do not widen this frame. With them inline the send
// path needed more than a 4 KiB stack, and every instance's goroutine kept
// an 8 KiB one (or grew back to it after each garbage collection).
func (in *instance) exec(r *router.Ready) {
	p := in.currentPlan()
	for i := range r.Adverts {
		in.sendAdvert(p, &r.Adverts[i])
	}
	if len(r.RemoveVIPs) > 0 || len(r.AddVIPs) > 0 {
		in.changeVIPs(p, r.RemoveVIPs, r.AddVIPs)
	}
	for _, ann := range r.Announce {
		in.announce(p, ann)
	}
	for _, t := range r.Transitions {
		in.transition(t)
	}
	if len(r.Discards) > 0 {
		in.discarded(p, r.Discards)
	}
	if len(r.Notices) > 0 {
		in.noticed(p, r.Notices)
	}
}

// changeVIPs removes and adds virtual addresses, with the Accept_Mode drop
// sets around them.
//
//go:noinline
func (in *instance) changeVIPs(p *plan, remove, add []netip.Addr) {
	for _, a := range remove {
		if v, ok := p.vips[a]; ok {
			in.delVIP(v)
		}
	}
	// Without Accept_Mode the addresses enter the drop sets before they
	// are configured, and leave after they are gone.
	if p.noAccept && len(remove) > 0 {
		if err := in.accept.del(remove); err != nil {
			in.vipErrs++
			in.log.Error("accept mode: addresses not released", "err", err)
		}
	}
	if p.noAccept && len(add) > 0 {
		if err := in.accept.add(add); err != nil {
			in.vipErrs++
			in.log.Error("accept mode: traffic to the virtual addresses is not dropped", "err", err)
		}
	}
	for _, a := range add {
		if v, ok := p.vips[a]; ok {
			in.addVIP(v)
		}
	}
}

// discarded reports the adverts the machine discarded: an event each, and
// a log line (a warning, rate-limited, for invalid ones).
//
//go:noinline
func (in *instance) discarded(p *plan, ds []router.Discard) {
	for _, d := range ds {
		in.event(p, Event{Kind: EventAdvertDiscarded, Reason: string(d.Reason), Src: d.Src, Dst: in.rxDst, Priority: d.Priority})
		attrs := []any{"reason", string(d.Reason), "src", d.Src, "priority", d.Priority, "detail", d.Detail}
		if d.VRID != p.rc.VRID {
			attrs = append(attrs, "advert_vrid", d.VRID)
		}
		if d.Reason.Invalid() {
			in.d.limiter.do(fmt.Sprintf("%s %s %v", p.name, d.Reason, d.Src), func() {
				in.log.Warn("advert discarded", attrs...)
			})
		} else {
			in.log.Debug("advert discarded", attrs...)
		}
	}
}

// noticed logs the machine's notices, rate-limited.
//
//go:noinline
func (in *instance) noticed(p *plan, ns []router.Notice) {
	for _, n := range ns {
		level := slog.LevelInfo
		if n.Kind == router.NoticeAddrListMismatch || n.Kind == router.NoticeOwnerConflict || n.Kind == router.NoticeOldUnicastChecksum {
			level = slog.LevelWarn
		}
		in.d.limiter.do(fmt.Sprintf("%s %s %v %s", p.name, n.Kind, n.Src, n.Detail), func() {
			in.log.Log(context.Background(), level, "notice", "kind", string(n.Kind), "src", n.Src, "detail", n.Detail)
		})
	}
}

// checksumKind is the checksum adverts are sent with: the message only
// for VRRPv2, the pseudo-header for VRRPv3 (RFC 5798 §5.2.8, keepalived's
// default).
func checksumKind(version uint8) vrrpcore.ChecksumKind {
	if version == 2 {
		return vrrpcore.ChecksumMessage
	}
	return vrrpcore.ChecksumPseudoHeader
}

// sendAdvert sends a to the group or to every unicast peer. A failure is
// counted, and logged when its reason changes (so an OUTPUT drop rule
// gives one line, not one per second); a success after failures is logged
// too.
func (in *instance) sendAdvert(p *plan, a *vrrpcore.Advert) {
	dsts := p.rc.UnicastPeers
	if len(dsts) == 0 {
		dsts = []netip.Addr{p.group}
	}
	kind := checksumKind(p.rc.Version)
	ttl := uint8(255)
	if len(p.rc.UnicastPeers) > 0 {
		ttl = p.unicastTTL
		if p.rc.Version == 3 && p.family == 4 && in.m.OldUnicastChecksum() {
			kind = vrrpcore.ChecksumOldUnicast
		}
	}
	for _, dst := range dsts {
		b, err := a.AppendBinary(in.buf[:0], p.rc.PrimaryAddr, dst, kind)
		if err != nil {
			in.sendResult(p, a, dst, kind, ttl, err, true)
			continue
		}
		in.buf = b
		in.sendResult(p, a, dst, kind, ttl, in.tx.send(b, p.rc.PrimaryAddr, dst, ttl), false)
	}
}

// sendResult emits the event of an advert sent (err nil) or not, and
// counts and logs a failure (of encoding, or of the send). Its own
// function, so that the event's fields do not widen sendAdvert's frame
// (see exec).
//
//go:noinline
func (in *instance) sendResult(p *plan, a *vrrpcore.Advert, dst netip.Addr, kind vrrpcore.ChecksumKind, ttl uint8, err error, encoding bool) {
	e := Event{Kind: EventAdvertSent, Src: p.rc.PrimaryAddr, Dst: dst, Priority: a.Priority, Version: a.Version,
		Interval: a.Interval, Checksum: kind, TTL: ttl}
	if err == nil {
		in.event(p, e)
		if in.lastErr != "" {
			in.log.Info("adverts are sent again", "failed_before", in.sendErrs)
			in.lastErr = ""
		}
		return
	}
	var reason string
	if encoding {
		err = fmt.Errorf("encoding: %w", err)
		reason = err.Error()
	} else {
		reason = sendReason(err)
	}
	e.Kind, e.Err = EventSendFailed, err
	in.event(p, e)
	in.sendFailed(reason, dst)
	if !encoding {
		in.d.watch.sendFailed(err)
	}
}

func (in *instance) sendFailed(reason string, dst netip.Addr) {
	in.sendErrs++
	if reason != in.lastErr {
		in.log.Warn("advert not sent", "dst", dst, "reason", reason, "failures", in.sendErrs)
		in.lastErr = reason
	}
}

// sendReason explains a send error; EPERM on a raw socket means a
// netfilter OUTPUT rule dropped the packet.
func sendReason(err error) string {
	switch {
	case errors.Is(err, syscall.EPERM):
		return err.Error() + " (an OUTPUT firewall rule drops VRRP)"
	case errors.Is(err, syscall.ENETDOWN):
		return err.Error() + " (interface down)"
	}
	return err.Error()
}

func (in *instance) addVIP(v vip) {
	if err := in.d.host.addVIP(v); err != nil {
		in.vipErrs++
		in.log.Error("virtual address not added", "err", err)
		return
	}
	in.log.Debug("virtual address added", "address", v.Prefix, "dev", v.dev)
}

func (in *instance) delVIP(v vip) {
	if err := in.d.host.delVIP(v); err != nil {
		in.vipErrs++
		in.log.Error("virtual address not removed", "err", err)
		return
	}
	in.log.Debug("virtual address removed", "address", v.Prefix, "dev", v.dev)
}

// announce sends one burst: Count rounds over the addresses, each on the
// interface that holds it. Without garp/gna intervals the burst goes out
// at once; with them it is paced off the loop, and cut short if the
// instance leaves Master.
func (in *instance) announce(p *plan, ann router.Announcement) {
	count := max(ann.Count, 1)
	paced := p.garpInterval > 0 || p.gnaInterval > 0
	send := func(ctx context.Context) {
		for round := 0; round < count; round++ {
			for _, a := range ann.Addrs {
				v, ok := p.vips[a]
				if !ok {
					continue
				}
				if ctx.Err() != nil {
					return
				}
				if err := in.d.announce(v.dev, a); err != nil {
					in.d.limiter.do("announce "+v.dev+" "+err.Error(), func() {
						in.log.Warn("announcement not sent", "address", a, "dev", v.dev, "err", err)
					})
				}
				gap := p.garpInterval
				if a.Is6() {
					gap = p.gnaInterval
				}
				if gap > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(gap):
					}
				}
			}
		}
	}
	if !paced {
		send(context.Background())
		return
	}
	if in.announceCtx == nil {
		in.announceCtx, in.announceCancel = context.WithCancel(context.Background())
	}
	go send(in.announceCtx)
}

func (in *instance) transition(t router.Transition) {
	attrs := []any{"from", t.From.String(), "to", t.To.String(), "reason", string(t.Reason), "priority", in.m.Priority()}
	if t.Peer.IsValid() {
		attrs = append(attrs, "peer", t.Peer, "peer_priority", t.PeerPriority)
	}
	in.log.Info("state change", attrs...)
	in.event(in.currentPlan(), Event{Kind: EventStateChange, From: t.From, To: t.To, Reason: string(t.Reason), Src: t.Peer, Priority: in.m.Priority()})
	if t.From == router.Master && in.announceCancel != nil {
		in.announceCancel()
		in.announceCtx, in.announceCancel = nil, nil
	}
	state := t.To.String()
	if t.To == router.Initialize {
		state = "STOP"
	}
	in.notify.post(notifyEvent{state: state, priority: in.m.Priority()})
}

// snapshot returns the instance's status; only the loop may call it.
func (in *instance) snapshot() InstanceStatus {
	p := in.currentPlan()
	st := InstanceStatus{
		Name: p.name, Interface: p.ifname, VRID: p.rc.VRID, Version: p.rc.Version, Family: p.family,
		State: in.m.State(), Priority: in.m.Priority(), Configured: p.rc.Priority,
		Stats: in.m.Stats(), SendErrors: in.sendErrs, LastSendError: in.lastErr,
		QueueDrops: in.drops.Load(), VIPErrors: in.vipErrs, VIPRestored: in.vipRestored,
	}
	st.Master, st.MasterPriority, _ = in.m.CurrentMaster()
	return st
}
