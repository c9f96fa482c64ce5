package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// This file reads pcap and pcapng capture files as a stream.
//
// It does not use gopacket/pcapgo's readers, which (v1.1.19) truncate link
// types to 8 bits (LINKTYPE_LINUX_SLL2 = 276 becomes 20), panic with a
// division by zero on an if_tsresol option of 2^-64 or 10^-64 and up,
// allocate whatever capture length a damaged pcapng block claims (up to
// 4 GiB) and do not say where in the file a problem lies. This reader
// bounds every length, reports byte offsets, yields each frame straight from
// its read buffer without copying or allocating, and is fuzzed. The tests
// check it against pcapgo on valid files; pcapgo's writers are used to make
// files.

// MaxFrameSize is the largest frame the reader accepts (tcpdump's
// MAXIMUM_SNAPLEN). A record claiming more means the file is damaged.
const MaxFrameSize = 262144

const (
	maxPcapngBlock = 16 << 20 // largest pcapng block accepted (skipped blocks included)
	maxMetaBlock   = 1 << 20  // largest section header or interface block accepted
	readBufSize    = 64 << 10 // records up to this size are returned without copying
)

// Capture file formats.
const (
	FormatPcap   = "pcap"
	FormatPcapng = "pcapng"
)

// Magic numbers at the start of capture files.
const (
	pcapMagicMicro  = 0xa1b2c3d4
	pcapMagicNano   = 0xa1b23c4d
	pcapngBlockSHB  = 0x0a0d0d0a
	pcapngByteOrder = 0x1a2b3c4d

	pcapngBlockIDB = 1
	pcapngBlockOPB = 2 // obsolete Packet Block
	pcapngBlockSPB = 3
	pcapngBlockISB = 5
	pcapngBlockEPB = 6
)

// ErrNotCapture says that a file is neither pcap nor pcapng.
var ErrNotCapture = errors.New("not a pcap or pcapng capture file")

// ErrTruncated says that a capture file ends in the middle of a record.
var ErrTruncated = errors.New("file is cut short")

// FileError is a problem in a capture file, located by byte offset.
type FileError struct {
	File   string // file name as given to the reader
	Offset int64  // byte offset of the record or field at fault
	Err    error  // what is wrong; ErrNotCapture or ErrTruncated where they apply
}

func (e *FileError) Error() string {
	return fmt.Sprintf("%s: at byte offset %d: %v", e.File, e.Offset, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// Frame is one captured link-layer frame read from a file.
type Frame struct {
	Time     time.Time
	LinkType uint32 // LINKTYPE_* value of the frame's interface (e.g. 1 Ethernet, 113 SLL, 276 SLL2)
	// Data is the captured bytes. It points into the reader's buffer and is
	// valid only until the next call to Next.
	Data    []byte
	OrigLen int   // length of the frame on the wire
	Offset  int64 // byte offset of the frame's record in the file
}

// pcapngIface is what the reader keeps of a pcapng interface description.
type pcapngIface struct {
	linkType uint32
	snapLen  uint32
	// Timestamps are units of 1/unitsPerSec seconds since the epoch plus
	// offsetSec seconds.
	unitsPerSec uint64
	offsetSec   int64
}

// FileReader reads frames from a pcap or pcapng stream. It holds one read
// buffer and no per-frame memory, whatever the file size.
type FileReader struct {
	name   string
	br     *bufio.Reader
	pos    int64 // bytes consumed so far
	format string

	order binary.ByteOrder

	// pcap
	linkType uint32
	nanos    bool

	// pcapng
	ifaces []pcapngIface

	big []byte // for records larger than the read buffer
}

// NewFileReader reads the file header from r and returns a reader for its
// frames. name is used in error messages.
func NewFileReader(r io.Reader, name string) (*FileReader, error) {
	fr := &FileReader{name: name, br: bufio.NewReaderSize(r, readBufSize)}
	magic, err := fr.br.Peek(4)
	if err != nil {
		if len(magic) == 0 {
			return nil, fr.errAt(0, errors.New("empty file: "+ErrNotCapture.Error()))
		}
		return nil, fr.errAt(0, fmt.Errorf("%w: %d bytes only", ErrNotCapture, len(magic)))
	}
	le, be := binary.LittleEndian.Uint32(magic), binary.BigEndian.Uint32(magic)
	switch {
	case le == pcapMagicMicro || le == pcapMagicNano:
		fr.order = binary.LittleEndian
		err = fr.readPcapHeader(le == pcapMagicNano)
	case be == pcapMagicMicro || be == pcapMagicNano:
		fr.order = binary.BigEndian
		err = fr.readPcapHeader(be == pcapMagicNano)
	case le == pcapngBlockSHB:
		fr.format = FormatPcapng
		err = fr.readSectionHeader()
	default:
		err = fr.errAt(0, fmt.Errorf("%w (starts with %#08x)", ErrNotCapture, be))
	}
	if err != nil {
		return nil, err
	}
	return fr, nil
}

// Format returns FormatPcap or FormatPcapng.
func (fr *FileReader) Format() string { return fr.format }

// Offset returns the number of bytes consumed so far.
func (fr *FileReader) Offset() int64 { return fr.pos }

// Next reads the next frame into f. It returns io.EOF at the clean end of the
// file and a *FileError for a damaged or cut short file.
func (fr *FileReader) Next(f *Frame) error {
	if fr.format == FormatPcap {
		return fr.nextPcap(f)
	}
	return fr.nextPcapng(f)
}

func (fr *FileReader) errAt(off int64, err error) error {
	return &FileError{File: fr.name, Offset: off, Err: err}
}

// truncated reports a record starting at off that the file cuts short.
func (fr *FileReader) truncated(off int64, what string, need int) error {
	return fr.errAt(off, fmt.Errorf("%w: %s needs %d bytes, file ends at byte %d", ErrTruncated, what, need, fr.pos+int64(fr.br.Buffered())))
}

// peek returns the next n bytes without consuming them, or an error naming
// what was being read. ok is false at a clean end of file (no bytes left).
func (fr *FileReader) peek(n int, what string) (b []byte, err error) {
	b, err = fr.br.Peek(n)
	if err == nil {
		return b, nil
	}
	if len(b) == 0 && errors.Is(err, io.EOF) {
		return nil, io.EOF
	}
	if errors.Is(err, io.EOF) {
		return nil, fr.truncated(fr.pos, what, n)
	}
	return nil, fr.errAt(fr.pos, err)
}

// record returns the next n bytes and consumes them. The slice is valid until
// the next read.
func (fr *FileReader) record(n int, what string) ([]byte, error) {
	if n <= readBufSize {
		b, err := fr.peek(n, what)
		if err != nil {
			if err == io.EOF {
				return nil, fr.truncated(fr.pos, what, n)
			}
			return nil, err
		}
		fr.br.Discard(n) // cannot fail: n bytes are buffered
		fr.pos += int64(n)
		return b, nil
	}
	if cap(fr.big) < n {
		fr.big = make([]byte, n)
	}
	b := fr.big[:n]
	got, err := io.ReadFull(fr.br, b)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fr.errAt(fr.pos, fmt.Errorf("%w: %s needs %d bytes, file ends at byte %d", ErrTruncated, what, n, fr.pos+int64(got)))
		}
		return nil, fr.errAt(fr.pos+int64(got), err)
	}
	fr.pos += int64(n)
	return b, nil
}

// skip consumes n bytes without keeping them.
func (fr *FileReader) skip(n int, what string) error {
	got, err := fr.br.Discard(n)
	start := fr.pos
	fr.pos += int64(got)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fr.errAt(start, fmt.Errorf("%w: %s needs %d bytes, file ends at byte %d", ErrTruncated, what, n, fr.pos))
		}
		return fr.errAt(fr.pos, err)
	}
	return nil
}

// pcap

func (fr *FileReader) readPcapHeader(nanos bool) error {
	fr.format = FormatPcap
	fr.nanos = nanos
	h, err := fr.record(24, "pcap file header")
	if err != nil {
		return err
	}
	if major := fr.order.Uint16(h[4:6]); major != 2 {
		return fr.errAt(4, fmt.Errorf("unsupported pcap version %d.%d", major, fr.order.Uint16(h[6:8])))
	}
	// The link type is the low 16 bits; the upper bits may carry FCS
	// information (pcap-linktype(7)).
	fr.linkType = fr.order.Uint32(h[20:24]) & 0xffff
	return nil
}

func (fr *FileReader) nextPcap(f *Frame) error {
	start := fr.pos
	h, err := fr.peek(16, "pcap record header")
	if err != nil {
		return err
	}
	sec := fr.order.Uint32(h[0:4])
	frac := fr.order.Uint32(h[4:8])
	capLen := fr.order.Uint32(h[8:12])
	origLen := fr.order.Uint32(h[12:16])
	if capLen > MaxFrameSize {
		return fr.errAt(start, fmt.Errorf("record claims %d captured bytes (at most %d): file damaged or not pcap", capLen, MaxFrameSize))
	}
	rec, err := fr.record(16+int(capLen), "pcap record")
	if err != nil {
		return err
	}
	nsec := int64(frac)
	if !fr.nanos {
		nsec *= 1000
	}
	f.Time = time.Unix(int64(sec), nsec)
	f.LinkType = fr.linkType
	f.Data = rec[16:]
	f.OrigLen = int(origLen)
	f.Offset = start
	return nil
}

// pcapng

// blockHeader reads the type and total length of the block at the current
// position, checking the length. It consumes nothing.
func (fr *FileReader) blockHeader() (typ, length uint32, err error) {
	h, err := fr.peek(12, "pcapng block header")
	if err != nil {
		return 0, 0, err
	}
	// The section header type reads the same in both byte orders.
	if binary.LittleEndian.Uint32(h[0:4]) == pcapngBlockSHB {
		// A new section may change the byte order.
		switch uint32(pcapngByteOrder) {
		case binary.LittleEndian.Uint32(h[8:12]):
			fr.order = binary.LittleEndian
		case binary.BigEndian.Uint32(h[8:12]):
			fr.order = binary.BigEndian
		default:
			return 0, 0, fr.errAt(fr.pos+8, fmt.Errorf("section header has byte-order magic %#08x, want %#08x", binary.BigEndian.Uint32(h[8:12]), pcapngByteOrder))
		}
	}
	typ = fr.order.Uint32(h[0:4])
	length = fr.order.Uint32(h[4:8])
	if length < 12 || length%4 != 0 || length > maxPcapngBlock {
		return 0, 0, fr.errAt(fr.pos+4, fmt.Errorf("pcapng block type %#x has invalid total length %d (must be a multiple of 4 between 12 and %d)", typ, length, maxPcapngBlock))
	}
	return typ, length, nil
}

// block reads a whole block of the given total length and checks that its
// trailing length matches. It returns the body (between the two lengths).
func (fr *FileReader) block(length uint32, what string) ([]byte, error) {
	start := fr.pos
	b, err := fr.record(int(length), what)
	if err != nil {
		return nil, err
	}
	if trail := fr.order.Uint32(b[length-4:]); trail != length {
		return nil, fr.errAt(start+int64(length)-4, fmt.Errorf("%s: trailing length %d differs from leading length %d", what, trail, length))
	}
	return b[8 : length-4], nil
}

func (fr *FileReader) readSectionHeader() error {
	start := fr.pos
	_, length, err := fr.blockHeader()
	if err != nil {
		if err == io.EOF {
			return fr.truncated(start, "pcapng section header", 12)
		}
		return err
	}
	if length > maxMetaBlock || length < 28 {
		return fr.errAt(start+4, fmt.Errorf("pcapng section header has invalid length %d", length))
	}
	body, err := fr.block(length, "pcapng section header")
	if err != nil {
		return err
	}
	if major := fr.order.Uint16(body[4:6]); major != 1 {
		return fr.errAt(start+12, fmt.Errorf("unsupported pcapng version %d.%d", major, fr.order.Uint16(body[6:8])))
	}
	fr.ifaces = fr.ifaces[:0]
	return nil
}

func (fr *FileReader) readInterface(length uint32) error {
	start := fr.pos
	if length > maxMetaBlock || length < 20 {
		return fr.errAt(start+4, fmt.Errorf("pcapng interface description has invalid length %d", length))
	}
	body, err := fr.block(length, "pcapng interface description")
	if err != nil {
		return err
	}
	ifc := pcapngIface{
		linkType:    uint32(fr.order.Uint16(body[0:2])),
		snapLen:     fr.order.Uint32(body[4:8]),
		unitsPerSec: 1e6,
	}
	opts := body[8:]
	optOff := start + 16
	for len(opts) >= 4 {
		code, olen := fr.order.Uint16(opts[0:2]), int(fr.order.Uint16(opts[2:4]))
		if code == 0 {
			break
		}
		padded := (olen + 3) &^ 3
		if 4+padded > len(opts) {
			return fr.errAt(optOff, fmt.Errorf("interface option %d of length %d overruns its block", code, olen))
		}
		val := opts[4 : 4+olen]
		switch code {
		case 9: // if_tsresol
			if olen != 1 {
				return fr.errAt(optOff, fmt.Errorf("if_tsresol option has length %d, want 1", olen))
			}
			units, ok := tsUnits(val[0])
			if !ok {
				return fr.errAt(optOff, fmt.Errorf("unsupported timestamp resolution if_tsresol=%#02x", val[0]))
			}
			ifc.unitsPerSec = units
		case 14: // if_tsoffset
			if olen != 8 {
				return fr.errAt(optOff, fmt.Errorf("if_tsoffset option has length %d, want 8", olen))
			}
			ifc.offsetSec = int64(fr.order.Uint64(val))
		}
		opts = opts[4+padded:]
		optOff += int64(4 + padded)
	}
	if len(fr.ifaces) >= 1<<16 {
		return fr.errAt(start, errors.New("more than 65536 interfaces in one pcapng section"))
	}
	fr.ifaces = append(fr.ifaces, ifc)
	return nil
}

// tsUnits converts an if_tsresol value to timestamp units per second.
func tsUnits(res byte) (uint64, bool) {
	exp := uint64(res & 0x7f)
	if res&0x80 != 0 {
		if exp > 63 {
			return 0, false
		}
		return 1 << exp, true
	}
	if exp > 19 { // 10^19 is the largest power of ten in a uint64
		return 0, false
	}
	u := uint64(1)
	for range exp {
		u *= 10
	}
	return u, true
}

// timestamp converts a pcapng timestamp of interface ifc to a time.
func (ifc *pcapngIface) timestamp(ts uint64) time.Time {
	sec := ts / ifc.unitsPerSec
	frac := ts % ifc.unitsPerSec
	var nsec uint64
	if ifc.unitsPerSec <= 1e9 {
		nsec = frac * (1e9 / ifc.unitsPerSec)
		if 1e9%ifc.unitsPerSec != 0 { // binary fractions
			nsec = uint64(float64(frac) * 1e9 / float64(ifc.unitsPerSec))
		}
	} else {
		nsec = uint64(float64(frac) / float64(ifc.unitsPerSec) * 1e9)
	}
	return time.Unix(int64(sec)+ifc.offsetSec, int64(nsec))
}

func (fr *FileReader) nextPcapng(f *Frame) error {
	for {
		start := fr.pos
		typ, length, err := fr.blockHeader()
		if err != nil {
			return err
		}
		switch typ {
		case pcapngBlockSHB:
			if err := fr.readSectionHeader(); err != nil {
				return err
			}
		case pcapngBlockIDB:
			if err := fr.readInterface(length); err != nil {
				return err
			}
		case pcapngBlockEPB, pcapngBlockOPB:
			name := "pcapng enhanced packet block"
			if typ == pcapngBlockOPB {
				name = "pcapng packet block"
			}
			if length < 32 {
				return fr.errAt(start+4, fmt.Errorf("%s has invalid length %d", name, length))
			}
			if length > MaxFrameSize+readBufSize {
				return fr.errAt(start+4, fmt.Errorf("%s has length %d, more than a frame of at most %d bytes needs", name, length, MaxFrameSize))
			}
			body, err := fr.block(length, name)
			if err != nil {
				return err
			}
			var id uint32
			if typ == pcapngBlockEPB {
				id = fr.order.Uint32(body[0:4])
			} else {
				id = uint32(fr.order.Uint16(body[0:2]))
			}
			if int(id) >= len(fr.ifaces) {
				return fr.errAt(start+8, fmt.Errorf("%s refers to interface %d, but the section describes %d", name, id, len(fr.ifaces)))
			}
			capLen := fr.order.Uint32(body[12:16])
			if uint64(capLen) > uint64(len(body)-20) {
				return fr.errAt(start+20, fmt.Errorf("%s claims %d captured bytes but holds at most %d", name, capLen, len(body)-20))
			}
			ifc := &fr.ifaces[id]
			ts := uint64(fr.order.Uint32(body[4:8]))<<32 | uint64(fr.order.Uint32(body[8:12]))
			f.Time = ifc.timestamp(ts)
			f.LinkType = ifc.linkType
			f.Data = body[20 : 20+capLen]
			f.OrigLen = int(fr.order.Uint32(body[16:20]))
			f.Offset = start
			return nil
		case pcapngBlockSPB:
			if len(fr.ifaces) == 0 {
				return fr.errAt(start, errors.New("pcapng simple packet block before any interface description"))
			}
			if length < 16 || length > MaxFrameSize+readBufSize {
				return fr.errAt(start+4, fmt.Errorf("pcapng simple packet block has invalid length %d", length))
			}
			body, err := fr.block(length, "pcapng simple packet block")
			if err != nil {
				return err
			}
			ifc := &fr.ifaces[0]
			origLen := fr.order.Uint32(body[0:4])
			capLen := min(uint64(origLen), uint64(len(body)-4))
			if ifc.snapLen != 0 {
				capLen = min(capLen, uint64(ifc.snapLen))
			}
			f.Time = time.Time{}
			f.LinkType = ifc.linkType
			f.Data = body[4 : 4+capLen]
			f.OrigLen = int(origLen)
			f.Offset = start
			return nil
		default:
			// Interface statistics, name resolution, custom and
			// unknown blocks carry nothing the analysis needs.
			if err := fr.skip(int(length), "pcapng block"); err != nil {
				return err
			}
		}
	}
}

// File is an open capture file.
type File struct {
	*FileReader
	f *os.File
}

// OpenFile opens a pcap or pcapng file for streaming.
func OpenFile(name string) (*File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	fr, err := NewFileReader(f, name)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &File{FileReader: fr, f: f}, nil
}

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }
