package router

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// t0 is the fake clock's origin; tests pass t0.Add(d) as "now".
var t0 = time.Date(2024, 4, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// v3Config is a VRRPv3 IPv4 instance: VRID 51, 1 s adverts, one VIP, sent
// from 198.51.100.2.
func v3Config(prio uint8) Config {
	return Config{
		VRID: 51, Version: 3, Family: 4, Priority: prio,
		AdvertInterval: time.Second,
		VIPs:           []netip.Addr{ip("203.0.113.10")},
		PrimaryAddr:    ip("198.51.100.2"),
	}
}

// v2Config is the classic keepalived pair's instance: VRRPv2, PASS auth.
func v2Config(prio uint8) Config {
	c := v3Config(prio)
	c.Version = 2
	c.AuthType = vrrpcore.AuthSimple
	copy(c.AuthData[:], "s3cret")
	return c
}

// v6Config is a VRRPv3 IPv6 instance with a link-local first VIP.
func v6Config(prio uint8) Config {
	return Config{
		VRID: 51, Version: 3, Family: 6, Priority: prio,
		AdvertInterval: time.Second,
		VIPs:           []netip.Addr{ip("fe80::100"), ip("2001:db8::100")},
		PrimaryAddr:    ip("fe80::2"),
	}
}

func newMachine(t *testing.T, c Config) *Machine {
	t.Helper()
	m, err := New(c)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

// started returns a machine after Start at t0, checking the state reached.
func started(t *testing.T, c Config, want State) *Machine {
	t.Helper()
	m := newMachine(t, c)
	m.Start(t0)
	if m.State() != want {
		t.Fatalf("after Start: state %v, want %v", m.State(), want)
	}
	return m
}

// peerAdvert is a valid advert a peer of c would send with the given
// priority, already checksum-verified by the codec.
func peerAdvert(c Config, prio uint8) vrrpcore.Advert {
	a := vrrpcore.Advert{
		Version: c.Version, Type: vrrpcore.TypeAdvertisement, VRID: c.VRID,
		Priority: prio, CountIPAddrs: uint8(len(c.VIPs)),
		Interval: c.AdvertInterval, Addrs: slices.Clone(c.VIPs),
		Checksummed: vrrpcore.ChecksumPseudoHeader,
	}
	if c.Version == 2 {
		a.AuthType, a.AuthData = c.AuthType, c.AuthData
		a.Checksummed = vrrpcore.ChecksumMessage
	}
	return a
}

func from(src string, a vrrpcore.Advert) RecvAdvert {
	return RecvAdvert{Advert: a, Src: ip(src), TTL: 255}
}

// wantTransition checks r holds exactly one transition, to the state and
// for the reason given.
func wantTransition(t *testing.T, r Ready, from, to State, reason Reason) {
	t.Helper()
	if len(r.Transitions) != 1 {
		t.Fatalf("transitions %+v, want one %v -> %v (%s)", r.Transitions, from, to, reason)
	}
	tr := r.Transitions[0]
	if tr.From != from || tr.To != to || tr.Reason != reason {
		t.Fatalf("transition %v -> %v (%s), want %v -> %v (%s)", tr.From, tr.To, tr.Reason, from, to, reason)
	}
}

func wantNoTransition(t *testing.T, r Ready) {
	t.Helper()
	if len(r.Transitions) != 0 {
		t.Fatalf("unexpected transitions %+v", r.Transitions)
	}
}

// wantAdverts checks the priorities of the adverts in r, in order.
func wantAdverts(t *testing.T, r Ready, prios ...uint8) {
	t.Helper()
	var got []uint8
	for _, a := range r.Adverts {
		got = append(got, a.Priority)
	}
	if !slices.Equal(got, prios) {
		t.Fatalf("adverts with priorities %v, want %v", got, prios)
	}
}

func wantDeadline(t *testing.T, r Ready, want time.Time) {
	t.Helper()
	if !r.Deadline.Equal(want) {
		t.Fatalf("deadline %v after t0, want %v after t0", r.Deadline.Sub(t0), want.Sub(t0))
	}
}

func wantDiscard(t *testing.T, r Ready, reason DiscardReason) {
	t.Helper()
	if len(r.Discards) != 1 || r.Discards[0].Reason != reason {
		t.Fatalf("discards %+v, want one %q", r.Discards, reason)
	}
}

func wantNoDiscard(t *testing.T, r Ready) {
	t.Helper()
	if len(r.Discards) != 0 {
		t.Fatalf("unexpected discards %+v", r.Discards)
	}
}

func wantNotice(t *testing.T, r Ready, kind NoticeKind) {
	t.Helper()
	for _, n := range r.Notices {
		if n.Kind == kind {
			return
		}
	}
	t.Fatalf("notices %+v, want %q", r.Notices, kind)
}
