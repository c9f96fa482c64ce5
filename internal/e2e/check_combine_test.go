package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// combinedJSON is the part of `vrrpdoctor check --combine --json`
// (docs/check.md) the combine tests read beyond checkJSON.
type combinedJSON struct {
	Notes   []string `json:"notes"`
	Windows *struct {
		OverlapS   float64 `json:"overlap_s"`
		GapS       float64 `json:"gap_s"`
		Comparable bool    `json:"comparable"`
	} `json:"windows"`
	Findings []struct {
		ID       string   `json:"id"`
		Severity string   `json:"severity"`
		Node     string   `json:"node"`
		Covers   []string `json:"covers"`
		Summary  string   `json:"summary"`
		Fix      string   `json:"fix"`
	} `json:"findings"`
}

// TestCheckCombineSequential: the walk-through's way to compare two nodes,
// check on a, then on b, gives reports whose watches do not overlap. b's
// nftables drops VRRP, so both are master. The combined report says once,
// at the top, that the watches do not line up and shows each count with
// its rate; the fault is one split-brain finding that blames b, stands for
// both nodes' split-brain and b's firewall-input-drop, and gives b's fix.
// Checked at the same time (TestCheckInputDrop) the same pair compares
// over the common interval.
func TestCheckCombineSequential(t *testing.T) {
	t.Parallel()
	p := newCheckPair(t, 3, 250*time.Millisecond, "nft")
	must(t, p.kb.WaitState(15*time.Second, "VI_51", "BACKUP"))
	must(t, p.b.NftScript("table inet filter {\n chain input {\n  type filter hook input priority filter; policy accept;\n  ip daddr 224.0.0.18 meta l4proto vrrp drop\n }\n}\n"))
	p.waitHolders(t, p.a, p.b)

	ra, rawA, _ := checkNode(t, p.lab, p.a, p.envA, "a")
	rb, rawB, _ := checkNode(t, p.lab, p.b, p.envB, "b")
	if ra.find("split-brain") == nil || rb.find("split-brain") == nil || rb.find("firewall-input-drop") == nil {
		t.Fatalf("the nodes' own reports: a %v, b %v\n%s\n%s", ra.ids(), rb.ids(), rawA, rawB)
	}
	c, raw := p.combine(t)
	matrixRow(t, "combined (a, then b)", "exit 2: split-brain/critical only, note: watches do not line up", c)
	var cj combinedJSON
	if err := json.Unmarshal([]byte(raw), &cj); err != nil {
		t.Fatal(err)
	}
	if c.ExitCode != 2 || len(cj.Findings) != 1 || cj.Findings[0].ID != "split-brain" || cj.Findings[0].Severity != "critical" || cj.Findings[0].Node != "" {
		t.Fatalf("combined: exit %d, want one split-brain\n%s", c.ExitCode, raw)
	}
	f := cj.Findings[0]
	covers := slices.Clone(f.Covers)
	slices.Sort(covers)
	if want := []string{"a: split-brain", "b: firewall-input-drop", "b: split-brain"}; !slices.Equal(covers, want) {
		t.Errorf("covers %v, want %v", covers, want)
	}
	if !strings.Contains(f.Summary, "b's wire sees a's adverts but its VRRP socket gets none") || !strings.Contains(f.Summary, "chain input of table inet filter (nftables") ||
		!strings.Contains(f.Summary, "Cause on b's side.") || !strings.HasPrefix(f.Fix, "On b, ") || !strings.Contains(f.Fix, "vrrpdoctor fix-firewall -i eth0 --in --apply") {
		t.Errorf("split-brain: %+v", f)
	}
	if cj.Windows == nil || cj.Windows.Comparable || cj.Windows.OverlapS != 0 || cj.Windows.GapS <= 0 {
		t.Errorf("windows %+v, want disjoint", cj.Windows)
	}
	if len(cj.Notes) != 1 || !strings.Contains(cj.Notes[0], "The reports do not cover the same time") || !strings.Contains(cj.Notes[0], "b's watch began") {
		t.Errorf("notes %q", cj.Notes)
	}

	// The text an admin reads.
	cmd := exec.Command(vrrpdoctor(t), "check", "--combine", filepath.Join(p.lab.Dir(), "a.json"), filepath.Join(p.lab.Dir(), "b.json"))
	out, err := cmd.Output()
	if code := cmd.ProcessState.ExitCode(); code != 2 {
		t.Errorf("combined text: exit %d (%v)", code, err)
	}
	text := string(out)
	for _, want := range []string{"Note: The reports do not cover the same time", "/s)", "Status: CRITICAL (1 critical)"} {
		if !strings.Contains(text, want) {
			t.Errorf("combined text lacks %q", want)
		}
	}
	if n := strings.Count(text, "\n  CRITICAL "); n != 1 {
		t.Errorf("%d CRITICAL findings in the text, want 1", n)
	}
	t.Logf("combined text:\n%s", text)
}
