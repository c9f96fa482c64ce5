package router

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Reloading a configuration. keepalived applies most changes of a
// vrrp_instance to the running instance: a Master whose priority changes
// stays Master and advertises the new priority; one given another address
// adds it without giving up the others. Reconfigure is that input: the
// runtime hands a running Machine its new Config, and only the changes a
// Machine cannot take (another VRID, version, family or interface, or
// becoming or ceasing to be the address owner) need a new Machine.

// Notice kinds and announcement reason of Reconfigure and SetPrimaryAddr.
const (
	NoticeReconfigured          NoticeKind     = "reconfigured"            // Reconfigure applied a new configuration in place
	NoticePrimaryAddrChanged    NoticeKind     = "primary_address_changed" // the address adverts are sent from changed
	AnnounceVIPsAdded           AnnounceReason = "vips_added"              // a Master was given more addresses by Reconfigure
	reconfiguredDetailSeparator                = "; "
)

// RestartError is Reconfigure's refusal of a change only a new Machine
// can make.
type RestartError struct {
	// Reasons name each such change, e.g. "VRID 51 -> 52".
	Reasons []string
}

func (e *RestartError) Error() string {
	return "needs a restart: " + strings.Join(e.Reasons, reconfiguredDetailSeparator)
}

// Diff compares the configuration a Machine runs (old) with a new one. It
// returns the changes Reconfigure applies in place and those that need a
// new Machine (restart); both are human-readable, e.g. "priority 150 ->
// 200". Both empty: nothing the Machine sees changed. The configurations
// are compared as New would normalize them.
func Diff(old, new Config) (inPlace, restart []string) {
	o, n := old.normalized(), new.normalized()
	chg := func(list *[]string, what string, a, b any) {
		if fmt.Sprint(a) != fmt.Sprint(b) {
			*list = append(*list, fmt.Sprintf("%s %v -> %v", what, a, b))
		}
	}
	chg(&restart, "VRID", o.VRID, n.VRID)
	chg(&restart, "version", o.Version, n.Version)
	chg(&restart, "family", o.Family, n.Family)
	chg(&restart, "interface", o.Interface, n.Interface)
	if (o.Priority == OwnerPriority) != (n.Priority == OwnerPriority) {
		restart = append(restart, fmt.Sprintf("address owner (priority 255) %d -> %d", o.Priority, n.Priority))
	}

	chg(&inPlace, "priority", o.Priority, n.Priority)
	chg(&inPlace, "advert_int", o.AdvertInterval, n.AdvertInterval)
	chg(&inPlace, "nopreempt", o.NoPreempt, n.NoPreempt)
	chg(&inPlace, "preempt_delay", o.PreemptDelay, n.PreemptDelay)
	if added, removed := addrDelta(o.allVIPs(), n.allVIPs()); len(added)+len(removed) > 0 {
		inPlace = append(inPlace, fmt.Sprintf("virtual addresses +%v -%v", added, removed))
	} else if !slices.Equal(o.VIPs, n.VIPs) {
		inPlace = append(inPlace, fmt.Sprintf("advertised addresses %v -> %v", o.VIPs, n.VIPs))
	}
	chg(&inPlace, "source address", o.PrimaryAddr, n.PrimaryAddr)
	if o.AuthType != n.AuthType || o.AuthData != n.AuthData {
		inPlace = append(inPlace, "authentication") // the password is not logged
	}
	chg(&inPlace, "unicast peers", o.UnicastPeers, n.UnicastPeers)
	chg(&inPlace, "unicast peer TTLs", o.UnicastPeerTTL, n.UnicastPeerTTL)
	chg(&inPlace, "accept", o.Accept, n.Accept)
	chg(&inPlace, "garp", o.GARP, n.GARP)
	chg(&inPlace, "state MASTER", o.StartAsMaster, n.StartAsMaster)
	chg(&inPlace, "down_timer_adverts", o.DownTimerAdverts, n.DownTimerAdverts)
	chg(&inPlace, "lower_prio_no_advert", o.LowerPrioNoAdvert, n.LowerPrioNoAdvert)
	chg(&inPlace, "higher_prio_send_advert", o.HigherPrioSendAdvert, n.HigherPrioSendAdvert)
	chg(&inPlace, "strict", o.Strict, n.Strict)
	chg(&inPlace, "discard address mismatch", o.DiscardAddrMismatch, n.DiscardAddrMismatch)
	chg(&inPlace, "accept any unicast source", o.AcceptAnyUnicastSource, n.AcceptAnyUnicastSource)
	chg(&inPlace, "old unicast checksum", o.OldUnicastChecksum, n.OldUnicastChecksum)
	return inPlace, restart
}

// Reconfigure switches a Machine to cfg in place, in any state. A change
// Diff lists as needing a restart is refused with a *RestartError, and an
// invalid cfg with its problems; the Machine is then unchanged (the Ready
// holds only its Deadline).
//
// What changes, with the protocol's semantics:
//   - priority: the effective priority moves by the change of the
//     configured one (tracking adjustments stay) as SetPriority does: a
//     Master stays Master and advertises the new priority from its next
//     advert, even below a Backup's — that Backup preempts it by RFC 5798
//     §6.4.2 if Preempt_Mode; a Backup raised above the Master preempts it
//     when its Master_Down_Timer runs out on the Master's lower adverts;
//   - Advertisement_Interval: a Master sends an advert at once with the
//     new interval (a VRRPv3 Backup learns it from that advert, before its
//     timer for the old one runs out) and then keeps the new one; a
//     Backup's Master_Down_Timer is moved to the new Master_Down_Interval,
//     unless (VRRPv3) it learned the Master's interval already;
//   - preempt, preempt_delay: apply from the next advert; a running
//     preempt delay moves by the change, and ends if the delay is gone;
//   - virtual addresses: a Master removes those no longer configured,
//     adds and announces the new ones (AnnounceVIPsAdded), and sends an
//     advert at once if the advertised list changed;
//   - GARP timers: a Master's refresh timer restarts with the new period;
//     a pending second burst or lower-priority burst is dropped if its
//     delay is gone;
//   - everything else (source address, authentication, unicast peers,
//     keepalived options) applies to the next advert sent or received.
//
// A Notice (NoticeReconfigured) lists the changes.
func (m *Machine) Reconfigure(now time.Time, cfg Config) (Ready, error) {
	var r Ready
	if err := cfg.Validate(); err != nil {
		return m.finish(&r), fmt.Errorf("virtual router %d: %w", cfg.VRID, err)
	}
	inPlace, restart := Diff(m.cfg, cfg)
	if len(restart) > 0 {
		return m.finish(&r), &RestartError{Reasons: restart}
	}
	if len(inPlace) == 0 {
		return m.finish(&r), nil
	}
	old, cfg := m.cfg, cfg.normalized()
	m.cfg = cfg
	// A checksum learnt from a peer stays while the setting still allows
	// learning it.
	m.oldSum = cfg.OldUnicastChecksum == OldChecksumAlways || (m.oldSum && cfg.OldUnicastChecksum == OldChecksumDetect)

	// Timers of the Advertisement_Interval and down_timer_adverts, at the
	// old priority; SetPriority below moves them for the priority.
	intervalChanged := old.AdvertInterval != cfg.AdvertInterval
	switch m.state {
	case Master:
		m.masterAdverInt = cfg.AdvertInterval
	case Backup, Initialize, Fault:
		learned := cfg.Version == 3 && m.state == Backup && m.masterAddr.IsValid()
		if !learned {
			before := m.MasterDownInterval()
			m.masterAdverInt = cfg.AdvertInterval
			if m.state == Backup && !m.downAt.IsZero() && m.downKind == downFull && !m.wantMaster {
				m.downAt = m.downAt.Add(m.MasterDownInterval() - before)
			}
		} else if old.DownTimerAdverts != cfg.DownTimerAdverts && !m.downAt.IsZero() && m.downKind == downFull && !m.wantMaster {
			m.downAt = m.downAt.Add(downInterval(cfg.Version, m.prio, m.masterAdverInt, cfg.DownTimerAdverts) -
				downInterval(cfg.Version, m.prio, m.masterAdverInt, old.DownTimerAdverts))
		}
	}

	// Preempt_Mode and keepalived's preempt delay.
	switch {
	case cfg.PreemptDelay == 0:
		m.preemptAt = time.Time{}
	case !m.preemptAt.IsZero():
		m.preemptAt = m.preemptAt.Add(cfg.PreemptDelay - old.PreemptDelay)
	}

	// Virtual addresses.
	oldAll := m.allVIPs
	m.advertisedIP = cfg.VIPs
	m.allVIPs = cfg.allVIPs()
	added, removed := addrDelta(oldAll, m.allVIPs)
	sendNow := false
	if m.state == Master {
		r.RemoveVIPs = append(r.RemoveVIPs, removed...)
		r.AddVIPs = append(r.AddVIPs, added...)
		if len(added) > 0 {
			r.Announce = append(r.Announce, Announcement{Addrs: added, Count: cfg.GARP.MasterRepeat, Reason: AnnounceVIPsAdded})
		}
		sendNow = intervalChanged || !slices.Equal(old.VIPs, cfg.VIPs)
		if old.GARP.MasterRefresh != cfg.GARP.MasterRefresh {
			m.garpRefresh = time.Time{}
			if d := cfg.GARP.MasterRefresh; d > 0 {
				m.garpRefresh = now.Add(d)
			}
		}
		if cfg.GARP.MasterDelay == 0 {
			m.garpDelayAt = time.Time{}
		}
		if cfg.GARP.LowerPrioDelay == 0 || cfg.GARP.LowerPrioRepeat == 0 {
			m.garpLowerAt = time.Time{}
		}
	}
	m.notice(&r, NoticeReconfigured, netip.Addr{}, strings.Join(inPlace, reconfiguredDetailSeparator))

	// Priority: the tracking adjustment in force stays.
	if old.Priority != cfg.Priority && !m.owner {
		eff := int(m.prio) + int(cfg.Priority) - int(old.Priority)
		pr := m.SetPriority(now, eff)
		r.Notices = append(r.Notices, pr.Notices...)
	}
	if sendNow {
		m.sendAdvert(&r, m.prio)
		m.adverAt = now.Add(cfg.AdvertInterval)
	} else if m.state == Master && intervalChanged {
		m.adverAt = now.Add(cfg.AdvertInterval)
	}
	return m.finish(&r), nil
}

// SetPrimaryAddr changes the address adverts are sent from and the
// equal-priority tie-break compares (RFC 5798 §5.1.1.1, §5.1.2.1): the
// interface's primary IPv4 address or IPv6 link-local address changed
// under a running instance, e.g. when its interface was created again.
// The state is kept; the next advert goes from addr. An address of the
// wrong family (or, for multicast IPv6, not link-local) is refused and
// the Machine is unchanged.
func (m *Machine) SetPrimaryAddr(now time.Time, addr netip.Addr) (Ready, error) {
	var r Ready
	cfg := m.cfg
	cfg.PrimaryAddr = addr
	if err := cfg.Validate(); err != nil {
		return m.finish(&r), fmt.Errorf("virtual router %d: %w", cfg.VRID, err)
	}
	old := m.cfg.PrimaryAddr
	m.cfg.PrimaryAddr = cfg.normalized().PrimaryAddr
	if m.cfg.PrimaryAddr != old {
		m.notice(&r, NoticePrimaryAddrChanged, netip.Addr{}, fmt.Sprintf("%v -> %v", old, m.cfg.PrimaryAddr))
	}
	return m.finish(&r), nil
}

// IsRestart reports whether err is Reconfigure's refusal of a change that
// needs a new Machine.
func IsRestart(err error) bool {
	var re *RestartError
	return errors.As(err, &re)
}

// allVIPs returns VIPs then ExcludedVIPs, as a Master holds them.
func (c *Config) allVIPs() []netip.Addr {
	return append(slices.Clone(c.VIPs), c.ExcludedVIPs...)
}

// addrDelta returns the addresses of b not in a (added) and of a not in b
// (removed), in list order.
func addrDelta(a, b []netip.Addr) (added, removed []netip.Addr) {
	for _, x := range b {
		if !slices.Contains(a, x) {
			added = append(added, x)
		}
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			removed = append(removed, x)
		}
	}
	return added, removed
}
