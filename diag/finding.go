// Package diag turns facts about a VRRP cluster (captured adverts, and later
// host and firewall state) into findings with evidence, a plain-words
// explanation and a fix, and renders them as text or JSON.
package diag

import (
	"fmt"
	"slices"
)

// Severity ranks a finding. The order is meaningful: a higher value is worse.
type Severity uint8

// Severities, from harmless to urgent.
const (
	SeverityOK       Severity = iota // a check passed
	SeverityInfo                     // worth knowing, nothing to fix
	SeverityWarning                  // wrong or risky, not yet an outage
	SeverityCritical                 // broken: the cluster does not work as intended
)

var severityNames = [...]string{"ok", "info", "warning", "critical"}

// String returns "ok", "info", "warning" or "critical".
func (s Severity) String() string {
	if int(s) < len(severityNames) {
		return severityNames[s]
	}
	return fmt.Sprintf("severity(%d)", uint8(s))
}

// MarshalText encodes the severity as its name.
func (s Severity) MarshalText() ([]byte, error) {
	if int(s) >= len(severityNames) {
		return nil, fmt.Errorf("unknown severity %d", uint8(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText decodes a severity name.
func (s *Severity) UnmarshalText(b []byte) error {
	i := slices.Index(severityNames[:], string(b))
	if i < 0 {
		return fmt.Errorf("unknown severity %q", b)
	}
	*s = Severity(i)
	return nil
}

// Monitoring-plugin exit codes (Nagios, Icinga, Zabbix).
const (
	ExitOK       = 0
	ExitWarning  = 1
	ExitCritical = 2
	ExitUnknown  = 3
)

// StatusName names a monitoring-plugin exit code: "ok", "warning",
// "critical" or "unknown".
func StatusName(code int) string {
	switch code {
	case ExitOK:
		return "ok"
	case ExitWarning:
		return "warning"
	case ExitCritical:
		return "critical"
	}
	return "unknown"
}

// ExitCode maps the severity to a monitoring-plugin exit code: ok and info
// are 0, warning 1, critical 2.
func (s Severity) ExitCode() int {
	switch {
	case s >= SeverityCritical:
		return ExitCritical
	case s == SeverityWarning:
		return ExitWarning
	default:
		return ExitOK
	}
}

// Evidence is one fact that supports a finding: a key figure, address or
// time, as a label and a value.
type Evidence struct {
	Label string `json:"label"`
	Value string `json:"value"`
	// Secret is shown after Value in text output only and never in JSON:
	// e.g. a VRRPv2 simple-text password, which is visible on the wire
	// anyway but does not belong in machine-collected output.
	Secret string `json:"-"`
}

// Finding is one diagnosis: what is wrong (or right), the evidence, an
// explanation for someone who is not a VRRP expert, and the fix.
type Finding struct {
	// ID is stable across releases (e.g. "split-brain"); scripts may match on it.
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	// Subject names what the finding is about, e.g. "VRID 51 (VRRPv2, IPv4)".
	Subject string `json:"subject,omitempty"`
	// Summary is one line.
	Summary     string     `json:"summary"`
	Evidence    []Evidence `json:"evidence,omitempty"`
	Explanation string     `json:"explanation,omitempty"`
	// Fix is a command or configuration line to apply, with a short lead-in.
	Fix string `json:"fix,omitempty"`
}

// MaxSeverity returns the highest severity among fs, or SeverityOK for none.
func MaxSeverity(fs []Finding) Severity {
	max := SeverityOK
	for _, f := range fs {
		if f.Severity > max {
			max = f.Severity
		}
	}
	return max
}

// SortFindings orders findings worst first, then by ID, keeping the original
// order among equals.
func SortFindings(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		if a.Severity != b.Severity {
			return int(b.Severity) - int(a.Severity)
		}
		if a.ID != b.ID {
			if a.ID < b.ID {
				return -1
			}
			return 1
		}
		return 0
	})
}
