package watch

import (
	"slices"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/diag"
)

// The hysteresis with a fake clock: windows are [t0+k·W, t0+(k+1)·W].

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const w = 4 * time.Second

func win(k int) (time.Time, time.Time) {
	return t0.Add(time.Duration(k) * w), t0.Add(time.Duration(k+1) * w)
}

func finding(id, subject string, sev diag.Severity, summary string) diag.Finding {
	return diag.Finding{ID: id, Subject: subject, Severity: sev, Summary: summary}
}

var (
	splitBrain = finding("split-brain", "VRID 51 on eth0 (VRRPv2, IPv4)", diag.SeverityCritical, "both master")
	inputDrop  = finding("firewall-input-drop", "VRID 51 on eth0 (VRRPv2, IPv4)", diag.SeverityCritical, "dropped")
	tie        = finding("priority-tie", "VRID 51 on eth0 (VRRPv2, IPv4)", diag.SeverityWarning, "tie")
)

func ids(cs []Change) []string {
	var s []string
	for _, c := range cs {
		state := "+"
		if !c.Active {
			state = "-"
		}
		s = append(s, state+c.Finding.ID)
	}
	return s
}

func TestTrackerAppearsAfterFullWindowAndClearsAfterFullWindowWithout(t *testing.T) {
	tr := newTracker(w)
	s, e := win(0)
	if got := ids(tr.update(s, e, nil, true)); len(got) != 0 {
		t.Fatalf("empty window: %v", got)
	}
	s, e = win(1)
	got := tr.update(s, e, []diag.Finding{tie, splitBrain, inputDrop}, true)
	if want := []string{"+firewall-input-drop", "+split-brain", "+priority-tie"}; !slices.Equal(ids(got), want) {
		t.Fatalf("appear: %v, want %v (worst first, then by ID)", ids(got), want)
	}
	if !got[0].Time.Equal(e) {
		t.Errorf("change time %v, want the window's end %v", got[0].Time, e)
	}
	if n := len(tr.active()); n != 3 {
		t.Fatalf("%d active, want 3", n)
	}
	// Still there, with other counts: no change, the latest text kept.
	s, e = win(2)
	sb2 := splitBrain
	sb2.Summary = "both master, again"
	if got := tr.update(s, e, []diag.Finding{sb2, inputDrop, tie}, true); len(got) != 0 {
		t.Fatalf("unchanged findings reported again: %v", ids(got))
	}
	if a := tr.active(); a[1].Summary != sb2.Summary {
		t.Errorf("active finding %q, want the latest %q", a[1].Summary, sb2.Summary)
	}
	// The drop fixed: both clear after one window without them.
	s, e = win(3)
	got = tr.update(s, e, []diag.Finding{tie}, true)
	if want := []string{"-firewall-input-drop", "-split-brain"}; !slices.Equal(ids(got), want) {
		t.Fatalf("clear: %v, want %v", ids(got), want)
	}
	if got[1].Finding.Summary != sb2.Summary {
		t.Errorf("cleared finding carries %q, want the last seen %q", got[1].Finding.Summary, sb2.Summary)
	}
	if a := tr.active(); len(a) != 1 || a[0].ID != "priority-tie" {
		t.Errorf("active after clearing: %v", a)
	}
}

func TestTrackerShortWindowDoesNotMakeAFindingAppear(t *testing.T) {
	tr := newTracker(w)
	// A window cut short (the first after an interface came up, say)
	// cannot prove a finding held for a full window.
	s, _ := win(0)
	if got := tr.update(s, s.Add(w/2), []diag.Finding{splitBrain}, true); len(got) != 0 {
		t.Fatalf("half a window: %v", ids(got))
	}
	// The next full window completes it.
	if got := tr.update(s.Add(w/2), s.Add(w/2+w), []diag.Finding{splitBrain}, true); !slices.Equal(ids(got), []string{"+split-brain"}) {
		t.Fatalf("after 1.5 windows: %v", ids(got))
	}
	// A blip that disappears before holding a window never appears, and
	// leaves nothing behind.
	tr = newTracker(w)
	tr.update(s, s.Add(w/2), []diag.Finding{inputDrop}, true)
	if got := tr.update(s.Add(w/2), s.Add(w), nil, true); len(got) != 0 {
		t.Fatalf("blip: %v", ids(got))
	}
	if len(tr.entries) != 0 {
		t.Errorf("blip left %d entries", len(tr.entries))
	}
}

func TestTrackerClearNeedsAFullWindowWithout(t *testing.T) {
	tr := newTracker(w)
	s, e := win(0)
	tr.update(s, e, []diag.Finding{splitBrain}, true)
	// Half a window without it is not enough.
	if got := tr.update(e, e.Add(w/2), nil, true); len(got) != 0 {
		t.Fatalf("half a window without: %v", ids(got))
	}
	if got := tr.update(e.Add(w/2), e.Add(w), nil, true); !slices.Equal(ids(got), []string{"-split-brain"}) {
		t.Fatalf("a window without: %v", ids(got))
	}
	// Timer jitter: a window a few milliseconds short still counts.
	tr = newTracker(w)
	if got := tr.update(s, e.Add(-5*time.Millisecond), []diag.Finding{splitBrain}, true); len(got) != 1 {
		t.Fatalf("jittered window: %v", ids(got))
	}
}

// A window in which the firewall or the addresses held changed mixes two
// states: what it alone shows (adverts lost before a fix, delivered after)
// does not appear; what goes on holding appears a window later.
func TestTrackerUnsettledWindow(t *testing.T) {
	tr := newTracker(w)
	s, e := win(0)
	lossAtFix := finding("adverts-not-delivered", "VRID 51 on eth0 (VRRPv2, IPv4)", diag.SeverityWarning, "5 of 6 lost")
	if got := tr.update(s, e, []diag.Finding{lossAtFix}, false); len(got) != 0 {
		t.Fatalf("unsettled window: %v", ids(got))
	}
	s, e = win(1)
	if got := tr.update(s, e, nil, true); len(got) != 0 {
		t.Fatalf("after the unsettled window: %v", ids(got))
	}
	if len(tr.entries) != 0 {
		t.Errorf("%d entries left", len(tr.entries))
	}
	// A split brain beginning in an unsettled window appears after the
	// next full window.
	s, e = win(2)
	tr.update(s, e, []diag.Finding{splitBrain}, false)
	s, e = win(3)
	if got := tr.update(s, e, []diag.Finding{splitBrain}, true); !slices.Equal(ids(got), []string{"+split-brain"}) {
		t.Fatalf("next window: %v", ids(got))
	}
	// Clearing is not delayed by an unsettled window: the change that
	// unsettles it (a fix) is what clears a finding.
	s, e = win(4)
	if got := tr.update(s, e, nil, false); !slices.Equal(ids(got), []string{"-split-brain"}) {
		t.Fatalf("clear in an unsettled window: %v", ids(got))
	}
}

func TestTrackerSameIDTwiceIsTwoFindings(t *testing.T) {
	tr := newTracker(w)
	a := finding("split-brain", "VRID 51 on eth0 (VRRPv2, IPv4)", diag.SeverityCritical, "peer 198.51.100.1")
	b := finding("split-brain", "VRID 51 on eth0 (VRRPv2, IPv4)", diag.SeverityCritical, "peer 198.51.100.3")
	other := finding("split-brain", "VRID 52 on eth0 (VRRPv2, IPv4)", diag.SeverityCritical, "peer 198.51.100.1")
	s, e := win(0)
	if got := tr.update(s, e, []diag.Finding{a, b, other}, true); len(got) != 3 {
		t.Fatalf("%d changes, want 3: %v", len(got), ids(got))
	}
	s, e = win(1)
	got := tr.update(s, e, []diag.Finding{a, other}, true)
	if len(got) != 1 || got[0].Active || got[0].Finding.Summary != b.Summary {
		t.Fatalf("second peer's split brain should clear alone: %+v", got)
	}
}
