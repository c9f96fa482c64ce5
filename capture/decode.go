package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// ErrNotVRRP is returned by Decoder.Decode for frames that do not carry a
// VRRP packet (other protocols, non-IP frames, link headers too short to
// tell). Callers skip such frames.
var ErrNotVRRP = errors.New("capture: not a VRRP packet")

// Link types that carry raw IP with no link header: LINKTYPE_RAW and the
// platform-dependent DLT_RAW values some capture files hold instead.
const (
	linkTypeDLTRaw12 layers.LinkType = 12
	linkTypeDLTRaw14 layers.LinkType = 14
)

// SupportsLinkType reports whether Decoder.Decode understands frames of
// link type lt: Ethernet (with 802.1Q/802.1ad tags), Linux cooked capture
// v1 and v2, and raw IPv4/IPv6.
func SupportsLinkType(lt layers.LinkType) bool {
	switch lt {
	case layers.LinkTypeEthernet, layers.LinkTypeLinuxSLL, LinkTypeLinuxSLL2,
		layers.LinkTypeRaw, linkTypeDLTRaw12, linkTypeDLTRaw14, layers.LinkTypeIPv4, layers.LinkTypeIPv6:
		return true
	}
	return false
}

// LinkTypeFromPcap converts a LINKTYPE_* value as pcap and pcapng headers
// carry it (32 bits) to the layers.LinkType Decode takes. ok is false for
// values above 255, which gopacket's 8-bit LinkType cannot hold, except
// LINKTYPE_LINUX_SLL2 (276), which becomes LinkTypeLinuxSLL2.
func LinkTypeFromPcap(v uint32) (lt layers.LinkType, ok bool) {
	switch {
	case v == 276:
		return LinkTypeLinuxSLL2, true
	case v <= 255 && v != uint32(LinkTypeLinuxSLL2):
		return layers.LinkType(v), true
	}
	return 0, false
}

// Decoder turns captured frames into Packets. It decodes with gopacket's
// DecodingLayerParser into layers it owns, so once warm (its buffers and
// the Packet's address slice grown) it does not allocate per frame. A
// Decoder is not safe for concurrent use.
type Decoder struct {
	eth  layers.Ethernet
	vlan layers.Dot1Q
	sll  linuxSLL
	sll2 LinuxSLL2
	ip4  layers.IPv4
	ip6  layers.IPv6
	ext  layers.IPv6ExtensionSkipper
	vrrp vrrpcore.Layer

	// One parser per first layer; they share the layers above.
	ethP, sllP, sll2P, ip4P, ip6P *gopacket.DecodingLayerParser
	decoded                       []gopacket.LayerType
}

// NewDecoder returns a Decoder.
func NewDecoder() *Decoder {
	d := &Decoder{decoded: make([]gopacket.LayerType, 0, 16)}
	var c gopacket.DecodingLayerContainer = gopacket.DecodingLayerSparse(nil)
	for _, l := range []gopacket.DecodingLayer{&d.eth, &d.vlan, &d.sll, &d.sll2, &d.ip4, &d.ip6, &d.ext, &d.vrrp} {
		c = c.Put(l)
	}
	parser := func(first gopacket.LayerType) *gopacket.DecodingLayerParser {
		p := gopacket.NewDecodingLayerParser(first)
		p.SetDecodingLayerContainer(c)
		p.IgnoreUnsupported = true
		return p
	}
	d.ethP = parser(layers.LayerTypeEthernet)
	d.sllP = parser(layers.LayerTypeLinuxSLL)
	d.sll2P = parser(LayerTypeLinuxSLL2)
	d.ip4P = parser(layers.LayerTypeIPv4)
	d.ip6P = parser(layers.LayerTypeIPv6)
	return d
}

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
// cannot hold an advert (fragments, truncated or malformed IP headers) and
// for link types SupportsLinkType rejects. After an error other than
// ErrNotVRRP, p holds what was decoded.
func (d *Decoder) Decode(lt layers.LinkType, frame []byte, p *Packet) error {
	addrs, t := p.Advert.Addrs[:0], p.Time
	*p = Packet{Time: t}
	p.Advert.Addrs = addrs

	var parser *gopacket.DecodingLayerParser
	first := layers.LayerTypeIPv4
	switch lt {
	case layers.LinkTypeEthernet:
		parser, first = d.ethP, layers.LayerTypeEthernet
	case layers.LinkTypeLinuxSLL:
		parser, first = d.sllP, layers.LayerTypeLinuxSLL
	case LinkTypeLinuxSLL2:
		parser, first = d.sll2P, LayerTypeLinuxSLL2
	case layers.LinkTypeIPv4:
		parser = d.ip4P
	case layers.LinkTypeIPv6:
		parser, first = d.ip6P, layers.LayerTypeIPv6
	case layers.LinkTypeRaw, linkTypeDLTRaw12, linkTypeDLTRaw14:
		if len(frame) == 0 {
			return ErrNotVRRP
		}
		switch frame[0] >> 4 {
		case 4:
			parser = d.ip4P
		case 6:
			parser, first = d.ip6P, layers.LayerTypeIPv6
		default:
			return ErrNotVRRP
		}
	default:
		return fmt.Errorf("capture: unsupported link type %d (%v)", uint8(lt), lt)
	}

	perr := parser.DecodeLayers(frame, &d.decoded)
	ipType := gopacket.LayerTypeZero
	var fragment6, haveVRRP bool
	for _, typ := range d.decoded {
		switch typ {
		case layers.LayerTypeEthernet:
			copy(p.SrcMAC[:], d.eth.SrcMAC)
			p.HasMAC = true
		case layers.LayerTypeLinuxSLL:
			p.Direction = direction(d.sll.PacketType)
			if d.sll.AddrLen == 6 {
				copy(p.SrcMAC[:], d.sll.Addr)
				p.HasMAC = true
			}
		case LayerTypeLinuxSLL2:
			p.Direction = direction(d.sll2.PacketType)
			if d.sll2.AddrLen == 6 {
				copy(p.SrcMAC[:], d.sll2.Addr)
				p.HasMAC = true
			}
		case layers.LayerTypeDot1Q:
			p.VLAN = d.vlan.VLANIdentifier
		case layers.LayerTypeIPv4:
			ipType = typ
			p.Family = 4
			p.Src = netip.AddrFrom4([4]byte(d.ip4.SrcIP))
			p.Dst = netip.AddrFrom4([4]byte(d.ip4.DstIP))
			p.TTL = d.ip4.TTL
			p.IPID = d.ip4.Id
		case layers.LayerTypeIPv6:
			ipType = typ
			p.Family = 6
			p.Src = netip.AddrFrom16([16]byte(d.ip6.SrcIP))
			p.Dst = netip.AddrFrom16([16]byte(d.ip6.DstIP))
			p.TTL = d.ip6.HopLimit
			p.FlowLabel = d.ip6.FlowLabel
		case layers.LayerTypeIPv6Fragment:
			fragment6 = true
		case layers.LayerTypeVRRP:
			haveVRRP = true
		}
	}

	// next is the layer that failed (perr != nil) or the one the parser
	// did not reach; lastPayload is what the last decoded layer left.
	next, lastPayload := first, frame
	if n := len(d.decoded); n > 0 {
		last := d.layer(d.decoded[n-1])
		next, lastPayload = last.NextLayerType(), last.LayerPayload()
	}
	isVRRP := haveVRRP || next == layers.LayerTypeVRRP
	switch {
	case ipType == gopacket.LayerTypeZero:
		return brokenIPHeader(frame, lastPayload, next, perr)
	case ipType == layers.LayerTypeIPv4 && d.ip4.Protocol != vrrpcore.IPProtocol:
		return ErrNotVRRP
	case ipType == layers.LayerTypeIPv4 && (d.ip4.Flags&layers.IPv4MoreFragments != 0 || d.ip4.FragOffset != 0):
		return fmt.Errorf("capture: IPv4 fragment (offset %d, more fragments %t) of a VRRP packet from %v: VRRP adverts are never fragmented",
			int(d.ip4.FragOffset)*8, d.ip4.Flags&layers.IPv4MoreFragments != 0, p.Src)
	case !isVRRP:
		return ErrNotVRRP
	case fragment6:
		return fmt.Errorf("capture: IPv6 fragment of a VRRP packet from %v: VRRP adverts are never fragmented", p.Src)
	}
	if err := d.truncatedIP(frame, ipType); err != nil {
		return err
	}
	if !haveVRRP && perr == nil {
		// An empty IP payload stops the parser before VRRP.
		_ = d.vrrp.DecodeFromBytes(lastPayload, gopacket.NilDecodeFeedback)
	}
	msg := d.vrrp.LayerContents()
	p.Length = len(msg)
	err := d.vrrp.Verify(p.Src, p.Dst)
	p.Advert = d.vrrp.Advert
	p.Advert.Addrs = append(addrs, d.vrrp.Addrs...)
	if _, ok := err.(*vrrpcore.DecodeError); ok {
		return fmt.Errorf("capture: VRRP message at frame byte %d: %w", offset(frame, msg), err)
	}
	return err
}

// layer returns the decoding layer of type t.
func (d *Decoder) layer(t gopacket.LayerType) gopacket.DecodingLayer {
	switch t {
	case layers.LayerTypeEthernet:
		return &d.eth
	case layers.LayerTypeDot1Q:
		return &d.vlan
	case layers.LayerTypeLinuxSLL:
		return &d.sll
	case LayerTypeLinuxSLL2:
		return &d.sll2
	case layers.LayerTypeIPv4:
		return &d.ip4
	case layers.LayerTypeIPv6:
		return &d.ip6
	case layers.LayerTypeVRRP:
		return &d.vrrp
	}
	return &d.ext
}

// brokenIPHeader handles a frame whose IP header did not decode: an error
// if it failed on an IP header whose protocol field says VRRP, otherwise
// ErrNotVRRP (non-IP frames, other protocols, link headers cut short).
func brokenIPHeader(frame, ip []byte, next gopacket.LayerType, perr error) error {
	if perr == nil {
		return ErrNotVRRP
	}
	switch {
	case next == layers.LayerTypeIPv4 && len(ip) >= 10 && ip[9] == vrrpcore.IPProtocol:
		return fmt.Errorf("capture: bad IPv4 header of a VRRP packet at frame byte %d: %v", offset(frame, ip), perr)
	case next == layers.LayerTypeIPv6 && len(ip) >= 7 && ip[6] == vrrpcore.IPProtocol:
		return fmt.Errorf("capture: bad IPv6 header of a VRRP packet at frame byte %d: %v", offset(frame, ip), perr)
	}
	return ErrNotVRRP
}

// truncatedIP reports an IP packet cut short by the capture: the VRRP
// message would be incomplete and its checksum unverifiable.
func (d *Decoder) truncatedIP(frame []byte, ipType gopacket.LayerType) error {
	if ipType == layers.LayerTypeIPv4 {
		start := offset(frame, d.ip4.Contents)
		if got := len(frame) - start; got < int(d.ip4.Length) {
			return fmt.Errorf("capture: IPv4 packet at frame byte %d truncated: total length %d, %d bytes captured", start, d.ip4.Length, got)
		}
		return nil
	}
	start := offset(frame, d.ip6.Contents)
	if got := len(frame) - start - len(d.ip6.Contents); got < int(d.ip6.Length) {
		return fmt.Errorf("capture: IPv6 packet at frame byte %d truncated: payload length %d, %d bytes captured", start, d.ip6.Length, got)
	}
	return nil
}

// direction maps a Linux cooked capture packet type to a Direction.
func direction(t layers.LinuxSLLPacketType) Direction {
	switch t {
	case layers.LinuxSLLPacketTypeHost, layers.LinuxSLLPacketTypeBroadcast,
		layers.LinuxSLLPacketTypeMulticast, layers.LinuxSLLPacketTypeOtherhost:
		return DirIn
	case layers.LinuxSLLPacketTypeOutgoing:
		return DirOut
	}
	return DirUnknown
}

// offset is the position of sub, a subslice of frame, in frame.
func offset(frame, sub []byte) int {
	return cap(frame) - cap(sub)
}

// linuxSLL is layers.LinuxSLL safe for link-layer address lengths over 8,
// which libpcap records for interfaces with longer addresses (the header
// holds only their first 8 bytes) and on which gopacket's decoder slices
// past the header.
type linuxSLL struct{ layers.LinuxSLL }

func (s *linuxSLL) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 16 || binary.BigEndian.Uint16(data[4:6]) <= 8 {
		return s.LinuxSLL.DecodeFromBytes(data, df)
	}
	s.PacketType = layers.LinuxSLLPacketType(binary.BigEndian.Uint16(data[0:2]))
	s.AddrType = binary.BigEndian.Uint16(data[2:4])
	s.AddrLen = binary.BigEndian.Uint16(data[4:6])
	s.Addr = data[6:14]
	s.EthernetType = layers.EthernetType(binary.BigEndian.Uint16(data[14:16]))
	s.BaseLayer = layers.BaseLayer{Contents: data[:16], Payload: data[16:]}
	return nil
}
