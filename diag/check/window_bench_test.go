package check

import (
	"encoding/binary"
	"net/netip"
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
