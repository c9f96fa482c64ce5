package router

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// RecvAdvert is a received advert with what the runtime knows about the
// packet that carried it.
type RecvAdvert struct {
	// Advert is the decoded advert. Its Checksummed field must say how the
	// codec verified the checksum: ChecksumBad and ChecksumUnverified are
	// discarded.
	Advert vrrpcore.Advert
	// Src is the IP source address (zone and IPv4-in-IPv6 mapping are
	// ignored).
	Src netip.Addr
	// TTL is the IPv4 TTL or IPv6 hop limit the packet arrived with.
	TTL uint8
	// Interface is the receiving interface name; checked against
	// Config.Interface when both are set.
	Interface string
}

// downKind says what the running Master_Down_Timer was set to.
type downKind uint8

const (
	downFull downKind = iota // Master_Down_Interval
	downSkew                 // Skew_Time, after a priority 0 advert
)

// Machine is one virtual router's state machine. It does no I/O and reads
// no clock: every input carries the current time and every method returns
// what to do as a Ready. A Machine is not safe for concurrent use.
type Machine struct {
	cfg   Config
	owner bool
	prio  uint8 // effective priority
	state State
	fault bool

	masterAdverInt time.Duration // Master_Adver_Interval
	masterAddr     netip.Addr    // current Master as far as we know
	masterPrio     uint8

	// Backup timers.
	downAt         time.Time
	downKind       downKind
	lowerDiscarded bool      // lower-priority adverts discarded since the timer was last reset
	preemptAt      time.Time // end of keepalived's preempt delay; zero = not running

	oldSum bool // adverts carry vrrpcore.ChecksumOldUnicast (OldUnicastChecksum)

	// Sync group (sync.go).
	syncHold   bool   // take-overs held by the runtime
	wantMaster bool   // a held Backup's timer expired with no advert since
	wantReason Reason // the reason it would have become Master with

	// Master timers.
	adverAt      time.Time
	garpDelayAt  time.Time
	garpRefresh  time.Time
	garpLowerAt  time.Time
	allVIPs      []netip.Addr // VIPs then ExcludedVIPs
	advertisedIP []netip.Addr

	// adverts holds the adverts handed out in Readys, in turn (Ready).
	adverts    [advertSlots]vrrpcore.Advert
	nextAdvert int

	stats Stats
}

// advertSlots is how many adverts a Machine hands out before it reuses the
// storage of the first: more than one call (a Tick after a SetPriority, a
// Shutdown) produces before the runtime sends them.
const advertSlots = 4

// New returns a Machine in the Initialize state, or the configuration's
// problems.
func New(cfg Config) (*Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("virtual router %d: %w", cfg.VRID, err)
	}
	cfg = cfg.normalized()
	m := &Machine{
		cfg:            cfg,
		owner:          cfg.Priority == OwnerPriority,
		prio:           cfg.Priority,
		masterAdverInt: cfg.AdvertInterval,
		stats: Stats{
			Discards: make(map[DiscardReason]uint64),
			Notices:  make(map[NoticeKind]uint64),
		},
	}
	m.advertisedIP = cfg.VIPs
	m.allVIPs = append(append([]netip.Addr(nil), cfg.VIPs...), cfg.ExcludedVIPs...)
	m.oldSum = cfg.OldUnicastChecksum == OldChecksumAlways
	return m, nil
}

// OldUnicastChecksum reports whether the Machine's adverts should carry
// keepalived's pre-1.3.6 unicast checksum (vrrpcore.ChecksumOldUnicast):
// configured (OldChecksumAlways) or learnt from a peer
// (OldChecksumDetect). It matters for VRRPv3 unicast over IPv4 only.
func (m *Machine) OldUnicastChecksum() bool { return m.oldSum }

// Config returns the configuration the Machine runs with, defaults filled
// in.
func (m *Machine) Config() Config { return m.cfg }

// State returns the current state.
func (m *Machine) State() State { return m.state }

// Priority returns the effective priority: the configured one as changed
// by SetPriority.
func (m *Machine) Priority() uint8 { return m.prio }

// Owner reports whether this router is the address owner (priority 255).
func (m *Machine) Owner() bool { return m.owner }

// Faulted reports whether SetFault has put the instance in fault.
func (m *Machine) Faulted() bool { return m.fault }

// MasterAdverInterval returns Master_Adver_Interval: in Backup, the
// interval learned from the Master's adverts (VRRPv3).
func (m *Machine) MasterAdverInterval() time.Duration { return m.masterAdverInt }

// SkewTime returns the current Skew_Time.
func (m *Machine) SkewTime() time.Duration {
	return SkewTime(m.cfg.Version, m.prio, m.masterAdverInt)
}

// MasterDownInterval returns the current Master_Down_Interval.
func (m *Machine) MasterDownInterval() time.Duration {
	return downInterval(m.cfg.Version, m.prio, m.masterAdverInt, m.cfg.DownTimerAdverts)
}

// CurrentMaster returns the Master as far as this router knows and its
// advertised priority: itself when Master, the sender of the last accepted
// advert when Backup. ok is false when none is known.
func (m *Machine) CurrentMaster() (addr netip.Addr, priority uint8, ok bool) {
	switch m.state {
	case Master:
		return m.cfg.PrimaryAddr, m.prio, true
	case Backup:
		return m.masterAddr, m.masterPrio, m.masterAddr.IsValid()
	}
	return netip.Addr{}, 0, false
}

// AcceptsVIPTraffic reports whether packets addressed to the VIPs must be
// accepted now (RFC 5798 §6.4.3): only as Master, and only if the address
// owner or in Accept_Mode.
func (m *Machine) AcceptsVIPTraffic() bool {
	return m.state == Master && (m.owner || m.cfg.Accept)
}

// Stats returns a copy of the counters.
func (m *Machine) Stats() Stats { return m.stats.clone() }

// Deadline returns when Tick must next be called; zero if no timer runs.
func (m *Machine) Deadline() time.Time {
	switch m.state {
	case Backup:
		return m.downAt
	case Master:
		d := m.adverAt
		for _, t := range []time.Time{m.garpDelayAt, m.garpRefresh, m.garpLowerAt} {
			if !t.IsZero() && t.Before(d) {
				d = t
			}
		}
		return d
	}
	return time.Time{}
}

// Start is RFC 5798 §6.4.1's Startup event. The address owner, or a
// router with StartAsMaster, goes to Master; any other to Backup. If
// SetFault(true) came first the instance goes to Fault instead. Start
// outside Initialize does nothing.
func (m *Machine) Start(now time.Time) Ready {
	var r Ready
	if m.state == Initialize {
		if m.fault {
			m.transition(&r, Fault, ReasonFault, netip.Addr{}, 0)
		} else {
			m.startup(now, &r, false)
		}
	}
	return m.finish(&r)
}

// Shutdown is the Shutdown event (RFC 5798 §6.4.2, §6.4.3): a Master sends
// an advert with priority 0 and removes its VIPs; every state goes to
// Initialize.
func (m *Machine) Shutdown(now time.Time) Ready {
	var r Ready
	switch m.state {
	case Master:
		m.leaveMaster(&r, true)
		m.transition(&r, Initialize, ReasonShutdown, netip.Addr{}, 0)
	case Backup, Fault:
		m.transition(&r, Initialize, ReasonShutdown, netip.Addr{}, 0)
	}
	m.clearTimers()
	return m.finish(&r)
}

// SetFault puts the instance in keepalived's FAULT state (interface or
// tracked object down) or takes it out. Entering Fault is a Shutdown that
// stays in Fault: a Master sends priority 0 and removes its VIPs; adverts
// are then ignored. Leaving Fault is a Startup (reason fault_cleared).
// In Initialize the condition is remembered for Start.
func (m *Machine) SetFault(now time.Time, faulted bool) Ready {
	var r Ready
	if faulted == m.fault {
		return m.finish(&r)
	}
	m.fault = faulted
	switch {
	case faulted && m.state == Master:
		m.leaveMaster(&r, true)
		m.clearTimers()
		m.transition(&r, Fault, ReasonFault, netip.Addr{}, 0)
	case faulted && m.state == Backup:
		m.clearTimers()
		m.transition(&r, Fault, ReasonFault, netip.Addr{}, 0)
	case !faulted && m.state == Fault:
		m.startup(now, &r, true)
	}
	return m.finish(&r)
}

// SetPriority sets the effective priority, e.g. from track scripts and
// tracked interfaces. Like keepalived it clamps the value to 1..254 and
// leaves the address owner at 255. A Master advertises the new priority
// from its next advert; a Backup's running Master_Down_Timer (or Skew_Time
// timer) moves by the change in Skew_Time, and may then be due already:
// Ready.Deadline is not after now, so call Tick.
func (m *Machine) SetPriority(now time.Time, priority int) Ready {
	var r Ready
	if m.owner {
		if priority != OwnerPriority {
			m.notice(&r, NoticeOwnerPriorityFixed, netip.Addr{}, fmt.Sprintf("asked for %d, the address owner stays at 255", priority))
		}
		return m.finish(&r)
	}
	p := uint8(min(max(priority, 1), OwnerPriority-1))
	if p == m.prio {
		return m.finish(&r)
	}
	old := m.prio
	if m.state == Backup && !m.downAt.IsZero() {
		var before, after time.Duration
		if m.downKind == downSkew {
			before, after = m.SkewTime(), SkewTime(m.cfg.Version, p, m.masterAdverInt)
		} else {
			before, after = m.MasterDownInterval(), downInterval(m.cfg.Version, p, m.masterAdverInt, m.cfg.DownTimerAdverts)
		}
		m.downAt = m.downAt.Add(after - before)
	}
	m.prio = p
	m.notice(&r, NoticePriorityChanged, netip.Addr{}, fmt.Sprintf("%d -> %d", old, p))
	return m.finish(&r)
}

// Tick handles every timer due at now: the Master_Down_Timer in Backup;
// the Adver_Timer and the GARP timers in Master. Calling it early is
// harmless.
func (m *Machine) Tick(now time.Time) Ready {
	var r Ready
	due := func(t time.Time) bool { return !t.IsZero() && !now.Before(t) }
	switch m.state {
	case Backup:
		if due(m.downAt) {
			reason := ReasonMasterDown
			switch {
			case m.downKind == downSkew:
				reason = ReasonPriorityZero
			case m.lowerDiscarded:
				reason = ReasonPreempted
			}
			if m.syncHold {
				// keepalived: wait for the sync group, looking again
				// every advert interval.
				if !m.wantMaster {
					m.notice(&r, NoticeSyncWait, m.masterAddr, "waiting for the other members of the sync group to want Master")
				}
				m.wantMaster, m.wantReason = true, reason
				m.downAt = now.Add(m.cfg.AdvertInterval)
				return m.finish(&r)
			}
			m.becomeMaster(now, &r, reason, m.masterAddr, m.masterPrio)
		}
	case Master:
		if due(m.garpDelayAt) {
			m.announce(&r, m.cfg.GARP.MasterRepeat, AnnounceMasterDelay)
			m.garpDelayAt = time.Time{}
		}
		if due(m.garpRefresh) {
			m.announce(&r, m.cfg.GARP.MasterRefreshRepeat, AnnounceRefresh)
			m.garpRefresh = now.Add(m.cfg.GARP.MasterRefresh)
		}
		if due(m.garpLowerAt) {
			m.announce(&r, m.cfg.GARP.LowerPrioRepeat, AnnounceLowerPriority)
			m.garpLowerAt = time.Time{}
		}
		if due(m.adverAt) {
			m.sendAdvert(&r, m.prio)
			m.adverAt = now.Add(m.cfg.AdvertInterval)
		}
	}
	return m.finish(&r)
}

// Receive handles a received advert: it validates it (RFC 5798 §7.1,
// RFC 3768 §7.1; every discard is reported with its reason) and then
// applies RFC 5798 §6.4.2 in Backup or §6.4.3 in Master.
func (m *Machine) Receive(now time.Time, in RecvAdvert) Ready {
	var r Ready
	src := in.Src.Unmap().WithZone("")
	a := &in.Advert
	if reason, detail := m.validate(&r, in, src); reason != "" {
		m.discard(&r, reason, src, a, detail)
		return m.finish(&r)
	}
	m.stats.Received++
	if a.Priority == 0 {
		m.stats.Priority0Received++
	}
	if a.Checksummed == vrrpcore.ChecksumOldUnicast && !m.oldSum {
		m.oldSum = true
		m.notice(&r, NoticeOldUnicastChecksum, src, "the peer sums VRRPv3 unicast adverts over a pseudo-header to 224.0.0.18, as keepalived before 1.3.6 did: this router's adverts carry that checksum from now on")
	}
	switch m.state {
	case Backup:
		m.backupReceive(now, &r, src, a)
	case Master:
		m.masterReceive(now, &r, src, a)
	default:
		m.discard(&r, DiscardInactive, src, a, "instance is "+m.state.String())
	}
	return m.finish(&r)
}

// backupReceive is RFC 5798 §6.4.2 "If an ADVERTISEMENT is received",
// with keepalived's preempt_delay.
func (m *Machine) backupReceive(now time.Time, r *Ready, src netip.Addr, a *vrrpcore.Advert) {
	if a.Priority == 0 {
		// The Master resigns: take over after Skew_Time unless someone
		// else speaks first.
		m.downAt = now.Add(m.SkewTime())
		m.downKind = downSkew
		m.masterAddr, m.masterPrio = src, 0
		return
	}
	delaying := m.cfg.PreemptDelay > 0 && (m.preemptAt.IsZero() || now.Before(m.preemptAt))
	if m.cfg.NoPreempt || a.Priority >= m.prio || delaying {
		if m.cfg.Version == 3 && a.Interval != m.masterAdverInt {
			m.notice(r, NoticeIntervalLearned, src, fmt.Sprintf("Master_Adver_Interval %v -> %v", m.masterAdverInt, a.Interval))
			m.masterAdverInt = a.Interval
		}
		m.downAt = now.Add(m.MasterDownInterval())
		m.downKind = downFull
		m.lowerDiscarded = false
		m.wantMaster = false
		m.masterAddr, m.masterPrio = src, a.Priority
		if m.cfg.PreemptDelay > 0 {
			if a.Priority >= m.prio {
				m.preemptAt = time.Time{}
			} else if m.preemptAt.IsZero() {
				m.preemptAt = now.Add(m.cfg.PreemptDelay)
				m.notice(r, NoticePreemptDelay, src, fmt.Sprintf("Master priority %d < %d: preempting after %v", a.Priority, m.prio, m.cfg.PreemptDelay))
			}
		}
		return
	}
	// Preempt_Mode and a lower priority: discard, and let the
	// Master_Down_Timer run out.
	m.lowerDiscarded = true
	m.masterAddr, m.masterPrio = src, a.Priority
	m.discard(r, DiscardLowerPriority, src, a, fmt.Sprintf("priority %d < %d, preempting", a.Priority, m.prio))
}

// masterReceive is RFC 5798 §6.4.3 "If an ADVERTISEMENT is received", as
// amended by RFC 9568.
func (m *Machine) masterReceive(now time.Time, r *Ready, src netip.Addr, a *vrrpcore.Advert) {
	if a.Priority == 0 {
		m.sendAdvert(r, m.prio)
		m.adverAt = now.Add(m.cfg.AdvertInterval)
		return
	}
	if m.owner && a.Priority == OwnerPriority {
		m.notice(r, NoticeOwnerConflict, src, "another router advertises priority 255 for the same VRID")
	}
	cmp := src.Compare(m.cfg.PrimaryAddr)
	if a.Priority > m.prio || (a.Priority == m.prio && cmp > 0) {
		reason := ReasonHigherPriority
		if a.Priority == m.prio {
			reason = ReasonEqualPriorityHigher
		}
		if m.cfg.HigherPrioSendAdvert {
			m.sendAdvert(r, m.prio)
		}
		m.leaveMaster(r, false)
		if m.cfg.Version == 3 {
			m.masterAdverInt = a.Interval
		}
		m.toBackup(now)
		m.masterAddr, m.masterPrio = src, a.Priority
		m.transition(r, Backup, reason, src, a.Priority)
		return
	}
	// "new Active Router logic": discard, and (RFC 9568) assert mastership.
	m.discard(r, DiscardLowerPriority, src, a, fmt.Sprintf("priority %d < %d (or equal from a lower address); we stay Master", a.Priority, m.prio))
	if !m.cfg.LowerPrioNoAdvert {
		m.sendAdvert(r, m.prio)
	}
	if m.cfg.GARP.LowerPrioRepeat > 0 {
		m.announce(r, m.cfg.GARP.LowerPrioRepeat, AnnounceLowerPriority)
		if m.cfg.GARP.LowerPrioDelay > 0 {
			m.garpLowerAt = now.Add(m.cfg.GARP.LowerPrioDelay)
		}
	}
}

// startup is §6.4.1 (and leaving Fault).
func (m *Machine) startup(now time.Time, r *Ready, fromFault bool) {
	switch {
	case m.owner:
		reason := ReasonStartupOwner
		if fromFault {
			reason = ReasonFaultCleared
		}
		m.becomeMaster(now, r, reason, netip.Addr{}, 0)
	case m.cfg.StartAsMaster:
		reason := ReasonStartupStateMaster
		if fromFault {
			reason = ReasonFaultCleared
		}
		m.becomeMaster(now, r, reason, netip.Addr{}, 0)
	default:
		m.masterAdverInt = m.cfg.AdvertInterval
		m.toBackup(now)
		m.masterAddr, m.masterPrio = netip.Addr{}, 0
		if m.cfg.PreemptDelay > 0 {
			m.preemptAt = now.Add(m.cfg.PreemptDelay)
		}
		reason := ReasonStartup
		if fromFault {
			reason = ReasonFaultCleared
		}
		m.transition(r, Backup, reason, netip.Addr{}, 0)
	}
}

// becomeMaster is the common tail of §6.4.1 (owner) and §6.4.2 (timer
// fired): send an advert, take the VIPs, announce them, arm the
// Adver_Timer.
func (m *Machine) becomeMaster(now time.Time, r *Ready, reason Reason, peer netip.Addr, peerPrio uint8) {
	m.clearTimers()
	m.sendAdvert(r, m.prio)
	r.AddVIPs = append(r.AddVIPs, m.allVIPs...)
	m.announce(r, m.cfg.GARP.MasterRepeat, AnnounceBecomeMaster)
	m.adverAt = now.Add(m.cfg.AdvertInterval)
	if d := m.cfg.GARP.MasterDelay; d > 0 {
		m.garpDelayAt = now.Add(d)
	}
	if d := m.cfg.GARP.MasterRefresh; d > 0 {
		m.garpRefresh = now.Add(d)
	}
	m.masterAdverInt = m.cfg.AdvertInterval
	m.stats.BecameMaster++
	m.transition(r, Master, reason, peer, peerPrio)
}

// leaveMaster gives up the VIPs, after a priority 0 advert if resigning.
// The caller sets the new state.
func (m *Machine) leaveMaster(r *Ready, resign bool) {
	if resign {
		m.sendAdvert(r, 0)
	}
	r.RemoveVIPs = append(r.RemoveVIPs, m.allVIPs...)
	m.clearTimers()
	m.stats.ReleasedMaster++
}

// toBackup arms the Master_Down_Timer for a fresh Backup.
func (m *Machine) toBackup(now time.Time) {
	m.clearTimers()
	m.downAt = now.Add(m.MasterDownInterval())
	m.downKind = downFull
	m.lowerDiscarded = false
}

func (m *Machine) clearTimers() {
	m.downAt, m.adverAt = time.Time{}, time.Time{}
	m.garpDelayAt, m.garpRefresh, m.garpLowerAt = time.Time{}, time.Time{}, time.Time{}
	m.preemptAt = time.Time{}
	m.lowerDiscarded = false
	m.wantMaster = false
}

func (m *Machine) transition(r *Ready, to State, reason Reason, peer netip.Addr, peerPrio uint8) {
	r.Transitions = append(r.Transitions, Transition{From: m.state, To: to, Reason: reason, Peer: peer, PeerPriority: peerPrio})
	m.state = to
}

// sendAdvert outputs an advert as this router sends it now.
func (m *Machine) sendAdvert(r *Ready, priority uint8) {
	a := vrrpcore.Advert{
		Version:      m.cfg.Version,
		Type:         vrrpcore.TypeAdvertisement,
		VRID:         m.cfg.VRID,
		Priority:     priority,
		CountIPAddrs: uint8(len(m.advertisedIP)),
		Interval:     m.cfg.AdvertInterval,
		// Shared, not copied: the list is replaced, never changed in
		// place, and its capacity ends at its length.
		Addrs: m.advertisedIP[:len(m.advertisedIP):len(m.advertisedIP)],
	}
	if m.cfg.Version == 2 {
		a.AuthType = m.cfg.AuthType
		a.AuthData = m.cfg.AuthData
	}
	if len(r.Adverts) > 0 {
		r.Adverts = append(r.Adverts, a)
	} else {
		// One advert per call is the rule: it needs no allocation.
		// The slice's capacity ends at its slot, so that appending
		// to it copies instead of writing over the next slot.
		i := m.nextAdvert
		m.nextAdvert = (i + 1) % advertSlots
		m.adverts[i] = a
		r.Adverts = m.adverts[i : i+1 : i+1]
	}
	m.stats.Sent++
	if priority == 0 {
		m.stats.Priority0Sent++
	}
}

func (m *Machine) announce(r *Ready, count int, reason AnnounceReason) {
	if len(m.allVIPs) == 0 || count <= 0 {
		return
	}
	r.Announce = append(r.Announce, Announcement{Addrs: append([]netip.Addr(nil), m.allVIPs...), Count: count, Reason: reason})
}

func (m *Machine) discard(r *Ready, reason DiscardReason, src netip.Addr, a *vrrpcore.Advert, detail string) {
	r.Discards = append(r.Discards, Discard{Reason: reason, Src: src, VRID: a.VRID, Priority: a.Priority, Detail: detail})
	m.stats.Discards[reason]++
}

func (m *Machine) notice(r *Ready, kind NoticeKind, src netip.Addr, detail string) {
	r.Notices = append(r.Notices, Notice{Kind: kind, Src: src, Detail: detail})
	m.stats.Notices[kind]++
}

func (m *Machine) finish(r *Ready) Ready {
	r.Deadline = m.Deadline()
	return *r
}
