package firewalld

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// LooksDirectXML reports whether data looks like firewalld's permanent
// direct configuration, /etc/firewalld/direct.xml.
func LooksDirectXML(data []byte) bool {
	t := bytes.TrimSpace(data)
	if bytes.HasPrefix(t, []byte("<?xml")) {
		if i := bytes.Index(t, []byte("?>")); i >= 0 {
			t = bytes.TrimSpace(t[i+2:])
		}
	}
	return bytes.HasPrefix(t, []byte("<direct>")) || bytes.HasPrefix(t, []byte("<direct/>")) || bytes.HasPrefix(t, []byte("<direct "))
}

// ParseDirectXML reads the rules of firewalld's direct.xml (chains and
// passthroughs are not rules and are skipped); name is used in errors,
// which carry the line of the offending element.
func ParseDirectXML(data []byte, name string) ([]DirectRule, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	var rules []DirectRule
	root := false
	for {
		line, _ := dec.InputPos()
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		line, _ = dec.InputPos()
		switch {
		case !root && se.Name.Local != "direct":
			return nil, fmt.Errorf("%s:%d: <%s>, want firewalld's <direct> configuration", name, line, se.Name.Local)
		case !root:
			root = true
			continue
		case se.Name.Local != "rule":
			if err := dec.Skip(); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			continue
		}
		r := DirectRule{}
		for _, a := range se.Attr {
			switch a.Name.Local {
			case "ipv":
				r.IPV = a.Value
			case "table":
				r.Table = a.Value
			case "chain":
				r.Chain = a.Value
			case "priority":
				p, err := strconv.ParseInt(a.Value, 10, 32)
				if err != nil {
					return nil, fmt.Errorf("%s:%d: rule priority %q is not a number", name, line, a.Value)
				}
				r.Priority = int32(p)
			}
		}
		var body string
		if err := dec.DecodeElement(&body, &se); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if r.IPV == "" || r.Table == "" || r.Chain == "" {
			return nil, fmt.Errorf("%s:%d: rule without ipv, table or chain", name, line)
		}
		args, err := splitArgs(body)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		r.Args = args
		rules = append(rules, r)
	}
	if !root {
		return nil, fmt.Errorf("%s: no <direct> element", name)
	}
	return rules, nil
}

// splitArgs splits a direct rule's arguments as firewalld does (Python's
// shlex.split: POSIX shell words with quotes and backslashes).
func splitArgs(s string) ([]string, error) {
	var (
		args  []string
		cur   strings.Builder
		inArg bool
		quote rune
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case quote == '"':
			switch {
			case c == '"':
				quote = 0
			case c == '\\' && i+1 < len(rs) && strings.ContainsRune("\\\"$`\n", rs[i+1]):
				i++
				cur.WriteRune(rs[i])
			default:
				cur.WriteRune(c)
			}
		case c == '\'' || c == '"':
			quote, inArg = c, true
		case c == '\\':
			if i+1 == len(rs) {
				return nil, fmt.Errorf("arguments end in a lone backslash: %q", s)
			}
			i++
			cur.WriteRune(rs[i])
			inArg = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(c)
			inArg = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote in %q", quote, s)
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args, nil
}
