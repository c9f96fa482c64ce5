package diag

import (
	"errors"
	"fmt"
	"io"

	"github.com/vrrpdoctor/vrrpdoctor/capture"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// CaptureAnalysis reads capture streams one after the other and analyses
// their adverts as one observation (e.g. the files of a rotated tcpdump
// capture). Its memory does not grow with the number of frames.
type CaptureAnalysis struct {
	an    *Analyzer
	dec   *capture.Decoder
	files []FileSummary
	frame capture.Frame
	pkt   capture.Packet
}

// NewCaptureAnalysis returns an analysis with no files read yet.
func NewCaptureAnalysis() *CaptureAnalysis {
	return &CaptureAnalysis{an: NewAnalyzer(), dec: capture.NewDecoder()}
}

// AddFile reads the pcap or pcapng file name. An unreadable or damaged file
// is recorded in its FileSummary.Err; what was read before the damage is
// analysed.
func (c *CaptureAnalysis) AddFile(name string) {
	f, err := capture.OpenFile(name)
	if err != nil {
		c.files = append(c.files, FileSummary{Name: name, Err: err})
		return
	}
	defer f.Close()
	c.read(f.FileReader, name)
}

// AddReader reads a pcap or pcapng stream, naming it name in the report.
func (c *CaptureAnalysis) AddReader(r io.Reader, name string) {
	fr, err := capture.NewFileReader(r, name)
	if err != nil {
		c.files = append(c.files, FileSummary{Name: name, Err: err})
		return
	}
	c.read(fr, name)
}

func (c *CaptureAnalysis) read(fr *capture.FileReader, name string) {
	fs := FileSummary{Name: name, Format: fr.Format()}
	f, p := &c.frame, &c.pkt
	for {
		err := fr.Next(f)
		if err != nil {
			if err != io.EOF {
				fs.Err = err
			}
			break
		}
		fs.Frames++
		if fs.Frames == 1 {
			fs.First = f.Time
		}
		fs.Last = f.Time
		lt, ok := capture.LinkTypeFromPcap(f.LinkType)
		if !ok {
			fs.NotVRRP++
			if fs.UnsupportedFrames == 0 {
				fs.UnsupportedLinkType = f.LinkType
			}
			fs.UnsupportedFrames++
			continue
		}
		p.Time = f.Time
		err = c.dec.Decode(lt, f.Data, p)
		if err == nil {
			fs.Adverts++
			c.an.Add(p)
			continue
		}
		if _, bad := err.(*vrrpcore.ChecksumError); bad {
			p.Advert.Checksummed = vrrpcore.ChecksumBad
			fs.Adverts++
			c.an.Add(p)
			continue
		}
		if err == capture.ErrNotVRRP || errors.Is(err, capture.ErrNotVRRP) {
			fs.NotVRRP++
			continue
		}
		if fs.DecodeErrors == 0 {
			fs.FirstDecodeError = fmt.Sprintf("frame %d at byte offset %d: %v", fs.Frames, f.Offset, err)
		}
		fs.DecodeErrors++
	}
	c.files = append(c.files, fs)
}

// Report returns the analysis of everything read so far.
func (c *CaptureAnalysis) Report() *CaptureReport {
	return c.an.Report(c.files)
}

// AnalyzeFiles reads the capture files in the order given and returns their
// analysis.
func AnalyzeFiles(names ...string) *CaptureReport {
	c := NewCaptureAnalysis()
	for _, n := range names {
		c.AddFile(n)
	}
	return c.Report()
}
