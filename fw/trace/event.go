package trace

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// Type is what a trace event reports (enum nft_trace_types).
type Type string

// Event types.
const (
	TypeRule   Type = "rule"   // a rule matched
	TypeReturn Type = "return" // a regular chain returned (end of chain or return)
	TypePolicy Type = "policy" // a base chain ended with its policy
)

// Event is one NFT_MSG_TRACE message: a rule that matched, a return or a
// base chain's policy, for one packet.
type Event struct {
	// ID identifies the packet within its trace. The kernel derives it from
	// the skb's address and flow hash, so consecutive adverts of one flow
	// may share an ID; Tracer tells them apart.
	ID     uint32         `json:"id"`
	Family ruleset.Family `json:"family"` // of the table
	Table  string         `json:"table"`
	Chain  string         `json:"chain"`
	// Handle is the rule's handle; 0 for a policy or the end of a chain.
	Handle uint64 `json:"handle,omitempty"`
	Type   Type   `json:"type"`
	// Verdict is accept, drop, continue, jump, goto, return, queue,
	// stolen, repeat, stop or break; for a policy, the policy.
	Verdict string `json:"verdict"`
	// Target is the chain of a jump or goto.
	Target  string `json:"target,omitempty"`
	NFProto int    `json:"nfproto,omitempty"` // 4 or 6
	IIF     uint32 `json:"iif,omitempty"`     // interface index
	OIF     uint32 `json:"oif,omitempty"`
	Mark    uint32 `json:"mark,omitempty"`
	// The packet's headers, present on the first event of each base chain.
	LinkHeader      []byte `json:"-"`
	NetworkHeader   []byte `json:"-"`
	TransportHeader []byte `json:"-"`
}

// String renders the event the way `nft monitor trace` does.
func (e Event) String() string {
	s := fmt.Sprintf("%s %s %s", e.Family, e.Table, e.Chain)
	switch e.Type {
	case TypePolicy:
		return s + " policy " + e.Verdict
	case TypeReturn:
		s += " return"
	default:
		s += " rule"
	}
	if e.Handle != 0 {
		s += fmt.Sprintf(" handle %d", e.Handle)
	}
	v := e.Verdict
	if e.Target != "" {
		v += " " + e.Target
	}
	return s + " (verdict " + v + ")"
}

// Error is a malformed trace message, located by byte offset in the
// message's payload (the nfgenmsg header is offset 0).
type Error struct {
	Offset int
	Msg    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("nftables trace message, byte %d: %s", e.Offset, e.Msg)
}

// nlaTypeMask strips NLA_F_NESTED and NLA_F_NET_BYTEORDER from a type.
const nlaTypeMask = 0x3fff

// Netlink message type of a trace event.
const msgTrace = unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_TRACE

// Verdict codes (include/uapi/linux/netfilter.h, nf_tables.h).
const (
	nfDrop      = 0
	nfAccept    = 1
	nfStolen    = 2
	nfQueue     = 3
	nfRepeat    = 4
	nfStop      = 5
	nftContinue = -1
	nftBreak    = -2
	nftJump     = -3
	nftGoto     = -4
	nftReturn   = -5
)

func verdictName(code int32) string {
	switch code {
	case nftContinue:
		return "continue"
	case nftBreak:
		return "break"
	case nftJump:
		return "jump"
	case nftGoto:
		return "goto"
	case nftReturn:
		return "return"
	}
	if code < 0 {
		return fmt.Sprintf("verdict %d", code)
	}
	switch code & 0xff { // NF_VERDICT_MASK: queue numbers ride in the upper bits
	case nfDrop:
		return "drop"
	case nfAccept:
		return "accept"
	case nfStolen:
		return "stolen"
	case nfQueue:
		return "queue"
	case nfRepeat:
		return "repeat"
	case nfStop:
		return "stop"
	}
	return fmt.Sprintf("verdict %d", code)
}

var familyOf = map[uint8]ruleset.Family{
	unix.NFPROTO_INET: ruleset.FamilyInet, unix.NFPROTO_IPV4: ruleset.FamilyIP, unix.NFPROTO_IPV6: ruleset.FamilyIP6,
	unix.NFPROTO_ARP: ruleset.FamilyARP, unix.NFPROTO_BRIDGE: ruleset.FamilyBridge, unix.NFPROTO_NETDEV: ruleset.FamilyNetdev,
}

// attr is one netlink attribute, with the offset of its header.
type attr struct {
	typ  uint16
	off  int
	data []byte
}

// attrs splits b, which starts at offset base of the payload, into
// attributes (struct nlattr: length and type in host byte order, 4-byte
// alignment).
func attrs(b []byte, base int) ([]attr, error) {
	var out []attr
	for off := 0; off < len(b); {
		if len(b)-off < 4 {
			return nil, &Error{base + off, fmt.Sprintf("%d byte(s) left, too short for an attribute header", len(b)-off)}
		}
		n := int(binary.NativeEndian.Uint16(b[off:]))
		typ := binary.NativeEndian.Uint16(b[off+2:]) & nlaTypeMask
		if n < 4 || off+n > len(b) {
			return nil, &Error{base + off, fmt.Sprintf("attribute type %d claims %d bytes, %d left", typ, n, len(b)-off)}
		}
		out = append(out, attr{typ: typ, off: base + off, data: b[off+4 : off+n]})
		off += (n + 3) &^ 3
	}
	return out, nil
}

func (a attr) be32(name string) (uint32, error) {
	if len(a.data) != 4 {
		return 0, &Error{a.off, fmt.Sprintf("%s: %d bytes, want 4", name, len(a.data))}
	}
	return binary.BigEndian.Uint32(a.data), nil
}

func (a attr) str(name string) (string, error) {
	d := a.data
	if len(d) == 0 || d[len(d)-1] != 0 {
		return "", &Error{a.off, name + ": not a NUL-terminated string"}
	}
	return string(d[:len(d)-1]), nil
}

// DecodeEvent decodes the payload of an NFT_MSG_TRACE netlink message: the
// nfgenmsg header (family of the table) and the NFTA_TRACE_* attributes.
func DecodeEvent(b []byte) (Event, error) {
	var e Event
	if len(b) < 4 {
		return e, &Error{0, fmt.Sprintf("%d bytes, too short for the nfgenmsg header", len(b))}
	}
	fam, ok := familyOf[b[0]]
	if !ok {
		return e, &Error{0, fmt.Sprintf("unknown table family %d", b[0])}
	}
	e.Family = fam
	as, err := attrs(b[4:], 4)
	if err != nil {
		return e, err
	}
	var typ uint32
	var policy *uint32
	var haveTable, haveChain, haveType bool
	for _, a := range as {
		var err error
		switch a.typ {
		case unix.NFTA_TRACE_TABLE:
			e.Table, err = a.str("table")
			haveTable = true
		case unix.NFTA_TRACE_CHAIN:
			e.Chain, err = a.str("chain")
			haveChain = true
		case unix.NFTA_TRACE_RULE_HANDLE:
			if len(a.data) != 8 {
				err = &Error{a.off, fmt.Sprintf("rule handle: %d bytes, want 8", len(a.data))}
				break
			}
			e.Handle = binary.BigEndian.Uint64(a.data)
		case unix.NFTA_TRACE_TYPE:
			typ, err = a.be32("type")
			haveType = true
		case unix.NFTA_TRACE_VERDICT:
			err = e.decodeVerdict(a)
		case unix.NFTA_TRACE_ID:
			// Written in host order; read as nft does (ntohl), so IDs
			// print as `nft monitor trace` prints them.
			e.ID, err = a.be32("id")
		case unix.NFTA_TRACE_LL_HEADER:
			e.LinkHeader = a.data
		case unix.NFTA_TRACE_NETWORK_HEADER:
			e.NetworkHeader = a.data
		case unix.NFTA_TRACE_TRANSPORT_HEADER:
			e.TransportHeader = a.data
		case unix.NFTA_TRACE_IIF:
			e.IIF, err = a.be32("iif")
		case unix.NFTA_TRACE_OIF:
			e.OIF, err = a.be32("oif")
		case unix.NFTA_TRACE_MARK:
			e.Mark, err = a.be32("mark")
		case unix.NFTA_TRACE_NFPROTO:
			var p uint32
			p, err = a.be32("nfproto")
			switch p {
			case unix.NFPROTO_IPV4:
				e.NFProto = 4
			case unix.NFPROTO_IPV6:
				e.NFProto = 6
			}
		case unix.NFTA_TRACE_POLICY:
			var p uint32
			p, err = a.be32("policy")
			policy = &p
		}
		if err != nil {
			return e, err
		}
	}
	if !haveTable || !haveChain || !haveType {
		return e, &Error{len(b), "table, chain or type attribute missing"}
	}
	switch typ {
	case unix.NFT_TRACETYPE_RULE:
		e.Type = TypeRule
	case unix.NFT_TRACETYPE_RETURN:
		e.Type = TypeReturn
	case unix.NFT_TRACETYPE_POLICY:
		e.Type = TypePolicy
		if policy == nil {
			return e, &Error{len(b), "policy event without its policy"}
		}
		e.Verdict = verdictName(int32(*policy))
	default:
		return e, &Error{len(b), fmt.Sprintf("unknown trace type %d", typ)}
	}
	if e.Type != TypePolicy && e.Verdict == "" {
		return e, &Error{len(b), string(e.Type) + " event without a verdict"}
	}
	return e, nil
}

// decodeVerdict reads the nested NFTA_TRACE_VERDICT (NFTA_VERDICT_CODE and,
// for jump and goto, NFTA_VERDICT_CHAIN).
func (e *Event) decodeVerdict(a attr) error {
	inner, err := attrs(a.data, a.off+4)
	if err != nil {
		return err
	}
	haveCode := false
	for _, v := range inner {
		switch v.typ {
		case unix.NFTA_VERDICT_CODE:
			c, err := v.be32("verdict code")
			if err != nil {
				return err
			}
			e.Verdict = verdictName(int32(c))
			haveCode = true
		case unix.NFTA_VERDICT_CHAIN:
			s, err := v.str("verdict chain")
			if err != nil {
				return err
			}
			e.Target = s
		}
	}
	if !haveCode {
		return &Error{a.off, "verdict without its code"}
	}
	return nil
}
