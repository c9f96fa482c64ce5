package keepalived

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Limits bound what one Parse may read, against include loops that escape
// detection (through different names), glob bombs and huge files. A zero
// field takes its default.
type Limits struct {
	MaxFileSize  int64 // bytes in one file; default 4 MiB
	MaxTotalSize int64 // bytes in all files together; default 32 MiB
	MaxFiles     int   // files read, counting a file each time it is included; default 1000
	MaxDepth     int   // include nesting; default 32
}

// DefaultLimits are the limits used when none are given.
var DefaultLimits = Limits{
	MaxFileSize:  4 << 20,
	MaxTotalSize: 32 << 20,
	MaxFiles:     1000,
	MaxDepth:     32,
}

func (l Limits) withDefaults() Limits {
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = DefaultLimits.MaxFileSize
	}
	if l.MaxTotalSize <= 0 {
		l.MaxTotalSize = DefaultLimits.MaxTotalSize
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultLimits.MaxFiles
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	return l
}

// fileSystem is where included files are found: the OS, or an fs.FS.
type fileSystem interface {
	readDir(dir string) ([]fs.DirEntry, error)
	stat(name string) (fs.FileInfo, error)
	open(name string) (io.ReadCloser, error)
	join(dir, name string) string // name relative to dir, unless absolute
	dir(name string) string
	canon(name string) string // identity of a file, for loop detection
}

type osFS struct{}

func (osFS) readDir(dir string) ([]fs.DirEntry, error) { return os.ReadDir(dir) }
func (osFS) stat(name string) (fs.FileInfo, error)     { return os.Stat(name) }
func (osFS) open(name string) (io.ReadCloser, error)   { return os.Open(name) }
func (osFS) dir(name string) string                    { return filepath.Dir(name) }
func (osFS) join(dir, name string) string {
	if filepath.IsAbs(name) {
		return filepath.Clean(name)
	}
	return filepath.Join(dir, name)
}
func (osFS) canon(name string) string {
	if p, err := filepath.EvalSymlinks(name); err == nil {
		name = p
	}
	if p, err := filepath.Abs(name); err == nil {
		return p
	}
	return name
}

// ioFS serves names as slash-separated paths inside an fs.FS; an absolute
// name is taken relative to the root of the fs.FS.
type ioFS struct{ fsys fs.FS }

func (f ioFS) name(n string) string {
	n = path.Clean("/" + n)[1:]
	if n == "" {
		return "."
	}
	return n
}
func (f ioFS) readDir(dir string) ([]fs.DirEntry, error) { return fs.ReadDir(f.fsys, f.name(dir)) }
func (f ioFS) stat(name string) (fs.FileInfo, error)     { return fs.Stat(f.fsys, f.name(name)) }
func (f ioFS) open(name string) (io.ReadCloser, error)   { return f.fsys.Open(f.name(name)) }
func (f ioFS) dir(name string) string                    { return path.Dir(name) }
func (f ioFS) canon(name string) string                  { return f.name(name) }
func (f ioFS) join(dir, name string) string {
	if strings.HasPrefix(name, "/") {
		return path.Clean(name)
	}
	return path.Join(dir, name)
}

// includeCheck is keepalived's include_check set, chosen by the include
// keyword variant.
type includeCheck uint8

const (
	checkReadable includeCheck = 1 << iota
	checkMatch
	checkWildcardMatch
	checkBraceMatch
)

var includeKeywords = map[string]includeCheck{
	"include":  0,
	"includer": checkReadable,
	"includem": checkMatch | checkReadable,
	"includew": checkWildcardMatch | checkReadable,
	"includeb": checkBraceMatch | checkReadable,
	"includea": checkReadable | checkMatch | checkWildcardMatch | checkBraceMatch,
}

// includeOf reports whether s is an include line: keepalived takes the rest
// of the line, blank-trimmed and with any quotes kept, as the file pattern.
func includeOf(s seg) (kw, pattern string, ok bool) {
	b := s.b
	i := 0
	for i < len(b) && !isSpace(b[i]) {
		i++
	}
	if _, ok := includeKeywords[string(b[:i])]; !ok || i == len(b) {
		return "", "", false
	}
	return string(b[:i]), strings.TrimSpace(string(b[i:])), true
}

const maxBraceExpansions = 1024

// expandBraces expands csh-style {a,b} alternatives, nested or not, as
// glob(3) with GLOB_BRACE does. A brace without a matching close, or with
// no comma, stays literal.
func expandBraces(p string) ([]string, error) {
	open := -1
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' {
			i++
			continue
		}
		if p[i] != '{' {
			continue
		}
		depth, commas, end := 0, []int{}, -1
		for j := i; j < len(p) && end < 0; j++ {
			switch p[j] {
			case '\\':
				j++
			case '{':
				depth++
			case '}':
				depth--
				if depth == 0 {
					end = j
				}
			case ',':
				if depth == 1 {
					commas = append(commas, j)
				}
			}
		}
		if end < 0 {
			break
		}
		if len(commas) == 0 && end == i+1 { // "{}" is literal
			i = end
			continue
		}
		open = i
		bounds := append([]int{open}, commas...)
		bounds = append(bounds, end)
		var out []string
		for k := 0; k+1 < len(bounds); k++ {
			alt := p[:open] + p[bounds[k]+1:bounds[k+1]] + p[end+1:]
			sub, err := expandBraces(alt)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
			if len(out) > maxBraceExpansions {
				return nil, fmt.Errorf("brace expansion of %q gives more than %d patterns", p, maxBraceExpansions)
			}
		}
		return out, nil
	}
	return []string{p}, nil
}

func hasMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// glob expands one brace-free pattern like glob(3): sorted matches; a '*',
// '?' or '[' does not match a leading '.' of a name. Directories are
// returned too (the caller skips them, as GLOB_MARK lets keepalived do).
func glob(fsys fileSystem, pattern string, max int) ([]string, error) {
	if !hasMeta(pattern) {
		if _, err := fsys.stat(pattern); err != nil {
			return nil, nil
		}
		return []string{pattern}, nil
	}
	dir, file := ".", pattern
	if i := strings.LastIndexByte(pattern, '/'); i == 0 {
		dir, file = "/", pattern[1:]
	} else if i > 0 {
		dir, file = pattern[:i], pattern[i+1:]
	}
	if file == "" { // "dir*/": only directories match, and keepalived skips them
		return nil, nil
	}
	var dirs []string
	if hasMeta(dir) {
		var err error
		if dirs, err = glob(fsys, dir, max); err != nil {
			return nil, err
		}
	} else {
		dirs = []string{dir}
	}
	var out []string
	for _, d := range dirs {
		ents, err := fsys.readDir(d)
		if err != nil {
			continue // like glob(3) without GLOB_ERR
		}
		names := make([]string, 0, len(ents))
		for _, e := range ents {
			names = append(names, e.Name())
		}
		sort.Strings(names)
		for _, n := range names {
			if n[0] == '.' && file[0] != '.' {
				continue
			}
			ok, err := path.Match(file, n)
			if err != nil {
				return nil, fmt.Errorf("bad pattern %q: %v", pattern, err)
			}
			if ok {
				out = append(out, fsys.join(d, n))
				if len(out) > max {
					return nil, fmt.Errorf("pattern %q matches more than %d files", pattern, max)
				}
			}
		}
	}
	return out, nil
}

// readLimited reads a whole file of at most max bytes.
func readLimited(fsys fileSystem, name string, max int64) ([]byte, error) {
	f, err := fsys.open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if n > max {
		return nil, fmt.Errorf("larger than the limit of %d bytes", max)
	}
	return buf.Bytes(), nil
}
