// Package nftjson reads the JSON that `nft -j list ruleset` prints (schema
// version 1, as nftables 1.0.x writes it) into a ruleset.Ruleset.
//
// Every expression is kept: kinds the model cannot evaluate become
// ruleset.Opaque selectors or ruleset.Unsupported statements, so the evaluator
// answers "unknown" when it reaches them instead of skipping them. Errors name
// the JSON path of the offending value, for example
// `nftables[7].rule.expr[2].match: "left" missing`.
package nftjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// Error is a malformed document, located by JSON path.
type Error struct {
	Path string
	Msg  string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

func errf(path, format string, args ...any) error {
	return &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Looks reports whether data looks like nft JSON output (used for format
// detection): a JSON object whose first key is "nftables".
func Looks(data []byte) bool {
	d := json.NewDecoder(bytes.NewReader(data))
	t, err := d.Token()
	if err != nil || t != json.Delim('{') {
		return false
	}
	t, err = d.Token()
	return err == nil && t == "nftables"
}

// Parse reads an `nft -j list ruleset` document. source names it in the
// tables' Source field (a file name, or "nft -j list ruleset").
func Parse(data []byte, source string) (*ruleset.Ruleset, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var doc any
	if err := d.Decode(&doc); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, errf("", "invalid JSON at byte offset %d: %v", se.Offset, err)
		}
		return nil, errf("", "invalid JSON: %v", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errf("", "trailing data after the JSON document")
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return nil, errf("", "document is not a JSON object")
	}
	list, ok := top["nftables"].([]any)
	if !ok {
		return nil, errf("nftables", "missing or not an array")
	}
	p := &parser{rs: &ruleset.Ruleset{Sources: []string{source}}, source: source, tables: map[string]*ruleset.Table{}}
	for i, item := range list {
		path := fmt.Sprintf("nftables[%d]", i)
		obj, ok := item.(map[string]any)
		if !ok || len(obj) != 1 {
			return nil, errf(path, "expected an object with one key")
		}
		for kind, body := range obj {
			if err := p.object(path+"."+kind, kind, body); err != nil {
				return nil, err
			}
		}
	}
	for _, t := range p.rs.Tables {
		ruleset.DetectIptablesNFT(t)
		for _, c := range t.Chains {
			for i, r := range c.Rules {
				r.Position = i + 1
			}
		}
	}
	return p.rs, nil
}

type parser struct {
	rs     *ruleset.Ruleset
	source string
	tables map[string]*ruleset.Table // "family name"
}

func (p *parser) table(path string, m map[string]any) (*ruleset.Table, error) {
	fam, err := str(path, m, "family")
	if err != nil {
		return nil, err
	}
	name, err := str(path, m, "table")
	if err != nil {
		return nil, err
	}
	t := p.tables[fam+" "+name]
	if t == nil {
		return nil, errf(path, "table %s %s not declared before use", fam, name)
	}
	return t, nil
}

func (p *parser) object(path, kind string, body any) error {
	switch kind {
	case "flowtable", "counter", "quota", "ct helper", "ct timeout", "ct expectation", "limit", "secmark", "synproxy":
		// Named objects: rules refer to them by name; nothing to evaluate.
		return nil
	case "metainfo", "table", "chain", "rule", "set", "map", "element":
	default:
		return errf(path, "unknown object kind %q", kind)
	}
	m, ok := body.(map[string]any)
	if !ok {
		return errf(path, "not an object")
	}
	switch kind {
	case "metainfo":
		if v, ok := m["json_schema_version"]; ok {
			if n, ok := v.(json.Number); !ok || n.String() != "1" {
				return errf(path+".json_schema_version", "unsupported schema version %v (want 1)", v)
			}
		}
		return nil
	case "table":
		fam, err := str(path, m, "family")
		if err != nil {
			return err
		}
		name, err := str(path, m, "name")
		if err != nil {
			return err
		}
		if p.tables[fam+" "+name] != nil {
			return errf(path, "table %s %s declared twice", fam, name)
		}
		t := &ruleset.Table{Backend: ruleset.BackendNFT, Family: ruleset.Family(fam), Name: name, Source: p.source}
		t.Handle = optUint(m, "handle")
		t.Comment, _ = m["comment"].(string)
		t.Flags = strList(m["flags"])
		p.tables[fam+" "+name] = t
		p.rs.Tables = append(p.rs.Tables, t)
		return nil
	}
	t, err := p.table(path, m)
	if err != nil {
		return err
	}
	switch kind {
	case "chain":
		name, err := str(path, m, "name")
		if err != nil {
			return err
		}
		if t.Chain(name) != nil {
			return errf(path, "chain %s declared twice in table %s %s", name, t.Family, t.Name)
		}
		c := &ruleset.Chain{Name: name, Handle: optUint(m, "handle")}
		c.Comment, _ = m["comment"].(string)
		if hook, ok := m["hook"].(string); ok {
			b := &ruleset.BaseChain{Hook: ruleset.Hook(hook), Policy: "accept"}
			b.Type, _ = m["type"].(string)
			if pol, ok := m["policy"].(string); ok {
				b.Policy = pol
			}
			prio, ok := m["prio"].(json.Number)
			if !ok {
				return errf(path+".prio", "base chain %s without numeric priority", name)
			}
			n, err := prio.Int64()
			if err != nil {
				return errf(path+".prio", "bad priority %s", prio)
			}
			b.Priority = int(n)
			b.Devices = strList(m["dev"])
			if len(b.Devices) == 0 && (b.Hook == ruleset.HookIngress || b.Hook == ruleset.HookEgress) {
				b.DevicesUnknown = true
			}
			c.Base = b
		}
		t.Chains = append(t.Chains, c)
		return nil
	case "rule":
		cname, err := str(path, m, "chain")
		if err != nil {
			return err
		}
		c := t.Chain(cname)
		if c == nil {
			return errf(path, "rule for undeclared chain %s in table %s %s", cname, t.Family, t.Name)
		}
		r := &ruleset.Rule{Handle: optUint(m, "handle"), Origin: p.source + ":" + path}
		r.Comment, _ = m["comment"].(string)
		exprs, ok := m["expr"].([]any)
		if !ok {
			return errf(path+".expr", "missing or not an array")
		}
		for i, e := range exprs {
			x, err := stmt(fmt.Sprintf("%s.expr[%d]", path, i), e)
			if err != nil {
				return err
			}
			r.Exprs = append(r.Exprs, x)
		}
		r.Text = ruleset.RuleText(r.Exprs, r.Comment)
		c.Rules = append(c.Rules, r)
		return nil
	case "set", "map":
		s, err := set(path, m)
		if err != nil {
			return err
		}
		if t.Set(s.Name) != nil {
			return errf(path, "set %s declared twice in table %s %s", s.Name, t.Family, t.Name)
		}
		t.Sets = append(t.Sets, s)
		return nil
	case "element":
		name, err := str(path, m, "name")
		if err != nil {
			return err
		}
		s := t.Set(name)
		if s == nil {
			return errf(path, "elements for undeclared set %s", name)
		}
		els, err := elements(path+".elem", m["elem"])
		if err != nil {
			return err
		}
		s.Elements = append(s.Elements, els...)
		return nil
	}
	return nil
}

func set(path string, m map[string]any) (*ruleset.Set, error) {
	name, err := str(path, m, "name")
	if err != nil {
		return nil, err
	}
	s := &ruleset.Set{Name: name, Handle: optUint(m, "handle")}
	s.Type = strList(m["type"])
	if len(s.Type) == 0 {
		if to, ok := m["typeof"]; ok {
			s.Type = []string{"typeof " + compact(to)}
		}
	}
	switch d := m["map"].(type) {
	case string:
		s.Map = d
	case []any:
		s.Map = strings.Join(strList(d), " . ")
	}
	s.Flags = strList(m["flags"])
	if e, ok := m["elem"]; ok {
		els, err := elements(path+".elem", e)
		if err != nil {
			return nil, err
		}
		s.Elements = els
	}
	return s, nil
}

func elements(path string, v any) ([]ruleset.Element, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, errf(path, "not an array")
	}
	out := make([]ruleset.Element, 0, len(arr))
	for i, e := range arr {
		el, err := element(fmt.Sprintf("%s[%d]", path, i), e)
		if err != nil {
			return nil, err
		}
		out = append(out, el)
	}
	return out, nil
}

// element reads a set element (value, prefix, range, concat, {"elem": ...})
// or a map element ([key, data]).
func element(path string, v any) (ruleset.Element, error) {
	if pair, ok := v.([]any); ok && len(pair) == 2 {
		k, err := element(path+"[0]", pair[0])
		if err != nil {
			return ruleset.Element{}, err
		}
		d, err := data(path+"[1]", pair[1])
		if err != nil {
			return ruleset.Element{}, err
		}
		return ruleset.Element{Key: k.Key, Value: d}, nil
	}
	if m, ok := v.(map[string]any); ok {
		if inner, ok := m["elem"].(map[string]any); ok {
			return element(path+".elem.val", inner["val"])
		}
	}
	k, err := value(path, v)
	if err != nil {
		return ruleset.Element{}, err
	}
	return ruleset.Element{Key: k}, nil
}

// data reads map data: a verdict or a value.
func data(path string, v any) (ruleset.Expr, error) {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for k, body := range m {
			if vd, ok := verdict(path+"."+k, k, body); ok {
				return vd, nil
			}
		}
	}
	return value(path, v)
}

var verdictKinds = map[string]bool{"accept": true, "drop": true, "continue": true, "return": true, "jump": true, "goto": true}

func verdict(path, kind string, body any) (ruleset.Verdict, bool) {
	if !verdictKinds[kind] {
		return ruleset.Verdict{}, false
	}
	v := ruleset.Verdict{Kind: kind}
	if kind == "jump" || kind == "goto" {
		m, ok := body.(map[string]any)
		if !ok {
			return v, false
		}
		v.Target, ok = m["target"].(string)
		if !ok {
			return v, false
		}
	}
	return v, true
}

// stmt reads one element of a rule's "expr" array.
func stmt(path string, v any) (ruleset.Expr, error) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return nil, errf(path, "expected an object with one key")
	}
	var kind string
	var body any
	for k, b := range m {
		kind, body = k, b
	}
	path += "." + kind
	if verdictKinds[kind] {
		vd, ok := verdict(path, kind, body)
		if !ok {
			return nil, errf(path, "%s without a target", kind)
		}
		return vd, nil
	}
	bm, _ := body.(map[string]any)
	switch kind {
	case "match":
		if bm == nil {
			return nil, errf(path, "not an object")
		}
		op, _ := bm["op"].(string)
		l, ok := bm["left"]
		if !ok {
			return nil, errf(path, `"left" missing`)
		}
		r, ok := bm["right"]
		if !ok {
			return nil, errf(path, `"right" missing`)
		}
		left, err := selector(path+".left", l)
		if err != nil {
			return nil, err
		}
		right, err := value(path+".right", r)
		if err != nil {
			return nil, err
		}
		if op == "" {
			op = ruleset.OpAny
		}
		return ruleset.Match{Op: op, Left: left, Right: right}, nil
	case "counter":
		if s, ok := body.(string); ok {
			return ruleset.NoEffect{Kind: "counter", Text: "counter name " + strconv.Quote(s)}, nil
		}
		return ruleset.Counter{}, nil
	case "log":
		l := ruleset.Log{}
		if bm != nil {
			l.Prefix, _ = bm["prefix"].(string)
		}
		return l, nil
	case "limit":
		return ruleset.Limit{Text: limitText(bm)}, nil
	case "quota":
		return ruleset.Limit{Text: "quota " + compact(body)}, nil
	case "connlimit":
		return ruleset.Limit{Text: "ct count " + compact(body)}, nil
	case "meter":
		return ruleset.Limit{Text: "meter " + compact(body)}, nil
	case "reject":
		r := ruleset.Reject{}
		if bm != nil {
			r.Type, _ = bm["type"].(string)
			r.Code, _ = bm["expr"].(string)
		}
		if r.Code == "port-unreachable" && r.Type != "tcp reset" {
			// nft's default, which it prints as a bare "reject".
			r = ruleset.Reject{}
		}
		return r, nil
	case "notrack":
		return ruleset.Notrack{}, nil
	case "mangle":
		if bm == nil {
			return nil, errf(path, "not an object")
		}
		k, err := selector(path+".key", bm["key"])
		if err != nil {
			return nil, err
		}
		val, err := value(path+".value", bm["value"])
		if err != nil {
			return nil, err
		}
		return ruleset.Mangle{Key: k, Value: val}, nil
	case "vmap":
		if bm == nil {
			return nil, errf(path, "not an object")
		}
		k, err := selector(path+".key", bm["key"])
		if err != nil {
			return nil, err
		}
		d, err := value(path+".data", bm["data"])
		if err != nil {
			return nil, err
		}
		return ruleset.VMap{Key: k, Data: d}, nil
	case "snat", "dnat", "masquerade", "redirect":
		return ruleset.NAT{Kind: kind, Text: kind + " " + compact(body)}, nil
	case "xt":
		name := ""
		typ := ""
		if bm != nil {
			name, _ = bm["name"].(string)
			typ, _ = bm["type"].(string)
		}
		return ruleset.Unsupported{Kind: "xt", Text: fmt.Sprintf("xt %s %q", typ, name)}, nil
	case "set", "map", "flow", "dup", "ct helper", "ct timeout", "ct expectation", "secmark":
		return ruleset.NoEffect{Kind: kind, Text: kind + " " + compact(body)}, nil
	}
	return ruleset.Unsupported{Kind: kind, Text: kind + " " + compact(body)}, nil
}

func limitText(m map[string]any) string {
	if m == nil {
		return "limit"
	}
	var sb strings.Builder
	sb.WriteString("limit rate ")
	if inv, _ := m["inv"].(bool); inv {
		sb.WriteString("over ")
	}
	fmt.Fprintf(&sb, "%v", m["rate"])
	if u, ok := m["rate_unit"].(string); ok && u != "packets" {
		sb.WriteString(" " + u)
	}
	fmt.Fprintf(&sb, "/%v", m["per"])
	if b, ok := m["burst"]; ok && fmt.Sprint(b) != "5" {
		fmt.Fprintf(&sb, " burst %v", b)
		if u, ok := m["burst_unit"].(string); ok && u != "packets" {
			sb.WriteString(" " + u)
		} else {
			sb.WriteString(" packets")
		}
	}
	return sb.String()
}

// selector reads the left side of a match (or a mangle key).
func selector(path string, v any) (ruleset.Expr, error) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		if v == nil {
			return nil, errf(path, "missing")
		}
		return nil, errf(path, "expected an expression object with one key, got %s", compact(v))
	}
	var kind string
	var body any
	for k, b := range m {
		kind, body = k, b
	}
	bm, _ := body.(map[string]any)
	switch kind {
	case "meta":
		if k, ok := bm["key"].(string); ok {
			return ruleset.Meta{Key: k}, nil
		}
		return nil, errf(path+".meta", `"key" missing`)
	case "payload":
		if bm == nil {
			return nil, errf(path+".payload", "not an object")
		}
		if proto, ok := bm["protocol"].(string); ok {
			f, _ := bm["field"].(string)
			return ruleset.Payload{Proto: proto, Field: f}, nil
		}
		base, _ := bm["base"].(string)
		off, err1 := num(bm["offset"])
		ln, err2 := num(bm["len"])
		if base == "" || err1 != nil || err2 != nil {
			return nil, errf(path+".payload", "neither protocol/field nor base/offset/len")
		}
		return ruleset.RawPayload{Base: base, Offset: int(off), Len: int(ln)}, nil
	case "ct":
		if bm == nil {
			return nil, errf(path+".ct", "not an object")
		}
		k, _ := bm["key"].(string)
		d, _ := bm["dir"].(string)
		return ruleset.CT{Key: k, Dir: d}, nil
	case "fib":
		if bm == nil {
			return nil, errf(path+".fib", "not an object")
		}
		r, _ := bm["result"].(string)
		return ruleset.Fib{Flags: strList(bm["flags"]), Result: r}, nil
	case "concat":
		arr, ok := body.([]any)
		if !ok {
			return nil, errf(path+".concat", "not an array")
		}
		c := ruleset.Concat{}
		for i, x := range arr {
			e, err := selector(fmt.Sprintf("%s.concat[%d]", path, i), x)
			if err != nil {
				return nil, err
			}
			c.Items = append(c.Items, e)
		}
		return c, nil
	case "&", "|", "^", "<<", ">>":
		arr, ok := body.([]any)
		if !ok || len(arr) != 2 {
			return nil, errf(path+"."+kind, "want two operands")
		}
		l, err := selector(path+"."+kind+"[0]", arr[0])
		if err != nil {
			return nil, err
		}
		r, err := value(path+"."+kind+"[1]", arr[1])
		if err != nil {
			return nil, err
		}
		return ruleset.Binop{Op: kind, Left: l, Right: r}, nil
	case "map":
		if bm == nil {
			return nil, errf(path+".map", "not an object")
		}
		k, err := selector(path+".map.key", bm["key"])
		if err != nil {
			return nil, err
		}
		d, err := value(path+".map.data", bm["data"])
		if err != nil {
			return nil, err
		}
		return ruleset.MapLookup{Key: k, Data: d}, nil
	}
	return ruleset.Opaque{Kind: kind, Text: kind + " " + compact(body)}, nil
}

// value reads the right side of a match, a set element or mangle data.
func value(path string, v any) (ruleset.Expr, error) {
	switch x := v.(type) {
	case string:
		if strings.HasPrefix(x, "@") {
			return ruleset.SetRef{Name: x[1:]}, nil
		}
		return ruleset.Const{Value: x}, nil
	case json.Number:
		return ruleset.Const{Value: x.String()}, nil
	case bool:
		return ruleset.Const{Value: strconv.FormatBool(x)}, nil
	case []any:
		l := ruleset.List{}
		for i, it := range x {
			e, err := value(fmt.Sprintf("%s[%d]", path, i), it)
			if err != nil {
				return nil, err
			}
			l.Items = append(l.Items, e)
		}
		return l, nil
	case map[string]any:
		if len(x) != 1 {
			return nil, errf(path, "expected an object with one key")
		}
		for kind, body := range x {
			switch kind {
			case "prefix":
				bm, _ := body.(map[string]any)
				addr, _ := bm["addr"].(string)
				if a, ok := bm["addr"].(json.Number); ok {
					// A prefix of a number type: marks print as 0x00001000/20.
					addr = a.String()
				}
				n, err := num(bm["len"])
				if addr == "" || err != nil {
					return nil, errf(path+".prefix", "want addr and len")
				}
				return ruleset.Prefix{Addr: addr, Len: int(n)}, nil
			case "range":
				arr, ok := body.([]any)
				if !ok || len(arr) != 2 {
					return nil, errf(path+".range", "want two bounds")
				}
				lo, err := value(path+".range[0]", arr[0])
				if err != nil {
					return nil, err
				}
				hi, err := value(path+".range[1]", arr[1])
				if err != nil {
					return nil, err
				}
				return ruleset.Range{Lo: lo, Hi: hi}, nil
			case "set":
				items, ok := body.([]any)
				if !ok {
					items = []any{body}
				}
				s := ruleset.SetLit{}
				for i, it := range items {
					el, err := element(fmt.Sprintf("%s.set[%d]", path, i), it)
					if err != nil {
						return nil, err
					}
					s.Elems = append(s.Elems, el)
				}
				return s, nil
			case "concat":
				arr, ok := body.([]any)
				if !ok {
					return nil, errf(path+".concat", "not an array")
				}
				c := ruleset.Concat{}
				for i, it := range arr {
					e, err := value(fmt.Sprintf("%s.concat[%d]", path, i), it)
					if err != nil {
						return nil, err
					}
					c.Items = append(c.Items, e)
				}
				return c, nil
			}
			if vd, ok := verdict(path+"."+kind, kind, body); ok {
				return vd, nil
			}
			// A selector used as a value (meta mark set ct mark, ...).
			return selector(path, v)
		}
	case nil:
		return nil, errf(path, "missing")
	}
	return nil, errf(path, "unexpected value %s", compact(v))
}

func str(path string, m map[string]any, key string) (string, error) {
	s, ok := m[key].(string)
	if !ok {
		return "", errf(path, "%q missing or not a string", key)
	}
	return s, nil
}

func optUint(m map[string]any, key string) uint64 {
	n, ok := m[key].(json.Number)
	if !ok {
		return 0
	}
	u, err := strconv.ParseUint(n.String(), 10, 64)
	if err != nil {
		return 0
	}
	return u
}

func num(v any) (int64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("not a number")
	}
	return n.Int64()
}

// strList accepts a string or an array of strings.
func strList(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, it := range x {
			if s, ok := it.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
