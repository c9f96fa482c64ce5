package capture

import (
	"encoding/binary"
	"fmt"
	"net"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// LinkTypeLinuxSLL2 is LINKTYPE_LINUX_SLL2 (276), the Linux cooked capture
// v2 that tcpdump writes for "-i any", as gopacket v1.1.19 carries it: its
// layers.LinkType is a uint8, so pcapgo reports 276 truncated to 20, a
// value no other link type uses.
const LinkTypeLinuxSLL2 layers.LinkType = 276 % 256

// sll2HeaderLen is the fixed length of a LINKTYPE_LINUX_SLL2 header.
const sll2HeaderLen = 20

// LayerTypeLinuxSLL2 is the gopacket layer type of LinuxSLL2.
var LayerTypeLinuxSLL2 = gopacket.RegisterLayerType(1276, gopacket.LayerTypeMetadata{
	Name:    "LinuxSLL2",
	Decoder: gopacket.DecodeFunc(decodeLinuxSLL2),
})

// LinuxSLL2 is the Linux cooked capture v2 header
// (https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL2.html), 20 bytes:
// protocol, reserved, interface index, ARPHRD_ type, packet type,
// link-layer address length and 8 bytes of link-layer address. gopacket
// v1.1.19 has no layer for it.
type LinuxSLL2 struct {
	layers.BaseLayer
	ProtocolType   layers.EthernetType       // EtherType of the payload
	Reserved       uint16                    // must be zero
	InterfaceIndex uint32                    // ifindex of the interface the packet was seen on
	ARPHRDType     uint16                    // ARPHRD_ type of that interface (1 = Ethernet)
	PacketType     layers.LinuxSLLPacketType // host, broadcast, multicast, otherhost, outgoing...
	AddrLen        uint8                     // length of the link-layer address, may exceed 8
	Addr           net.HardwareAddr          // link-layer source address, at most its first 8 bytes
}

// LayerType returns LayerTypeLinuxSLL2.
func (s *LinuxSLL2) LayerType() gopacket.LayerType { return LayerTypeLinuxSLL2 }

// CanDecode returns LayerTypeLinuxSLL2.
func (s *LinuxSLL2) CanDecode() gopacket.LayerClass { return LayerTypeLinuxSLL2 }

// NextLayerType returns the layer type of ProtocolType.
func (s *LinuxSLL2) NextLayerType() gopacket.LayerType { return s.ProtocolType.LayerType() }

// DecodeFromBytes decodes the header, aliasing data.
func (s *LinuxSLL2) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < sll2HeaderLen {
		df.SetTruncated()
		return fmt.Errorf("Linux SLL2 header truncated at byte %d: need %d bytes", len(data), sll2HeaderLen)
	}
	s.ProtocolType = layers.EthernetType(binary.BigEndian.Uint16(data[0:2]))
	s.Reserved = binary.BigEndian.Uint16(data[2:4])
	s.InterfaceIndex = binary.BigEndian.Uint32(data[4:8])
	s.ARPHRDType = binary.BigEndian.Uint16(data[8:10])
	s.PacketType = layers.LinuxSLLPacketType(data[10])
	s.AddrLen = data[11]
	s.Addr = net.HardwareAddr(data[12 : 12+min(int(s.AddrLen), 8)])
	s.BaseLayer = layers.BaseLayer{Contents: data[:sll2HeaderLen], Payload: data[sll2HeaderLen:]}
	return nil
}

// SerializeTo writes the header in front of b's contents. Addr is written
// into the 8-byte address field (longer addresses are cut); with
// opts.FixLengths AddrLen becomes len(Addr).
func (s *LinuxSLL2) SerializeTo(b gopacket.SerializeBuffer, opts gopacket.SerializeOptions) error {
	h, err := b.PrependBytes(sll2HeaderLen)
	if err != nil {
		return err
	}
	if opts.FixLengths {
		s.AddrLen = uint8(min(len(s.Addr), 255))
	}
	binary.BigEndian.PutUint16(h[0:2], uint16(s.ProtocolType))
	binary.BigEndian.PutUint16(h[2:4], s.Reserved)
	binary.BigEndian.PutUint32(h[4:8], s.InterfaceIndex)
	binary.BigEndian.PutUint16(h[8:10], s.ARPHRDType)
	h[10] = byte(s.PacketType)
	h[11] = s.AddrLen
	clear(h[12:20])
	copy(h[12:20], s.Addr)
	return nil
}

func decodeLinuxSLL2(data []byte, p gopacket.PacketBuilder) error {
	s := &LinuxSLL2{}
	if err := s.DecodeFromBytes(data, p); err != nil {
		return err
	}
	p.AddLayer(s)
	return p.NextDecoder(s.ProtocolType)
}
