package release

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// header-only.x86_64.rpm is the lead, signature and main header of an rpm
// goreleaser 2.15.1 (nfpm) made from this repository, without the payload.
const headerOnlyRPM = "testdata/header-only.x86_64.rpm"

func TestReadRPMHeader(t *testing.T) {
	data, err := os.ReadFile(headerOnlyRPM)
	if err != nil {
		t.Fatal(err)
	}
	p, err := readRPM(data)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "vrrpdoctor" || p.Version != "0.0.1~next+3342144" || p.Release != "1" || p.Arch != "x86_64" {
		t.Errorf("got %s %s-%s %s", p.Name, p.Version, p.Release, p.Arch)
	}
	if p.PayloadFormat != "cpio" || p.PayloadCompressor != "gzip" {
		t.Errorf("payload %s/%s, want cpio/gzip", p.PayloadFormat, p.PayloadCompressor)
	}
	byPath := map[string]rpmFile{}
	for _, f := range p.Files {
		byPath[f.Path] = f
	}
	bin, ok := byPath["/usr/bin/vrrpdoctor"]
	if !ok || bin.Mode != 0o755 || bin.Size < 1<<20 {
		t.Errorf("/usr/bin/vrrpdoctor: %+v (listed: %v)", bin, ok)
	}
	if f := byPath["/usr/share/man/man1/vrrpdoctor.1.gz"]; f.Mode != 0o644 || f.Size == 0 {
		t.Errorf("/usr/share/man/man1/vrrpdoctor.1.gz: %+v", f)
	}
	if len(p.payload) != 0 {
		t.Errorf("%d payload bytes in a header-only file", len(p.payload))
	}
	if _, err := p.payloadFiles(); err == nil {
		t.Error("payloadFiles on an empty payload: no error")
	}
}

// TestReadRPMTruncated cuts the header at every length: each cut is an
// error naming where, never a panic or a silently short file list.
func TestReadRPMTruncated(t *testing.T) {
	data, err := os.ReadFile(headerOnlyRPM)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(data); n++ {
		_, err := readRPM(data[:n])
		if err == nil {
			t.Fatalf("readRPM of the first %d of %d bytes: no error", n, len(data))
		}
		if !strings.Contains(err.Error(), "rpm: ") {
			t.Fatalf("%d bytes: error %q does not say rpm", n, err)
		}
	}
}

func TestReadRPMBadMagic(t *testing.T) {
	data, err := os.ReadFile(headerOnlyRPM)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), data...)
	bad[96] ^= 0xff // signature header magic
	if _, err := readRPM(bad); err == nil || !strings.Contains(err.Error(), "offset 96: header magic") {
		t.Errorf("got %v, want a header magic error at offset 96", err)
	}
	if _, err := readRPM(make([]byte, 200)); err == nil || !strings.Contains(err.Error(), "offset 0: lead magic") {
		t.Errorf("got %v, want a lead magic error", err)
	}
}

func FuzzReadRPM(f *testing.F) {
	data, err := os.ReadFile(filepath.FromSlash(headerOnlyRPM))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := readRPM(b)
		if err != nil {
			return
		}
		_, _ = p.payloadFiles()
	})
}

func FuzzReadCpioNewc(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzReadCpioNewc (an excerpt of a real nfpm payload).
	f.Fuzz(func(t *testing.T, b []byte) {
		files, err := readCpioNewc(b)
		if err != nil {
			return
		}
		for name, data := range files {
			if len(data) > len(b) || name == "TRAILER!!!" {
				t.Fatalf("entry %q: %d bytes from a %d-byte archive", name, len(data), len(b))
			}
		}
	})
}
