package capture

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// Real frames from vrrpcore/testdata/keepalived/eth.pcap (keepalived 2.2.7
// in a namespace lab, see make.sh there).
const (
	// VRRPv3 IPv4, vrid 53, prio 200, 50 cs, three VIPs, IP ID 1.
	frameV3IPv4 = "01005e000012366eb027b832080045c0002800010000ff70b05dc6336401e00000123135c80300327b61c6336435c6336499c63364fd"
	// VRRPv2 IPv4, vrid 51, auth PASS "vrrpdoc".
	frameV2Auth = "01005e000012366eb027b832080045c0002c00010000ff70b059c6336401e00000122133960201014244c6336433c633649776727270646f6300"
	// VRRPv3 IPv6, vrid 55, flow label 0xf249e.
	frameV3IPv6 = "333300000012366eb027b83286dd6c0f249e002870fffe80000000000000346eb0fffe27b832ff020000000000000000000000000012" +
		"31376e020064694520010db800050000000000000000005520010db8000500000000000000000155"
)

var keepalivedMAC = [6]byte{0x36, 0x6e, 0xb0, 0x27, 0xb8, 0x32}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Frames derived from the real ones: link headers swapped or tags
// inserted, the IP packet untouched unless a test says otherwise.

func withVLAN(frame []byte, tags ...uint32) []byte {
	out := append([]byte(nil), frame[:12]...)
	for _, tag := range tags { // TPID<<16 | TCI
		out = binary.BigEndian.AppendUint32(out, tag)
	}
	return append(out, frame[12:]...)
}

func rawIP(frame []byte) []byte { return frame[14:] }

func sllFrame(frame []byte, packetType uint16, addrLen uint16) []byte {
	h := make([]byte, 16)
	binary.BigEndian.PutUint16(h[0:2], packetType)
	binary.BigEndian.PutUint16(h[2:4], 1) // ARPHRD_ETHER
	binary.BigEndian.PutUint16(h[4:6], addrLen)
	copy(h[6:14], frame[6:12])
	copy(h[14:16], frame[12:14])
	return append(h, frame[14:]...)
}

// sll2Frame puts the Ethernet frame's payload behind a Linux cooked v2
// header (protocol, reserved, ifindex 2, ARPHRD_ETHER, packet type,
// address length 6, the source MAC padded to 8 bytes).
func sll2Frame(frame []byte, packetType uint8) []byte {
	h := make([]byte, 20)
	copy(h[0:2], frame[12:14])
	binary.BigEndian.PutUint32(h[4:8], 2)
	binary.BigEndian.PutUint16(h[8:10], 1)
	h[10], h[11] = packetType, 6
	copy(h[12:18], frame[6:12])
	return append(h, frame[14:]...)
}

func TestDecodeLinkTypes(t *testing.T) {
	eth := unhex(t, frameV3IPv4)
	eth6 := unhex(t, frameV3IPv6)
	src4, dst4 := netip.MustParseAddr("198.51.100.1"), vrrpcore.GroupIPv4
	src6 := netip.MustParseAddr("fe80::346e:b0ff:fe27:b832")
	tests := []struct {
		name   string
		lt     LinkType
		frame  []byte
		dir    Direction
		vlan   uint16
		hasMAC bool
		v6     bool
	}{
		{"ethernet", LinkTypeEthernet, eth, DirUnknown, 0, true, false},
		{"ethernet IPv6", LinkTypeEthernet, eth6, DirUnknown, 0, true, true},
		{"802.1Q", LinkTypeEthernet, withVLAN(eth, 0x8100_200a), DirUnknown, 10, true, false},
		{"802.1Q priority bits", LinkTypeEthernet, withVLAN(eth6, 0x8100_e0c8), DirUnknown, 200, true, true},
		{"QinQ 802.1ad", LinkTypeEthernet, withVLAN(eth, 0x88a8_012c, 0x8100_0014), DirUnknown, 20, true, false},
		{"QinQ double 802.1Q", LinkTypeEthernet, withVLAN(eth, 0x8100_012c, 0x8100_0fff), DirUnknown, 4095, true, false},
		{"raw 101 IPv4", LinkTypeRaw, rawIP(eth), DirUnknown, 0, false, false},
		{"raw 101 IPv6", LinkTypeRaw, rawIP(eth6), DirUnknown, 0, false, true},
		{"DLT_RAW 12", LinkType(12), rawIP(eth), DirUnknown, 0, false, false},
		{"DLT_RAW 14", LinkType(14), rawIP(eth6), DirUnknown, 0, false, true},
		{"LINKTYPE_IPV4", LinkTypeIPv4, rawIP(eth), DirUnknown, 0, false, false},
		{"LINKTYPE_IPV6", LinkTypeIPv6, rawIP(eth6), DirUnknown, 0, false, true},
		{"SLL outgoing", LinkTypeLinuxSLL, sllFrame(eth, 4, 6), DirOut, 0, true, false},
		{"SLL multicast", LinkTypeLinuxSLL, sllFrame(eth6, 2, 6), DirIn, 0, true, true},
		{"SLL host", LinkTypeLinuxSLL, sllFrame(eth, 0, 6), DirIn, 0, true, false},
		{"SLL broadcast", LinkTypeLinuxSLL, sllFrame(eth, 1, 6), DirIn, 0, true, false},
		{"SLL otherhost", LinkTypeLinuxSLL, sllFrame(eth, 3, 6), DirIn, 0, true, false},
		{"SLL loopback", LinkTypeLinuxSLL, sllFrame(eth, 5, 6), DirUnknown, 0, true, false},
		{"SLL long address", LinkTypeLinuxSLL, sllFrame(eth, 2, 20), DirIn, 0, false, false},
		{"SLL no address", LinkTypeLinuxSLL, sllFrame(eth, 4, 0), DirOut, 0, false, false},
		{"SLL2 outgoing", LinkTypeLinuxSLL2, sll2Frame(eth, 4), DirOut, 0, true, false},
		{"SLL2 multicast IPv6", LinkTypeLinuxSLL2, sll2Frame(eth6, 2), DirIn, 0, true, true},
		{"SLL2 with 802.1Q", LinkTypeLinuxSLL2, sll2Frame(withVLAN(eth, 0x8100_0007), 2), DirIn, 7, true, false},
	}
	d := NewDecoder()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !SupportsLinkType(tt.lt) {
				t.Fatalf("SupportsLinkType(%d) = false", tt.lt)
			}
			var p Packet
			if err := d.Decode(tt.lt, tt.frame, &p); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if p.Direction != tt.dir || p.VLAN != tt.vlan || p.HasMAC != tt.hasMAC {
				t.Errorf("Direction %v VLAN %d HasMAC %v, want %v %d %v", p.Direction, p.VLAN, p.HasMAC, tt.dir, tt.vlan, tt.hasMAC)
			}
			if tt.hasMAC && p.SrcMAC != keepalivedMAC {
				t.Errorf("SrcMAC %x, want %x", p.SrcMAC, keepalivedMAC)
			}
			if !tt.hasMAC && p.SrcMAC != [6]byte{} {
				t.Errorf("SrcMAC %x without a MAC", p.SrcMAC)
			}
			if tt.v6 {
				if p.Family != 6 || p.Src != src6 || p.Dst != vrrpcore.GroupIPv6 || p.TTL != 255 || p.FlowLabel != 0xf249e || p.IPID != 0 ||
					p.Length != 40 || p.Advert.VRID != 55 || p.Advert.Checksummed != vrrpcore.ChecksumPseudoHeader || len(p.Advert.Addrs) != 2 {
					t.Errorf("IPv6 packet %+v", p)
				}
				return
			}
			if p.Family != 4 || p.Src != src4 || p.Dst != dst4 || p.TTL != 255 || p.IPID != 1 || p.FlowLabel != 0 ||
				p.Length != 20 || p.Advert.VRID != 53 || p.Advert.Priority != 200 || p.Advert.Checksummed != vrrpcore.ChecksumPseudoHeader ||
				len(p.Advert.Addrs) != 3 || p.Advert.Addrs[2] != netip.MustParseAddr("198.51.100.253") {
				t.Errorf("IPv4 packet %+v", p)
			}
		})
	}
}

// The test's SLL2 header is laid out as LINKTYPE_LINUX_SLL2 specifies, as
// in the real capture testdata/captures/v2-split-brain-sll2.pcap.
func TestSLL2Frame(t *testing.T) {
	want := unhex(t, "0800 0000 00000002 0001 04 06 366eb027b832 0000")
	if got := sll2Frame(unhex(t, frameV3IPv4), 4)[:20]; !bytes.Equal(got, want) {
		t.Errorf("header % x, want % x", got, want)
	}
}

// Link header details: address lengths other than 6 give no MAC, the
// pre-standard QinQ TPID 0x9100 is a tag like 802.1ad's.
func TestDecodeLinkHeaders(t *testing.T) {
	eth := unhex(t, frameV3IPv4)
	sll2Addr8 := sll2Frame(eth, 0)
	sll2Addr8[11] = 8
	d := NewDecoder()
	for _, tt := range []struct {
		name   string
		lt     LinkType
		frame  []byte
		vlan   uint16
		hasMAC bool
	}{
		{"SLL2 8-byte address", LinkTypeLinuxSLL2, sll2Addr8, 0, false},
		{"QinQ 0x9100", LinkTypeEthernet, withVLAN(eth, 0x9100_0064, 0x8100_0065), 101, true},
		{"three tags", LinkTypeEthernet, withVLAN(eth, 0x88a8_0001, 0x9100_0002, 0x8100_0003), 3, true},
	} {
		var p Packet
		if err := d.Decode(tt.lt, tt.frame, &p); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if p.VLAN != tt.vlan || p.HasMAC != tt.hasMAC || p.Advert.VRID != 53 {
			t.Errorf("%s: VLAN %d HasMAC %v VRID %d, want %d %v 53", tt.name, p.VLAN, p.HasMAC, p.Advert.VRID, tt.vlan, tt.hasMAC)
		}
	}
}

func TestDecodeNotVRRP(t *testing.T) {
	eth := unhex(t, frameV3IPv4)
	udp := append([]byte(nil), eth...)
	udp[14+9] = 17 // UDP
	tests := []struct {
		name  string
		lt    LinkType
		frame []byte
	}{
		{"empty ethernet", LinkTypeEthernet, nil},
		{"short ethernet", LinkTypeEthernet, eth[:10]},
		// ARP who-has from keepalived's gratuitous ARP (same lab).
		{"arp", LinkTypeEthernet, unhex(t, "ffffffffffff366eb027b8320806000108000604000136 6eb027b832c6336435000000000000c6336435")},
		{"ipv4 udp", LinkTypeEthernet, udp},
		{"ipv4 udp fragment", LinkTypeEthernet, withFlags(udp, 0x2000)},
		// MLDv2 report with a hop-by-hop router alert, as Linux sends when joining ff02::12.
		{"ipv6 mld", LinkTypeEthernet, unhex(t, "333300000016366eb027b83286dd6000000000240001fe80000000000000346eb0fffe27b832ff020000000000000000000000000016"+
			"3a000502000001008f00c8f60000000104000000ff020000000000000000000000000012")},
		{"llc", LinkTypeEthernet, unhex(t, "0180c2000000366eb027b8320026424203000000000080")},
		{"vlan then arp", LinkTypeEthernet, withVLAN(unhex(t, "ffffffffffff366eb027b8320806000108000604000136"), 0x8100_000a)},
		{"truncated vlan", LinkTypeEthernet, eth[:12+3]},
		{"raw empty", LinkTypeRaw, nil},
		{"raw version 5", LinkTypeRaw, append([]byte{0x50}, rawIP(eth)[1:]...)},
		{"raw short ipv4 of other protocol", LinkTypeRaw, rawIP(udp)[:9]},
		{"sll short", LinkTypeLinuxSLL, make([]byte, 15)},
		{"sll2 short", LinkTypeLinuxSLL2, make([]byte, 19)},
		{"sll arp", LinkTypeLinuxSLL, append(sllFrame(eth, 2, 6)[:14], 0x08, 0x06, 0, 1)},
	}
	d := NewDecoder()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Packet{VLAN: 99, Family: 4}
			if err := d.Decode(tt.lt, tt.frame, &p); err != ErrNotVRRP {
				t.Errorf("Decode = %v, want ErrNotVRRP", err)
			}
		})
	}
}

func withFlags(frame []byte, flagsFrag uint16) []byte {
	out := append([]byte(nil), frame...)
	binary.BigEndian.PutUint16(out[14+6:], flagsFrag)
	// Recompute the IPv4 header checksum so only the flags differ.
	binary.BigEndian.PutUint16(out[14+10:], 0)
	var s uint32
	for i := 14; i < 34; i += 2 {
		s += uint32(binary.BigEndian.Uint16(out[i:]))
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	binary.BigEndian.PutUint16(out[14+10:], ^uint16(s))
	return out
}

func TestDecodeErrors(t *testing.T) {
	eth := unhex(t, frameV3IPv4)
	eth6 := unhex(t, frameV3IPv6)
	badCount := append([]byte(nil), eth...)
	badCount[14+20+3] = 4 // address count 4 in a 20-byte message
	emptyVRRP := append([]byte(nil), eth[:34]...)
	binary.BigEndian.PutUint16(emptyVRRP[14+2:], 20)
	ihl4 := append([]byte(nil), eth...)
	ihl4[14] = 0x44
	frag6 := withIPv6Fragment(eth6)
	tests := []struct {
		name   string
		lt     LinkType
		frame  []byte
		decode bool // a *vrrpcore.DecodeError must be wrapped
		want   string
	}{
		{"unsupported link type", LinkTypeNull, eth, false, "capture: unsupported link type 0 (Null)"},
		{"ipv4 fragment", LinkTypeEthernet, withFlags(eth, 0x2000), false,
			"capture: IPv4 fragment (offset 0, more fragments true) of a VRRP packet from 198.51.100.1: VRRP adverts are never fragmented"},
		{"ipv4 later fragment", LinkTypeEthernet, withFlags(eth, 0x0003), false,
			"capture: IPv4 fragment (offset 24, more fragments false) of a VRRP packet from 198.51.100.1: VRRP adverts are never fragmented"},
		{"ipv6 fragment", LinkTypeEthernet, frag6, false,
			"capture: IPv6 fragment of a VRRP packet from fe80::346e:b0ff:fe27:b832: VRRP adverts are never fragmented"},
		{"ipv4 truncated by snaplen", LinkTypeEthernet, eth[:len(eth)-6], false,
			"capture: IPv4 packet at frame byte 14 truncated: total length 40, 34 bytes captured"},
		{"ipv6 truncated by snaplen", LinkTypeEthernet, eth6[:len(eth6)-1], false,
			"capture: IPv6 packet at frame byte 14 truncated: payload length 40, 39 bytes captured"},
		{"ipv4 header cut", LinkTypeEthernet, eth[:14+12], false,
			"capture: bad IPv4 header of a VRRP packet at frame byte 14: 12 bytes captured, an IPv4 header has at least 20"},
		{"ipv4 ihl 4", LinkTypeEthernet, ihl4, false,
			"capture: bad IPv4 header of a VRRP packet at frame byte 14: header length 16 (IHL 4) at frame byte 14: less than 20"},
		{"ipv4 total length 19", LinkTypeEthernet, withTotalLength(eth, 19), false,
			"capture: bad IPv4 header of a VRRP packet at frame byte 14: total length 19 at frame byte 16: less than the 20-byte header"},
		{"ipv4 ihl over total length", LinkTypeEthernet, withTotalLength(withIPv4Options(eth, 0x94, 4, 0, 0), 22), false,
			"capture: bad IPv4 header of a VRRP packet at frame byte 14: header length 24 at frame byte 14 exceeds the total length 22"},
		{"ipv4 options cut", LinkTypeEthernet, withIPv4Options(eth, 0x94, 4, 0, 0)[:14+22], false,
			"capture: bad IPv4 header of a VRRP packet at frame byte 14: header length 24 at frame byte 14, 22 bytes captured"},
		{"ipv4 option length 2", LinkTypeEthernet, withIPv4Options(eth, 1, 0x94, 2, 0), false,
			"capture: bad IPv4 header of a VRRP packet at frame byte 14: option 148 at frame byte 35: length 2, must be greater than 2"},
		{"ipv4 option overrun", LinkTypeEthernet, withIPv4Options(eth, 1, 1, 0x94, 4), false,
			"capture: bad IPv4 header of a VRRP packet at frame byte 14: option 148 at frame byte 36: length 4 overruns the 24-byte header"},
		{"ipv4 option without length", LinkTypeEthernet, withIPv4Options(eth, 1, 1, 1, 0x94), false,
			"capture: bad IPv4 header of a VRRP packet at frame byte 14: option 148 at frame byte 37: no room for its length in the 24-byte header"},
		{"ipv6 header cut", LinkTypeRaw, rawIP(eth6)[:30], false,
			"capture: bad IPv6 header of a VRRP packet at frame byte 0: 30 bytes captured, an IPv6 header has 40"},
		{"ipv6 payload length 0", LinkTypeEthernet, withPayloadLength6(eth6, 0), false,
			"capture: bad IPv6 header of a VRRP packet at frame byte 14: payload length 0 at frame byte 18"},
		{"vrrp count mismatch", LinkTypeEthernet, badCount, true,
			"capture: VRRP message at frame byte 34: vrrp: truncated at byte 20: need 24 bytes for 4 IPv4 addresses"},
		{"vrrp empty", LinkTypeEthernet, emptyVRRP, true,
			"capture: VRRP message at frame byte 34: vrrp: truncated at byte 0: need 8 bytes for the VRRP header"},
		{"vrrpv2 over ipv6", LinkTypeEthernet, v2OverIPv6(t, eth6), true,
			"capture: VRRP message at frame byte 54: vrrp: VRRPv2 over IPv6 at byte 0: RFC 3768 defines VRRPv2 for IPv4 only"},
	}
	d := NewDecoder()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			err := d.Decode(tt.lt, tt.frame, &p)
			if err == nil || err == ErrNotVRRP || err.Error() != tt.want {
				t.Fatalf("Decode error\n%v\nwant\n%s", err, tt.want)
			}
			var de *vrrpcore.DecodeError
			if errors.As(err, &de) != tt.decode {
				t.Errorf("errors.As(*vrrpcore.DecodeError) = %v, want %v", !tt.decode, tt.decode)
			}
		})
	}
}

// withTotalLength sets the IPv4 total length of an Ethernet frame.
func withTotalLength(frame []byte, n uint16) []byte {
	out := append([]byte(nil), frame...)
	binary.BigEndian.PutUint16(out[14+2:], n)
	return out
}

// withIPv4Options inserts opts (a multiple of 4 bytes) after the 20-byte
// IPv4 header of an Ethernet frame and fixes IHL and total length.
func withIPv4Options(frame []byte, opts ...byte) []byte {
	out := append([]byte(nil), frame[:34]...)
	out[14] += byte(len(opts) / 4)
	binary.BigEndian.PutUint16(out[14+2:], binary.BigEndian.Uint16(frame[14+2:])+uint16(len(opts)))
	out = append(out, opts...)
	return append(out, frame[34:]...)
}

// withPayloadLength6 sets the IPv6 payload length of an Ethernet frame.
func withPayloadLength6(frame []byte, n uint16) []byte {
	out := append([]byte(nil), frame...)
	binary.BigEndian.PutUint16(out[14+4:], n)
	return out
}

// withIPv6Ext inserts extension headers between the IPv6 header of an
// Ethernet frame and its payload; each ext starts with a placeholder next
// header byte, chained here: types[i] is the type of exts[i].
func withIPv6Ext(frame []byte, types []byte, exts ...[]byte) []byte {
	out := append([]byte(nil), frame[:54]...)
	n := 0
	for i, e := range exts {
		e = append([]byte(nil), e...)
		if i+1 < len(exts) {
			e[0] = types[i+1]
		} else {
			e[0] = frame[14+6]
		}
		out = append(out, e...)
		n += len(e)
	}
	out[14+6] = types[0]
	binary.BigEndian.PutUint16(out[14+4:], binary.BigEndian.Uint16(frame[14+4:])+uint16(n))
	return append(out, frame[54:]...)
}

// IPv4 options and IPv6 extension headers in front of the advert are
// stepped over; malformed hop-by-hop options make the frame not VRRP (the
// kernel drops it).
func TestDecodeIPOptions(t *testing.T) {
	eth, eth6 := unhex(t, frameV3IPv4), unhex(t, frameV3IPv6)
	routerAlert4 := []byte{0x94, 4, 0, 0}
	hbh := []byte{0, 0, 5, 2, 0, 0, 1, 0}                          // router alert, PadN
	dest := []byte{0, 1, 1, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0} // PadN filling 16 bytes
	routing := []byte{0, 0, 4, 0, 0, 0, 0, 0}
	d := NewDecoder()
	for _, tt := range []struct {
		name   string
		frame  []byte
		msgOff int
	}{
		{"ipv4 router alert", withIPv4Options(eth, routerAlert4...), 38},
		{"ipv4 nop and end", withIPv4Options(eth, 1, 1, 0, 0xff, 1, 1, 1, 1), 42},
		{"ipv6 hop-by-hop", withIPv6Ext(eth6, []byte{0}, hbh), 62},
		{"ipv6 hop-by-hop, routing, destination", withIPv6Ext(eth6, []byte{0, 43, 60}, hbh, routing, dest), 86},
	} {
		var p Packet
		if err := d.Decode(LinkTypeEthernet, tt.frame, &p); err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if p.Length != len(tt.frame)-tt.msgOff || p.Advert.Checksummed != vrrpcore.ChecksumPseudoHeader || len(p.Advert.Addrs) == 0 {
			t.Errorf("%s: %+v", tt.name, p)
		}
	}
	for name, frame := range map[string][]byte{
		"jumbo option":                withIPv6Ext(eth6, []byte{0}, []byte{0, 0, 0xc2, 4, 0, 1, 0, 0}),
		"hop-by-hop option overrun":   withIPv6Ext(eth6, []byte{0}, []byte{0, 0, 5, 5, 0, 0, 0, 0}),
		"hop-by-hop option cut":       withIPv6Ext(eth6, []byte{0}, []byte{0, 0, 0, 0, 0, 0, 0, 5}),
		"extension past the payload":  withPayloadLength6(withIPv6Ext(eth6, []byte{43}, routing), 4),
		"extension header length cut": withIPv6Ext(eth6, []byte{60}, []byte{0, 9, 0, 0, 0, 0, 0, 0}),
	} {
		if err := d.Decode(LinkTypeEthernet, frame, &Packet{}); err != ErrNotVRRP {
			t.Errorf("%s: %v, want ErrNotVRRP", name, err)
		}
	}
	// A fragment header behind other extension headers is still found.
	frag := withIPv6Ext(eth6, []byte{60, 44}, dest, []byte{0, 0, 0, 1, 0, 0, 0, 42})
	if err := d.Decode(LinkTypeEthernet, frag, &Packet{}); err == nil || !strings.Contains(err.Error(), "IPv6 fragment") {
		t.Errorf("fragment behind destination options: %v", err)
	}
}

// withIPv6Fragment inserts a fragment header (first fragment, more to
// come) between the IPv6 header and the VRRP message.
func withIPv6Fragment(frame []byte) []byte {
	out := append([]byte(nil), frame[:54]...)
	out[14+6] = 44 // next header: fragment
	binary.BigEndian.PutUint16(out[14+4:], binary.BigEndian.Uint16(frame[14+4:])+8)
	out = append(out, vrrpcore.IPProtocol, 0, 0, 1, 0, 0, 0, 42)
	return append(out, frame[54:]...)
}

// v2OverIPv6 puts a VRRPv2 message (IPv4-style, 1 address, auth data) in the IPv6 packet.
func v2OverIPv6(t testing.TB, frame []byte) []byte {
	msg := unhex(t, "21 01 64 01 00 01 0000 c6336401 0000000000000000")
	out := append([]byte(nil), frame[:54]...)
	binary.BigEndian.PutUint16(out[14+4:], uint16(len(msg)))
	return append(out, msg...)
}

func TestDecodeChecksumError(t *testing.T) {
	for _, hexFrame := range []string{frameV3IPv4, frameV2Auth, frameV3IPv6} {
		frame := unhex(t, hexFrame)
		var good Packet
		d := NewDecoder()
		if err := d.Decode(LinkTypeEthernet, frame, &good); err != nil {
			t.Fatal(err)
		}
		bad := append([]byte(nil), frame...)
		off := len(frame) - good.Length + 7
		bad[off] ^= 0xff
		var p Packet
		err := d.Decode(LinkTypeEthernet, bad, &p)
		var ce *vrrpcore.ChecksumError
		if !errors.As(err, &ce) {
			t.Fatalf("Decode = %v, want *vrrpcore.ChecksumError", err)
		}
		if p.Advert.Checksummed != vrrpcore.ChecksumBad || p.Advert.Checksum != good.Advert.Checksum^0xff {
			t.Errorf("advert %+v", p.Advert)
		}
		// Everything else is as in the good packet.
		p.Advert.Checksummed, p.Advert.Checksum = good.Advert.Checksummed, good.Advert.Checksum
		if !packetsEqual(p, good) {
			t.Errorf("packet with bad checksum\n%+v\nwant\n%+v", p, good)
		}
	}
}

func packetsEqual(a, b Packet) bool {
	if !slices.Equal(a.Advert.Addrs, b.Advert.Addrs) {
		return false
	}
	a.Advert.Addrs, b.Advert.Addrs = nil, nil
	return reflect.DeepEqual(a, b)
}

// A Packet reused for a frame of another kind keeps nothing stale.
func TestDecodeResetsPacket(t *testing.T) {
	d := NewDecoder()
	var p Packet
	if err := d.Decode(LinkTypeEthernet, withVLAN(unhex(t, frameV3IPv6), 0x8100_0005), &p); err != nil {
		t.Fatal(err)
	}
	p.Time = p.Time.AddDate(2026, 0, 0)
	when := p.Time
	if err := d.Decode(LinkTypeRaw, rawIP(unhex(t, frameV2Auth)), &p); err != nil {
		t.Fatal(err)
	}
	want := Packet{Time: when, Family: 4, Src: netip.MustParseAddr("198.51.100.1"), Dst: vrrpcore.GroupIPv4, TTL: 255, IPID: 1, Length: 24}
	want.Advert = p.Advert
	if !packetsEqual(p, want) || p.Advert.VRID != 51 || p.Advert.AuthType != vrrpcore.AuthSimple {
		t.Errorf("reused packet\n%+v\nwant\n%+v", p, want)
	}
}

// captureFiles are the real captures in the repository: this package's
// lab files and the lab helper's scenarios.
func captureFiles(t testing.TB) []string {
	var files []string
	for _, pat := range []string{"../vrrpcore/testdata/keepalived/*.pcap", "../testdata/captures/*.pcap", "../testdata/captures/*.pcapng"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 3 {
		t.Fatalf("only %d capture files found", len(files))
	}
	return files
}

type capturedFrame struct {
	lt    LinkType
	frame []byte
}

func readFrames(t testing.TB, path string) []capturedFrame {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := NewFileReader(f, path)
	if err != nil {
		t.Fatal(err)
	}
	var out []capturedFrame
	for {
		var fr Frame
		err := r.Next(&fr)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, capturedFrame{LinkType(fr.LinkType), slices.Clone(fr.Data)})
	}
}

// realCaptureVLAN is the 802.1Q VLAN of the tagged real captures (see
// testdata/README.md: tagged by a BPF program on the lab's trunk).
var realCaptureVLAN = map[string]uint16{"v2-vlan.pcap": 10}

// Every frame of every real capture decodes, with verified checksums and
// IP facts that match the advert; the Linux cooked files give directions.
func TestDecodeRealCaptures(t *testing.T) {
	d := NewDecoder()
	for _, path := range captureFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			frames := readFrames(t, path)
			if !SupportsLinkType(frames[0].lt) {
				t.Fatalf("link type %d not supported", frames[0].lt)
			}
			dirs := map[Direction]int{}
			var p Packet
			for i, f := range frames {
				if err := d.Decode(f.lt, f.frame, &p); err != nil {
					t.Fatalf("frame %d: %v", i+1, err)
				}
				a := p.Advert
				if a.Checksummed != vrrpcore.ChecksumPseudoHeader && a.Checksummed != vrrpcore.ChecksumMessage {
					t.Errorf("frame %d: checksum %v", i+1, a.Checksummed)
				}
				if p.TTL != 255 || p.Length == 0 || !p.HasMAC || p.Src.IsMulticast() || len(a.Addrs) == 0 ||
					(p.Family == 4) != p.Src.Is4() || (p.Family == 6) != (a.Version == 3 && a.Addrs[0].Is6()) {
					t.Errorf("frame %d: %+v", i+1, p)
				}
				dirs[p.Direction]++
				if wantVLAN := realCaptureVLAN[filepath.Base(path)]; p.VLAN != wantVLAN {
					t.Errorf("frame %d: VLAN %d, want %d", i+1, p.VLAN, wantVLAN)
				}
			}
			switch frames[0].lt {
			case LinkTypeLinuxSLL, LinkTypeLinuxSLL2:
				if dirs[DirOut] == 0 || dirs[DirUnknown] != 0 {
					t.Errorf("directions %v: want outgoing frames and no unknown", dirs)
				}
			default:
				if dirs[DirUnknown] != len(frames) {
					t.Errorf("directions %v on a link type without them", dirs)
				}
			}
		})
	}
}

// The split-brain capture in SLL shows both directions, as the lab helper
// recorded it on b: b's own adverts outgoing, a's received.
func TestDecodeSLLDirections(t *testing.T) {
	d := NewDecoder()
	for _, name := range []string{"v2-split-brain-sll.pcap", "v2-split-brain-sll2.pcap"} {
		path := filepath.Join("../testdata/captures", name)
		if _, err := os.Stat(path); err != nil {
			t.Skipf("%s: %v", path, err)
		}
		bySrc := map[netip.Addr]map[Direction]int{}
		var p Packet
		for _, f := range readFrames(t, path) {
			if err := d.Decode(f.lt, f.frame, &p); err != nil {
				t.Fatal(err)
			}
			if bySrc[p.Src] == nil {
				bySrc[p.Src] = map[Direction]int{}
			}
			bySrc[p.Src][p.Direction]++
		}
		a, b := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
		if bySrc[a][DirIn] == 0 || bySrc[a][DirOut] != 0 || bySrc[b][DirOut] == 0 || bySrc[b][DirIn] != 0 {
			t.Errorf("%s: directions by source %v", name, bySrc)
		}
	}
}

func allTestFrames(t testing.TB) []capturedFrame {
	eth := unhex(t, frameV3IPv4)
	eth6 := unhex(t, frameV3IPv6)
	udp := append([]byte(nil), eth...)
	udp[14+9] = 17
	frames := []capturedFrame{
		{LinkTypeEthernet, eth},
		{LinkTypeEthernet, eth6},
		{LinkTypeEthernet, unhex(t, frameV2Auth)},
		{LinkTypeEthernet, withVLAN(eth, 0x88a8_012c, 0x8100_0014)},
		{LinkTypeRaw, rawIP(eth6)},
		{LinkTypeLinuxSLL, sllFrame(eth, 4, 6)},
		{LinkTypeLinuxSLL2, sll2Frame(eth6, 2)},
		{LinkTypeEthernet, udp},                                                        // not VRRP
		{LinkTypeEthernet, unhex(t, "ffffffffffff366eb027b8320806000108000604000136")}, // ARP
	}
	return frames
}

// Zero allocations per packet once warm, for VRRP and non-VRRP frames.
func TestDecodeAllocs(t *testing.T) {
	d := NewDecoder()
	frames := allTestFrames(t)
	var p Packet
	for _, f := range frames {
		_ = d.Decode(f.lt, f.frame, &p)
	}
	allocs := testing.AllocsPerRun(200, func() {
		for _, f := range frames {
			if err := d.Decode(f.lt, f.frame, &p); err != nil && err != ErrNotVRRP {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("warm Decode allocates %.1f times per %d frames, want 0", allocs, len(frames))
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, bc := range []struct {
		name string
		lt   LinkType
		hex  string
		sll2 bool
	}{
		{"ethernet-v3-ipv4", LinkTypeEthernet, frameV3IPv4, false},
		{"ethernet-v2-auth", LinkTypeEthernet, frameV2Auth, false},
		{"ethernet-v3-ipv6", LinkTypeEthernet, frameV3IPv6, false},
		{"sll2-v3-ipv4", LinkTypeLinuxSLL2, frameV3IPv4, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			frame := unhex(b, bc.hex)
			if bc.sll2 {
				frame = sll2Frame(frame, 2)
			}
			d := NewDecoder()
			var p Packet
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			for b.Loop() {
				if err := d.Decode(bc.lt, frame, &p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestLinkTypeFromPcap(t *testing.T) {
	for v, want := range map[uint32]LinkType{1: LinkTypeEthernet, 101: LinkTypeRaw, 113: LinkTypeLinuxSLL,
		276: LinkTypeLinuxSLL2, 228: LinkTypeIPv4, 12: 12} {
		if got, ok := LinkTypeFromPcap(v); !ok || got != want {
			t.Errorf("LinkTypeFromPcap(%d) = %d, %v; want %d", v, got, ok, want)
		}
	}
	// Unsupported: Null, 20 (SLL2 truncated to 8 bits, as gopacket's
	// pcapgo reports it), 257 (Ethernet + 256), 802.11, large values.
	for _, v := range []uint32{0, 20, 257, 105, 532, 1 << 20} {
		if got, ok := LinkTypeFromPcap(v); ok || got != LinkType(v) {
			t.Errorf("LinkTypeFromPcap(%d) = %d, %v; want %d, not ok", v, got, ok, v)
		}
	}
	if LinkTypeLinuxSLL2.String() != "LinuxSLL2" || LinkType(147).String() != "LinkType(147)" {
		t.Errorf("String: %v, %v", LinkTypeLinuxSLL2, LinkType(147))
	}
}
