package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/vrrpdoctor/vrrpdoctor/capture"
	"github.com/vrrpdoctor/vrrpdoctor/capture/hostfacts"
)

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

const clockFormat = "15:04:05.000"

// liveTable shows the flows while the capture runs: redrawn in place on a
// terminal, as plain lines for the flows that changed otherwise.
type liveTable struct {
	out   io.Writer
	tty   bool
	lines int                           // lines drawn last time (tty)
	seen  map[capture.FlowKey][3]uint64 // wire, socket and send counts last printed (pipe)
}

func (l *liveTable) update(st capture.SessionStats) {
	if !l.tty {
		if l.seen == nil {
			l.seen = make(map[capture.FlowKey][3]uint64)
		}
		for _, f := range st.Flows {
			n := [3]uint64{f.Wire.Packets, f.Socket.Packets, f.Sends}
			if old, ok := l.seen[f.FlowKey]; ok && old == n {
				continue
			}
			l.seen[f.FlowKey] = n
			fmt.Fprintf(l.out, "%s %s\n", st.Now.Format(clockFormat), flowLine(f))
		}
		return
	}
	var b strings.Builder
	writeFlowTable(&b, st)
	fmt.Fprintf(&b, "%d frames on the wire, %d dropped by the kernel; %s elapsed\n", st.Frames, st.Wire.Dropped, st.Now.Sub(st.Start).Round(time.Second))
	text := b.String()
	if l.lines > 0 {
		fmt.Fprintf(l.out, "\x1b[%dA\x1b[J", l.lines)
	}
	io.WriteString(l.out, text)
	l.lines = strings.Count(text, "\n")
}

// clear removes the live table from a terminal.
func (l *liveTable) clear() {
	if l.tty && l.lines > 0 {
		fmt.Fprintf(l.out, "\x1b[%dA\x1b[J", l.lines)
		l.lines = 0
	}
}

func dirName(d capture.Direction) string {
	if d == capture.DirOut {
		return "out"
	}
	return "in"
}

// flowLine is one flow on one line, for pipes.
func flowLine(f capture.FlowStats) string {
	s := fmt.Sprintf("%s IPv%d VRID %d %s prio %d: wire %d", dirName(f.Direction), f.Family, f.VRID, f.Sender, f.Priority, f.Wire.Packets)
	if f.Direction == capture.DirIn {
		s += fmt.Sprintf(" socket %d delivered %s", f.Socket.Packets, ratio(f))
	} else if f.Sends > 0 {
		s += fmt.Sprintf(" sends %d failed %d", f.Sends, f.SendErrors)
	}
	return s
}

func ratio(f capture.FlowStats) string {
	r, ok := f.DeliveryRatio()
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*r)
}

func durationShort(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	if d >= time.Second {
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

// writeFlowTable writes the table of flows.
func writeFlowTable(w io.Writer, st capture.SessionStats) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DIR\tFAM\tVRID\tSENDER\tVER\tPRIO\tINTERVAL\tWIRE\tSOCKET\tDELIVERED\tNOT DELIVERED\tGAP AVG\tLAST SEEN")
	if len(st.Flows) == 0 {
		fmt.Fprintln(tw, "-\t-\t-\t(no VRRP adverts yet)\t\t\t\t\t\t\t\t\t")
	}
	for _, f := range st.Flows {
		socket, lost := fmt.Sprint(f.Socket.Packets), fmt.Sprint(f.Lost)
		if f.Direction == capture.DirOut {
			socket, lost = "-", "-"
		}
		last := f.Wire.Last
		if f.Socket.Last.After(last) {
			last = f.Socket.Last
		}
		fmt.Fprintf(tw, "%s\tIPv%d\t%d\t%s\t%d\t%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n",
			dirName(f.Direction), f.Family, f.VRID, f.Sender, f.Version, f.Priority, durationShort(f.Interval),
			f.Wire.Packets, socket, ratio(f), lost, durationShort(f.Wire.MeanGap()), last.Format(clockFormat))
	}
	tw.Flush()
}

// writeCaptureSummary writes the final report.
func writeCaptureSummary(w io.Writer, st capture.SessionStats, facts *hostfacts.Facts, pcapng string) error {
	bw := &errWriter{w: w}
	fmt.Fprintf(bw, "VRRP on %s for %s (%s to %s)\n", st.Interface, st.Now.Sub(st.Start).Round(100*time.Millisecond), st.Start.Format(clockFormat), st.Now.Format(clockFormat))
	fmt.Fprintf(bw, "wire tap: %d frames, %d dropped by the kernel", st.Frames, st.Wire.Dropped)
	for _, so := range st.Sockets {
		if so.Open {
			fmt.Fprintf(bw, "; IPv%d socket: %d received, %d dropped", so.Family, so.Stats.Received, so.Stats.Dropped)
		} else {
			fmt.Fprintf(bw, "; IPv%d socket not open: %s", so.Family, so.Error)
		}
	}
	fmt.Fprintln(bw)
	if pcapng != "" {
		fmt.Fprintf(bw, "wire tap written to %s\n", pcapng)
	}
	if st.Undecodable > 0 {
		fmt.Fprintf(bw, "%d VRRP packets did not decode; the latest: %s\n", st.Undecodable, st.LastUndecodable)
	}
	fmt.Fprintln(bw)
	writeFlowTable(bw, st)

	var checks map[netip.Addr]hostfacts.SenderCheck
	if facts != nil {
		checks = make(map[netip.Addr]hostfacts.SenderCheck)
		for _, c := range facts.Senders {
			checks[c.Sender] = c
		}
	}
	var notes []string
	for _, f := range st.Flows {
		switch {
		case f.Direction == capture.DirIn && f.Lost > 0:
			n := fmt.Sprintf("%d of %d adverts from %s (VRID %d) reached the wire and never the socket", f.Lost, f.Lost+f.Matched, f.Sender, f.VRID)
			if f.Matched == 0 {
				n = fmt.Sprintf("none of the %d adverts from %s (VRID %d) that reached the wire reached the socket", f.Lost, f.Sender, f.VRID)
			}
			n += ": " + lossCause(f, checks, facts, st)
			notes = append(notes, n)
		case f.Direction == capture.DirOut && f.SendErrors > 0:
			notes = append(notes, fmt.Sprintf("%d of %d adverts for VRID %d from %s could not be sent (%s)%s; %d left on the wire",
				f.SendErrors, f.Sends, f.VRID, f.Sender, f.LastSendError, eperm(f.LastSendError), f.SentOnWire))
		case f.Direction == capture.DirOut && f.SentMissing > 0:
			notes = append(notes, fmt.Sprintf("%d adverts for VRID %d from %s were sent but never appeared on the wire", f.SentMissing, f.VRID, f.Sender))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(bw)
		for _, n := range notes {
			fmt.Fprintf(bw, "- %s\n", n)
		}
	}
	if st.EventCount > 0 {
		fmt.Fprintf(bw, "\nlatest events (%d in all):\n", st.EventCount)
		evs := st.Events
		if len(evs) > 10 {
			evs = evs[len(evs)-10:]
		}
		for _, e := range evs {
			fmt.Fprintf(bw, "  %s %s %s VRID %d %s", e.Time.Format(clockFormat), e.Kind, dirName(e.Flow.Direction), e.Flow.VRID, e.Flow.Sender)
			switch {
			case e.Kind == capture.EventSendFailed:
				fmt.Fprintf(bw, ": %s", e.Err)
			case e.Flow.Family == 4:
				fmt.Fprintf(bw, " IP ID %d", e.IPID)
			case e.Kind == capture.EventNotDelivered:
				fmt.Fprintf(bw, " flow label %#x", e.FlowLabel)
			}
			if e.BadChecksum {
				fmt.Fprint(bw, " (bad checksum)")
			}
			fmt.Fprintln(bw)
		}
	}
	if facts != nil {
		fmt.Fprintln(bw)
		writeHostFacts(bw, facts)
	}
	return bw.err
}

func eperm(msg string) string {
	if msg == "operation not permitted" {
		return ": a netfilter OUTPUT rule drops VRRP"
	}
	return ""
}

// lossCause explains, as far as the host facts tell, why adverts from a
// sender stop between the wire and the socket.
func lossCause(f capture.FlowStats, checks map[netip.Addr]hostfacts.SenderCheck, facts *hostfacts.Facts, st capture.SessionStats) string {
	if c, ok := checks[f.Sender]; ok && c.RPFilterDrop {
		back := "there is no route back to it"
		if c.RouteBack != "" {
			back = "the route back to it uses " + c.RouteBack
		}
		return fmt.Sprintf("rp_filter (%s on %s) drops them: %s", hostfacts.Mode(facts.RPFilter.Effective), st.Interface, back)
	}
	for _, so := range st.Sockets {
		if so.Open && so.Family == f.Family && so.Stats.Dropped > 0 {
			return fmt.Sprintf("the socket's receive buffer overflowed (%d drops)", so.Stats.Dropped)
		}
	}
	if f.Wire.BadChecksum == f.Lost && f.Family == 6 {
		return "their checksum is wrong and the kernel drops them (IPV6_CHECKSUM)"
	}
	return "a netfilter rule drops them (raw or mangle PREROUTING, filter INPUT)"
}

func writeHostFacts(w io.Writer, f *hostfacts.Facts) {
	i := f.Interface
	var flags []string
	for _, fl := range []struct {
		on   bool
		name string
	}{{i.Up, "UP"}, {i.LowerUp, "LOWER_UP"}, {i.Multicast, "MULTICAST"}, {i.Promisc, "PROMISC"}} {
		if fl.on {
			flags = append(flags, fl.name)
		}
	}
	fmt.Fprintf(w, "host: %s <%s> mtu %d state %s", i.Name, strings.Join(flags, ","), i.MTU, i.OperState)
	for _, a := range i.Addrs {
		fmt.Fprintf(w, " %s", a)
	}
	fmt.Fprintln(w)
	if !i.Up || !i.LowerUp {
		fmt.Fprintf(w, "  %s is down or has no carrier: nothing is received\n", i.Name)
	}
	if !i.Multicast {
		fmt.Fprintf(w, "  %s has no MULTICAST flag: VRRP multicast is not received\n", i.Name)
	}
	var groups []string
	for _, m := range f.Memberships {
		groups = append(groups, fmt.Sprintf("%s (%d)", m.Group, m.Users))
	}
	fmt.Fprintf(w, "  groups joined: %s\n", strings.Join(groups, " "))
	if !f.JoinedVRRP4 && !f.JoinedVRRP6 {
		fmt.Fprintf(w, "  no socket on this host has joined 224.0.0.18 or ff02::12 on %s: a VRRP daemon there would not get multicast adverts\n", i.Name)
	}
	r := f.RPFilter
	fmt.Fprintf(w, "  rp_filter: %s (all %d, default %d, %s %d)\n", hostfacts.Mode(r.Effective), r.All, r.Default, i.Name, r.Interface)
	for _, c := range f.Senders {
		back := "no route back"
		if c.RouteBack != "" {
			back = "route back through " + c.RouteBack
		}
		verdict := "accepted by input routing"
		if !c.Accepted {
			verdict = "refused by input routing (" + c.Reason + ")"
			if c.RPFilterDrop {
				verdict = "dropped by rp_filter (" + c.Reason + ")"
			}
		}
		fmt.Fprintf(w, "  sender %s: %s, %s\n", c.Sender, back, verdict)
	}
	t := f.Tables
	fmt.Fprintf(w, "  nftables tables: %s\n", orNone(t.Nft))
	if len(t.Legacy4)+len(t.Legacy6) > 0 {
		fmt.Fprintf(w, "  iptables-legacy tables: IPv4 %s, IPv6 %s", orNone(t.Legacy4), orNone(t.Legacy6))
		if t.LegacyBesideNft() {
			fmt.Fprint(w, " (beside nftables: a packet must pass both)")
		}
		fmt.Fprintln(w)
	}
	var ka []string
	for _, p := range f.Keepalived {
		if p.Parent && (p.SameNetns || !p.SameNetnsKnown) {
			s := fmt.Sprintf("pid %d config %s", p.PID, p.Config)
			if p.Namespace != "" {
				s += " namespace " + p.Namespace
			}
			ka = append(ka, s)
		}
	}
	fmt.Fprintf(w, "  keepalived in this network namespace: %s\n", orNone(ka))
	for _, p := range f.Problems {
		fmt.Fprintf(w, "  (could not read: %s)\n", p)
	}
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// errWriter remembers the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

// JSON form of the capture summary.

type captureJSON struct {
	Interface     string       `json:"interface"`
	Start         time.Time    `json:"start"`
	End           time.Time    `json:"end"`
	Seconds       float64      `json:"seconds"`
	Wire          wireJSON     `json:"wire"`
	Sockets       []socketJSON `json:"sockets"`
	Flows         []flowJSON   `json:"flows"`
	Events        []eventJSON  `json:"events"`
	EventCount    uint64       `json:"event_count"`
	Undecodable   uint64       `json:"undecodable"`
	LastUndecoded string       `json:"last_undecodable,omitempty"`
	HostJSON      *hostJSON    `json:"host,omitempty"`
}

type wireJSON struct {
	Frames   uint64 `json:"frames"`
	Received uint64 `json:"kernel_received"`
	Dropped  uint64 `json:"kernel_dropped"`
}

type socketJSON struct {
	Family   uint8  `json:"family"`
	Open     bool   `json:"open"`
	Error    string `json:"error,omitempty"`
	Received uint64 `json:"received"`
	Dropped  uint64 `json:"dropped"`
}

type tapJSON struct {
	Packets     uint64     `json:"packets"`
	BadChecksum uint64     `json:"bad_checksum"`
	First       *time.Time `json:"first,omitempty"`
	Last        *time.Time `json:"last,omitempty"`
	GapMinMs    float64    `json:"gap_min_ms"`
	GapMeanMs   float64    `json:"gap_mean_ms"`
	GapMaxMs    float64    `json:"gap_max_ms"`
}

type flowJSON struct {
	Direction     string   `json:"direction"`
	Family        uint8    `json:"family"`
	VRID          uint8    `json:"vrid"`
	Sender        string   `json:"sender"`
	Version       uint8    `json:"version"`
	Priority      uint8    `json:"priority"`
	IntervalMs    float64  `json:"interval_ms"`
	Wire          tapJSON  `json:"wire"`
	Socket        tapJSON  `json:"socket"`
	Matched       uint64   `json:"matched"`
	NotDelivered  uint64   `json:"not_delivered"`
	SocketOnly    uint64   `json:"socket_only"`
	Pending       int      `json:"pending"`
	DeliveryRatio *float64 `json:"delivery_ratio"`
	Sends         uint64   `json:"sends"`
	SendErrors    uint64   `json:"send_errors"`
	LastSendError string   `json:"last_send_error,omitempty"`
	SentOnWire    uint64   `json:"sent_on_wire"`
	SentMissing   uint64   `json:"sent_missing"`
}

type eventJSON struct {
	Kind        string    `json:"kind"`
	Time        time.Time `json:"time"`
	Direction   string    `json:"direction"`
	Family      uint8     `json:"family"`
	VRID        uint8     `json:"vrid"`
	Sender      string    `json:"sender"`
	Destination string    `json:"destination,omitempty"`
	IPID        uint16    `json:"ip_id,omitempty"`
	FlowLabel   uint32    `json:"flow_label,omitempty"`
	Checksum    uint16    `json:"checksum,omitempty"`
	BadChecksum bool      `json:"bad_checksum,omitempty"`
	Error       string    `json:"error,omitempty"`
}

type hostJSON struct {
	Interface struct {
		Name      string   `json:"name"`
		Index     int      `json:"index"`
		MTU       int      `json:"mtu"`
		MAC       string   `json:"mac"`
		Up        bool     `json:"up"`
		LowerUp   bool     `json:"lower_up"`
		Multicast bool     `json:"multicast"`
		Promisc   bool     `json:"promisc"`
		OperState string   `json:"oper_state"`
		Addresses []string `json:"addresses"`
	} `json:"interface"`
	Groups      []string `json:"groups"`
	JoinedVRRP4 bool     `json:"joined_vrrp4"`
	JoinedVRRP6 bool     `json:"joined_vrrp6"`
	RPFilter    struct {
		All       int    `json:"all"`
		Default   int    `json:"default"`
		Interface int    `json:"interface"`
		Effective int    `json:"effective"`
		Mode      string `json:"mode"`
	} `json:"rp_filter"`
	Senders []senderJSON `json:"senders"`
	Tables  struct {
		Legacy4         []string `json:"iptables_legacy_ipv4"`
		Legacy6         []string `json:"iptables_legacy_ipv6"`
		Nft             []string `json:"nftables"`
		LegacyBesideNft bool     `json:"legacy_beside_nftables"`
	} `json:"tables"`
	Keepalived []keepalivedJSON `json:"keepalived"`
	Problems   []string         `json:"problems,omitempty"`
}

type senderJSON struct {
	Sender        string `json:"sender"`
	RouteBack     string `json:"route_back"`
	ReversePathOK bool   `json:"reverse_path_ok"`
	Accepted      bool   `json:"accepted"`
	Reason        string `json:"reason,omitempty"`
	RPFilterDrop  bool   `json:"rp_filter_drop"`
}

type keepalivedJSON struct {
	PID       int    `json:"pid"`
	PPID      int    `json:"ppid"`
	Parent    bool   `json:"parent"`
	Config    string `json:"config"`
	Namespace string `json:"namespace,omitempty"`
	SameNetns *bool  `json:"same_netns"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func tapToJSON(c capture.TapCount) tapJSON {
	t := tapJSON{Packets: c.Packets, BadChecksum: c.BadChecksum, GapMinMs: ms(c.MinGap), GapMeanMs: ms(c.MeanGap()), GapMaxMs: ms(c.MaxGap)}
	if c.Packets > 0 {
		first, last := c.First, c.Last
		t.First, t.Last = &first, &last
	}
	return t
}

func strs[T fmt.Stringer](v []T) []string {
	out := make([]string, 0, len(v))
	for _, x := range v {
		out = append(out, x.String())
	}
	return out
}

func captureToJSON(st capture.SessionStats, facts *hostfacts.Facts) captureJSON {
	j := captureJSON{
		Interface: st.Interface, Start: st.Start, End: st.Now, Seconds: st.Now.Sub(st.Start).Seconds(),
		Wire:       wireJSON{Frames: st.Frames, Received: st.Wire.Received, Dropped: st.Wire.Dropped},
		Sockets:    []socketJSON{},
		Flows:      []flowJSON{},
		Events:     []eventJSON{},
		EventCount: st.EventCount, Undecodable: st.Undecodable, LastUndecoded: st.LastUndecodable,
	}
	for _, s := range st.Sockets {
		j.Sockets = append(j.Sockets, socketJSON{Family: s.Family, Open: s.Open, Error: s.Error, Received: s.Stats.Received, Dropped: s.Stats.Dropped})
	}
	for _, f := range st.Flows {
		fj := flowJSON{
			Direction: dirName(f.Direction), Family: f.Family, VRID: f.VRID, Sender: f.Sender.String(), Version: f.Version, Priority: f.Priority,
			IntervalMs: ms(f.Interval), Wire: tapToJSON(f.Wire), Socket: tapToJSON(f.Socket),
			Matched: f.Matched, NotDelivered: f.Lost, SocketOnly: f.SocketOnly, Pending: f.Pending,
			Sends: f.Sends, SendErrors: f.SendErrors, LastSendError: f.LastSendError, SentOnWire: f.SentOnWire, SentMissing: f.SentMissing,
		}
		if r, ok := f.DeliveryRatio(); ok {
			fj.DeliveryRatio = &r
		}
		j.Flows = append(j.Flows, fj)
	}
	for _, e := range st.Events {
		ej := eventJSON{Kind: e.Kind.String(), Time: e.Time, Direction: dirName(e.Flow.Direction), Family: e.Flow.Family, VRID: e.Flow.VRID,
			Sender: e.Flow.Sender.String(), IPID: e.IPID, FlowLabel: e.FlowLabel, Checksum: e.Checksum, BadChecksum: e.BadChecksum, Error: e.Err}
		if e.Dst.IsValid() {
			ej.Destination = e.Dst.String()
		}
		j.Events = append(j.Events, ej)
	}
	if facts != nil {
		h := &hostJSON{}
		i := facts.Interface
		h.Interface.Name, h.Interface.Index, h.Interface.MTU, h.Interface.MAC = i.Name, i.Index, i.MTU, i.MAC
		h.Interface.Up, h.Interface.LowerUp, h.Interface.Multicast, h.Interface.Promisc, h.Interface.OperState = i.Up, i.LowerUp, i.Multicast, i.Promisc, i.OperState
		h.Interface.Addresses = strs(i.Addrs)
		h.Groups = []string{}
		for _, m := range facts.Memberships {
			h.Groups = append(h.Groups, m.Group.String())
		}
		h.JoinedVRRP4, h.JoinedVRRP6 = facts.JoinedVRRP4, facts.JoinedVRRP6
		r := facts.RPFilter
		h.RPFilter.All, h.RPFilter.Default, h.RPFilter.Interface, h.RPFilter.Effective, h.RPFilter.Mode = r.All, r.Default, r.Interface, r.Effective, hostfacts.Mode(r.Effective)
		h.Senders = []senderJSON{}
		for _, c := range facts.Senders {
			h.Senders = append(h.Senders, senderJSON{Sender: c.Sender.String(), RouteBack: c.RouteBack, ReversePathOK: c.ReversePathOK, Accepted: c.Accepted, Reason: c.Reason, RPFilterDrop: c.RPFilterDrop})
		}
		t := facts.Tables
		h.Tables.Legacy4, h.Tables.Legacy6, h.Tables.Nft = nonNil(t.Legacy4), nonNil(t.Legacy6), nonNil(t.Nft)
		h.Tables.LegacyBesideNft = t.LegacyBesideNft()
		h.Keepalived = []keepalivedJSON{}
		for _, p := range facts.Keepalived {
			kj := keepalivedJSON{PID: p.PID, PPID: p.PPID, Parent: p.Parent, Config: p.Config, Namespace: p.Namespace}
			if p.SameNetnsKnown {
				same := p.SameNetns
				kj.SameNetns = &same
			}
			h.Keepalived = append(h.Keepalived, kj)
		}
		h.Problems = facts.Problems
		j.HostJSON = h
	}
	return j
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

func writeCaptureJSON(w io.Writer, st capture.SessionStats, facts *hostfacts.Facts) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(captureToJSON(st, facts))
}
