package diag

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func splitBrainReport() *CaptureReport {
	return analyse(
		every(sender{src: "198.51.100.1", prio: 150, auth: "hunter2"}, 0, 10*time.Second, time.Second),
		every(sender{src: "198.51.100.2", prio: 100, auth: "hunter3"}, 500*time.Millisecond, 10*time.Second, time.Second),
	)
}

func TestTextRendering(t *testing.T) {
	r := splitBrainReport()
	var plain, coloured bytes.Buffer
	if err := WriteCaptureText(&plain, r, false); err != nil {
		t.Fatal(err)
	}
	if err := WriteCaptureText(&coloured, r, true); err != nil {
		t.Fatal(err)
	}
	out := plain.String()
	for _, want := range []string{
		"VRID 51 (VRRPv2, IPv4)", "198.51.100.1", "198.51.100.2", "priority   150", "declared 1s, observed 1s",
		`PASS (simple text password) "hunter2"`, "VIPs       198.51.100.100", "TTL        255",
		"CRITICAL split-brain", "WARNING auth-mismatch", "Why: ", "Fix: ", "Status: CRITICAL (1 critical, 1 warning)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("plain output contains escape sequences")
	}
	if !strings.Contains(coloured.String(), "\x1b[") {
		t.Errorf("coloured output has no escape sequences")
	}
	for _, line := range strings.Split(out, "\n") {
		if len(line) > textWidth && !strings.HasPrefix(strings.TrimSpace(line), "firewalld:") && !strings.Contains(line, "nft ") {
			t.Errorf("line longer than %d: %q", textWidth, line)
		}
	}
}

func TestJSONRendering(t *testing.T) {
	r := splitBrainReport()
	var buf bytes.Buffer
	if err := WriteCaptureJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "hunter") {
		t.Fatalf("JSON output contains the password:\n%s", buf.String())
	}
	var doc struct {
		Status   string `json:"status"`
		ExitCode int    `json:"exit_code"`
		Files    []struct {
			Name    string `json:"name"`
			Frames  uint64 `json:"frames"`
			Adverts uint64 `json:"adverts"`
		} `json:"files"`
		Groups []struct {
			VRID    int `json:"vrid"`
			Version int `json:"version"`
			Family  int `json:"family"`
			Sources []struct {
				Address  string   `json:"address"`
				Packets  int      `json:"packets"`
				Priority int      `json:"priority"`
				VIPs     []string `json:"vips"`
				AuthType string   `json:"auth_type"`
				TTLs     []int    `json:"ttls"`
				Interval float64  `json:"interval_s"`
				Observed *float64 `json:"observed_interval_s"`
			} `json:"sources"`
		} `json:"groups"`
		Findings []struct {
			ID       string `json:"id"`
			Severity string `json:"severity"`
			Summary  string `json:"summary"`
		} `json:"findings"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Status != "critical" || doc.ExitCode != 2 || len(doc.Files) != 1 || doc.Files[0].Adverts != 20 {
		t.Errorf("status %q exit %d files %+v", doc.Status, doc.ExitCode, doc.Files)
	}
	if len(doc.Groups) != 1 || doc.Groups[0].VRID != 51 || doc.Groups[0].Version != 2 || doc.Groups[0].Family != 4 || len(doc.Groups[0].Sources) != 2 {
		t.Fatalf("groups %+v", doc.Groups)
	}
	s := doc.Groups[0].Sources[0]
	if s.Address != "198.51.100.1" || s.Packets != 10 || s.Priority != 150 || len(s.VIPs) != 1 || s.VIPs[0] != "198.51.100.100" ||
		s.AuthType != "simple" || len(s.TTLs) != 1 || s.TTLs[0] != 255 || s.Interval != 1 || s.Observed == nil || *s.Observed != 1 {
		t.Errorf("source %+v", s)
	}
	if len(doc.Findings) < 2 || doc.Findings[0].ID != "split-brain" || doc.Findings[0].Severity != "critical" || doc.Findings[0].Summary == "" {
		t.Errorf("findings %+v", doc.Findings)
	}
}

func TestColourEnabled(t *testing.T) {
	if ColourEnabled(&bytes.Buffer{}) {
		t.Error("colour for a buffer")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ColourEnabled(f) {
		t.Error("colour for a regular file")
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		t.Setenv("NO_COLOR", "1")
		if ColourEnabled(tty) {
			t.Error("colour with NO_COLOR set")
		}
	}
}

func TestSeverityText(t *testing.T) {
	for s := SeverityOK; s <= SeverityCritical; s++ {
		b, err := s.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Severity
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("%v: round trip gave %v, %v", s, back, err)
		}
	}
	if _, err := Severity(9).MarshalText(); err == nil {
		t.Error("severity 9 marshalled")
	}
	var s Severity
	if err := s.UnmarshalText([]byte("fatal")); err == nil {
		t.Error(`"fatal" unmarshalled`)
	}
}

func TestWrap(t *testing.T) {
	var buf bytes.Buffer
	wrap(&buf, "  ", "Why: ", strings.Repeat("word ", 50)+"\n  kept as is "+strings.Repeat("x", 120))
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	if !strings.HasPrefix(lines[0], "  Why: word") || !strings.HasPrefix(lines[1], "       word") {
		t.Errorf("wrapped lines %q", lines[:2])
	}
	for _, l := range lines[:len(lines)-1] {
		if len(l) > textWidth {
			t.Errorf("line of %d columns: %q", len(l), l)
		}
	}
	if !strings.HasPrefix(lines[len(lines)-1], "    kept as is xxx") {
		t.Errorf("indented line changed: %q", lines[len(lines)-1])
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", time.Second: "1s", 1002 * time.Millisecond: "1.002s", 350 * time.Millisecond: "350ms",
		1234567 * time.Nanosecond: "1.23ms", 12 * time.Microsecond: "12µs", -2 * time.Second: "-2s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
