package router

// Tests named after the RFC section whose rule they prove, in the manner of
// etcd-io/raft's raft_paper_test.go. Time is a fake clock: t0 plus offsets.

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

const ms = time.Millisecond

// RFC 5798 / RFC 9568 §6.1: Skew_Time = ((256 - Priority) *
// Master_Adver_Interval) / 256; Master_Down_Interval = 3 *
// Master_Adver_Interval + Skew_Time.
func TestRFC5798_6_1_SkewTimeAndMasterDownIntervalV3(t *testing.T) {
	for _, tc := range []struct {
		prio     uint8
		interval time.Duration
		skew     time.Duration
		down     time.Duration
	}{
		{100, time.Second, 609375 * time.Microsecond, 3609375 * time.Microsecond},
		{255, time.Second, 3906250 * time.Nanosecond, 3003906250 * time.Nanosecond},
		{254, time.Second, 7812500 * time.Nanosecond, 3007812500 * time.Nanosecond},
		{1, time.Second, 996093750 * time.Nanosecond, 3996093750 * time.Nanosecond},
		{100, 100 * ms, 60937500 * time.Nanosecond, 360937500 * time.Nanosecond},
		{150, 100 * ms, 41406250 * time.Nanosecond, 341406250 * time.Nanosecond},
		{254, 10 * ms, 78125 * time.Nanosecond, 30078125 * time.Nanosecond},
		{200, 40950 * ms, 8957812500 * time.Nanosecond, 131807812500 * time.Nanosecond},
	} {
		t.Run(fmt.Sprintf("prio%d/%v", tc.prio, tc.interval), func(t *testing.T) {
			if got := SkewTime(3, tc.prio, tc.interval); got != tc.skew {
				t.Errorf("Skew_Time = %v, want %v", got, tc.skew)
			}
			if got := MasterDownInterval(3, tc.prio, tc.interval); got != tc.down {
				t.Errorf("Master_Down_Interval = %v, want %v", got, tc.down)
			}
		})
	}
}

// RFC 3768 §6.1: Skew_Time = (256 - Priority) / 256 seconds, independent
// of the advertisement interval; Master_Down_Interval = 3 *
// Advertisement_Interval + Skew_Time.
func TestRFC3768_6_1_SkewTimeAndMasterDownIntervalV2(t *testing.T) {
	for _, tc := range []struct {
		prio     uint8
		interval time.Duration
		skew     time.Duration
		down     time.Duration
	}{
		{100, time.Second, 609375 * time.Microsecond, 3609375 * time.Microsecond},
		{150, time.Second, 414062500 * time.Nanosecond, 3414062500 * time.Nanosecond},
		{100, 5 * time.Second, 609375 * time.Microsecond, 15609375 * time.Microsecond},
		{255, 3 * time.Second, 3906250 * time.Nanosecond, 9003906250 * time.Nanosecond},
		{1, 255 * time.Second, 996093750 * time.Nanosecond, 765996093750 * time.Nanosecond},
	} {
		t.Run(fmt.Sprintf("prio%d/%v", tc.prio, tc.interval), func(t *testing.T) {
			if got := SkewTime(2, tc.prio, tc.interval); got != tc.skew {
				t.Errorf("Skew_Time = %v, want %v", got, tc.skew)
			}
			if got := MasterDownInterval(2, tc.prio, tc.interval); got != tc.down {
				t.Errorf("Master_Down_Interval = %v, want %v", got, tc.down)
			}
		})
	}
}

// §6.4.1: the address owner (priority 255) sends an ADVERTISEMENT, announces
// its addresses, sets the Adver_Timer and goes straight to Master.
func TestRFC5798_6_4_1_InitializeOwnerBecomesMaster(t *testing.T) {
	for _, c := range []Config{v3Config(255), v2Config(255), v6Config(255)} {
		t.Run(fmt.Sprintf("v%d/ipv%d", c.Version, c.Family), func(t *testing.T) {
			m := newMachine(t, c)
			r := m.Start(t0)
			wantTransition(t, r, Initialize, Master, ReasonStartupOwner)
			wantAdverts(t, r, 255)
			a := r.Adverts[0]
			if a.Version != c.Version || a.VRID != 51 || a.Type != vrrpcore.TypeAdvertisement ||
				a.Interval != time.Second || !slices.Equal(a.Addrs, c.VIPs) || int(a.CountIPAddrs) != len(c.VIPs) {
				t.Errorf("advert %+v does not describe the instance", a)
			}
			if c.Version == 2 && (a.AuthType != c.AuthType || a.AuthData != c.AuthData) {
				t.Errorf("VRRPv2 advert auth %v %q, want %v %q", a.AuthType, a.AuthData, c.AuthType, c.AuthData)
			}
			if !slices.Equal(r.AddVIPs, c.VIPs) || len(r.RemoveVIPs) != 0 {
				t.Errorf("AddVIPs %v RemoveVIPs %v, want to add %v", r.AddVIPs, r.RemoveVIPs, c.VIPs)
			}
			if len(r.Announce) != 1 || r.Announce[0].Reason != AnnounceBecomeMaster || !slices.Equal(r.Announce[0].Addrs, c.VIPs) || r.Announce[0].Count != 1 {
				t.Errorf("announce %+v, want one become_master burst of 1 for %v", r.Announce, c.VIPs)
			}
			wantDeadline(t, r, at(time.Second))
			if !m.Owner() || m.Priority() != 255 {
				t.Errorf("Owner %v Priority %d", m.Owner(), m.Priority())
			}
		})
	}
}

// §6.4.1: any other router sets Master_Adver_Interval to
// Advertisement_Interval, the Master_Down_Timer to Master_Down_Interval,
// and goes to Backup, sending nothing and holding no address.
func TestRFC5798_6_4_1_InitializeNonOwnerBecomesBackup(t *testing.T) {
	m := newMachine(t, v3Config(100))
	r := m.Start(t0)
	wantTransition(t, r, Initialize, Backup, ReasonStartup)
	wantAdverts(t, r)
	if len(r.AddVIPs)+len(r.RemoveVIPs)+len(r.Announce) != 0 {
		t.Errorf("a starting Backup touched addresses: %+v", r)
	}
	wantDeadline(t, r, at(3609375*time.Microsecond))
	if m.MasterAdverInterval() != time.Second {
		t.Errorf("Master_Adver_Interval %v, want 1s", m.MasterAdverInterval())
	}
	if m.AcceptsVIPTraffic() {
		t.Error("a Backup accepts VIP traffic (§6.4.2: MUST NOT)")
	}
	// Start again is not a second Startup event.
	if r := m.Start(at(time.Second)); len(r.Transitions) != 0 {
		t.Errorf("second Start changed state: %+v", r.Transitions)
	}
}

// §6.4.2: when the Master_Down_Timer fires the Backup sends an
// ADVERTISEMENT, announces the addresses (gratuitous ARP / unsolicited NA),
// sets the Adver_Timer and becomes Master.
func TestRFC5798_6_4_2_BackupBecomesMasterWhenMasterDownTimerFires(t *testing.T) {
	m := started(t, v3Config(100), Backup)
	down := at(3609375 * time.Microsecond)
	if r := m.Tick(down.Add(-time.Nanosecond)); len(r.Transitions)+len(r.Adverts) != 0 {
		t.Fatalf("fired early: %+v", r)
	}
	r := m.Tick(down)
	wantTransition(t, r, Backup, Master, ReasonMasterDown)
	wantAdverts(t, r, 100)
	if !slices.Equal(r.AddVIPs, []netip.Addr{ip("203.0.113.10")}) {
		t.Errorf("AddVIPs %v", r.AddVIPs)
	}
	if len(r.Announce) != 1 || r.Announce[0].Reason != AnnounceBecomeMaster {
		t.Errorf("announce %+v", r.Announce)
	}
	wantDeadline(t, r, down.Add(time.Second))
}

// §6.4.2: an advert from a Master at least as good resets the
// Master_Down_Timer to Master_Down_Interval.
func TestRFC5798_6_4_2_BackupResetsMasterDownTimerOnAdvert(t *testing.T) {
	c := v3Config(100)
	for _, prio := range []uint8{100, 150, 255} { // equal priority is accepted too
		t.Run(fmt.Sprint(prio), func(t *testing.T) {
			m := started(t, c, Backup)
			r := m.Receive(at(2*time.Second), from("198.51.100.1", peerAdvert(c, prio)))
			wantNoDiscard(t, r)
			wantNoTransition(t, r)
			wantDeadline(t, r, at(2*time.Second+3609375*time.Microsecond))
			if a, p, ok := m.CurrentMaster(); !ok || a != ip("198.51.100.1") || p != prio {
				t.Errorf("CurrentMaster %v %d %v", a, p, ok)
			}
			if m.Stats().Received != 1 {
				t.Errorf("Received %d, want 1", m.Stats().Received)
			}
		})
	}
}

// §6.4.2: a priority 0 advert sets the Master_Down_Timer to Skew_Time; the
// Backup takes over when it fires, with reason priority0_received.
func TestRFC5798_6_4_2_BackupTakesOverSkewTimeAfterPriorityZero(t *testing.T) {
	c := v3Config(150)
	m := started(t, c, Backup)
	r := m.Receive(at(time.Second), from("198.51.100.1", peerAdvert(c, 200)))
	wantDeadline(t, r, at(time.Second+3414062500*time.Nanosecond))

	r = m.Receive(at(1500*ms), from("198.51.100.1", peerAdvert(c, 0)))
	wantNoTransition(t, r)
	takeover := at(1500*ms + 414062500*time.Nanosecond)
	wantDeadline(t, r, takeover)
	if m.Stats().Priority0Received != 1 {
		t.Errorf("Priority0Received %d", m.Stats().Priority0Received)
	}
	r = m.Tick(takeover)
	wantTransition(t, r, Backup, Master, ReasonPriorityZero)
	if r.Transitions[0].Peer != ip("198.51.100.1") {
		t.Errorf("transition peer %v, want the resigning Master", r.Transitions[0].Peer)
	}
	wantAdverts(t, r, 150)
}

// §6.4.2, end to end: a Master's Shutdown priority 0 advert makes the
// Backup take over Skew_Time later, not Master_Down_Interval later.
func TestRFC5798_6_4_2_GracefulHandover(t *testing.T) {
	ca, cb := v3Config(200), v3Config(100)
	ca.PrimaryAddr = ip("198.51.100.1")
	a := started(t, ca, Backup)
	b := started(t, cb, Backup)
	ra := a.Tick(at(3218750 * time.Microsecond)) // A's Master_Down_Interval
	wantTransition(t, ra, Backup, Master, ReasonMasterDown)
	b.Receive(at(3218750*time.Microsecond), RecvAdvert{Advert: verified(ra.Adverts[0]), Src: ca.PrimaryAddr, TTL: 255})

	stop := at(10 * time.Second)
	ra = a.Shutdown(stop)
	wantTransition(t, ra, Master, Initialize, ReasonShutdown)
	wantAdverts(t, ra, 0)
	rb := b.Receive(stop, RecvAdvert{Advert: verified(ra.Adverts[0]), Src: ca.PrimaryAddr, TTL: 255})
	wantDeadline(t, rb, stop.Add(609375*time.Microsecond))
	rb = b.Tick(rb.Deadline)
	wantTransition(t, rb, Backup, Master, ReasonPriorityZero)
}

// verified marks an advert the machine produced as the codec would after
// encoding and decoding it.
func verified(a vrrpcore.Advert) vrrpcore.Advert {
	a.Checksummed = vrrpcore.ChecksumPseudoHeader
	if a.Version == 2 {
		a.Checksummed = vrrpcore.ChecksumMessage
	}
	return a
}

// §6.4.2 (VRRPv3): the Backup sets Master_Adver_Interval to the Max
// Advertise Interval in the advert and recomputes Master_Down_Interval;
// RFC 9568 adds "Recompute the Skew_Time", which the Skew_Time timer after
// a priority 0 advert then uses.
func TestRFC9568_6_4_2_BackupLearnsMasterAdverIntervalAndSkewTime(t *testing.T) {
	c := v3Config(100)
	m := started(t, c, Backup)
	adv := peerAdvert(c, 200)
	adv.Interval = 200 * ms
	r := m.Receive(at(time.Second), from("198.51.100.1", adv))
	wantNoDiscard(t, r)
	wantNotice(t, r, NoticeIntervalLearned)
	if m.MasterAdverInterval() != 200*ms {
		t.Fatalf("Master_Adver_Interval %v, want 200ms", m.MasterAdverInterval())
	}
	// 3 * 200ms + 156 * 200ms / 256 = 600ms + 121.875ms
	wantDeadline(t, r, at(time.Second+721875*time.Microsecond))
	if m.SkewTime() != 121875*time.Microsecond {
		t.Errorf("Skew_Time %v, want 121.875ms", m.SkewTime())
	}
	adv.Priority = 0
	r = m.Receive(at(2*time.Second), from("198.51.100.1", adv))
	wantDeadline(t, r, at(2*time.Second+121875*time.Microsecond))
}

// RFC 3768 has no interval learning: a VRRPv2 Backup keeps its own
// Advertisement_Interval (adverts with another one are discarded, see
// TestRFC3768_7_1_Discards).
func TestRFC3768_6_4_2_BackupUsesOwnAdvertisementInterval(t *testing.T) {
	c := v2Config(100)
	c.AdvertInterval = 2 * time.Second
	m := started(t, c, Backup)
	r := m.Receive(at(time.Second), from("198.51.100.1", peerAdvert(c, 200)))
	wantDeadline(t, r, at(time.Second+6609375*time.Microsecond))
}

// §6.4.2: with Preempt_Mode True a lower-priority advert is discarded, so
// the Master_Down_Timer runs out and the better Backup takes over.
func TestRFC5798_6_4_2_PreemptDiscardsLowerPriority(t *testing.T) {
	c := v3Config(200)
	m := started(t, c, Backup)
	down := at(3218750 * time.Microsecond)
	for s := time.Duration(0); s < 3*time.Second; s += time.Second {
		r := m.Receive(at(s+500*ms), from("198.51.100.1", peerAdvert(c, 100)))
		wantDiscard(t, r, DiscardLowerPriority)
		wantDeadline(t, r, down)
	}
	r := m.Tick(down)
	wantTransition(t, r, Backup, Master, ReasonPreempted)
	if r.Transitions[0].Peer != ip("198.51.100.1") || r.Transitions[0].PeerPriority != 100 {
		t.Errorf("preempted peer %v/%d", r.Transitions[0].Peer, r.Transitions[0].PeerPriority)
	}
	if got := m.Stats().Discards[DiscardLowerPriority]; got != 3 {
		t.Errorf("lower_priority discards %d, want 3", got)
	}
	if DiscardLowerPriority.Invalid() {
		t.Error("lower_priority counted as invalid")
	}
}

// §6.4.2: with Preempt_Mode False every advert resets the timer, so a
// lower-priority Master keeps its role.
func TestRFC5798_6_4_2_NoPreemptAcceptsLowerPriority(t *testing.T) {
	c := v3Config(200)
	c.NoPreempt = true
	m := started(t, c, Backup)
	for s := time.Duration(0); s < 30*time.Second; s += time.Second {
		r := m.Receive(at(s+500*ms), from("198.51.100.1", peerAdvert(c, 100)))
		wantNoDiscard(t, r)
		m.Tick(at(s + 999*ms))
		if m.State() != Backup {
			t.Fatalf("at %v: %v, want Backup", s, m.State())
		}
	}
}

// §6.4.2: Shutdown in Backup cancels the Master_Down_Timer and goes to
// Initialize, sending nothing.
func TestRFC5798_6_4_2_BackupShutdown(t *testing.T) {
	m := started(t, v3Config(100), Backup)
	r := m.Shutdown(at(time.Second))
	wantTransition(t, r, Backup, Initialize, ReasonShutdown)
	wantAdverts(t, r)
	if len(r.RemoveVIPs) != 0 || !r.Deadline.IsZero() {
		t.Errorf("Backup shutdown: %+v", r)
	}
	if r := m.Tick(at(time.Hour)); len(r.Transitions)+len(r.Adverts) != 0 {
		t.Errorf("timer still running after Shutdown: %+v", r)
	}
}

// §6.4.3: the Master sends an ADVERTISEMENT whenever the Adver_Timer fires
// and resets it to Advertisement_Interval.
func TestRFC5798_6_4_3_MasterAdvertisesEveryAdvertisementInterval(t *testing.T) {
	c := v3Config(255)
	c.AdvertInterval = 250 * ms
	m := started(t, c, Master)
	for i := 1; i <= 8; i++ {
		now := at(time.Duration(i) * 250 * ms)
		if r := m.Tick(now.Add(-time.Nanosecond)); len(r.Adverts) != 0 {
			t.Fatalf("advert %d early", i)
		}
		r := m.Tick(now)
		wantAdverts(t, r, 255)
		wantDeadline(t, r, now.Add(250*ms))
	}
	if s := m.Stats(); s.Sent != 9 || s.BecameMaster != 1 {
		t.Errorf("stats %+v", s)
	}
}

// §6.4.3: a Master receiving priority 0 sends an ADVERTISEMENT at once and
// resets the Adver_Timer.
func TestRFC5798_6_4_3_MasterAnswersPriorityZero(t *testing.T) {
	c := v3Config(200)
	m := started(t, c, Backup)
	m.Tick(at(3218750 * time.Microsecond))
	now := at(4 * time.Second)
	r := m.Receive(now, from("198.51.100.1", peerAdvert(c, 0)))
	wantNoTransition(t, r)
	wantAdverts(t, r, 200)
	wantDeadline(t, r, now.Add(time.Second))
}

// §6.4.3: a higher-priority advert makes the Master cancel the
// Adver_Timer, adopt the sender's interval (v3), recompute Skew_Time and
// Master_Down_Interval, arm the Master_Down_Timer and become Backup,
// giving up the addresses.
func TestRFC5798_6_4_3_MasterStepsDownToHigherPriority(t *testing.T) {
	c := v3Config(255)
	c.Priority = 100
	c.StartAsMaster = true
	m := started(t, c, Master)
	adv := peerAdvert(c, 200)
	adv.Interval = 500 * ms
	now := at(1200 * ms)
	r := m.Receive(now, from("198.51.100.1", adv))
	wantTransition(t, r, Master, Backup, ReasonHigherPriority)
	wantAdverts(t, r)
	if !slices.Equal(r.RemoveVIPs, c.VIPs) || len(r.AddVIPs) != 0 {
		t.Errorf("RemoveVIPs %v AddVIPs %v", r.RemoveVIPs, r.AddVIPs)
	}
	// 3 * 500ms + 156 * 500ms / 256
	wantDeadline(t, r, now.Add(1500*ms+304687500*time.Nanosecond))
	if m.MasterAdverInterval() != 500*ms {
		t.Errorf("Master_Adver_Interval %v", m.MasterAdverInterval())
	}
	if s := m.Stats(); s.ReleasedMaster != 1 {
		t.Errorf("ReleasedMaster %d", s.ReleasedMaster)
	}
}

// §6.4.3: at equal priority the greater primary address wins, compared as
// an unsigned integer in network byte order; the loser becomes Backup,
// the winner discards the advert and asserts itself (RFC 9568).
func TestRFC5798_6_4_3_EqualPriorityTieBreakOnPrimaryAddress(t *testing.T) {
	for _, tc := range []struct {
		name        string
		cfg         Config
		local, peer string
		stepDown    bool
	}{
		{"v4 greater", v3Config(100), "198.51.100.2", "198.51.100.3", true},
		{"v4 smaller", v3Config(100), "198.51.100.2", "198.51.100.1", false},
		{"v4 numeric not textual", v3Config(100), "198.51.100.9", "198.51.100.10", true},
		{"v4 first octet", v3Config(100), "203.0.113.250", "198.51.100.251", false},
		{"v2 greater", v2Config(100), "198.51.100.2", "198.51.100.200", true},
		{"v6 greater", v6Config(100), "fe80::2", "fe80::3", true},
		{"v6 smaller", v6Config(100), "fe80::2", "fe80::1", false},
		{"v6 byte order", v6Config(100), "fe80::ffff", "fe80::1:0", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			c.PrimaryAddr = ip(tc.local)
			c.StartAsMaster = true
			m := started(t, c, Master)
			r := m.Receive(at(time.Second), from(tc.peer, peerAdvert(c, 100)))
			if tc.stepDown {
				wantTransition(t, r, Master, Backup, ReasonEqualPriorityHigher)
				return
			}
			wantNoTransition(t, r)
			wantDiscard(t, r, DiscardLowerPriority)
			wantAdverts(t, r, 100)
		})
	}
}

// RFC 9568 §6.4.3 "new Active Router logic": discard the lower-priority
// advert and send an ADVERTISEMENT immediately. RFC 5798 only discarded;
// LowerPrioNoAdvert (keepalived vrrp_lower_prio_no_advert) restores that.
// The Adver_Timer is not reset (the RFC does not ask it; keepalived does
// not).
func TestRFC9568_6_4_3_MasterAssertsAgainstLowerPriority(t *testing.T) {
	for _, quiet := range []bool{false, true} {
		t.Run(fmt.Sprint("LowerPrioNoAdvert=", quiet), func(t *testing.T) {
			c := v3Config(255)
			c.LowerPrioNoAdvert = quiet
			m := started(t, c, Master)
			r := m.Receive(at(300*ms), from("198.51.100.1", peerAdvert(c, 254)))
			wantNoTransition(t, r)
			wantDiscard(t, r, DiscardLowerPriority)
			if quiet {
				wantAdverts(t, r)
			} else {
				wantAdverts(t, r, 255)
			}
			wantDeadline(t, r, at(time.Second))
		})
	}
}

// §6.4.3: Shutdown in Master cancels the Adver_Timer, sends an
// ADVERTISEMENT with priority 0 and goes to Initialize; the addresses go.
func TestRFC5798_6_4_3_MasterShutdownSendsPriorityZero(t *testing.T) {
	c := v6Config(255)
	m := started(t, c, Master)
	r := m.Shutdown(at(2500 * ms))
	wantTransition(t, r, Master, Initialize, ReasonShutdown)
	wantAdverts(t, r, 0)
	if !slices.Equal(r.Adverts[0].Addrs, c.VIPs) {
		t.Errorf("priority 0 advert addresses %v", r.Adverts[0].Addrs)
	}
	if !slices.Equal(r.RemoveVIPs, c.VIPs) {
		t.Errorf("RemoveVIPs %v", r.RemoveVIPs)
	}
	if !r.Deadline.IsZero() {
		t.Errorf("deadline %v after shutdown", r.Deadline)
	}
	if s := m.Stats(); s.Priority0Sent != 1 {
		t.Errorf("Priority0Sent %d", s.Priority0Sent)
	}
	// A restarted owner is Master again (§6.4.1).
	r = m.Start(at(3 * time.Second))
	wantTransition(t, r, Initialize, Master, ReasonStartupOwner)
}

// §6.4.3: a Master accepts traffic for the VIPs only as the address owner
// or with Accept_Mode True.
func TestRFC5798_6_4_3_AcceptMode(t *testing.T) {
	for _, tc := range []struct {
		prio   uint8
		accept bool
		want   bool
	}{{255, false, true}, {100, false, false}, {100, true, true}} {
		c := v3Config(tc.prio)
		c.Accept = tc.accept
		c.StartAsMaster = true
		m := started(t, c, Master)
		if got := m.AcceptsVIPTraffic(); got != tc.want {
			t.Errorf("priority %d accept %v: AcceptsVIPTraffic %v, want %v", tc.prio, tc.accept, got, tc.want)
		}
	}
}

// RFC 5798 §7.1 (as RFC 9568 §7.1): every check failure discards the
// packet, is counted by reason, and changes nothing else.
func TestRFC5798_7_1_ReceiveDiscards(t *testing.T) {
	v4, v6 := v3Config(100), v6Config(100)
	for _, tc := range []struct {
		name   string
		cfg    Config
		src    string
		mutate func(*RecvAdvert)
		want   DiscardReason
	}{
		{"TTL not 255 (§5.1.1.3)", v4, "198.51.100.1", func(r *RecvAdvert) { r.TTL = 64 }, DiscardTTL},
		{"hop limit not 255 (§5.1.2.3)", v6, "fe80::1", func(r *RecvAdvert) { r.TTL = 1 }, DiscardTTL},
		{"version 2 to a v3 instance", v4, "198.51.100.1", func(r *RecvAdvert) { r.Advert.Version = 2 }, DiscardVersion},
		{"type not ADVERTISEMENT (§5.2.2)", v4, "198.51.100.1", func(r *RecvAdvert) { r.Advert.Type = 2 }, DiscardType},
		{"bad checksum", v4, "198.51.100.1", func(r *RecvAdvert) { r.Advert.Checksummed = vrrpcore.ChecksumBad }, DiscardChecksum},
		{"checksum never verified", v4, "198.51.100.1", func(r *RecvAdvert) { r.Advert.Checksummed = vrrpcore.ChecksumUnverified }, DiscardUnverified},
		{"VRID not configured", v4, "198.51.100.1", func(r *RecvAdvert) { r.Advert.VRID = 52 }, DiscardVRID},
		{"Max Advert Int 0 (RFC 9568)", v4, "198.51.100.1", func(r *RecvAdvert) { r.Advert.Interval = 0 }, DiscardIntervalZero},
		{"count disagrees with addresses", v4, "198.51.100.1", func(r *RecvAdvert) { r.Advert.CountIPAddrs = 2 }, DiscardMalformed},
		{"IPv6 sender to an IPv4 instance", v4, "fe80::1", nil, DiscardFamily},
		{"unspecified sender", v4, "0.0.0.0", nil, DiscardSource},
		{"our own address", v4, "198.51.100.2", nil, DiscardOwnAddress},
		{"wrong interface", v4, "198.51.100.1", func(r *RecvAdvert) { r.Interface = "eth1" }, DiscardInterface},
		{"IPv6 address in an IPv4 advert (§5.2.9)", v4, "198.51.100.1", func(r *RecvAdvert) { r.Advert.Addrs[0] = ip("2001:db8::1") }, DiscardAddrFamily},
		{"no address (RFC 9568 §5.2.5)", v4, "198.51.100.1", func(r *RecvAdvert) { r.Advert.Addrs, r.Advert.CountIPAddrs = nil, 0 }, DiscardNoAddresses},
		{"IPv6 source not link-local (§5.1.2.1)", v6, "2001:db8::1", nil, DiscardSourceNotLL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			c.Interface = "eth0"
			m := started(t, c, Backup)
			in := from(tc.src, peerAdvert(c, 200))
			in.Interface = "eth0"
			if tc.mutate != nil {
				tc.mutate(&in)
			}
			before := m.Deadline()
			r := m.Receive(at(time.Second), in)
			wantDiscard(t, r, tc.want)
			wantNoTransition(t, r)
			if r.Discards[0].Detail == "" || !tc.want.Invalid() {
				t.Errorf("discard %+v: want a detail and an invalid reason", r.Discards[0])
			}
			if !r.Deadline.Equal(before) {
				t.Errorf("discarded advert moved the Master_Down_Timer")
			}
			s := m.Stats()
			if s.Discards[tc.want] != 1 || s.Received != 0 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

// RFC 3768 §7.1: VRRPv2 also checks the authentication type and data and
// the advertisement interval, and drops an address-list mismatch unless
// the sender is the address owner.
func TestRFC3768_7_1_Discards(t *testing.T) {
	c := v2Config(100)
	for _, tc := range []struct {
		name   string
		mutate func(*vrrpcore.Advert)
		want   DiscardReason // "" = accepted
		notice NoticeKind
	}{
		{"auth type none", func(a *vrrpcore.Advert) { a.AuthType, a.AuthData = vrrpcore.AuthNone, [8]byte{} }, DiscardAuthType, ""},
		{"auth type AH", func(a *vrrpcore.Advert) { a.AuthType = vrrpcore.AuthAH }, DiscardAuthType, ""},
		{"wrong password", func(a *vrrpcore.Advert) { copy(a.AuthData[:], "s3cres") }, DiscardAuthData, ""},
		{"password with trailing bytes", func(a *vrrpcore.Advert) { a.AuthData[7] = 'x' }, DiscardAuthData, ""},
		{"interval 2s vs 1s", func(a *vrrpcore.Advert) { a.Interval = 2 * time.Second }, DiscardInterval, ""},
		{"address list from non-owner", func(a *vrrpcore.Advert) { a.Addrs[0] = ip("203.0.113.11") }, DiscardAddrList, ""},
		{"address list from the owner", func(a *vrrpcore.Advert) { a.Addrs[0] = ip("203.0.113.11"); a.Priority = 255 }, "", NoticeAddrListMismatch},
		{"matching advert", func(*vrrpcore.Advert) {}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := started(t, c, Backup)
			adv := peerAdvert(c, 200)
			tc.mutate(&adv)
			r := m.Receive(at(time.Second), from("198.51.100.1", adv))
			if tc.want == "" {
				wantNoDiscard(t, r)
				wantDeadline(t, r, at(time.Second+3609375*time.Microsecond))
			} else {
				wantDiscard(t, r, tc.want)
			}
			if tc.notice != "" {
				wantNotice(t, r, tc.notice)
			}
		})
	}
	// An instance without authentication accepts v2 adverts whatever
	// their (ignored) authentication data.
	nc := v3Config(100)
	nc.Version = 2
	m := started(t, nc, Backup)
	adv := peerAdvert(nc, 200)
	adv.AuthData = [8]byte{1, 2, 3}
	wantNoDiscard(t, m.Receive(at(time.Second), from("198.51.100.1", adv)))
}

// RFC 5798 §7.1: an address list that differs from the configured one
// "SHOULD log" (a Notice) but the advert is processed; keepalived discards
// it (DiscardAddrMismatch).
func TestRFC5798_7_1_AddressListMismatchIsReportedNotDiscarded(t *testing.T) {
	for _, discard := range []bool{false, true} {
		t.Run(fmt.Sprint("DiscardAddrMismatch=", discard), func(t *testing.T) {
			c := v3Config(100)
			c.DiscardAddrMismatch = discard
			m := started(t, c, Backup)
			adv := peerAdvert(c, 200)
			adv.Addrs = append(adv.Addrs, ip("203.0.113.99"))
			adv.CountIPAddrs = 2
			r := m.Receive(at(time.Second), from("198.51.100.1", adv))
			if discard {
				wantDiscard(t, r, DiscardAddrList)
				return
			}
			wantNoDiscard(t, r)
			wantNotice(t, r, NoticeAddrListMismatch)
			wantDeadline(t, r, at(time.Second+3609375*time.Microsecond))
		})
	}
	// Order does not matter: lists are compared as sets.
	c := v3Config(100)
	c.VIPs = []netip.Addr{ip("203.0.113.10"), ip("203.0.113.11"), ip("203.0.113.12")}
	m := started(t, c, Backup)
	adv := peerAdvert(c, 200)
	slices.Reverse(adv.Addrs)
	r := m.Receive(at(time.Second), from("198.51.100.1", adv))
	if len(r.Notices) != 0 || len(r.Discards) != 0 {
		t.Errorf("same set in another order: %+v", r)
	}
}

// RFC 5798 §5.1.2.1: IPv6 adverts come from a link-local address; a
// multicast instance discards others. Unicast peers may use global ones.
func TestRFC5798_5_1_2_1_IPv6SourceMustBeLinkLocal(t *testing.T) {
	c := v6Config(100)
	m := started(t, c, Backup)
	wantDiscard(t, m.Receive(at(time.Second), from("2001:db8::1", peerAdvert(c, 200))), DiscardSourceNotLL)

	c.PrimaryAddr = ip("2001:db8::2")
	c.UnicastPeers = []netip.Addr{ip("2001:db8::1")}
	m = started(t, c, Backup)
	wantNoDiscard(t, m.Receive(at(time.Second), from("2001:db8::1", peerAdvert(c, 200))))
}

// RFC 9568 §5.2.9 and erratum 8300: the first IPv6 address must be
// link-local. keepalived sends adverts that break this (it only logs), so
// the machine accepts them with a Notice unless Strict.
func TestRFC9568_5_2_9_FirstIPv6AddressLinkLocal(t *testing.T) {
	for _, strict := range []bool{false, true} {
		t.Run(fmt.Sprint("Strict=", strict), func(t *testing.T) {
			c := v6Config(100)
			c.Strict = strict
			m := started(t, c, Backup)
			adv := peerAdvert(c, 200)
			adv.Addrs[0], adv.Addrs[1] = adv.Addrs[1], adv.Addrs[0]
			r := m.Receive(at(time.Second), from("fe80::1", adv))
			if strict {
				wantDiscard(t, r, DiscardFirstAddrNotLL)
				return
			}
			wantNoDiscard(t, r)
			wantNotice(t, r, NoticeFirstAddrNotLL)
		})
	}
}

// RFC 9568 §5.2.5 and erratum 8299: an advert with no address is ignored;
// keepalived instances without VIPs send exactly that, so a non-strict
// instance that has none either accepts it with a Notice.
func TestRFC9568_5_2_5_ZeroAddressCount(t *testing.T) {
	c := v3Config(100)
	c.VIPs = nil
	c.ExcludedVIPs = []netip.Addr{ip("203.0.113.10")}
	m := started(t, c, Backup)
	r := m.Receive(at(time.Second), from("198.51.100.1", peerAdvert(c, 200)))
	wantNoDiscard(t, r)
	wantNotice(t, r, NoticeNoAddresses)
}

// RFC 5798 §7.1 tells an address owner to discard adverts; keepalived
// processes them, so the owner answers priority 0 and lower priorities
// (§6.4.3) and reports a second owner.
func TestRFC5798_7_1_OwnerProcessesAdverts(t *testing.T) {
	c := v3Config(255)
	m := started(t, c, Master)
	wantAdverts(t, m.Receive(at(100*ms), from("198.51.100.1", peerAdvert(c, 0))), 255)
	wantAdverts(t, m.Receive(at(200*ms), from("198.51.100.1", peerAdvert(c, 100))), 255)

	r := m.Receive(at(300*ms), from("198.51.100.1", peerAdvert(c, 255)))
	wantNotice(t, r, NoticeOwnerConflict)
	wantNoTransition(t, r) // 198.51.100.1 < 198.51.100.2: we win the tie-break
	r = m.Receive(at(400*ms), from("198.51.100.3", peerAdvert(c, 255)))
	wantTransition(t, r, Master, Backup, ReasonEqualPriorityHigher)
}
