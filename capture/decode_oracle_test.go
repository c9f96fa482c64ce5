package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/gopacketlayer"
)

// gopacketDecoder is the decoder this package had before it decoded link
// and IP headers itself: gopacket's DecodingLayerParser over its layers.
// The tests keep it as an oracle: the own decoder must classify every
// frame as it did and fill the same Packet, except where it deliberately
// differs (see oracleApplies).
type gopacketDecoder struct {
	eth  layers.Ethernet
	vlan layers.Dot1Q
	sll  oracleSLL
	sll2 oracleSLL2
	ip4  layers.IPv4
	ip6  layers.IPv6
	ext  layers.IPv6ExtensionSkipper
	vrrp gopacketlayer.Layer

	ethP, sllP, sll2P, ip4P, ip6P *gopacket.DecodingLayerParser
	decoded                       []gopacket.LayerType
}

func newGopacketDecoder() *gopacketDecoder {
	d := &gopacketDecoder{decoded: make([]gopacket.LayerType, 0, 16)}
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
	d.sll2P = parser(oracleLayerTypeSLL2)
	d.ip4P = parser(layers.LayerTypeIPv4)
	d.ip6P = parser(layers.LayerTypeIPv6)
	return d
}

func (d *gopacketDecoder) Decode(lt LinkType, frame []byte, p *Packet) error {
	addrs, t := p.Advert.Addrs[:0], p.Time
	*p = Packet{Time: t}
	p.Advert.Addrs = addrs

	var parser *gopacket.DecodingLayerParser
	first := layers.LayerTypeIPv4
	switch lt {
	case LinkTypeEthernet:
		parser, first = d.ethP, layers.LayerTypeEthernet
	case LinkTypeLinuxSLL:
		parser, first = d.sllP, layers.LayerTypeLinuxSLL
	case LinkTypeLinuxSLL2:
		parser, first = d.sll2P, oracleLayerTypeSLL2
	case LinkTypeIPv4:
		parser = d.ip4P
	case LinkTypeIPv6:
		parser, first = d.ip6P, layers.LayerTypeIPv6
	case LinkTypeRaw, linkTypeDLTRaw12, linkTypeDLTRaw14:
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
		return fmt.Errorf("capture: unsupported link type %d", lt)
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
			p.Direction = direction(uint16(d.sll.PacketType))
			if d.sll.AddrLen == 6 {
				copy(p.SrcMAC[:], d.sll.Addr)
				p.HasMAC = true
			}
		case oracleLayerTypeSLL2:
			p.Direction = direction(uint16(d.sll2.PacketType))
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
	next, lastPayload := first, frame
	if n := len(d.decoded); n > 0 {
		last := d.layer(d.decoded[n-1])
		next, lastPayload = last.NextLayerType(), last.LayerPayload()
	}
	isVRRP := haveVRRP || next == layers.LayerTypeVRRP
	switch {
	case ipType == gopacket.LayerTypeZero:
		if perr == nil {
			return ErrNotVRRP
		}
		if next == layers.LayerTypeIPv4 && len(lastPayload) >= 10 && lastPayload[9] == vrrpcore.IPProtocol ||
			next == layers.LayerTypeIPv6 && len(lastPayload) >= 7 && lastPayload[6] == vrrpcore.IPProtocol {
			return fmt.Errorf("capture: bad IP header: %v", perr)
		}
		return ErrNotVRRP
	case ipType == layers.LayerTypeIPv4 && d.ip4.Protocol != vrrpcore.IPProtocol:
		return ErrNotVRRP
	case ipType == layers.LayerTypeIPv4 && (d.ip4.Flags&layers.IPv4MoreFragments != 0 || d.ip4.FragOffset != 0):
		return errors.New("capture: IPv4 fragment")
	case !isVRRP:
		return ErrNotVRRP
	case fragment6:
		return errors.New("capture: IPv6 fragment")
	}
	if ipType == layers.LayerTypeIPv4 {
		if len(frame)-oracleOffset(frame, d.ip4.Contents) < int(d.ip4.Length) {
			return errors.New("capture: IPv4 truncated")
		}
	} else if len(frame)-oracleOffset(frame, d.ip6.Contents)-len(d.ip6.Contents) < int(d.ip6.Length) {
		return errors.New("capture: IPv6 truncated")
	}
	if !haveVRRP && perr == nil {
		_ = d.vrrp.DecodeFromBytes(lastPayload, gopacket.NilDecodeFeedback)
	}
	msg := d.vrrp.LayerContents()
	p.Length = len(msg)
	err := d.vrrp.Verify(p.Src, p.Dst)
	p.Advert = d.vrrp.Advert
	p.Advert.Addrs = append(addrs, d.vrrp.Addrs...)
	if _, ok := err.(*vrrpcore.DecodeError); ok {
		return fmt.Errorf("capture: VRRP message at frame byte %d: %w", oracleOffset(frame, msg), err)
	}
	return err
}

func (d *gopacketDecoder) layer(t gopacket.LayerType) gopacket.DecodingLayer {
	switch t {
	case layers.LayerTypeEthernet:
		return &d.eth
	case layers.LayerTypeDot1Q:
		return &d.vlan
	case layers.LayerTypeLinuxSLL:
		return &d.sll
	case oracleLayerTypeSLL2:
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

func oracleOffset(frame, sub []byte) int { return cap(frame) - cap(sub) }

// oracleSLL is layers.LinuxSLL safe for address lengths over 8.
type oracleSLL struct{ layers.LinuxSLL }

func (s *oracleSLL) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 16 || binary.BigEndian.Uint16(data[4:6]) <= 8 {
		return s.LinuxSLL.DecodeFromBytes(data, df)
	}
	s.PacketType = layers.LinuxSLLPacketType(binary.BigEndian.Uint16(data[0:2]))
	s.AddrLen = binary.BigEndian.Uint16(data[4:6])
	s.Addr = data[6:14]
	s.EthernetType = layers.EthernetType(binary.BigEndian.Uint16(data[14:16]))
	s.BaseLayer = layers.BaseLayer{Contents: data[:16], Payload: data[16:]}
	return nil
}

var oracleLayerTypeSLL2 = gopacket.RegisterLayerType(1276, gopacket.LayerTypeMetadata{Name: "LinuxSLL2"})

// oracleSLL2 is the Linux cooked v2 layer the package had for gopacket.
type oracleSLL2 struct {
	layers.BaseLayer
	ProtocolType layers.EthernetType
	PacketType   layers.LinuxSLLPacketType
	AddrLen      uint8
	Addr         net.HardwareAddr
}

func (s *oracleSLL2) CanDecode() gopacket.LayerClass    { return oracleLayerTypeSLL2 }
func (s *oracleSLL2) NextLayerType() gopacket.LayerType { return s.ProtocolType.LayerType() }
func (s *oracleSLL2) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 20 {
		return errors.New("Linux SLL2 header truncated")
	}
	s.ProtocolType = layers.EthernetType(binary.BigEndian.Uint16(data[0:2]))
	s.PacketType = layers.LinuxSLLPacketType(data[10])
	s.AddrLen = data[11]
	s.Addr = net.HardwareAddr(data[12 : 12+min(int(s.AddrLen), 8)])
	s.BaseLayer = layers.BaseLayer{Contents: data[:20], Payload: data[20:]}
	return nil
}

// ipInIP reports whether an IP protocol number is one gopacket decoded as a
// nested IPv4 or IPv6 packet.
func ipInIP(proto uint8) bool { return proto == 4 || proto == 41 || proto == 94 }

// oracleApplies reports whether the gopacket decoder is the reference for
// frame. The own decoder deliberately differs on frames with
//   - an IPv6 hop-by-hop header first: gopacket parsed it inside its IPv6
//     layer, let options run past the header and cut the payload after it
//     to the payload length (so trailing bytes reached the VRRP decoder);
//     the own decoder keeps options within the header, as the kernel does;
//   - an IPv6 payload length of 0 (jumbogram or broken header);
//   - the pre-standard QinQ tag 0x9100, which the wire filter accepts and
//     gopacket did not decode;
//   - IP in IP (protocol or next header 4, 41, 94): gopacket decoded the
//     inner packet as if it were the frame's, even under a broken outer
//     header; the own decoder takes the outer header, as the VRRP socket
//     does (a tunnelled advert is not VRRP on this link).
func oracleApplies(lt LinkType, frame []byte) bool {
	var etype uint16
	off := 0
	switch lt {
	case LinkTypeEthernet:
		if len(frame) < 14 {
			return true
		}
		etype, off = binary.BigEndian.Uint16(frame[12:]), 14
	case LinkTypeLinuxSLL:
		if len(frame) < 16 {
			return true
		}
		etype, off = binary.BigEndian.Uint16(frame[14:]), 16
	case LinkTypeLinuxSLL2:
		if len(frame) < 20 {
			return true
		}
		etype, off = binary.BigEndian.Uint16(frame[0:]), 20
	case LinkTypeIPv6:
		etype = etherTypeIPv6
	case LinkTypeRaw, linkTypeDLTRaw12, linkTypeDLTRaw14:
		if len(frame) > 0 && frame[0]>>4 == 6 {
			etype = etherTypeIPv6
		} else {
			etype = etherTypeIPv4
		}
	default:
		return true
	}
	for etype == etherTypeDot1Q || etype == etherTypeDot1AD || etype == etherTypeQinQ {
		if etype == etherTypeQinQ {
			return false
		}
		if len(frame)-off < 4 {
			return true
		}
		etype, off = binary.BigEndian.Uint16(frame[off+2:]), off+4
	}
	if etype == etherTypeIPv4 {
		return len(frame)-off < 10 || !ipInIP(frame[off+9])
	}
	if etype != etherTypeIPv6 || len(frame)-off < 40 {
		return true
	}
	if ipInIP(frame[off+6]) {
		return false
	}
	return frame[off+6] != ipv6HopByHop && binary.BigEndian.Uint16(frame[off+4:]) != 0
}

// resultClass names the kind of Decode's result.
func resultClass(err error) string {
	var de *vrrpcore.DecodeError
	var ce *vrrpcore.ChecksumError
	switch {
	case err == nil:
		return "advert"
	case err == ErrNotVRRP:
		return "not VRRP"
	case errors.As(err, &ce):
		return "checksum error"
	case errors.As(err, &de):
		return "VRRP decode error"
	}
	return "other error"
}

// compareWithOracle decodes frame with both decoders and reports a
// difference in the result's kind, the VRRP error, or the Packet.
func compareWithOracle(d *Decoder, o *gopacketDecoder, lt LinkType, frame []byte, p, q *Packet) error {
	if !oracleApplies(lt, frame) {
		return nil
	}
	err, oerr := d.Decode(lt, frame, p), o.Decode(lt, frame, q)
	c, oc := resultClass(err), resultClass(oerr)
	if c != oc {
		return fmt.Errorf("own decoder: %s (%v); gopacket: %s (%v)", c, err, oc, oerr)
	}
	switch c {
	case "VRRP decode error":
		if err.Error() != oerr.Error() {
			return fmt.Errorf("own decoder: %v; gopacket: %v", err, oerr)
		}
	case "advert", "checksum error":
		if !packetsEqual(*p, *q) {
			return fmt.Errorf("own decoder\n%+v\ngopacket\n%+v", *p, *q)
		}
	}
	return nil
}

// mutations returns frame cut at every length and with each of the first
// 80 bytes set to a few telling values.
func mutations(frame []byte) [][]byte {
	var out [][]byte
	for n := range len(frame) {
		out = append(out, frame[:n])
	}
	for i := range min(len(frame), 80) {
		for _, v := range []byte{0, 0xff, frame[i] ^ 1, frame[i] ^ 0x80, 0x70, 0x2c, 0x3c, 0x2b, 0x08, 0x81, 0x45, 0x60, 0x06} {
			m := append([]byte(nil), frame...)
			m[i] = v
			out = append(out, m)
		}
	}
	return out
}

// The own decoder agrees with gopacket's layers on every test frame, the
// first frames of every real capture, and many mutations of them.
func TestDecodeMatchesGopacket(t *testing.T) {
	base := allTestFrames(t)
	eth, eth6 := unhex(t, frameV3IPv4), unhex(t, frameV3IPv6)
	base = append(base,
		capturedFrame{LinkTypeEthernet, withIPv4Options(eth, 0x94, 4, 0, 0)},
		capturedFrame{LinkTypeEthernet, withIPv6Ext(eth6, []byte{60, 43}, make([]byte, 8), make([]byte, 16))},
		capturedFrame{LinkTypeEthernet, withIPv6Fragment(eth6)},
		capturedFrame{LinkTypeLinuxSLL, sllFrame(eth, 0, 20)},
		capturedFrame{LinkTypeIPv4, rawIP(eth)},
	)
	for _, path := range captureFiles(t) {
		frames := readFrames(t, path)
		base = append(base, frames[:min(len(frames), 3)]...)
	}
	d, o := NewDecoder(), newGopacketDecoder()
	var p, q Packet
	n, failed := 0, 0
	classes := map[string]int{}
	for _, f := range base {
		for _, m := range mutations(f.frame) {
			n++
			classes[resultClass(d.Decode(f.lt, m, &p))]++
			if err := compareWithOracle(d, o, f.lt, m, &p, &q); err != nil {
				failed++
				if failed <= 10 {
					t.Errorf("link type %v frame % x:\n%v", f.lt, m, err)
				}
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d frames differ", failed, n)
	}
	if len(classes) != 5 {
		t.Errorf("the frames cover only %v", classes)
	}
	t.Logf("%d frames compared: %v", n, classes)
	if n < 10000 {
		t.Errorf("only %d frames compared", n)
	}
}
