package capture

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/net/bpf"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// testFrame builds an Ethernet frame carrying an IP packet of protocol
// proto from src to dst, behind the given VLAN tags (TPIDs from tpids, VLAN
// IDs 10, 11, ...). A nil payload is a VRRPv3 advert for VRID 51.
func testFrame(t *testing.T, tpids []layers.EthernetType, src, dst netip.Addr, proto layers.IPProtocol, payload []byte) []byte {
	t.Helper()
	if payload == nil {
		payload = advertBytes(t, 51, src, dst)
	}
	var ls []gopacket.SerializableLayer
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{1, 0, 0x5e, 0, 0, 0x12}}
	ls = append(ls, eth)
	next := &eth.EthernetType
	for i, tpid := range tpids {
		*next = tpid
		tag := &layers.Dot1Q{VLANIdentifier: uint16(10 + i)}
		ls = append(ls, tag)
		next = &tag.Type
	}
	if src.Is4() {
		*next = layers.EthernetTypeIPv4
		ls = append(ls, &layers.IPv4{Version: 4, IHL: 5, TTL: 255, Protocol: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()})
	} else {
		*next = layers.EthernetTypeIPv6
		ls = append(ls, &layers.IPv6{Version: 6, HopLimit: 255, NextHeader: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()})
	}
	ls = append(ls, gopacket.Payload(payload))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// advertBytes returns a VRRPv3 advert for vrid from src to dst.
func advertBytes(t *testing.T, vrid uint8, src, dst netip.Addr) []byte {
	t.Helper()
	vip := netip.MustParseAddr("198.51.100.100")
	if src.Is6() {
		vip = netip.MustParseAddr("2001:db8::100")
	}
	a := vrrpcore.Advert{Version: 3, VRID: vrid, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{vip}}
	b, err := a.AppendBinary(nil, src, dst, vrrpcore.ChecksumPseudoHeader)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWireFilter(t *testing.T) {
	var (
		a4, b4, c4 = netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.3")
		g4         = netip.MustParseAddr("224.0.0.18")
		a6, b6, c6 = netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"), netip.MustParseAddr("2001:db8::3")
		g6         = netip.MustParseAddr("ff02::12")
		vrrp       = layers.IPProtocol(112)
		udp        = layers.IPProtocolUDP
		q          = layers.EthernetTypeDot1Q
		ad         = layers.EthernetTypeQinQ // 0x88a8
		old        = layers.EthernetType(0x9100)
	)
	type frame struct {
		name     string
		tpids    []layers.EthernetType
		src, dst netip.Addr
		proto    layers.IPProtocol
	}
	frames := []frame{
		{"v4 multicast", nil, a4, g4, vrrp},
		{"v4 udp", nil, a4, g4, udp},
		{"v4 unicast to peer", nil, c4, b4, vrrp},
		{"v4 dot1q", []layers.EthernetType{q}, a4, g4, vrrp},
		{"v4 qinq", []layers.EthernetType{ad, q}, a4, g4, vrrp},
		{"v4 old qinq", []layers.EthernetType{old, q}, c4, g4, vrrp},
		{"v4 three tags", []layers.EthernetType{q, q, q}, a4, g4, vrrp},
		{"v4 dot1q udp", []layers.EthernetType{q}, a4, g4, udp},
		{"v6 multicast", nil, a6, g6, vrrp},
		{"v6 udp", nil, a6, g6, udp},
		{"v6 dot1q", []layers.EthernetType{q}, c6, g6, vrrp},
		{"v6 unicast to peer", nil, c6, b6, vrrp},
		{"v6 qinq from peer", []layers.EthernetType{ad, q}, a6, g6, vrrp},
	}
	for _, tc := range []struct {
		name  string
		peers []netip.Addr
		want  map[string]bool
	}{
		{"all", nil, map[string]bool{
			"v4 multicast": true, "v4 unicast to peer": true, "v4 dot1q": true, "v4 qinq": true, "v4 old qinq": true,
			"v6 multicast": true, "v6 dot1q": true, "v6 unicast to peer": true, "v6 qinq from peer": true,
		}},
		{"peers", []netip.Addr{a4, b4, a6, b6}, map[string]bool{
			"v4 multicast": true, "v4 unicast to peer": true, "v4 dot1q": true, "v4 qinq": true,
			"v6 multicast": true, "v6 unicast to peer": true, "v6 qinq from peer": true,
		}},
		{"v4 peer only", []netip.Addr{netip.MustParseAddr("::ffff:198.51.100.3")}, map[string]bool{
			"v4 unicast to peer": true, "v4 old qinq": true,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := wireFilter(false, tc.peers, 1234, dirAny, 0)
			if err != nil {
				t.Fatal(err)
			}
			ins, ok := bpf.Disassemble(raw)
			if !ok {
				t.Fatal("filter does not disassemble")
			}
			vm, err := bpf.NewVM(ins)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range frames {
				data := testFrame(t, f.tpids, f.src, f.dst, f.proto, nil)
				n, err := vm.Run(data)
				if err != nil {
					t.Fatalf("%s: %v", f.name, err)
				}
				want := 0
				if tc.want[f.name] {
					want = 1234
				}
				if n != want {
					t.Errorf("%s: filter returned %d, want %d", f.name, n, want)
				}
			}
			// Frames cut short before the protocol field are refused;
			// the filter never reads past the end (the decoder reports
			// what is cut short after it).
			full := testFrame(t, []layers.EthernetType{q}, a4, g4, vrrp, nil)
			for l := 0; l < 18+10; l++ {
				if n, err := vm.Run(full[:l]); err != nil || n != 0 {
					t.Errorf("frame cut to %d bytes: got %d, %v; want 0", l, n, err)
				}
			}
		})
	}
}

func TestWireFilterLimits(t *testing.T) {
	var peers []netip.Addr
	for i := range MaxFilterPeers {
		peers = append(peers, netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i+1)))
	}
	if _, err := wireFilter(false, peers, 100, dirAny, 0); err != nil {
		t.Errorf("%d IPv6 peers: %v", len(peers), err)
	}
	if _, err := wireFilter(false, append(peers, netip.MustParseAddr("198.51.100.1")), 100, dirAny, 0); err == nil {
		t.Errorf("%d peers accepted", len(peers)+1)
	}
	if _, err := wireFilter(true, []netip.Addr{{}}, 100, dirAny, 0); err == nil {
		t.Error("invalid peer accepted")
	}
	if _, err := wireFilter(true, nil, 100, dirAny, 0); err != nil {
		t.Errorf("cooked filter: %v", err)
	}
}

// TestWireFilterFamilyAndDirection runs the family restriction in the
// BPF VM; the direction test (SKF_AD_PKTTYPE, which the VM lacks) is
// checked for its place here and in the kernel by TestOutCounterLab.
func TestWireFilterFamilyAndDirection(t *testing.T) {
	v4 := testFrame(t, nil, netip.MustParseAddr("198.51.100.1"), vrrpcore.GroupIPv4, 112, nil)
	v6 := testFrame(t, nil, netip.MustParseAddr("2001:db8::1"), vrrpcore.GroupIPv6, 112, nil)
	for _, tc := range []struct {
		family       uint8
		want4, want6 int
	}{{0, 9, 9}, {4, 9, 0}, {6, 0, 9}} {
		raw, err := wireFilter(false, nil, 9, dirAny, tc.family)
		if err != nil {
			t.Fatal(err)
		}
		ins, _ := bpf.Disassemble(raw)
		vm, err := bpf.NewVM(ins)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []struct {
			data []byte
			want int
		}{{v4, tc.want4}, {v6, tc.want6}} {
			if n, err := vm.Run(f.data); err != nil || n != f.want {
				t.Errorf("family %d: filter returned %d, %v; want %d", tc.family, n, err, f.want)
			}
		}
	}
	if _, err := wireFilter(false, nil, 9, dirAny, 5); err == nil {
		t.Error("family 5 accepted")
	}
	for _, tc := range []struct{ dir dirFilter }{{dirNotOutgoing}, {dirOutgoingOnly}} {
		raw, err := wireFilter(true, nil, 9, tc.dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		ins, _ := bpf.Disassemble(raw)
		if ins[0] != (bpf.LoadExtension{Num: bpf.ExtType}) {
			t.Errorf("direction %d: first instruction %v, want the packet type's load", tc.dir, ins[0])
		}
		if j, ok := ins[1].(bpf.JumpIf); !ok || j.Val != 4 /* PACKET_OUTGOING */ {
			t.Errorf("direction %d: second instruction %v", tc.dir, ins[1])
		}
	}
}
