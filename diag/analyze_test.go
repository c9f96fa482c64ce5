package diag

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/capture"
)

const captures = "../testdata/captures"

func TestAnalyzeFilesCorruptChecksum(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(captures, "v2-healthy.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	// First record: 24-byte file header, 16-byte record header, then
	// Ethernet (14), IPv4 (20) and the VRRP checksum at message byte 6.
	data[24+16+14+20+6] ^= 0xff
	c := NewCaptureAnalysis()
	c.AddReader(bytes.NewReader(data), "bad-checksum.pcap")
	r := c.Report()
	if got := findingsWith(r, IDChecksumMismatch); len(got) != 1 {
		t.Fatalf("checksum-mismatch findings %+v (all %v)", got, ids(r))
	}
	s := r.Groups[0].Sources[0]
	if s.ChecksumErrors != 1 || s.ChecksumMessage != 14 || s.Packets != 15 || r.Files[0].Adverts != 15 {
		t.Errorf("checksums bad %d good %d, packets %d, file adverts %d", s.ChecksumErrors, s.ChecksumMessage, s.Packets, r.Files[0].Adverts)
	}
}

func TestAnalyzeFilesMalformedAndUnsupported(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(captures, "v2-healthy.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	data[24+16+14+20] = 0x71 // VRRP version 7
	var other bytes.Buffer
	w, err := capture.NewPcapWriter(&other, 147) // LINKTYPE_USER0
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := w.WriteFrame(base, []byte{1, 2, 3}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	c := NewCaptureAnalysis()
	c.AddReader(bytes.NewReader(data), "bad-version.pcap")
	c.AddReader(&other, "user0.pcap")
	c.AddFile(filepath.Join(t.TempDir(), "missing.pcap"))
	r := c.Report()
	f := r.Files[0]
	if f.DecodeErrors != 1 || f.Adverts != 14 || f.FirstDecodeError == "" {
		t.Errorf("file %+v: want 1 decode error and 14 adverts", f)
	}
	if got := findingsWith(r, IDMalformedAdverts); len(got) != 1 {
		t.Errorf("malformed-adverts findings %+v", got)
	}
	if f := r.Files[1]; f.UnsupportedFrames != 3 || f.UnsupportedLinkType != 147 || f.Frames != 3 {
		t.Errorf("file %+v: want 3 unsupported frames of link type 147", f)
	}
	if f := r.Files[2]; !errors.Is(f.Err, os.ErrNotExist) || r.ExitCode() != ExitUnknown {
		t.Errorf("missing file: %v, exit %d", f.Err, r.ExitCode())
	}
}

func TestAnalyzeFilesRealCaptures(t *testing.T) {
	r := AnalyzeFiles(filepath.Join(captures, "v2-split-brain.pcap"), filepath.Join(captures, "v2-split-brain.pcapng"))
	if len(r.Files) != 2 || r.FileErrors() != 0 || len(findingsWith(r, IDSplitBrain)) != 1 {
		t.Errorf("files %+v, findings %v", r.Files, ids(r))
	}
}
