package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of analyze")

// captureDir holds the real keepalived captures (testdata/README.md says
// how each was made).
const captureDir = "../../testdata/captures"

// analyzeCases are the lab captures with the exit code and the finding IDs
// each must give.
var analyzeCases = []struct {
	file     string
	exit     int
	findings []string
}{
	{"v2-healthy.pcap", 0, nil},
	{"v2-pass-healthy.pcap", 0, nil},
	{"v2-split-brain.pcap", 2, []string{"split-brain"}},
	{"v2-split-brain.pcapng", 2, []string{"split-brain"}},
	{"v2-split-brain-sll.pcap", 2, []string{"split-brain"}},
	{"v2-split-brain-sll2.pcap", 2, []string{"split-brain"}},
	{"v2-auth-mismatch.pcap", 2, []string{"split-brain", "auth-mismatch"}},
	{"v2-master-shutdown.pcap", 0, []string{"master-resigned"}},
	{"v2-vlan.pcap", 0, nil},
	{"v3-ipv4-healthy.pcap", 0, nil},
	{"v3-ipv4-healthy-500ms.pcap", 0, nil},
	{"v3-ipv6-healthy.pcap", 0, nil},
	{"v3-ipv6-split-brain.pcap", 2, []string{"split-brain"}},
}

type jsonDoc struct {
	Status   string `json:"status"`
	ExitCode int    `json:"exit_code"`
	Files    []struct {
		Name         string `json:"name"`
		Frames       int    `json:"frames"`
		Adverts      int    `json:"adverts"`
		DecodeErrors int    `json:"decode_errors"`
		Error        string `json:"error"`
	} `json:"files"`
	Groups []struct {
		VRID    int `json:"vrid"`
		Version int `json:"version"`
		Sources []struct {
			Address  string   `json:"address"`
			Packets  int      `json:"packets"`
			Priority int      `json:"priority"`
			VIPs     []string `json:"vips"`
		} `json:"sources"`
	} `json:"groups"`
	Findings []struct {
		ID       string `json:"id"`
		Severity string `json:"severity"`
		Summary  string `json:"summary"`
	} `json:"findings"`
}

func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = execute(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// goldenDir holds the expected outputs, as an absolute path because the
// tests change into captureDir.
var goldenDir = func() string {
	d, err := filepath.Abs(filepath.Join("testdata", "analyze"))
	if err != nil {
		panic(err)
	}
	return d
}()

// golden compares got with the golden file, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join(goldenDir, name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/vrrpdoctor -run TestAnalyzeCaptures -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (rerun with -update after checking the change):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestAnalyzeCaptures(t *testing.T) {
	t.Chdir(captureDir)
	for _, tc := range analyzeCases {
		t.Run(tc.file, func(t *testing.T) {
			if _, err := os.Stat(tc.file); err != nil {
				t.Fatalf("capture missing: %v", err)
			}
			code, text, stderr := runCLI(t, "", "analyze", tc.file)
			if code != tc.exit || stderr != "" {
				t.Errorf("text: exit %d, stderr %q; want exit %d and no stderr", code, stderr, tc.exit)
			}
			code, js, stderr := runCLI(t, "", "analyze", "--json", tc.file)
			if code != tc.exit || stderr != "" {
				t.Errorf("json: exit %d, stderr %q; want exit %d and no stderr", code, stderr, tc.exit)
			}
			var doc jsonDoc
			if err := json.Unmarshal([]byte(js), &doc); err != nil {
				t.Fatalf("invalid JSON: %v\n%s", err, js)
			}
			var ids []string
			for _, f := range doc.Findings {
				ids = append(ids, f.ID)
				if tc.exit == 0 && (f.Severity == "warning" || f.Severity == "critical") {
					t.Errorf("%s finding %s in a capture that must be healthy: %s", f.Severity, f.ID, f.Summary)
				}
			}
			if !slices.Equal(ids, tc.findings) {
				t.Errorf("findings %v, want %v", ids, tc.findings)
			}
			if doc.ExitCode != tc.exit || len(doc.Files) != 1 || doc.Files[0].Adverts == 0 || doc.Files[0].DecodeErrors != 0 ||
				len(doc.Groups) != 1 || doc.Groups[0].VRID != 51 {
				t.Errorf("JSON summary: exit %d, files %+v, %d groups", doc.ExitCode, doc.Files, len(doc.Groups))
			}
			for _, g := range doc.Groups {
				for _, s := range g.Sources {
					if s.Address == "" || s.Packets == 0 || s.Priority == 0 && !strings.Contains(tc.file, "shutdown") || len(s.VIPs) == 0 {
						t.Errorf("source %+v incomplete", s)
					}
				}
			}
			if strings.Contains(tc.file, "healthy") && strings.Contains(js, "vrrpdoc\"") {
				t.Errorf("JSON carries the VRRPv2 password")
			}
			golden(t, tc.file+".txt", text)
			golden(t, tc.file+".json", js)
		})
	}
}

func TestAnalyzeShowsPasswordOnlyInText(t *testing.T) {
	t.Chdir(captureDir)
	_, text, _ := runCLI(t, "", "analyze", "v2-auth-mismatch.pcap")
	_, js, _ := runCLI(t, "", "analyze", "--json", "v2-auth-mismatch.pcap")
	if !strings.Contains(text, `"alpha123"`) || !strings.Contains(text, `"bravo456"`) {
		t.Errorf("text output lacks the passwords:\n%s", text)
	}
	if strings.Contains(js, "alpha123") || strings.Contains(js, "bravo456") {
		t.Errorf("JSON output contains a password")
	}
}

func TestAnalyzeDamagedFileStillReports(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(captureDir, "v2-split-brain.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.pcap")
	if err := os.WriteFile(cut, data[:len(data)-10], 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, "", "analyze", cut)
	if code != 2 {
		t.Errorf("exit %d, want 2 (split brain still visible before the damage)", code)
	}
	if !strings.Contains(stderr, "warning: "+cut+": at byte offset ") || !strings.Contains(stderr, "cut short") {
		t.Errorf("stderr %q does not name the file, offset and problem", stderr)
	}
	if !strings.Contains(out, "split-brain") || !strings.Contains(out, "damaged:") {
		t.Errorf("report lacks the findings or the damage:\n%s", out)
	}

	// A healthy capture cut short: UNKNOWN, with the report.
	data, err = os.ReadFile(filepath.Join(captureDir, "v2-healthy.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cut, data[:len(data)-10], 0o644); err != nil {
		t.Fatal(err)
	}
	code, js, _ := runCLI(t, "", "analyze", "--json", cut)
	var doc jsonDoc
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		t.Fatal(err)
	}
	if code != 3 || doc.Status != "unknown" || doc.Files[0].Error == "" || doc.Files[0].Adverts != 14 || len(doc.Groups) != 1 {
		t.Errorf("exit %d, status %q, file %+v, %d groups; want 3, unknown, an error and 14 adverts", code, doc.Status, doc.Files[0], len(doc.Groups))
	}
}

func TestAnalyzeBadInput(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("these are not packets\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		stderr []string
	}{
		{"not a capture", []string{"analyze", text}, []string{text + ": at byte offset 0: not a pcap or pcapng capture file"}},
		{"missing file", []string{"analyze", filepath.Join(dir, "none.pcap")}, []string{"none.pcap", "no such file"}},
		{"no file", []string{"analyze"}, []string{"name at least one capture file"}},
		{"bad flag", []string{"analyze", "--frobnicate", text}, []string{"unknown flag"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, "", tc.args...)
			if code != 3 {
				t.Errorf("exit %d, want 3 (UNKNOWN)", code)
			}
			for _, want := range tc.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr %q lacks %q", stderr, want)
				}
			}
		})
	}
}

func TestAnalyzeStdinAndSeveralFiles(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(captureDir, "v2-healthy.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	code, js, stderr := runCLI(t, string(data), "analyze", "--json", "-", filepath.Join(captureDir, "v3-ipv6-healthy.pcap"))
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var doc jsonDoc
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Files) != 2 || doc.Files[0].Name != "-" || doc.Files[0].Adverts != 15 || len(doc.Groups) != 2 ||
		doc.Groups[0].Version != 2 || doc.Groups[1].Version != 3 {
		t.Errorf("files %+v, groups %+v", doc.Files, doc.Groups)
	}
}
