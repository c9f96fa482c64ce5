package check

import (
	"encoding/binary"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/capture"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// benchFrame is an Ethernet frame with an IPv4 VRRPv3 advert for vrid from
// src to 224.0.0.18.
func benchFrame(tb testing.TB, vrid uint8, src netip.Addr) []byte {
	tb.Helper()
	a := vrrpcore.Advert{Version: 3, Type: vrrpcore.TypeAdvertisement, VRID: vrid, Priority: 150, Interval: 100 * time.Millisecond,
		Addrs: []netip.Addr{netip.AddrFrom4([4]byte{203, 0, 113, vrid})}}
	msg, err := a.AppendBinary(nil, src, vrrpcore.GroupIPv4, vrrpcore.ChecksumPseudoHeader)
	if err != nil {
		tb.Fatal(err)
	}
	f := []byte{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00}
	ip := make([]byte, 20)
	ip[0], ip[1], ip[8], ip[9] = 0x45, 0xc0, 255, 112
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(msg)))
	s4, d4 := src.As4(), vrrpcore.GroupIPv4.As4()
	copy(ip[12:], s4[:])
	copy(ip[16:], d4[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	return append(append(f, ip...), msg...)
}

// TestWindowFillLocalByInterface: whether a sender is this node follows
// the addresses of the interface Fill is given, also when the same
// window fills instances of interfaces with other addresses (the set of
// an interface's addresses is kept between instances).
func TestWindowFillLocalByInterface(t *testing.T) {
	src := netip.MustParseAddr("198.51.100.1")
	w := &Window{o: newObservation()}
	w.o.lt = capture.LinkTypeEthernet
	fr := benchFrame(t, 7, src)
	w.Frame(&capture.WireFrame{Time: time.Now(), Direction: capture.DirOut, Data: fr, Length: len(fr)})
	ours := &Interface{Name: "eth0", Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24")}}
	other := &Interface{Name: "eth0", Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.2/24")}}
	for i, c := range []struct {
		ifc  *Interface
		src  netip.Addr
		mine bool
	}{{ours, netip.Addr{}, true}, {other, netip.Addr{}, false}, {ours, netip.Addr{}, true}, {nil, netip.Addr{}, false}, {other, src, true}} {
		in := Instance{Interface: "eth0", VRID: 7, Family: 4, SrcIP: c.src}
		w.Fill(&in, c.ifc, nil)
		if mine := in.Local != nil && in.Local.Adverts == 1 && len(in.Peers) == 0; mine != c.mine {
			t.Errorf("case %d: Local %+v, peers %+v; want this node's advert %v", i, in.Local, in.Peers, c.mine)
		}
	}
}

// BenchmarkWindowFill: one window of a busy master as the self-diagnosis
// sees it — 100 instances at 0.1 s, 15 own adverts each on the wire — and
// Fill for every instance.
func BenchmarkWindowFill(b *testing.B) {
	const n, per = 100, 15
	src := netip.MustParseAddr("198.51.100.1")
	ifc := &Interface{Name: "eth0", Exists: true, Up: true, Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24")}}
	frames := make([][]byte, n)
	for v := range n {
		frames[v] = benchFrame(b, uint8(v+1), src)
		// A master holds its virtual addresses on the interface.
		ifc.Addrs = append(ifc.Addrs, netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(v + 1)}), 24))
	}
	t0 := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		w := &Window{o: newObservation()}
		w.o.lt = capture.LinkTypeEthernet
		for k := range per {
			for v := range n {
				w.Frame(&capture.WireFrame{Time: t0.Add(time.Duration(k)*100*time.Millisecond + time.Duration(v)*time.Millisecond), Direction: capture.DirOut, Data: frames[v], Length: len(frames[v])})
			}
		}
		for v := range n {
			in := Instance{Interface: "eth0", VRID: uint8(v + 1), Family: 4, Priority: 150, AdvertInt: 0.1}
			w.Fill(&in, ifc, nil)
			if in.Local == nil || in.Local.Adverts != per {
				b.Fatalf("VRID %d: Local %+v", v+1, in.Local)
			}
		}
	}
}

// TestWindowReset: a window reset and fed other frames fills instances
// as a new window fed those frames only; the instances one window fills
// (peers, this node's adverts, send facts) share no memory.
func TestWindowReset(t *testing.T) {
	ifc := &Interface{Name: "eth0", Exists: true, Up: true, Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24")}}
	t0 := time.Now()
	type advert struct {
		vrid uint8
		src  string
	}
	feed := func(w *Window, as []advert) {
		for k := range 5 {
			for i, a := range as {
				fr := benchFrame(t, a.vrid, netip.MustParseAddr(a.src))
				at := t0.Add(time.Duration(k)*100*time.Millisecond + time.Duration(i)*time.Millisecond)
				w.Frame(&capture.WireFrame{Time: at, Direction: capture.DirIn, Data: fr, Length: len(fr)})
			}
		}
	}
	newWindow := func() *Window {
		w := &Window{o: newObservation()}
		w.o.lt = capture.LinkTypeEthernet
		return w
	}
	first := []advert{{1, "198.51.100.1"}, {1, "198.51.100.7"}, {2, "198.51.100.8"}, {2, "198.51.100.9"}, {3, "198.51.100.1"}, {4, "198.51.100.4"}}
	second := []advert{{1, "198.51.100.2"}, {1, "198.51.100.3"}, {2, "198.51.100.1"}, {2, "198.51.100.4"}, {2, "198.51.100.5"}, {3, "198.51.100.6"}}
	sends := func(vrid uint8) []capture.FlowStats {
		return []capture.FlowStats{{FlowKey: capture.FlowKey{Interface: "eth0", VRID: vrid, Family: 4, Direction: capture.DirOut}, Sends: uint64(vrid), SendErrors: 1, LastSendError: "EPERM"}}
	}
	fill := func(w *Window) []Instance {
		ins := make([]Instance, 4)
		for i := range ins {
			ins[i] = Instance{Interface: "eth0", VRID: uint8(i + 1), Family: 4, Priority: 100, AdvertInt: 0.1}
			w.Fill(&ins[i], ifc, sends(uint8(i+1)))
		}
		return ins
	}
	w := newWindow()
	for range 2 {
		feed(w, first)
		fill(w)
		w.Reset()
		feed(w, second)
		got := fill(w)
		for i := range got {
			// Each instance from a window of its own.
			fresh := newWindow()
			feed(fresh, second)
			want := Instance{Interface: "eth0", VRID: uint8(i + 1), Family: 4, Priority: 100, AdvertInt: 0.1}
			fresh.Fill(&want, ifc, sends(uint8(i+1)))
			if !reflect.DeepEqual(got[i], want) {
				t.Errorf("VRID %d after Reset:\n%+v\nfresh:\n%+v", i+1, got[i], want)
			}
		}
		if len(got[0].Peers) != 2 || len(got[1].Peers) != 2 || got[1].Local == nil || got[2].Local != nil || len(got[3].Peers) != 0 {
			t.Errorf("VRID 1 peers %+v, VRID 2 peers %+v and local %+v, VRID 3 local %+v", got[0].Peers, got[1].Peers, got[1].Local, got[2].Local)
		}
		w.Reset()
	}
}
