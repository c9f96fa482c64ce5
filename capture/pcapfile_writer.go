package capture

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// PcapWriter writes frames to a little-endian pcap file with nanosecond
// timestamps. Unlike gopacket/pcapgo's writer it takes any link type,
// including those above 255 such as LINKTYPE_LINUX_SLL2 (276).
type PcapWriter struct {
	w   *bufio.Writer
	hdr [16]byte
}

// NewPcapWriter writes the file header for linkType to w and returns a
// writer for frames. Call Flush when done.
func NewPcapWriter(w io.Writer, linkType uint32) (*PcapWriter, error) {
	pw := &PcapWriter{w: bufio.NewWriterSize(w, 64<<10)}
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:4], pcapMagicNano)
	binary.LittleEndian.PutUint16(h[4:6], 2)
	binary.LittleEndian.PutUint16(h[6:8], 4)
	binary.LittleEndian.PutUint32(h[16:20], MaxFrameSize)
	binary.LittleEndian.PutUint32(h[20:24], linkType)
	if _, err := pw.w.Write(h[:]); err != nil {
		return nil, err
	}
	return pw, nil
}

// WriteFrame appends one frame captured at t.
func (pw *PcapWriter) WriteFrame(t time.Time, frame []byte) error {
	if len(frame) > MaxFrameSize {
		return fmt.Errorf("frame of %d bytes exceeds %d", len(frame), MaxFrameSize)
	}
	ns := t.UnixNano()
	binary.LittleEndian.PutUint32(pw.hdr[0:4], uint32(ns/1e9))
	binary.LittleEndian.PutUint32(pw.hdr[4:8], uint32(ns%1e9))
	binary.LittleEndian.PutUint32(pw.hdr[8:12], uint32(len(frame)))
	binary.LittleEndian.PutUint32(pw.hdr[12:16], uint32(len(frame)))
	if _, err := pw.w.Write(pw.hdr[:]); err != nil {
		return err
	}
	_, err := pw.w.Write(frame)
	return err
}

// Flush writes any buffered data to the underlying writer.
func (pw *PcapWriter) Flush() error { return pw.w.Flush() }
