package vrrpcore

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// FuzzDecode feeds arbitrary messages and addresses to Decode, with and
// without the addresses (gopacketlayer checks its layer against Decode).
// No panic; errors must be of the documented types; whatever decodes must
// re-encode to the same bytes.
// Seeds: testdata/fuzz/FuzzDecode (the real vectors and the error cases).
func FuzzDecode(f *testing.F) {
	for _, v := range vectors {
		msg, src, dst := ipPayload(f, unhex(f, v.frame))
		f.Add(msg, src.AsSlice(), dst.AsSlice())
	}
	f.Fuzz(func(t *testing.T, msg, srcb, dstb []byte) {
		src, _ := netip.AddrFromSlice(srcb)
		dst, _ := netip.AddrFromSlice(dstb)
		var a Advert
		err := a.Decode(msg, src, dst)

		// Decoding without the addresses infers the family; when that
		// succeeds, the addresses may only add a family mismatch.
		var inferred Advert
		if ierr := inferred.Decode(msg, netip.Addr{}, netip.Addr{}); ierr == nil && err == nil && !slices.Equal(inferred.Addrs, a.Addrs) {
			t.Fatalf("inferred addresses %v, with the IP addresses %v", inferred.Addrs, a.Addrs)
		}

		var de *DecodeError
		var ce *ChecksumError
		switch {
		case err == nil:
			if src.IsValid() && dst.IsValid() && a.Checksummed != ChecksumMessage && a.Checksummed != ChecksumPseudoHeader &&
				(a.Checksummed != ChecksumOldUnicast || !oldUnicast(a.Version, dst.Unmap())) {
				t.Fatalf("verified advert with Checksummed %v", a.Checksummed)
			}
		case errors.As(err, &ce):
			if a.Checksummed != ChecksumBad || ce.Got != a.Checksum {
				t.Fatalf("%v with Checksummed %v, Checksum %#04x", err, a.Checksummed, a.Checksum)
			}
		case errors.As(err, &de):
			if de.Offset < 0 || de.Offset > len(msg) || de.Field == "" || !strings.HasPrefix(err.Error(), "vrrp: ") {
				t.Fatalf("malformed DecodeError %+v", de)
			}
			return
		default:
			if !strings.Contains(err.Error(), "different address families") {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		// Re-encoding with the carried checksum gives the same bytes.
		raw, err := a.AppendBinary(nil, src, dst, ChecksumUnverified)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", a, err)
		}
		if !bytes.Equal(raw, msg) {
			t.Fatalf("re-encoded\n% x\nwant\n% x", raw, msg)
		}
		// Recomputing the verified checksum gives it back (0x0000 and
		// 0xffff are the same one's complement zero).
		if kind := a.Checksummed; kind == ChecksumMessage || kind == ChecksumPseudoHeader || kind == ChecksumOldUnicast {
			want := a.Checksum
			b, err := a.AppendBinary(nil, src, dst, kind)
			if err != nil {
				t.Fatal(err)
			}
			if got := a.Checksum; got != want && got|want != 0xffff {
				t.Fatalf("recomputed %v checksum %#04x, packet carries %#04x", kind, got, want)
			}
			if !bytes.Equal(b[:6], msg[:6]) || !bytes.Equal(b[8:], msg[8:]) {
				t.Fatalf("re-encoded\n% x\nwant\n% x", b, msg)
			}
		}
	})
}

// roundTripCase builds a valid advert, addresses and checksum kind from
// arbitrary values, as FuzzRoundTrip and TestRoundTripProperty need.
func roundTripCase(version, vrid, prio uint8, interval uint16, auth []byte, reserved uint8,
	addrData []byte, ipv6 bool, kindSel uint8, checksum uint16) (a Advert, src, dst netip.Addr, kind ChecksumKind) {
	a = Advert{Version: 2 + version%2, Type: TypeAdvertisement, VRID: max(vrid, 1), Priority: prio, Checksum: checksum}
	ipv6 = ipv6 && a.Version == 3
	alen := 4
	if ipv6 {
		alen = 16
	}
	// The source comes from the first address's worth of bytes, the rest
	// are virtual addresses.
	srcBytes := make([]byte, alen)
	copy(srcBytes, addrData)
	src, _ = netip.AddrFromSlice(srcBytes)
	dst = GroupIPv4
	if ipv6 {
		dst = GroupIPv6
	}
	if kindSel&0x10 != 0 { // unicast
		dst = src.Next()
		if !dst.IsValid() {
			dst = src.Prev()
		}
	}
	if len(addrData) > alen {
		addrData = addrData[alen:]
	} else {
		addrData = nil
	}
	for len(addrData) >= alen && len(a.Addrs) < maxAddrs {
		ad, _ := netip.AddrFromSlice(addrData[:alen])
		a.Addrs = append(a.Addrs, ad)
		addrData = addrData[alen:]
	}
	if a.Version == 2 {
		a.Interval = time.Duration(1+interval%255) * time.Second
		a.AuthType = AuthType(reserved)
		copy(a.AuthData[:], auth)
		kind = []ChecksumKind{ChecksumMessage, ChecksumUnverified}[kindSel%2]
	} else {
		a.Interval = time.Duration(1+interval%4095) * centisecond
		a.Reserved = reserved & 0x0f
		kinds := []ChecksumKind{ChecksumPseudoHeader, ChecksumMessage, ChecksumBad}
		if ipv6 {
			kinds = []ChecksumKind{ChecksumPseudoHeader, ChecksumBad}
		} else if oldUnicast(a.Version, dst) {
			kinds = append(kinds, ChecksumOldUnicast)
		}
		kind = kinds[int(kindSel)%len(kinds)]
	}
	a.CountIPAddrs = uint8(len(a.Addrs))
	return a, src, dst, kind
}

// checkRoundTrip encodes a, decodes the result and compares.
func checkRoundTrip(t *testing.T, a Advert, src, dst netip.Addr, kind ChecksumKind) {
	t.Helper()
	b, err := a.AppendBinary(nil, src, dst, kind)
	if err != nil {
		t.Fatalf("AppendBinary(%+v, %v, %v, %v): %v", a, src, dst, kind, err)
	}
	if len(b) != a.encodedLen(family(src)) {
		t.Fatalf("encoded %d bytes, want %d", len(b), a.encodedLen(family(src)))
	}
	var d Advert
	err = d.Decode(b, src, dst)
	var ce *ChecksumError
	switch {
	case err == nil:
	case errors.As(err, &ce) && (kind == ChecksumBad || kind == ChecksumUnverified):
		// A checksum copied from a.Checksum usually is wrong.
	default:
		t.Fatalf("Decode(% x, %v, %v): %v", b, src, dst, err)
	}
	want := a
	if kind == ChecksumMessage || kind == ChecksumPseudoHeader || kind == ChecksumOldUnicast {
		// The first variant that verifies wins; another may verify by
		// coincidence (1 in 65535), so accept any variant that checks out.
		if d.Checksummed != kind {
			again := d
			if _, err := again.AppendBinary(nil, src, dst, d.Checksummed); err != nil || (again.Checksum != a.Checksum && again.Checksum|a.Checksum != 0xffff) {
				t.Fatalf("encoded with %v, decoded as %v", kind, d.Checksummed)
			}
		}
	}
	want.Checksummed = d.Checksummed
	if !advertEqual(want, d) {
		t.Fatalf("round trip (-encoded +decoded):\n%s", cmp.Diff(want, d, cmpAdvert...))
	}
}

// FuzzRoundTrip: every advert AppendBinary accepts decodes back to itself.
// Seeds: testdata/fuzz/FuzzRoundTrip.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(0), uint8(51), uint8(150), uint16(0), []byte("vrrpdoc"), uint8(1), []byte{198, 51, 100, 1, 198, 51, 100, 51}, false, uint8(0), uint16(0))
	f.Add(uint8(1), uint8(55), uint8(110), uint16(99), []byte(nil), uint8(0),
		append(netip.MustParseAddr("fe80::1").AsSlice(), netip.MustParseAddr("2001:db8::55").AsSlice()...), true, uint8(0), uint16(0))
	f.Add(uint8(1), uint8(54), uint8(120), uint16(99), []byte(nil), uint8(0), []byte{198, 51, 100, 1, 198, 51, 100, 54}, false, uint8(0x11), uint16(0))
	f.Fuzz(func(t *testing.T, version, vrid, prio uint8, interval uint16, auth []byte, reserved uint8,
		addrData []byte, ipv6 bool, kindSel uint8, checksum uint16) {
		a, src, dst, kind := roundTripCase(version, vrid, prio, interval, auth, reserved, addrData, ipv6, kindSel, checksum)
		checkRoundTrip(t, a, src, dst, kind)
	})
}

// TestRoundTripProperty checks the round trip on many random adverts of
// every version, family and checksum kind (deterministic seed).
func TestRoundTripProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		addrData := make([]byte, r.IntN(16*12))
		for i := range addrData {
			addrData[i] = byte(r.Uint32())
		}
		auth := make([]byte, r.IntN(9))
		for i := range auth {
			auth[i] = byte(r.Uint32())
		}
		a, src, dst, kind := roundTripCase(uint8(r.Uint32()), uint8(r.Uint32()), uint8(r.Uint32()), uint16(r.Uint32()), auth,
			uint8(r.Uint32()), addrData, r.IntN(2) == 0, uint8(r.Uint32()), uint16(r.Uint32()))
		checkRoundTrip(t, a, src, dst, kind)
	}
}

// advertEqual is a cheap equality for the fuzz loops; cmp.Diff explains
// a difference.
func advertEqual(a, b Advert) bool {
	return a.Version == b.Version && a.Type == b.Type && a.VRID == b.VRID && a.Priority == b.Priority &&
		a.CountIPAddrs == b.CountIPAddrs && a.AuthType == b.AuthType && a.AuthData == b.AuthData &&
		a.Interval == b.Interval && a.Checksum == b.Checksum && a.Checksummed == b.Checksummed &&
		a.Reserved == b.Reserved && slices.Equal(a.Addrs, b.Addrs)
}

func TestAdvertEqualCoversFields(t *testing.T) {
	if n := reflect.TypeFor[Advert]().NumField(); n != 12 {
		t.Fatalf("Advert has %d fields: update advertEqual", n)
	}
}
