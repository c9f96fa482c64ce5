package capture

import (
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// writeTestPcapng writes n VRRP frames (odd ones outgoing) and returns the
// file's bytes and the frames.
func writeTestPcapng(t *testing.T, n int) ([]byte, [][]byte, []time.Time) {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewPcapngWriter(&buf, PcapngInterface{Name: "eth0", LinkType: 1, SnapLen: DefaultSnapLen}, "vrrpdoctor test")
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	var times []time.Time
	src := netip.MustParseAddr("198.51.100.1")
	for i := range n {
		// Frame lengths vary so that every padding case occurs.
		f := testFrame(t, nil, src, vrrpcore.GroupIPv4, 112, advertBytes(t, uint8(1+i), src, vrrpcore.GroupIPv4))
		f = append(f, make([]byte, i%4)...)
		ts := time.Unix(1767225600+int64(i), int64(i)*1001)
		dir := DirIn
		if i%2 == 1 {
			dir = DirOut
		}
		if err := w.WriteFrame(ts, dir, f, len(f)+i%2); err != nil {
			t.Fatal(err)
		}
		frames, times = append(frames, f), append(times, ts)
	}
	if err := w.WriteStats(times[0], times[n-1], WireStats{Received: uint64(n), Dropped: 3}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), frames, times
}

func TestPcapngWriterReadBack(t *testing.T) {
	file, frames, times := writeTestPcapng(t, 9)
	r, err := NewFileReader(bytes.NewReader(file), "test.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	if r.Format() != FormatPcapng {
		t.Errorf("format %s", r.Format())
	}
	dec := NewDecoder()
	for i := range frames {
		var f Frame
		if err := r.Next(&f); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(f.Data, frames[i]) || !f.Time.Equal(times[i]) || f.LinkType != 1 || f.OrigLen != len(frames[i])+i%2 {
			t.Errorf("frame %d: got %v len %d orig %d, want %v len %d", i, f.Time, len(f.Data), f.OrigLen, times[i], len(frames[i]))
		}
		var p Packet
		if err := dec.Decode(LinkTypeEthernet, f.Data, &p); err != nil || p.Advert.VRID != uint8(1+i) {
			t.Errorf("frame %d decodes to VRID %d: %v", i, p.Advert.VRID, err)
		}
	}
	var f Frame
	if err := r.Next(&f); err == nil {
		t.Error("more frames than written")
	}
}

func TestPcapngWriterTshark(t *testing.T) {
	requireProgram(t, "tshark")
	file, frames, _ := writeTestPcapng(t, 9)
	name := filepath.Join(t.TempDir(), "w.pcapng")
	if err := os.WriteFile(name, file, 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("tshark", "-r", name, "-T", "fields", "-e", "frame.packet_flags_direction", "-e", "vrrp.virt_rtr_id")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.Bytes())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(frames) {
		t.Fatalf("tshark read %d packets, want %d:\n%s", len(lines), len(frames), out)
	}
	for i, l := range lines {
		fields := strings.Fields(l)
		if len(fields) != 2 {
			t.Fatalf("packet %d: tshark says %q", i, l)
		}
		dir, err1 := strconv.ParseUint(fields[0], 0, 32)
		vrid, err2 := strconv.Atoi(fields[1])
		if err1 != nil || err2 != nil || dir != uint64(1+i%2) || vrid != 1+i {
			t.Errorf("packet %d: tshark says direction %s VRID %s, want %d and %d", i, fields[0], fields[1], 1+i%2, 1+i)
		}
	}
}

// requireProgram skips the test without the program, or fails it when
// CI=true.
func requireProgram(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		msg := name + " not found: install the Debian package " + map[string]string{"tshark": "tshark"}[name]
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}
