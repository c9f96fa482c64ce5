package watch

import (
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/capture"
	"github.com/vrrpdoctor/vrrpdoctor/diag"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/keepalived"
)

// TestNextWindow: a window is followed by a quiet one only when it was
// settled and complete, found nothing and left nothing tracked.
func TestNextWindow(t *testing.T) {
	base := 3700 * time.Millisecond
	for _, c := range []struct {
		name             string
		settled, dropped bool
		findings         int
		tracked          bool
		base, want       time.Duration
		wantQuiet        bool
	}{
		{"nothing happening", true, false, 0, false, base, quietWindow, true},
		{"unsettled", false, false, 0, false, base, base, false},
		{"dropped", true, true, 0, false, base, base, false},
		{"a finding", true, false, 1, false, base, base, false},
		{"a finding pending or clearing", true, false, 0, true, base, base, false},
		{"base window as long as a quiet one", true, false, 0, false, quietWindow, quietWindow, false},
	} {
		d, q := nextWindow(c.base, quietWindow, c.settled, c.dropped, c.findings, c.tracked)
		if d != c.want || q != c.wantQuiet {
			t.Errorf("%s: next window %v quiet %v, want %v %v", c.name, d, q, c.want, c.wantQuiet)
		}
	}
}

// TestQuietWindowHysteresis: a finding first seen in a quiet window (30 s,
// or ended early) does not appear at its end, although the window is
// longer than hold; it appears after the base window that follows. The
// next windows are base windows until one finds nothing and leaves nothing
// tracked. Clearing is unchanged.
func TestQuietWindowHysteresis(t *testing.T) {
	wt := &Watcher{window: w, track: newTracker(w)}
	at := t0
	// step judges the window of length d ending now, as the watch would.
	step := func(d time.Duration, quiet bool, fs ...diag.Finding) ([]string, time.Duration, bool) {
		start := at
		at = at.Add(d)
		cs, next, nextQuiet := wt.judge(start, at, fs, true, false, quiet)
		return ids(cs), next, nextQuiet
	}
	if got, next, q := step(w, false); len(got) != 0 || next != quietWindow || !q {
		t.Fatalf("healthy base window: %v, next %v quiet %v; want a quiet window", got, next, q)
	}
	for _, d := range []time.Duration{quietWindow, 2 * time.Second} { // on time, ended early
		got, next, q := step(d, true, inputDrop)
		if len(got) != 0 {
			t.Fatalf("a finding first seen in a %v quiet window appeared at its end: %v", d, got)
		}
		if next != w || q {
			t.Fatalf("after a quiet window with a finding: next %v quiet %v, want the base window", next, q)
		}
		got, next, q = step(w, false, inputDrop)
		if !slices.Equal(got, []string{"+firewall-input-drop"}) {
			t.Fatalf("after the base window: %v, want it to appear", got)
		}
		if next != w || q {
			t.Fatalf("with a finding active: next %v quiet %v, want the base window", next, q)
		}
		got, next, q = step(w, false)
		if !slices.Equal(got, []string{"-firewall-input-drop"}) || next != quietWindow || !q {
			t.Fatalf("a base window without it: %v, next %v quiet %v; want it cleared, then a quiet window", got, next, q)
		}
	}
	// A blip in a quiet window, gone in the next base window: never
	// appears, and the window after is quiet again.
	step(quietWindow, true, splitBrain)
	if got, next, q := step(w, false); len(got) != 0 || next != quietWindow || !q {
		t.Fatalf("after a blip: %v, next %v quiet %v", got, next, q)
	}
	// With iptables-legacy tables (no notification of their changes) a
	// quiet window is shorter.
	wt.fwall.legacyPresent = true
	if _, next, q := step(quietWindow, true); next != legacyQuietWindow || !q {
		t.Fatalf("with legacy tables: next %v quiet %v, want a %v quiet window", next, q, legacyQuietWindow)
	}
	// Were the quiet window judged as settled, the finding would appear at
	// its end: the case the rule is for.
	tr := newTracker(w)
	if got := ids(tr.update(t0, t0.Add(quietWindow), []diag.Finding{inputDrop}, true)); len(got) != 1 {
		t.Fatalf("a settled 30 s window: %v, want the finding to appear (the tracker counts from its start)", got)
	}
}

// TestSpeakerEventsEndQuietWindow: inside `run`, a failed send and a state
// change end a quiet window (they poke); an accepted send does not.
func TestSpeakerEventsEndQuietWindow(t *testing.T) {
	cfg, err := keepalived.Parse("self.conf", []byte("vrrp_instance VI_1 {\n state MASTER\n interface eth0\n virtual_router_id 51\n priority 150\n advert_int 1\n virtual_ipaddress {\n 198.51.100.100/24\n }\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	wt, err := New(Config{Config: cfg, ConfigPath: "self.conf", NoFirewall: true})
	if err != nil {
		t.Fatal(err)
	}
	poked := func() bool {
		select {
		case <-wt.news:
			return true
		default:
			return false
		}
	}
	send := capture.SendAttempt{Time: t0, Interface: "eth0", VRID: 51, Src: netip.MustParseAddr("198.51.100.2"), Dst: vrrpcore.GroupIPv4, Priority: 150, Version: 2, TTL: 255}
	wt.NoteSend(send)
	if poked() {
		t.Error("an accepted send ended the quiet window")
	}
	send.Err = syscall.EPERM
	wt.NoteSend(send)
	if !poked() {
		t.Error("a failed send did not end the quiet window")
	}
	wt.NoteStateChange()
	if !poked() {
		t.Error("a state change did not end the quiet window")
	}
}
