package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// ErrNotVRRP is returned by Decoder.Decode for frames that do not carry a
// VRRP packet (other protocols, non-IP frames, link headers too short to
// tell). Callers skip such frames.
var ErrNotVRRP = errors.New("capture: not a VRRP packet")

// Header lengths and IPv6 header types of the decoder (EtherTypes: see
// wire_bpf.go).
const (
	ethHeaderLen  = 14
	sllHeaderLen  = 16 // LINKTYPE_LINUX_SLL
	sll2HeaderLen = 20 // LINKTYPE_LINUX_SLL2
	ipv4HeaderLen = 20
	ipv6HeaderLen = 40

	// IPv6 extension headers the decoder steps over (RFC 8200 §4).
	ipv6HopByHop    = 0
	ipv6Routing     = 43
	ipv6Fragment    = 44
	ipv6DestOptions = 60
	ipv6OptJumbo    = 0xc2 // RFC 2675 jumbo payload option
)

// Decoder turns captured frames into Packets. It reads the link and IP
// headers itself (Ethernet with 802.1Q/802.1ad tags, Linux cooked capture
// v1 and v2, raw IPv4/IPv6; IPv4 options, IPv6 extension headers) and the
// advert with vrrpcore, without allocating once the Packet's address slice
// has grown. It keeps no state between frames.
type Decoder struct{}

// NewDecoder returns a Decoder.
func NewDecoder() *Decoder { return &Decoder{} }

// Decode decodes frame, captured with link type lt, into p.
//
// It fills every field of p but Time, which the caller sets: Direction
// (from the Linux cooked header's packet type), VLAN (innermost tag),
// SrcMAC, the IP header facts and the Advert, whose checksum it verifies
// against the IP addresses. p.Advert.Addrs keeps its capacity, so reusing
// one Packet avoids allocating.
//
// Errors: ErrNotVRRP for frames without VRRP; a *vrrpcore.ChecksumError
// (returned as is) when only the checksum is wrong, with p fully filled; a
// *vrrpcore.DecodeError wrapped with the frame offset of the VRRP message
// for a malformed advert; other errors for IP packets of protocol 112 that
// cannot hold an advert (fragments; truncated or malformed IP headers,
// naming their frame offset) and for link types SupportsLinkType rejects.
// After an error other than ErrNotVRRP, p holds what was decoded.
func (d *Decoder) Decode(lt LinkType, frame []byte, p *Packet) error {
	addrs, t := p.Advert.Addrs[:0], p.Time
	*p = Packet{Time: t}
	p.Advert.Addrs = addrs

	etype, off, err := decodeLink(lt, frame, p)
	if err != nil {
		return err
	}
	switch etype {
	case etherTypeIPv4:
		return decodeIPv4Frame(frame, off, p)
	case etherTypeIPv6:
		return decodeIPv6Frame(frame, off, p)
	}
	return ErrNotVRRP
}

// decodeLink reads the link-layer header and VLAN tags of frame into p and
// returns the EtherType of the network layer and its offset.
func decodeLink(lt LinkType, frame []byte, p *Packet) (etype uint16, off int, err error) {
	be := binary.BigEndian
	switch lt {
	case LinkTypeEthernet:
		if len(frame) < ethHeaderLen {
			return 0, 0, ErrNotVRRP
		}
		p.SrcMAC, p.HasMAC = [6]byte(frame[6:12]), true
		etype, off = be.Uint16(frame[12:14]), ethHeaderLen
	case LinkTypeLinuxSLL:
		// Packet type, ARPHRD_ type, address length, 8 bytes of
		// address, protocol.
		if len(frame) < sllHeaderLen {
			return 0, 0, ErrNotVRRP
		}
		p.Direction = direction(be.Uint16(frame[0:2]))
		if be.Uint16(frame[4:6]) == 6 {
			p.SrcMAC, p.HasMAC = [6]byte(frame[6:12]), true
		}
		etype, off = be.Uint16(frame[14:16]), sllHeaderLen
	case LinkTypeLinuxSLL2:
		// Protocol, reserved, ifindex, ARPHRD_ type, packet type,
		// address length, 8 bytes of address.
		if len(frame) < sll2HeaderLen {
			return 0, 0, ErrNotVRRP
		}
		p.Direction = direction(uint16(frame[10]))
		if frame[11] == 6 {
			p.SrcMAC, p.HasMAC = [6]byte(frame[12:18]), true
		}
		etype, off = be.Uint16(frame[0:2]), sll2HeaderLen
	case LinkTypeIPv4:
		return etherTypeIPv4, 0, nil
	case LinkTypeIPv6:
		return etherTypeIPv6, 0, nil
	case LinkTypeRaw, linkTypeDLTRaw12, linkTypeDLTRaw14:
		if len(frame) == 0 {
			return 0, 0, ErrNotVRRP
		}
		switch frame[0] >> 4 {
		case 4:
			return etherTypeIPv4, 0, nil
		case 6:
			return etherTypeIPv6, 0, nil
		}
		return 0, 0, ErrNotVRRP
	default:
		return 0, 0, fmt.Errorf("capture: unsupported link type %d (%v)", uint32(lt), lt)
	}
	// VLAN tags: 802.1Q, 802.1ad, and the pre-standard QinQ TPID the wire
	// filter accepts too.
	for etype == etherTypeDot1Q || etype == etherTypeDot1AD || etype == etherTypeQinQ {
		if len(frame)-off < vlanTagLen {
			return 0, 0, ErrNotVRRP
		}
		p.VLAN = be.Uint16(frame[off:]) & 0x0fff
		etype, off = be.Uint16(frame[off+2:]), off+vlanTagLen
	}
	return etype, off, nil
}

// decodeIPv4Frame decodes the IPv4 packet at frame[off:] into p.
func decodeIPv4Frame(frame []byte, off int, p *Packet) error {
	ip := frame[off:]
	hlen, total, err := checkIPv4Header(ip, off)
	if err != nil {
		if len(ip) >= 10 && ip[9] == vrrpcore.IPProtocol {
			return fmt.Errorf("capture: bad IPv4 header of a VRRP packet at frame byte %d: %v", off, err)
		}
		return ErrNotVRRP
	}
	p.Family = 4
	p.Src = netip.AddrFrom4([4]byte(ip[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(ip[16:20]))
	p.TTL = ip[8]
	p.IPID = binary.BigEndian.Uint16(ip[4:6])
	if ip[9] != vrrpcore.IPProtocol {
		return ErrNotVRRP
	}
	flagsFrag := binary.BigEndian.Uint16(ip[6:8])
	if more, fragOff := flagsFrag&0x2000 != 0, int(flagsFrag&0x1fff)*8; more || fragOff != 0 {
		return fmt.Errorf("capture: IPv4 fragment (offset %d, more fragments %t) of a VRRP packet from %v: VRRP adverts are never fragmented",
			fragOff, more, p.Src)
	}
	if len(ip) < total {
		return fmt.Errorf("capture: IPv4 packet at frame byte %d truncated: total length %d, %d bytes captured", off, total, len(ip))
	}
	return decodeAdvert(frame, off+hlen, ip[hlen:total], p)
}

// checkIPv4Header validates the IPv4 header at the start of ip (at frame
// offset off) and returns its length and the packet's total length. A
// total length of 0 (captures of TCP segmentation offload) stands for the
// captured length.
func checkIPv4Header(ip []byte, off int) (hlen, total int, err error) {
	if len(ip) < ipv4HeaderLen {
		return 0, 0, fmt.Errorf("%d bytes captured, an IPv4 header has at least %d", len(ip), ipv4HeaderLen)
	}
	hlen = int(ip[0]&0x0f) * 4
	total = int(binary.BigEndian.Uint16(ip[2:4]))
	if total == 0 {
		total = len(ip)
	}
	switch {
	case total < ipv4HeaderLen:
		return 0, 0, fmt.Errorf("total length %d at frame byte %d: less than the %d-byte header", total, off+2, ipv4HeaderLen)
	case hlen < ipv4HeaderLen:
		return 0, 0, fmt.Errorf("header length %d (IHL %d) at frame byte %d: less than %d", hlen, hlen/4, off, ipv4HeaderLen)
	case hlen > total:
		return 0, 0, fmt.Errorf("header length %d at frame byte %d exceeds the total length %d", hlen, off, total)
	case hlen > len(ip):
		return 0, 0, fmt.Errorf("header length %d at frame byte %d, %d bytes captured", hlen, off, len(ip))
	}
	// Options: end of list (0), no-op (1), or type, length (> 2), data.
	for i := ipv4HeaderLen; i < hlen; {
		switch ip[i] {
		case 0:
			return hlen, total, nil
		case 1:
			i++
			continue
		}
		if i+1 >= hlen {
			return 0, 0, fmt.Errorf("option %d at frame byte %d: no room for its length in the %d-byte header", ip[i], off+i, hlen)
		}
		n := int(ip[i+1])
		switch {
		case n <= 2:
			return 0, 0, fmt.Errorf("option %d at frame byte %d: length %d, must be greater than 2", ip[i], off+i, n)
		case i+n > hlen:
			return 0, 0, fmt.Errorf("option %d at frame byte %d: length %d overruns the %d-byte header", ip[i], off+i, n, hlen)
		}
		i += n
	}
	return hlen, total, nil
}

// decodeIPv6Frame decodes the IPv6 packet at frame[off:] into p, stepping
// over hop-by-hop, routing, fragment and destination options headers.
func decodeIPv6Frame(frame []byte, off int, p *Packet) error {
	ip := frame[off:]
	if len(ip) < ipv6HeaderLen {
		if len(ip) >= 7 && ip[6] == vrrpcore.IPProtocol {
			return fmt.Errorf("capture: bad IPv6 header of a VRRP packet at frame byte %d: %d bytes captured, an IPv6 header has %d",
				off, len(ip), ipv6HeaderLen)
		}
		return ErrNotVRRP
	}
	plen, next := int(binary.BigEndian.Uint16(ip[4:6])), ip[6]
	if plen == 0 {
		// A jumbogram (RFC 2675) or a broken header: no advert either way.
		if next == vrrpcore.IPProtocol {
			return fmt.Errorf("capture: bad IPv6 header of a VRRP packet at frame byte %d: payload length 0 at frame byte %d", off, off+4)
		}
		return ErrNotVRRP
	}
	p.Family = 6
	p.Src = netip.AddrFrom16([16]byte(ip[8:24]))
	p.Dst = netip.AddrFrom16([16]byte(ip[24:40]))
	p.TTL = ip[7]
	p.FlowLabel = binary.BigEndian.Uint32(ip[0:4]) & 0xfffff

	payload := ip[ipv6HeaderLen:]
	payload = payload[:min(plen, len(payload))]
	pos := off + ipv6HeaderLen
	fragment := false
walk:
	for first := true; ; first = false {
		switch next {
		case ipv6HopByHop, ipv6Routing, ipv6Fragment, ipv6DestOptions:
		default:
			break walk
		}
		if len(payload) < 2 {
			return ErrNotVRRP
		}
		n := (int(payload[1]) + 1) * 8
		if len(payload) < n || (first && next == ipv6HopByHop && !hopByHopOK(payload[2:n])) {
			return ErrNotVRRP
		}
		fragment = fragment || next == ipv6Fragment
		next, payload, pos = payload[0], payload[n:], pos+n
	}
	switch {
	case next != vrrpcore.IPProtocol:
		return ErrNotVRRP
	case fragment:
		return fmt.Errorf("capture: IPv6 fragment of a VRRP packet from %v: VRRP adverts are never fragmented", p.Src)
	}
	if got := len(ip) - ipv6HeaderLen; got < plen {
		return fmt.Errorf("capture: IPv6 packet at frame byte %d truncated: payload length %d, %d bytes captured", off, plen, got)
	}
	return decodeAdvert(frame, pos, payload, p)
}

// hopByHopOK reports whether the options of a hop-by-hop header (after
// its first two bytes) are well formed: Pad1, or type, length and data
// within the header. A jumbo payload option is refused: the packet has a
// payload length, so it is malformed (RFC 2675 §3).
func hopByHopOK(opts []byte) bool {
	for len(opts) > 0 {
		if opts[0] == 0 {
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || len(opts) < 2+int(opts[1]) || opts[0] == ipv6OptJumbo {
			return false
		}
		opts = opts[2+int(opts[1]):]
	}
	return true
}

// decodeAdvert decodes msg, the VRRP message at frame byte off, into p.
func decodeAdvert(frame []byte, off int, msg []byte, p *Packet) error {
	p.Length = len(msg)
	err := p.Advert.Decode(msg, p.Src, p.Dst)
	if _, ok := err.(*vrrpcore.DecodeError); ok {
		return fmt.Errorf("capture: VRRP message at frame byte %d: %w", off, err)
	}
	return err
}

// direction maps a Linux cooked capture packet type to a Direction.
func direction(t uint16) Direction {
	switch t {
	case unixPacketHost, unixPacketBroadcast, unixPacketMulticast, unixPacketOtherhost:
		return DirIn
	case unixPacketOutgoing:
		return DirOut
	}
	return DirUnknown
}

// Linux packet types (PACKET_HOST, ... in linux/if_packet.h), as Linux
// cooked captures record them.
const (
	unixPacketHost      = 0
	unixPacketBroadcast = 1
	unixPacketMulticast = 2
	unixPacketOtherhost = 3
	unixPacketOutgoing  = 4
)
