package watch

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/diag"
)

// tracker applies the hysteresis: a finding becomes active once it has held
// for hold (present in every evaluation of windows covering that long) and
// clears once it has been absent for hold. Findings are told apart by ID,
// subject and their rank among findings with the same ID and subject
// (evaluations list them in a stable order), not by their text, which
// carries the window's counts.
type tracker struct {
	hold    time.Duration
	entries map[string]*entry
}

type entry struct {
	f           diag.Finding
	since, seen time.Time // start of the first window it was in, end of the last
	active      bool
}

// slack is the share of hold a window may fall short by and still count
// as covering it (timer jitter).
const slack = 10

func newTracker(hold time.Duration) *tracker {
	return &tracker{hold: hold, entries: map[string]*entry{}}
}

// keys returns the tracking key of each finding.
func keys(fs []diag.Finding) []string {
	n := map[string]int{}
	ks := make([]string, len(fs))
	for i, f := range fs {
		k := f.ID + "\x00" + f.Subject
		ks[i] = k + "\x00" + strconv.Itoa(n[k])
		n[k]++
	}
	return ks
}

// update takes the findings of the window [start, end] and returns what
// appeared and what cleared at end, appearances first. An unsettled window
// is one in which a fact the judgement rests on changed (the firewall's
// verdicts, the virtual addresses held): its figures mix two states, so a
// finding first seen in it counts from its end, and must hold for the
// whole next window to appear.
func (t *tracker) update(start, end time.Time, fs []diag.Finding, settled bool) []Change {
	hold := t.hold - t.hold/slack
	var ups, downs []Change
	present := map[string]bool{}
	for i, k := range keys(fs) {
		present[k] = true
		e := t.entries[k]
		if e == nil {
			e = &entry{since: start}
			if !settled {
				e.since = end
			}
			t.entries[k] = e
		}
		e.f, e.seen = fs[i], end
		if !e.active && end.Sub(e.since) >= hold {
			e.active = true
			ups = append(ups, Change{Time: end, Finding: e.f, Active: true})
		}
	}
	for k, e := range t.entries {
		if present[k] {
			continue
		}
		if !e.active {
			delete(t.entries, k) // it did not hold long enough
			continue
		}
		if end.Sub(e.seen) >= hold {
			delete(t.entries, k)
			downs = append(downs, Change{Time: end, Finding: e.f, Active: false})
		}
	}
	slices.SortFunc(ups, func(a, b Change) int { return compareFindings(a.Finding, b.Finding) })
	slices.SortFunc(downs, func(a, b Change) int { return compareFindings(a.Finding, b.Finding) })
	return append(ups, downs...)
}

// active returns the active findings, sorted by severity (worst first),
// then ID, then subject.
func (t *tracker) active() []diag.Finding {
	var fs []diag.Finding
	for _, e := range t.entries {
		if e.active {
			fs = append(fs, e.f)
		}
	}
	slices.SortFunc(fs, compareFindings)
	return fs
}

func compareFindings(a, b diag.Finding) int {
	if a.Severity != b.Severity {
		return int(b.Severity) - int(a.Severity)
	}
	return cmp.Or(strings.Compare(a.ID, b.ID), strings.Compare(a.Subject, b.Subject), strings.Compare(a.Summary, b.Summary))
}
