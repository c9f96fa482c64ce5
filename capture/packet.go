// Package capture observes VRRP traffic: it decodes frames into packets,
// reads and writes pcap/pcapng files, and taps a live interface both on the
// wire (what tcpdump sees) and at the socket (what keepalived sees).
package capture

import (
	"net/netip"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// Direction says whether a frame was received or sent by the capturing host.
type Direction uint8

// Directions, as far as the link type tells them (Linux cooked captures and
// live AF_PACKET taps do; plain Ethernet files do not).
const (
	DirUnknown Direction = iota
	DirIn
	DirOut
)

// Packet is one VRRP advert as observed in a frame, with the IP header facts
// the diagnosis needs.
type Packet struct {
	Time      time.Time
	Direction Direction
	VLAN      uint16 // 802.1Q VLAN ID of the innermost tag, 0 when untagged
	SrcMAC    [6]byte
	HasMAC    bool       // SrcMAC is known (Ethernet or SLL with a 6-byte address)
	Family    uint8      // 4 or 6
	Src, Dst  netip.Addr // IP source and destination
	TTL       uint8      // IPv4 TTL or IPv6 hop limit
	IPID      uint16     // IPv4 identification
	FlowLabel uint32     // IPv6 flow label
	Length    int        // length of the VRRP message in bytes
	Advert    vrrpcore.Advert
}
