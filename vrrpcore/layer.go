package vrrpcore

import (
	"fmt"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
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
	Advert
	// Src and Dst are the IP source and destination. SerializeTo uses them
	// for the family and the VRRPv3 pseudo-header; Verify sets them.
	Src, Dst netip.Addr

	contents []byte
	family   uint8 // family inferred by DecodeFromBytes, 0 if none
	err      error // error of the last DecodeFromBytes
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
// until Verify. Errors are *DecodeError; a truncated message also marks df
// truncated.
func (l *Layer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	l.contents = data
	l.Src, l.Dst = netip.Addr{}, netip.Addr{}
	l.family = 0
	l.err = l.Advert.decode(data, 0)
	if l.err != nil {
		if e, ok := l.err.(*DecodeError); ok && e.Offset == len(data) {
			df.SetTruncated()
		}
		return l.err
	}
	if len(l.Addrs) > 0 {
		l.family = family(l.Addrs[0])
	}
	return nil
}

// Verify completes the decoding with the packet's IP source and
// destination and returns what Advert.Decode would for the same message
// and addresses: it checks that the message fits the packet's address
// family (a *DecodeError if not, for example VRRPv2 over IPv6 or IPv4
// addresses in an IPv6 packet) and, with both addresses valid, verifies
// the checksum and sets Checksummed (a *ChecksumError if no variant
// matches). After a failed DecodeFromBytes it decodes again with the
// family the addresses give, so the error names the real problem.
func (l *Layer) Verify(src, dst netip.Addr) error {
	src, dst = src.Unmap(), dst.Unmap()
	l.Src, l.Dst = src, dst
	fam := family(src)
	if fam == 0 {
		fam = family(dst)
	}
	mismatch := fam != 0 && ((l.family != 0 && l.family != fam) || (l.Version == 2 && fam == 6))
	if l.err != nil || mismatch || (src.IsValid() && dst.IsValid() && family(dst) != family(src)) {
		return l.Advert.Decode(l.contents, src, dst)
	}
	if !src.IsValid() || !dst.IsValid() {
		l.Checksummed = ChecksumUnverified
		return nil
	}
	return l.Advert.verify(l.contents, src, dst)
}

// SerializeTo writes the advert in front of b's contents. The family comes
// from l.Src (else the addresses). With opts.ComputeChecksums it computes
// the checksum of kind l.Checksummed if that is ChecksumMessage or
// ChecksumPseudoHeader, else the version's RFC kind (message for VRRPv2,
// pseudo-header for VRRPv3, which needs l.Src and l.Dst); without, it
// writes l.Checksum unchanged. The address count always follows l.Addrs.
func (l *Layer) SerializeTo(b gopacket.SerializeBuffer, opts gopacket.SerializeOptions) error {
	kind := ChecksumUnverified
	if opts.ComputeChecksums {
		kind = l.Checksummed
		if kind != ChecksumMessage && kind != ChecksumPseudoHeader {
			kind = ChecksumMessage
			if l.Version == 3 {
				kind = ChecksumPseudoHeader
			}
		}
	}
	fam, err := l.Advert.checkEncode(l.Src.Unmap(), l.Dst.Unmap(), kind)
	if err != nil {
		return err
	}
	buf, err := b.PrependBytes(l.Advert.encodedLen(fam))
	if err != nil {
		return err
	}
	out, err := l.Advert.AppendBinary(buf[:0], l.Src, l.Dst, kind)
	if err != nil {
		return err
	}
	if len(out) != len(buf) {
		return fmt.Errorf("vrrp: encoded %d bytes, reserved %d", len(out), len(buf))
	}
	return nil
}
