package capture

import (
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

var (
	ct0   = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	peer4 = netip.MustParseAddr("198.51.100.1")
	self4 = netip.MustParseAddr("198.51.100.2")
	peer6 = netip.MustParseAddr("fe80::1")
)

// advert returns an incoming VRRPv2 packet from peer4 for VRID 51 at
// ct0+at with IPv4 identification id.
func advert(at time.Duration, id uint16) *Packet {
	return &Packet{Time: ct0.Add(at), Direction: DirIn, Family: 4, Src: peer4, Dst: vrrpcore.GroupIPv4, TTL: 255, IPID: id, Length: 20,
		Advert: vrrpcore.Advert{Version: 2, VRID: 51, Priority: 150, Interval: time.Second, Checksum: 0x1234}}
}

// advert6 returns an incoming VRRPv3 IPv6 packet from peer6; all look the
// same but for the time, as keepalived's do.
func advert6(at time.Duration) *Packet {
	return &Packet{Time: ct0.Add(at), Direction: DirIn, Family: 6, Src: peer6, Dst: vrrpcore.GroupIPv6, TTL: 255, FlowLabel: 0xabcde, Length: 24,
		Advert: vrrpcore.Advert{Version: 3, VRID: 52, Priority: 150, Interval: time.Second, Checksum: 0x4321}}
}

var key4 = FlowKey{Interface: "eth0", VRID: 51, Family: 4, Sender: peer4, Direction: DirIn}

func flowOf(t *testing.T, c *Correlator, k FlowKey) FlowStats {
	t.Helper()
	s := c.Snapshot()
	f, ok := s.Flow(k)
	if !ok {
		t.Fatalf("no flow %+v in %+v", k, s.Flows)
	}
	return f
}

func TestCorrelateHealthy(t *testing.T) {
	c := NewCorrelator(CorrelatorOptions{})
	for i := range 10 {
		p := advert(time.Duration(i)*time.Second, uint16(100+i))
		// The taps are read by different goroutines: either may come first.
		if i%2 == 0 {
			c.AddWire("eth0", p, false)
			c.AddSocket("eth0", p, false)
		} else {
			c.AddSocket("eth0", p, false)
			c.AddWire("eth0", p, false)
		}
	}
	c.Advance(ct0.Add(time.Hour))
	f := flowOf(t, c, key4)
	if f.Wire.Packets != 10 || f.Socket.Packets != 10 || f.Matched != 10 || f.Lost != 0 || f.SocketOnly != 0 || f.Pending != 0 {
		t.Errorf("figures %+v", f)
	}
	if r, ok := f.DeliveryRatio(); !ok || r != 1 {
		t.Errorf("delivery ratio %v %v, want 1", r, ok)
	}
	if f.Wire.First != ct0 || f.Wire.Last != ct0.Add(9*time.Second) || f.Wire.MinGap != time.Second || f.Wire.MaxGap != time.Second || f.Wire.MeanGap() != time.Second || f.Wire.Gaps != 9 {
		t.Errorf("wire intervals %+v", f.Wire)
	}
	if f.Version != 2 || f.Priority != 150 || f.Interval != time.Second {
		t.Errorf("advert facts %+v", f)
	}
	if s := c.Snapshot(); s.EventCount != 0 || len(s.Events) != 0 {
		t.Errorf("events %+v", s.Events)
	}
}

func TestCorrelateNotDelivered(t *testing.T) {
	c := NewCorrelator(CorrelatorOptions{Window: 50 * time.Millisecond, Grace: 200 * time.Millisecond})
	for i := range 5 {
		c.AddWire("eth0", advert(time.Duration(i)*time.Second, uint16(100+i)), false)
	}
	// Not yet decided: the last one is still within window and grace.
	c.Advance(ct0.Add(4*time.Second + 200*time.Millisecond))
	f := flowOf(t, c, key4)
	if f.Lost != 4 || f.Pending != 1 || f.Matched != 0 {
		t.Errorf("after 4.2s: %+v", f)
	}
	if _, ok := f.DeliveryRatio(); !ok {
		t.Error("no delivery ratio after decided losses")
	}
	c.Advance(ct0.Add(4*time.Second + 251*time.Millisecond))
	f = flowOf(t, c, key4)
	if f.Lost != 5 || f.Pending != 0 || f.Socket.Packets != 0 {
		t.Errorf("after 4.251s: %+v", f)
	}
	if r, _ := f.DeliveryRatio(); r != 0 {
		t.Errorf("ratio %v, want 0", r)
	}
	s := c.Snapshot()
	if s.EventCount != 5 || len(s.Events) != 5 {
		t.Fatalf("%d events (%d kept), want 5", s.EventCount, len(s.Events))
	}
	for i, e := range s.Events {
		if e.Kind != EventNotDelivered || e.Flow != key4 || e.IPID != uint16(100+i) || !e.Time.Equal(ct0.Add(time.Duration(i)*time.Second)) || e.Checksum != 0x1234 || e.Dst != vrrpcore.GroupIPv4 {
			t.Errorf("event %d: %+v", i, e)
		}
	}
}

func TestCorrelateLookAlikes(t *testing.T) {
	// IPv6 adverts of one sender are identical; they are told apart by
	// time. Adverts 10ms apart (VRRPv3's shortest interval), the third
	// one never reaches the socket, socket timestamps a little late.
	c := NewCorrelator(CorrelatorOptions{Window: 5 * time.Millisecond})
	for i := range 6 {
		c.AddWire("eth0", advert6(time.Duration(i)*10*time.Millisecond), false)
	}
	for i := range 6 {
		if i != 2 {
			c.AddSocket("eth0", advert6(time.Duration(i)*10*time.Millisecond+time.Millisecond), false)
		}
	}
	c.Advance(ct0.Add(time.Hour))
	k := FlowKey{Interface: "eth0", VRID: 52, Family: 6, Sender: peer6, Direction: DirIn}
	f := flowOf(t, c, k)
	if f.Matched != 5 || f.Lost != 1 || f.SocketOnly != 0 {
		t.Fatalf("figures %+v", f)
	}
	s := c.Snapshot()
	if len(s.Events) != 1 || !s.Events[0].Time.Equal(ct0.Add(20*time.Millisecond)) || s.Events[0].FlowLabel != 0xabcde {
		t.Errorf("events %+v, want the advert at +20ms", s.Events)
	}
}

func TestCorrelateWindow(t *testing.T) {
	c := NewCorrelator(CorrelatorOptions{Window: 10 * time.Millisecond, Grace: 10 * time.Millisecond})
	c.AddWire("eth0", advert(0, 7), false)
	c.AddSocket("eth0", advert(11*time.Millisecond, 7), false) // too far apart
	c.AddSocket("eth0", advert(time.Millisecond, 8), false)    // other IP ID
	c.AddWire("eth1", advert(time.Millisecond, 9), false)      // other interface
	c.AddSocket("eth0", advert(time.Millisecond, 9), false)    // so no match
	c.AddSocket("eth0", advert(time.Second, 10), false)        // in time
	c.AddWire("eth0", advert(time.Second-10*time.Millisecond, 10), false)
	c.Advance(ct0.Add(time.Hour))
	f := flowOf(t, c, key4)
	if f.Matched != 1 || f.Lost != 1 || f.SocketOnly != 3 {
		t.Errorf("eth0: %+v", f)
	}
	k1 := key4
	k1.Interface = "eth1"
	if f := flowOf(t, c, k1); f.Lost != 1 {
		t.Errorf("eth1: %+v", f)
	}
}

func TestCorrelateBadChecksum(t *testing.T) {
	c := NewCorrelator(CorrelatorOptions{})
	c.AddWire("eth0", advert6(0), true)
	c.Advance(ct0.Add(time.Hour))
	s := c.Snapshot()
	if len(s.Events) != 1 || !s.Events[0].BadChecksum || s.Flows[0].Wire.BadChecksum != 1 {
		t.Errorf("snapshot %+v", s)
	}
}

func TestCorrelateSends(t *testing.T) {
	c := NewCorrelator(CorrelatorOptions{Window: 10 * time.Millisecond})
	out := func(at time.Duration) *Packet {
		p := advert(at, 1)
		p.Src, p.Direction = self4, DirOut
		return p
	}
	send := func(at time.Duration, err error) {
		c.AddSend(SendAttempt{Time: ct0.Add(at), Interface: "eth0", VRID: 51, Src: self4, Dst: vrrpcore.GroupIPv4, Err: err})
	}
	send(0, nil)
	c.AddWire("eth0", out(50*time.Microsecond), false)
	send(time.Second, syscall.EPERM)
	send(2*time.Second, syscall.EPERM)
	send(3*time.Second, nil)                     // accepted, never on the wire
	c.AddWire("eth0", out(4*time.Second), false) // someone else's send
	// The wire tap may report an advert before its sender reports the
	// attempt.
	c.AddWire("eth0", out(5*time.Second+30*time.Microsecond), false)
	send(5*time.Second, nil)
	c.Advance(ct0.Add(time.Hour))
	k := FlowKey{Interface: "eth0", VRID: 51, Family: 4, Sender: self4, Direction: DirOut}
	f := flowOf(t, c, k)
	if f.Sends != 5 || f.SendErrors != 2 || f.SentOnWire != 2 || f.SentMissing != 1 || f.Wire.Packets != 3 || f.LastSendError != "operation not permitted" {
		t.Errorf("figures %+v", f)
	}
	if _, ok := f.DeliveryRatio(); ok {
		t.Error("delivery ratio for outgoing adverts")
	}
	s := c.Snapshot()
	var kinds []EventKind
	for _, e := range s.Events {
		kinds = append(kinds, e.Kind)
	}
	if len(kinds) != 3 || kinds[0] != EventSendFailed || kinds[1] != EventSendFailed || kinds[2] != EventSentNotOnWire {
		t.Errorf("events %v", kinds)
	}
}

func TestCorrelateEventRing(t *testing.T) {
	var seen int
	c := NewCorrelator(CorrelatorOptions{MaxEvents: 3, OnEvent: func(Event) { seen++ }})
	for i := range 7 {
		c.AddWire("eth0", advert(time.Duration(i)*time.Second, uint16(i)), false)
	}
	c.Advance(ct0.Add(time.Hour))
	s := c.Snapshot()
	if s.EventCount != 7 || seen != 7 || len(s.Events) != 3 {
		t.Fatalf("%d events, %d seen, %d kept", s.EventCount, seen, len(s.Events))
	}
	for i, e := range s.Events {
		if e.IPID != uint16(4+i) {
			t.Errorf("kept event %d has IP ID %d, want %d", i, e.IPID, 4+i)
		}
	}
}

func TestCorrelateManyPending(t *testing.T) {
	// A flood the socket never gets must not make matching quadratic.
	c := NewCorrelator(CorrelatorOptions{})
	const n = 200000
	start := time.Now()
	for i := range n {
		c.AddWire("eth0", advert(time.Duration(i)*5*time.Microsecond, uint16(i)), false)
	}
	for i := 0; i < n; i += 2 {
		c.AddSocket("eth0", advert(time.Duration(i)*5*time.Microsecond, uint16(i)), false)
	}
	c.Advance(ct0.Add(time.Hour))
	if f := flowOf(t, c, key4); f.Matched+f.Lost != n || f.Pending != 0 {
		t.Errorf("figures %+v", f)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("%d packets took %v", n, d)
	}
}

// BenchmarkCorrelate is the per-packet cost of matching a wire and a
// socket sighting; it must not allocate per packet.
func BenchmarkCorrelate(b *testing.B) {
	c := NewCorrelator(CorrelatorOptions{})
	p := advert(0, 0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.Time, p.IPID = ct0.Add(time.Duration(i)*10*time.Microsecond), uint16(i)
		c.AddWire("eth0", p, false)
		c.AddSocket("eth0", p, false)
		if i%10000 == 0 {
			c.Advance(p.Time)
		}
	}
}

// TestCorrelateNotify: Notify is told of a new flow, a loss (when the
// flow's next advert comes, without Advance), a bad checksum, a flow heard
// again after a silence and a failed send; a healthy flow's adverts tell
// nothing.
func TestCorrelateNotify(t *testing.T) {
	ch := make(chan struct{}, 1)
	c := NewCorrelator(CorrelatorOptions{Window: 50 * time.Millisecond, Grace: 200 * time.Millisecond, Notify: ch})
	told := func() bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	both := func(at time.Duration, id uint16) {
		p := advert(at, id)
		c.AddWire("eth0", p, false)
		c.AddSocket("eth0", p, false)
	}
	both(0, 1)
	if !told() {
		t.Fatal("a new flow was not told")
	}
	for i := 1; i < 10; i++ {
		both(time.Duration(i)*time.Second, uint16(1+i))
	}
	if told() {
		t.Fatal("a healthy flow told something")
	}
	// Advert 11 never reaches the socket: told when advert 12 comes.
	c.AddWire("eth0", advert(10*time.Second, 11), false)
	if told() {
		t.Fatal("told before the advert could be decided lost")
	}
	both(11*time.Second, 12)
	if !told() {
		t.Fatal("a loss was not told")
	}
	if f := flowOf(t, c, key4); f.Lost != 1 || f.Matched != 11 {
		t.Errorf("lost %d matched %d, want 1 and 11 (decided without Advance)", f.Lost, f.Matched)
	}
	c.AddWire("eth0", advert(12*time.Second, 13), true)
	if !told() {
		t.Fatal("a bad checksum was not told")
	}
	c.AddSocket("eth0", advert(12*time.Second, 13), true)
	told()
	both(15*time.Second, 14) // 3 s of silence: not more than 3 intervals
	if told() {
		t.Fatal("3 s of silence at 1 s adverts told")
	}
	both(18*time.Second+time.Millisecond, 15)
	if !told() {
		t.Fatal("a flow heard again after more than 3 intervals was not told")
	}
	c.AddSend(SendAttempt{Time: ct0.Add(19 * time.Second), Interface: "eth0", VRID: 51, Src: self4, Dst: vrrpcore.GroupIPv4})
	told() // a new (outgoing) flow
	c.AddSend(SendAttempt{Time: ct0.Add(20 * time.Second), Interface: "eth0", VRID: 51, Src: self4, Dst: vrrpcore.GroupIPv4, Err: syscall.EPERM})
	if !told() {
		t.Fatal("a failed send was not told")
	}
}
