package keepalived

import (
	"bytes"
	"fmt"
	"io/fs"
	"strings"
)

// maxErrors stops a parse that has found this many errors.
const maxErrors = 100

// maxLine is the longest logical line accepted, after substitution.
const maxLine = 64 << 10

// maxSubstitutions bounds the substitution passes over one physical line.
const maxSubstitutions = 16

// reader reads a file and everything it includes into one statement stream.
type reader struct {
	fsys     fileSystem
	limits   Limits
	configID string

	stmts []stmt
	errs  ErrorList
	warns []Warning
	files []string
	defs  map[string]string

	stack   []openFile // files being read, outermost first
	nFiles  int
	nBytes  int64
	nTokens int
	stopped bool // a limit was reached: read nothing more
}

type openFile struct{ name, canon string }

// maxTokens bounds the words and braces read in all (a real configuration
// has a few thousand): past it, reading stops with an error, so that a
// file of a million braces or words cannot take gigabytes.
const maxTokens = 1 << 18

// maxQuoted is the longest value quoted whole in an error or a warning;
// a longer one (a hostile token of megabytes) is cut, with its length.
const maxQuoted = 200

// shorten cuts the long string arguments of a message.
func shorten(args []any) []any {
	for i, a := range args {
		if s, ok := a.(string); ok && len(s) > maxQuoted {
			args[i] = fmt.Sprintf("%s... (%d bytes)", s[:maxQuoted], len(s))
		}
	}
	return args
}

func (r *reader) errorf(pos Pos, format string, args ...any) {
	if len(r.errs) >= maxErrors {
		r.stopped = true
		return
	}
	r.errs = append(r.errs, &Error{Pos: pos, Msg: fmt.Sprintf(format, shorten(args)...)})
	if len(r.errs) == maxErrors {
		r.errs = append(r.errs, &Error{Pos: pos, Msg: "too many errors"})
		r.stopped = true
	}
}

func (r *reader) warnf(pos Pos, kind WarningKind, format string, args ...any) {
	r.warns = append(r.warns, Warning{Pos: pos, Kind: kind, Msg: fmt.Sprintf(format, shorten(args)...)})
}

// source reads the contents of file name, found at include depth depth.
func (r *reader) source(name string, src []byte, depth int) {
	r.files = append(r.files, name)
	r.stack = append(r.stack, openFile{name: name, canon: r.fsys.canon(name)})
	defer func() { r.stack = r.stack[:len(r.stack)-1] }()

	for line := 1; len(src) > 0 && !r.stopped; line++ {
		var l []byte
		if i := bytes.IndexByte(src, '\n'); i >= 0 {
			l, src = src[:i], src[i+1:]
		} else {
			l, src = src, nil
		}
		l = bytes.TrimRight(l, "\r")
		s, quote := decomment(l)
		if quote != 0 {
			r.errorf(Pos{name, line, quote}, "unterminated quoted string")
			continue
		}
		r.line(name, line, s, depth)
	}
}

// line handles one physical line, comment already removed.
func (r *reader) line(file string, line int, s seg, depth int) {
	// Substitutions are counted over the whole physical line: a definition
	// whose value holds a brace and itself would otherwise expand forever.
	n := 0
	for len(s.b) > 0 && !r.stopped {
		for ; ; n++ {
			var keep bool
			if s, keep = conditional(s, r.configID); !keep {
				return
			}
			if len(s.b) == 0 {
				return
			}
			if name, val, ok := definition(s); ok {
				if strings.HasSuffix(val, `\`) {
					r.errorf(Pos{file, line, s.col(0)}, "multi-line definition $%s is not supported by vrrpdoctor", name)
					return
				}
				r.defs[name] = val
				return
			}
			if s.b[0] == '~' {
				r.errorf(Pos{file, line, s.col(0)}, "%s: keepalived sequence and list blocks are not supported by vrrpdoctor", firstWord(s))
				return
			}
			var changed, tooLong bool
			if s, changed, tooLong = substitute(s, r.defs, maxLine); !changed {
				break
			}
			s = s.trim()
			if tooLong || n == maxSubstitutions {
				r.errorf(Pos{file, line, s.col(0)}, "parameter substitution does not end or makes the line too long")
				return
			}
		}
		if kw, pattern, ok := includeOf(s); ok {
			r.include(file, Pos{file, line, s.col(0)}, kw, pattern, depth)
			return
		}
		var head seg
		head, s = splitBrace(s)
		r.emit(file, line, head)
	}
}

func firstWord(s seg) string {
	for i, c := range s.b {
		if isSpace(c) {
			return string(s.b[:i])
		}
	}
	return string(s.b)
}

// emit adds one statement: a brace, or words.
func (r *reader) emit(file string, line int, s seg) {
	if len(s.b) == 0 {
		return
	}
	pos := Pos{file, line, s.col(0)}
	if r.nTokens >= maxTokens {
		r.errorf(pos, "more than %d words and braces in all: not a keepalived configuration vrrpdoctor reads (reading stops here)", maxTokens)
		r.stopped = true
		return
	}
	if len(s.b) == 1 && (s.b[0] == '{' || s.b[0] == '}') {
		r.nTokens++
		r.stmts = append(r.stmts, stmt{pos: pos, brace: s.b[0]})
		return
	}
	words, quote := splitWords(s, file, line)
	r.nTokens += len(words)
	if quote != 0 {
		r.errorf(Pos{file, line, quote}, "unmatched quote: a word starting with '\"' has no closing '\"' (keepalived does not honour \\\" here)")
		return
	}
	if len(words) == 0 {
		return
	}
	r.stmts = append(r.stmts, stmt{words: words, raw: s.String(), pos: words[0].pos})
}

// include expands an include line of file at pos.
func (r *reader) include(file string, pos Pos, kw, pattern string, depth int) {
	check := includeKeywords[kw]
	if depth+1 > r.limits.MaxDepth {
		r.errorf(pos, "%s %s: includes nested more than %d deep", kw, pattern, r.limits.MaxDepth)
		r.stopped = true
		return
	}
	full := r.fsys.join(r.fsys.dir(file), pattern)
	alts, err := expandBraces(full)
	if err != nil {
		r.errorf(pos, "%s %s: %v", kw, pattern, err)
		return
	}
	wild := hasMeta(pattern)
	matched := 0
	for _, alt := range alts {
		matches, err := glob(r.fsys, alt, r.limits.MaxFiles)
		if err != nil {
			r.errorf(pos, "%s %s: %v", kw, pattern, err)
			r.stopped = true
			return
		}
		if len(matches) == 0 && len(alts) > 1 && check&checkBraceMatch != 0 {
			r.errorf(pos, "%s %s: %s matches no file", kw, pattern, alt)
		}
		for _, m := range matches {
			if r.stopped {
				return
			}
			label := kw + " " + pattern
			if m != full {
				label += ": " + m
			}
			fi, err := r.fsys.stat(m)
			if err != nil {
				r.unreadable(pos, check, label, errText(err))
				continue
			}
			if fi.IsDir() {
				continue // keepalived skips directories a pattern matches
			}
			if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 != 0 {
				r.unreadable(pos, check, label, "not a regular non-executable file, keepalived skips it")
				continue
			}
			matched++
			r.file(pos, label, m, depth, check)
		}
	}
	if matched > 0 {
		return
	}
	hint := ""
	if strings.ContainsAny(pattern, `"'`) {
		hint = " (keepalived takes quotes in an include name literally)"
	}
	if (wild && check&checkWildcardMatch != 0) || (!wild && check&checkMatch != 0) {
		r.errorf(pos, "%s %s: no file matches%s", kw, pattern, hint)
		return
	}
	r.warnf(pos, WarnSuspicious, "%s %s: no file matches, nothing included%s", kw, pattern, hint)
}

// unreadable reports an included file that cannot be read; label names
// the include line and the file.
func (r *reader) unreadable(pos Pos, check includeCheck, label, why string) {
	if check&checkReadable != 0 {
		r.errorf(pos, "%s: %s", label, why)
		return
	}
	r.warnf(pos, WarnSuspicious, "%s: %s", label, why)
}

// file reads one included file; label names the include line and file.
func (r *reader) file(pos Pos, label, name string, depth int, check includeCheck) {
	canon := r.fsys.canon(name)
	for i, f := range r.stack {
		if f.canon == canon {
			chain := make([]string, 0, len(r.stack)-i+1)
			for _, g := range r.stack[i:] {
				chain = append(chain, g.name)
			}
			chain = append(chain, name)
			r.errorf(pos, "include loop: %s", strings.Join(chain, " -> "))
			return
		}
	}
	r.nFiles++
	if r.nFiles > r.limits.MaxFiles {
		r.errorf(pos, "%s: more than %d files read in all (include loop or glob bomb?)", label, r.limits.MaxFiles)
		r.stopped = true
		return
	}
	data, err := readLimited(r.fsys, name, r.limits.MaxFileSize)
	if err != nil {
		r.unreadable(pos, check, label, errText(err))
		return
	}
	r.nBytes += int64(len(data))
	if r.nBytes > r.limits.MaxTotalSize {
		r.errorf(pos, "%s: more than %d bytes read in all", label, r.limits.MaxTotalSize)
		r.stopped = true
		return
	}
	r.source(name, data, depth+1)
}

// errText drops the file name a *fs.PathError repeats.
func errText(err error) string {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}
