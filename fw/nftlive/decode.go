package nftlive

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// Selectors carry a type name that says how to decode the constants they are
// compared with.
const (
	tIPv4    = "ipv4_addr"
	tIPv6    = "ipv6_addr"
	tIfname  = "ifname"
	tIfindex = "iface_index"
	tProto   = "inet_proto"
	tMark    = "mark"
	tPkttype = "pkt_type"
	tNfproto = "nf_proto"
	tEther   = "ether_type"
	tMAC     = "ether_addr"
	tService = "inet_service"
	tCTState = "ct_state"
	tCTStat  = "ct_status"
	tAddrTyp = "fib_addrtype"
	tOif     = "fib_oif"
	tInt     = "integer" // big-endian integer
	tHostInt = "host_integer"
)

// slot is what a register holds: the expression that loaded it, its type and
// its length in bytes.
type slot struct {
	x    ruleset.Expr
	typ  string
	size int
	// mask, when the slot went through a bitwise and, for prefixes and flags.
	mask []byte
	// data holds immediate bytes (for "meta mark set 0x10").
	data []byte
}

// decoder turns one rule's netlink expressions back into the model, the way
// nft's netlink_delinearize does for the common cases.
type decoder struct {
	family nftables.TableFamily
	sets   map[string]*ruleset.Set
	regs   map[int]slot
	l3     string // "ip" or "ip6" once known
	l4     uint8  // transport protocol once known
	out    []ruleset.Expr
}

// reg32 maps a register number to its first 32-bit register index.
func reg32(r uint32) int {
	if r >= unix.NFT_REG32_00 {
		return int(r - unix.NFT_REG32_00)
	}
	return int(r-unix.NFT_REG_1) * 4
}

func (d *decoder) set(r uint32, s slot) { d.regs[reg32(r)] = s }

func (d *decoder) get(r uint32) (slot, bool) {
	s, ok := d.regs[reg32(r)]
	return s, ok
}

func (d *decoder) unsupported(kind, text string) {
	d.out = append(d.out, ruleset.Unsupported{Kind: kind, Text: text})
}

// decodeRule converts a rule; exprs the decoder does not know become
// Unsupported statements or Opaque selectors.
func decodeRule(fam nftables.TableFamily, sets map[string]*ruleset.Set, exprs []expr.Any) []ruleset.Expr {
	d := &decoder{family: fam, sets: sets, regs: map[int]slot{}}
	switch fam {
	case nftables.TableFamilyIPv4:
		d.l3 = "ip"
	case nftables.TableFamilyIPv6:
		d.l3 = "ip6"
	}
	for _, e := range exprs {
		d.expr(e)
	}
	return d.out
}

var metaKeys = map[expr.MetaKey]struct {
	name string
	typ  string
	size int
}{
	expr.MetaKeyLEN: {"length", tHostInt, 4}, expr.MetaKeyPROTOCOL: {"protocol", tEther, 2},
	expr.MetaKeyPRIORITY: {"priority", tHostInt, 4}, expr.MetaKeyMARK: {"mark", tMark, 4},
	expr.MetaKeyIIF: {"iif", tIfindex, 4}, expr.MetaKeyOIF: {"oif", tIfindex, 4},
	expr.MetaKeyIIFNAME: {"iifname", tIfname, 16}, expr.MetaKeyOIFNAME: {"oifname", tIfname, 16},
	expr.MetaKeyIIFTYPE: {"iiftype", tHostInt, 2}, expr.MetaKeyOIFTYPE: {"oiftype", tHostInt, 2},
	expr.MetaKeySKUID: {"skuid", tHostInt, 4}, expr.MetaKeySKGID: {"skgid", tHostInt, 4},
	expr.MetaKeyNFTRACE: {"nftrace", tInt, 1}, expr.MetaKeyRTCLASSID: {"rtclassid", tHostInt, 4},
	expr.MetaKeySECMARK: {"secmark", tHostInt, 4}, expr.MetaKeyNFPROTO: {"nfproto", tNfproto, 1},
	expr.MetaKeyL4PROTO: {"l4proto", tProto, 1}, expr.MetaKeyBRIIIFNAME: {"ibrname", tIfname, 16},
	expr.MetaKeyBRIOIFNAME: {"obrname", tIfname, 16}, expr.MetaKeyPKTTYPE: {"pkttype", tPkttype, 1},
	expr.MetaKeyCPU: {"cpu", tHostInt, 4}, expr.MetaKeyIIFGROUP: {"iifgroup", tHostInt, 4},
	expr.MetaKeyOIFGROUP: {"oifgroup", tHostInt, 4}, expr.MetaKeyCGROUP: {"cgroup", tHostInt, 4},
	expr.MetaKeyPRANDOM: {"random", tInt, 4},
}

var ctKeys = map[expr.CtKey]struct {
	name string
	typ  string
	size int
}{
	expr.CtKeySTATE: {"state", tCTState, 4}, expr.CtKeySTATUS: {"status", tCTStat, 4},
	expr.CtKeyMARK: {"mark", tMark, 4}, expr.CtKeyDIRECTION: {"direction", tInt, 1},
	expr.CtKeyL3PROTOCOL: {"l3proto", tNfproto, 1}, expr.CtKeyPROTOCOL: {"protocol", tProto, 1},
	expr.CtKeyZONE: {"zone", tHostInt, 2}, expr.CtKeyHELPER: {"helper", tIfname, 16},
}

// payloadField names a network or transport header field.
func (d *decoder) payloadField(p *expr.Payload) (ruleset.Expr, string) {
	off, ln := p.Offset, p.Len
	switch p.Base {
	case expr.PayloadBaseNetworkHeader:
		type f struct {
			off, ln uint32
		}
		v4 := map[f]struct{ name, typ string }{{8, 1}: {"ttl", tInt}, {9, 1}: {"protocol", tProto}, {12, 4}: {"saddr", tIPv4}, {16, 4}: {"daddr", tIPv4}, {2, 2}: {"length", tInt}, {4, 2}: {"id", tInt}}
		v6 := map[f]struct{ name, typ string }{{6, 1}: {"nexthdr", tProto}, {7, 1}: {"hoplimit", tInt}, {8, 16}: {"saddr", tIPv6}, {24, 16}: {"daddr", tIPv6}, {4, 2}: {"length", tInt}}
		k := f{off, ln}
		// nft loads only the leading bytes of an address for a byte-aligned
		// prefix (ip saddr 203.0.113.0/24 loads 3 bytes at offset 12).
		for _, a := range []struct {
			proto, field string
			off, size    uint32
			typ          string
		}{{"ip", "saddr", 12, 4, tIPv4}, {"ip", "daddr", 16, 4, tIPv4}, {"ip6", "saddr", 8, 16, tIPv6}, {"ip6", "daddr", 24, 16, tIPv6}} {
			if off == a.off && ln < a.size && (d.l3 == a.proto || d.l3 == "" && a.proto == "ip") {
				return ruleset.Payload{Proto: a.proto, Field: a.field}, a.typ
			}
		}
		// Without a known family (inet, netdev), only the address fields
		// are told apart by their length.
		if x, ok := v4[k]; ok && (d.l3 == "ip" || d.l3 == "" && ln == 4) {
			return ruleset.Payload{Proto: "ip", Field: x.name}, x.typ
		}
		if x, ok := v6[k]; ok && (d.l3 == "ip6" || d.l3 == "" && ln == 16) {
			return ruleset.Payload{Proto: "ip6", Field: x.name}, x.typ
		}
	case expr.PayloadBaseTransportHeader:
		proto := "th"
		switch d.l4 {
		case unix.IPPROTO_TCP:
			proto = "tcp"
		case unix.IPPROTO_UDP:
			proto = "udp"
		case unix.IPPROTO_SCTP:
			proto = "sctp"
		case unix.IPPROTO_ICMP:
			proto = "icmp"
		case unix.IPPROTO_ICMPV6:
			proto = "icmpv6"
		}
		switch {
		case proto == "icmp" || proto == "icmpv6":
			if off == 0 && ln == 1 {
				return ruleset.Payload{Proto: proto, Field: "type"}, tInt
			}
			if off == 1 && ln == 1 {
				return ruleset.Payload{Proto: proto, Field: "code"}, tInt
			}
		case off == 0 && ln == 2:
			return ruleset.Payload{Proto: proto, Field: "sport"}, tService
		case off == 2 && ln == 2:
			return ruleset.Payload{Proto: proto, Field: "dport"}, tService
		}
	}
	base := map[expr.PayloadBase]string{expr.PayloadBaseLLHeader: "ll", expr.PayloadBaseNetworkHeader: "nh", expr.PayloadBaseTransportHeader: "th"}[p.Base]
	return ruleset.RawPayload{Base: base, Offset: int(off) * 8, Len: int(ln) * 8}, tInt
}

func (d *decoder) expr(e expr.Any) {
	switch x := e.(type) {
	case *expr.Meta:
		k, ok := metaKeys[x.Key]
		if !ok {
			k.name, k.typ, k.size = fmt.Sprintf("key%d", x.Key), tInt, 4
		}
		if x.SourceRegister {
			s, ok := d.get(x.Register)
			if !ok {
				d.unsupported("meta set", "meta "+k.name+" set (unknown value)")
				return
			}
			d.out = append(d.out, ruleset.Mangle{Key: ruleset.Meta{Key: k.name}, Value: d.valueOf(s, k.typ)})
			return
		}
		d.set(x.Register, slot{x: ruleset.Meta{Key: k.name}, typ: k.typ, size: k.size})
	case *expr.Ct:
		k, ok := ctKeys[x.Key]
		if !ok {
			k.name, k.typ, k.size = fmt.Sprintf("key%d", x.Key), tInt, 4
		}
		c := ruleset.CT{Key: k.name}
		if x.Direction == 1 && (x.Key != expr.CtKeySTATE && x.Key != expr.CtKeySTATUS && x.Key != expr.CtKeyMARK) {
			c.Dir = "reply"
		}
		if x.SourceRegister {
			s, ok := d.get(x.Register)
			if !ok {
				d.unsupported("ct set", "ct "+k.name+" set (unknown value)")
				return
			}
			d.out = append(d.out, ruleset.Mangle{Key: c, Value: d.valueOf(s, k.typ)})
			return
		}
		d.set(x.Register, slot{x: c, typ: k.typ, size: k.size})
	case *expr.Payload:
		if x.OperationType != expr.PayloadLoad {
			d.unsupported("payload write", fmt.Sprintf("payload write base %d offset %d len %d", x.Base, x.Offset, x.Len))
			return
		}
		sel, typ := d.payloadField(x)
		d.set(x.DestRegister, slot{x: sel, typ: typ, size: int(x.Len)})
	case *expr.Fib:
		var flags []string
		for _, f := range []struct {
			on   bool
			name string
		}{{x.FlagSADDR, "saddr"}, {x.FlagDADDR, "daddr"}, {x.FlagMARK, "mark"}, {x.FlagIIF, "iif"}, {x.FlagOIF, "oif"}} {
			if f.on {
				flags = append(flags, f.name)
			}
		}
		res, typ := "oif", tOif
		switch {
		case x.ResultADDRTYPE:
			res, typ = "type", tAddrTyp
		case x.ResultOIFNAME:
			res, typ = "oifname", tIfname
		}
		d.set(x.Register, slot{x: ruleset.Fib{Flags: flags, Result: res}, typ: typ, size: 4})
	case *expr.Immediate:
		d.set(x.Register, slot{x: ruleset.Const{Value: "0x" + fmt.Sprintf("%x", x.Data)}, typ: tInt, size: len(x.Data), data: x.Data})
	case *expr.Bitwise:
		s, ok := d.get(x.SourceRegister)
		if !ok {
			d.unsupported("bitwise", "bitwise on an unknown register")
			return
		}
		if allZero(x.Xor) {
			s.mask = x.Mask
		} else {
			s.x = ruleset.Binop{Op: "^", Left: ruleset.Binop{Op: "&", Left: s.x, Right: d.constOf(x.Mask, s.typ)}, Right: d.constOf(x.Xor, s.typ)}
			s.mask = nil
		}
		d.set(x.DestRegister, s)
	case *expr.Cmp:
		s, ok := d.get(x.Register)
		if !ok {
			d.unsupported("cmp", "comparison of an unknown register")
			return
		}
		d.cmp(s, x)
	case *expr.Range:
		s, ok := d.get(x.Register)
		if !ok {
			d.unsupported("range", "range on an unknown register")
			return
		}
		op := ruleset.OpEq
		if x.Op == expr.CmpOpNeq {
			op = ruleset.OpNe
		}
		d.out = append(d.out, ruleset.Match{Op: op, Left: s.x, Right: ruleset.Range{Lo: d.constOf(x.FromData, s.typ), Hi: d.constOf(x.ToData, s.typ)}})
	case *expr.Lookup:
		d.lookup(x)
	case *expr.Verdict:
		d.out = append(d.out, verdictOf(x))
	case *expr.Counter:
		d.out = append(d.out, ruleset.Counter{})
	case *expr.Objref:
		d.out = append(d.out, ruleset.NoEffect{Kind: "objref", Text: fmt.Sprintf("object %q", x.Name)})
	case *expr.Log:
		d.out = append(d.out, ruleset.Log{Prefix: string(x.Data)})
	case *expr.Limit:
		over := ""
		if x.Over {
			over = "over "
		}
		d.out = append(d.out, ruleset.Limit{Text: fmt.Sprintf("limit rate %s%d/%s burst %d", over, x.Rate, limitUnit(x.Unit), x.Burst)})
	case *expr.Quota:
		d.out = append(d.out, ruleset.Limit{Text: fmt.Sprintf("quota %d bytes", x.Bytes)})
	case *expr.Connlimit:
		d.out = append(d.out, ruleset.Limit{Text: fmt.Sprintf("ct count %d", x.Count)})
	case *expr.Reject:
		d.out = append(d.out, rejectOf(x, d.l3))
	case *expr.Notrack:
		d.out = append(d.out, ruleset.Notrack{})
	case *expr.NAT:
		kind := "snat"
		if x.Type == expr.NATTypeDestNAT {
			kind = "dnat"
		}
		d.out = append(d.out, ruleset.NAT{Kind: kind, Text: kind})
	case *expr.Masq:
		d.out = append(d.out, ruleset.NAT{Kind: "masquerade", Text: "masquerade"})
	case *expr.Redir:
		d.out = append(d.out, ruleset.NAT{Kind: "redirect", Text: "redirect"})
	case *expr.Queue:
		d.out = append(d.out, ruleset.Verdict{Kind: "queue"})
	case *expr.Dynset:
		d.out = append(d.out, ruleset.NoEffect{Kind: "dynset", Text: "update @" + x.SetName})
	case *expr.FlowOffload:
		d.out = append(d.out, ruleset.NoEffect{Kind: "flow", Text: "flow add @" + x.Name})
	case *expr.Match:
		d.unsupported("xt", fmt.Sprintf("xt match %q", x.Name))
	case *expr.Target:
		d.unsupported("xt", fmt.Sprintf("xt target %q", x.Name))
	case *expr.Exthdr, *expr.Hash, *expr.Numgen, *expr.Socket, *expr.Rt:
		if reg, ok := destRegister(e); ok {
			d.set(reg, slot{x: ruleset.Opaque{Kind: kindName(e), Text: kindName(e)}, typ: tInt, size: 4})
			return
		}
		d.unsupported(kindName(e), kindName(e)+" statement")
	default:
		d.unsupported(kindName(e), kindName(e))
	}
}

func kindName(e expr.Any) string {
	return strings.ToLower(strings.TrimPrefix(fmt.Sprintf("%T", e), "*expr."))
}

func destRegister(e expr.Any) (uint32, bool) {
	switch x := e.(type) {
	case *expr.Exthdr:
		return x.DestRegister, x.DestRegister != 0
	case *expr.Hash:
		return x.DestRegister, true
	case *expr.Numgen:
		return x.Register, true
	case *expr.Socket:
		return x.Register, true
	case *expr.Rt:
		return x.Register, true
	}
	return 0, false
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func limitUnit(u expr.LimitTime) string {
	switch u {
	case expr.LimitTimeSecond:
		return "second"
	case expr.LimitTimeMinute:
		return "minute"
	case expr.LimitTimeHour:
		return "hour"
	case expr.LimitTimeDay:
		return "day"
	case expr.LimitTimeWeek:
		return "week"
	}
	return fmt.Sprint(uint64(u))
}

func verdictOf(v *expr.Verdict) ruleset.Verdict {
	switch v.Kind {
	case expr.VerdictAccept:
		return ruleset.Verdict{Kind: "accept"}
	case expr.VerdictDrop:
		return ruleset.Verdict{Kind: "drop"}
	case expr.VerdictReturn:
		return ruleset.Verdict{Kind: "return"}
	case expr.VerdictJump:
		return ruleset.Verdict{Kind: "jump", Target: v.Chain}
	case expr.VerdictGoto:
		return ruleset.Verdict{Kind: "goto", Target: v.Chain}
	case expr.VerdictContinue:
		return ruleset.Verdict{Kind: "continue"}
	case expr.VerdictQueue:
		return ruleset.Verdict{Kind: "queue"}
	}
	return ruleset.Verdict{Kind: fmt.Sprintf("verdict%d", v.Kind)}
}

var icmpxCodes = []string{"no-route", "port-unreachable", "host-unreachable", "admin-prohibited"}

var icmpCodes = map[uint8]string{0: "net-unreachable", 1: "host-unreachable", 2: "prot-unreachable", 3: "port-unreachable",
	9: "net-prohibited", 10: "host-prohibited", 13: "admin-prohibited"}

var icmpv6Codes = map[uint8]string{0: "no-route", 1: "admin-prohibited", 3: "addr-unreachable", 4: "port-unreachable",
	5: "policy-fail", 6: "reject-route"}

// rejectOf names a reject statement as nft does: ICMP or ICMPv6 codes by the
// rule's network protocol (l3), and nft's default, port-unreachable, bare.
func rejectOf(r *expr.Reject, l3 string) ruleset.Reject {
	var rj ruleset.Reject
	switch {
	case r.Type == unix.NFT_REJECT_TCP_RST:
		return ruleset.Reject{Type: "tcp reset"}
	case r.Type == unix.NFT_REJECT_ICMPX_UNREACH:
		rj = ruleset.Reject{Type: "icmpx", Code: strconv.Itoa(int(r.Code))}
		if int(r.Code) < len(icmpxCodes) {
			rj.Code = icmpxCodes[r.Code]
		}
	case l3 == "ip6":
		rj = ruleset.Reject{Type: "icmpv6", Code: strconv.Itoa(int(r.Code))}
		if n, ok := icmpv6Codes[r.Code]; ok {
			rj.Code = n
		}
	default:
		rj = ruleset.Reject{Type: "icmp", Code: strconv.Itoa(int(r.Code))}
		if n, ok := icmpCodes[r.Code]; ok {
			rj.Code = n
		}
	}
	if rj.Code == "port-unreachable" {
		return ruleset.Reject{}
	}
	return rj
}

// cmp turns a comparison into a Match, recovering prefixes, flag tests and
// interface wildcards, and learning the protocol context from dependencies.
func (d *decoder) cmp(s slot, c *expr.Cmp) {
	op := map[expr.CmpOp]string{expr.CmpOpEq: ruleset.OpEq, expr.CmpOpNeq: ruleset.OpNe, expr.CmpOpLt: ruleset.OpLt,
		expr.CmpOpLte: ruleset.OpLe, expr.CmpOpGt: ruleset.OpGt, expr.CmpOpGte: ruleset.OpGe}[c.Op]
	if s.mask != nil {
		switch {
		case s.typ == tCTState || s.typ == tCTStat:
			// ct state established,related: (state & mask) != 0.
			if allZero(c.Data) {
				names := flagNames(s.typ, hostUint(s.mask))
				fop := ruleset.OpIn
				if op == ruleset.OpEq {
					fop = ruleset.OpNe
				}
				d.out = append(d.out, ruleset.Match{Op: fop, Left: s.x, Right: names})
				return
			}
		case s.typ == tIPv4 || s.typ == tIPv6:
			if n, ok := prefixLen(s.mask); ok {
				d.out = append(d.out, ruleset.Match{Op: op, Left: s.x, Right: addrPrefix(c.Data, s.typ, n)})
				return
			}
		}
		s.x = ruleset.Binop{Op: "&", Left: s.x, Right: d.constOf(s.mask, s.typ)}
	}
	if (s.typ == tIPv4 && len(c.Data) < 4 || s.typ == tIPv6 && len(c.Data) < 16) && s.mask == nil {
		d.out = append(d.out, ruleset.Match{Op: op, Left: s.x, Right: addrPrefix(c.Data, s.typ, len(c.Data)*8)})
		return
	}
	// Interface wildcard: "eth*" compares only the prefix, without the NUL.
	if s.typ == tIfname && len(c.Data) < 16 && (len(c.Data) == 0 || c.Data[len(c.Data)-1] != 0) {
		d.out = append(d.out, ruleset.Match{Op: op, Left: s.x, Right: ruleset.Const{Value: string(c.Data) + "*"}})
		return
	}
	right := d.constOf(c.Data, s.typ)
	if s.typ == tCTState || s.typ == tCTStat {
		right = flagNames(s.typ, hostUint(c.Data))
	}
	if s.typ == tOif {
		// fib ... oif missing / exists
		if f, ok := s.x.(ruleset.Fib); ok && op == ruleset.OpEq && allZero(c.Data) {
			d.out = append(d.out, ruleset.Match{Op: ruleset.OpEq, Left: f, Right: ruleset.Const{Value: "false"}})
			return
		}
	}
	d.out = append(d.out, ruleset.Match{Op: op, Left: s.x, Right: right})
	// Learn the protocol context nft's dependencies establish.
	if op == ruleset.OpEq {
		switch sel := s.x.(type) {
		case ruleset.Meta:
			switch sel.Key {
			case "nfproto":
				if len(c.Data) == 1 {
					d.l3 = map[byte]string{unix.NFPROTO_IPV4: "ip", unix.NFPROTO_IPV6: "ip6"}[c.Data[0]]
				}
			case "protocol":
				if len(c.Data) == 2 {
					d.l3 = map[uint16]string{unix.ETH_P_IP: "ip", unix.ETH_P_IPV6: "ip6"}[binary.BigEndian.Uint16(c.Data)]
				}
			case "l4proto":
				if len(c.Data) == 1 {
					d.l4 = c.Data[0]
				}
			}
		case ruleset.Payload:
			if (sel.Field == "protocol" || sel.Field == "nexthdr") && len(c.Data) == 1 {
				d.l4 = c.Data[0]
			}
		}
	}
}

func prefixLen(mask []byte) (int, bool) {
	n := 0
	seenZero := false
	for _, b := range mask {
		for i := 7; i >= 0; i-- {
			if b&(1<<i) != 0 {
				if seenZero {
					return 0, false
				}
				n++
			} else {
				seenZero = true
			}
		}
	}
	return n, true
}

var ctStateNames = []struct {
	bit  uint64
	name string
}{{1, "invalid"}, {2, "established"}, {4, "related"}, {8, "new"}, {64, "untracked"}}

var ctStatusNames = []struct {
	bit  uint64
	name string
}{{1, "expected"}, {2, "seen-reply"}, {4, "assured"}, {8, "confirmed"}, {16, "snat"}, {32, "dnat"}, {512, "dying"}}

func flagNames(typ string, v uint64) ruleset.Expr {
	names := ctStateNames
	if typ == tCTStat {
		names = ctStatusNames
	}
	var l ruleset.List
	for _, n := range names {
		if v&n.bit != 0 {
			l.Items = append(l.Items, ruleset.Const{Value: n.name})
			v &^= n.bit
		}
	}
	if v != 0 {
		l.Items = append(l.Items, ruleset.Const{Value: fmt.Sprintf("0x%x", v)})
	}
	if len(l.Items) == 1 {
		return l.Items[0]
	}
	return l
}

func hostUint(b []byte) uint64 {
	var buf [8]byte
	copy(buf[:], b)
	return binary.NativeEndian.Uint64(buf[:])
}

func beUint(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

var pktTypeNames = map[uint64]string{0: "host", 1: "broadcast", 2: "multicast", 3: "other"}

var addrTypeNames = map[uint64]string{0: "unspec", 1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast",
	6: "blackhole", 7: "unreachable", 8: "prohibit"}

var protoNames = map[uint64]string{1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 51: "ah", 58: "ipv6-icmp", 112: "vrrp", 132: "sctp"}

// constOf decodes constant bytes by the type of what they are compared with.
func (d *decoder) constOf(b []byte, typ string) ruleset.Expr {
	c := func(s string) ruleset.Expr { return ruleset.Const{Value: s} }
	switch typ {
	case tIPv4, tIPv6:
		if a, ok := netip.AddrFromSlice(b); ok {
			if typ == tIPv6 {
				// Keep IPv4-mapped IPv6 addresses (firewalld matches
				// ::ffff:0.0.0.0/96) as IPv6: unmapping them would turn
				// an IPv6 prefix into an IPv4 one.
				return c(a.String())
			}
			return c(a.Unmap().String())
		}
	case tIfname:
		return c(strings.TrimRight(string(b), "\x00"))
	case tIfindex:
		idx := int(hostUint(b))
		if ifi, err := net.InterfaceByIndex(idx); err == nil {
			return c(ifi.Name)
		}
		return c(fmt.Sprintf("ifindex %d", idx))
	case tProto:
		n := beUint(b)
		if s, ok := protoNames[n]; ok {
			return c(s)
		}
		return c(strconv.FormatUint(n, 10))
	case tMark, tHostInt:
		return c(fmt.Sprintf("0x%08x", hostUint(b)))
	case tPkttype:
		if s, ok := pktTypeNames[beUint(b)]; ok {
			return c(s)
		}
	case tNfproto:
		switch beUint(b) {
		case unix.NFPROTO_IPV4:
			return c("ipv4")
		case unix.NFPROTO_IPV6:
			return c("ipv6")
		}
	case tEther:
		switch beUint(b) {
		case unix.ETH_P_IP:
			return c("ip")
		case unix.ETH_P_IPV6:
			return c("ip6")
		}
	case tMAC:
		if len(b) == 6 {
			return c(net.HardwareAddr(b).String())
		}
	case tAddrTyp:
		if s, ok := addrTypeNames[hostUint(b)]; ok {
			return c(s)
		}
	case tOif:
		return c(fmt.Sprintf("ifindex %d", hostUint(b)))
	case tCTState, tCTStat:
		return flagNames(typ, hostUint(b))
	}
	return c(strconv.FormatUint(beUint(b), 10))
}

// valueOf renders what a register holds as a value for a statement.
func (d *decoder) valueOf(s slot, typ string) ruleset.Expr {
	if s.data != nil {
		return d.constOf(s.data, typ)
	}
	if s.mask != nil {
		return ruleset.Binop{Op: "&", Left: s.x, Right: d.constOf(s.mask, typ)}
	}
	return s.x
}

// lookup handles set membership, maps and verdict maps, including
// concatenated keys loaded into consecutive registers.
func (d *decoder) lookup(l *expr.Lookup) {
	set := d.sets[l.SetName]
	key, ok := d.key(l.SourceRegister, set)
	if !ok {
		d.unsupported("lookup", "lookup in @"+l.SetName+" of an unknown key")
		return
	}
	var ref ruleset.Expr = ruleset.SetRef{Name: l.SetName}
	if set != nil && strings.HasPrefix(set.Name, "__") {
		// Anonymous sets print inline, as nft does.
		ref = ruleset.SetLit{Elems: set.Elements}
	}
	switch {
	case l.IsDestRegSet && l.DestRegister == unix.NFT_REG_VERDICT:
		d.out = append(d.out, ruleset.VMap{Key: key, Data: ref})
	case l.IsDestRegSet:
		d.set(l.DestRegister, slot{x: ruleset.MapLookup{Key: key, Data: ref}, typ: tInt, size: 4})
	default:
		op := ruleset.OpEq
		if l.Invert {
			op = ruleset.OpNe
		}
		d.out = append(d.out, ruleset.Match{Op: op, Left: key, Right: ref})
	}
}

// key returns the selector in register r, or the concatenation starting
// there when the set's key is a concatenation.
func (d *decoder) key(r uint32, set *ruleset.Set) (ruleset.Expr, bool) {
	s, ok := d.get(r)
	if !ok {
		return nil, false
	}
	if set == nil || len(set.Type) < 2 {
		return s.x, true
	}
	var c ruleset.Concat
	idx := reg32(r)
	for range set.Type {
		p, ok := d.regs[idx]
		if !ok {
			return nil, false
		}
		c.Items = append(c.Items, p.x)
		idx += (p.size + 3) / 4
	}
	return c, true
}

// addrPrefix builds a prefix from the leading bytes of an address.
func addrPrefix(b []byte, typ string, bits int) ruleset.Expr {
	full := make([]byte, 4)
	if typ == tIPv6 {
		full = make([]byte, 16)
	}
	copy(full, b)
	a, _ := netip.AddrFromSlice(full)
	if bits == len(full)*8 {
		return ruleset.Const{Value: a.String()}
	}
	return ruleset.Prefix{Addr: a.String(), Len: bits}
}
