// Package announce sends the link-layer announcements a new VRRP Master
// makes for its virtual addresses (RFC 5798 §6.4.1, §8.1): gratuitous ARP
// for IPv4 and unsolicited Neighbor Advertisements for IPv6, so that hosts
// and switches on the LAN learn the new owner at once.
//
// The frames are a few fixed fields, built here byte by byte (gopacket's
// layers would cost the daemon about 9 MB of resident memory at init), and
// sent through an AF_PACKET socket that receives nothing (protocol 0), the
// way keepalived sends them. Frame builders are pure functions, tested
// without a network.
package announce

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Ethernet destinations of the announcements.
var (
	broadcastMAC   = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	allNodesMAC    = net.HardwareAddr{0x33, 0x33, 0x00, 0x00, 0x00, 0x01} // ff02::1
	allNodesAddr   = netip.MustParseAddr("ff02::1")
	errNotEthernet = errors.New("not an Ethernet MAC address")
)

// Neighbor Advertisement flags (RFC 4861 §4.4).
const (
	naRouter    = 0x80
	naSolicited = 0x40
	naOverride  = 0x20
)

// Frame layout constants.
const (
	etherTypeARP  = 0x0806
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd
	minFrameLen   = 60 // Ethernet minimum without FCS
	arpRequest    = 1
	arphrdEther   = 1
	icmpv6Proto   = 58
	icmpv6NA      = 136
	optTargetLL   = 2  // target link-layer address option (RFC 4861 §4.6.1)
	naLen         = 32 // type, code, checksum, flags, target, option of 8 bytes
)

// ethernet appends an Ethernet header to b.
func ethernet(b []byte, dst, src net.HardwareAddr, etype uint16) []byte {
	b = append(b, dst...)
	b = append(b, src...)
	return binary.BigEndian.AppendUint16(b, etype)
}

// GratuitousARP returns an Ethernet frame carrying a gratuitous ARP for ip
// from mac: a broadcast ARP request whose sender and target protocol
// addresses are both ip, as keepalived sends on becoming Master. The
// frame is padded to the 60-byte Ethernet minimum.
func GratuitousARP(mac net.HardwareAddr, ip netip.Addr) ([]byte, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("gratuitous ARP: source %v: %w", mac, errNotEthernet)
	}
	if !ip.Is4() {
		return nil, fmt.Errorf("gratuitous ARP: %v is not an IPv4 address", ip)
	}
	a := ip.As4()
	b := make([]byte, 0, minFrameLen)
	b = ethernet(b, broadcastMAC, mac, etherTypeARP)
	// RFC 826: hardware type, protocol type, their address lengths,
	// operation, sender MAC and IP, target MAC and IP.
	b = binary.BigEndian.AppendUint16(b, arphrdEther)
	b = binary.BigEndian.AppendUint16(b, etherTypeIPv4)
	b = append(b, 6, 4)
	b = binary.BigEndian.AppendUint16(b, arpRequest)
	b = append(b, mac...)
	b = append(b, a[:]...)
	b = append(b, broadcastMAC...)
	b = append(b, a[:]...)
	return b[:minFrameLen], nil // the padding is the zeroed capacity
}

// UnsolicitedNA returns an Ethernet frame carrying an unsolicited Neighbor
// Advertisement for ip from mac (RFC 4861 §7.2.6): sent from ip to the
// all-nodes group ff02::1 with hop limit 255, the Override flag set, the
// Router flag as router says, and the target link-layer address option.
func UnsolicitedNA(mac net.HardwareAddr, ip netip.Addr, router bool) ([]byte, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("unsolicited NA: source %v: %w", mac, errNotEthernet)
	}
	if !ip.Is6() || ip.Is4In6() {
		return nil, fmt.Errorf("unsolicited NA: %v is not an IPv6 address", ip)
	}
	src, dst := ip.As16(), allNodesAddr.As16()
	b := make([]byte, 0, 14+40+naLen)
	b = ethernet(b, allNodesMAC, mac, etherTypeIPv6)
	// IPv6 header: version 6, no traffic class or flow label, payload
	// length, next header ICMPv6, hop limit 255, addresses.
	b = binary.BigEndian.AppendUint32(b, 6<<28)
	b = binary.BigEndian.AppendUint16(b, naLen)
	b = append(b, icmpv6Proto, 255)
	b = append(b, src[:]...)
	b = append(b, dst[:]...)
	icmp := len(b)
	flags := byte(naOverride)
	if router {
		flags |= naRouter
	}
	b = append(b, icmpv6NA, 0, 0, 0, flags, 0, 0, 0)
	b = append(b, src[:]...)
	b = append(b, optTargetLL, 1) // length in units of 8 bytes
	b = append(b, mac...)
	binary.BigEndian.PutUint16(b[icmp+2:], icmpv6Checksum(src, dst, b[icmp:]))
	return b, nil
}

// icmpv6Checksum is the Internet checksum (RFC 1071) of msg, an ICMPv6
// message with a zero checksum field, and the IPv6 pseudo-header
// (RFC 8200 §8.1).
func icmpv6Checksum(src, dst [16]byte, msg []byte) uint16 {
	s := uint32(len(msg)) + icmpv6Proto
	for _, b := range [][]byte{src[:], dst[:], msg} {
		for i := 0; i+1 < len(b); i += 2 {
			s += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			s += uint32(b[len(b)-1]) << 8
		}
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}
