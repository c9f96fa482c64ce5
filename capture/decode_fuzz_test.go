package capture

import (
	"errors"
	"strings"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// FuzzDecodeFrame feeds arbitrary frames of every supported link type to
// one long-lived Decoder: no panic, only the documented results, a decoded
// packet consistent with its advert, and the same result as the gopacket
// decoder the package had (decode_oracle_test.go). Seeds:
// testdata/fuzz/FuzzDecodeFrame (the real and derived frames of the tests).
func FuzzDecodeFrame(f *testing.F) {
	for _, fr := range allTestFrames(f) {
		f.Add(uint16(fr.lt), fr.frame)
	}
	d, o := NewDecoder(), newGopacketDecoder()
	var p, q Packet
	f.Fuzz(func(t *testing.T, lt uint16, frame []byte) {
		// gopacket's layers, as this package used them, agree.
		if err := compareWithOracle(d, o, LinkType(lt), frame, &p, &q); err != nil {
			t.Fatal(err)
		}
		err := d.Decode(LinkType(lt), frame, &p)
		var de *vrrpcore.DecodeError
		var ce *vrrpcore.ChecksumError
		switch {
		case err == nil, errors.As(err, &ce):
			a := p.Advert
			if (p.Family != 4 && p.Family != 6) || p.Family == 4 != p.Src.Is4() || p.Family == 4 != p.Dst.Is4() ||
				p.Length < 8 || p.Length > len(frame) || int(a.CountIPAddrs) != len(a.Addrs) {
				t.Fatalf("inconsistent packet %+v", p)
			}
			// The old unicast checksum exists for VRRPv3 to a unicast
			// IPv4 address only.
			oldUnicast := a.Checksummed == vrrpcore.ChecksumOldUnicast && a.Version == 3 && p.Dst.Is4() && !p.Dst.IsMulticast()
			if err == nil && a.Checksummed != vrrpcore.ChecksumMessage && a.Checksummed != vrrpcore.ChecksumPseudoHeader && !oldUnicast {
				t.Fatalf("advert decoded without a verified checksum: %v", a.Checksummed)
			}
			if ce != nil && a.Checksummed != vrrpcore.ChecksumBad {
				t.Fatalf("%v with Checksummed %v", err, a.Checksummed)
			}
			for _, ad := range a.Addrs {
				if ad.Is4() != (p.Family == 4) {
					t.Fatalf("IPv%d packet with address %v", p.Family, ad)
				}
			}
		case err == ErrNotVRRP:
		case errors.As(err, &de):
			if !strings.HasPrefix(err.Error(), "capture: VRRP message at frame byte ") {
				t.Fatalf("DecodeError without context: %v", err)
			}
		default:
			if !strings.HasPrefix(err.Error(), "capture: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			if SupportsLinkType(LinkType(lt)) && strings.Contains(err.Error(), "unsupported link type") {
				t.Fatalf("supported link type %d rejected: %v", lt, err)
			}
		}
	})
}
