package vrrpcore

import "fmt"

// DecodeError reports a VRRP message that cannot be decoded: it is cut
// short, or a field holds a value the protocol does not allow.
type DecodeError struct {
	Offset int    // byte offset in the VRRP message where the problem lies
	Field  string // field at fault: "header", "version", "type", "vrid", "count", "interval", "addresses", "auth data"
	Reason string // what is wrong, with the offset and the values involved
}

func (e *DecodeError) Error() string { return "vrrp: " + e.Reason }

func decodeErr(off int, field, format string, args ...any) *DecodeError {
	return &DecodeError{Offset: off, Field: field, Reason: fmt.Sprintf(format, args...)}
}

// ChecksumError reports an advert whose checksum matches none of the
// variants known for its version and address family. The advert it came
// with is fully decoded; callers may keep it.
type ChecksumError struct {
	Got      uint16       // checksum carried in the packet
	Expected uint16       // checksum of kind Kind the packet should carry
	Kind     ChecksumKind // ChecksumMessage for VRRPv2, ChecksumPseudoHeader for VRRPv3
	// ExpectedMessage is, for VRRPv3 over IPv4 only, the message-only
	// checksum (RFC 9568, keepalived's v3_checksum_as_v2), which is also
	// accepted. It is 0 and unused otherwise.
	ExpectedMessage uint16
	// OldUnicast is set for VRRPv3 to a unicast IPv4 address, where
	// ExpectedOldUnicast, the checksum keepalived before 1.3.6 computed
	// (ChecksumOldUnicast), is also accepted.
	OldUnicast         bool
	ExpectedOldUnicast uint16
	Version            uint8 // 2 or 3
	Family             uint8 // 4 or 6
}

func (e *ChecksumError) Error() string {
	if e.Version == 3 && e.Family == 4 {
		old := ""
		if e.OldUnicast {
			old = fmt.Sprintf(" or 0x%04x (pseudo-header to 224.0.0.18, keepalived before 1.3.6 unicast)", e.ExpectedOldUnicast)
		}
		return fmt.Sprintf("vrrp: bad checksum 0x%04x in VRRPv3 over IPv4: want 0x%04x (pseudo-header + message, RFC 5798) or 0x%04x (message only, RFC 9568 / keepalived v3_checksum_as_v2)%s",
			e.Got, e.Expected, e.ExpectedMessage, old)
	}
	return fmt.Sprintf("vrrp: bad checksum 0x%04x in VRRPv%d over IPv%d: want 0x%04x (%s)",
		e.Got, e.Version, e.Family, e.Expected, e.Kind.description())
}
