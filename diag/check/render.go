package check

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/fatih/color"

	"github.com/vrrpdoctor/vrrpdoctor/diag"
	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
)

// WriteJSON writes the report as one indented JSON document (docs/check.md).
// VRRPv2 passwords are left out.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadJSON reads a report written by WriteJSON.
func ReadJSON(rd io.Reader, name string) (*Report, error) {
	var r Report
	dec := json.NewDecoder(rd)
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: not a vrrpdoctor check --json report: %w", name, err)
	}
	if r.Schema != Schema {
		return nil, fmt.Errorf("%s: schema %q, want %q (vrrpdoctor check --json)", name, r.Schema, Schema)
	}
	return &r, nil
}

// heading returns a bold printer, on or off as colour says.
func heading(colour bool) *color.Color {
	c := color.New(color.Bold)
	if colour {
		c.EnableColor()
	} else {
		c.DisableColor()
	}
	return c
}

// WriteText renders the report for people: what was checked, each instance
// as this node sees it, the findings with evidence and fix, what could not
// be checked, and the status line. colour switches ANSI colours on (see
// diag.ColourEnabled). VRRPv2 passwords appear in mismatch evidence only.
func WriteText(w io.Writer, r *Report, colour bool) error {
	bw := bufio.NewWriter(w)
	h := heading(colour)
	fmt.Fprintf(bw, "%s on %s, %s UTC\n", h.Sprint("vrrpdoctor check"), r.Node, r.Time.UTC().Format("2006-01-02 15:04:05"))
	switch r.Config.Source {
	case "none":
		fmt.Fprintln(bw, "  configuration: none (instance from -i/--vrid)")
	default:
		fmt.Fprintf(bw, "  configuration: %s (%s)\n", r.Config.Path, map[string]string{"flag": "-c", "process": "read by the running daemon", "default": "default"}[r.Config.Source])
		if n := r.Config.Unused; n > 0 {
			fmt.Fprintf(bw, "                 %d %s read past: not used by VRRP or unknown to keepalived (vrrpdoctor run --check-config -c %s lists them)\n", n, plural(n, "keyword", "keywords"), r.Config.Path)
		}
	}
	if len(r.Processes) == 0 {
		fmt.Fprintln(bw, "  VRRP daemons:  none in this network namespace")
	} else {
		fmt.Fprintf(bw, "  VRRP daemons:  %s\n", processList(r.Processes))
	}
	if r.Capture != nil && r.Capture.Duration > 0 {
		var names []string
		for _, c := range r.Capture.Interfaces {
			if c.Error == "" {
				names = append(names, c.Name)
			}
		}
		fmt.Fprintf(bw, "  watched:       %s for %s (wire tap and VRRP socket tap)\n", strings.Join(names, ", "), secs(r.Capture.Duration))
	}
	if f := r.Firewall; f != nil {
		var bs []string
		for _, b := range f.Backends {
			bs = append(bs, string(b))
		}
		line := orNone(strings.Join(bs, ", "))
		if fd := f.Firewalld; fd != nil {
			line += fmt.Sprintf("; firewalld %s (%s backend, default zone %s)", fd.Version, fd.Backend, fd.DefaultZone)
		}
		fmt.Fprintf(bw, "  firewall:      %s\n", line)
	}
	for i := range r.Instances {
		writeInstance(bw, r, &r.Instances[i], h)
	}
	fmt.Fprintln(bw)
	if err := bw.Flush(); err != nil {
		return err
	}
	if len(r.Findings) > 0 {
		fmt.Fprintln(w, h.Sprint("Findings"))
		if err := diag.WriteFindings(w, r.Findings, colour); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	if len(r.Skipped) > 0 {
		fmt.Fprintln(w, h.Sprint("Not checked"))
		for _, s := range r.Skipped {
			fmt.Fprintf(w, "  - %s\n", s)
		}
		fmt.Fprintln(w)
	}
	return diag.WriteStatus(w, r.ExitCode, r.Findings, colour)
}

// WriteNagios writes the monitoring-plugin output: one line with the status,
// the worst finding's summary (and how many more there are), and perfdata
// per instance — adverts this node sent, peers' adverts seen on the wire and
// delivered to the socket, virtual addresses held — and the watch time.
func WriteNagios(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "VRRP %s - ", strings.ToUpper(r.Status))
	var shown []diag.Finding
	for _, f := range r.Findings {
		if f.Severity >= diag.SeverityWarning {
			shown = append(shown, f)
		}
	}
	switch {
	case len(shown) > 0:
		b.WriteString(oneLine(shown[0].ID + ": " + shown[0].Summary))
		if len(shown) > 1 {
			fmt.Fprintf(&b, " (+%d more: %s)", len(shown)-1, idList(shown[1:]))
		}
	case r.ExitCode == diag.ExitUnknown && len(r.Skipped) > 0:
		b.WriteString(oneLine(r.Skipped[0]))
	case len(r.Findings) > 0:
		b.WriteString(oneLine(r.Findings[0].Summary))
	default:
		b.WriteString("no VRRP instance checked")
	}
	b.WriteString(" |")
	for _, in := range r.Instances {
		prefix := fmt.Sprintf("vrid%d_%s_ipv%d_", in.VRID, perfName(in.Interface), in.Family)
		var sent, wire, socket uint64
		if in.Local != nil {
			sent = in.Local.Adverts
		}
		for _, p := range in.Peers {
			wire += p.Adverts
			socket += p.Socket
		}
		fmt.Fprintf(&b, " %ssent=%d %speer_wire=%d %speer_socket=%d %svips_held=%d;;;0;%d", prefix, sent, prefix, wire, prefix, socket, prefix, len(in.Held), len(in.VIPs))
	}
	fmt.Fprintf(&b, " watch=%.3fs\n", r.captureDuration())
	_, err := io.WriteString(w, b.String())
	return err
}

// oneLine keeps text to one line without the characters plugin output
// reserves ('|' starts perfdata).
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", "/")
}

func idList(fs []diag.Finding) string {
	var ids []string
	for _, f := range fs {
		if !slices.Contains(ids, f.ID) {
			ids = append(ids, f.ID)
		}
	}
	return strings.Join(ids, ", ")
}

// perfName keeps letters, digits and '_' of an interface name for a
// perfdata label (no quoting needed).
func perfName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

func writeInstance(w *bufio.Writer, r *Report, in *Instance, h *color.Color) {
	fmt.Fprintln(w)
	head := in.Subject()
	if in.Name != "" {
		head = in.Name + ": " + head
	}
	fmt.Fprintln(w, h.Sprint(head))
	row := func(label, format string, args ...any) {
		fmt.Fprintf(w, "  %-14s %s\n", label, fmt.Sprintf(format, args...))
	}
	if in.Priority != 0 {
		mode := "multicast to " + in.Group.String()
		if in.Unicast {
			mode = "unicast to " + peerList(in.UnicastPeers)
		}
		row("configured", "priority %d, advert_int %s, %s, virtual addresses %s", in.Priority, secs2(in.AdvertInt), mode, addrs(in.VIPs))
	}
	if !in.Observed {
		row("this node", "not observed (no capture on %s)", in.Interface)
	} else if in.Sending() {
		row("this node", "MASTER: %d adverts sent at priority %d from %s", in.Local.Adverts, in.Local.Priority, in.Local.Address)
	} else {
		row("this node", "not advertising (backup, or not running)")
	}
	row("VIPs held", "%s", orNone(heldList(in.Held)))
	for _, p := range in.Peers {
		row("peer", "%s: %d adverts at priority %d on the wire, %d at the VRRP socket", p.Address, p.Adverts, p.Priority, p.Socket)
	}
	if in.Observed && len(in.Peers) == 0 {
		row("peers", "none heard")
	}
	for _, v := range slices.Concat(in.FirewallIn, in.FirewallOut) {
		what := strings.ToUpper(string(v.Verdict))
		switch {
		case v.Verdict == eval.Unknown:
			what += " (" + v.UnknownReason + ")"
		case v.Rule != nil && v.Verdict != eval.Accept:
			what += " by " + ruleDesc(v, r.fwdOrNil())
		}
		row("firewall "+string(v.Direction), "%s → %s: %s", srcName(v.Src), v.Dst, what)
	}
}

func (r *Report) fwdOrNil() *Firewalld {
	if r.Firewall == nil {
		return nil
	}
	return r.Firewall.Firewalld
}
