package capture

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// PcapngWriter writes a live capture of one interface as a little-endian
// pcapng file: a section header naming vrrpdoctor, one interface
// description (name, link type, snap length, nanosecond timestamps), one
// Enhanced Packet Block per frame with its direction (epb_flags, which
// Wireshark shows as inbound/outbound), and at the end an Interface
// Statistics Block with the kernel's counters. gopacket/pcapgo's NgWriter
// (v1.1.19) writes no per-packet options, so it cannot record directions.
type PcapngWriter struct {
	w   *bufio.Writer
	buf []byte
}

// PcapngInterface describes the captured interface.
type PcapngInterface struct {
	Name     string
	LinkType uint16 // LINKTYPE_* value
	SnapLen  uint32 // 0: no limit
}

// pcapng option codes used here.
const (
	optEndOfOpt        = 0
	optSHBUserAppl     = 4
	optIfName          = 2
	optIfTsresol       = 9
	optEPBFlags        = 2
	optISBStartTime    = 2
	optISBEndTime      = 3
	optISBFilterAccept = 6
	optISBOSDrop       = 7
)

// NewPcapngWriter writes the section header and the interface description
// to w. Call Flush when done.
func NewPcapngWriter(w io.Writer, ifc PcapngInterface, application string) (*PcapngWriter, error) {
	pw := &PcapngWriter{w: bufio.NewWriterSize(w, 64<<10)}
	// Section Header Block, section length unknown (-1).
	b := pw.begin(pcapngBlockSHB)
	b = binary.LittleEndian.AppendUint32(b, pcapngByteOrder)
	b = binary.LittleEndian.AppendUint16(b, 1)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint64(b, ^uint64(0))
	b = appendOption(b, optSHBUserAppl, []byte(application))
	b = appendOption(b, optEndOfOpt, nil)
	if err := pw.end(b); err != nil {
		return nil, err
	}
	// Interface Description Block.
	b = pw.begin(pcapngBlockIDB)
	b = binary.LittleEndian.AppendUint16(b, ifc.LinkType)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint32(b, ifc.SnapLen)
	if ifc.Name != "" {
		b = appendOption(b, optIfName, []byte(ifc.Name))
	}
	b = appendOption(b, optIfTsresol, []byte{9})
	b = appendOption(b, optEndOfOpt, nil)
	if err := pw.end(b); err != nil {
		return nil, err
	}
	return pw, nil
}

// WriteFrame appends one frame captured at t in direction dir; origLen is
// its length on the wire (at least len(frame)).
func (pw *PcapngWriter) WriteFrame(t time.Time, dir Direction, frame []byte, origLen int) error {
	if len(frame) > MaxFrameSize {
		return fmt.Errorf("capture: frame of %d bytes exceeds %d", len(frame), MaxFrameSize)
	}
	if origLen < len(frame) {
		origLen = len(frame)
	}
	b := pw.begin(pcapngBlockEPB)
	b = binary.LittleEndian.AppendUint32(b, 0) // interface 0
	b = appendTimestamp(b, t)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(frame)))
	b = binary.LittleEndian.AppendUint32(b, uint32(origLen))
	b = append(b, frame...)
	b = pad4(b)
	var flags uint32
	switch dir {
	case DirIn:
		flags = 1
	case DirOut:
		flags = 2
	}
	if flags != 0 {
		b = appendOption(b, optEPBFlags, binary.LittleEndian.AppendUint32(nil, flags))
		b = appendOption(b, optEndOfOpt, nil)
	}
	return pw.end(b)
}

// WriteStats appends an Interface Statistics Block: the capture's start and
// end, the frames the kernel filter accepted and those the kernel dropped
// (WireStats).
func (pw *PcapngWriter) WriteStats(start, end time.Time, st WireStats) error {
	b := pw.begin(pcapngBlockISB)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = appendTimestamp(b, end)
	b = appendOption(b, optISBStartTime, appendTimestamp(nil, start))
	b = appendOption(b, optISBEndTime, appendTimestamp(nil, end))
	b = appendOption(b, optISBFilterAccept, binary.LittleEndian.AppendUint64(nil, st.Received))
	b = appendOption(b, optISBOSDrop, binary.LittleEndian.AppendUint64(nil, st.Dropped))
	b = appendOption(b, optEndOfOpt, nil)
	return pw.end(b)
}

// Flush writes any buffered data to the underlying writer.
func (pw *PcapngWriter) Flush() error { return pw.w.Flush() }

// begin starts a block of type typ in the writer's scratch buffer, with
// room for the total length filled in by end.
func (pw *PcapngWriter) begin(typ uint32) []byte {
	b := binary.LittleEndian.AppendUint32(pw.buf[:0], typ)
	return binary.LittleEndian.AppendUint32(b, 0)
}

// end completes the block with its total length at both ends and writes it.
func (pw *PcapngWriter) end(b []byte) error {
	n := uint32(len(b) + 4)
	binary.LittleEndian.PutUint32(b[4:8], n)
	b = binary.LittleEndian.AppendUint32(b, n)
	pw.buf = b
	_, err := pw.w.Write(b)
	return err
}

func appendOption(b []byte, code uint16, val []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, code)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(val)))
	return pad4(append(b, val...))
}

// appendTimestamp appends t in nanoseconds as two 32-bit halves, high
// first.
func appendTimestamp(b []byte, t time.Time) []byte {
	ns := uint64(t.UnixNano())
	b = binary.LittleEndian.AppendUint32(b, uint32(ns>>32))
	return binary.LittleEndian.AppendUint32(b, uint32(ns))
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
