package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// Link types used in the tests (pcap-linktype(7)).
const (
	ltEthernet = 1
	ltRaw      = 101
	ltSLL      = 113
	ltSLL2     = 276
)

type wantFrame struct {
	t    time.Time
	lt   uint32
	data []byte
	orig int
	end  int64 // offset just past the frame's record
}

// readAll reads every frame of b and returns copies of them and the error
// that ended the reading (nil at a clean end).
func readAll(t testing.TB, b []byte) ([]wantFrame, error) {
	t.Helper()
	fr, err := NewFileReader(bytes.NewReader(b), "test.cap")
	if err != nil {
		return nil, err
	}
	var out []wantFrame
	var f Frame
	for {
		err := fr.Next(&f)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, wantFrame{t: f.Time, lt: f.LinkType, data: bytes.Clone(f.Data), orig: f.OrigLen, end: fr.Offset()})
	}
}

func sameFrames(t *testing.T, got, want []wantFrame) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d frames, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.t.Equal(w.t) || g.lt != w.lt || !bytes.Equal(g.data, w.data) || g.orig != w.orig {
			t.Errorf("frame %d: got (%v, lt %d, %x, orig %d), want (%v, lt %d, %x, orig %d)",
				i, g.t, g.lt, g.data, g.orig, w.t, w.lt, w.data, w.orig)
		}
	}
}

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)

func frameBytes(i, n int) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(i*7 + j)
	}
	return b
}

func TestPcapWriterRoundTrip(t *testing.T) {
	for _, lt := range []uint32{ltEthernet, ltSLL, ltSLL2, ltRaw} {
		var buf bytes.Buffer
		pw, err := NewPcapWriter(&buf, lt)
		if err != nil {
			t.Fatal(err)
		}
		var want []wantFrame
		for i := range 5 {
			d := frameBytes(i, 40+i)
			ts := t0.Add(time.Duration(i) * 1001 * time.Millisecond)
			if err := pw.WriteFrame(ts, d); err != nil {
				t.Fatal(err)
			}
			want = append(want, wantFrame{t: ts, lt: lt, data: d, orig: len(d)})
		}
		if err := pw.Flush(); err != nil {
			t.Fatal(err)
		}
		got, err := readAll(t, buf.Bytes())
		if err != nil {
			t.Fatalf("link type %d: %v", lt, err)
		}
		sameFrames(t, got, want)
	}
}

// TestPcapAgainstPcapgo reads files written by gopacket's pcapgo writer and
// compares with what pcapgo's own reader returns.
func TestPcapAgainstPcapgo(t *testing.T) {
	for _, nanos := range []bool{false, true} {
		var buf bytes.Buffer
		w := pcapgo.NewWriter(&buf)
		if nanos {
			w = pcapgo.NewWriterNanos(&buf)
		}
		if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			d := frameBytes(i, 60+i%5)
			ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * 333 * time.Millisecond), CaptureLength: len(d), Length: len(d) + i}
			if err := w.WritePacket(ci, d); err != nil {
				t.Fatal(err)
			}
		}
		pr, err := pcapgo.NewReader(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		var want []wantFrame
		for {
			d, ci, err := pr.ReadPacketData()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, wantFrame{t: ci.Timestamp, lt: uint32(pr.LinkType()), data: d, orig: ci.Length})
		}
		got, err := readAll(t, buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		sameFrames(t, got, want)
	}
}

// TestPcapngAgainstPcapgo reads a pcapng file with two interfaces of
// different link types written by pcapgo and compares with pcapgo's reader.
func TestPcapngAgainstPcapgo(t *testing.T) {
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriterInterface(&buf, pcapgo.NgInterface{Name: "eth0", LinkType: layers.LinkTypeEthernet, SnapLength: 65535}, pcapgo.DefaultNgWriterOptions)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := w.AddInterface(pcapgo.NgInterface{Name: "tun0", LinkType: layers.LinkTypeRaw, SnapLength: 65535})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		d := frameBytes(i, 50+i%7)
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * 10 * time.Millisecond), CaptureLength: len(d), Length: len(d)}
		if i%3 == 0 {
			ci.InterfaceIndex = raw
		}
		if err := w.WritePacket(ci, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	pr, err := pcapgo.NewNgReader(bytes.NewReader(buf.Bytes()), pcapgo.NgReaderOptions{WantMixedLinkType: true})
	if err != nil {
		t.Fatal(err)
	}
	var want []wantFrame
	for {
		d, ci, err := pr.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, wantFrame{t: ci.Timestamp, lt: uint32(ci.AncillaryData[0].(layers.LinkType)), data: d, orig: ci.Length})
	}
	got, err := readAll(t, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	sameFrames(t, got, want)
	if got[0].lt != ltRaw || got[1].lt != ltEthernet {
		t.Errorf("link types %d, %d: want %d, %d", got[0].lt, got[1].lt, ltRaw, ltEthernet)
	}
}

// ngBuilder assembles pcapng files block by block.
type ngBuilder struct {
	order interface {
		binary.ByteOrder
		binary.AppendByteOrder
	}
	buf    bytes.Buffer
	bounds []int64 // offsets just past each block
}

func (b *ngBuilder) block(typ uint32, body []byte) {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	n := uint32(12 + len(body))
	b.buf.Write(b.order.AppendUint32(nil, typ))
	b.buf.Write(b.order.AppendUint32(nil, n))
	b.buf.Write(body)
	b.buf.Write(b.order.AppendUint32(nil, n))
	b.bounds = append(b.bounds, int64(b.buf.Len()))
}

func (b *ngBuilder) shb() {
	body := b.order.AppendUint32(nil, pcapngByteOrder)
	body = b.order.AppendUint16(body, 1)
	body = b.order.AppendUint16(body, 0)
	body = b.order.AppendUint64(body, ^uint64(0))
	b.block(pcapngBlockSHB, body)
}

func (b *ngBuilder) option(body []byte, code uint16, val []byte) []byte {
	body = b.order.AppendUint16(body, code)
	body = b.order.AppendUint16(body, uint16(len(val)))
	body = append(body, val...)
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	return body
}

func (b *ngBuilder) idb(lt uint16, snap uint32, tsresol int, tsoffset int64) {
	body := b.order.AppendUint16(nil, lt)
	body = b.order.AppendUint16(body, 0)
	body = b.order.AppendUint32(body, snap)
	body = b.option(body, 2, []byte("eth0"))
	if tsresol >= 0 {
		body = b.option(body, 9, []byte{byte(tsresol)})
	}
	if tsoffset != 0 {
		body = b.option(body, 14, b.order.AppendUint64(nil, uint64(tsoffset)))
	}
	body = b.option(body, 0, nil)
	b.block(pcapngBlockIDB, body)
}

func (b *ngBuilder) epb(iface uint32, ts uint64, data []byte, orig int) {
	body := b.order.AppendUint32(nil, iface)
	body = b.order.AppendUint32(body, uint32(ts>>32))
	body = b.order.AppendUint32(body, uint32(ts))
	body = b.order.AppendUint32(body, uint32(len(data)))
	body = b.order.AppendUint32(body, uint32(orig))
	body = append(body, data...)
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	body = b.option(body, 1, []byte("a comment"))
	body = b.option(body, 0, nil)
	b.block(pcapngBlockEPB, body)
}

func (b *ngBuilder) spb(data []byte, orig int) {
	body := b.order.AppendUint32(nil, uint32(orig))
	body = append(body, data...)
	b.block(pcapngBlockSPB, body)
}

// mixedPcapng builds a two-section pcapng file (little-endian, then
// big-endian) with Ethernet, SLL2 and raw interfaces, nanosecond and binary
// timestamp resolutions, a timestamp offset, statistics, name-resolution and
// custom blocks, and a simple packet block. It returns the file and the
// frames it holds.
func mixedPcapng() ([]byte, []wantFrame) {
	b := &ngBuilder{order: binary.LittleEndian}
	var want []wantFrame
	b.shb()
	b.idb(ltEthernet, 262144, -1, 0) // default microseconds
	b.idb(ltSLL2, 262144, 9, 0)      // nanoseconds
	b.block(4, make([]byte, 8))      // name resolution block
	sec := t0.Unix()
	for i := range 6 {
		d := frameBytes(i, 46+i)
		if i%2 == 0 {
			us := uint64(sec)*1e6 + uint64(i)*1000 + 7
			b.epb(0, us, d, len(d)+4)
			want = append(want, wantFrame{t: time.Unix(0, int64(us)*1000), lt: ltEthernet, data: d, orig: len(d) + 4, end: int64(b.buf.Len())})
		} else {
			ns := uint64(sec)*1e9 + uint64(i)*1e6 + 123
			b.epb(1, ns, d, len(d))
			want = append(want, wantFrame{t: time.Unix(0, int64(ns)), lt: ltSLL2, data: d, orig: len(d), end: int64(b.buf.Len())})
		}
	}
	b.block(pcapngBlockISB, make([]byte, 12))
	b.block(0x40000bad, []byte("custom block"))
	// Second section, big-endian; interfaces start over.
	b.order = binary.BigEndian
	b.shb()
	b.idb(ltRaw, 100, 0x80|20, 1000) // 2^-20 s units, offset 1000 s
	d := frameBytes(9, 40)
	units := uint64(5)<<20 | 1<<19 // 5.5 s
	b.epb(0, units, d, len(d))
	want = append(want, wantFrame{t: time.Unix(1005, 5e8), lt: ltRaw, data: d, orig: len(d), end: int64(b.buf.Len())})
	d = frameBytes(10, 120)
	b.spb(d, 130) // snaplen 100 cuts it
	want = append(want, wantFrame{t: time.Time{}, lt: ltRaw, data: d[:100], orig: 130, end: int64(b.buf.Len())})
	return b.buf.Bytes(), want
}

func TestPcapngMixedSections(t *testing.T) {
	file, want := mixedPcapng()
	got, err := readAll(t, file)
	if err != nil {
		t.Fatal(err)
	}
	sameFrames(t, got, want)
	for i := range want {
		if got[i].end != want[i].end {
			t.Errorf("frame %d ends at offset %d, want %d", i, got[i].end, want[i].end)
		}
	}
}

func bigEndianPcap() ([]byte, []wantFrame) {
	be := binary.BigEndian
	h := be.AppendUint32(nil, pcapMagicMicro)
	h = be.AppendUint16(h, 2)
	h = be.AppendUint16(h, 4)
	h = append(h, make([]byte, 8)...)
	h = be.AppendUint32(h, 65535)
	h = be.AppendUint32(h, 0x10000000|ltSLL) // FCS bits above the link type
	var want []wantFrame
	for i := range 3 {
		d := frameBytes(i, 30)
		h = be.AppendUint32(h, uint32(1700000000+i))
		h = be.AppendUint32(h, 999999)
		h = be.AppendUint32(h, uint32(len(d)))
		h = be.AppendUint32(h, 1500)
		h = append(h, d...)
		want = append(want, wantFrame{t: time.Unix(int64(1700000000+i), 999999000), lt: ltSLL, data: d, orig: 1500, end: int64(len(h))})
	}
	return h, want
}

func TestBigEndianPcap(t *testing.T) {
	file, want := bigEndianPcap()
	got, err := readAll(t, file)
	if err != nil {
		t.Fatal(err)
	}
	sameFrames(t, got, want)
}

// TestCutShortEverywhere cuts valid files at every byte and checks that all
// frames before the cut are returned, a cut at a record boundary is a clean
// end, and any other cut is ErrTruncated at an offset inside the file.
func TestCutShortEverywhere(t *testing.T) {
	ng, ngWant := mixedPcapng()
	pc, pcWant := bigEndianPcap()
	for _, tc := range []struct {
		name      string
		file      []byte
		want      []wantFrame
		headerLen int64
	}{
		{"pcapng", ng, ngWant, 28},
		{"pcap", pc, pcWant, 24},
	} {
		bounds := map[int64]bool{}
		if tc.name == "pcapng" {
			// Recompute block boundaries by walking the file.
			off := int64(0)
			var order binary.ByteOrder = binary.LittleEndian
			for off < int64(len(ng)) {
				if binary.LittleEndian.Uint32(ng[off:]) == pcapngBlockSHB {
					if binary.BigEndian.Uint32(ng[off+8:]) == pcapngByteOrder {
						order = binary.BigEndian
					}
				}
				off += int64(order.Uint32(ng[off+4:]))
				bounds[off] = true
			}
		} else {
			bounds[24] = true
			for _, w := range pcWant {
				bounds[w.end] = true
			}
		}
		for cut := 0; cut <= len(tc.file); cut++ {
			got, err := readAll(t, tc.file[:cut])
			var complete []wantFrame
			for _, w := range tc.want {
				if w.end <= int64(cut) {
					complete = append(complete, w)
				}
			}
			if int64(cut) < tc.headerLen {
				var fe *FileError
				if !errors.As(err, &fe) || fe.File != "test.cap" {
					t.Fatalf("%s cut at %d: error %v, want a *FileError naming the file", tc.name, cut, err)
				}
				continue
			}
			if len(got) != len(complete) {
				t.Fatalf("%s cut at %d: %d frames, want %d", tc.name, cut, len(got), len(complete))
			}
			if bounds[int64(cut)] {
				if err != nil {
					t.Fatalf("%s cut at block boundary %d: %v", tc.name, cut, err)
				}
				continue
			}
			var fe *FileError
			if !errors.As(err, &fe) || !errors.Is(err, ErrTruncated) || fe.Offset > int64(cut) {
				t.Fatalf("%s cut at %d: error %v, want ErrTruncated at an offset <= %d", tc.name, cut, err, cut)
			}
			if !strings.Contains(err.Error(), "test.cap: at byte offset") {
				t.Fatalf("%s cut at %d: error %q does not name file and offset", tc.name, cut, err)
			}
		}
	}
}

func TestNotACapture(t *testing.T) {
	for _, in := range []string{"", "ab", "hello, this is a text file\n", "\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\xde\xad\xbe\xef"} {
		_, err := NewFileReader(strings.NewReader(in), "x.txt")
		var fe *FileError
		if !errors.As(err, &fe) {
			t.Fatalf("%q: error %v is not a *FileError", in, err)
		}
		if !strings.HasPrefix(err.Error(), "x.txt: at byte offset ") {
			t.Errorf("%q: error %q does not name the file and offset", in, err)
		}
	}
	_, err := NewFileReader(strings.NewReader("hello, this is a text file\n"), "x.txt")
	if !errors.Is(err, ErrNotCapture) {
		t.Errorf("text file: %v, want ErrNotCapture", err)
	}
}

func TestDamagedLengths(t *testing.T) {
	pc, _ := bigEndianPcap()
	bad := bytes.Clone(pc)
	binary.BigEndian.PutUint32(bad[24+16+30+8:], 0xfffffff0) // second record's capture length
	got, err := readAll(t, bad)
	var fe *FileError
	if len(got) != 1 || !errors.As(err, &fe) || fe.Offset != 24+16+30 {
		t.Fatalf("pcap with huge capture length: %d frames, error %v; want 1 frame and an error at offset 70", len(got), err)
	}

	b := &ngBuilder{order: binary.LittleEndian}
	b.shb()
	b.idb(ltEthernet, 0, -1, 0)
	start := int64(b.buf.Len())
	b.epb(0, 1, frameBytes(1, 20), 20)
	ng := b.buf.Bytes()
	binary.LittleEndian.PutUint32(ng[start+20:], 1<<31) // captured length
	_, err = readAll(t, ng)
	if !errors.As(err, &fe) || fe.Offset != start+20 {
		t.Fatalf("pcapng with huge captured length: %v, want error at offset %d", err, start+20)
	}

	for _, res := range []byte{64, 0x80 | 64, 127, 0xff} {
		b := &ngBuilder{order: binary.LittleEndian}
		b.shb()
		b.idb(ltEthernet, 0, int(res), 0)
		b.epb(0, 1, frameBytes(1, 20), 20)
		if _, err := readAll(t, b.buf.Bytes()); err == nil || !strings.Contains(err.Error(), "if_tsresol") {
			t.Errorf("if_tsresol %#x: error %v, want an unsupported resolution error", res, err)
		}
	}
}

func TestOpenFile(t *testing.T) {
	file, want := mixedPcapng()
	name := filepath.Join(t.TempDir(), "mixed.pcapng")
	if err := os.WriteFile(name, file, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := OpenFile(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Format() != FormatPcapng {
		t.Errorf("format %q, want %q", f.Format(), FormatPcapng)
	}
	n := 0
	var fr Frame
	for f.Next(&fr) == nil {
		n++
	}
	if n != len(want) {
		t.Errorf("read %d frames, want %d", n, len(want))
	}
	if _, err := OpenFile(filepath.Join(t.TempDir(), "missing.pcap")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
}

func TestNextDoesNotAllocate(t *testing.T) {
	ng, _ := mixedPcapng()
	pc, _ := bigEndianPcap()
	for _, file := range [][]byte{ng, pc} {
		r := bytes.NewReader(file)
		fr, err := NewFileReader(r, "a")
		if err != nil {
			t.Fatal(err)
		}
		var f Frame
		allocs := testing.AllocsPerRun(50, func() {
			if err := fr.Next(&f); err == io.EOF {
				r.Reset(file)
				fr.br.Reset(r)
				fr.pos = 0
				if fr.format == FormatPcap {
					fr.br.Discard(24)
				}
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations per frame, want 0", fr.Format(), allocs)
		}
	}
}
