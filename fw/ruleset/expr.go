package ruleset

import (
	"fmt"
	"strconv"
	"strings"
)

// Expr is one node of a rule: a statement (Match, Verdict, Reject, ...), a
// selector (Meta, Payload, CT, ...) or a value (Const, Prefix, SetRef, ...).
// String renders it in nft syntax.
type Expr interface {
	fmt.Stringer
	expr()
}

// Selectors: what a match reads from the packet or its metadata.
type (
	// Meta is a meta key: iifname, oifname, iif, oif, l4proto, nfproto,
	// protocol, pkttype, mark, skuid, ...
	Meta struct{ Key string }
	// Payload is a named header field: ip saddr, ip6 nexthdr, th dport, ...
	Payload struct{ Proto, Field string }
	// RawPayload is a raw header load: @base,offset,len (bits).
	RawPayload struct {
		Base        string // ll, nh, th, ih
		Offset, Len int
	}
	// CT is a conntrack key (state, mark, status, direction, ...), with an
	// optional direction (original, reply).
	CT struct{ Key, Dir string }
	// Fib is a FIB lookup: flags (saddr, daddr, mark, iif, oif) and result
	// (oif, oifname, type).
	Fib struct {
		Flags  []string
		Result string
	}
	// Concat is a concatenation of selectors or of values.
	Concat struct{ Items []Expr }
	// Binop is a bitwise operation: &, |, ^, <<, >>.
	Binop struct {
		Op          string
		Left, Right Expr
	}
	// MapLookup looks Key up in a map (named SetRef or anonymous SetLit) and
	// yields the data.
	MapLookup struct{ Key, Data Expr }
	// Opaque is a selector the model does not interpret (socket, rt, osf,
	// numgen, hash, exthdr, ...); evaluating it is unknown.
	Opaque struct{ Kind, Text string }
)

// Values: what a selector is compared with.
type (
	// Const is one constant as the tools print it: "224.0.0.18", "vrrp",
	// "eth*", "16", "0x10", "new".
	Const struct{ Value string }
	// Prefix is an address prefix.
	Prefix struct {
		Addr string
		Len  int
	}
	// Range is an inclusive range lo-hi.
	Range struct{ Lo, Hi Expr }
	// SetLit is an anonymous set or map: { a, b } or { a : v, b : w }.
	SetLit struct{ Elems []Element }
	// SetRef names a set or map of the same table: @name.
	SetRef struct{ Name string }
	// List is a list of flag values combined with OR (ct state established,related).
	List struct{ Items []Expr }
)

// Match operators.
const (
	OpEq  = "=="
	OpNe  = "!="
	OpLt  = "<"
	OpGt  = ">"
	OpLe  = "<="
	OpGe  = ">="
	OpIn  = "in" // bitmask: any of the flags on the right is set
	OpAny = ""   // implicit operator, printed without a symbol
)

// Statements.
type (
	// Match compares Left with Right; a false match ends the rule.
	Match struct {
		Op          string
		Left, Right Expr
	}
	// Verdict is accept, drop, continue, return, jump, goto or queue.
	Verdict struct {
		Kind   string
		Target string // chain for jump and goto
	}
	// Reject is a reject statement or REJECT target; it drops the packet.
	Reject struct{ Type, Code string }
	// Counter counts and continues.
	Counter struct{}
	// Log logs and continues.
	Log struct{ Prefix string }
	// Limit matches while a rate is not exceeded: the outcome depends on
	// traffic and time.
	Limit struct{ Text string }
	// Mangle sets Key (meta mark, ct mark, ...) to Value.
	Mangle struct{ Key, Value Expr }
	// Notrack stops connection tracking of the packet.
	Notrack struct{}
	// VMap looks Key up in a verdict map and applies the verdict found.
	VMap struct{ Key, Data Expr }
	// NAT rewrites addresses or ports (snat, dnat, masquerade, redirect).
	NAT struct{ Kind, Text string }
	// NoEffect is a statement that changes neither the verdict nor anything
	// a later match reads (set update, flow add, TRACE, ...).
	NoEffect struct{ Kind, Text string }
	// Unsupported is a statement or match the model cannot evaluate;
	// reaching it makes the evaluation unknown.
	Unsupported struct{ Kind, Text string }
)

func (Meta) expr()        {}
func (Payload) expr()     {}
func (RawPayload) expr()  {}
func (CT) expr()          {}
func (Fib) expr()         {}
func (Concat) expr()      {}
func (Binop) expr()       {}
func (MapLookup) expr()   {}
func (Opaque) expr()      {}
func (Const) expr()       {}
func (Prefix) expr()      {}
func (Range) expr()       {}
func (SetLit) expr()      {}
func (SetRef) expr()      {}
func (List) expr()        {}
func (Match) expr()       {}
func (Verdict) expr()     {}
func (Reject) expr()      {}
func (Counter) expr()     {}
func (Log) expr()         {}
func (Limit) expr()       {}
func (Mangle) expr()      {}
func (Notrack) expr()     {}
func (VMap) expr()        {}
func (NAT) expr()         {}
func (NoEffect) expr()    {}
func (Unsupported) expr() {}

// unqualifiedMeta are the meta keys nft prints without "meta".
var unqualifiedMeta = map[string]bool{"iif": true, "oif": true, "iifname": true, "oifname": true, "iifgroup": true, "oifgroup": true}

func (m Meta) String() string {
	if unqualifiedMeta[m.Key] {
		return m.Key
	}
	return "meta " + m.Key
}

func (p Payload) String() string { return p.Proto + " " + p.Field }

func (p RawPayload) String() string { return fmt.Sprintf("@%s,%d,%d", p.Base, p.Offset, p.Len) }

func (c CT) String() string {
	if c.Dir != "" {
		return "ct " + c.Dir + " " + c.Key
	}
	return "ct " + c.Key
}

func (f Fib) String() string { return "fib " + strings.Join(f.Flags, " . ") + " " + f.Result }

func (c Concat) String() string { return joinExprs(c.Items, " . ") }

func (b Binop) String() string { return b.Left.String() + " " + b.Op + " " + b.Right.String() }

func (m MapLookup) String() string { return m.Key.String() + " map " + m.Data.String() }

func (o Opaque) String() string { return o.Text }

func (c Const) String() string { return c.Value }

func (p Prefix) String() string { return fmt.Sprintf("%s/%d", p.Addr, p.Len) }

func (r Range) String() string { return r.Lo.String() + "-" + r.Hi.String() }

func (s SetLit) String() string {
	parts := make([]string, len(s.Elems))
	for i, e := range s.Elems {
		parts[i] = e.String()
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}

func (s SetRef) String() string { return "@" + s.Name }

func (l List) String() string { return joinExprs(l.Items, ",") }

// String renders the element, "key" or "key : value".
func (e Element) String() string {
	if e.Value == nil {
		return e.Key.String()
	}
	return e.Key.String() + " : " + e.Value.String()
}

func (m Match) String() string {
	right := m.Right.String()
	switch {
	case isIfnameKey(m.Left):
		right = quoteIfnames(m.Right)
	case isMarkKey(m.Left):
		right = hexMarks(m.Right).String()
	}
	if f, ok := m.Left.(Fib); ok && f.Result == "oif" {
		switch right {
		case "false":
			right = "missing"
		case "true":
			right = "exists"
		}
	}
	left := m.Left.String()
	_, binop := m.Left.(Binop)
	if binop && isMarkKey(m.Left) {
		left = hexMarks(m.Left).String()
	}
	switch {
	case m.Op == OpEq && binop:
		return left + " == " + right
	case m.Op == OpEq, m.Op == OpIn, m.Op == OpAny:
		return left + " " + right
	}
	return left + " " + m.Op + " " + right
}

// isMarkKey reports whether e reads a packet or conntrack mark (possibly
// through a bitwise operation), whose values nft prints in hex.
func isMarkKey(e Expr) bool {
	switch k := e.(type) {
	case Meta:
		return k.Key == "mark"
	case CT:
		return k.Key == "mark"
	case Binop:
		return isMarkKey(k.Left)
	}
	return false
}

// hexMarks renders decimal constants as nft prints marks: 0x00000010.
func hexMarks(e Expr) Expr {
	switch v := e.(type) {
	case Const:
		if n, err := strconv.ParseUint(v.Value, 10, 32); err == nil {
			return Const{Value: fmt.Sprintf("0x%08x", n)}
		}
	case Binop:
		return Binop{Op: v.Op, Left: hexMarks(v.Left), Right: hexMarks(v.Right)}
	case SetLit:
		out := SetLit{Elems: make([]Element, len(v.Elems))}
		for i, el := range v.Elems {
			out.Elems[i] = Element{Key: hexMarks(el.Key), Value: el.Value}
		}
		return out
	}
	return e
}

func (v Verdict) String() string {
	if v.Target != "" {
		return v.Kind + " " + v.Target
	}
	return v.Kind
}

func (r Reject) String() string {
	switch {
	case r.Type == "" && r.Code == "":
		return "reject"
	case r.Type == "tcp reset":
		return "reject with tcp reset"
	case r.Code == "":
		return "reject with " + r.Type
	case r.Type == "":
		return "reject with " + r.Code
	}
	return "reject with " + r.Type + " " + r.Code
}

func (Counter) String() string { return "counter" }

func (l Log) String() string {
	if l.Prefix != "" {
		return fmt.Sprintf("log prefix %q", l.Prefix)
	}
	return "log"
}

func (l Limit) String() string { return l.Text }

func (m Mangle) String() string {
	v := m.Value
	if isMarkKey(m.Key) {
		switch x := v.(type) {
		case MapLookup:
			if lit, ok := x.Data.(SetLit); ok {
				els := make([]Element, len(lit.Elems))
				for i, el := range lit.Elems {
					els[i] = Element{Key: el.Key, Value: hexMarks(el.Value)}
				}
				v = MapLookup{Key: x.Key, Data: SetLit{Elems: els}}
			}
		default:
			v = hexMarks(v)
		}
	}
	return m.Key.String() + " set " + v.String()
}

func (Notrack) String() string { return "notrack" }

func (v VMap) String() string { return v.Key.String() + " vmap " + v.Data.String() }

func (n NAT) String() string { return n.Text }

func (n NoEffect) String() string { return n.Text }

func (u Unsupported) String() string { return u.Text }

func joinExprs(xs []Expr, sep string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = x.String()
	}
	return strings.Join(parts, sep)
}

func isIfnameKey(e Expr) bool {
	m, ok := e.(Meta)
	return ok && (m.Key == "iifname" || m.Key == "oifname" || m.Key == "iif" || m.Key == "oif" || m.Key == "iifkind" || m.Key == "oifkind")
}

// quoteIfnames renders interface names quoted, as nft prints them.
func quoteIfnames(e Expr) string {
	switch v := e.(type) {
	case Const:
		return fmt.Sprintf("%q", v.Value)
	case SetLit:
		parts := make([]string, len(v.Elems))
		for i, el := range v.Elems {
			parts[i] = quoteIfnames(el.Key)
			if el.Value != nil {
				parts[i] += " : " + el.Value.String()
			}
		}
		return "{ " + strings.Join(parts, ", ") + " }"
	}
	return e.String()
}

// RuleText renders a rule's expressions in nft syntax, with its comment.
func RuleText(exprs []Expr, comment string) string {
	var parts []string
	for _, x := range exprs {
		s := x.String()
		if v, ok := x.(VMap); ok && isIfnameKey(v.Key) {
			s = v.Key.String() + " vmap " + quoteIfnames(v.Data)
		}
		parts = append(parts, s)
	}
	if comment != "" {
		parts = append(parts, fmt.Sprintf("comment %q", comment))
	}
	return strings.Join(parts, " ")
}
