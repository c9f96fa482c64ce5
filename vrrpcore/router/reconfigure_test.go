package router

import (
	"maps"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// master returns a Master of c started as keepalived's "state MASTER" at
// t0 (its next advert is due at t0 + the interval).
func master(t *testing.T, c Config) *Machine {
	t.Helper()
	c.StartAsMaster = true
	return started(t, c, Master)
}

func reconfigure(t *testing.T, m *Machine, now time.Time, c Config) Ready {
	t.Helper()
	r, err := m.Reconfigure(now, c)
	if err != nil {
		t.Fatalf("Reconfigure: %v", err)
	}
	wantNoTransition(t, r)
	return r
}

// RFC 5798 §6.4.3: a Master only leaves Master on a higher-priority advert
// (or shutdown). Its priority lowered by a reload below a Backup's, it
// stays Master and advertises the new priority; it steps down when that
// Backup, preempting (§6.4.2), advertises its higher priority.
func TestRFC5798_6_4_3_ReloadedMasterKeepsMastershipAtLowerPriority(t *testing.T) {
	c := v3Config(150)
	c.StartAsMaster = true
	m := master(t, c)
	c.Priority = 50
	r := reconfigure(t, m, at(500*ms), c)
	wantAdverts(t, r) // from the next advert on
	wantNotice(t, r, NoticeReconfigured)
	wantNotice(t, r, NoticePriorityChanged)
	if len(r.AddVIPs)+len(r.RemoveVIPs) != 0 {
		t.Fatalf("addresses touched: %+v", r)
	}
	wantDeadline(t, r, at(time.Second)) // the Adver_Timer runs on
	r = m.Tick(at(time.Second))
	wantNoTransition(t, r)
	wantAdverts(t, r, 50)
	if m.Config().Priority != 50 || m.Priority() != 50 {
		t.Fatalf("configured %d effective %d, want 50", m.Config().Priority, m.Priority())
	}
	// A lower priority still loses against it...
	r = m.Receive(at(1100*ms), from("198.51.100.1", peerAdvert(c, 40)))
	wantNoTransition(t, r)
	wantDiscard(t, r, DiscardLowerPriority)
	// ...the preempting Backup's higher priority wins.
	r = m.Receive(at(1200*ms), from("198.51.100.1", peerAdvert(c, 100)))
	wantTransition(t, r, Master, Backup, ReasonHigherPriority)
}

// RFC 5798 §6.4.2: a Backup raised by a reload above the Master's priority
// discards the Master's adverts when Preempt_Mode is on and takes over when
// its Master_Down_Timer fires; with nopreempt it accepts them and stays.
func TestRFC5798_6_4_2_ReloadedBackupAboveMasterPreempts(t *testing.T) {
	for _, nopreempt := range []bool{false, true} {
		c := v3Config(100)
		c.NoPreempt = nopreempt
		m := started(t, c, Backup)
		m.Receive(at(time.Second), from("198.51.100.1", peerAdvert(c, 150)))
		c.Priority = 200
		reconfigure(t, m, at(1500*ms), c)
		r := m.Receive(at(2*time.Second), from("198.51.100.1", peerAdvert(c, 150)))
		if nopreempt {
			wantNoDiscard(t, r)
			r = m.Tick(r.Deadline.Add(-time.Nanosecond))
			wantNoTransition(t, r)
			if m.State() != Backup {
				t.Fatalf("nopreempt: state %v, want BACKUP", m.State())
			}
			continue
		}
		wantDiscard(t, r, DiscardLowerPriority)
		// The timer runs from the last accepted advert, at 1 s:
		// 3 s + (256-200)/256 s.
		down := at(time.Second + 3*time.Second + 218750*time.Microsecond)
		wantDeadline(t, r, down)
		r = m.Tick(down)
		wantTransition(t, r, Backup, Master, ReasonPreempted)
		wantAdverts(t, r, 200)
	}
}

// A reload keeps the tracking adjustment (track_script / track_interface
// weights) in force: the effective priority moves by the change of the
// configured one.
func TestReload_PriorityKeepsTrackingAdjustment(t *testing.T) {
	c := v3Config(150)
	m := master(t, c)
	m.SetPriority(at(100*ms), 130) // a weight -20 script failed
	c.Priority = 160
	reconfigure(t, m, at(200*ms), c)
	if m.Priority() != 140 {
		t.Fatalf("effective priority %d, want 140", m.Priority())
	}
}

// RFC 5798 §6.4.2 (Backup, Master_Down_Interval from the Backup's own
// priority): a reload raising a Backup's priority shortens its running
// Master_Down_Timer by the change in Skew_Time, as tracking does.
func TestRFC5798_6_4_2_ReloadedBackupMovesMasterDownTimer(t *testing.T) {
	c := v3Config(100)
	m := started(t, c, Backup)
	m.Receive(at(time.Second), from("198.51.100.1", peerAdvert(c, 150)))
	c.Priority = 200
	r := reconfigure(t, m, at(1500*ms), c)
	wantDeadline(t, r, at(time.Second+3*time.Second+218750*time.Microsecond))
}

// RFC 5798 §6.4.3 with a new Advertisement_Interval: the Master advertises
// it at once (a VRRPv3 Backup learns Master_Adver_Interval from that
// advert, RFC 5798 §6.4.2, before its timer for the old interval runs out)
// and then every new interval.
func TestRFC5798_6_4_3_ReloadedMasterAdvertisesNewInterval(t *testing.T) {
	c := v3Config(150)
	c.AdvertInterval = 100 * ms
	m := master(t, c)
	c.AdvertInterval = time.Second
	now := at(50 * ms)
	r := reconfigure(t, m, now, c)
	wantAdverts(t, r, 150)
	if r.Adverts[0].Interval != time.Second {
		t.Fatalf("advert interval %v, want 1s", r.Adverts[0].Interval)
	}
	wantDeadline(t, r, now.Add(time.Second))

	// The peer Backup learns it from that advert and keeps waiting.
	p := v3Config(100)
	p.AdvertInterval = 100 * ms
	b := started(t, p, Backup)
	sent := r.Adverts[0]
	sent.Checksummed = vrrpcore.ChecksumPseudoHeader // as the codec verifies it
	if r := b.Receive(now, from("198.51.100.1", sent)); len(r.Discards) != 0 {
		t.Fatalf("peer discarded the advert: %+v", r.Discards)
	}
	if b.MasterAdverInterval() != time.Second {
		t.Fatalf("peer learned %v, want 1s", b.MasterAdverInterval())
	}
	if r := b.Tick(now.Add(time.Second + 10*ms)); b.State() != Backup {
		t.Fatalf("peer took over a second after the change: %+v", r.Transitions)
	}
}

// RFC 3768 §6.4.2: a VRRPv2 Backup's Master_Down_Interval is computed from
// its own Advertisement_Interval: a reload changing it moves the running
// timer.
func TestRFC3768_6_4_2_ReloadedBackupUsesNewInterval(t *testing.T) {
	c := v2Config(100)
	m := started(t, c, Backup) // down at 3 s + 0.609375 s
	c.AdvertInterval = 2 * time.Second
	r := reconfigure(t, m, at(500*ms), c)
	wantDeadline(t, r, at(6*time.Second+609375*time.Microsecond))
}

// A Master given more virtual addresses by a reload adds and announces
// them, removes those no longer configured, and advertises the new list at
// once; the addresses it keeps are not touched.
func TestReload_MasterVIPsAddedAndRemoved(t *testing.T) {
	c := v3Config(150)
	c.VIPs = []netip.Addr{ip("203.0.113.10"), ip("203.0.113.11")}
	c.ExcludedVIPs = []netip.Addr{ip("2001:db8::10")}
	m := master(t, c)
	c.VIPs = []netip.Addr{ip("203.0.113.10"), ip("203.0.113.12")}
	c.ExcludedVIPs = []netip.Addr{ip("2001:db8::10"), ip("2001:db8::12")}
	r := reconfigure(t, m, at(300*ms), c)
	if want := []netip.Addr{ip("203.0.113.11")}; !slices.Equal(r.RemoveVIPs, want) {
		t.Errorf("RemoveVIPs %v, want %v", r.RemoveVIPs, want)
	}
	added := []netip.Addr{ip("203.0.113.12"), ip("2001:db8::12")}
	if !slices.Equal(r.AddVIPs, added) {
		t.Errorf("AddVIPs %v, want %v", r.AddVIPs, added)
	}
	if len(r.Announce) != 1 || r.Announce[0].Reason != AnnounceVIPsAdded || !slices.Equal(r.Announce[0].Addrs, added) || r.Announce[0].Count != 1 {
		t.Errorf("Announce %+v", r.Announce)
	}
	wantAdverts(t, r, 150)
	if !slices.Equal(r.Adverts[0].Addrs, c.VIPs) || r.Adverts[0].CountIPAddrs != 2 {
		t.Errorf("advert addresses %v", r.Adverts[0].Addrs)
	}
	// Leaving Master gives up exactly the new set.
	r = m.Shutdown(at(400 * ms))
	if want := append(slices.Clone(c.VIPs), c.ExcludedVIPs...); !slices.Equal(r.RemoveVIPs, want) {
		t.Errorf("shutdown removes %v, want %v", r.RemoveVIPs, want)
	}
}

// A Backup given other virtual addresses touches none; it takes the new
// set when it becomes Master.
func TestReload_BackupVIPsChanged(t *testing.T) {
	c := v3Config(100)
	m := started(t, c, Backup)
	c.VIPs = []netip.Addr{ip("203.0.113.20")}
	r := reconfigure(t, m, at(100*ms), c)
	if len(r.AddVIPs)+len(r.RemoveVIPs)+len(r.Announce)+len(r.Adverts) != 0 {
		t.Fatalf("a Backup acted: %+v", r)
	}
	r = m.Tick(r.Deadline)
	wantTransition(t, r, Backup, Master, ReasonMasterDown)
	if !slices.Equal(r.AddVIPs, c.VIPs) {
		t.Fatalf("AddVIPs %v, want %v", r.AddVIPs, c.VIPs)
	}
}

// keepalived's preempt_delay removed by a reload: a Backup tolerating a
// lower-priority Master stops tolerating it.
func TestReload_PreemptDelayRemoved(t *testing.T) {
	c := v3Config(150)
	c.PreemptDelay = time.Minute
	m := started(t, c, Backup)
	r := m.Receive(at(time.Second), from("198.51.100.1", peerAdvert(c, 100)))
	wantNoDiscard(t, r) // tolerated for a minute
	c.PreemptDelay = 0
	reconfigure(t, m, at(1500*ms), c)
	r = m.Receive(at(2*time.Second), from("198.51.100.1", peerAdvert(c, 100)))
	wantDiscard(t, r, DiscardLowerPriority)
}

// keepalived garp_master_refresh changed by a reload: the refresh timer
// restarts with the new period.
func TestReload_GarpRefresh(t *testing.T) {
	c := v3Config(150)
	m := master(t, c)
	c.GARP.MasterRefresh = 300 * ms
	r := reconfigure(t, m, at(100*ms), c)
	wantDeadline(t, r, at(400*ms))
	r = m.Tick(at(400 * ms))
	if len(r.Announce) != 1 || r.Announce[0].Reason != AnnounceRefresh {
		t.Fatalf("announce %+v", r.Announce)
	}
}

// What a Machine cannot take in place is refused, and the Machine is left
// as it was: another VRID, version, family or interface, and becoming or
// ceasing to be the address owner.
func TestReload_RestartNeeded(t *testing.T) {
	base := v3Config(150)
	for name, change := range map[string]func(*Config){
		"vrid":      func(c *Config) { c.VRID = 52 },
		"version":   func(c *Config) { c.Version = 2 },
		"interface": func(c *Config) { c.Interface = "eth1" },
		"owner":     func(c *Config) { c.Priority = 255 },
	} {
		t.Run(name, func(t *testing.T) {
			m := master(t, base)
			c := base
			c.Priority = 100
			change(&c)
			r, err := m.Reconfigure(at(100*ms), c)
			if !IsRestart(err) {
				t.Fatalf("err %v, want a RestartError", err)
			}
			if m.Priority() != 150 || len(r.Adverts)+len(r.Notices) != 0 {
				t.Fatalf("machine changed: priority %d, %+v", m.Priority(), r)
			}
		})
	}
	m := master(t, base)
	bad := base
	bad.AdvertInterval = 15 * ms
	if _, err := m.Reconfigure(at(100*ms), bad); err == nil || IsRestart(err) {
		t.Fatalf("invalid configuration: err %v", err)
	}
	if r, err := m.Reconfigure(at(100*ms), m.Config()); err != nil || len(r.Notices) != 0 {
		t.Fatalf("unchanged configuration: %v %+v", err, r)
	}
}

// FuzzReconfigure drives a Machine with random inputs, reloads among them,
// and checks that it holds exactly its configured addresses while Master
// and none otherwise, and that its deadline is consistent.
func FuzzReconfigure(f *testing.F) {
	f.Add([]byte{0, 0, 6, 1, 2, 3, 2, 40, 6, 2, 1, 0, 3, 90})
	f.Add([]byte{1, 0, 2, 120, 6, 7, 0, 2, 5, 1, 5, 0, 6, 4, 9, 1, 2, 200})
	f.Add([]byte{2, 0, 6, 255, 3, 3, 1, 2, 50, 3, 200, 6, 0, 0, 0, 1})
	f.Fuzz(fuzzReconfigure)
}

func fuzzReconfigure(t *testing.T, data []byte) {
	if len(data) == 0 {
		return
	}
	pool := []netip.Addr{ip("203.0.113.10"), ip("203.0.113.11"), ip("203.0.113.12"), ip("2001:db8::10")}
	c := v3Config(100 + data[0]%100)
	data = data[1:]
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	m := newMachine(t, c)
	now := t0
	held := map[netip.Addr]bool{}
	for len(data) > 0 {
		var r Ready
		switch next() % 7 {
		case 0:
			r = m.Start(now)
		case 1:
			r = m.Shutdown(now)
		case 2:
			now = now.Add(time.Duration(next()) * 23 * time.Millisecond)
			r = m.Tick(now)
		case 3:
			r = m.Receive(now, from("198.51.100.1", peerAdvert(m.Config(), next())))
		case 4:
			r = m.SetPriority(now, int(next()))
		case 5:
			r = m.SetFault(now, next()&1 != 0)
		case 6:
			n := m.Config()
			n.Priority = max(next(), 1)
			n.AdvertInterval = time.Duration(1+next()%200) * 10 * time.Millisecond
			b := next()
			n.VIPs, n.ExcludedVIPs = nil, nil
			for i, a := range pool {
				switch {
				case b&(1<<i) == 0:
				case a.Is4():
					n.VIPs = append(n.VIPs, a)
				default:
					n.ExcludedVIPs = append(n.ExcludedVIPs, a)
				}
			}
			n.NoPreempt = b&16 != 0
			n.PreemptDelay = time.Duration(b>>5) * 300 * time.Millisecond
			n.GARP.MasterRefresh = time.Duration(b>>6) * time.Second
			var err error
			if r, err = m.Reconfigure(now, n); err != nil && !IsRestart(err) {
				t.Fatalf("Reconfigure: %v", err)
			}
		}
		for _, a := range r.RemoveVIPs {
			delete(held, a)
		}
		for _, a := range r.AddVIPs {
			held[a] = true
		}
		want := map[netip.Addr]bool{}
		if m.State() == Master {
			for _, a := range append(slices.Clone(m.Config().VIPs), m.Config().ExcludedVIPs...) {
				want[a] = true
			}
		}
		if !maps.Equal(held, want) {
			t.Fatalf("in %v holding %v, want %v", m.State(), held, want)
		}
		if st := m.State(); (st == Master || st == Backup) == r.Deadline.IsZero() {
			t.Fatalf("deadline %v in %v", r.Deadline, st)
		}
		if !r.Deadline.Equal(m.Deadline()) {
			t.Fatalf("Ready.Deadline %v, Deadline() %v", r.Deadline, m.Deadline())
		}
	}
}

// RFC 5798 §5.1.1.1 / §5.1.2.1: adverts go from the interface's primary
// IPv4 or link-local IPv6 address. When it changes under a running
// instance the state is kept, the tie-break compares the new address, and
// an address the adverts cannot go from is refused.
func TestRFC5798_5_1_1_1_PrimaryAddressChanged(t *testing.T) {
	c := v3Config(100)
	m := master(t, c)
	r, err := m.SetPrimaryAddr(at(100*ms), ip("198.51.100.9"))
	if err != nil {
		t.Fatal(err)
	}
	wantNoTransition(t, r)
	wantNotice(t, r, NoticePrimaryAddrChanged)
	if a, _, _ := m.CurrentMaster(); a != ip("198.51.100.9") {
		t.Fatalf("CurrentMaster %v", a)
	}
	// Equal priority from 198.51.100.5: greater than the old address,
	// smaller than the new one: we stay Master.
	r = m.Receive(at(200*ms), from("198.51.100.5", peerAdvert(c, 100)))
	wantNoTransition(t, r)
	wantDiscard(t, r, DiscardLowerPriority)
	// Our own new address is recognised as ours.
	r = m.Receive(at(300*ms), from("198.51.100.9", peerAdvert(c, 100)))
	wantDiscard(t, r, DiscardOwnAddress)

	if _, err := m.SetPrimaryAddr(at(400*ms), ip("2001:db8::1")); err == nil {
		t.Error("an IPv6 source for an IPv4 instance was accepted")
	}
	m6 := master(t, v6Config(100))
	if _, err := m6.SetPrimaryAddr(at(100*ms), ip("2001:db8::1")); err == nil {
		t.Error("a global IPv6 source for multicast adverts was accepted")
	}
	if m.Config().PrimaryAddr != ip("198.51.100.9") || m6.Config().PrimaryAddr != ip("fe80::2") {
		t.Error("a refused address was applied")
	}
}
