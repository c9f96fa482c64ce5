package keepalived

import (
	"fmt"
	"strings"
)

// Pos is a position in a configuration file. Line and Col are 1-based; Col
// counts bytes, so a tab is one column. The zero Pos means "not from the
// file": a default value.
type Pos struct {
	File string
	Line int
	Col  int
}

// IsValid reports whether p refers to a place in a file.
func (p Pos) IsValid() bool { return p.Line > 0 }

// String returns "file:line:col", or "-" for the zero Pos.
func (p Pos) String() string {
	if !p.IsValid() {
		return "-"
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Error is a syntax or semantic error in a configuration, at a position.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string {
	if !e.Pos.IsValid() {
		return e.Msg
	}
	return e.Pos.String() + ": " + e.Msg
}

// ErrorList is every error found in one configuration, in file order. Parse
// and ParseFile return it as their error; errors.As finds the first *Error.
type ErrorList []*Error

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap returns the errors of the list, for errors.Is and errors.As.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// WarningKind classifies a Warning.
type WarningKind uint8

// Warning kinds.
const (
	// WarnUnused: a valid keepalived keyword that vrrpdoctor reads past;
	// it is kept in the Unused list of its block.
	WarnUnused WarningKind = iota + 1
	// WarnUnknown: not a keepalived 2.2 keyword (keepalived logs
	// "Unknown keyword" and ignores it too).
	WarnUnknown
	// WarnAdjusted: a value that keepalived changes or drops while reading
	// it (a truncated password, a rounded interval, an ignored address);
	// the Config holds the value keepalived would use.
	WarnAdjusted
	// WarnSuspicious: valid, but probably not what was meant, or not what
	// the VRRP RFCs expect (for example a unicast peer that is this router).
	WarnSuspicious
	// WarnInsecure: a secret others than root can read (a file holding
	// auth_pass that is group- or world-readable).
	WarnInsecure
)

func (k WarningKind) String() string {
	switch k {
	case WarnUnused:
		return "unused"
	case WarnUnknown:
		return "unknown"
	case WarnAdjusted:
		return "adjusted"
	case WarnSuspicious:
		return "suspicious"
	case WarnInsecure:
		return "insecure"
	}
	return fmt.Sprintf("WarningKind(%d)", uint8(k))
}

// MarshalText renders the kind as its name.
func (k WarningKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Warning is a problem that does not stop the configuration from being used.
type Warning struct {
	Pos  Pos
	Kind WarningKind
	Msg  string
}

// String returns "file:line:col: warning: message".
func (w Warning) String() string {
	if !w.Pos.IsValid() {
		return "warning: " + w.Msg
	}
	return w.Pos.String() + ": warning: " + w.Msg
}
