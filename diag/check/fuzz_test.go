package check

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/diag"
)

// FuzzReport reads arbitrary bytes as a check --json report, as --combine
// and --peer do with files they are given, and judges, renders and combines
// whatever decodes: none of it may panic, and the exit code must match the
// findings.
func FuzzReport(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(testdata, "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// A real report to combine each input with, both ways.
	partner := readReport(f, "input-drop-nft-a.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ReadJSON(bytes.NewReader(b), "fuzz.json")
		if err != nil {
			return
		}
		r.Findings = nil
		r.Finish()
		if diag.MaxSeverity(r.Findings) == diag.SeverityCritical && r.ExitCode != diag.ExitCritical {
			t.Fatalf("critical finding, exit %d", r.ExitCode)
		}
		if err := WriteText(io.Discard, r, false); err != nil {
			t.Fatal(err)
		}
		if err := WriteJSON(io.Discard, r); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*Combined{Combine(r, r), Combine(partner, r), Combine(r, partner)} {
			if err := WriteCombinedText(io.Discard, c, false); err != nil {
				t.Fatal(err)
			}
			if err := WriteCombinedJSON(io.Discard, c); err != nil {
				t.Fatal(err)
			}
			// Folding a node's finding into a pair finding never lowers
			// the status.
			if c.ExitCode < diag.MaxSeverity(r.Findings).ExitCode() && c.ExitCode != diag.ExitUnknown {
				t.Fatalf("combined exit %d below the node's %d", c.ExitCode, r.ExitCode)
			}
		}
	})
}
