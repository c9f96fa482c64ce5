package capture

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzFileReader feeds arbitrary bytes to the pcap/pcapng reader: it must
// never panic, must return frames within bounds at increasing offsets, and
// must end with io.EOF or a *FileError.
func FuzzFileReader(f *testing.F) {
	ng, _ := mixedPcapng()
	pc, _ := bigEndianPcap()
	f.Add(ng)
	f.Add(pc)
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := NewFileReader(bytes.NewReader(data), "fuzz")
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("header error %v is not a *FileError", err)
			}
			return
		}
		var fm Frame
		last := int64(-1)
		for {
			err := fr.Next(&fm)
			if err == io.EOF {
				return
			}
			if err != nil {
				var fe *FileError
				if !errors.As(err, &fe) {
					t.Fatalf("error %v is not a *FileError", err)
				}
				if fe.Offset < 0 || fe.Offset > int64(len(data)) {
					t.Fatalf("error offset %d outside the %d-byte input", fe.Offset, len(data))
				}
				return
			}
			if len(fm.Data) > MaxFrameSize || fm.Offset <= last || fr.Offset() > int64(len(data)) {
				t.Fatalf("frame of %d bytes at offset %d after %d, reader at %d of %d", len(fm.Data), fm.Offset, last, fr.Offset(), len(data))
			}
			last = fm.Offset
		}
	})
}
