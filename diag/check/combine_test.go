package check

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/diag"
)

var update = flag.Bool("update", false, "rewrite the golden files of the combined reports (testdata/combine)")

// combinedText renders c as a pipe gets it.
func combinedText(t *testing.T, c *Combined) string {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteCombinedText(&buf, c, false); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func evidence(f *CombinedFinding, label string) string {
	for _, e := range f.Evidence {
		if e.Label == label {
			return e.Value
		}
	}
	return ""
}

func findCombined(c *Combined, id string) *CombinedFinding {
	for i := range c.Findings {
		if c.Findings[i].ID == id {
			return &c.Findings[i]
		}
	}
	return nil
}

func combinedIDs(c *Combined) []string {
	var s []string
	for _, f := range c.Findings {
		s = append(s, strings.TrimSpace(f.Node+" "+f.ID))
	}
	return s
}

// TestCombineGolden combines real lab reports (testdata/check/README.md)
// and compares the text and JSON with testdata/combine; -update rewrites
// them (read the diff).
func TestCombineGolden(t *testing.T) {
	for _, tc := range []struct{ name, a, b string }{
		{"input-drop-same-time", "input-drop-nft-a.json", "input-drop-nft-b.json"},
		{"input-drop-one-after-the-other", "sequential-a.json", "sequential-b.json"},
		{"input-drop-hours-apart", "input-drop-a.json", "input-drop-nft-b.json"},
		{"firewalld-direct", "firewalld-direct-a.json", "firewalld-direct-b.json"},
		{"output-drop", "output-drop-a.json", "output-drop-b.json"},
		{"healthy", "healthy-a.json", "healthy-b.json"},
		{"after-the-fix", "input-drop-nft-a.json", "input-drop-nft-b-fixed.json"},
		{"same-node", "input-drop-nft-b.json", "input-drop-nft-b-fixed.json"},
		{"auth-mismatch", "auth-mismatch-a.json", "auth-mismatch-b.json"},
		{"both-stopped", "both-stopped-a.json", "both-stopped-b.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Combine(readReport(t, tc.a), readReport(t, tc.b))
			var js bytes.Buffer
			if err := WriteCombinedJSON(&js, c); err != nil {
				t.Fatal(err)
			}
			for _, g := range []struct{ ext, got string }{{".txt", combinedText(t, c) + fmt.Sprintf("(exit status %d)\n", c.ExitCode)}, {".json", js.String()}} {
				file := filepath.Join("testdata", "combine", tc.name+g.ext)
				if *update {
					if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(file, []byte(g.got), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(file)
				if err != nil {
					t.Fatalf("%v (go test -run TestCombineGolden -update writes it)", err)
				}
				if g.got != string(want) {
					t.Errorf("%s differs from the golden file:\n%s", file, g.got)
				}
			}
		})
	}
}

// TestCombineOneFindingPerFault: b's firewall drops a's adverts. Both
// nodes' split-brain, b's firewall-input-drop (and accept-not-final beside
// it) are one fault: one critical finding that carries the evidence of both
// sides and b's fix; nothing is repeated.
func TestCombineOneFindingPerFault(t *testing.T) {
	for _, tc := range []struct {
		a, b   string
		rule   string
		covers []string
	}{
		{"input-drop-a.json", "input-drop-b.json", "rule `-A INPUT -d 224.0.0.18/32 -j DROP` in chain INPUT of table ip filter", []string{"a: split-brain", "b: firewall-input-drop", "b: split-brain"}},
		{"input-drop-nft-a.json", "input-drop-nft-b.json", "in chain input of table inet filter (nftables, handle 2", []string{"a: split-brain", "b: firewall-input-drop", "b: split-brain"}},
		{"sequential-a.json", "sequential-b.json", "in chain input of table inet filter (nftables", []string{"a: split-brain", "b: firewall-input-drop", "b: split-brain"}},
		{"firewalld-direct-a.json", "firewalld-direct-b.json", "chain filter_IN_public of table inet firewalld", []string{"a: split-brain", "b: accept-not-final", "b: firewall-input-drop", "b: split-brain"}},
	} {
		t.Run(tc.a, func(t *testing.T) {
			ra, rb := readReport(t, tc.a), readReport(t, tc.b)
			for _, order := range []string{"a, b", "b, a"} {
				c := Combine(ra, rb)
				if order == "b, a" {
					c = Combine(rb, ra)
				}
				if c.ExitCode != diag.ExitCritical || len(c.Findings) != 1 || c.Findings[0].ID != IDSplitBrain || c.Findings[0].Severity != diag.SeverityCritical {
					t.Fatalf("%s: exit %d, findings %v, want one split-brain", order, c.ExitCode, combinedIDs(c))
				}
				f := &c.Findings[0]
				if f.Node != "" || f.Subject != "VRID 51 on eth0 (VRRPv3, IPv4)" {
					t.Errorf("%s: node %q, subject %q", order, f.Node, f.Subject)
				}
				covers := slices.Clone(f.Covers)
				slices.Sort(covers)
				if !slices.Equal(covers, tc.covers) {
					t.Errorf("%s: covers %v, want %v", order, covers, tc.covers)
				}
				both := "split brain: both a and b are master for VRID 51"
				if order == "b, a" {
					both = "split brain: both b and a are master for VRID 51"
				}
				for _, want := range []string{both, "b's wire sees a's adverts but its VRRP socket gets none", tc.rule, "Cause on b's side."} {
					if !strings.Contains(f.Summary, want) {
						t.Errorf("%s: summary %q lacks %q", order, f.Summary, want)
					}
				}
				// The evidence of both sides, with the figures of the reports.
				sent := ra.Instances[0].Local.Adverts
				p := rb.Instances[0].peer(addrA)
				if got, want := evidence(f, "a sent"), fmt.Sprintf("%d adverts in its %s watch", sent, secs(ra.Capture.Duration)); !strings.HasPrefix(got, want) {
					t.Errorf("%s: a sent %q, want %q...", order, got, want)
				}
				if got, want := evidence(f, "b received"), fmt.Sprintf("a's adverts: %d on its wire in its %s watch", p.Adverts, secs(rb.Capture.Duration)); !strings.HasPrefix(got, want) || !strings.HasSuffix(got, ", 0 at its VRRP socket") {
					t.Errorf("%s: b received %q, want %q..., 0 at its VRRP socket", order, got, want)
				}
				if got := evidence(f, "cause on b"); !strings.Contains(got, tc.rule) || !strings.HasSuffix(got, "(firewall-input-drop)") {
					t.Errorf("%s: cause on b %q", order, got)
				}
				// The one fix, b's own, said to be for b.
				fd := findingOf(rb, &rb.Instances[0], IDFirewallInputDrop)
				if !strings.HasPrefix(f.Fix, "On b, ") || !strings.Contains(f.Fix, "vrrpdoctor fix-firewall -i eth0 --in") || !strings.HasSuffix(f.Fix, fd.Fix[1:]) {
					t.Errorf("%s: fix %q, want b's firewall-input-drop fix %q", order, f.Fix, fd.Fix)
				}
				all := f.Summary
				for _, e := range f.Evidence {
					all += "\n" + e.Value
				}
				if n := strings.Count(all, tc.rule); n != 2 {
					t.Errorf("%s: the rule appears %d times, want 2 (summary and cause):\n%s", order, n, all)
				}
				if text := combinedText(t, c); !strings.Contains(text, "Status: CRITICAL (1 critical)") {
					t.Errorf("%s: status:\n%s", order, text)
				}
			}
		})
	}
	// b's OUTPUT drop: a cannot tell, the pair can; a's report is healthy.
	c := Combine(readReport(t, "output-drop-a.json"), readReport(t, "output-drop-b.json"))
	if c.ExitCode != 2 || len(c.Findings) != 1 || c.Findings[0].ID != IDSplitBrain ||
		!strings.Contains(c.Findings[0].Summary, "b holds 198.51.100.100 but none of its adverts left it: the firewall drops this node's VRRP adverts leaving eth0") ||
		!strings.Contains(c.Findings[0].Summary, "Cause on b's side.") || !slices.Equal(c.Findings[0].Covers, []string{"b: firewall-output-drop", "b: split-brain"}) ||
		!strings.Contains(c.Findings[0].Fix, "vrrpdoctor fix-firewall -i eth0 --out") {
		t.Errorf("output drop: exit %d, %+v", c.ExitCode, c.Findings)
	}
	// keepalived stopped on both nodes: one no-master, naming both, with
	// one fix for both.
	c = Combine(readReport(t, "both-stopped-a.json"), readReport(t, "both-stopped-b.json"))
	if c.ExitCode != 2 || len(c.Findings) != 1 || c.Findings[0].ID != IDNoMaster ||
		!strings.HasSuffix(c.Findings[0].Summary, "nobody holds the virtual addresses. No VRRP daemon runs on a or on b.") ||
		!slices.Equal(c.Findings[0].Covers, []string{"a: keepalived-not-running", "b: keepalived-not-running"}) ||
		!strings.HasPrefix(c.Findings[0].Fix, "On a and b, start it (systemctl start keepalived)") || evidence(&c.Findings[0], "a") != "no VRRP daemon running, holds no virtual address" {
		t.Errorf("both stopped: exit %d, %+v", c.ExitCode, c.Findings)
	}
	// A healthy pair: one healthy verdict.
	c = Combine(readReport(t, "healthy-a.json"), readReport(t, "healthy-b.json"))
	if c.ExitCode != 0 || len(c.Findings) != 1 || c.Findings[0].ID != IDHealthy ||
		!strings.Contains(c.Findings[0].Summary, "a is master and b backup for VRID 51; b receives a's adverts") {
		t.Errorf("healthy pair: exit %d, %+v", c.ExitCode, c.Findings)
	}
}

// TestCombineMismatch: a VRRPv2 password mismatch (real lab reports: the
// two keepalived masters take turns; b held the address in silence during
// the watch). Passwords are not in the reports, but b's own check saw the
// difference: the pair gets one auth-mismatch built from it, the split
// brain names it as the cause and blames neither node alone. When both
// nodes saw it, still one auth-mismatch; when the pair sees a difference in
// authentication type, the nodes' own findings fold into that one.
func TestCombineMismatch(t *testing.T) {
	a, b := readReport(t, "auth-mismatch-a.json"), readReport(t, "auth-mismatch-b.json")
	c := Combine(a, b)
	if got := combinedIDs(c); c.ExitCode != 2 || !slices.Equal(got, []string{"split-brain", "auth-mismatch"}) {
		t.Fatalf("exit %d, findings %v, want split-brain, auth-mismatch", c.ExitCode, got)
	}
	sb, am := &c.Findings[0], &c.Findings[1]
	for _, want := range []string{"split brain: both a and b are master for VRID 51", "b holds 198.51.100.100 but sent no adverts in its watch", "the VRRP daemons discard the adverts they receive (see auth-mismatch)"} {
		if !strings.Contains(sb.Summary, want) {
			t.Errorf("summary %q lacks %q", sb.Summary, want)
		}
	}
	if strings.Contains(sb.Summary, "Cause on") || !strings.Contains(sb.Fix, "Make the two configurations agree (auth-mismatch, below, says how)") ||
		!slices.Equal(sb.Covers, []string{"b: split-brain"}) {
		t.Errorf("split-brain: %+v", sb)
	}
	if am.Node != "" || am.Severity != diag.SeverityWarning || am.Summary != "the VRRPv2 authentication differs: b receives the other's adverts with another password than its own" ||
		!slices.Equal(am.Covers, []string{"b: auth-mismatch"}) || !strings.Contains(am.Fix, "Use the same authentication block on both nodes") ||
		evidence(am, "b's check") != "198.51.100.1 uses another VRRPv2 password than this node" {
		t.Errorf("auth-mismatch: %+v", am)
	}
	if !slices.Contains(c.Notes, "a and b configure VRID 51 differently: the authentication (findings below).") {
		t.Errorf("notes %q", c.Notes)
	}
	// Both nodes saw it (in other runs of the lab scenario a reports it
	// too, from its side).
	a2 := readReport(t, "auth-mismatch-a.json")
	fb := *findingOf(b, &b.Instances[0], IDAuthMismatch)
	fb.Summary = "198.51.100.2 uses another VRRPv2 password than this node"
	a2.Findings = append(a2.Findings, fb)
	c = Combine(a2, b)
	am = findCombined(c, IDAuthMismatch)
	if got := combinedIDs(c); !slices.Equal(got, []string{"split-brain", "auth-mismatch"}) || !slices.Equal(am.Covers, []string{"a: auth-mismatch", "b: auth-mismatch"}) ||
		!strings.Contains(am.Summary, "a and b each receive the other's adverts with another password than their own") {
		t.Errorf("both saw it: findings %v, auth-mismatch %+v", got, am)
	}
	// The pair sees a difference in authentication type: b's own finding
	// is the same fault.
	a.Instances[0].Auth = "none"
	c = Combine(a, b)
	am = findCombined(c, IDAuthMismatch)
	if got := combinedIDs(c); !slices.Equal(got, []string{"split-brain", "auth-mismatch"}) || am.Node != "" || !slices.Equal(am.Covers, []string{"b: auth-mismatch"}) ||
		!strings.Contains(am.Summary, "the VRRPv2 authentication differs: none on a, PASS on b") {
		t.Errorf("findings %v, auth-mismatch %+v", got, am)
	}
}

// TestCombineWindows: when the two watches line up the counts are compared
// over their common interval; when they do not (one after the other, one
// much longer, hours apart, no taps on one node) a note says so once at the
// top, counts carry their rates, and the verdict and exit status stay.
func TestCombineWindows(t *testing.T) {
	base := func() (*Report, *Report) {
		return readReport(t, "input-drop-nft-a.json"), readReport(t, "input-drop-nft-b.json")
	}
	for _, tc := range []struct {
		name       string
		change     func(a, b *Report)
		comparable bool
		notes      []string
	}{
		{"same time", func(a, b *Report) {}, true, []string{"Both nodes watched at the same time, 16:55:03.8–16:55:05.2 UTC (1.5 s): the counts below compare over that interval."}},
		{"nearly", func(a, b *Report) { b.Time = b.Time.Add(200 * time.Millisecond) }, true, []string{"Both nodes watched at nearly the same time", "compare over the 1.3 s both watched, 16:55:04.0–16:55:05.2 UTC"}},
		{"one after the other", func(a, b *Report) { b.Time = b.Time.Add(5 * time.Second) }, false, []string{"The reports do not cover the same time", "b's watch began 3.5 s after a's ended", "compare the rates"}},
		{"b first", func(a, b *Report) { a.Time = a.Time.Add(5 * time.Second) }, false, []string{"a's watch began 3.5 s after b's ended"}},
		{"partly", func(a, b *Report) { b.Time = b.Time.Add(time.Second) }, false, []string{"the watches overlap for only 0.5 s"}},
		{"longer", func(a, b *Report) { b.Capture.Duration = 10 }, false, []string{"b 16:55:03.8–16:55:13.8 UTC (10 s)", "they differ in length"}},
		{"hours apart", func(a, b *Report) { b.Time = b.Time.Add(2 * time.Hour) }, false, []string{"2 h 0 min after a's ended", "The reports are 2 h 0 min apart", "run the check on both nodes at the same time"}},
		{"no taps on b", func(a, b *Report) { b.Capture = nil }, false, []string{"b's taps did not run"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := base()
			tc.change(a, b)
			c := Combine(a, b)
			if c.ExitCode != diag.ExitCritical {
				t.Errorf("exit %d, want 2", c.ExitCode)
			}
			notes := strings.Join(c.Notes, "\n")
			for _, want := range tc.notes {
				if !strings.Contains(notes, want) {
					t.Errorf("notes %q lack %q", c.Notes, want)
				}
			}
			if tc.name == "no taps on b" {
				if c.Windows != nil {
					t.Errorf("windows %+v without b's taps", c.Windows)
				}
				return
			}
			if c.Windows == nil || c.Windows.Comparable != tc.comparable {
				t.Fatalf("windows %+v, want comparable %v", c.Windows, tc.comparable)
			}
			sent := evidence(&c.Findings[0], "a sent")
			rate := fmt.Sprintf("(%.1f/s)", float64(a.Instances[0].Local.Adverts)/a.Capture.Duration)
			if strings.Contains(sent, rate) == tc.comparable {
				t.Errorf("a sent %q: rate %s shown %v, want %v", sent, rate, !tc.comparable, !tc.comparable)
			}
			text := combinedText(t, c)
			if strings.Count(text, "Note: ") != len(c.Notes) || !strings.Contains(text, "watched 1.5 s, own verdict CRITICAL") {
				t.Errorf("text header:\n%s", text)
			}
		})
	}
	// The watches' arithmetic.
	a, b := base()
	b.Time = b.Time.Add(5 * time.Second)
	w := Combine(a, b).Windows
	if w.OverlapS != 0 || w.GapS < 3.5 || w.GapS > 3.6 || !w.From.IsZero() {
		t.Errorf("one after the other: %+v", w)
	}
	a, b = base()
	w = Combine(a, b).Windows
	if w.OverlapS < 1.44 || w.OverlapS > 1.46 || w.GapS != 0 || !w.From.Equal(a.Time) {
		t.Errorf("same time: %+v", w)
	}
}

// TestCombineDifferentMoments: a's report (split brain, b's firewall still
// dropping) and b's report 4 s later, after the fix (a healthy backup).
// The pair verdict from both is healthy; it says that a's own, earlier
// report saw the split brain, which stays listed: the status stays
// CRITICAL. Taken at the same time the sentence is not there.
func TestCombineDifferentMoments(t *testing.T) {
	c := Combine(readReport(t, "input-drop-nft-a.json"), readReport(t, "input-drop-nft-b-fixed.json"))
	if got := combinedIDs(c); c.ExitCode != 2 || !slices.Equal(got, []string{"a split-brain", "healthy"}) {
		t.Fatalf("exit %d, findings %v", c.ExitCode, got)
	}
	h := findCombined(c, IDHealthy)
	if want := "a is master and b-fixed backup for VRID 51; b-fixed receives a's adverts. But a's own report, earlier than b-fixed's, saw a split brain (below)"; !strings.HasPrefix(h.Summary, want) {
		t.Errorf("healthy: %q, want %q...", h.Summary, want)
	}
	a, b := readReport(t, "input-drop-nft-a.json"), readReport(t, "input-drop-nft-b-fixed.json")
	b.Time = a.Time
	if h := findCombined(Combine(a, b), IDHealthy); h == nil || strings.Contains(h.Summary, "different moments") {
		t.Errorf("same time: %+v", h)
	}
}

// TestCombineSameNode: two reports of one node (b before and after its
// fix, the same report twice) give no pair verdict, say so, and are at
// least UNKNOWN.
func TestCombineSameNode(t *testing.T) {
	c := Combine(readReport(t, "input-drop-nft-b.json"), readReport(t, "input-drop-nft-b-fixed.json"))
	if c.ExitCode != diag.ExitCritical || len(c.Notes) != 1 || !strings.Contains(c.Notes[0], "Both reports come from the same node, b (198.51.100.2)") {
		t.Errorf("b, b after the fix: exit %d, notes %q", c.ExitCode, c.Notes)
	}
	for _, f := range c.Findings {
		if f.Node == "" {
			t.Errorf("a pair finding from one node: %s %s", f.ID, f.Summary)
		}
	}
	r := readReport(t, "healthy-a.json")
	c = Combine(r, r)
	if c.ExitCode != diag.ExitUnknown || c.Nodes[0].Label == c.Nodes[1].Label || len(c.Findings) != 0 {
		t.Errorf("one report twice: exit %d, nodes %+v, findings %v", c.ExitCode, c.Nodes, combinedIDs(c))
	}
}

// TestCombineVRIDMismatch: the two nodes configure different VRIDs; each
// VRID is reported once, naming the node that configures it, and a note
// asks whether they are a pair at all.
func TestCombineVRIDMismatch(t *testing.T) {
	a, b := readReport(t, "healthy-a.json"), readReport(t, "healthy-b.json")
	b.Instances[0].VRID = 52
	c := Combine(a, b)
	var got []string
	for _, f := range c.Findings {
		if f.ID == IDVRIDMismatch {
			got = append(got, f.Summary)
		}
	}
	want := []string{"a configures VRID 51 (IPv4), b does not", "b configures VRID 52 (IPv4), a does not"}
	if !sameSet(got, want) || c.ExitCode != diag.ExitWarning {
		t.Errorf("exit %d, vrid-mismatch %q, want %q (findings %v)", c.ExitCode, got, want, combinedIDs(c))
	}
	if !slices.ContainsFunc(c.Notes, func(n string) bool {
		return strings.Contains(n, "The reports share no virtual router: a runs VRID 51 (IPv4), b runs VRID 52 (IPv4).")
	}) {
		t.Errorf("notes %q", c.Notes)
	}
	// Configured differently: a note names what differs.
	a, b = readReport(t, "healthy-a.json"), readReport(t, "healthy-b.json")
	b.Instances[0].AdvertInt = 2
	c = Combine(a, b)
	if findCombined(c, IDIntervalMismatch) == nil || !slices.Contains(c.Notes, "a and b configure VRID 51 differently: the advert interval (findings below).") {
		t.Errorf("interval: findings %v, notes %q", combinedIDs(c), c.Notes)
	}
}
