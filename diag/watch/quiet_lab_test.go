package watch

import (
	"strings"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/capture"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
)

// Quiet windows in the lab: a keepalived pair at 1 s adverts (a 3.7 s
// base window), the watcher on b in Monitor mode.

// windowsJudged counts the windows the watcher process judged so far (its
// debug log).
func windowsJudged(w *watchProc) int { return strings.Count(w.proc.Log(), "watch: window judged") }

// waitQuiet waits until the watcher is in a quiet window.
func waitQuiet(t *testing.T, w *watchProc) {
	t.Helper()
	if err := netlab.WaitFor(30*time.Second, func() (bool, error) { return w.current().Current == quietWindow, nil }); err != nil {
		t.Fatalf("no quiet window on a healthy pair: %v (current %s)\n%s", err, w.current().Current, tail(w.proc.Log(), 40))
	}
}

// TestWatchLabQuietInputDrop: on a healthy pair the watcher goes to quiet
// windows and judges none for seconds, though a's adverts keep coming; an
// INPUT drop rule (iptables-nft: an nftables commit) ends the quiet window
// at once, and the drop appears a base window later — not at the quiet
// window's end (30 s), and not sooner than a base window (the hysteresis).
func TestWatchLabQuietInputDrop(t *testing.T) {
	t.Parallel()
	p := newLabPair(t, time.Second, "iptables")
	w := startWatch(t, p.b, p.kb.ConfigPath, true)
	base := w.current().Window
	waitQuiet(t, w)
	n := windowsJudged(w)
	time.Sleep(2*base + time.Second)
	if got := windowsJudged(w) - n; got != 0 {
		t.Fatalf("%d windows judged in a quiet window of a healthy pair (%s), want none\n%s", got, 2*base+time.Second, tail(w.proc.Log(), 40))
	}
	if cs := w.all(); len(cs) > 0 {
		t.Fatalf("healthy pair: changes\n%s", changeList(cs))
	}
	dropAt := time.Now()
	if _, err := p.b.Iptables("-A", "INPUT", "-d", "224.0.0.18", "-j", "DROP"); err != nil {
		t.Fatal(err)
	}
	if err := netlab.WaitFor(2*base+3*time.Second, func() (bool, error) { return w.find("firewall-input-drop", true, dropAt) != nil, nil }); err != nil {
		t.Fatalf("the drop did not appear within 2 base windows of the rule (the quiet window not ended early?): %v\n%s\n%s", err, changeList(w.all()), tail(w.proc.Log(), 60))
	}
	took := w.find("firewall-input-drop", true, dropAt).Time.Sub(dropAt)
	t.Logf("firewall-input-drop appeared %s after the rule (base window %s)", took.Round(time.Millisecond), base)
	if took < base-base/slack {
		t.Errorf("the drop appeared %s after the rule, before it could hold a base window (%s): the quiet window was judged settled", took, base)
	}
}

// TestWatchLabQuietNewSender: a sender not heard before (probe adverts
// for VRID 52 from a) ends b's quiet window at once.
func TestWatchLabQuietNewSender(t *testing.T) {
	t.Parallel()
	p := newLabPair(t, time.Second)
	w := startWatch(t, p.b, p.kb.ConfigPath, true)
	waitQuiet(t, w)
	time.Sleep(time.Second)
	n := windowsJudged(w)
	sentAt := time.Now()
	if err := p.a.Do(func() error {
		pr, err := capture.OpenProber("eth0", 4, 52)
		if err != nil {
			return err
		}
		defer pr.Close()
		return pr.Send().Err
	}); err != nil {
		t.Fatal(err)
	}
	if err := netlab.WaitFor(2*time.Second, func() (bool, error) { return windowsJudged(w) > n, nil }); err != nil {
		t.Fatalf("a new sender did not end the quiet window within 2 s: %v\n%s", err, tail(w.proc.Log(), 40))
	}
	t.Logf("window judged within %s of the new sender's advert", time.Since(sentAt).Round(10*time.Millisecond))
	if !strings.Contains(w.proc.Log(), "quiet window ended early") {
		t.Errorf("no early end in the watcher's log")
	}
}

// TestWatchLabQuietOutputRule: a rule that drops b's own adverts while b
// is backup changes no traffic — only the nftables commit can end the
// quiet window — and firewall-output-drop appears about a base window
// later.
func TestWatchLabQuietOutputRule(t *testing.T) {
	t.Parallel()
	p := newLabPair(t, time.Second, "iptables")
	w := startWatch(t, p.b, p.kb.ConfigPath, true)
	base := w.current().Window
	waitQuiet(t, w)
	time.Sleep(time.Second)
	ruleAt := time.Now()
	if _, err := p.b.Iptables("-A", "OUTPUT", "-p", "vrrp", "-j", "DROP"); err != nil {
		t.Fatal(err)
	}
	if err := netlab.WaitFor(2*base+3*time.Second, func() (bool, error) { return w.find("firewall-output-drop", true, ruleAt) != nil, nil }); err != nil {
		t.Fatalf("the drop did not appear within 2 base windows of the rule (the quiet window not ended early?): %v\n%s\n%s", err, changeList(w.all()), tail(w.proc.Log(), 60))
	}
	took := w.find("firewall-output-drop", true, ruleAt).Time.Sub(ruleAt)
	t.Logf("firewall-output-drop appeared %s after the rule (base window %s)", took.Round(time.Millisecond), base)
	if took < base-base/slack {
		t.Errorf("the drop appeared %s after the rule, before it could hold a base window (%s)", took, base)
	}
}

// TestWatchLabQuietKeepalivedEnds: keepalived stopping on b (backup: no
// address moves, no advert changes) ends b's quiet window at once (its
// pidfd), and keepalived-not-running appears about a base window later.
func TestWatchLabQuietKeepalivedEnds(t *testing.T) {
	t.Parallel()
	p := newLabPair(t, time.Second)
	w := startWatch(t, p.b, p.kb.ConfigPath, true)
	base := w.current().Window
	waitQuiet(t, w)
	time.Sleep(time.Second)
	stopAt := time.Now()
	if err := p.kb.Process.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := netlab.WaitFor(2*base+3*time.Second, func() (bool, error) { return w.find("keepalived-not-running", true, stopAt) != nil, nil }); err != nil {
		t.Fatalf("keepalived-not-running did not appear within 2 base windows (the quiet window not ended early?): %v\n%s\n%s", err, changeList(w.all()), tail(w.proc.Log(), 60))
	}
	took := w.find("keepalived-not-running", true, stopAt).Time.Sub(stopAt)
	t.Logf("keepalived-not-running appeared %s after keepalived stopped (base window %s)", took.Round(time.Millisecond), base)
	if took < base-base/slack {
		t.Errorf("it appeared %s after the stop, before it could hold a base window (%s)", took, base)
	}
}
