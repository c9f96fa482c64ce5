package vrrpcore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var cmpAdvert = []cmp.Option{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmpopts.EquateEmpty(),
}

func TestDecodeVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			msg, src, dst := ipPayload(t, unhex(t, v.frame))
			var a Advert
			if err := a.Decode(msg, src, dst); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if d := cmp.Diff(v.want, a, cmpAdvert...); d != "" {
				t.Errorf("Decode mismatch (-want +got):\n%s", d)
			}
		})
	}
}

// Re-encoding a decoded advert with the checksum variant it used gives
// back the exact bytes.
func TestReencodeVectorsByteExact(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			msg, src, dst := ipPayload(t, unhex(t, v.frame))
			var a Advert
			if err := a.Decode(msg, src, dst); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			got, err := a.AppendBinary([]byte{0xee}, src, dst, a.Checksummed)
			if err != nil {
				t.Fatalf("AppendBinary: %v", err)
			}
			if got[0] != 0xee || !bytes.Equal(got[1:], msg) {
				t.Errorf("AppendBinary =\n% x\nwant\n% x", got[1:], msg)
			}
			// Computing the checksum afresh gives the same bytes too.
			b := append([]byte(nil), msg...)
			b[6], b[7] = 0, 0
			var z Advert
			if err := z.Decode(msg, netip.Addr{}, netip.Addr{}); err != nil {
				t.Fatalf("Decode without addresses: %v", err)
			}
			z.Checksum = 0
			got, err = z.AppendBinary(nil, src, dst, a.Checksummed)
			if err != nil || !bytes.Equal(got, msg) {
				t.Errorf("AppendBinary with computed %v checksum = % x, %v; want % x", a.Checksummed, got, err, msg)
			}
			if z.Checksum != a.Checksum || z.Checksummed != a.Checksummed {
				t.Errorf("AppendBinary set Checksum %#04x (%v), want %#04x (%v)", z.Checksum, z.Checksummed, a.Checksum, a.Checksummed)
			}
		})
	}
}

// Checksums computed by an independent implementation, scapy
// (test/scapy/layers/vrrp.uts "VRRP - chksums" and "VRRP IPv6 - chksums").
func TestEncodeScapyChecksums(t *testing.T) {
	tests := []struct {
		name     string
		a        Advert
		src, dst string
		kind     ChecksumKind
		want     uint16
	}{
		{"v3 IPv4", Advert{Version: 3, VRID: 2, Priority: 254, Interval: 10 * time.Millisecond, Addrs: addrs("20.0.1.2", "20.0.1.3")},
			"20.0.0.3", "224.0.0.18", ChecksumPseudoHeader, 0xb25e},
		{"v3 IPv6", Advert{Version: 3, VRID: 2, Priority: 254, Interval: 10 * time.Millisecond, Addrs: addrs("2001:db8::2", "2001:db8::3")},
			"2001:db8::1", "ff02::12", ChecksumPseudoHeader, 0x481b},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.a.AppendBinary(nil, netip.MustParseAddr(tt.src), netip.MustParseAddr(tt.dst), tt.kind)
			if err != nil {
				t.Fatal(err)
			}
			if got := uint16(b[6])<<8 | uint16(b[7]); got != tt.want {
				t.Errorf("checksum %#04x, scapy computes %#04x", got, tt.want)
			}
		})
	}
}

func TestDecodeWithoutAddressesInfersFamily(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			msg, _, _ := ipPayload(t, unhex(t, v.frame))
			var a Advert
			if err := a.Decode(msg, netip.Addr{}, netip.Addr{}); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			want := v.want
			want.Checksummed = ChecksumUnverified
			if d := cmp.Diff(want, a, cmpAdvert...); d != "" {
				t.Errorf("Decode mismatch (-want +got):\n%s", d)
			}
		})
	}
}

func TestDecodeBadChecksum(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			msg, src, dst := ipPayload(t, unhex(t, v.frame))
			msg = append([]byte(nil), msg...)
			msg[7] ^= 0x5a
			var a Advert
			err := a.Decode(msg, src, dst)
			var ce *ChecksumError
			if !errors.As(err, &ce) {
				t.Fatalf("Decode error %v, want a *ChecksumError", err)
			}
			want := v.want
			want.Checksum ^= 0x5a
			want.Checksummed = ChecksumBad
			if d := cmp.Diff(want, a, cmpAdvert...); d != "" {
				t.Errorf("advert not fully decoded (-want +got):\n%s", d)
			}
			if ce.Got != want.Checksum {
				t.Errorf("Got %#04x, want %#04x", ce.Got, want.Checksum)
			}
			// The expected value is the original checksum for the RFC kind.
			rfcKind := v.want.Checksummed
			expected := ce.Expected
			if v.want.Checksummed == ChecksumMessage && v.want.Version == 3 {
				expected, rfcKind = ce.ExpectedMessage, ChecksumPseudoHeader
			}
			if expected != v.want.Checksum || ce.Kind != rfcKind {
				t.Errorf("ChecksumError %+v: want %#04x of kind %v", ce, v.want.Checksum, rfcKind)
			}
			if !strings.Contains(err.Error(), "bad checksum") {
				t.Errorf("error text %q", err)
			}
		})
	}
}

func TestChecksumErrorText(t *testing.T) {
	tests := []struct {
		e    ChecksumError
		want string
	}{
		{ChecksumError{Got: 0x1234, Expected: 0x4244, Kind: ChecksumMessage, Version: 2, Family: 4},
			"vrrp: bad checksum 0x1234 in VRRPv2 over IPv4: want 0x4244 (over the message)"},
		{ChecksumError{Got: 0x1234, Expected: 0x7b61, Kind: ChecksumPseudoHeader, ExpectedMessage: 0x0102, Version: 3, Family: 4},
			"vrrp: bad checksum 0x1234 in VRRPv3 over IPv4: want 0x7b61 (pseudo-header + message, RFC 5798) or 0x0102 (message only, RFC 9568 / keepalived v3_checksum_as_v2)"},
		{ChecksumError{Got: 0x1234, Expected: 0x7b61, Kind: ChecksumPseudoHeader, ExpectedMessage: 0x0102, OldUnicast: true, ExpectedOldUnicast: 0x0304, Version: 3, Family: 4},
			"vrrp: bad checksum 0x1234 in VRRPv3 over IPv4: want 0x7b61 (pseudo-header + message, RFC 5798) or 0x0102 (message only, RFC 9568 / keepalived v3_checksum_as_v2) or 0x0304 (pseudo-header to 224.0.0.18, keepalived before 1.3.6 unicast)"},
		{ChecksumError{Got: 0x1234, Expected: 0x6945, Kind: ChecksumPseudoHeader, Version: 3, Family: 6},
			"vrrp: bad checksum 0x1234 in VRRPv3 over IPv6: want 0x6945 (over pseudo-header + message)"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() =\n%s\nwant\n%s", got, tt.want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	v4 := netip.MustParseAddr("198.51.100.1")
	g4 := GroupIPv4
	v6 := netip.MustParseAddr("fe80::1")
	g6 := GroupIPv6
	none := netip.Addr{}
	tests := []struct {
		name     string
		msg      string
		src, dst netip.Addr
		off      int
		field    string
		want     string
	}{
		{"empty", "", v4, g4, 0, "header", "vrrp: truncated at byte 0: need 8 bytes for the VRRP header"},
		{"short header", "31 01 64", v4, g4, 3, "header", "vrrp: truncated at byte 3: need 8 bytes for the VRRP header"},
		{"version 1", "11 01 64 01 00 01 0000 c6336401 0000000000000000", v4, g4, 0, "version", "vrrp: bad version 1 at byte 0: want 2 or 3"},
		{"version 4", "41 01 64 00 00 64 0000", v4, g4, 0, "version", "vrrp: bad version 4 at byte 0: want 2 or 3"},
		{"type 2", "32 01 64 00 00 64 0000", v4, g4, 0, "type", "vrrp: bad type 2 at byte 0: want 1 (advertisement)"},
		{"vrid 0", "31 00 64 00 00 64 0000", v4, g4, 1, "vrid", "vrrp: VRID 0 at byte 1: must be 1..255"},
		{"v2 over IPv6", "21 01 64 00 00 01 0000 0000000000000000", v6, g6, 0, "version", "vrrp: VRRPv2 over IPv6 at byte 0: RFC 3768 defines VRRPv2 for IPv4 only"},
		{"v3 interval 0", "31 01 64 00 00 00 0000", v4, g4, 4, "interval", "vrrp: max advert interval 0 at byte 4: must be 1..4095 centiseconds"},
		{"v3 interval 0 reserved set", "31 01 64 00 f0 00 0000", v4, g4, 4, "interval", "vrrp: max advert interval 0 at byte 4: must be 1..4095 centiseconds"},
		{"v2 interval 0", "21 01 64 00 00 00 0000 0000000000000000", v4, g4, 5, "interval", "vrrp: advert interval 0 at byte 5: must be 1..255 seconds"},
		{"v3 truncated addresses", "31 01 64 03 00 64 0000 c6336401", v4, g4, 12, "addresses", "vrrp: truncated at byte 12: need 20 bytes for 3 IPv4 addresses"},
		{"v3 one address truncated", "31 01 64 01 00 64 0000 c63364", v4, g4, 11, "addresses", "vrrp: truncated at byte 11: need 12 bytes for 1 IPv4 address"},
		{"v3 IPv6 truncated", "31 01 64 01 00 64 0000 20010db8", v6, g6, 12, "addresses", "vrrp: truncated at byte 12: need 24 bytes for 1 IPv6 address"},
		{"v2 truncated addresses", "21 01 64 02 00 01 0000 c6336401", v4, g4, 12, "addresses", "vrrp: truncated at byte 12: need 24 bytes for 2 IPv4 addresses and authentication data"},
		// PcapPlusPlus's VRRP-V2.dat omits the 8 bytes of authentication data RFC 3768 requires.
		{"v2 without auth data (PcapPlusPlus VRRP-V2.dat)", "21016403000138fac0a80001c0a80002c0a80003", netip.MustParseAddr("192.168.0.30"), g4,
			20, "auth data", "vrrp: truncated at byte 20: need 28 bytes for 3 IPv4 addresses and 8 bytes of authentication data"},
		{"v3 count too small", "31 01 64 01 00 64 0000 c6336401 c6336402", v4, g4, 3, "count", "vrrp: address count 1 at byte 3 disagrees with the 16-byte message: 1 IPv4 address make a 12-byte message"},
		{"v3 IPv6 packet with IPv4 addresses", "31 01 64 02 00 64 0000 c6336401 c6336402", v6, g6, 16, "addresses", "vrrp: truncated at byte 16: need 40 bytes for 2 IPv6 addresses"},
		{"v3 IPv4 packet with IPv6 address", "31 01 64 01 00 64 0000 20010db8000000000000000000000001", v4, g4, 3, "count", "vrrp: address count 1 at byte 3 disagrees with the 24-byte message: 1 IPv4 address make a 12-byte message"},
		{"v2 trailing bytes", "21 01 64 01 00 01 0000 c6336401 0000000000000000 00", v4, g4, 3, "count", "vrrp: address count 1 at byte 3 disagrees with the 21-byte message: 1 IPv4 address make a 20-byte message"},
		// Without IP addresses the family is inferred from the length.
		{"inferred truncated", "31 01 64 03 00 64 0000 c6336401", none, none, 12, "addresses", "vrrp: truncated at byte 12: need 20 bytes for 3 IPv4 addresses (56 for IPv6)"},
		{"inferred no match", "31 01 64 02 00 64 0000 c6336401 c6336402 c6336403", none, none, 3, "count", "vrrp: address count 2 at byte 3 disagrees with the 20-byte message: 2 addresses make 16 bytes (IPv4) or 40 bytes (IPv6)"},
		{"inferred count 0", "31 01 64 00 00 64 0000 c6336401", none, none, 3, "count", "vrrp: address count 0 at byte 3 disagrees with the 12-byte message: an advert without addresses has 8 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a Advert
			err := a.Decode(unhex(t, tt.msg), tt.src, tt.dst)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode error %v (%T), want a *DecodeError", err, err)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n%s\nwant\n%s", err, tt.want)
			}
			if de.Offset != tt.off || de.Field != tt.field {
				t.Errorf("Offset %d Field %q, want %d %q", de.Offset, de.Field, tt.off, tt.field)
			}
		})
	}
}

func TestDecodeMixedFamilies(t *testing.T) {
	var a Advert
	msg := unhex(t, "31 01 64 00 00 64 0000")
	err := a.Decode(msg, netip.MustParseAddr("198.51.100.1"), GroupIPv6)
	if err == nil || !strings.Contains(err.Error(), "different address families") {
		t.Errorf("Decode with IPv4 source and IPv6 destination: %v", err)
	}
	// An IPv4-mapped IPv6 address counts as IPv4.
	if err := a.Decode(msg, netip.MustParseAddr("::ffff:198.51.100.1"), GroupIPv4); err != nil && !errors.As(err, new(*ChecksumError)) {
		t.Errorf("Decode with IPv4-mapped source: %v", err)
	}
}

func TestAppendBinaryErrors(t *testing.T) {
	v4, g4 := netip.MustParseAddr("198.51.100.1"), GroupIPv4
	v6, g6 := netip.MustParseAddr("fe80::1"), GroupIPv6
	base3 := Advert{Version: 3, VRID: 7, Priority: 100, Interval: time.Second, Addrs: addrs("198.51.100.7")}
	base2 := Advert{Version: 2, VRID: 7, Priority: 100, Interval: time.Second, Addrs: addrs("198.51.100.7")}
	many := make([]netip.Addr, 256)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
	}
	with := func(a Advert, f func(*Advert)) Advert { f(&a); return a }
	tests := []struct {
		name     string
		a        Advert
		src, dst netip.Addr
		kind     ChecksumKind
		want     string
	}{
		{"version 1", with(base3, func(a *Advert) { a.Version = 1 }), v4, g4, ChecksumPseudoHeader, "version 1: want 2 or 3"},
		{"type 5", with(base3, func(a *Advert) { a.Type = 5 }), v4, g4, ChecksumPseudoHeader, "type 5: only 1 (advertisement) exists"},
		{"vrid 0", with(base3, func(a *Advert) { a.VRID = 0 }), v4, g4, ChecksumPseudoHeader, "VRID 0: must be 1..255"},
		{"256 addresses", with(base3, func(a *Advert) { a.Addrs = many }), v4, g4, ChecksumPseudoHeader, "256 addresses: at most 255"},
		{"mixed src dst", base3, v4, g6, ChecksumPseudoHeader, "different address families"},
		{"IPv6 address in IPv4 advert", with(base3, func(a *Advert) { a.Addrs = addrs("198.51.100.7", "2001:db8::7") }), v4, g4, ChecksumPseudoHeader,
			"address 1 (2001:db8::7) is IPv6 in an IPv4 advert"},
		{"IPv4 address in IPv6 packet", base3, v6, g6, ChecksumPseudoHeader, "address 0 (198.51.100.7) is IPv4 in an IPv6 advert"},
		{"zero address", with(base3, func(a *Advert) { a.Addrs = []netip.Addr{{}} }), v4, g4, ChecksumPseudoHeader, "address 0 is the zero netip.Addr"},
		{"v2 over IPv6", with(base2, func(a *Advert) { a.Addrs = addrs("2001:db8::7") }), v6, g6, ChecksumMessage, "VRRPv2 over IPv6"},
		{"v2 interval 1.5s", with(base2, func(a *Advert) { a.Interval = 1500 * time.Millisecond }), v4, g4, ChecksumMessage,
			"VRRPv2 advert interval 1.5s: must be whole seconds from 1s to 255s"},
		{"v2 interval 0", with(base2, func(a *Advert) { a.Interval = 0 }), v4, g4, ChecksumMessage, "VRRPv2 advert interval 0s"},
		{"v2 interval 256s", with(base2, func(a *Advert) { a.Interval = 256 * time.Second }), v4, g4, ChecksumMessage, "VRRPv2 advert interval 4m16s"},
		{"v2 reserved", with(base2, func(a *Advert) { a.Reserved = 1 }), v4, g4, ChecksumMessage, "VRRPv2 has no reserved bits"},
		{"v3 interval 5ms", with(base3, func(a *Advert) { a.Interval = 5 * time.Millisecond }), v4, g4, ChecksumPseudoHeader,
			"VRRPv3 max advert interval 5ms: must be a multiple of 10ms from 10ms to 40.95s"},
		{"v3 interval 15ms", with(base3, func(a *Advert) { a.Interval = 15 * time.Millisecond }), v4, g4, ChecksumPseudoHeader, "VRRPv3 max advert interval 15ms"},
		{"v3 interval 41s", with(base3, func(a *Advert) { a.Interval = 41 * time.Second }), v4, g4, ChecksumPseudoHeader, "VRRPv3 max advert interval 41s"},
		{"v3 auth", with(base3, func(a *Advert) { a.AuthType = AuthSimple }), v4, g4, ChecksumPseudoHeader, "authentication (type simple) exists in VRRPv2 only"},
		{"v3 auth data", with(base3, func(a *Advert) { a.AuthData[0] = 'x' }), v4, g4, ChecksumPseudoHeader, "authentication (type none) exists in VRRPv2 only"},
		{"v3 reserved 16", with(base3, func(a *Advert) { a.Reserved = 16 }), v4, g4, ChecksumPseudoHeader, "reserved bits 0x10 do not fit in 4 bits"},
		{"v3 IPv6 message-only", with(base3, func(a *Advert) { a.Addrs = addrs("2001:db8::7") }), v6, g6, ChecksumMessage, "IPv6 always sums the pseudo-header"},
		{"v2 pseudo-header", base2, v4, g4, ChecksumPseudoHeader, "VRRPv2 sums the message only"},
		{"pseudo-header without addresses", base3, netip.Addr{}, netip.Addr{}, ChecksumPseudoHeader, "needs the source and destination addresses"},
		{"unknown kind", base3, v4, g4, ChecksumKind(9), "unknown checksum kind 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.a
			in := []byte{1, 2, 3}
			out, err := a.AppendBinary(in, tt.src, tt.dst, tt.kind)
			if err == nil {
				t.Fatalf("AppendBinary succeeded: % x", out)
			}
			if !strings.HasPrefix(err.Error(), "vrrp: cannot encode: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			if !bytes.Equal(out, in) {
				t.Errorf("AppendBinary changed b on error: % x", out)
			}
		})
	}
}

func TestAppendBinaryFillsAdvert(t *testing.T) {
	a := Advert{Version: 3, VRID: 9, Priority: 255, Interval: 40950 * time.Millisecond, Reserved: 0xa,
		Addrs: addrs("2001:db8::9", "2001:db8::10")}
	src, dst := netip.MustParseAddr("fe80::9"), GroupIPv6
	b, err := a.AppendBinary(nil, src, dst, ChecksumPseudoHeader)
	if err != nil {
		t.Fatal(err)
	}
	if a.Type != TypeAdvertisement || a.CountIPAddrs != 2 || a.Checksummed != ChecksumPseudoHeader {
		t.Errorf("advert after AppendBinary: %+v", a)
	}
	if len(b) != 8+2*16 || b[4] != 0xaf || b[5] != 0xff {
		t.Errorf("encoded % x: want 40 bytes, reserved 0xa and interval 4095 cs", b)
	}
	var d Advert
	if err := d.Decode(b, src, dst); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, d, cmpAdvert...); diff != "" {
		t.Errorf("round trip (-encoded +decoded):\n%s", diff)
	}
}

func TestDecodeReusesAddrs(t *testing.T) {
	msg, src, dst := ipPayload(t, unhex(t, vectors[3].frame))
	var a Advert
	if err := a.Decode(msg, src, dst); err != nil {
		t.Fatal(err)
	}
	first := &a.Addrs[0]
	allocs := testing.AllocsPerRun(100, func() {
		if err := a.Decode(msg, src, dst); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("warm Decode allocates %.1f times, want 0", allocs)
	}
	if &a.Addrs[0] != first {
		t.Errorf("Decode did not reuse a.Addrs")
	}
	buf := make([]byte, 0, 64)
	allocs = testing.AllocsPerRun(100, func() {
		if _, err := a.AppendBinary(buf[:0], src, dst, ChecksumPseudoHeader); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("AppendBinary into a large enough buffer allocates %.1f times, want 0", allocs)
	}
}

func TestStrings(t *testing.T) {
	for k, want := range map[ChecksumKind]string{ChecksumUnverified: "unverified", ChecksumMessage: "message",
		ChecksumPseudoHeader: "pseudo-header", ChecksumBad: "bad", 7: "ChecksumKind(7)"} {
		if got := k.String(); got != want {
			t.Errorf("ChecksumKind(%d).String() = %q, want %q", k, got, want)
		}
	}
	for at, want := range map[AuthType]string{AuthNone: "none", AuthSimple: "simple", AuthAH: "ah", 9: "unknown(9)"} {
		if got := at.String(); got != want {
			t.Errorf("AuthType(%d).String() = %q, want %q", at, got, want)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	msg, src, dst := ipPayload(b, unhex(b, vectors[3].frame))
	var a Advert
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Decode(msg, src, dst); err != nil {
			b.Fatal(err)
		}
	}
}

// VRRPv3 over IPv4 summed over the message only (RFC 9568; keepalived's
// v3_checksum_as_v2; Cisco per FRRouting/frr#9951) decodes as
// ChecksumMessage. The keepalived adverts are re-summed that way, and the
// message-only sum is checked against a plain RFC 1071 sum over the bytes.
func TestDecodeV3IPv4MessageOnly(t *testing.T) {
	n := 0
	for _, v := range vectors {
		msg, src, dst := ipPayload(t, unhex(t, v.frame))
		if v.want.Version != 3 || !src.Is4() {
			continue
		}
		n++
		a := v.want
		a.Addrs = append([]netip.Addr(nil), v.want.Addrs...)
		b, err := a.AppendBinary(nil, src, dst, ChecksumMessage)
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		if !bytes.Equal(b[:6], msg[:6]) || !bytes.Equal(b[8:], msg[8:]) {
			t.Fatalf("%s: re-encoding changed more than the checksum: % x", v.name, b)
		}
		if rfc1071(b) != 0 {
			t.Errorf("%s: message-only checksum %#04x does not make the RFC 1071 sum zero", v.name, a.Checksum)
		}
		var d Advert
		if err := d.Decode(b, src, dst); err != nil || d.Checksummed != ChecksumMessage {
			t.Errorf("%s: Decode = %v, Checksummed %v; want ChecksumMessage", v.name, err, d.Checksummed)
		}
	}
	if n < 3 {
		t.Fatalf("only %d VRRPv3 IPv4 vectors", n)
	}
}

// rfc1071 is the textbook Internet checksum of b: 0 when b carries a
// correct checksum.
func rfc1071(b []byte) uint16 {
	var sum uint64
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint64(b[i])<<8 | uint64(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint64(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// TestOldUnicastChecksum: keepalived before 1.3.6 summed a VRRPv3 unicast
// advert's pseudo-header with the group 224.0.0.18 as destination. Such an
// advert decodes as ChecksumOldUnicast (not bad), encodes with the group
// in the sum, and exists only for VRRPv3 to a unicast IPv4 address.
func TestOldUnicastChecksum(t *testing.T) {
	src, peer := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	a := Advert{Version: 3, VRID: 51, Priority: 150, Interval: time.Second, Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.100")}}
	old, err := a.AppendBinary(nil, src, peer, ChecksumOldUnicast)
	if err != nil {
		t.Fatal(err)
	}
	// The same sum as the RFC checksum of the advert sent to the group.
	toGroup, err := a.AppendBinary(nil, src, GroupIPv4, ChecksumPseudoHeader)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(old, toGroup) {
		t.Fatalf("old unicast checksum % x, want the group's % x", old, toGroup)
	}
	var d Advert
	if err := d.Decode(old, src, peer); err != nil || d.Checksummed != ChecksumOldUnicast {
		t.Fatalf("Decode to the peer = %v, Checksummed %v; want ChecksumOldUnicast", err, d.Checksummed)
	}
	rfc, err := a.AppendBinary(nil, src, peer, ChecksumPseudoHeader)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Decode(rfc, src, peer); err != nil || d.Checksummed != ChecksumPseudoHeader {
		t.Fatalf("RFC sum: Decode = %v, Checksummed %v; want ChecksumPseudoHeader", err, d.Checksummed)
	}
	// A wrong sum names the old variant among those accepted.
	bad := append([]byte(nil), old...)
	bad[7] ^= 0xff
	var ce *ChecksumError
	if err := d.Decode(bad, src, peer); !errors.As(err, &ce) || !ce.OldUnicast ||
		ce.ExpectedOldUnicast != binary.BigEndian.Uint16(old[6:8]) || !strings.Contains(err.Error(), "keepalived before 1.3.6") {
		t.Fatalf("bad sum: Decode = %v", err)
	}
	// Not a variant of multicast, IPv6 or VRRPv2 adverts.
	if _, err := a.AppendBinary(nil, src, GroupIPv4, ChecksumOldUnicast); err == nil {
		t.Error("old unicast checksum to the group: no error")
	}
	v6 := Advert{Version: 3, VRID: 51, Priority: 150, Interval: time.Second, Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::100")}}
	if _, err := v6.AppendBinary(nil, netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"), ChecksumOldUnicast); err == nil {
		t.Error("old unicast checksum over IPv6: no error")
	}
	v2 := Advert{Version: 2, VRID: 51, Priority: 150, Interval: time.Second, Addrs: a.Addrs}
	if _, err := v2.AppendBinary(nil, src, peer, ChecksumOldUnicast); err == nil {
		t.Error("old unicast checksum in VRRPv2: no error")
	}
	if ChecksumOldUnicast.String() != "old-unicast" {
		t.Errorf("String() = %q", ChecksumOldUnicast.String())
	}
}
