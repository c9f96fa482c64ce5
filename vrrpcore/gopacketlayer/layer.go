// Package gopacketlayer adapts vrrpcore's VRRP codec to
// github.com/google/gopacket, for programs that decode with gopacket's
// DecodingLayerParser or build packets with gopacket.SerializeLayers.
//
// It is a package of its own so that importing vrrpcore does not link
// gopacket: gopacket/layers fills large tables at init (about 9 MB of
// resident memory), which the vrrpdoctor daemon does not pay. vrrpdoctor
// itself decodes frames with capture.Decoder.
package gopacketlayer

import (
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// Layer is a gopacket layer for VRRPv2 and VRRPv3 over IPv4 and IPv6. It
// decodes inside a gopacket.DecodingLayerParser (gopacket's IPv4 and IPv6
// layers name layers.LayerTypeVRRP as the next layer for protocol 112)
// without allocating once warm, and serialises with gopacket.SerializeLayers.
//
// The IP addresses are not known inside DecodeFromBytes, so it infers the
// address family from the message length and address count and leaves the
// checksum unverified; call Verify with the packet's source and destination
// afterwards.
type Layer struct {
	vrrpcore.Advert
	// Src and Dst are the IP source and destination. SerializeTo uses them
	// for the family and the VRRPv3 pseudo-header; Verify sets them.
	Src, Dst netip.Addr

	contents []byte
	scratch  []byte // SerializeTo's encoding buffer
}

var (
	_ gopacket.DecodingLayer     = (*Layer)(nil)
	_ gopacket.SerializableLayer = (*Layer)(nil)
	_ gopacket.Layer             = (*Layer)(nil)
)

// LayerType returns layers.LayerTypeVRRP.
func (l *Layer) LayerType() gopacket.LayerType { return layers.LayerTypeVRRP }

// CanDecode returns layers.LayerTypeVRRP.
func (l *Layer) CanDecode() gopacket.LayerClass { return layers.LayerTypeVRRP }

// NextLayerType returns gopacket.LayerTypeZero: VRRP carries no payload.
func (l *Layer) NextLayerType() gopacket.LayerType { return gopacket.LayerTypeZero }

// LayerContents returns the VRRP message last decoded.
func (l *Layer) LayerContents() []byte { return l.contents }

// LayerPayload returns nil.
func (l *Layer) LayerPayload() []byte { return nil }

// DecodeFromBytes decodes one VRRP message, aliasing data. The address
// family is inferred and the checksum left unverified (ChecksumUnverified)
// until Verify. Errors are *vrrpcore.DecodeError; a truncated message also
// marks df truncated.
func (l *Layer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	l.contents = data
	l.Src, l.Dst = netip.Addr{}, netip.Addr{}
	err := l.Advert.Decode(data, netip.Addr{}, netip.Addr{})
	if e, ok := err.(*vrrpcore.DecodeError); ok && e.Offset == len(data) {
		df.SetTruncated()
	}
	return err
}

// Verify completes the decoding with the packet's IP source and
// destination: it decodes the message again as vrrpcore.Advert.Decode does
// with those addresses and returns its result. That checks that the
// message fits the packet's address family (a *vrrpcore.DecodeError if
// not, for example VRRPv2 over IPv6 or IPv4 addresses in an IPv6 packet)
// and, with both addresses valid, verifies the checksum and sets
// Checksummed (a *vrrpcore.ChecksumError if no variant matches).
func (l *Layer) Verify(src, dst netip.Addr) error {
	l.Src, l.Dst = src.Unmap(), dst.Unmap()
	return l.Advert.Decode(l.contents, l.Src, l.Dst)
}

// SerializeTo writes the advert in front of b's contents. The family comes
// from l.Src (else the addresses). With opts.ComputeChecksums it computes
// the checksum of kind l.Checksummed if that is ChecksumMessage,
// ChecksumPseudoHeader or ChecksumOldUnicast, else the version's RFC kind (message for VRRPv2,
// pseudo-header for VRRPv3, which needs l.Src and l.Dst); without, it
// writes l.Checksum unchanged. The address count always follows l.Addrs.
func (l *Layer) SerializeTo(b gopacket.SerializeBuffer, opts gopacket.SerializeOptions) error {
	kind := vrrpcore.ChecksumUnverified
	if opts.ComputeChecksums {
		kind = l.Checksummed
		if kind != vrrpcore.ChecksumMessage && kind != vrrpcore.ChecksumPseudoHeader && kind != vrrpcore.ChecksumOldUnicast {
			kind = vrrpcore.ChecksumMessage
			if l.Version == 3 {
				kind = vrrpcore.ChecksumPseudoHeader
			}
		}
	}
	out, err := l.Advert.AppendBinary(l.scratch[:0], l.Src, l.Dst, kind)
	if err != nil {
		return err
	}
	l.scratch = out
	buf, err := b.PrependBytes(len(out))
	if err != nil {
		return err
	}
	copy(buf, out)
	return nil
}
