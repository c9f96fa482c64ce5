package keepalived

import (
	"bytes"
	"fmt"
)

// This file turns the bytes of one file into statements, the way keepalived
// 2.2's read_line() does: comments and @conditional lines are removed,
// $DEFINITIONs substituted, include lines expanded, and a line is cut at
// every '{' and '}' outside double quotes, so that braces always stand alone.

// word is one word of a statement, quotes removed.
type word struct {
	text   string
	pos    Pos
	quoted bool
}

// stmt is one logical line: a keyword and its arguments, or a lone brace.
type stmt struct {
	words []word
	raw   string // the statement's text, for commands split again like a shell line
	pos   Pos
	brace byte // '{' or '}' for a brace statement, otherwise 0
}

// seg is a piece of a physical line with the column of each byte, so
// positions survive comment removal and substitution.
type seg struct {
	b    []byte
	cols []int // 1-based column of b[i] in the physical line
}

func (s seg) String() string { return string(s.b) }

func (s seg) col(i int) int {
	switch {
	case len(s.cols) == 0:
		return 1
	case i < len(s.cols):
		return s.cols[i]
	default:
		return s.cols[len(s.cols)-1] + 1
	}
}

func (s seg) slice(i, j int) seg { return seg{b: s.b[i:j], cols: s.cols[i:j]} }

// isBlank is keepalived's isblank(): space or tab.
func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// isSpace is keepalived's WHITE_SPACE set.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\f' || c == '\n' || c == '\r' || c == '\v'
}

func (s seg) trim() seg {
	i, j := 0, len(s.b)
	for i < j && isBlank(s.b[i]) {
		i++
	}
	for j > i && isBlank(s.b[j-1]) {
		j--
	}
	return s.slice(i, j)
}

// decomment removes leading blanks and the comment of a physical line. A
// comment starts at '#' or '!' outside double quotes; "\#" and "\!" outside
// quotes stand for the characters themselves. Single quotes do not protect
// a comment character, and "//" starts no comment: keepalived behaves so.
// It returns the column of an unterminated double quote, or 0.
func decomment(line []byte) (seg, int) {
	var out seg
	i := 0
	for i < len(line) && isBlank(line[i]) {
		i++
	}
	quote, quoteCol := false, 0
	for i < len(line) {
		c := line[i]
		switch {
		case c == '"':
			quote = !quote
			if quote {
				quoteCol = i + 1
			}
		case c == '\\' && i+1 < len(line):
			n := line[i+1]
			if !quote && (n == '#' || n == '!') {
				out.b = append(out.b, n)
				out.cols = append(out.cols, i+2)
			} else {
				out.b = append(out.b, c, n)
				out.cols = append(out.cols, i+1, i+2)
			}
			i += 2
			continue
		case !quote && (c == '#' || c == '!'):
			i = len(line)
			continue
		}
		out.b = append(out.b, c)
		out.cols = append(out.cols, i+1)
		i++
	}
	if quote {
		return out.trim(), quoteCol
	}
	return out.trim(), 0
}

// splitBrace cuts s at its first '{' or '}' outside double quotes. When s
// starts with a brace, head is that brace alone; otherwise head is the text
// before the brace. rest is what follows, blank-trimmed (empty if none).
func splitBrace(s seg) (head, rest seg) {
	b := s.b
	if len(b) > 0 && (b[0] == '{' || b[0] == '}') {
		return s.slice(0, 1), s.slice(1, len(b)).trim()
	}
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			j := bytes.IndexByte(b[i+1:], '"')
			if j < 0 {
				return s, seg{}
			}
			i += j + 1
		case '{', '}':
			return s.slice(0, i).trim(), s.slice(i, len(b))
		}
	}
	return s, seg{}
}

// splitWords splits a statement into words as keepalived's alloc_strvec()
// does for keywords: a word starting with '"' runs to the next '"' (no
// escapes) and loses its quotes; any other word ends at white space or '"'.
// It returns the column of an unmatched quote, or 0.
func splitWords(s seg, file string, line int) ([]word, int) {
	var words []word
	b := s.b
	i := 0
	for {
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		if i >= len(b) {
			return words, 0
		}
		start := i
		pos := Pos{File: file, Line: line, Col: s.col(i)}
		if b[i] == '"' {
			j := bytes.IndexByte(b[i+1:], '"')
			if j < 0 {
				return words, s.col(start)
			}
			words = append(words, word{text: string(b[i+1 : i+1+j]), pos: pos, quoted: true})
			i += j + 2
			continue
		}
		for i < len(b) && !isSpace(b[i]) && b[i] != '"' {
			i++
		}
		words = append(words, word{text: string(b[start:i]), pos: pos})
	}
}

// shellSplit splits text like keepalived's alloc_strvec_quoted_escaped(),
// which it uses for script and notify command lines: words are separated by
// white space; '...' and "..." group (and may adjoin other text); backslash
// escapes \a \b \E \f \n \r \t \v \NNN (octal) \xHH \cC work inside and
// outside quotes, and \C is C.
func shellSplit(text string) ([]string, error) {
	var words []string
	var cur []byte
	i := 0
	for {
		for i < len(text) && isSpace(text[i]) {
			i++
		}
		if i >= len(text) {
			return words, nil
		}
		cur = cur[:0]
		var quote byte
		for i < len(text) {
			c := text[i]
			switch {
			case c == '\\':
				i++
				if i >= len(text) {
					return nil, fmt.Errorf("missing character after '\\' at the end of %q", text)
				}
				var ch byte
				ch, i = unescape(text, i)
				cur = append(cur, ch)
				continue
			case quote != 0 && c == quote:
				quote = 0
				i++
				continue
			case quote != 0:
				cur = append(cur, c)
				i++
				continue
			case c == '"' || c == '\'':
				quote = c
				i++
				continue
			case isSpace(c):
			default:
				cur = append(cur, c)
				i++
				continue
			}
			break
		}
		if quote != 0 {
			return nil, fmt.Errorf("missing closing %c in %q", quote, text)
		}
		words = append(words, string(cur))
	}
}

// unescape decodes the escape whose first character after the backslash is
// text[i]; it returns the byte and the index after the escape.
func unescape(text string, i int) (byte, int) {
	c := text[i]
	switch {
	case c == 'x' && i+1 < len(text) && isHex(text[i+1]):
		var v byte
		i++
		for i < len(text) && isHex(text[i]) {
			v = v<<4 | hexVal(text[i])
			i++
		}
		return v, i
	case c == 'c' && i+1 < len(text):
		return text[i+1] & 0x1f, i + 2
	case c >= '0' && c <= '7':
		v := c - '0'
		i++
		for n := 0; n < 2 && i < len(text) && text[i] >= '0' && text[i] <= '7'; n++ {
			v = v<<3 + (text[i] - '0')
			i++
		}
		return v, i
	}
	switch c {
	case 'a':
		c = '\a'
	case 'b':
		c = '\b'
	case 'E':
		c = 0x1b
	case 'f':
		c = '\f'
	case 'n':
		c = '\n'
	case 'r':
		c = '\r'
	case 't':
		c = '\t'
	case 'v':
		c = '\v'
	}
	return c, i + 1
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// conditional applies keepalived's "@id" / "@^id" prefix: it reports
// whether the line is kept and returns it without the prefix.
func conditional(s seg, configID string) (seg, bool) {
	if len(s.b) == 0 || s.b[0] != '@' {
		return s, true
	}
	off, negate := 1, false
	if len(s.b) > 1 && s.b[1] == '^' {
		off, negate = 2, true
	}
	end := off
	for end < len(s.b) && !isBlank(s.b[end]) {
		end++
	}
	if end == len(s.b) { // nothing after the id
		return seg{}, false
	}
	match := configID != "" && string(s.b[off:end]) == configID
	if match == negate {
		return seg{}, false
	}
	return s.slice(end, len(s.b)).trim(), true
}

// isNameStart and isNameChar define keepalived's parameter names.
func isNameStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isNameChar(c byte) bool  { return isNameStart(c) || c >= '0' && c <= '9' }

// definition parses "$NAME=VALUE"; ok is false when s is not one.
func definition(s seg) (name, value string, ok bool) {
	b := s.b
	if len(b) < 3 || b[0] != '$' || !isNameStart(b[1]) {
		return "", "", false
	}
	i := 2
	for i < len(b) && isNameChar(b[i]) {
		i++
	}
	name = string(b[1:i])
	for i < len(b) && isBlank(b[i]) {
		i++
	}
	if i >= len(b) || b[i] != '=' {
		return "", "", false
	}
	i++
	for i < len(b) && isBlank(b[i]) {
		i++
	}
	return name, string(b[i:]), true
}

// substitute replaces $NAME (followed by white space, ',', ')' or the end)
// and ${NAME} by their definitions. Unknown names are left alone. The
// replacement text takes the column of its '$'. It stops, reporting
// tooLong, once the result would exceed max bytes.
func substitute(s seg, defs map[string]string, max int) (out seg, changed, tooLong bool) {
	if len(defs) == 0 || bytes.IndexByte(s.b, '$') < 0 {
		return s, false, false
	}
	b := s.b
	for i := 0; i < len(b); {
		if len(out.b) > max {
			return out, changed, true
		}
		if b[i] == '$' && i+1 < len(b) {
			if name, n, ok := refAt(b, i); ok {
				if v, def := defs[name]; def {
					if len(out.b)+len(v) > max {
						return out, changed, true
					}
					for k := 0; k < len(v); k++ {
						out.b = append(out.b, v[k])
						out.cols = append(out.cols, s.cols[i])
					}
					i += n
					changed = true
					continue
				}
			}
		}
		out.b = append(out.b, b[i])
		out.cols = append(out.cols, s.cols[i])
		i++
	}
	return out, changed, len(out.b) > max
}

// refAt reads a parameter reference at b[i] == '$'; n is its length.
func refAt(b []byte, i int) (name string, n int, ok bool) {
	j := i + 1
	braces := b[j] == '{'
	if braces {
		j++
	}
	if j >= len(b) || !isNameStart(b[j]) {
		return "", 0, false
	}
	k := j
	for k < len(b) && isNameChar(b[k]) {
		k++
	}
	if braces {
		if k >= len(b) || b[k] != '}' {
			return "", 0, false
		}
		return string(b[j:k]), k + 1 - i, true
	}
	if k < len(b) && b[k] != ' ' && b[k] != '\t' && b[k] != ',' && b[k] != ')' {
		return "", 0, false
	}
	return string(b[j:k]), k - i, true
}
