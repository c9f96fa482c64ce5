package router

// keepalived behaviours the RFCs do not describe, as keepalived 2.2
// implements them (keepalived/vrrp/vrrp.c: vrrp_state_backup,
// vrrp_state_master_rx, vrrp_set_effective_priority; keepalived.conf(5)).

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// preempt_delay: counted from startup, a Backup tolerates a lower-priority
// Master's adverts until the delay has passed; then it discards them and
// takes over one Master_Down_Interval after the last one it accepted.
func TestKeepalived_PreemptDelayFromStartup(t *testing.T) {
	c := v3Config(200)
	c.PreemptDelay = 5 * time.Second
	m := started(t, c, Backup)
	for s := 500 * ms; s < 5*time.Second; s += time.Second {
		r := m.Receive(at(s), from("198.51.100.1", peerAdvert(c, 100)))
		wantNoDiscard(t, r)
		wantDeadline(t, r, at(s+3218750*time.Microsecond))
	}
	for _, s := range []time.Duration{5500 * ms, 6500 * ms} {
		wantDiscard(t, m.Receive(at(s), from("198.51.100.1", peerAdvert(c, 100))), DiscardLowerPriority)
	}
	r := m.Tick(at(7718750 * time.Microsecond))
	wantTransition(t, r, Backup, Master, ReasonPreempted)
}

// preempt_delay restarts when a lower-priority Master appears after a
// better one was seen.
func TestKeepalived_PreemptDelayFromFirstLowerAdvert(t *testing.T) {
	c := v3Config(200)
	c.PreemptDelay = 5 * time.Second
	m := started(t, c, Backup)
	wantNoDiscard(t, m.Receive(at(500*ms), from("198.51.100.3", peerAdvert(c, 250))))
	r := m.Receive(at(1500*ms), from("198.51.100.1", peerAdvert(c, 100)))
	wantNoDiscard(t, r)
	wantNotice(t, r, NoticePreemptDelay)
	for s := 2500 * ms; s < 6500*ms; s += time.Second {
		wantNoDiscard(t, m.Receive(at(s), from("198.51.100.1", peerAdvert(c, 100))))
	}
	wantDiscard(t, m.Receive(at(6500*ms), from("198.51.100.1", peerAdvert(c, 100))), DiscardLowerPriority)
	wantTransition(t, m.Tick(at(8718750*time.Microsecond)), Backup, Master, ReasonPreempted)

	// With nopreempt the delay is irrelevant.
	c.NoPreempt = true
	if d := newMachine(t, c).Config().PreemptDelay; d != 0 {
		t.Errorf("PreemptDelay %v kept with NoPreempt", d)
	}
}

// unicast_peer { ADDR min_ttl N max_ttl M }: unicast adverts of that peer
// must arrive with a TTL in range (keepalived's check for peers some hops
// away); other peers are not checked, as without the range.
func TestKeepalived_UnicastPeerTTL(t *testing.T) {
	c := v3Config(100)
	c.UnicastPeers = []netip.Addr{ip("198.51.100.1"), ip("198.51.100.3")}
	c.UnicastPeerTTL = map[netip.Addr]TTLRange{ip("198.51.100.1"): {Min: 250, Max: 255}}
	m := started(t, c, Backup)
	recv := func(src string, ttl uint8) Ready {
		in := from(src, peerAdvert(c, 150))
		in.TTL = ttl
		return m.Receive(at(time.Second), in)
	}
	r := recv("198.51.100.1", 200)
	wantDiscard(t, r, DiscardTTL)
	if !strings.Contains(r.Discards[0].Detail, "250..255") {
		t.Errorf("detail %q", r.Discards[0].Detail)
	}
	wantNoDiscard(t, recv("198.51.100.1", 254))
	wantNoDiscard(t, recv("198.51.100.3", 1))

	bad := c
	bad.UnicastPeerTTL = map[netip.Addr]TTLRange{ip("198.51.100.9"): {Min: 255, Max: 1}}
	if _, err := New(bad); err == nil || !strings.Contains(err.Error(), "not a unicast peer") || !strings.Contains(err.Error(), "above maximum") {
		t.Errorf("error %v", err)
	}
}

// virtual_ipaddress_excluded may hold addresses of the other family (an
// IPv4 instance carrying IPv6 addresses along, as keepalived allows): they
// are added, removed and announced with mastership, never advertised.
func TestKeepalived_ExcludedOtherFamily(t *testing.T) {
	c := v3Config(150)
	c.ExcludedVIPs = []netip.Addr{ip("2001:db8::20")}
	m := newMachine(t, c)
	r := m.Start(t0)
	r = m.Tick(r.Deadline)
	want := []netip.Addr{ip("203.0.113.10"), ip("2001:db8::20")}
	if m.State() != Master || !slices.Equal(r.AddVIPs, want) {
		t.Fatalf("state %v, AddVIPs %v, want Master adding %v", m.State(), r.AddVIPs, want)
	}
	if len(r.Adverts) != 1 || !slices.Equal(r.Adverts[0].Addrs, c.VIPs) {
		t.Errorf("advertised %v, want only %v", r.Adverts, c.VIPs)
	}
	if len(r.Announce) != 1 || !slices.Equal(r.Announce[0].Addrs, want) {
		t.Errorf("announced %v, want %v", r.Announce, want)
	}
	if r = m.Shutdown(r.Deadline); !slices.Equal(r.RemoveVIPs, want) {
		t.Errorf("RemoveVIPs %v on shutdown, want %v", r.RemoveVIPs, want)
	}
}

// garp_master_repeat / garp_master_delay / garp_master_refresh(_repeat):
// a burst on becoming Master, a second one after the delay, then periodic
// refreshes; excluded VIPs are added and announced but not advertised.
func TestKeepalived_GarpMasterTimers(t *testing.T) {
	c := v3Config(255)
	c.ExcludedVIPs = []netip.Addr{ip("203.0.113.20")}
	c.GARP = GARPConfig{MasterRepeat: KeepalivedGarpMasterRepeat, MasterDelay: KeepalivedGarpMasterDelay, MasterRefresh: 12 * time.Second, MasterRefreshRepeat: 2}
	all := []netip.Addr{ip("203.0.113.10"), ip("203.0.113.20")}
	m := newMachine(t, c)
	r := m.Start(t0)
	if !slices.Equal(r.AddVIPs, all) || !slices.Equal(r.Adverts[0].Addrs, c.VIPs) || r.Adverts[0].CountIPAddrs != 1 {
		t.Fatalf("AddVIPs %v, advertised %v", r.AddVIPs, r.Adverts[0].Addrs)
	}
	type burst struct {
		at     time.Duration
		count  int
		reason AnnounceReason
	}
	var got []burst
	record := func(r Ready, now time.Time) {
		for _, a := range r.Announce {
			if !slices.Equal(a.Addrs, all) {
				t.Errorf("burst for %v, want %v", a.Addrs, all)
			}
			got = append(got, burst{now.Sub(t0), a.Count, a.Reason})
		}
	}
	record(r, t0)
	adverts := len(r.Adverts)
	for now := r.Deadline; now.Before(at(30 * time.Second)); {
		r = m.Tick(now)
		record(r, now)
		adverts += len(r.Adverts)
		now = r.Deadline
	}
	want := []burst{{0, 5, AnnounceBecomeMaster}, {5 * time.Second, 5, AnnounceMasterDelay}, {12 * time.Second, 2, AnnounceRefresh}, {24 * time.Second, 2, AnnounceRefresh}}
	if !slices.Equal(got, want) {
		t.Errorf("bursts %v, want %v", got, want)
	}
	if adverts != 30 {
		t.Errorf("%d adverts in 30s at 1s intervals, want 30", adverts)
	}
	// Leaving Master stops the GARP timers.
	m.Shutdown(at(30 * time.Second))
	if !m.Deadline().IsZero() {
		t.Errorf("deadline %v after shutdown", m.Deadline())
	}
}

// garp_lower_prio_repeat / garp_lower_prio_delay: a Master receiving a
// lower-priority advert sends a burst at once and another after the delay.
func TestKeepalived_GarpLowerPriority(t *testing.T) {
	c := v3Config(255)
	if r := started(t, c, Master).Receive(at(500*ms), from("198.51.100.1", peerAdvert(c, 100))); len(r.Announce) != 0 {
		t.Fatalf("announced %+v without garp_lower_prio_repeat", r.Announce)
	}
	c.GARP = GARPConfig{LowerPrioRepeat: 3, LowerPrioDelay: 2 * time.Second}
	m := started(t, c, Master)
	r := m.Receive(at(500*ms), from("198.51.100.1", peerAdvert(c, 100)))
	wantAdverts(t, r, 255)
	if len(r.Announce) != 1 || r.Announce[0].Count != 3 || r.Announce[0].Reason != AnnounceLowerPriority {
		t.Fatalf("announce %+v", r.Announce)
	}
	m.Tick(at(time.Second))
	m.Tick(at(2 * time.Second))
	r = m.Tick(at(2500 * ms))
	if len(r.Announce) != 1 || r.Announce[0].Count != 3 || len(r.Adverts) != 0 {
		t.Fatalf("at 2.5s: %+v", r)
	}
}

// "state MASTER" (outside vrrp_strict): a non-owner goes to Master at once
// and steps down when it hears a better Master.
func TestKeepalived_StateMasterAtStartup(t *testing.T) {
	c := v3Config(100)
	c.StartAsMaster = true
	m := newMachine(t, c)
	r := m.Start(t0)
	wantTransition(t, r, Initialize, Master, ReasonStartupStateMaster)
	wantAdverts(t, r, 100)
	r = m.Receive(at(100*ms), from("198.51.100.1", peerAdvert(c, 150)))
	wantTransition(t, r, Master, Backup, ReasonHigherPriority)
}

// down_timer_adverts replaces the RFC's 3 in Master_Down_Interval.
func TestKeepalived_DownTimerAdverts(t *testing.T) {
	c := v3Config(100)
	c.DownTimerAdverts = 5
	r := newMachine(t, c).Start(t0)
	wantDeadline(t, r, at(5*time.Second+609375*time.Microsecond))
}

// vrrp_higher_prio_send_advert: one more advert before stepping down.
func TestKeepalived_HigherPrioSendAdvert(t *testing.T) {
	c := v3Config(100)
	c.StartAsMaster = true
	c.HigherPrioSendAdvert = true
	m := started(t, c, Master)
	r := m.Receive(at(100*ms), from("198.51.100.1", peerAdvert(c, 150)))
	wantTransition(t, r, Master, Backup, ReasonHigherPriority)
	wantAdverts(t, r, 100)
	if len(r.RemoveVIPs) != 1 {
		t.Errorf("RemoveVIPs %v", r.RemoveVIPs)
	}
}

// Tracking (vrrp_set_effective_priority): the priority is clamped to
// 1..254, the owner stays at 255, a Backup's running timer moves by the
// change in Skew_Time, and a Master advertises the new value.
func TestKeepalived_PriorityTracking(t *testing.T) {
	m := started(t, v3Config(100), Backup)
	r := m.SetPriority(at(time.Second), 150)
	wantNotice(t, r, NoticePriorityChanged)
	// 3.609375s - (609.375ms - 414.0625ms)
	wantDeadline(t, r, at(3414062500*time.Nanosecond))
	for _, tc := range []struct{ in, want int }{{-20, 1}, {0, 1}, {300, 254}, {255, 254}, {90, 90}} {
		m.SetPriority(at(time.Second), tc.in)
		if int(m.Priority()) != tc.want {
			t.Errorf("SetPriority(%d): priority %d, want %d", tc.in, m.Priority(), tc.want)
		}
	}
	if r := m.SetPriority(at(time.Second), 90); len(r.Notices) != 0 {
		t.Errorf("unchanged priority reported: %+v", r.Notices)
	}

	// The Skew_Time timer after a priority 0 advert moves too.
	c := v3Config(100)
	m = started(t, c, Backup)
	m.Receive(at(2*time.Second), from("198.51.100.1", peerAdvert(c, 0)))
	wantDeadline(t, m.SetPriority(at(2*time.Second), 150), at(2*time.Second+414062500*time.Nanosecond))

	c.StartAsMaster = true
	m = started(t, c, Master)
	m.SetPriority(at(500*ms), 90)
	wantAdverts(t, m.Tick(at(time.Second)), 90)

	m = started(t, v3Config(255), Master)
	r = m.SetPriority(at(time.Second), 100)
	wantNotice(t, r, NoticeOwnerPriorityFixed)
	if m.Priority() != 255 {
		t.Errorf("owner priority %d", m.Priority())
	}
}

// FAULT: entering it is a shutdown that stays put (a Master resigns with
// priority 0 and drops its VIPs); adverts are ignored; clearing it is a
// startup.
func TestKeepalived_FaultState(t *testing.T) {
	c := v3Config(255)
	m := started(t, c, Master)
	r := m.SetFault(at(time.Second), true)
	wantTransition(t, r, Master, Fault, ReasonFault)
	wantAdverts(t, r, 0)
	if !slices.Equal(r.RemoveVIPs, c.VIPs) || !r.Deadline.IsZero() {
		t.Fatalf("fault: %+v", r)
	}
	if r := m.SetFault(at(time.Second), true); len(r.Transitions)+len(r.Adverts) != 0 {
		t.Errorf("second SetFault(true): %+v", r)
	}
	r = m.Receive(at(1500*ms), from("198.51.100.1", peerAdvert(c, 100)))
	wantDiscard(t, r, DiscardInactive)
	if DiscardInactive.Invalid() || m.Stats().Received != 1 {
		t.Errorf("inactive discard counted as invalid, or valid advert not counted: %+v", m.Stats())
	}
	wantTransition(t, m.SetFault(at(2*time.Second), false), Fault, Master, ReasonFaultCleared)

	b := started(t, v3Config(100), Backup)
	wantTransition(t, b.SetFault(at(time.Second), true), Backup, Fault, ReasonFault)
	r = b.SetFault(at(10*time.Second), false)
	wantTransition(t, r, Fault, Backup, ReasonFaultCleared)
	wantDeadline(t, r, at(10*time.Second+3609375*time.Microsecond))

	// An interface already down at startup.
	f := newMachine(t, v3Config(100))
	if r := f.SetFault(t0, true); len(r.Transitions) != 0 {
		t.Errorf("fault before Start changed state: %+v", r.Transitions)
	}
	wantTransition(t, f.Start(t0), Initialize, Fault, ReasonFault)
	wantTransition(t, f.Shutdown(at(time.Second)), Fault, Initialize, ReasonShutdown)
	if !f.Faulted() {
		t.Error("fault condition forgotten by Shutdown")
	}
}

// unicast_peer: the TTL is not checked (peers may be routed hops away),
// and the sender must be a configured peer unless vrrp_check_unicast_src
// is off (AcceptAnyUnicastSource).
func TestKeepalived_UnicastPeers(t *testing.T) {
	c := v3Config(100)
	c.UnicastPeers = []netip.Addr{ip("198.51.100.1"), ip("198.51.100.3")}
	m := started(t, c, Backup)
	in := from("198.51.100.1", peerAdvert(c, 200))
	in.TTL = 62
	wantNoDiscard(t, m.Receive(at(time.Second), in))
	wantDiscard(t, m.Receive(at(time.Second), from("198.51.100.4", peerAdvert(c, 200))), DiscardUnicastSource)

	c.AcceptAnyUnicastSource = true
	m = started(t, c, Backup)
	wantNoDiscard(t, m.Receive(at(time.Second), from("198.51.100.4", peerAdvert(c, 200))))
}

// old_unicast_checksum: keepalived before 1.3.6 summed VRRPv3 unicast
// adverts over a pseudo-header to 224.0.0.18. Not set, the first such
// advert switches the machine to sending that checksum (and RFC sums stay
// accepted); set, the machine sends it from the start; "never" refuses it.
func TestKeepalived_OldUnicastChecksum(t *testing.T) {
	c := v3Config(100)
	c.UnicastPeers = []netip.Addr{ip("198.51.100.1")}
	old := peerAdvert(c, 200)
	old.Checksummed = vrrpcore.ChecksumOldUnicast

	m := started(t, c, Backup)
	if m.OldUnicastChecksum() {
		t.Fatal("sends the old checksum before any peer did")
	}
	wantNoDiscard(t, m.Receive(at(time.Second), from("198.51.100.1", peerAdvert(c, 200))))
	if m.OldUnicastChecksum() {
		t.Fatal("an RFC checksum switched to the old one")
	}
	r := m.Receive(at(2*time.Second), from("198.51.100.1", old))
	wantNoDiscard(t, r)
	wantNotice(t, r, NoticeOldUnicastChecksum)
	if !m.OldUnicastChecksum() {
		t.Fatal("an advert with the old checksum did not switch to it")
	}
	r = m.Receive(at(3*time.Second), from("198.51.100.1", old))
	for _, n := range r.Notices {
		if n.Kind == NoticeOldUnicastChecksum {
			t.Fatal("the switch was noticed twice")
		}
	}
	wantNoDiscard(t, m.Receive(at(4*time.Second), from("198.51.100.1", peerAdvert(c, 200))))

	// A reload keeps what was learnt, unless it says never.
	if _, err := m.Reconfigure(at(5*time.Second), c); err != nil || !m.OldUnicastChecksum() {
		t.Fatalf("unchanged reload: %v, old checksum %v", err, m.OldUnicastChecksum())
	}
	never := c
	never.OldUnicastChecksum = OldChecksumNever
	if _, err := m.Reconfigure(at(6*time.Second), never); err != nil || m.OldUnicastChecksum() {
		t.Fatalf("reload with never: %v, old checksum %v", err, m.OldUnicastChecksum())
	}
	wantDiscard(t, m.Receive(at(7*time.Second), from("198.51.100.1", old)), DiscardChecksum)

	always := c
	always.OldUnicastChecksum = OldChecksumAlways
	if m := started(t, always, Backup); !m.OldUnicastChecksum() {
		t.Fatal("old_unicast_checksum set: sends the RFC checksum")
	}
	bad := c
	bad.OldUnicastChecksum = OldChecksumNever + 1
	if err := bad.Validate(); err == nil {
		t.Error("unknown old unicast checksum setting accepted")
	}
}

// Link-local zones and IPv4-mapped forms do not defeat address
// comparisons.
func TestAddressNormalisation(t *testing.T) {
	c := v6Config(100)
	c.PrimaryAddr = ip("fe80::2%eth0")
	m := started(t, c, Backup)
	wantDiscard(t, m.Receive(at(time.Second), from("fe80::2%eth0", peerAdvert(c, 200))), DiscardOwnAddress)
	wantNoDiscard(t, m.Receive(at(time.Second), from("fe80::1%eth0", peerAdvert(c, 200))))

	c4 := v3Config(100)
	m = started(t, c4, Backup)
	wantNoDiscard(t, m.Receive(at(time.Second), from("::ffff:198.51.100.1", peerAdvert(c4, 200))))
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{v3Config(100), v2Config(100), v6Config(255)} {
		if err := c.Validate(); err != nil {
			t.Errorf("valid config rejected: %v", err)
		}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"vrid", func(c *Config) { c.VRID = 0 }, "VRID 0"},
		{"version", func(c *Config) { c.Version = 4 }, "version 4"},
		{"family", func(c *Config) { c.Family = 5 }, "family 5"},
		{"v2 ipv6", func(c *Config) { *c = v6Config(100); c.Version = 2 }, "VRRPv2 is IPv4 only"},
		{"priority 0", func(c *Config) { c.Priority = 0 }, "priority 0"},
		{"v2 fractional interval", func(c *Config) { *c = v2Config(100); c.AdvertInterval = 1500 * ms }, "whole seconds"},
		{"v3 interval 5ms", func(c *Config) { c.AdvertInterval = 5 * ms }, "multiple of 10ms"},
		{"v3 interval too long", func(c *Config) { c.AdvertInterval = 41 * time.Second }, "40.95s"},
		{"negative preempt delay", func(c *Config) { c.PreemptDelay = -time.Second }, "negative"},
		{"down timer adverts", func(c *Config) { c.DownTimerAdverts = 101 }, "down timer adverts"},
		{"no primary", func(c *Config) { c.PrimaryAddr = netip.Addr{} }, "primary address is not set"},
		{"primary family", func(c *Config) { c.PrimaryAddr = ip("fe80::1") }, "is not IPv4"},
		{"v6 primary not link-local", func(c *Config) { *c = v6Config(100); c.PrimaryAddr = ip("2001:db8::2") }, "link-local"},
		{"vip family", func(c *Config) { c.VIPs = append(c.VIPs, ip("2001:db8::1")) }, "VIPs[1] 2001:db8::1 is not IPv4"},
		{"duplicate vip", func(c *Config) { c.ExcludedVIPs = []netip.Addr{c.VIPs[0]} }, "repeats VIPs[0]"},
		{"strict without vip", func(c *Config) { c.Strict = true; c.VIPs = nil }, "at least one"},
		{"strict v6 first global", func(c *Config) { *c = v6Config(100); c.Strict = true; slices.Reverse(c.VIPs) }, "must be link-local"},
		{"strict unicast", func(c *Config) { c.Strict = true; c.UnicastPeers = []netip.Addr{ip("198.51.100.1")} }, "unicast"},
		{"peer family", func(c *Config) { c.UnicastPeers = []netip.Addr{ip("fe80::1")} }, "UnicastPeers[0]"},
		{"auth on v3", func(c *Config) { c.AuthType = vrrpcore.AuthSimple }, "VRRPv2 only"},
		{"auth AH", func(c *Config) { *c = v2Config(100); c.AuthType = vrrpcore.AuthAH }, "AH"},
		{"auth data without type", func(c *Config) { c.AuthData[0] = 'x' }, "without an authentication type"},
		{"garp", func(c *Config) { c.GARP.MasterRepeat = -1 }, "GARP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := v3Config(100)
			tc.mutate(&c)
			_, err := New(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "virtual router") {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}
