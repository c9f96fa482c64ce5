package diag

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/bench/gen"
)

// benchAdverts is the size of the generated capture the benchmarks read.
const benchAdverts = 200000

func benchCapture(b *testing.B) []byte {
	b.Helper()
	var buf bytes.Buffer
	if err := gen.WritePcap(&buf, benchAdverts); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkAnalyzeFile measures the whole analyze pipeline on a file:
// read, decode, analyse and report (bench/analyze.sh compares it with
// tcpdump and tshark on a larger file).
func BenchmarkAnalyzeFile(b *testing.B) {
	name := filepath.Join(b.TempDir(), "bench.pcap")
	if err := os.WriteFile(name, benchCapture(b), 0o644); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		r := AnalyzeFiles(name)
		if r.Files[0].Adverts != benchAdverts {
			b.Fatalf("%d adverts, want %d", r.Files[0].Adverts, benchAdverts)
		}
	}
	b.ReportMetric(float64(benchAdverts)*float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}

// BenchmarkAnalyzeMemory is the pipeline without the file system.
func BenchmarkAnalyzeMemory(b *testing.B) {
	data := benchCapture(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		c := NewCaptureAnalysis()
		c.AddReader(bytes.NewReader(data), "bench.pcap")
		if r := c.Report(); len(findingsWith(r, IDSplitBrain)) != 1 {
			b.Fatalf("findings %v, want the generated split brain", ids(r))
		}
	}
	b.ReportMetric(float64(benchAdverts)*float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}
