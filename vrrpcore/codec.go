package vrrpcore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Wire layout (RFC 3768 §5.1, RFC 9568 §5.1): an 8-byte header, the
// addresses, and for VRRPv2 8 bytes of authentication data.
const (
	headerLen   = 8
	authDataLen = 8

	centisecond    = 10 * time.Millisecond
	maxIntervalV2  = 255 * time.Second  // 8-bit seconds
	maxIntervalV3  = 4095 * centisecond // 12-bit centiseconds
	maxAddrs       = 255                // 8-bit count
	pseudoProtocol = uint32(IPProtocol) // next header / protocol in the pseudo-header
	ipv6AddrLen    = 16
	ipv4AddrLen    = 4
)

// family returns 4 or 6 for a valid address, 0 for the zero Addr.
func family(a netip.Addr) uint8 {
	switch {
	case !a.IsValid():
		return 0
	case a.Is4():
		return 4
	}
	return 6
}

func addrLen(fam uint8) int {
	if fam == 6 {
		return ipv6AddrLen
	}
	return ipv4AddrLen
}

// Decode decodes msg, one VRRP message (the payload of an IPv4 or IPv6
// packet with protocol 112), into a. It reuses the capacity of a.Addrs, so
// decoding into the same Advert again does not allocate.
//
// src and dst are the IP source and destination of the packet. They give
// the address family of the virtual addresses and are needed to verify the
// checksum: VRRPv2 sums the message only; VRRPv3 sums an IPv4 or IPv6
// pseudo-header plus the message, and over IPv4 the message-only sum
// (RFC 9568, keepalived's v3_checksum_as_v2) is accepted too. a.Checksummed
// records which variant matched. If src or dst is the zero Addr, the
// checksum is not verified (ChecksumUnverified) and the family is inferred
// from the message length. IPv4-mapped IPv6 addresses count as IPv4.
//
// A malformed message gives a *DecodeError naming the byte offset and the
// field; a is then only partly filled. A checksum that matches no variant
// gives a *ChecksumError, with a fully decoded and a.Checksummed set to
// ChecksumBad.
func (a *Advert) Decode(msg []byte, src, dst netip.Addr) error {
	src, dst = src.Unmap(), dst.Unmap()
	fam := family(src)
	if fam == 0 {
		fam = family(dst)
	}
	if src.IsValid() && dst.IsValid() && family(src) != family(dst) {
		return fmt.Errorf("vrrp: source %v and destination %v are of different address families", src, dst)
	}
	if err := a.decode(msg, fam); err != nil {
		return err
	}
	if !src.IsValid() || !dst.IsValid() {
		return nil
	}
	return a.verify(msg, src, dst)
}

// decode fills a from msg. fam is 4 or 6, or 0 to infer the family of the
// addresses from the message length.
func (a *Advert) decode(msg []byte, fam uint8) error {
	a.Checksummed = ChecksumUnverified
	a.Addrs = a.Addrs[:0]
	if len(msg) < headerLen {
		return decodeErr(len(msg), "header", "truncated at byte %d: need %d bytes for the VRRP header", len(msg), headerLen)
	}
	a.Version = msg[0] >> 4
	a.Type = msg[0] & 0x0f
	a.VRID = msg[1]
	a.Priority = msg[2]
	a.CountIPAddrs = msg[3]
	a.Checksum = binary.BigEndian.Uint16(msg[6:8])
	switch a.Version {
	case 2:
		a.AuthType = AuthType(msg[4])
		a.Interval = time.Duration(msg[5]) * time.Second
		a.Reserved = 0
	case 3:
		a.AuthType = AuthNone
		a.AuthData = [authDataLen]byte{}
		a.Reserved = msg[4] >> 4
		a.Interval = time.Duration(uint16(msg[4]&0x0f)<<8|uint16(msg[5])) * centisecond
	default:
		return decodeErr(0, "version", "bad version %d at byte 0: want 2 or 3", a.Version)
	}
	if a.Type != TypeAdvertisement {
		return decodeErr(0, "type", "bad type %d at byte 0: want %d (advertisement)", a.Type, TypeAdvertisement)
	}
	if a.VRID == 0 {
		return decodeErr(1, "vrid", "VRID 0 at byte 1: must be 1..255")
	}
	if a.Version == 2 && fam == 6 {
		return decodeErr(0, "version", "VRRPv2 over IPv6 at byte 0: RFC 3768 defines VRRPv2 for IPv4 only")
	}
	if a.Interval == 0 {
		if a.Version == 2 {
			return decodeErr(5, "interval", "advert interval 0 at byte 5: must be 1..255 seconds")
		}
		return decodeErr(4, "interval", "max advert interval 0 at byte 4: must be 1..4095 centiseconds")
	}

	n := int(a.CountIPAddrs)
	trailer := 0
	if a.Version == 2 {
		fam, trailer = 4, authDataLen
	}
	if fam == 0 {
		var err error
		if fam, err = inferFamily(len(msg), n); err != nil {
			return err
		}
	}
	alen := addrLen(fam)
	need := headerLen + n*alen + trailer
	if len(msg) < need {
		if trailer > 0 && len(msg) >= need-trailer {
			return decodeErr(len(msg), "auth data", "truncated at byte %d: need %d bytes for %s and %d bytes of authentication data",
				len(msg), need, addrCount(n, fam), authDataLen)
		}
		what := addrCount(n, fam)
		if trailer > 0 {
			what += " and authentication data"
		}
		return decodeErr(len(msg), "addresses", "truncated at byte %d: need %d bytes for %s", len(msg), need, what)
	}
	if len(msg) > need {
		return decodeErr(3, "count", "address count %d at byte 3 disagrees with the %d-byte message: %s make a %d-byte message",
			n, len(msg), addrCount(n, fam), need)
	}
	for off := headerLen; off < headerLen+n*alen; off += alen {
		if fam == 4 {
			a.Addrs = append(a.Addrs, netip.AddrFrom4([4]byte(msg[off:off+4])))
		} else {
			a.Addrs = append(a.Addrs, netip.AddrFrom16([16]byte(msg[off:off+16])))
		}
	}
	if trailer > 0 {
		copy(a.AuthData[:], msg[need-authDataLen:need])
	}
	return nil
}

// inferFamily finds the address family of a VRRPv3 message of length l
// carrying n addresses when the IP header is unknown.
func inferFamily(l, n int) (uint8, error) {
	v4, v6 := headerLen+n*ipv4AddrLen, headerLen+n*ipv6AddrLen
	switch {
	case n == 0 && l == headerLen:
		return 0, nil
	case n == 0:
		return 0, decodeErr(3, "count", "address count 0 at byte 3 disagrees with the %d-byte message: an advert without addresses has %d bytes", l, headerLen)
	case l == v4:
		return 4, nil
	case l == v6:
		return 6, nil
	case l < v4:
		return 0, decodeErr(l, "addresses", "truncated at byte %d: need %d bytes for %s (%d for IPv6)", l, v4, addrCount(n, 4), v6)
	}
	return 0, decodeErr(3, "count", "address count %d at byte 3 disagrees with the %d-byte message: %d addresses make %d bytes (IPv4) or %d bytes (IPv6)",
		n, l, n, v4, v6)
}

// addrCount reads "1 IPv4 address", "3 IPv6 addresses".
func addrCount(n int, fam uint8) string {
	f := "IPv4"
	if fam == 6 {
		f = "IPv6"
	}
	if n == 1 {
		return "1 " + f + " address"
	}
	return fmt.Sprintf("%d %s addresses", n, f)
}

// verify checks a.Checksum against the variants of a's version and the
// family of src and dst (both valid and of one family) and sets
// a.Checksummed.
func (a *Advert) verify(msg []byte, src, dst netip.Addr) error {
	s := sumMessage(msg)
	fam := family(src)
	var pseudo uint32
	if a.Version == 3 {
		pseudo = pseudoSum(src, dst, len(msg))
		if sumOK(s+pseudo, a.Checksum) {
			a.Checksummed = ChecksumPseudoHeader
			return nil
		}
	}
	if (a.Version == 2 || fam == 4) && sumOK(s, a.Checksum) {
		a.Checksummed = ChecksumMessage
		return nil
	}
	if oldUnicast(a.Version, dst) && sumOK(s+pseudoSum(src, GroupIPv4, len(msg)), a.Checksum) {
		a.Checksummed = ChecksumOldUnicast
		return nil
	}
	a.Checksummed = ChecksumBad
	e := &ChecksumError{Got: a.Checksum, Version: a.Version, Family: fam}
	if a.Version == 2 {
		e.Expected, e.Kind = ^fold(s), ChecksumMessage
	} else {
		e.Expected, e.Kind = ^fold(s+pseudo), ChecksumPseudoHeader
		if fam == 4 {
			e.ExpectedMessage = ^fold(s)
		}
		if oldUnicast(a.Version, dst) {
			e.OldUnicast, e.ExpectedOldUnicast = true, ^fold(s+pseudoSum(src, GroupIPv4, len(msg)))
		}
	}
	return e
}

// oldUnicast reports whether an advert of version to dst may carry
// ChecksumOldUnicast: VRRPv3 to a unicast IPv4 address.
func oldUnicast(version uint8, dst netip.Addr) bool {
	return version == 3 && dst.Is4() && !dst.IsMulticast()
}

// sum16 is the 32-bit sum of b's big-endian 16-bit words, b padded with a
// zero byte to even length (RFC 1071). Messages are at most 4,088 bytes,
// far from overflowing.
func sum16(b []byte) uint32 {
	var s uint32
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

// sumMessage sums a VRRP message with its checksum field taken as zero.
func sumMessage(msg []byte) uint32 {
	return sum16(msg[:6]) + sum16(msg[headerLen:])
}

// pseudoSum sums the IPv4 (RFC 768 style) or IPv6 (RFC 8200 §8.1)
// pseudo-header for a VRRP message of length l.
func pseudoSum(src, dst netip.Addr, l int) uint32 {
	if src.Is4() {
		s4, d4 := src.As4(), dst.As4()
		return sum16(s4[:]) + sum16(d4[:]) + pseudoProtocol + uint32(l)
	}
	s16, d16 := src.As16(), dst.As16()
	return sum16(s16[:]) + sum16(d16[:]) + uint32(l)>>16 + uint32(l)&0xffff + pseudoProtocol
}

func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// sumOK reports whether checksum ck completes the sum s: the one's
// complement sum of everything including ck is all ones. This accepts
// both representations of zero.
func sumOK(s uint32, ck uint16) bool { return fold(s+uint32(ck)) == 0xffff }

// AppendBinary appends the wire form of a (one VRRP message, without IP
// header) to b and returns the extended slice.
//
// The address count is len(a.Addrs); a Type of 0 is written as
// TypeAdvertisement. kind selects the checksum: ChecksumMessage sums the
// message only (VRRPv2; VRRPv3 over IPv4 per RFC 9568 or keepalived's
// v3_checksum_as_v2); ChecksumPseudoHeader sums the pseudo-header built
// from src and dst plus the message (VRRPv3, RFC 5798; the only variant
// over IPv6); ChecksumOldUnicast sums the pseudo-header with the group
// 224.0.0.18 in place of dst, as keepalived before 1.3.6 did for VRRPv3
// unicast (dst a unicast IPv4 address). ChecksumUnverified and ChecksumBad write a.Checksum
// unchanged, so a decoded advert re-encodes byte for byte with its own
// a.Checksummed, bad checksum included.
//
// The address family is that of src (or dst), else of the addresses.
// AppendBinary refuses what the protocol cannot carry: VRID 0, more than
// 255 addresses, mixed families, VRRPv2 over IPv6, authentication in
// VRRPv3, a VRRPv2 interval that is not 1..255 whole seconds, a VRRPv3
// interval that is not a multiple of 10ms from 10ms to 40.95s. On error b
// is returned unchanged.
//
// On success AppendBinary sets a.Type, a.CountIPAddrs and, when it
// computes the checksum, a.Checksum and a.Checksummed, so that a describes
// the bytes written.
func (a *Advert) AppendBinary(b []byte, src, dst netip.Addr, kind ChecksumKind) ([]byte, error) {
	src, dst = src.Unmap(), dst.Unmap()
	fam, err := a.checkEncode(src, dst, kind)
	if err != nil {
		return b, err
	}
	start := len(b)
	b = append(b, a.Version<<4|TypeAdvertisement, a.VRID, a.Priority, uint8(len(a.Addrs)))
	if a.Version == 2 {
		b = append(b, byte(a.AuthType), byte(a.Interval/time.Second))
	} else {
		cs := uint16(a.Interval / centisecond)
		b = append(b, a.Reserved<<4|byte(cs>>8), byte(cs))
	}
	b = append(b, 0, 0)
	for _, ad := range a.Addrs {
		if fam == 4 {
			v := ad.As4()
			b = append(b, v[:]...)
		} else {
			v := ad.As16()
			b = append(b, v[:]...)
		}
	}
	if a.Version == 2 {
		b = append(b, a.AuthData[:]...)
	}
	msg := b[start:]
	ck := a.Checksum
	switch kind {
	case ChecksumMessage:
		ck = ^fold(sumMessage(msg))
	case ChecksumPseudoHeader:
		ck = ^fold(sumMessage(msg) + pseudoSum(src, dst, len(msg)))
	case ChecksumOldUnicast:
		ck = ^fold(sumMessage(msg) + pseudoSum(src, GroupIPv4, len(msg)))
	}
	binary.BigEndian.PutUint16(msg[6:8], ck)
	a.Type = TypeAdvertisement
	a.CountIPAddrs = uint8(len(a.Addrs))
	if kind == ChecksumMessage || kind == ChecksumPseudoHeader || kind == ChecksumOldUnicast {
		a.Checksum, a.Checksummed = ck, kind
	}
	return b, nil
}

// encodedLen is the length of a's wire form for address family fam.
func (a *Advert) encodedLen(fam uint8) int {
	n := headerLen + len(a.Addrs)*addrLen(fam)
	if a.Version == 2 {
		n += authDataLen
	}
	return n
}

// checkEncode validates a for AppendBinary and returns the address family
// (4 or 6; 4 when nothing tells, which matters only for the length).
func (a *Advert) checkEncode(src, dst netip.Addr, kind ChecksumKind) (uint8, error) {
	fail := func(format string, args ...any) (uint8, error) {
		return 0, errors.New("vrrp: cannot encode: " + fmt.Sprintf(format, args...))
	}
	if a.Version != 2 && a.Version != 3 {
		return fail("version %d: want 2 or 3", a.Version)
	}
	if a.Type != 0 && a.Type != TypeAdvertisement {
		return fail("type %d: only %d (advertisement) exists", a.Type, TypeAdvertisement)
	}
	if a.VRID == 0 {
		return fail("VRID 0: must be 1..255")
	}
	if len(a.Addrs) > maxAddrs {
		return fail("%d addresses: at most %d fit the count field", len(a.Addrs), maxAddrs)
	}
	if src.IsValid() && dst.IsValid() && family(src) != family(dst) {
		return fail("source %v and destination %v are of different address families", src, dst)
	}
	fam := family(src)
	if fam == 0 {
		fam = family(dst)
	}
	for i, ad := range a.Addrs {
		f := family(ad)
		if f == 0 {
			return fail("address %d is the zero netip.Addr", i)
		}
		if fam == 0 {
			fam = f
		}
		if f != fam {
			return fail("address %d (%v) is IPv%d in an IPv%d advert", i, ad, f, fam)
		}
	}
	if fam == 0 {
		fam = 4
	}
	switch a.Version {
	case 2:
		if fam == 6 {
			return fail("VRRPv2 over IPv6: RFC 3768 defines VRRPv2 for IPv4 only")
		}
		if a.Interval < time.Second || a.Interval > maxIntervalV2 || a.Interval%time.Second != 0 {
			return fail("VRRPv2 advert interval %v: must be whole seconds from 1s to 255s", a.Interval)
		}
		if a.Reserved != 0 {
			return fail("VRRPv2 has no reserved bits (Reserved = %d)", a.Reserved)
		}
	case 3:
		if a.Interval < centisecond || a.Interval > maxIntervalV3 || a.Interval%centisecond != 0 {
			return fail("VRRPv3 max advert interval %v: must be a multiple of 10ms from 10ms to 40.95s", a.Interval)
		}
		if a.AuthType != AuthNone || a.AuthData != [authDataLen]byte{} {
			return fail("authentication (type %v) exists in VRRPv2 only", a.AuthType)
		}
		if a.Reserved > 0x0f {
			return fail("reserved bits %#x do not fit in 4 bits", a.Reserved)
		}
	}
	switch kind {
	case ChecksumUnverified, ChecksumBad:
	case ChecksumMessage:
		if a.Version == 3 && fam == 6 {
			return fail("message-only checksum in VRRPv3 over IPv6: IPv6 always sums the pseudo-header")
		}
	case ChecksumPseudoHeader:
		if a.Version == 2 {
			return fail("pseudo-header checksum in VRRPv2: VRRPv2 sums the message only")
		}
		if !src.IsValid() || !dst.IsValid() {
			return fail("pseudo-header checksum needs the source and destination addresses")
		}
	case ChecksumOldUnicast:
		if !src.IsValid() || !oldUnicast(a.Version, dst) {
			return fail("old unicast checksum: VRRPv3 from a source address to a unicast IPv4 destination only")
		}
	default:
		return fail("unknown checksum kind %d", kind)
	}
	return fam, nil
}
