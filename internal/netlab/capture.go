package netlab

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// CaptureOptions describe a packet capture to a file.
type CaptureOptions struct {
	// Interface to capture on; "any" gives Linux cooked (SLL) captures.
	Interface string
	// File to write; default a new file in the lab directory.
	File string
	// Filter is a BPF filter expression (tcpdump syntax), e.g. "vrrp".
	Filter string
	// LinkType is passed to tcpdump -y, e.g. "LINUX_SLL2" (with "any").
	LinkType string
	// Pcapng writes pcapng with dumpcap (Wireshark's capture engine), as a
	// Wireshark user would; tcpdump writes pcap only.
	Pcapng bool
	// ReadyTimeout bounds the wait for the capture to be listening;
	// default 10 s.
	ReadyTimeout time.Duration
}

// Capture is a running tcpdump or dumpcap writing to File.
type Capture struct {
	*Process
	File string
}

// StartCapture starts tcpdump (or dumpcap for pcapng) in the host and returns
// once it is really listening, i.e. after it has opened the interface and set
// the filter and printed so. Packets are written to the file one by one
// (tcpdump -U), so Stop loses nothing.
func (h *Host) StartCapture(o CaptureOptions) (*Capture, error) {
	if o.Interface == "" {
		return nil, errors.New("netlab: capture: no interface")
	}
	if o.Pcapng && o.LinkType != "" {
		return nil, errors.New("netlab: capture: LinkType is a tcpdump option; not with Pcapng")
	}
	seq := h.lab.nextSeq()
	file := o.File
	if file == "" {
		ext := ".pcap"
		if o.Pcapng {
			ext = ".pcapng"
		}
		file = h.lab.Path(fmt.Sprintf("%s-%s-%d%s", h.name, o.Interface, seq, ext))
	}
	// Start from an empty file: readiness is judged from the capture's output.
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("netlab: %w", err)
	}
	var name, ready string
	var args []string
	if o.Pcapng {
		// dumpcap prints "File: <path>" once the interface is open, the
		// filter compiled and the output file created.
		name, ready = "dumpcap", "File: "
		args = []string{"-i", o.Interface, "-w", file, "-n"}
		if o.Filter != "" {
			args = append(args, "-f", o.Filter)
		}
	} else {
		// tcpdump prints "listening on" after activating the handle and
		// installing the filter, right before its capture loop. -Z root:
		// Debian's tcpdump otherwise drops to user tcpdump before opening
		// the file in the lab's private directory.
		name, ready = "tcpdump", "listening on "
		args = []string{"-i", o.Interface, "-n", "-U", "-Z", "root", "--immediate-mode", "-w", file}
		if o.LinkType != "" {
			args = append(args, "-y", o.LinkType)
		}
		if o.Filter != "" {
			args = append(args, o.Filter)
		}
	}
	logPath := h.lab.Path(fmt.Sprintf("%s-%s-%d.log", h.name, name, seq))
	p, err := h.start(logPath, name, args...)
	if err != nil {
		return nil, err
	}
	c := &Capture{Process: p, File: file}
	timeout := o.ReadyTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	if err := p.WaitLog(timeout, ready); err != nil {
		_ = p.Stop(2 * time.Second)
		return nil, err
	}
	return c, nil
}

// Stop ends the capture with SIGTERM (tcpdump and dumpcap then flush and
// close the file) and waits for it. It fails if the capture had died before.
func (c *Capture) Stop() error {
	err := c.Process.Stop(5 * time.Second)
	if errors.Is(err, ErrExited) {
		return fmt.Errorf("netlab: %s on %s had exited before Stop (%v); output:\n%s", c.Args[0], c.Host.name, c.ExitErr(), tail(c.Log(), 20))
	}
	return err
}
