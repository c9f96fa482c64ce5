package eval

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

type outKind int

const (
	outNoMatch outKind = iota // the rule did not match (or ended without verdict)
	outVerdict                // the rule matched and gave v
	outUnknown                // the rule reached something not understood
)

// ruleOut is one way a rule can end.
type ruleOut struct {
	kind   outKind
	v      ruleset.Verdict
	b      branch
	reason string
}

// rule evaluates one rule for one way; undecidable matches split the way.
func (e *evaluator) rule(bc base, c *ruleset.Chain, r *ruleset.Rule, b branch) []ruleOut {
	if r.Incomplete != "" {
		// What was read of the rule cannot be trusted: a missing expression
		// also shifts the meaning of those that follow it.
		return []ruleOut{{kind: outUnknown, b: b, reason: fmt.Sprintf("%s was not read in full: %s", e.where(bc, c, r), r.Incomplete)}}
	}
	return e.exprs(bc, c, r, 0, b)
}

func (e *evaluator) where(bc base, c *ruleset.Chain, r *ruleset.Rule) string {
	id := ""
	switch {
	case r.Handle != 0:
		id = fmt.Sprintf(" handle %d", r.Handle)
	case r.Position != 0:
		id = fmt.Sprintf(" rule %d", r.Position)
	}
	return fmt.Sprintf("%q (%s %s %s %s%s)", r.Text, bc.t.Backend, bc.t.Family, bc.t.Name, c.Name, id)
}

// exprs evaluates r.Exprs[i:] on way b.
func (e *evaluator) exprs(bc base, c *ruleset.Chain, r *ruleset.Rule, i int, b branch) []ruleOut {
	for ; i < len(r.Exprs); i++ {
		switch x := r.Exprs[i].(type) {
		case ruleset.Match:
			t, why := e.match(bc, x, b.st)
			switch t {
			case no:
				return []ruleOut{{kind: outNoMatch, b: b}}
			case maybe:
				return e.fork(bc, c, r, i, b, fmt.Sprintf("%s: %s", x, why))
			}
		case ruleset.Limit:
			return e.fork(bc, c, r, i, b, fmt.Sprintf("%s (depends on the traffic rate)", x))
		case ruleset.Counter, ruleset.Log, ruleset.NoEffect:
		case ruleset.Notrack:
			t, why := e.notrack(bc)
			switch t {
			case yes:
				b.st.untracked = true
			case maybe:
				return []ruleOut{{kind: outUnknown, b: b, reason: fmt.Sprintf("%s: %s", e.where(bc, c, r), why)}}
			}
		case ruleset.Mangle:
			if err := e.mangle(x, &b.st); err != nil {
				return []ruleOut{{kind: outUnknown, b: b, reason: fmt.Sprintf("%s: %v", e.where(bc, c, r), err)}}
			}
		case ruleset.Verdict:
			b.path = append(b.path, e.step(bc, c, r, x.String()))
			return []ruleOut{{kind: outVerdict, v: x, b: b}}
		case ruleset.Reject:
			b.path = append(b.path, e.step(bc, c, r, "reject"))
			return []ruleOut{{kind: outVerdict, v: ruleset.Verdict{Kind: "reject"}, b: b}}
		case ruleset.VMap:
			v, found, why := e.vmap(bc, x, b.st)
			if why != "" {
				return []ruleOut{{kind: outUnknown, b: b, reason: fmt.Sprintf("%s: %s", e.where(bc, c, r), why)}}
			}
			if !found {
				return []ruleOut{{kind: outNoMatch, b: b}}
			}
			b.path = append(b.path, e.step(bc, c, r, v.String()))
			return []ruleOut{{kind: outVerdict, v: v, b: b}}
		case ruleset.NAT:
			return []ruleOut{{kind: outUnknown, b: b, reason: fmt.Sprintf("%s rewrites the packet's addresses (%s); the evaluator does not follow NAT", e.where(bc, c, r), x.Kind)}}
		case ruleset.Unsupported:
			return []ruleOut{{kind: outUnknown, b: b, reason: fmt.Sprintf("%s: %s %q is not evaluated", e.where(bc, c, r), x.Kind, x.Text)}}
		default:
			return []ruleOut{{kind: outUnknown, b: b, reason: fmt.Sprintf("%s: expression %q is not evaluated", e.where(bc, c, r), x)}}
		}
	}
	// Matched, without a verdict: the rule's statements ran; go on.
	b.path = append(b.path, e.step(bc, c, r, "continue"))
	return []ruleOut{{kind: outNoMatch, b: b}}
}

// fork follows an undecidable condition at r.Exprs[i] both ways.
func (e *evaluator) fork(bc base, c *ruleset.Chain, r *ruleset.Rule, i int, b branch, cond string) []ruleOut {
	yes, no := b.clone(), b.clone()
	yes.may = append(yes.may, cond)
	no.may = append(no.may, "not: "+cond)
	out := e.exprs(bc, c, r, i+1, yes)
	return append(out, ruleOut{kind: outNoMatch, b: no})
}

// notrack reports whether notrack takes effect here: only before conntrack
// (priority -200 on prerouting and output) has attached to the packet.
func (e *evaluator) notrack(bc base) (tri, string) {
	switch bc.hook {
	case ruleset.HookIngress:
		return yes, ""
	case ruleset.HookPrerouting, ruleset.HookOutput:
		p := bc.c.Base.Priority
		switch {
		case p < ruleset.PriorityConntrack:
			return yes, ""
		case p == ruleset.PriorityConntrack:
			return maybe, "notrack at priority -200 runs before or after conntrack in registration order"
		}
	}
	return no, ""
}

// ctState is the packet's conntrack state as a base chain sees it.
func (e *evaluator) ctState(bc base, st state) (uint64, bool) {
	if st.untracked {
		return ctStateBits["untracked"], true
	}
	switch bc.hook {
	case ruleset.HookIngress:
		return ctStateBits["invalid"], true
	case ruleset.HookPrerouting, ruleset.HookOutput:
		p := bc.c.Base.Priority
		switch {
		case p < ruleset.PriorityConntrack:
			return ctStateBits["invalid"], true
		case p == ruleset.PriorityConntrack:
			return 0, false
		}
	}
	return ctStateBits[e.p.CTState], true
}

func (e *evaluator) mangle(m ruleset.Mangle, st *state) error {
	switch k := m.Key.(type) {
	case ruleset.Meta:
		if k.Key != "mark" {
			return fmt.Errorf("setting meta %s is not followed", k.Key)
		}
		v, t, why := e.load(base{}, m.Value, *st)
		switch {
		case t == maybe:
			st.markKnown = false
		case v.kind == vNone:
			// A map without the key: the rule stops here in the kernel too,
			// but the evaluator treats the mark as unknown to stay safe.
			st.markKnown = false
		case v.kind != vNum:
			return fmt.Errorf("mark value %s: %s", m.Value, why)
		default:
			st.mark, st.markKnown = uint32(v.n), true
		}
		return nil
	case ruleset.CT:
		if k.Key == "mark" {
			return nil // read back as unknown: see ctMarkSet
		}
	}
	return fmt.Errorf("setting %s is not followed", m.Key)
}

// tri is a three-valued truth.
type tri int

const (
	no tri = iota
	yes
	maybe
)

type vkind int

const (
	vNone  vkind = iota // the header is absent: any match on it is false
	vAddr               // an address
	vStr                // an interface name
	vNum                // a number (protocol, mark, ttl, pkttype, ...)
	vFlags              // a bitmask (ct state)
	vType               // a name (fib address type, nfproto)
	vConcat
)

// val is a value loaded from the packet.
type val struct {
	kind  vkind
	addr  netip.Addr
	s     string
	n     uint64
	parts []val
	// what names the selector, for parsing constants against it.
	what string
}

// load reads a selector from the packet. maybe means the value is not known.
func (e *evaluator) load(bc base, x ruleset.Expr, st state) (val, tri, string) {
	p := e.p
	switch k := x.(type) {
	case ruleset.Const:
		n, err := strconv.ParseUint(k.Value, 0, 64)
		if err != nil {
			return val{}, maybe, fmt.Sprintf("constant %q is not a number", k.Value)
		}
		return val{kind: vNum, n: n}, yes, ""
	case ruleset.Meta:
		switch k.Key {
		case "iifname", "iif":
			name := ""
			if p.Direction == In {
				name = p.InIface
			}
			return val{kind: vStr, s: name}, yes, ""
		case "oifname", "oif":
			name := ""
			if p.Direction == Out && (bc.hook == ruleset.HookPostrouting || bc.hook == ruleset.HookOutput || bc.hook == ruleset.HookEgress) {
				name = p.OutIface
			}
			return val{kind: vStr, s: name}, yes, ""
		case "l4proto":
			return val{kind: vNum, n: uint64(p.Proto), what: "proto"}, yes, ""
		case "nfproto":
			if p.Family == 4 {
				return val{kind: vType, s: "ipv4", n: 2, what: "nfproto"}, yes, ""
			}
			return val{kind: vType, s: "ipv6", n: 10, what: "nfproto"}, yes, ""
		case "protocol":
			if p.Family == 4 {
				return val{kind: vType, s: "ip", n: 0x0800, what: "ethertype"}, yes, ""
			}
			return val{kind: vType, s: "ip6", n: 0x86dd, what: "ethertype"}, yes, ""
		case "pkttype":
			n, ok := pktTypes[p.PktType]
			if !ok {
				return val{}, maybe, fmt.Sprintf("packet type %q is not known", p.PktType)
			}
			return val{kind: vNum, n: n, what: "pkttype"}, yes, ""
		case "mark":
			if !st.markKnown {
				return val{}, maybe, "the mark was set earlier from something not known"
			}
			return val{kind: vNum, n: uint64(st.mark)}, yes, ""
		}
		return val{}, maybe, fmt.Sprintf("meta %s is not known for the described packet", k.Key)
	case ruleset.Payload:
		return e.payload(k)
	case ruleset.CT:
		if k.Dir != "" {
			return val{}, maybe, fmt.Sprintf("ct %s %s is not evaluated", k.Dir, k.Key)
		}
		switch k.Key {
		case "state":
			s, ok := e.ctState(bc, st)
			if !ok {
				return val{}, maybe, "a base chain at priority -200 runs before or after conntrack in registration order"
			}
			return val{kind: vFlags, n: s, what: "ctstate"}, yes, ""
		case "status":
			// A new flow that no NAT rule touched: only "confirmed" differs
			// between the first advert and the later ones.
			return val{kind: vFlags, n: 0, what: "ctstatus"}, yes, ""
		case "direction":
			return val{kind: vType, s: "original", n: 0, what: "ctdir"}, yes, ""
		case "mark":
			if e.ctMarkSet {
				return val{}, maybe, "the ruleset sets the conntrack mark, which persists from earlier packets"
			}
			return val{kind: vNum, n: 0}, yes, ""
		}
		return val{}, maybe, fmt.Sprintf("ct %s is not evaluated", k.Key)
	case ruleset.Fib:
		return e.fib(bc, k)
	case ruleset.Binop:
		l, t, why := e.load(bc, k.Left, st)
		if t != yes {
			return l, t, why
		}
		if l.kind == vNone {
			return l, yes, ""
		}
		c, ok := k.Right.(ruleset.Const)
		if !ok || l.kind != vNum {
			return val{}, maybe, fmt.Sprintf("operation %s is not evaluated", k)
		}
		r, err := strconv.ParseUint(c.Value, 0, 64)
		if err != nil {
			return val{}, maybe, fmt.Sprintf("operand %q is not a number", c.Value)
		}
		switch k.Op {
		case "&":
			l.n &= r
		case "|":
			l.n |= r
		case "^":
			l.n ^= r
		case "<<":
			l.n <<= r
		case ">>":
			l.n >>= r
		default:
			return val{}, maybe, "operator " + k.Op + " is not evaluated"
		}
		return l, yes, ""
	case ruleset.Concat:
		out := val{kind: vConcat}
		for _, it := range k.Items {
			v, t, why := e.load(bc, it, st)
			if t != yes {
				return v, t, why
			}
			if v.kind == vNone {
				return v, yes, ""
			}
			out.parts = append(out.parts, v)
		}
		return out, yes, ""
	case ruleset.MapLookup:
		key, t, why := e.load(bc, k.Key, st)
		if t != yes {
			return key, t, why
		}
		if key.kind == vNone {
			return key, yes, ""
		}
		els, why := e.elements(bc, k.Data)
		if why != "" {
			return val{}, maybe, why
		}
		for _, el := range els {
			m, why := e.elemMatch(key, el.Key)
			if m == maybe {
				return val{}, maybe, why
			}
			if m == yes {
				return e.load(bc, el.Value, st)
			}
		}
		return val{kind: vNone}, yes, ""
	}
	return val{}, maybe, fmt.Sprintf("%s is not evaluated", x)
}

// payload reads a header field of the described packet.
func (e *evaluator) payload(k ruleset.Payload) (val, tri, string) {
	p := e.p
	l3 := "ip"
	if p.Family == 6 {
		l3 = "ip6"
	}
	switch k.Proto {
	case "ip", "ip6":
		if k.Proto != l3 {
			return val{kind: vNone}, yes, ""
		}
		switch k.Field {
		case "saddr":
			if !p.Src.IsValid() {
				return val{}, maybe, "the source address is not given"
			}
			return val{kind: vAddr, addr: p.Src}, yes, ""
		case "daddr":
			return val{kind: vAddr, addr: p.Dst}, yes, ""
		case "protocol", "nexthdr":
			return val{kind: vNum, n: uint64(p.Proto), what: "proto"}, yes, ""
		case "ttl", "hoplimit":
			return val{kind: vNum, n: uint64(p.TTL)}, yes, ""
		case "version":
			return val{kind: vNum, n: uint64(p.Family)}, yes, ""
		}
		return val{}, maybe, fmt.Sprintf("%s is not part of the packet description", k)
	case "th":
		return val{}, maybe, fmt.Sprintf("%s reads the first bytes after the IP header, which the packet description does not hold", k)
	}
	// Any other header (tcp, udp, icmp, ...): the rule carries a dependency
	// on that protocol, so it cannot match a packet of another protocol.
	if n, ok := protoNumber(strings.TrimSuffix(k.Proto, "v6")); ok && n == uint64(p.Proto) {
		return val{}, maybe, fmt.Sprintf("%s is not part of the packet description", k)
	}
	if k.Proto == "icmpv6" && p.Proto == 58 {
		return val{}, maybe, fmt.Sprintf("%s is not part of the packet description", k)
	}
	return val{kind: vNone}, yes, ""
}

// fib answers the FIB lookups firewalls use on a VRRP advert.
func (e *evaluator) fib(bc base, k ruleset.Fib) (val, tri, string) {
	p := e.p
	has := func(f string) bool {
		for _, x := range k.Flags {
			if x == f {
				return true
			}
		}
		return false
	}
	switch {
	case k.Result == "type" && has("daddr"):
		switch {
		case p.Dst.IsMulticast():
			return val{kind: vType, s: "multicast", what: "addrtype"}, yes, ""
		case p.Direction == In:
			return val{kind: vType, s: "local", what: "addrtype"}, yes, ""
		}
		return val{kind: vType, s: "unicast", what: "addrtype"}, yes, ""
	case k.Result == "type" && has("saddr"):
		if p.Direction == Out {
			return val{kind: vType, s: "local", what: "addrtype"}, yes, ""
		}
		if p.Src.IsValid() && p.Src.Is4() && !p.Src.IsMulticast() {
			return val{kind: vType, s: "unicast", what: "addrtype"}, yes, ""
		}
	case k.Result == "oif" && has("saddr") && has("iif") && p.Direction == In:
		// Reverse path filter: is the source reachable through the
		// interface it came in on? A link-local source always is.
		if (p.Src.IsValid() && p.Src.IsLinkLocalUnicast()) || (!p.Src.IsValid() && p.SrcLinkLocal) {
			return val{kind: vType, s: "true", what: "exists"}, yes, ""
		}
	}
	return val{}, maybe, fmt.Sprintf("%s needs the host's routes", k)
}

// match evaluates one comparison.
func (e *evaluator) match(bc base, m ruleset.Match, st state) (tri, string) {
	l, t, why := e.load(bc, m.Left, st)
	if t != yes {
		return maybe, why
	}
	if l.kind == vNone {
		return no, ""
	}
	switch m.Op {
	case ruleset.OpEq, ruleset.OpAny, ruleset.OpIn, ruleset.OpNe:
		r, why := e.member(bc, l, m.Right, m.Op)
		if r == maybe {
			return maybe, why
		}
		if m.Op == ruleset.OpNe {
			return not(r), ""
		}
		return r, ""
	case ruleset.OpLt, ruleset.OpGt, ruleset.OpLe, ruleset.OpGe:
		c, ok := m.Right.(ruleset.Const)
		if !ok || l.kind != vNum {
			return maybe, fmt.Sprintf("comparison %s is not evaluated", m)
		}
		n, ok := parseNum(l, c.Value)
		if !ok {
			return maybe, fmt.Sprintf("%q is not a number", c.Value)
		}
		var r bool
		switch m.Op {
		case ruleset.OpLt:
			r = l.n < n
		case ruleset.OpGt:
			r = l.n > n
		case ruleset.OpLe:
			r = l.n <= n
		case ruleset.OpGe:
			r = l.n >= n
		}
		return boolTri(r), ""
	}
	return maybe, "operator " + m.Op + " is not evaluated"
}

func not(t tri) tri {
	switch t {
	case yes:
		return no
	case no:
		return yes
	}
	return maybe
}

func boolTri(b bool) tri {
	if b {
		return yes
	}
	return no
}

// member compares the loaded value with the right side: a constant, prefix,
// range, flag list, anonymous set or named set.
func (e *evaluator) member(bc base, l val, right ruleset.Expr, op string) (tri, string) {
	if l.kind == vFlags {
		return flagsMatch(l, right)
	}
	switch r := right.(type) {
	case ruleset.SetRef, ruleset.SetLit:
		els, why := e.elements(bc, r)
		if why != "" {
			return maybe, why
		}
		unknown := ""
		for _, el := range els {
			m, why := e.elemMatch(l, el.Key)
			if m == yes {
				return yes, ""
			}
			if m == maybe && unknown == "" {
				unknown = why
			}
		}
		if unknown != "" {
			return maybe, unknown
		}
		return no, ""
	case ruleset.List:
		return maybe, fmt.Sprintf("list %s compared with %s is not evaluated", r, op)
	}
	return e.elemMatch(l, right)
}

// elements returns the elements of a named set or an anonymous one.
func (e *evaluator) elements(bc base, x ruleset.Expr) ([]ruleset.Element, string) {
	switch s := x.(type) {
	case ruleset.SetLit:
		return s.Elems, ""
	case ruleset.SetRef:
		if bc.t == nil {
			return nil, "set @" + s.Name + " outside a table"
		}
		set := bc.t.Set(s.Name)
		if set == nil {
			return nil, fmt.Sprintf("set @%s is not in table %s %s", s.Name, bc.t.Family, bc.t.Name)
		}
		if set.Incomplete != "" {
			return nil, fmt.Sprintf("set @%s is not known in full: %s", s.Name, set.Incomplete)
		}
		return set.Elements, ""
	}
	return nil, fmt.Sprintf("%s is not a set", x)
}

// elemMatch compares a loaded value with one constant, prefix, range or
// concatenation.
func (e *evaluator) elemMatch(l val, x ruleset.Expr) (tri, string) {
	if l.kind == vConcat {
		c, ok := x.(ruleset.Concat)
		if !ok || len(c.Items) != len(l.parts) {
			return maybe, fmt.Sprintf("element %s does not fit the concatenation", x)
		}
		res := yes
		for i, it := range c.Items {
			m, why := e.elemMatch(l.parts[i], it)
			if m == no {
				return no, ""
			}
			if m == maybe {
				return maybe, why
			}
			res = m
		}
		return res, ""
	}
	switch r := x.(type) {
	case ruleset.Const:
		return constMatch(l, r.Value)
	case ruleset.Prefix:
		if l.kind != vAddr {
			return maybe, fmt.Sprintf("prefix %s compared with a non-address", r)
		}
		a, err := netip.ParseAddr(r.Addr)
		if err != nil {
			return maybe, fmt.Sprintf("bad prefix %s", r)
		}
		pfx, err := a.Prefix(r.Len)
		if err != nil {
			return maybe, fmt.Sprintf("bad prefix %s", r)
		}
		if a.Is4() != l.addr.Is4() {
			return no, ""
		}
		return boolTri(pfx.Contains(l.addr)), ""
	case ruleset.Range:
		lo, lok := r.Lo.(ruleset.Const)
		hi, hok := r.Hi.(ruleset.Const)
		if !lok || !hok {
			return maybe, fmt.Sprintf("range %s is not evaluated", r)
		}
		switch l.kind {
		case vAddr:
			a, err1 := netip.ParseAddr(lo.Value)
			b, err2 := netip.ParseAddr(hi.Value)
			if err1 != nil || err2 != nil {
				return maybe, fmt.Sprintf("bad address range %s", r)
			}
			if a.Is4() != l.addr.Is4() {
				return no, ""
			}
			return boolTri(a.Compare(l.addr) <= 0 && l.addr.Compare(b) <= 0), ""
		case vNum:
			a, ok1 := parseNum(l, lo.Value)
			b, ok2 := parseNum(l, hi.Value)
			if !ok1 || !ok2 {
				return maybe, fmt.Sprintf("bad range %s", r)
			}
			return boolTri(a <= l.n && l.n <= b), ""
		}
	}
	return maybe, fmt.Sprintf("%s is not evaluated against this key", x)
}

// constMatch compares a loaded value with one constant as nft or iptables
// printed it.
func constMatch(l val, c string) (tri, string) {
	switch l.kind {
	case vAddr:
		a, err := netip.ParseAddr(c)
		if err != nil {
			if p, err := netip.ParsePrefix(c); err == nil {
				return boolTri(p.Addr().Is4() == l.addr.Is4() && p.Contains(l.addr)), ""
			}
			return maybe, fmt.Sprintf("%q is not an address", c)
		}
		return boolTri(a.Unmap() == l.addr), ""
	case vStr:
		return boolTri(ifnameMatch(c, l.s)), ""
	case vNum:
		n, ok := parseNum(l, c)
		if !ok {
			return maybe, fmt.Sprintf("%q is not a known %s value", c, orNumber(l.what))
		}
		return boolTri(n == l.n), ""
	case vType:
		if n, err := strconv.ParseUint(c, 0, 64); err == nil && l.what != "addrtype" {
			return boolTri(n == l.n), ""
		}
		return boolTri(strings.EqualFold(c, l.s)), ""
	}
	return maybe, fmt.Sprintf("%q is not evaluated", c)
}

func orNumber(what string) string {
	if what == "" {
		return "numeric"
	}
	return what
}

func parseNum(l val, s string) (uint64, bool) {
	switch l.what {
	case "proto":
		return protoNumber(s)
	case "pkttype":
		if n, ok := pktTypes[strings.ToLower(s)]; ok {
			return n, true
		}
	}
	n, err := strconv.ParseUint(s, 0, 64)
	return n, err == nil
}

// ifnameMatch compares an interface name with a pattern: "eth*" (nft) is a
// prefix match; "\*" is a literal star.
func ifnameMatch(pattern, name string) bool {
	if strings.HasSuffix(pattern, "*") && !strings.HasSuffix(pattern, `\*`) {
		return strings.HasPrefix(name, strings.TrimSuffix(pattern, "*"))
	}
	return strings.ReplaceAll(pattern, `\*`, "*") == name
}

// ctStatusBits are the conntrack status bits (IPS_*) rules test.
var ctStatusBits = map[string]uint64{"expected": 1, "seen-reply": 2, "assured": 4, "confirmed": 8, "snat": 16, "dnat": 32, "dying": 512}

// flagsMatch tests ct state or ct status against a flag or flag list: any
// bit matches.
func flagsMatch(l val, right ruleset.Expr) (tri, string) {
	bits := ctStateBits
	if l.what == "ctstatus" {
		bits = ctStatusBits
	}
	var names []ruleset.Expr
	switch r := right.(type) {
	case ruleset.Const:
		names = []ruleset.Expr{r}
	case ruleset.List:
		names = r.Items
	case ruleset.SetLit:
		for _, el := range r.Elems {
			names = append(names, el.Key)
		}
	default:
		return maybe, fmt.Sprintf("%s is not evaluated against ct state", right)
	}
	var mask uint64
	for _, n := range names {
		c, ok := n.(ruleset.Const)
		if !ok {
			return maybe, fmt.Sprintf("%s is not a ct state", n)
		}
		bit, ok := bits[strings.ToLower(c.Value)]
		if !ok {
			v, err := strconv.ParseUint(c.Value, 0, 64)
			if err != nil {
				return maybe, fmt.Sprintf("%q is not a known ct %s", c.Value, strings.TrimPrefix(l.what, "ct"))
			}
			bit = v
		}
		if l.what == "ctstatus" && bit&ctStatusBits["confirmed"] != 0 {
			return maybe, "ct status confirmed differs between the first advert of the flow and the later ones"
		}
		mask |= bit
	}
	return boolTri(l.n&mask != 0), ""
}

// vmap looks the key up in a verdict map.
func (e *evaluator) vmap(bc base, m ruleset.VMap, st state) (ruleset.Verdict, bool, string) {
	key, t, why := e.load(bc, m.Key, st)
	if t != yes {
		return ruleset.Verdict{}, false, why
	}
	if key.kind == vNone {
		return ruleset.Verdict{}, false, ""
	}
	els, why := e.elements(bc, m.Data)
	if why != "" {
		return ruleset.Verdict{}, false, why
	}
	for _, el := range els {
		r, why := e.elemMatch(key, el.Key)
		if r == maybe {
			return ruleset.Verdict{}, false, why
		}
		if r == yes {
			v, ok := el.Value.(ruleset.Verdict)
			if !ok {
				return ruleset.Verdict{}, false, fmt.Sprintf("map element %s holds no verdict", el)
			}
			return v, true, ""
		}
	}
	return ruleset.Verdict{}, false, ""
}
