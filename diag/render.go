package diag

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/fatih/color"
	"github.com/mattn/go-isatty"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// ColourEnabled says whether text written to w should be coloured: only when
// w is a terminal, NO_COLOR is unset or empty (no-color.org) and TERM is not
// "dumb".
func ColourEnabled(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// palette holds the colours of one rendering, all switched on or off
// together regardless of fatih/color's global guess about stdout.
type palette struct {
	heading, dim            *color.Color
	critical, warning, info *color.Color
	ok, unknown             *color.Color
}

func newPalette(colour bool) palette {
	p := palette{
		heading:  color.New(color.Bold),
		dim:      color.New(color.Faint),
		critical: color.New(color.FgRed, color.Bold),
		warning:  color.New(color.FgYellow, color.Bold),
		info:     color.New(color.FgCyan),
		ok:       color.New(color.FgGreen, color.Bold),
		unknown:  color.New(color.FgMagenta, color.Bold),
	}
	for _, c := range []*color.Color{p.heading, p.dim, p.critical, p.warning, p.info, p.ok, p.unknown} {
		if colour {
			c.EnableColor()
		} else {
			c.DisableColor()
		}
	}
	return p
}

func (p palette) severity(s Severity) string {
	label := strings.ToUpper(s.String())
	switch s {
	case SeverityCritical:
		return p.critical.Sprint(label)
	case SeverityWarning:
		return p.warning.Sprint(label)
	case SeverityInfo:
		return p.info.Sprint(label)
	default:
		return p.ok.Sprint(label)
	}
}

// textWidth is the column at which explanations are wrapped.
const textWidth = 100

// wrap writes text word-wrapped at textWidth, each line indented by indent
// and the first line preceded by lead (which counts towards the width).
// Lines in text that start with spaces (commands) are kept as they are.
func wrap(w io.Writer, indent, lead, text string) {
	first := true
	for _, para := range strings.Split(text, "\n") {
		prefix := indent
		if first {
			prefix = indent + lead
		}
		first = false
		if strings.HasPrefix(para, " ") {
			fmt.Fprintf(w, "%s%s\n", prefix, para)
			continue
		}
		line := prefix
		words := strings.Fields(para)
		for i, word := range words {
			if i > 0 && len(line)+1+len(word) > textWidth {
				fmt.Fprintln(w, line)
				line = indent + strings.Repeat(" ", len(lead))
			} else if i > 0 {
				line += " "
			}
			line += word
		}
		fmt.Fprintln(w, line)
	}
}

// WriteFindings renders findings as text: severity, ID, subject, summary,
// evidence, explanation and fix. colour switches ANSI colours on (see
// ColourEnabled).
func WriteFindings(w io.Writer, fs []Finding, colour bool) error {
	bw := bufio.NewWriter(w)
	writeFindings(bw, fs, newPalette(colour))
	return bw.Flush()
}

func writeFindings(w *bufio.Writer, fs []Finding, p palette) {
	for i, f := range fs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		head := fmt.Sprintf("%s %s", p.severity(f.Severity), p.heading.Sprint(f.ID))
		if f.Subject != "" {
			head += "  " + f.Subject
		}
		fmt.Fprintf(w, "  %s\n", head)
		wrap(w, "    ", "", f.Summary)
		if len(f.Evidence) > 0 {
			fmt.Fprintln(w, "    Evidence:")
			for _, e := range f.Evidence {
				v := e.Value
				if e.Secret != "" {
					v += " " + e.Secret
				}
				if len(e.Label) > 28 {
					fmt.Fprintf(w, "      %s:\n", e.Label)
					wrap(w, "        ", "", v)
				} else {
					wrap(w, "      ", e.Label+": ", v)
				}
			}
		}
		if f.Explanation != "" {
			wrap(w, "    ", "Why: ", f.Explanation)
		}
		if f.Fix != "" {
			wrap(w, "    ", "Fix: ", f.Fix)
		}
	}
}

// WriteStatus writes the closing status line: the monitoring status of exit
// code (see StatusName) and the count of findings per severity.
func WriteStatus(w io.Writer, code int, fs []Finding, colour bool) error {
	var n [len(severityNames)]int
	for _, f := range fs {
		if int(f.Severity) < len(n) {
			n[f.Severity]++
		}
	}
	var parts []string
	for s := SeverityCritical; s > SeverityOK; s-- {
		if n[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[s], plural(n[s], s.String(), s.String()+"s")))
		}
	}
	p := newPalette(colour)
	var status string
	switch label := strings.ToUpper(StatusName(code)); code {
	case ExitOK:
		status = p.ok.Sprint(label)
	case ExitWarning:
		status = p.warning.Sprint(label)
	case ExitCritical:
		status = p.critical.Sprint(label)
	default:
		status = p.unknown.Sprint(label)
	}
	line := "Status: " + status
	if len(parts) > 0 {
		line += " (" + strings.Join(parts, ", ") + ")"
	}
	_, err := fmt.Fprintln(w, line)
	return err
}

// WriteCaptureText renders a capture report as text for people: the files,
// then per virtual router and sender what was advertised, then the
// findings and a status line. VRRPv2 simple-text passwords are shown.
func WriteCaptureText(w io.Writer, r *CaptureReport, colour bool) error {
	p := newPalette(colour)
	bw := bufio.NewWriter(w)

	fmt.Fprintln(bw, p.heading.Sprint("Files"))
	for _, f := range r.Files {
		if f.Format == "" {
			fmt.Fprintf(bw, "  %s  %s %v\n", f.Name, p.warning.Sprint("unreadable:"), f.Err)
			continue
		}
		line := fmt.Sprintf("  %s  %s, %d frames, %d VRRP adverts", f.Name, f.Format, f.Frames, f.Adverts)
		if f.DecodeErrors > 0 {
			line += fmt.Sprintf(", %d malformed", f.DecodeErrors)
		}
		if f.UnsupportedFrames > 0 {
			line += fmt.Sprintf(", %d of unsupported link type %d", f.UnsupportedFrames, f.UnsupportedLinkType)
		}
		if f.Frames > 0 {
			line += fmt.Sprintf(", %s – %s UTC", f.First.UTC().Format("2006-01-02 15:04:05.000"), f.Last.UTC().Format("15:04:05.000"))
		}
		fmt.Fprintln(bw, line)
		if f.Err != nil {
			fmt.Fprintf(bw, "    %s %v (report covers what was read before)\n", p.warning.Sprint("damaged:"), f.Err)
		}
	}
	if r.UntrackedAdverts > 0 {
		fmt.Fprintf(bw, "  %d adverts from senders beyond the first %d not analysed\n", r.UntrackedAdverts, MaxSources)
	}

	for i := range r.Groups {
		g := &r.Groups[i]
		fmt.Fprintln(bw)
		fmt.Fprintf(bw, "%s  %d adverts, %d %s\n", p.heading.Sprint(g.Subject()), g.Packets, len(g.Sources), plural(len(g.Sources), "sender", "senders"))
		for j := range g.Sources {
			writeSource(bw, g, &g.Sources[j], p)
		}
	}

	fmt.Fprintln(bw)
	if len(r.Findings) == 0 {
		fmt.Fprintln(bw, p.heading.Sprint("Findings")+": none")
	} else {
		fmt.Fprintln(bw, p.heading.Sprint("Findings"))
		writeFindings(bw, r.Findings, p)
	}
	fmt.Fprintln(bw)
	if err := bw.Flush(); err != nil {
		return err
	}
	if n := r.FileErrors(); n > 0 {
		fmt.Fprintf(w, "%d %s could not be read to the end (see above).\n", n, plural(n, "file", "files"))
	}
	return WriteStatus(w, r.ExitCode(), r.Findings, colour)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func writeSource(w *bufio.Writer, g *Group, s *Source, p palette) {
	head := "  " + s.Address.String()
	if s.HasMAC {
		head += "  " + p.dim.Sprint("MAC "+net.HardwareAddr(s.MAC[:]).String())
	}
	fmt.Fprintln(w, head)
	row := func(label, value string) { fmt.Fprintf(w, "    %-10s %s\n", label, value) }

	adv := fmt.Sprintf("%d, %s – %s", s.Packets, FormatTime(s.First), FormatTime(s.Last))
	if s.Duplicates > 0 {
		adv += fmt.Sprintf(" (%d duplicates)", s.Duplicates)
	}
	row("adverts", adv)

	prio := strconv.Itoa(int(s.Priority))
	if s.PriorityChangeCount > 0 {
		var ch []string
		for _, c := range s.PriorityChanges {
			ch = append(ch, fmt.Sprintf("%d→%d at %s", c.From, c.To, FormatTime(c.Time)))
		}
		if more := s.PriorityChangeCount - uint64(len(s.PriorityChanges)); more > 0 {
			ch = append(ch, fmt.Sprintf("%d more", more))
		}
		prio += " (" + strings.Join(ch, ", ") + ")"
	}
	row("priority", prio)

	iv := "declared " + FormatDuration(s.Interval)
	if len(s.Intervals) > 1 {
		var all []string
		for _, d := range s.Intervals {
			all = append(all, FormatDuration(d))
		}
		iv += " (seen " + strings.Join(all, ", ") + ")"
	}
	if s.Gaps > 0 {
		iv += fmt.Sprintf(", observed %s, jitter %s (%d gaps, %s – %s)",
			FormatDuration(s.ObservedInterval), FormatDuration(s.Jitter), s.Gaps, FormatDuration(s.MinGap), FormatDuration(s.MaxGap))
	}
	row("interval", iv)

	if g.Version == 2 {
		auth := authName(s.AuthType)
		if s.AuthType == vrrpcore.AuthSimple {
			auth += " " + strconv.Quote(s.AuthData)
		}
		row("auth", auth)
	}
	vips := addrList(s.VIPs)
	if s.VIPChanges > 0 {
		vips += fmt.Sprintf(" (changed %d times)", s.VIPChanges)
	}
	row("VIPs", vips)
	ttls := make([]string, len(s.TTLs))
	for i, t := range s.TTLs {
		ttls[i] = strconv.Itoa(int(t))
	}
	label := "TTL"
	if g.Family == 6 {
		label = "hop limit"
	}
	row(label, strings.Join(ttls, ", "))

	var ck []string
	if s.ChecksumMessage > 0 {
		ck = append(ck, fmt.Sprintf("message only %d", s.ChecksumMessage))
	}
	if s.ChecksumPseudoHeader > 0 {
		ck = append(ck, fmt.Sprintf("pseudo-header %d", s.ChecksumPseudoHeader))
	}
	if s.ChecksumOldUnicast > 0 {
		ck = append(ck, fmt.Sprintf("old unicast (keepalived < 1.3.6) %d", s.ChecksumOldUnicast))
	}
	if s.ChecksumErrors > 0 {
		ck = append(ck, p.warning.Sprintf("bad %d", s.ChecksumErrors))
	}
	if len(ck) == 0 {
		ck = append(ck, "not verified")
	}
	row("checksum", strings.Join(ck, ", "))
	if s.Resigned > 0 {
		r := fmt.Sprintf("%d priority-0 %s, last at %s", s.Resigned, plural(int(s.Resigned), "advert", "adverts"), FormatTime(s.LastResign))
		if s.TakeoverBy.IsValid() {
			r += fmt.Sprintf("; %s took over after %s", s.TakeoverBy, FormatDuration(s.TakeoverAfter))
		}
		row("resigned", r)
	}
}
