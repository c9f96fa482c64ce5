package keepalived

import (
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
)

// Option changes how a configuration is read.
type Option func(*options)

type options struct {
	fsys     fileSystem
	limits   Limits
	configID string
	idSet    bool
}

// WithFS resolves include files in fsys instead of the OS file system. Names
// are slash-separated and relative to fsys's root; an absolute include name
// ("/etc/keepalived/x.conf") is taken relative to that root too.
func WithFS(fsys fs.FS) Option {
	return func(o *options) { o.fsys = ioFS{fsys} }
}

// WithLimits sets the limits on what is read; zero fields keep their default.
func WithLimits(l Limits) Option {
	return func(o *options) { o.limits = l }
}

// WithConfigID sets the configuration id that "@id" conditional lines are
// compared with (keepalived's -i option). By default it is the host name up
// to its first dot, as in keepalived.
func WithConfigID(id string) Option {
	return func(o *options) { o.configID, o.idSet = id, true }
}

func newOptions(opts []Option) options {
	o := options{fsys: osFS{}}
	for _, f := range opts {
		f(&o)
	}
	o.limits = o.limits.withDefaults()
	if !o.idSet {
		if h, err := os.Hostname(); err == nil {
			o.configID, _, _ = strings.Cut(h, ".")
		}
	}
	return o
}

// ParseFile reads the keepalived configuration at path and the files it
// includes.
//
// A main file that cannot be read gives an error wrapping the fs error
// (errors.Is(err, fs.ErrNotExist) works). Otherwise the error, if not nil,
// is an ErrorList of every syntax and semantic error
// found, each with its file:line:column. The Config is returned even then,
// holding what could be read, so that a checker can show the warnings too;
// it must not be run. Problems that keepalived itself reads past are in
// Config.Warnings.
func ParseFile(path string, opts ...Option) (*Config, error) {
	o := newOptions(opts)
	src, err := readLimited(o.fsys, path, o.limits.MaxFileSize)
	if err != nil {
		return nil, fmt.Errorf("reading keepalived configuration: %w", err)
	}
	return parse(path, src, o)
}

// Parse reads a keepalived configuration from src; name is the file name
// used in positions and the base of relative include names. Includes are
// read from the OS, or from the fs.FS given with WithFS. The results are
// as for ParseFile.
func Parse(name string, src []byte, opts ...Option) (*Config, error) {
	o := newOptions(opts)
	if int64(len(src)) > o.limits.MaxFileSize {
		return nil, ErrorList{{Pos: Pos{File: name}, Msg: fmt.Sprintf("%s: larger than the limit of %d bytes", name, o.limits.MaxFileSize)}}
	}
	return parse(name, src, o)
}

func parse(name string, src []byte, o options) (*Config, error) {
	r := &reader{fsys: o.fsys, limits: o.limits, configID: o.configID, defs: map[string]string{}}
	r.nFiles, r.nBytes = 1, int64(len(src))
	r.source(name, src, 0)

	cfg := &Config{Global: Global{Set: map[string]Pos{}}}
	b := &builder{cfg: cfg, errorf: r.errorf, warnf: r.warnf, dropped: map[string]Pos{}}
	nodes := buildTree(r.stmts, r.errorf)
	b.top(nodes)
	b.complete()

	cfg.Files = r.files
	cfg.Warnings = r.warns
	sortWarnings(cfg.Warnings, cfg.Files)
	if len(r.errs) > 0 {
		sortErrors(r.errs, r.files)
		return cfg, r.errs
	}
	return cfg, nil
}

// posLess orders positions by file (in reading order), line and column.
func posLess(files []string) func(a, b Pos) bool {
	order := map[string]int{}
	for i, f := range files {
		if _, ok := order[f]; !ok {
			order[f] = i
		}
	}
	return func(a, b Pos) bool {
		if a.File != b.File {
			return order[a.File] < order[b.File]
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	}
}

func sortErrors(errs ErrorList, files []string) {
	less := posLess(files)
	sort.SliceStable(errs, func(i, j int) bool { return less(errs[i].Pos, errs[j].Pos) })
}

func sortWarnings(ws []Warning, files []string) {
	less := posLess(files)
	sort.SliceStable(ws, func(i, j int) bool { return less(ws[i].Pos, ws[j].Pos) })
}
