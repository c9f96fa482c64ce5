package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const checkReports = "../../testdata/check"

func runCheckArgs(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := execute(append([]string{"check"}, args...), strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), code
}

// TestCheckCombine combines the lab reports of testdata/check.
func TestCheckCombine(t *testing.T) {
	a, b := filepath.Join(checkReports, "input-drop-a.json"), filepath.Join(checkReports, "input-drop-b.json")
	out, errOut, code := runCheckArgs(t, "--combine", a, b, "--json")
	var doc struct {
		Schema   string `json:"schema"`
		ExitCode int    `json:"exit_code"`
		Nodes    []struct {
			Label string `json:"label"`
		} `json:"nodes"`
		Findings []struct {
			ID      string `json:"id"`
			Summary string `json:"summary"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s%s", err, out, errOut)
	}
	if code != 2 || doc.ExitCode != 2 || doc.Schema != "vrrpdoctor-check-combined/1" || len(doc.Nodes) != 2 || doc.Nodes[1].Label != "b" ||
		doc.Findings[0].ID != "split-brain" || !strings.Contains(doc.Findings[0].Summary, "Cause on b's side.") {
		t.Errorf("exit %d: %+v", code, doc)
	}
	out, _, code = runCheckArgs(t, "--combine", filepath.Join(checkReports, "healthy-a.json"), filepath.Join(checkReports, "healthy-b.json"))
	if code != 0 || !strings.Contains(out, "OK healthy") || !strings.Contains(out, "Status: OK") {
		t.Errorf("healthy pair, exit %d:\n%s", code, out)
	}
}

func TestCheckUsage(t *testing.T) {
	notReport := filepath.Join(t.TempDir(), "x.json")
	if err := os.WriteFile(notReport, []byte(`{"schema":"something else"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	a := filepath.Join(checkReports, "healthy-a.json")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--combine", a}, "--combine takes exactly two reports"},
		{[]string{"--combine", a, a, a}, "--combine takes exactly two reports"},
		{[]string{a}, `unexpected argument "` + a + `"`},
		{[]string{"--combine", a, notReport}, `schema "something else"`},
		{[]string{"--combine", a, "/nonexistent.json"}, "/nonexistent.json"},
		{[]string{"--peer", notReport}, `schema "something else"`},
		{[]string{"--family", "5", "-i", "eth0", "--vrid", "1"}, "--family 5: want 4 or 6"},
		{[]string{"--duration", "-1s"}, "--duration -1s: must not be negative"},
		{[]string{"-c", "/nonexistent/keepalived.conf"}, "read configuration"},
		{[]string{"--vrid", "300"}, "invalid argument"},
		{[]string{"--nagios", "--json"}, "--nagios reports one node"},
		{[]string{"--nagios", "--combine", a, a}, "--nagios reports one node"},
	} {
		_, errOut, code := runCheckArgs(t, tc.args...)
		if code != 3 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q, want 3 and %q", tc.args, code, errOut, tc.want)
		}
	}
}
