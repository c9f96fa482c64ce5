package watch

import (
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/capture"
	"github.com/vrrpdoctor/vrrpdoctor/diag/check"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

func inFlow(src string, wire, socket, matched, lost uint64, last time.Time) capture.FlowStats {
	return capture.FlowStats{
		FlowKey: capture.FlowKey{Interface: "eth0", VRID: 51, Family: 4, Sender: netip.MustParseAddr(src), Direction: capture.DirIn},
		Wire:    capture.TapCount{Packets: wire, Last: last}, Socket: capture.TapCount{Packets: socket, Last: last},
		Matched: matched, Lost: lost,
	}
}

func TestDeltaAndRatio(t *testing.T) {
	now := t0
	before := inFlow("198.51.100.1", 10, 10, 10, 0, now)
	after := inFlow("198.51.100.1", 14, 10, 10, 3, now.Add(4*time.Second))
	d, ok := delta(after, before)
	if !ok || d.Wire.Packets != 4 || d.Socket.Packets != 0 || d.Matched != 0 || d.Lost != 3 {
		t.Fatalf("delta %+v ok %v", d, ok)
	}
	if r := ratio(d); r != 0 {
		t.Errorf("ratio of 3 lost, none matched: %v, want 0", r)
	}
	// Nothing decided yet (the correlator waits for both taps): the
	// socket's share of the wire's adverts, at most 1.
	if r := ratio(inFlow("198.51.100.1", 4, 5, 0, 0, now)); r != 1 {
		t.Errorf("undecided, socket ahead: %v, want 1", r)
	}
	if r := ratio(inFlow("198.51.100.1", 0, 0, 0, 0, now)); r != -1 {
		t.Errorf("nothing on the wire: %v, want -1", r)
	}
	if r := ratio(inFlow("198.51.100.1", 4, 4, 3, 1, now)); r != 0.75 {
		t.Errorf("3 matched, 1 lost: %v, want 0.75", r)
	}
	if _, ok := delta(after, after); ok {
		t.Error("a window without adverts is a flow change")
	}
}

// TestNoteSendCounts: the speaker's attempts are counted per instance and
// window, failures with the latest error; attempts of other instances
// are ignored; the window's accepted attempts are compared by count with
// this node's adverts on the wire.
func TestNoteSendCounts(t *testing.T) {
	w := &Watcher{sends: map[vrSlot][]*sendCount{}}
	w.countSends("eth0", 51, 4, time.Second)
	w.countSends("eth0", 52, 6, time.Second)
	w.countSends("eth0", 51, 4, time.Second) // a second instance of the virtual router
	w.countSends("eth1", 52, 4, time.Second)
	src4, src6 := netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("fe80::2")
	group := netip.MustParseAddr("224.0.0.18")
	for range 5 {
		w.NoteSend(capture.SendAttempt{Interface: "eth0", VRID: 51, Src: src4, Dst: group})
	}
	w.NoteSend(capture.SendAttempt{Interface: "eth0", VRID: 51, Src: src4, Dst: group, Err: syscall.EPERM})
	w.NoteSend(capture.SendAttempt{Interface: "eth0", VRID: 52, Src: src4, Dst: group}) // VRID 52 is IPv6
	w.NoteSend(capture.SendAttempt{Interface: "eth1", VRID: 51, Src: src4, Dst: group})
	w.NoteSend(capture.SendAttempt{Interface: "eth0", VRID: 52, Src: src6, Dst: netip.MustParseAddr("ff02::12")})
	fs := w.sendFlows()
	if len(fs) != 1 || len(fs["eth0"]) != 2 {
		t.Fatalf("flows %+v", fs)
	}
	for _, f := range fs["eth0"] {
		switch {
		case f.VRID == 51 && f.Family == 4 && f.Direction == capture.DirOut:
			if f.Sends != 6 || f.SendErrors != 1 || f.LastSendError != syscall.EPERM.Error() {
				t.Errorf("VRID 51: %+v", f)
			}
		case f.VRID == 52 && f.Family == 6:
			if f.Sends != 1 || f.SendErrors != 0 {
				t.Errorf("VRID 52: %+v", f)
			}
		default:
			t.Errorf("unexpected flow %+v", f)
		}
	}
	// The next window counts only its own attempts.
	w.NoteSend(capture.SendAttempt{Interface: "eth0", VRID: 51, Src: src4, Dst: group})
	fs = w.sendFlows()
	if len(fs["eth0"]) != 1 || fs["eth0"][0].Sends != 1 || fs["eth0"][0].SendErrors != 0 {
		t.Errorf("second window: %+v", fs)
	}
	if fs = w.sendFlows(); len(fs) != 0 {
		t.Errorf("window without attempts: %+v", fs)
	}

	in := &check.Instance{Sends: &check.SendFacts{Attempts: 6, Failed: 1}, Local: &check.Advertiser{Adverts: 4}}
	sendsOnWire(in)
	if in.Sends.OnWire != 4 || in.Sends.Missing != 1 {
		t.Errorf("5 accepted, 4 on the wire: %+v", in.Sends)
	}
	in = &check.Instance{Sends: &check.SendFacts{Attempts: 3, Failed: 3}}
	sendsOnWire(in)
	if in.Sends.OnWire != 0 || in.Sends.Missing != 0 {
		t.Errorf("all refused: %+v", in.Sends)
	}
}

// TestReadHeldSkipsLinkDumpWhileNoVIPMoved: the addresses held are read
// in full (check.HeldAddrs) again only when a virtual address is on
// another interface than at the last full reading, or unchangedEvery
// passed. It reads this host's addresses, read-only: 127.0.0.1 is on lo,
// 203.0.113.77 nowhere.
func TestReadHeldSkipsLinkDumpWhileNoVIPMoved(t *testing.T) {
	lo, none := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("203.0.113.77")
	w := &Watcher{base: []check.Instance{{Interface: "lo", VRID: 51, Family: 4, VIPs: []netip.Addr{lo, none}}}, vipList: []netip.Addr{lo, none}}
	w.held = make([][]check.HeldAddr, 1)
	report := func() *check.Report { return &check.Report{Instances: slices.Clone(w.base)} }
	onLo := []check.HeldAddr{{Addr: lo, Interface: "lo"}}
	now := t0
	w.readHeld(nil, now)
	if !w.heldFresh || !slices.Equal(w.held[0], onLo) || len(w.heldLinks) != 2 || w.heldLinks[0] == 0 || w.heldLinks[1] != 0 {
		t.Fatalf("first reading: fresh %v, held %v, links %v", w.heldFresh, w.held[0], w.heldLinks)
	}
	// A marker only a reused reading keeps.
	marker := []check.HeldAddr{{Addr: lo, Interface: "marker"}}
	w.held[0] = marker
	r := report()
	if changed := w.readHeld(r, now.Add(time.Second)); changed || !slices.Equal(r.Instances[0].Held, marker) {
		t.Errorf("nothing moved: changed %v, held %v; want the last reading", changed, r.Instances[0].Held)
	}
	// As if 127.0.0.1 had been held nowhere at the last full reading.
	w.heldLinks[0] = 0
	r = report()
	if changed := w.readHeld(r, now.Add(2*time.Second)); !changed || len(r.Instances[0].Held) != 0 || !slices.Equal(w.held[0], onLo) {
		t.Errorf("after a move: changed %v, held %v (at both ends), now %v; want read again", changed, r.Instances[0].Held, w.held[0])
	}
	w.held[0] = marker
	if w.readHeld(report(), now.Add(3*time.Second)); !slices.Equal(w.held[0], marker) {
		t.Errorf("read again without a move")
	}
	if w.readHeld(report(), now.Add(3*time.Second+unchangedEvery)); !slices.Equal(w.held[0], onLo) {
		t.Errorf("not read again after %v", unchangedEvery)
	}
}

// TestOpenTapsBackoff: taps that cannot open (no such interface) are tried
// again after one window, then two, four, ... up to a minute.
func TestOpenTapsBackoff(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: without CAP_NET_RAW opening a tap is a permission error, which ends the watch")
	}
	w := &Watcher{window: w, procDir: "/proc", ifaces: []string{"vd-no-such-if"}, taps: map[string]*tap{}, retry: map[string]retry{}, log: slog.New(slog.DiscardHandler)}
	var tries []int
	for k := range 40 {
		now := t0.Add(time.Duration(k) * w.window)
		before := w.retry["vd-no-such-if"].at
		if err := w.openTaps(now); err != nil {
			t.Fatal(err)
		}
		if w.retry["vd-no-such-if"].at != before {
			tries = append(tries, k)
		}
	}
	// Window 4 s: waits of 4, 8, 16, 32, 60, 60 ... seconds.
	if want := []int{0, 1, 3, 7, 15, 30}; !slices.Equal(tries[:min(len(tries), 6)], want) {
		t.Errorf("tried in windows %v, want %v...", tries, want)
	}
	if len(w.taps) != 0 {
		t.Errorf("taps %v", w.taps)
	}
}

func TestUpdateFlowsBounded(t *testing.T) {
	w := &Watcher{window: w, flows: map[flowKey]*Flow{}}
	now := t0
	var snap []capture.FlowStats
	for i := range maxFlows + 10 {
		src := netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}).String()
		snap = append(snap, inFlow(src, 5, 5, 5, 0, now.Add(time.Duration(i)*time.Millisecond)))
	}
	w.updateFlows(now, map[string]*windowData{"eth0": {snap: snap, flows: snap}})
	fs := w.Flows()
	if len(fs) != maxFlows {
		t.Fatalf("%d flows, want at most %d", len(fs), maxFlows)
	}
	// The most recently seen are kept.
	if fs[0].Src.String() != "198.51.100.11" || fs[0].Wire != 5 || fs[0].DeliveryRatio != 1 {
		t.Errorf("first flow kept %+v", fs[0])
	}
	// A flow silent for longer than flowExpiry windows goes, even while
	// the correlator still lists it; one that goes on stays.
	later := now.Add(flowExpiry*w.window + time.Second)
	snap[1] = inFlow("198.51.100.2", 9, 5, 5, 4, later)
	w.updateFlows(later, map[string]*windowData{"eth0": {snap: snap, flows: []capture.FlowStats{inFlow("198.51.100.2", 4, 0, 0, 4, later)}}})
	fs = w.Flows()
	if len(fs) != 1 || fs[0].Src.String() != "198.51.100.2" || fs[0].DeliveryRatio != 0 || fs[0].Wire != 9 || fs[0].Socket != 5 {
		t.Errorf("after expiry: %+v", fs)
	}
}

// TestSentFacts: what the accepted attempts carried becomes the window's
// A speaker sending keepalived's pre-1.3.6 unicast checksum has its
// adverts counted as old_unicast in its local facts, as the wire tap
// counts them, not as pseudo-header ones.
func TestSentFactsOldUnicast(t *testing.T) {
	w := &Watcher{sends: map[vrSlot][]*sendCount{}, window: time.Second}
	w.countSends("eth0", 51, 4, time.Second)
	w.sizeSendTimes()
	src, peer := netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.3")
	t0 := time.Unix(1000, 0)
	for i := range 4 {
		kind := vrrpcore.ChecksumOldUnicast
		if i == 0 {
			kind = vrrpcore.ChecksumPseudoHeader // before the switch
		}
		w.NoteSend(capture.SendAttempt{Time: t0.Add(time.Duration(i) * time.Second), Interface: "eth0", VRID: 51, Src: src, Dst: peer,
			Priority: 150, Version: 3, Interval: time.Second, Checksum: kind, TTL: 255})
	}
	tp := &tap{name: "eth0", out: [2]*capture.OutCounter{{}, nil}, counted: [2]bool{true, false}, onWire: [2]uint64{4, 0}}
	w.sendFlows()
	w.onWireShares(tp)
	s := w.sentFacts(&check.Instance{Interface: "eth0", VRID: 51, Family: 4})
	if s == nil || s.Adverts != 4 || s.Checksum != (check.ChecksumCounts{PseudoHeader: 1, OldUnicast: 3}) {
		t.Fatalf("local facts %+v", s)
	}
}

// Local facts (check.Sent), as far as the advert counter saw them reach
// the device; the counter's count is shared out per interface and family.
func TestSentFacts(t *testing.T) {
	w := &Watcher{sends: map[vrSlot][]*sendCount{}, window: time.Second}
	w.countSends("eth0", 51, 4, 100*time.Millisecond)
	w.countSends("eth0", 52, 4, time.Second)
	w.countSends("eth0", 53, 6, time.Second)
	w.sizeSendTimes()
	if n := len(w.sends[vrSlot{51, 4}][0].times); n != 64 {
		t.Errorf("VRID 51's ring of send times: %d, want 64", n)
	}
	src, src6 := netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("fe80::2")
	group, peer := netip.MustParseAddr("224.0.0.18"), netip.MustParseAddr("198.51.100.3")
	t0 := time.Unix(1000, 0)
	send := func(vrid uint8, at time.Duration, prio uint8, dst netip.Addr, err error) {
		a := capture.SendAttempt{Time: t0.Add(at), Interface: "eth0", VRID: vrid, Src: src, Dst: dst, Err: err,
			Priority: prio, Version: 3, Interval: 100 * time.Millisecond, Checksum: vrrpcore.ChecksumPseudoHeader, TTL: 255}
		if vrid == 53 {
			a.Src = src6
		}
		if vrid == 52 {
			a.Version, a.Checksum = 2, vrrpcore.ChecksumMessage
		}
		w.NoteSend(a)
	}
	for i := range 6 {
		send(51, time.Duration(i)*100*time.Millisecond, 150, group, nil)
	}
	send(51, 650*time.Millisecond, 150, group, syscall.EPERM) // refused: not on the wire
	send(51, 700*time.Millisecond, 0, peer, nil)              // resigned, to another destination
	send(52, 0, 100, group, nil)
	send(52, time.Second, 100, group, nil)
	for range 3 {
		send(53, 0, 100, group, nil)
	}
	tp := &tap{name: "eth0", out: [2]*capture.OutCounter{{}, nil}, counted: [2]bool{true, false}, onWire: [2]uint64{6, 0}}
	w.sendFlows()
	w.onWireShares(tp)
	// 9 accepted over IPv4, 6 reached the device: 7 and 2 shared as 4
	// and 1, and the one left by rounding down to the first.
	for _, c := range []struct {
		vrid, family uint8
		want         uint64
	}{{51, 4, 5}, {52, 4, 1}, {53, 6, 3}} {
		if got := w.sends[vrSlot{c.vrid, c.family}][0].onWire; got != c.want {
			t.Errorf("VRID %d: %d on the wire, want %d", c.vrid, got, c.want)
		}
	}
	in := &check.Instance{Interface: "eth0", VRID: 51, Family: 4}
	s := w.sentFacts(in)
	if s == nil || s.Adverts != 5 || s.Resigned != 1 || s.Priority != 0 || s.Address != src || !slices.Equal(s.Versions, []int{3}) ||
		s.Checksum.PseudoHeader != 5 || s.Checksum.Message != 0 || s.Interval != 100*time.Millisecond || s.TTL != 255 ||
		!slices.Equal(s.Dsts, []netip.Addr{group, peer}) || !s.First.Equal(t0) || !s.Last.Equal(t0.Add(700*time.Millisecond)) || len(s.Times) != 6 {
		t.Errorf("VRID 51: %+v", s)
	}
	if s := w.sentFacts(&check.Instance{Interface: "eth0", VRID: 52, Family: 4}); s == nil || s.Checksum.Message != 1 || !slices.Equal(s.Versions, []int{2}) {
		t.Errorf("VRID 52: %+v", s)
	}

	// More on the wire than accepted: the rest is credited to the next
	// window (up to two per instance).
	send(51, 2*time.Second, 150, group, nil)
	tp.onWire = [2]uint64{5, 0}
	w.sendFlows()
	w.onWireShares(tp)
	if got := w.sends[vrSlot{51, 4}][0].onWire; got != 1 || tp.credit[0] != 4 {
		t.Errorf("more on the wire: VRID 51 %d on the wire, credit %d; want 1 and 4", got, tp.credit[0])
	}
	if s := w.sentFacts(&check.Instance{Interface: "eth0", VRID: 52, Family: 4}); s != nil {
		t.Errorf("VRID 52 sent nothing: %+v", s)
	}
	send(51, 3*time.Second, 150, group, nil)
	tp.onWire = [2]uint64{0, 0}
	w.sendFlows()
	w.onWireShares(tp)
	if got := w.sends[vrSlot{51, 4}][0].onWire; got != 1 || tp.credit[0] != 3 {
		t.Errorf("credited: VRID 51 %d on the wire, credit %d; want 1 and 3", got, tp.credit[0])
	}
	if s := w.sentFacts(in); s == nil || len(s.Times) != 1 || !s.Times[0].Equal(t0.Add(3*time.Second)) || !s.First.Equal(s.Times[0]) {
		t.Errorf("second window's times: %+v", s)
	}
	if n := testing.AllocsPerRun(100, func() { send(51, 4*time.Second, 150, group, nil) }); n != 0 {
		t.Errorf("NoteSend: %.1f allocations", n)
	}
}

// TestOnWireSharesCountedPart: when the advert counter counted only the
// end of a window (a quiet one), each instance's share of the counted part
// stands for the whole window; a window the counter did not count at all
// takes every accepted advert as on the wire.
func TestOnWireSharesCountedPart(t *testing.T) {
	w := &Watcher{sends: map[vrSlot][]*sendCount{}, window: time.Second}
	w.countSends("eth0", 51, 4, time.Second)
	w.countSends("eth0", 52, 4, time.Second)
	w.sizeSendTimes()
	send := func(vrid uint8, n int) {
		for range n {
			w.NoteSend(capture.SendAttempt{Time: time.Unix(1000, 0), Interface: "eth0", VRID: vrid,
				Src: netip.MustParseAddr("198.51.100.2"), Priority: 150, Version: 3, Interval: time.Second})
		}
	}
	onWire := func(vrid uint8) uint64 { return w.sends[vrSlot{vrid, 4}][0].onWire }
	tp := &tap{name: "eth0", out: [2]*capture.OutCounter{{}, nil}}
	// cut ends a window whose IPv4 counter counted (or not) and saw seen
	// adverts reach the device.
	cut := func(counted bool, seen uint64) {
		w.sendFlows()
		tp.counted, tp.onWire = [2]bool{counted, false}, [2]uint64{seen, 0}
		w.onWireShares(tp)
	}

	// Before the counter counts: 20 and 10 accepted; then it counts 4 of
	// VRID 51's and 2 of VRID 52's, and sees 3 of them reach the device.
	send(51, 20)
	send(52, 10)
	w.countFrom("eth0", 4)
	send(51, 4)
	send(52, 2)
	cut(true, 3)
	// 3 of 6 counted: 2 of VRID 51's 4, 1 of VRID 52's 2; half of each
	// one's window.
	if a, b := onWire(51), onWire(52); a != 12 || b != 6 {
		t.Errorf("counted part short by 3: on the wire %d and %d, want 12 and 6", a, b)
	}

	// None of the counted part reached the device: none of the window.
	send(51, 9)
	w.countFrom("eth0", 4)
	send(51, 3)
	send(52, 1)
	cut(true, 0)
	if a, b := onWire(51), onWire(52); a != 0 || b != 0 {
		t.Errorf("none counted on the wire: %d and %d, want 0 and 0", a, b)
	}

	// All the counted part reached the device.
	send(51, 5)
	cut(true, 5)
	if a, b := onWire(51), onWire(52); a != 5 || b != 0 {
		t.Errorf("all counted on the wire: %d and %d, want 5 and 0", a, b)
	}

	// Not counted at all: what was accepted counts as on the wire, even
	// with a count of 0.
	send(51, 7)
	cut(false, 0)
	if a := onWire(51); a != 7 {
		t.Errorf("not counted: %d on the wire, want 7", a)
	}
}
