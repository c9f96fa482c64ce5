package diag

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
)

// FuzzAnalyze runs the whole analyze pipeline (reader, decoder, analysis,
// findings, both renderers) on arbitrary input: it must not panic, must
// produce valid JSON, and must account every frame it read.
func FuzzAnalyze(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		c := NewCaptureAnalysis()
		c.AddReader(bytes.NewReader(data), "fuzz")
		r := c.Report()
		fs := r.Files[0]
		if fs.Adverts+fs.NotVRRP+fs.DecodeErrors != fs.Frames {
			t.Fatalf("frames %d != adverts %d + not VRRP %d + decode errors %d", fs.Frames, fs.Adverts, fs.NotVRRP, fs.DecodeErrors)
		}
		if err := WriteCaptureText(io.Discard, r, true); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := WriteCaptureJSON(&buf, r); err != nil {
			t.Fatal(err)
		}
		if !json.Valid(buf.Bytes()) {
			t.Fatalf("invalid JSON:\n%s", buf.Bytes())
		}
	})
}
