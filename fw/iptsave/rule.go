package iptsave

import (
	"fmt"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// tokenize splits a save line into arguments, honouring the double quotes
// (with \" and \\ escapes) that iptables-save writes around arguments with
// spaces.
func tokenize(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inTok, inQuote := false, false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case inQuote && ch == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\'):
			cur.WriteByte(s[i+1])
			i++
		case ch == '"':
			inQuote = !inQuote
			inTok = true
		case !inQuote && (ch == ' ' || ch == '\t'):
			if inTok {
				out = append(out, cur.String())
				cur.Reset()
				inTok = false
			}
		default:
			cur.WriteByte(ch)
			inTok = true
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unterminated quote")
	}
	if inTok {
		out = append(out, cur.String())
	}
	return out, nil
}

// basic are the options of the rule's IP part.
var basic = map[string]string{
	"-s": "-s", "--source": "-s", "--src": "-s",
	"-d": "-d", "--destination": "-d", "--dst": "-d",
	"-i": "-i", "--in-interface": "-i",
	"-o": "-o", "--out-interface": "-o",
	"-p": "-p", "--protocol": "-p",
	"-f": "-f", "--fragment": "-f",
}

func (p *parser) rule(line string) error {
	toks, err := tokenize(line)
	if err != nil {
		return p.errf("%v", err)
	}
	if len(toks) < 2 {
		return p.errf("%s without a chain", toks[0])
	}
	c := p.table.Chain(toks[1])
	if c == nil {
		return p.errf("rule for undeclared chain %s", toks[1])
	}
	r := &ruleset.Rule{Text: line, Origin: fmt.Sprintf("%s:%d", p.source, p.line)}
	var mods []ruleset.Expr
	proto := ""
	i := 2
	for i < len(toks) {
		neg := false
		if toks[i] == "!" {
			neg = true
			i++
			if i >= len(toks) {
				return p.errf("\"!\" at end of rule")
			}
		}
		opt := toks[i]
		if b, ok := basic[opt]; ok {
			if b == "-f" {
				r.Exprs = append(r.Exprs, ruleset.Unsupported{Kind: "fragment", Text: negText(neg) + "-f"})
				i++
				continue
			}
			if i+1 >= len(toks) {
				return p.errf("%s without a value", opt)
			}
			x, err := p.basicMatch(b, neg, toks[i+1])
			if err != nil {
				return p.errf("%s %s: %v", opt, toks[i+1], err)
			}
			if b == "-p" {
				proto = strings.ToLower(toks[i+1])
			}
			if x != nil {
				r.Exprs = append(r.Exprs, x)
			}
			i += 2
			continue
		}
		switch opt {
		case "-m", "--match":
			if neg {
				return p.errf("\"!\" before -m")
			}
			if i+1 >= len(toks) {
				return p.errf("-m without a module name")
			}
			name := toks[i+1]
			j := i + 2
			for j < len(toks) && !endsModule(toks, j) {
				j++
			}
			xs, comment, err := p.module(name, toks[i+2:j], proto)
			if err != nil {
				return p.errf("-m %s: %v", name, err)
			}
			if comment != "" {
				r.Comment = comment
			}
			mods = append(mods, xs...)
			i = j
		case "-j", "--jump", "-g", "--goto":
			if neg {
				return p.errf("\"!\" before %s", opt)
			}
			if i+1 >= len(toks) {
				return p.errf("%s without a target", opt)
			}
			args := toks[i+2:]
			r.Exprs = append(r.Exprs, mods...)
			mods = nil
			x, err := target(toks[i+1], args, opt == "-g" || opt == "--goto")
			if err != nil {
				return p.errf("-j %s: %v", toks[i+1], err)
			}
			if v, ok := x.(ruleset.Verdict); ok && (v.Kind == "jump" || v.Kind == "goto") {
				p.pending = append(p.pending, pendingJump{rule: r, idx: len(r.Exprs), line: p.line})
			}
			r.Exprs = append(r.Exprs, x)
			i = len(toks)
		case "-c", "--set-counters":
			i += 3
		default:
			return p.errf("unexpected argument %q", opt)
		}
	}
	r.Exprs = append(r.Exprs, mods...)
	if toks[0] == "-I" {
		c.Rules = append([]*ruleset.Rule{r}, c.Rules...)
	} else {
		c.Rules = append(c.Rules, r)
	}
	for k, x := range c.Rules {
		x.Position = k + 1
	}
	return nil
}

// endsModule reports whether toks[j] starts something that is not an option
// of the current -m module.
func endsModule(toks []string, j int) bool {
	t := toks[j]
	if t == "!" && j+1 < len(toks) {
		t = toks[j+1]
	}
	switch t {
	case "-m", "--match", "-j", "--jump", "-g", "--goto":
		return true
	}
	_, ok := basic[t]
	return ok
}

func negText(neg bool) string {
	if neg {
		return "! "
	}
	return ""
}

func op(neg bool) string {
	if neg {
		return ruleset.OpNe
	}
	return ruleset.OpEq
}

func (p *parser) l3() string {
	if p.family == ruleset.FamilyIP6 {
		return "ip6"
	}
	return "ip"
}

func (p *parser) basicMatch(opt string, neg bool, val string) (ruleset.Expr, error) {
	switch opt {
	case "-s", "-d":
		field := "saddr"
		if opt == "-d" {
			field = "daddr"
		}
		v, err := p.addr(val)
		if err != nil {
			return nil, err
		}
		return ruleset.Match{Op: op(neg), Left: ruleset.Payload{Proto: p.l3(), Field: field}, Right: v}, nil
	case "-i", "-o":
		key := "iifname"
		if opt == "-o" {
			key = "oifname"
		}
		if strings.HasSuffix(val, "+") {
			val = strings.TrimSuffix(val, "+") + "*"
		}
		return ruleset.Match{Op: op(neg), Left: ruleset.Meta{Key: key}, Right: ruleset.Const{Value: val}}, nil
	case "-p":
		l := strings.ToLower(val)
		if l == "all" || l == "0" {
			if neg {
				return ruleset.Unsupported{Kind: "protocol", Text: "! -p all"}, nil
			}
			return nil, nil
		}
		var left ruleset.Expr = ruleset.Payload{Proto: "ip", Field: "protocol"}
		if p.family == ruleset.FamilyIP6 {
			left = ruleset.Meta{Key: "l4proto"}
		}
		return ruleset.Match{Op: op(neg), Left: left, Right: ruleset.Const{Value: l}}, nil
	}
	return nil, fmt.Errorf("unknown option")
}

// addr converts "a.b.c.d[/len|/mask]" (or IPv6) into a Const or Prefix.
func (p *parser) addr(s string) (ruleset.Expr, error) {
	a, m, hasMask := strings.Cut(s, "/")
	ip, err := netip.ParseAddr(a)
	if err != nil {
		return nil, fmt.Errorf("bad address %q", a)
	}
	if (p.family == ruleset.FamilyIP6) != ip.Is6() {
		return nil, fmt.Errorf("address %s is not of family %s", a, p.family)
	}
	if !hasMask {
		return ruleset.Const{Value: ip.String()}, nil
	}
	n, err := strconv.Atoi(m)
	if err != nil {
		mask, err := netip.ParseAddr(m)
		if err != nil || !mask.Is4() {
			return nil, fmt.Errorf("bad mask %q", m)
		}
		b := mask.As4()
		v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		n = bits.LeadingZeros32(^v)
		if v<<n != 0 {
			return ruleset.Unsupported{Kind: "mask", Text: "non-contiguous mask " + m}, nil
		}
	}
	if n < 0 || n > ip.BitLen() {
		return nil, fmt.Errorf("bad prefix length %d", n)
	}
	if n == ip.BitLen() {
		return ruleset.Const{Value: ip.String()}, nil
	}
	return ruleset.Prefix{Addr: ip.String(), Len: n}, nil
}

// modOpt is one option of a match module: "[!] --name [values]".
type modOpt struct {
	neg  bool
	name string
	val  string
}

// splitOpts splits module arguments into options with at most one value
// (every option the model interprets takes one or none).
func splitOpts(args []string) ([]modOpt, error) {
	var out []modOpt
	for i := 0; i < len(args); i++ {
		o := modOpt{}
		if args[i] == "!" {
			o.neg = true
			i++
			if i >= len(args) {
				return nil, fmt.Errorf("\"!\" without an option")
			}
		}
		if !strings.HasPrefix(args[i], "--") {
			return nil, fmt.Errorf("unexpected %q", args[i])
		}
		o.name = args[i][2:]
		if i+1 < len(args) && args[i+1] != "!" && !strings.HasPrefix(args[i+1], "--") {
			o.val = args[i+1]
			i++
		}
		out = append(out, o)
	}
	return out, nil
}

// mayModules depend on traffic, time or state the ruleset does not hold.
var mayModules = map[string]bool{"limit": true, "hashlimit": true, "recent": true, "statistic": true, "quota": true, "connlimit": true, "time": true, "connbytes": true, "rateest": true}

// protoModules match on a transport header: false for any other protocol.
var protoModules = map[string]string{"tcp": "tcp", "udp": "udp", "udplite": "udplite", "sctp": "sctp", "dccp": "dccp", "icmp": "icmp", "icmp6": "icmpv6", "icmpv6": "icmpv6", "ah": "ah", "esp": "esp"}

// module translates one -m module. It returns the comment for -m comment.
func (p *parser) module(name string, args []string, proto string) ([]ruleset.Expr, string, error) {
	text := "-m " + name + " " + strings.Join(args, " ")
	text = strings.TrimSpace(text)
	unsupported := func() ([]ruleset.Expr, string, error) {
		return []ruleset.Expr{ruleset.Unsupported{Kind: "xt match " + name, Text: text}}, "", nil
	}
	if mayModules[name] {
		return []ruleset.Expr{ruleset.Limit{Text: text}}, "", nil
	}
	opts, err := splitOpts(args)
	if err != nil {
		return unsupported()
	}
	var out []ruleset.Expr
	add := func(o modOpt, left, right ruleset.Expr) {
		out = append(out, ruleset.Match{Op: op(o.neg), Left: left, Right: right})
	}
	if tp, ok := protoModules[name]; ok {
		for _, o := range opts {
			add(o, ruleset.Payload{Proto: tp, Field: o.name}, ruleset.Const{Value: o.val})
		}
		return out, "", nil
	}
	switch name {
	case "comment":
		if len(opts) == 1 && opts[0].name == "comment" {
			return nil, opts[0].val, nil
		}
	case "conntrack", "state":
		for _, o := range opts {
			switch o.name {
			case "ctstate", "state":
				l, ok := ctStates(o.val)
				if !ok {
					return unsupported()
				}
				m := ruleset.Match{Op: ruleset.OpIn, Left: ruleset.CT{Key: "state"}, Right: l}
				if o.neg {
					m.Op = ruleset.OpNe
				}
				out = append(out, m)
			case "ctdir":
				add(o, ruleset.CT{Key: "direction"}, ruleset.Const{Value: strings.ToLower(o.val)})
			default:
				return unsupported()
			}
		}
		return out, "", nil
	case "pkttype":
		if len(opts) == 1 && opts[0].name == "pkt-type" {
			add(opts[0], ruleset.Meta{Key: "pkttype"}, ruleset.Const{Value: strings.ToLower(opts[0].val)})
			return out, "", nil
		}
	case "addrtype":
		var flags []string
		for _, o := range opts {
			switch o.name {
			case "limit-iface-in":
				flags = append(flags, "iif")
			case "limit-iface-out":
				flags = append(flags, "oif")
			}
		}
		for _, o := range opts {
			var addr string
			switch o.name {
			case "src-type":
				addr = "saddr"
			case "dst-type":
				addr = "daddr"
			case "limit-iface-in", "limit-iface-out":
				continue
			default:
				return unsupported()
			}
			var items []ruleset.Element
			for _, t := range strings.Split(o.val, ",") {
				items = append(items, ruleset.Element{Key: ruleset.Const{Value: strings.ToLower(t)}})
			}
			var right ruleset.Expr = ruleset.SetLit{Elems: items}
			if len(items) == 1 {
				right = items[0].Key
			}
			add(o, ruleset.Fib{Flags: append([]string{addr}, flags...), Result: "type"}, right)
		}
		return out, "", nil
	case "mark", "connmark":
		if len(opts) != 1 || opts[0].name != "mark" {
			return unsupported()
		}
		var key ruleset.Expr = ruleset.Meta{Key: "mark"}
		if name == "connmark" {
			key = ruleset.CT{Key: "mark"}
		}
		v, m, ok := valMask(opts[0].val)
		if !ok {
			return unsupported()
		}
		left := key
		if m != 0xffffffff {
			left = ruleset.Binop{Op: "&", Left: key, Right: ruleset.Const{Value: hex(m)}}
		}
		add(opts[0], left, ruleset.Const{Value: hex(v)})
		return out, "", nil
	case "ttl", "hl":
		if len(opts) != 1 {
			return unsupported()
		}
		left := ruleset.Payload{Proto: "ip", Field: "ttl"}
		if name == "hl" {
			left = ruleset.Payload{Proto: "ip6", Field: "hoplimit"}
		}
		o := opts[0]
		var mop string
		switch strings.TrimPrefix(strings.TrimPrefix(o.name, "ttl-"), "hl-") {
		case "eq":
			mop = op(o.neg)
		case "gt":
			mop = ruleset.OpGt
		case "lt":
			mop = ruleset.OpLt
		default:
			return unsupported()
		}
		out = append(out, ruleset.Match{Op: mop, Left: left, Right: ruleset.Const{Value: o.val}})
		return out, "", nil
	case "multiport":
		tp := proto
		if _, ok := protoModules[tp]; !ok {
			tp = "th"
		}
		for _, o := range opts {
			field := ""
			switch o.name {
			case "dports", "destination-ports":
				field = "dport"
			case "sports", "source-ports":
				field = "sport"
			case "ports":
				field = "port"
			default:
				return unsupported()
			}
			var els []ruleset.Element
			for _, v := range strings.Split(o.val, ",") {
				els = append(els, ruleset.Element{Key: ruleset.Const{Value: v}})
			}
			add(o, ruleset.Payload{Proto: tp, Field: field}, ruleset.SetLit{Elems: els})
		}
		return out, "", nil
	case "iprange":
		for _, o := range opts {
			field := "saddr"
			switch o.name {
			case "src-range":
			case "dst-range":
				field = "daddr"
			default:
				return unsupported()
			}
			lo, hi, ok := strings.Cut(o.val, "-")
			if !ok {
				return unsupported()
			}
			add(o, ruleset.Payload{Proto: p.l3(), Field: field}, ruleset.Range{Lo: ruleset.Const{Value: lo}, Hi: ruleset.Const{Value: hi}})
		}
		return out, "", nil
	}
	return unsupported()
}

var ctStateNames = map[string]bool{"new": true, "established": true, "related": true, "invalid": true, "untracked": true, "snat": true, "dnat": true}

func ctStates(s string) (ruleset.List, bool) {
	var l ruleset.List
	for _, st := range strings.Split(s, ",") {
		st = strings.ToLower(st)
		if !ctStateNames[st] {
			return l, false
		}
		l.Items = append(l.Items, ruleset.Const{Value: st})
	}
	return l, len(l.Items) > 0
}

func valMask(s string) (v, m uint32, ok bool) {
	vs, ms, hasMask := strings.Cut(s, "/")
	vv, err := strconv.ParseUint(vs, 0, 32)
	if err != nil {
		return 0, 0, false
	}
	mm := uint64(0xffffffff)
	if hasMask {
		mm, err = strconv.ParseUint(ms, 0, 32)
		if err != nil {
			return 0, 0, false
		}
	}
	return uint32(vv), uint32(mm), true
}

func hex(v uint32) string { return fmt.Sprintf("0x%08x", v) }

// noEffectTargets change nothing the verdict or a later match depends on.
var noEffectTargets = map[string]bool{"TRACE": true, "CHECKSUM": true, "TCPMSS": true, "CLASSIFY": true, "AUDIT": true, "SET": true,
	"TOS": true, "DSCP": true, "ECN": true, "SECMARK": true, "CONNSECMARK": true, "IDLETIMER": true, "LED": true, "RATEEST": true, "TEE": true}

// target translates "-j NAME args" (or "-g NAME").
func target(name string, args []string, isGoto bool) (ruleset.Expr, error) {
	text := strings.TrimSpace("-j " + name + " " + strings.Join(args, " "))
	if isGoto {
		return ruleset.Verdict{Kind: "goto", Target: name}, nil
	}
	opts, err := splitOpts(args)
	if err != nil {
		return ruleset.Unsupported{Kind: "xt target " + name, Text: text}, nil
	}
	get := func(k string) (string, bool) {
		for _, o := range opts {
			if o.name == k {
				return o.val, true
			}
		}
		return "", false
	}
	switch name {
	case "ACCEPT", "DROP", "RETURN":
		return ruleset.Verdict{Kind: strings.ToLower(name)}, nil
	case "REJECT":
		code, _ := get("reject-with")
		return ruleset.Reject{Type: "", Code: code}, nil
	case "LOG":
		pfx, _ := get("log-prefix")
		return ruleset.Log{Prefix: pfx}, nil
	case "NFLOG", "ULOG":
		pfx, _ := get("nflog-prefix")
		return ruleset.Log{Prefix: pfx}, nil
	case "NOTRACK":
		return ruleset.Notrack{}, nil
	case "CT":
		if _, ok := get("notrack"); ok {
			return ruleset.Notrack{}, nil
		}
		return ruleset.NoEffect{Kind: "CT", Text: text}, nil
	case "MARK":
		return markTarget(ruleset.Meta{Key: "mark"}, opts, text), nil
	case "CONNMARK":
		if len(opts) > 0 && (opts[0].name == "save-mark" || opts[0].name == "restore-mark") {
			nf, _ := get("nfmask")
			ct, _ := get("ctmask")
			full := func(s string) bool {
				v, err := strconv.ParseUint(s, 0, 32)
				return s == "" || err == nil && v == 0xffffffff
			}
			if !full(nf) || !full(ct) {
				return ruleset.Unsupported{Kind: "xt target CONNMARK", Text: text}, nil
			}
			if opts[0].name == "save-mark" {
				return ruleset.Mangle{Key: ruleset.CT{Key: "mark"}, Value: ruleset.Meta{Key: "mark"}}, nil
			}
			return ruleset.Mangle{Key: ruleset.Meta{Key: "mark"}, Value: ruleset.CT{Key: "mark"}}, nil
		}
		return markTarget(ruleset.CT{Key: "mark"}, opts, text), nil
	case "SNAT", "DNAT", "MASQUERADE", "REDIRECT", "NETMAP":
		return ruleset.NAT{Kind: strings.ToLower(name), Text: text}, nil
	case "NFQUEUE", "QUEUE":
		return ruleset.Verdict{Kind: "queue"}, nil
	}
	if noEffectTargets[name] {
		return ruleset.NoEffect{Kind: name, Text: text}, nil
	}
	if len(args) == 0 {
		// A user-defined chain; checked against the table at COMMIT.
		return ruleset.Verdict{Kind: "jump", Target: name}, nil
	}
	return ruleset.Unsupported{Kind: "xt target " + name, Text: text}, nil
}

// markTarget translates MARK/CONNMARK --set-xmark, --set-mark, --and-mark,
// --or-mark, --xor-mark into key = (key & ^mask) ^ value.
func markTarget(key ruleset.Expr, opts []modOpt, text string) ruleset.Expr {
	if len(opts) != 1 {
		return ruleset.Unsupported{Kind: "xt target mark", Text: text}
	}
	o := opts[0]
	v, m, ok := valMask(o.val)
	if !ok {
		return ruleset.Unsupported{Kind: "xt target mark", Text: text}
	}
	var and, xor uint32
	switch o.name {
	case "set-xmark":
		and, xor = ^m, v
	case "set-mark":
		and, xor = ^(m | v), v
	case "and-mark":
		and, xor = v, 0
	case "or-mark":
		and, xor = ^v, v
	case "xor-mark":
		and, xor = 0xffffffff, v
	default:
		return ruleset.Unsupported{Kind: "xt target mark", Text: text}
	}
	if and == 0 {
		return ruleset.Mangle{Key: key, Value: ruleset.Const{Value: hex(xor)}}
	}
	var val ruleset.Expr = key
	if and != 0xffffffff {
		val = ruleset.Binop{Op: "&", Left: val, Right: ruleset.Const{Value: hex(and)}}
	}
	if xor != 0 {
		val = ruleset.Binop{Op: "^", Left: val, Right: ruleset.Const{Value: hex(xor)}}
	}
	return ruleset.Mangle{Key: key, Value: val}
}

// resolve checks jump targets at COMMIT: a name that is no chain of the
// table is an extension target the model does not know.
func (p *parser) resolve() error {
	for _, pj := range p.pending {
		v := pj.rule.Exprs[pj.idx].(ruleset.Verdict)
		if p.table.Chain(v.Target) != nil {
			continue
		}
		if v.Kind == "goto" {
			return &Error{p.source, pj.line, fmt.Sprintf("-g to undeclared chain %s", v.Target)}
		}
		pj.rule.Exprs[pj.idx] = ruleset.Unsupported{Kind: "xt target " + v.Target, Text: "-j " + v.Target}
	}
	p.pending = nil
	return nil
}
