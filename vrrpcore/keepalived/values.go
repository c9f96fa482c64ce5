package keepalived

import (
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// This file reads keyword values. Each reader reports its own error, at the
// keyword, naming the keyword and the value.

// builder turns the statement tree into a Config.
type builder struct {
	cfg     *Config
	errorf  func(Pos, string, ...any)
	warnf   func(Pos, WarningKind, string, ...any)
	pending []*instanceState // per cfg.Instances entry
	dropped map[string]Pos   // vrrp_scripts keepalived drops, by name
}

// value returns the first argument of n, reporting a missing one. Extra
// arguments are reported as ignored, as keepalived ignores them.
func (b *builder) value(n *node) (word, bool) {
	args := n.args()
	if len(args) == 0 {
		b.errorf(n.pos, "%s: missing value", n.keyword())
		return word{}, false
	}
	if len(args) > 1 {
		b.warnf(args[1].pos, WarnSuspicious, "%s: extra words after %q ignored (keepalived reads only the first)", n.keyword(), args[0].text)
	}
	return args[0], true
}

// flag checks a keyword that takes no value.
func (b *builder) flag(n *node) {
	if args := n.args(); len(args) > 0 {
		b.warnf(args[0].pos, WarnSuspicious, "%s takes no value: %q ignored", n.keyword(), args[0].text)
	}
}

// optBool reads an optional <BOOL>: absent means true.
func (b *builder) optBool(n *node) (bool, bool) {
	args := n.args()
	if len(args) == 0 {
		return true, true
	}
	switch args[0].text {
	case "on", "true", "yes":
		return true, true
	case "off", "false", "no":
		return false, true
	}
	b.errorf(n.pos, "%s %s: not a boolean (on|off|true|false|yes|no)", n.keyword(), args[0].text)
	return false, false
}

// integer reads an integer value in [min, max].
func (b *builder) integer(n *node, min, max int) (int, bool) {
	w, ok := b.value(n)
	if !ok {
		return 0, false
	}
	return b.integerWord(n.keyword(), n.pos, w.text, min, max)
}

func (b *builder) integerWord(kw string, pos Pos, text string, min, max int) (int, bool) {
	v, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			b.errorf(pos, "%s %s out of range %s", kw, text, rangeText(min, max))
		} else {
			b.errorf(pos, "%s %s: not an integer", kw, text)
		}
		return 0, false
	}
	if v < int64(min) || v > int64(max) {
		b.errorf(pos, "%s %s out of range %s", kw, text, rangeText(min, max))
		return 0, false
	}
	return int(v), true
}

// rangeText writes an integer range: "1-255", or "-253 to 253".
func rangeText(min, max int) string {
	if min < 0 {
		return strconv.Itoa(min) + " to " + strconv.Itoa(max)
	}
	return strconv.Itoa(min) + "-" + strconv.Itoa(max)
}

// seconds reads a whole number of seconds in [min, max].
func (b *builder) seconds(n *node, min, max int) (time.Duration, bool) {
	v, ok := b.integer(n, min, max)
	return time.Duration(v) * time.Second, ok
}

// timer reads a <TIMER>: seconds with a decimal fraction, in [min, max],
// to the microsecond.
func (b *builder) timer(n *node, min, max float64) (time.Duration, bool) {
	w, ok := b.value(n)
	if !ok {
		return 0, false
	}
	t := strings.TrimSpace(w.text)
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || !isDecimal(t) {
		b.errorf(n.pos, "%s %s: not a number of seconds", n.keyword(), w.text)
		return 0, false
	}
	if v < min || v > max {
		b.errorf(n.pos, "%s %s out of range %s-%s", n.keyword(), w.text, fmtFloat(min), fmtFloat(max))
		return 0, false
	}
	return time.Duration(math.Round(v*1e6)) * time.Microsecond, true
}

// isDecimal accepts what keepalived reads as a decimal: digits with an
// optional fraction, no sign, exponent or hexadecimal.
func isDecimal(s string) bool {
	digits, dot := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// addr reads an IP address value.
func (b *builder) addr(n *node) (netip.Addr, bool) {
	w, ok := b.value(n)
	if !ok {
		return netip.Addr{}, false
	}
	a, err := parseAddr(w.text)
	if err != nil {
		b.errorf(n.pos, "%s %s: not an IP address", n.keyword(), w.text)
		return netip.Addr{}, false
	}
	return a, true
}

// parseAddr parses an IPv4 or IPv6 address without zone.
func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, err
	}
	if a.Zone() != "" {
		return netip.Addr{}, strconv.ErrSyntax
	}
	return a.Unmap(), nil
}

// weight reads "weight N [reverse|noreverse|no_reverse]" from words, the
// tail of a track_* line; it returns the weight, whether one was given and
// the reverse flag.
func (b *builder) weight(kw string, pos Pos, words []word, min, max int) (w int, set, reverse, ok bool) {
	w, set, reverse, _, ok = b.weightRev(kw, pos, words, min, max)
	return w, set, reverse, ok
}

// weightRev is weight, also telling whether reverse or noreverse was written.
func (b *builder) weightRev(kw string, pos Pos, words []word, min, max int) (w int, set, reverse, revSet, ok bool) {
	if len(words) == 0 {
		return 0, false, false, false, true
	}
	if words[0].text != "weight" {
		b.errorf(words[0].pos, "%s: unexpected %q (expected weight N)", kw, words[0].text)
		return 0, false, false, false, false
	}
	if len(words) < 2 {
		b.errorf(words[0].pos, "%s: weight needs a value", kw)
		return 0, false, false, false, false
	}
	w, ok = b.integerWord(kw+" weight", words[1].pos, words[1].text, min, max)
	if !ok {
		return 0, false, false, false, false
	}
	for _, x := range words[2:] {
		switch x.text {
		case "reverse":
			reverse, revSet = true, true
		case "noreverse", "no_reverse":
			reverse, revSet = false, true
		default:
			b.errorf(x.pos, "%s: unexpected %q after the weight (expected reverse)", kw, x.text)
			return 0, false, false, false, false
		}
	}
	return w, true, reverse, revSet, true
}

// command reads a notify or script command line: the keyword's first
// argument is the command line, the second the user, the third the group.
// keepalived splits the raw line again with quote and escape handling, so
// that '...' may group the command line too.
func (b *builder) command(n *node, withUser bool) (*Command, bool) {
	words, err := shellSplit(n.raw)
	if err != nil {
		b.errorf(n.pos, "%s: %v", n.keyword(), err)
		return nil, false
	}
	if len(words) < 2 || strings.TrimSpace(words[1]) == "" {
		b.errorf(n.pos, "%s: missing command", n.keyword())
		return nil, false
	}
	argv, err := shellSplit(words[1])
	if err != nil {
		b.errorf(n.pos, "%s: %v", n.keyword(), err)
		return nil, false
	}
	c := &Command{Argv: argv, Pos: n.pos}
	rest := words[2:]
	if withUser {
		if len(rest) > 0 {
			c.User = rest[0]
		}
		if len(rest) > 1 {
			c.Group = rest[1]
		}
		if len(rest) > 2 {
			b.warnf(n.pos, WarnSuspicious, "%s: extra words after the group %q ignored", n.keyword(), rest[1])
		}
	} else if len(rest) > 0 {
		b.warnf(n.pos, WarnSuspicious, "%s: only %q is the command, %q is ignored; quote the command line to pass arguments", n.keyword(), words[1], rest[0])
	}
	return c, true
}

// directive keeps an unused node.
func directive(n *node) Directive {
	d := Directive{Keyword: n.keyword(), Pos: n.pos, HasBlock: n.block}
	for _, w := range n.args() {
		d.Args = append(d.Args, w.text)
	}
	for _, c := range n.children {
		if len(c.words) > 0 {
			d.Block = append(d.Block, directive(c))
		}
	}
	return d
}
