package runtime

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cmsg is one control message as the kernel lays it out.
func cmsg(level, typ int, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = int32(level), int32(typ)
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

func int32Bytes(v int32) []byte { return binary.NativeEndian.AppendUint32(nil, uint32(v)) }

func pktinfo4(ifindex int32, dst netip.Addr) []byte {
	pi := unix.Inet4Pktinfo{Ifindex: ifindex, Addr: dst.As4()}
	return unsafe.Slice((*byte)(unsafe.Pointer(&pi)), unix.SizeofInet4Pktinfo)
}

func pktinfo6(ifindex uint32, dst netip.Addr) []byte {
	pi := unix.Inet6Pktinfo{Ifindex: ifindex, Addr: dst.As16()}
	return unsafe.Slice((*byte)(unsafe.Pointer(&pi)), unix.SizeofInet6Pktinfo)
}

func from4(a netip.Addr) *unix.RawSockaddrInet6 {
	var raw unix.RawSockaddrInet6
	sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&raw))
	sa.Family, sa.Addr = unix.AF_INET, a.As4()
	return &raw
}

func from6(a netip.Addr) *unix.RawSockaddrInet6 {
	return &unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16()}
}

// TestParsePacket checks what the socket reader takes from recvmsg's
// results: the message after an IPv4 header (with options too), the
// source from the socket address, the TTL / hop limit, destination and
// interface from the control messages in either order; and nothing made
// up from a short packet or a truncated control message.
func TestParsePacket(t *testing.T) {
	vrrp := []byte{0x31, 7, 100, 1, 0, 100, 0, 0, 203, 0, 113, 1}
	src4, dst4 := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("224.0.0.18")
	hdr := func(ihl int) []byte {
		h := make([]byte, ihl*4)
		h[0] = 0x40 | byte(ihl)
		return h
	}
	oob4 := append(cmsg(unix.IPPROTO_IP, unix.IP_TTL, int32Bytes(255)), cmsg(unix.IPPROTO_IP, unix.IP_PKTINFO, pktinfo4(3, dst4))...)

	msg, src, dst, ttl, ifindex := parsePacket(4, append(hdr(5), vrrp...), oob4, from4(src4))
	if !bytes.Equal(msg, vrrp) || src != src4 || dst != dst4 || ttl != 255 || ifindex != 3 {
		t.Errorf("IPv4: msg % x src %v dst %v ttl %d ifindex %d", msg, src, dst, ttl, ifindex)
	}
	if msg, _, _, _, _ := parsePacket(4, append(hdr(6), vrrp...), oob4, from4(src4)); !bytes.Equal(msg, vrrp) {
		t.Errorf("IPv4 with options: msg % x", msg)
	}
	if msg, _, _, _, _ := parsePacket(4, hdr(5)[:12], oob4, from4(src4)); len(msg) != 0 {
		t.Errorf("IPv4 short of a header: msg % x", msg)
	}
	if msg, _, _, _, _ := parsePacket(4, hdr(5)[:20], oob4, from4(src4)); len(msg) != 0 {
		t.Errorf("IPv4 header alone: msg % x", msg)
	}

	src6, dst6 := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("ff02::12")
	oob6 := append(cmsg(unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, pktinfo6(4, dst6)), cmsg(unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, int32Bytes(254))...)
	msg, src, dst, ttl, ifindex = parsePacket(6, vrrp, oob6, from6(src6))
	if !bytes.Equal(msg, vrrp) || src != src6 || dst != dst6 || ttl != 254 || ifindex != 4 {
		t.Errorf("IPv6: msg % x src %v dst %v ttl %d ifindex %d", msg, src, dst, ttl, ifindex)
	}
	// The hop limit message cut short: only the packet information.
	_, _, dst, ttl, ifindex = parsePacket(6, vrrp, oob6[:len(oob6)-8], from6(src6))
	if dst != dst6 || ttl != 0 || ifindex != 4 {
		t.Errorf("IPv6, truncated control messages: dst %v ttl %d ifindex %d", dst, ttl, ifindex)
	}
	if _, src, dst, _, _ := parsePacket(6, vrrp, nil, &unix.RawSockaddrInet6{}); src.IsValid() || dst.IsValid() {
		t.Errorf("no address given, found src %v dst %v", src, dst)
	}
}

// FuzzParsePacket feeds the socket reader's parser any packet, control
// messages and socket address: it must not panic, and the message must be
// the end of the packet.
func FuzzParsePacket(f *testing.F) {
	vrrp := []byte{0x31, 7, 100, 1, 0, 100, 0, 0, 203, 0, 113, 1}
	ip4 := append([]byte{0x45, 0xc0, 0, 32, 0, 0, 0x40, 0, 255, 112, 0, 0, 198, 51, 100, 1, 224, 0, 0, 18}, vrrp...)
	f.Add(uint8(4), ip4, append(cmsg(unix.IPPROTO_IP, unix.IP_TTL, int32Bytes(255)), cmsg(unix.IPPROTO_IP, unix.IP_PKTINFO, pktinfo4(3, netip.MustParseAddr("224.0.0.18")))...),
		unsafe.Slice((*byte)(unsafe.Pointer(from4(netip.MustParseAddr("198.51.100.1")))), unix.SizeofSockaddrInet6))
	f.Add(uint8(6), vrrp, cmsg(unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, pktinfo6(4, netip.MustParseAddr("ff02::12"))),
		unsafe.Slice((*byte)(unsafe.Pointer(from6(netip.MustParseAddr("2001:db8::1")))), unix.SizeofSockaddrInet6))
	f.Fuzz(func(t *testing.T, family uint8, pkt, oob, fromBytes []byte) {
		fam := 6
		if family%2 == 0 {
			fam = 4
		}
		var from unix.RawSockaddrInet6
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&from)), unix.SizeofSockaddrInet6), fromBytes)
		// Control messages as the kernel hands them: 8-byte aligned.
		aligned := make([]uint64, (len(oob)+7)/8)
		ob := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(aligned))), len(aligned)*8)[:len(oob)]
		copy(ob, oob)
		msg, _, _, _, _ := parsePacket(fam, pkt, ob, &from)
		if len(msg) > len(pkt) || !bytes.Equal(msg, pkt[len(pkt)-len(msg):]) {
			t.Fatalf("message % x is not the end of packet % x", msg, pkt)
		}
	})
}
