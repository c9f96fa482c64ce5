// Package vrrpcore implements the VRRP protocol: the packet codec for VRRPv2
// (RFC 3768) and VRRPv3 (RFC 5798, RFC 9568) over IPv4 and IPv6.
package vrrpcore

import (
	"fmt"
	"net/netip"
	"time"
)

// IPProtocol is the IP protocol number assigned to VRRP.
const IPProtocol = 112

// Multicast groups VRRP adverts are sent to.
var (
	GroupIPv4 = netip.MustParseAddr("224.0.0.18")
	GroupIPv6 = netip.MustParseAddr("ff02::12")
)

// TypeAdvertisement is the only VRRP packet type (RFC 3768 §5.3.2, RFC 5798 §5.2.2).
const TypeAdvertisement = 1

// AuthType is the VRRPv2 authentication type (RFC 3768 §5.3.6).
type AuthType uint8

// VRRPv2 authentication types. keepalived calls AuthSimple "PASS".
const (
	AuthNone   AuthType = 0
	AuthSimple AuthType = 1
	AuthAH     AuthType = 2
)

// ChecksumKind says how an advert's checksum was computed.
type ChecksumKind uint8

// Checksum variants. VRRPv2 sums the message only; VRRPv3 sums an IPv4 or
// IPv6 pseudo-header plus the message; some implementations (keepalived's
// v3_checksum_as_v2) send VRRPv3 over IPv4 summed like v2.
const (
	ChecksumUnverified   ChecksumKind = iota // not checked (no addresses given)
	ChecksumMessage                          // over the VRRP message only
	ChecksumPseudoHeader                     // over pseudo-header + message (RFC 5798 §5.2.8)
	ChecksumBad                              // matches no known variant
	// ChecksumOldUnicast is keepalived's VRRPv3 unicast checksum before
	// 1.3.6 (and after it with old_unicast_checksum): the IPv4
	// pseudo-header names the group 224.0.0.18 as destination, not the
	// unicast peer the advert goes to.
	ChecksumOldUnicast
)

// Advert is one decoded VRRP advertisement.
type Advert struct {
	Version      uint8         // 2 or 3
	Type         uint8         // TypeAdvertisement
	VRID         uint8         // virtual router ID, 1..255
	Priority     uint8         // 0 = master resigning, 255 = address owner
	CountIPAddrs uint8         // address count as carried in the packet
	AuthType     AuthType      // VRRPv2 only
	AuthData     [8]byte       // VRRPv2 only: simple text password, NUL padded
	Interval     time.Duration // v2: whole seconds; v3: 12-bit centiseconds
	Checksum     uint16        // as carried in the packet
	Checksummed  ChecksumKind  // how Checksum was computed, once verified
	Addrs        []netip.Addr  // virtual addresses (IPv4 or IPv6)
	Reserved     uint8         // VRRPv3 only: the 4 reserved bits before Max Advert Int (0 on the wire per RFC)
}

// String returns the keepalived-style name of the authentication type.
func (t AuthType) String() string {
	switch t {
	case AuthNone:
		return "none"
	case AuthSimple:
		return "simple"
	case AuthAH:
		return "ah"
	}
	return fmt.Sprintf("unknown(%d)", uint8(t))
}

// String names the checksum variant: "unverified", "message",
// "pseudo-header", "bad" or "old-unicast".
func (k ChecksumKind) String() string {
	switch k {
	case ChecksumUnverified:
		return "unverified"
	case ChecksumMessage:
		return "message"
	case ChecksumPseudoHeader:
		return "pseudo-header"
	case ChecksumBad:
		return "bad"
	case ChecksumOldUnicast:
		return "old-unicast"
	}
	return fmt.Sprintf("ChecksumKind(%d)", uint8(k))
}

func (k ChecksumKind) description() string {
	switch k {
	case ChecksumMessage:
		return "over the message"
	case ChecksumPseudoHeader:
		return "over pseudo-header + message"
	case ChecksumOldUnicast:
		return "over a pseudo-header to 224.0.0.18 + message, keepalived before 1.3.6"
	}
	return k.String()
}
