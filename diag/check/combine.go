package check

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/vrrpdoctor/vrrpdoctor/diag"
)

// CombinedSchema identifies the JSON document of a combined report.
const CombinedSchema = "vrrpdoctor-check-combined/1"

// IDVRIDMismatch is a virtual router configured on one node of a pair only.
const IDVRIDMismatch = "vrid-mismatch"

// Combined is the cluster verdict from two nodes' reports.
type Combined struct {
	Schema   string        `json:"schema"`
	Status   string        `json:"status"`
	ExitCode int           `json:"exit_code"`
	Nodes    []NodeSummary `json:"nodes"`
	// Windows compares the two nodes' watches; nil when a node's taps did
	// not run.
	Windows *Windows `json:"windows,omitempty"`
	// Notes are what to know before reading the findings: watches that do
	// not line up, two reports of one node, reports of different virtual
	// routers or configurations.
	Notes []string `json:"notes"`
	// Findings has one finding per fault of the pair, then each node's own
	// warnings and criticals that no pair finding covers.
	Findings []CombinedFinding `json:"findings"`
}

// NodeSummary names one node of a combined report and its own verdict.
type NodeSummary struct {
	Label    string `json:"label"`
	Node     string `json:"node"`
	Time     string `json:"time"`
	Status   string `json:"status"`
	ExitCode int    `json:"exit_code"`
	// WatchS is how long the node's taps watched, from about Time (0: they
	// did not run).
	WatchS float64 `json:"watch_s"`
}

// Windows compares the two nodes' watches (each from its report's time for
// its capture duration).
type Windows struct {
	// OverlapS is how long both watched at once, From and To when.
	OverlapS float64   `json:"overlap_s"`
	From     time.Time `json:"from,omitzero"`
	To       time.Time `json:"to,omitzero"`
	// GapS is the time between the end of the earlier watch and the start
	// of the later one when they do not overlap.
	GapS float64 `json:"gap_s"`
	// Comparable says the watches overlap for at least 80% of the longer
	// one, so the two reports' counts cover nearly the same adverts. When
	// false the text shows each count with its rate per second.
	Comparable bool `json:"comparable"`
}

// CombinedFinding is a finding of a combined report.
type CombinedFinding struct {
	diag.Finding
	// Node is the label of the node whose own finding this is; empty for a
	// finding about the pair.
	Node string `json:"node,omitempty"`
	// Covers lists the nodes' own findings that describe the same fault as
	// this one, as "label: id"; they are not repeated in the list.
	Covers []string `json:"covers,omitempty"`

	// absorbs are the node findings this pair finding stands for.
	absorbs []nodeKey
}

// nodeKey names one node's finding: the node's label, the finding's ID
// and the subject as that node wrote it.
type nodeKey struct{ label, id, subject string }

type side struct {
	label string
	r     *Report
	in    *Instance
	// win is the comparison of the watches (nil: a node has none).
	win *Windows
}

// Combine puts two nodes' reports side by side: for every virtual router
// both configure, who is master, which side drops whose adverts and every
// configuration difference that matters; and the nodes' own warnings and
// critical findings, labelled with the node. Worst first; at equal
// severity the pair's before the nodes' own.
//
// The nodes' own findings that describe the same fault as a pair finding
// (both nodes' split-brain, the firewall drop that causes it, the same
// configuration difference seen from each side) are folded into it and
// named in its Covers. Notes say when the two watches do not line up, when
// both reports come from one node, and when they describe different
// virtual routers or configurations.
func Combine(a, b *Report) *Combined {
	la, lb := a.Node, b.Node
	if la == lb || la == "" || lb == "" {
		la, lb = labelWithAddr(a), labelWithAddr(b)
	}
	same := sameNode(a, b)
	if same && la == lb {
		la, lb = la+" #1", lb+" #2"
	}
	c := &Combined{Schema: CombinedSchema, Notes: []string{}, Findings: []CombinedFinding{}}
	for _, x := range []struct {
		l string
		r *Report
	}{{la, a}, {lb, b}} {
		c.Nodes = append(c.Nodes, NodeSummary{Label: x.l, Node: x.r.Node, Time: x.r.Time.UTC().Format("2006-01-02T15:04:05Z"), Status: x.r.Status, ExitCode: x.r.ExitCode, WatchS: x.r.captureDuration()})
	}
	c.Windows = compareWindows(a, b)
	var fs []CombinedFinding
	if same {
		name := a.Node
		if as := nodeAddrs(a); len(as) > 0 && name != "" {
			name += " (" + addrs(as) + ")"
		} else if len(as) > 0 {
			name = addrs(as)
		}
		c.Notes = append(c.Notes, fmt.Sprintf("Both reports come from the same node, %s: a verdict on the pair needs one report from each node. Each report's own findings follow; the status is at least UNKNOWN.", name))
	} else {
		c.Notes = append(c.Notes, windowNotes(la, lb, a, b, c.Windows)...)
		fs = pairFindings(la, lb, a, b, c)
	}
	// The pair's verdicts and each node's own problems that no pair
	// finding covers, worst first.
	var own []CombinedFinding
	for _, x := range []struct {
		l string
		r *Report
	}{{la, a}, {lb, b}} {
		for _, f := range x.r.Findings {
			if f.Severity < diag.SeverityWarning {
				continue
			}
			if i := slices.IndexFunc(fs, func(p CombinedFinding) bool { return slices.Contains(p.absorbs, nodeKey{x.l, f.ID, f.Subject}) }); i >= 0 {
				fs[i].Covers = append(fs[i].Covers, x.l+": "+f.ID)
				fs[i].Severity = max(fs[i].Severity, f.Severity)
				continue
			}
			f.Subject = strings.TrimSpace(x.l + ": " + f.Subject)
			own = append(own, CombinedFinding{Finding: f, Node: x.l})
		}
	}
	for i := range fs {
		if len(fs[i].Covers) > 0 {
			fs[i].Evidence = append(fs[i].Evidence, diag.Evidence{Label: "the nodes' own findings", Value: strings.Join(fs[i].Covers, ", ") + " (the same fault: not repeated below)"})
		}
	}
	c.Findings = append(append(c.Findings, fs...), own...)
	sortCombined(c.Findings)
	all := make([]diag.Finding, len(c.Findings))
	for i := range c.Findings {
		all[i] = c.Findings[i].Finding
	}
	code := diag.MaxSeverity(all).ExitCode()
	if code != diag.ExitCritical && (a.ExitCode == diag.ExitUnknown || b.ExitCode == diag.ExitUnknown || same) {
		code = diag.ExitUnknown
	}
	c.ExitCode, c.Status = code, diag.StatusName(code)
	return c
}

// sortCombined orders findings worst first; at equal severity the pair's
// before the nodes' own, then by ID, keeping the order among equals.
func sortCombined(fs []CombinedFinding) {
	slices.SortStableFunc(fs, func(x, y CombinedFinding) int {
		if x.Severity != y.Severity {
			return int(y.Severity) - int(x.Severity)
		}
		if (x.Node == "") != (y.Node == "") {
			if x.Node == "" {
				return -1
			}
			return 1
		}
		return strings.Compare(x.ID, y.ID)
	})
}

// pairFindings judges the pair: for every virtual router both configure,
// the configuration differences and who is master and why; a virtual
// router on one node only. It adds a note when the nodes share no virtual
// router or configure one differently.
func pairFindings(la, lb string, a, b *Report, c *Combined) []CombinedFinding {
	var fs []CombinedFinding
	common := 0
	for i := range a.Instances {
		ia := &a.Instances[i]
		ib := b.instance(ia.VRID, ia.Family)
		if ib == nil {
			fs = append(fs, CombinedFinding{Finding: onlyOn(la, lb, ia)})
			continue
		}
		common++
		sa, sb := side{la, a, ia, c.Windows}, side{lb, b, ib, c.Windows}
		diffs := configDiffs(sa, sb)
		if !slices.ContainsFunc(diffs, func(d diag.Finding) bool { return d.ID == IDAuthMismatch }) {
			if d := passwordDiff(sa, sb); d != nil {
				diffs = append(diffs, *d)
			}
		}
		var differ []string
		for _, d := range diffs {
			fs = append(fs, CombinedFinding{Finding: d, absorbs: []nodeKey{{la, d.ID, ia.Subject()}, {lb, d.ID, ib.Subject()}}})
			if w := configAspect[d.ID]; w != "" && !slices.Contains(differ, w) {
				differ = append(differ, w)
			}
		}
		if len(differ) > 0 {
			c.Notes = append(c.Notes, fmt.Sprintf("%s and %s configure VRID %d differently: %s (findings below).", la, lb, ia.VRID, strings.Join(differ, ", ")))
		}
		fs = append(fs, roles(sa, sb, diffs)...)
	}
	for i := range b.Instances {
		ib := &b.Instances[i]
		if a.instance(ib.VRID, ib.Family) == nil {
			fs = append(fs, CombinedFinding{Finding: onlyOn(lb, la, ib)})
		}
	}
	if common == 0 && len(a.Instances) > 0 && len(b.Instances) > 0 {
		c.Notes = append(c.Notes, fmt.Sprintf("The reports share no virtual router: %s runs %s, %s runs %s. Are they the two nodes of one pair?", la, vridList(a), lb, vridList(b)))
	}
	return fs
}

// passwordDiff is the pair's auth-mismatch when the VRRPv2 passwords differ:
// they are not in the reports, but a node's own check compares the one it
// receives with its own. nil when neither node saw a difference.
func passwordDiff(a, b side) *diag.Finding {
	var fa, fb *diag.Finding
	if a.in.Version == 2 || a.in.Version == 0 {
		fa = findingOf(a.r, a.in, IDAuthMismatch)
	}
	if b.in.Version == 2 || b.in.Version == 0 {
		fb = findingOf(b.r, b.in, IDAuthMismatch)
	}
	if fa == nil && fb == nil {
		return nil
	}
	var saw []string
	var ev []diag.Evidence
	f := fa
	for _, x := range []struct {
		s side
		f *diag.Finding
	}{{a, fa}, {b, fb}} {
		if x.f != nil {
			saw = append(saw, x.s.label)
			ev = append(ev, diag.Evidence{Label: x.s.label + "'s check", Value: x.f.Summary})
			if f == nil {
				f = x.f
			}
		}
	}
	// The nodes' own check tells a password from a type difference.
	what := "authentication"
	if strings.Contains(f.Summary, "password") {
		what = "password"
	}
	who := fmt.Sprintf("%s receives the other's adverts with another %s than its own", saw[0], what)
	if len(saw) == 2 {
		who = fmt.Sprintf("%s and %s each receive the other's adverts with another %s than their own", saw[0], saw[1], what)
	}
	return &diag.Finding{
		ID: IDAuthMismatch, Severity: f.Severity, Subject: a.in.Subject(),
		Summary:     "the VRRPv2 authentication differs: " + who,
		Evidence:    append(ev, diag.Evidence{Label: "note", Value: "passwords are not in the reports: each node's own check compared the password it received with its own"}),
		Explanation: f.Explanation,
		Fix:         f.Fix,
	}
}

// configAspect names what a configuration-difference finding is about, for
// the note at the top.
var configAspect = map[string]string{
	IDVersionMismatch:      "the VRRP version",
	IDIntervalMismatch:     "the advert interval",
	IDAuthMismatch:         "the authentication",
	IDVIPMismatch:          "the virtual addresses",
	IDUnicastPeerMisconfig: "unicast peers",
}

func vridList(r *Report) string {
	var s []string
	for _, in := range r.Instances {
		s = append(s, fmt.Sprintf("VRID %d (IPv%d)", in.VRID, in.Family))
	}
	return strings.Join(s, ", ")
}

// nodeAddrs lists the VRRP source addresses of a report's instances.
func nodeAddrs(r *Report) []netip.Addr {
	var as []netip.Addr
	for i := range r.Instances {
		if a := (side{r: r, in: &r.Instances[i]}).address(); a.IsValid() {
			as = append(as, a)
		}
	}
	return sortedAddrs(as)
}

// sameNode says both reports come from one node: they share a VRRP source
// address (two routers of a pair never do), or carry the same host name
// and no address tells them apart.
func sameNode(a, b *Report) bool {
	aa, ab := nodeAddrs(a), nodeAddrs(b)
	if slices.ContainsFunc(aa, func(x netip.Addr) bool { return slices.Contains(ab, x) }) {
		return true
	}
	return a.Node != "" && a.Node == b.Node && len(aa) == 0 && len(ab) == 0
}

// window is the report's watch: from its time for its capture duration.
func window(r *Report) (from, to time.Time, ok bool) {
	d := r.captureDuration()
	if d <= 0 {
		return time.Time{}, time.Time{}, false
	}
	from = r.Time.UTC()
	return from, from.Add(durationOf(d)), true
}

// compareWindows compares the two reports' watches; nil when one has none.
func compareWindows(a, b *Report) *Windows {
	fa, ta, oka := window(a)
	fb, tb, okb := window(b)
	if !oka || !okb {
		return nil
	}
	w := &Windows{}
	from, to := later(fa, fb), earlier(ta, tb)
	if to.After(from) {
		w.OverlapS, w.From, w.To = to.Sub(from).Seconds(), from, to
	} else {
		w.GapS = from.Sub(to).Seconds()
	}
	longest := max(ta.Sub(fa), tb.Sub(fb)).Seconds()
	w.Comparable = w.OverlapS >= 0.8*longest
	return w
}

func later(x, y time.Time) time.Time {
	if x.After(y) {
		return x
	}
	return y
}

func earlier(x, y time.Time) time.Time {
	if x.Before(y) {
		return x
	}
	return y
}

// windowNotes says over which interval the two reports' counts compare,
// or why they do not.
func windowNotes(la, lb string, a, b *Report, w *Windows) []string {
	fa, ta, oka := window(a)
	fb, tb, okb := window(b)
	switch {
	case !oka && !okb:
		return []string{"Neither node's taps ran: the verdicts below rest on configuration and addresses only."}
	case !oka || !okb:
		l := la
		if oka {
			l = lb
		}
		return []string{fmt.Sprintf("%s's taps did not run: what happens to the adverts between the nodes cannot be told.", l)}
	}
	date := fa.Format(time.DateOnly) != tb.Format(time.DateOnly) || fb.Format(time.DateOnly) != ta.Format(time.DateOnly)
	span := func(f, t time.Time) string {
		return fmt.Sprintf("%s–%s UTC (%s)", clock(f, date), clock(t, date), secs(t.Sub(f).Seconds()))
	}
	watched := fmt.Sprintf("%s watched %s, %s %s", la, span(fa, ta), lb, span(fb, tb))
	if w.Comparable {
		if span(fa, ta) == span(fb, tb) {
			return []string{fmt.Sprintf("Both nodes watched at the same time, %s: the counts below compare over that interval.", span(fa, ta))}
		}
		return []string{fmt.Sprintf("Both nodes watched at nearly the same time (%s): the counts below compare over the %s both watched, %s–%s UTC.",
			watched, secs(w.OverlapS), clock(w.From, date), clock(w.To, date))}
	}
	var why []string
	if w.OverlapS == 0 {
		first, second := la, lb
		if fb.Before(fa) {
			first, second = lb, la
		}
		why = append(why, fmt.Sprintf("%s's watch began %s after %s's ended", second, humanDuration(w.GapS), first))
	} else {
		why = append(why, fmt.Sprintf("the watches overlap for only %s", secs(w.OverlapS)))
	}
	da, db := ta.Sub(fa).Seconds(), tb.Sub(fb).Seconds()
	if max(da, db) >= 1.5*min(da, db) {
		why = append(why, "they differ in length")
	}
	notes := []string{fmt.Sprintf("The reports do not cover the same time: %s; %s. Each count below is from its own node's watch, with its rate per second: compare the rates; a difference between the two nodes' counts is not adverts lost between them.",
		watched, strings.Join(why, ", and "))}
	if w.GapS > 60 {
		notes = append(notes, fmt.Sprintf("The reports are %s apart: each shows its node at its own time, and the pair may have changed in between. For a verdict on the pair as it is now, run the check on both nodes at the same time.",
			humanDuration(w.GapS)))
	}
	return notes
}

// humanDuration formats seconds for people: "4.3 s", "12 min 5 s",
// "3 h 51 min".
func humanDuration(s float64) string {
	d := durationOf(s)
	switch {
	case d < time.Minute:
		return secs(s)
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%d min %d s", d/time.Minute, d%time.Minute/time.Second)
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%d h %d min", d/time.Hour, d%time.Hour/time.Minute)
}

// clock formats a time of day to a tenth of a second, with the date when
// the two watches are on different days.
func clock(t time.Time, date bool) string {
	if date {
		return t.Format("2006-01-02 15:04:05.0")
	}
	return t.Format("15:04:05.0")
}

// count says "n what in its D watch", with the rate per second when the two
// watches are not comparable.
func (s side) count(n uint64, what string) string {
	t := fmt.Sprintf("%d %s", n, what)
	d := s.r.captureDuration()
	if d <= 0 {
		return t
	}
	t += " in its " + secs(d) + " watch"
	if n > 0 && (s.win == nil || !s.win.Comparable) {
		t += fmt.Sprintf(" (%.1f/s)", float64(n)/d)
	}
	return t
}

func (r *Report) instance(vrid, family uint8) *Instance {
	for i := range r.Instances {
		if r.Instances[i].VRID == vrid && r.Instances[i].Family == family {
			return &r.Instances[i]
		}
	}
	return nil
}

// labelWithAddr names a node by its host name and the address of its first
// instance (nodes in network namespaces share one host name).
func labelWithAddr(r *Report) string {
	if len(r.Instances) > 0 {
		in := &r.Instances[0]
		if a := localAddr(in, r.iface(in.Interface)); a.IsValid() {
			if r.Node == "" {
				return a.String()
			}
			return r.Node + " (" + a.String() + ")"
		}
	}
	return r.Node
}

func onlyOn(l, other string, in *Instance) diag.Finding {
	return diag.Finding{
		ID: IDVRIDMismatch, Severity: diag.SeverityWarning, Subject: in.Subject(),
		Summary:     fmt.Sprintf("%s configures VRID %d (IPv%d), %s does not", l, in.VRID, in.Family, other),
		Evidence:    []diag.Evidence{{Label: l, Value: fmt.Sprintf("instance %s at %s", in.Name, in.Pos)}, {Label: other, Value: "no instance with this VRID and family"}},
		Explanation: `Both nodes of a pair must run the same virtual routers with the same virtual_router_id; with different IDs each is master of its own.`,
		Fix:         "Use the same virtual_router_id on both nodes.",
	}
}

// configDiffs lists the configuration differences that matter between the
// two nodes' instances of one virtual router.
func configDiffs(a, b side) []diag.Finding {
	ia, ib := a.in, b.in
	if ia.Priority == 0 || ib.Priority == 0 {
		return nil // an instance without configuration (-i/--vrid)
	}
	subj := ia.Subject()
	diff := func(id string, sev diag.Severity, what, va, vb, why, fix string) diag.Finding {
		return diag.Finding{
			ID: id, Severity: sev, Subject: subj,
			Summary:     fmt.Sprintf("%s differs: %s on %s, %s on %s", what, va, a.label, vb, b.label),
			Evidence:    []diag.Evidence{{Label: a.label, Value: va + " (" + ia.Pos + ")"}, {Label: b.label, Value: vb + " (" + ib.Pos + ")"}},
			Explanation: why, Fix: fix,
		}
	}
	var fs []diag.Finding
	if ia.Version != ib.Version {
		fs = append(fs, diff(IDVersionMismatch, diag.SeverityWarning, "the VRRP version", fmt.Sprintf("VRRPv%d", ia.Version), fmt.Sprintf("VRRPv%d", ib.Version),
			"A router ignores adverts of the other version, so both become master.", "Use the same version on both nodes (vrrp_version, or version in the instance)."))
	}
	if math.Abs(ia.AdvertInt-ib.AdvertInt) > 0.005 {
		fs = append(fs, diff(IDIntervalMismatch, diag.SeverityWarning, "the advert interval", secs2(ia.AdvertInt), secs2(ib.AdvertInt),
			"A VRRPv2 router discards adverts with another interval and takes over; VRRPv3 failover timing differs per node.", "Set the same advert_int on both nodes."))
	}
	if ia.Version == 2 && ib.Version == 2 && ia.Auth != ib.Auth {
		fs = append(fs, diff(IDAuthMismatch, diag.SeverityWarning, "the VRRPv2 authentication", ia.Auth, ib.Auth,
			"A VRRPv2 router discards adverts whose authentication differs from its own. (Passwords are not in the JSON reports; each node's own check compares the password it receives.)",
			"Use the same authentication block on both nodes, or none on both."))
	}
	if !slices.Equal(sortedAddrs(ia.VIPs), sortedAddrs(ib.VIPs)) {
		fs = append(fs, diff(IDVIPMismatch, diag.SeverityWarning, "the virtual addresses", addrs(sortedAddrs(ia.VIPs)), addrs(sortedAddrs(ib.VIPs)),
			"After a failover, addresses missing on the new master become unreachable.", "Give both nodes the same virtual_ipaddress block."))
	}
	mode := func(in *Instance) string {
		if in.Unicast {
			return "unicast to " + peerList(in.UnicastPeers)
		}
		return "multicast"
	}
	if ia.Unicast != ib.Unicast {
		fs = append(fs, diff(IDUnicastPeerMisconfig, diag.SeverityCritical, "unicast versus multicast", mode(ia), mode(ib),
			"The unicast node sends only to its peers and does not listen on the group; the multicast node listens only on the group. Neither hears the other.",
			"Configure unicast_src_ip and unicast_peer on both nodes, or on neither."))
	} else if ia.Unicast {
		for _, x := range [][2]side{{a, b}, {b, a}} {
			from, to := x[0], x[1]
			addr := localAddr(to.in, to.r.iface(to.in.Interface))
			if addr.IsValid() && !slices.ContainsFunc(from.in.UnicastPeers, func(u UnicastPeer) bool { return u.Addr == addr }) {
				fs = append(fs, diag.Finding{
					ID: IDUnicastPeerMisconfig, Severity: diag.SeverityCritical, Subject: subj,
					Summary:     fmt.Sprintf("%s's unicast_peer list (%s) does not include %s's address %s", from.label, peerList(from.in.UnicastPeers), to.label, addr),
					Evidence:    []diag.Evidence{{Label: from.label, Value: "unicast_peer " + peerList(from.in.UnicastPeers)}, {Label: to.label, Value: "sends from " + addr.String()}},
					Explanation: "In unicast mode a node sends its adverts only to the addresses in unicast_peer: a peer left out never hears it.",
					Fix:         fmt.Sprintf("Add %s to unicast_peer on %s.", addr, from.label),
				})
			}
		}
	}
	if ia.Priority == 255 && ib.Priority == 255 {
		fs = append(fs, diff(IDOwnerConflict, diag.SeverityCritical, "nothing: both claim address ownership", "priority 255", "priority 255",
			"Only one router can own the virtual addresses (priority 255); two owners both start as master.", "Give the backup a priority below 255."))
	} else if ia.Priority == ib.Priority {
		fs = append(fs, diag.Finding{
			ID: IDPriorityTie, Severity: diag.SeverityWarning, Subject: subj,
			Summary:     fmt.Sprintf("%s and %s both have priority %d", a.label, b.label, ia.Priority),
			Evidence:    []diag.Evidence{{Label: a.label, Value: fmt.Sprintf("priority %d (%s)", ia.Priority, ia.Pos)}, {Label: b.label, Value: fmt.Sprintf("priority %d (%s)", ib.Priority, ib.Pos)}},
			Explanation: "With equal priorities the higher IP address wins, so addressing rather than intent picks the master.",
			Fix:         "Give the intended master the higher priority.",
		})
	}
	return fs
}

// believesMaster: the node advertises, or holds the virtual addresses.
func believesMaster(in *Instance) bool { return in.Sending() || len(in.Held) > 0 }

// address is the node's VRRP source address for the instance.
func (s side) address() netip.Addr {
	if s.in.Local != nil && s.in.Local.Address.IsValid() {
		return s.in.Local.Address
	}
	return localAddr(s.in, s.r.iface(s.in.Interface))
}

// leg is what happens to one node's adverts on the way to the other.
type leg struct {
	// text says it in a sentence; ok is true when the receiver's VRRP
	// socket got them (or the sender rightly sends none).
	text string
	ok   bool
	ev   []diag.Evidence
	// at is the node where they get lost: the sender that does not send
	// them, or the receiver that does not deliver them; nil for the
	// network between them or not known.
	at *side
	// cause is at's own finding that explains the loss, if any.
	cause *diag.Finding
}

// path explains what happens to x's adverts on the way to y.
func path(x, y side) leg {
	xa := x.address()
	sent := uint64(0)
	if x.in.Local != nil {
		sent = x.in.Local.Adverts
	}
	if !x.in.Observed || !y.in.Observed {
		return leg{text: fmt.Sprintf("not known (the taps did not run on %s)", ifUnobserved(x, y))}
	}
	if sent == 0 {
		if len(x.in.Held) == 0 {
			return leg{text: fmt.Sprintf("%s does not advertise (it is backup)", x.label), ok: true}
		}
		l := leg{text: fmt.Sprintf("%s holds %s but sent no adverts in its watch", x.label, heldList(x.in.Held)), at: &x,
			ev: []diag.Evidence{{Label: x.label + " sent", Value: fmt.Sprintf("%s, while holding %s", x.count(0, "adverts on its wire"), heldList(x.in.Held))}}}
		if f := findingOf(x.r, x.in, IDFirewallOutputDrop); f != nil {
			l.text = fmt.Sprintf("%s holds %s but none of its adverts left it: %s", x.label, heldList(x.in.Held), f.Summary)
			l.cause = f
			l.ev = append(l.ev, diag.Evidence{Label: "cause on " + x.label, Value: f.Summary + " (" + f.ID + ")"})
		}
		return l
	}
	l := leg{ev: []diag.Evidence{{Label: x.label + " sent", Value: fmt.Sprintf("%s, from %s at priority %d (its own wire)", x.count(sent, "adverts"), xa, x.in.Local.Priority)}}}
	p := y.in.peer(xa)
	if p == nil || p.Adverts == 0 {
		l.ev = append(l.ev, diag.Evidence{Label: y.label + " received", Value: fmt.Sprintf("%s's adverts: %s", x.label, y.count(0, "on its wire"))})
		l.text = fmt.Sprintf("%s's adverts never reach %s's wire: the network between them does not carry them (IGMP snooping, a switch or cloud network without multicast, a VLAN mismatch) or they leave %s on another path", x.label, y.label, x.label)
		return l
	}
	l.ev = append(l.ev, diag.Evidence{Label: y.label + " received", Value: fmt.Sprintf("%s's adverts: %s, %d at its VRRP socket", x.label, y.count(p.Adverts, "on its wire"), p.Socket)})
	if p.Socket == 0 {
		l.text = fmt.Sprintf("%s's wire sees %s's adverts but its VRRP socket gets none", y.label, x.label)
		l.at = &y
		for _, id := range []string{IDFirewallInputDrop, IDRPFilterDrop, IDNotMemberOfGroup, IDNotDelivered} {
			if f := findingOf(y.r, y.in, id); f != nil {
				l.text += ": " + f.Summary
				l.cause = f
				l.ev = append(l.ev, diag.Evidence{Label: "cause on " + y.label, Value: f.Summary + " (" + id + ")"})
				break
			}
		}
		return l
	}
	l.text, l.ok = fmt.Sprintf("%s receives %s's adverts", y.label, x.label), true
	return l
}

func ifUnobserved(x, y side) string {
	if !x.in.Observed {
		return x.label
	}
	return y.label
}

// findingOf returns the node's finding id about instance in.
func findingOf(r *Report, in *Instance, id string) *diag.Finding {
	for i := range r.Findings {
		if r.Findings[i].ID == id && r.Findings[i].Subject == in.Subject() {
			return &r.Findings[i]
		}
	}
	return nil
}

// roles gives the cluster verdict for one virtual router: one master, two,
// or none, and why.
//
// A split brain is one finding for the pair: what happens, on which node
// the adverts get lost, the evidence of both sides and that node's fix. It
// stands for both nodes' own split-brain findings and the finding that
// explains the loss (with accept-not-final beside a firewall-input-drop:
// the same rule), which Combine then leaves out of the list.
func roles(a, b side, diffs []diag.Finding) []CombinedFinding {
	ma, mb := believesMaster(a.in), believesMaster(b.in)
	subj := a.in.Subject()
	ab, ba := path(a, b), path(b, a)
	ev := append([]diag.Evidence{{Label: a.label, Value: roleOf(a)}, {Label: b.label, Value: roleOf(b)}}, append(ab.ev, ba.ev...)...)
	switch {
	case ma && mb:
		absorbs := []nodeKey{{a.label, IDSplitBrain, a.in.Subject()}, {b.label, IDSplitBrain, b.in.Subject()}}
		var causes, fixes []string
		explained := false
		for _, l := range []leg{ab, ba} {
			if l.ok {
				continue
			}
			causes = append(causes, l.text)
			if l.cause == nil {
				continue
			}
			explained = true
			absorbs = append(absorbs, nodeKey{l.at.label, l.cause.ID, l.at.in.Subject()})
			if l.cause.ID == IDFirewallInputDrop {
				if f := findingOf(l.at.r, l.at.in, IDAcceptNotFinal); f != nil {
					absorbs = append(absorbs, nodeKey{l.at.label, f.ID, l.at.in.Subject()})
					ev = append(ev, diag.Evidence{Label: "accept on " + l.at.label, Value: f.Summary + " (" + f.ID + ")"})
				}
			}
			if l.cause.Fix != "" {
				fixes = append(fixes, onNode(l.at.label, l.cause.Fix))
			}
		}
		// Without a finding that explains a loss, a configuration
		// difference that makes a router discard the adverts it receives is
		// the cause, on neither node alone.
		discard := discardNames(a, b, diffs)
		if !explained && (len(causes) == 0 || len(discard) > 0) {
			causes = append(causes, discardCause(discard))
		}
		if a.win == nil || !a.win.Comparable {
			ev = append(ev, atOnce(a, b))
		}
		// The node where the adverts get lost: the receiver that does not
		// deliver them, or the sender that does not send them.
		blame := ""
		switch {
		case !explained && len(discard) > 0:
		case !ab.ok && ba.ok && ab.at != nil:
			blame = " Cause on " + ab.at.label + "'s side."
		case ab.ok && !ba.ok && ba.at != nil:
			blame = " Cause on " + ba.at.label + "'s side."
		case !ab.ok && !ba.ok && ab.at != nil && ba.at != nil && ab.at.label == ba.at.label:
			blame = " Cause on " + ab.at.label + "'s side."
		}
		fix := "Apply the fix of the finding named in the cause, on that node, then run both checks again."
		switch {
		case len(fixes) > 0:
			fix = strings.Join(fixes, "\n")
		case len(discard) > 0:
			fix = "Make the two configurations agree (" + strings.Join(discard, ", ") + ", below, says how), then run both checks again."
		}
		return []CombinedFinding{{Finding: diag.Finding{
			ID: IDSplitBrain, Severity: diag.SeverityCritical, Subject: subj,
			Summary:  fmt.Sprintf("split brain: both %s and %s are master for VRID %d. %s.%s", a.label, b.label, a.in.VRID, strings.Join(causes, "; "), blame),
			Evidence: ev,
			Explanation: `Each node's report is from its own point of view; side by side they show which adverts get lost where. ` +
				`A node becomes master when it stops hearing a better master: the path whose adverts are lost is the one to repair.`,
			Fix: fix,
		}, absorbs: absorbs}}
	case !ma && !mb && a.in.Observed && b.in.Observed:
		// A node without its VRRP daemon: the pair's no-master stands for
		// that node's keepalived-not-running.
		var down []string
		var absorbs []nodeKey
		var fixes []string
		nev := []diag.Evidence{{Label: a.label, Value: roleOf(a)}, {Label: b.label, Value: roleOf(b)}}
		for _, s := range []side{a, b} {
			if f := daemonDown(s.r); f != nil {
				down = append(down, s.label)
				absorbs = append(absorbs, nodeKey{s.label, f.ID, f.Subject})
				fixes = append(fixes, f.Fix)
			}
		}
		summary := fmt.Sprintf("neither %s nor %s is master for VRID %d: nobody holds the virtual addresses", a.label, b.label, a.in.VRID)
		fix := "Start the VRRP daemon on the intended master and check its log (journalctl -u keepalived)."
		switch len(down) {
		case 2:
			summary += fmt.Sprintf(". No VRRP daemon runs on %s or on %s.", down[0], down[1])
			fix = onNode(down[0], fixes[0]) + "\n" + onNode(down[1], fixes[1])
			if fixes[0] == fixes[1] {
				fix = onNode(down[0]+" and "+down[1], fixes[0])
			}
		case 1:
			summary += fmt.Sprintf(". No VRRP daemon runs on %s.", down[0])
			fix = onNode(down[0], fixes[0])
		}
		return []CombinedFinding{{Finding: diag.Finding{
			ID: IDNoMaster, Severity: diag.SeverityCritical, Subject: subj,
			Summary:     summary,
			Evidence:    nev,
			Explanation: "Without a master the virtual addresses are unreachable. Usually the daemons are stopped or in FAULT state (interface down, a failing track script).",
			Fix:         fix,
		}, absorbs: absorbs}}
	case ma != mb:
		// m: the master's adverts on the way to the backup.
		m, ml, bl := ab, a.label, b.label
		if mb {
			m, ml, bl = ba, b.label, a.label
		}
		if !m.ok {
			return nil // the nodes' own findings say more
		}
		summary := fmt.Sprintf("%s is master and %s backup for VRID %d; %s", ml, bl, a.in.VRID, m.text)
		// Reports from different times may disagree: one node's own watch
		// saw a split brain the pair verdict, taken from both, does not.
		if a.win == nil || !a.win.Comparable {
			for _, x := range [][2]side{{a, b}, {b, a}} {
				s, o := x[0], x[1]
				if findingOf(s.r, s.in, IDSplitBrain) == nil {
					continue
				}
				when := "earlier"
				if s.r.Time.After(o.r.Time) {
					when = "later"
				}
				summary += fmt.Sprintf(". But %s's own report, %s than %s's, saw a split brain (below): the two reports show different moments, so run the check on both nodes at the same time to tell which holds now", s.label, when, o.label)
				break
			}
		}
		return []CombinedFinding{{Finding: diag.Finding{
			ID: IDHealthy, Severity: diag.SeverityOK, Subject: subj,
			Summary:  summary,
			Evidence: ev,
		}}}
	}
	return nil
}

// onNode prefixes a node's fix with the node it is for: "On b, let the
// adverts through ..." (a sentence's capital lowered, not an acronym's).
func onNode(label, fix string) string {
	if r := []rune(fix); len(r) > 1 && unicode.IsUpper(r[0]) && unicode.IsLower(r[1]) {
		r[0] = unicode.ToLower(r[0])
		fix = string(r)
	}
	return "On " + label + ", " + fix
}

// discardIDs are the node findings that make a router discard adverts its
// socket received.
var discardIDs = []string{IDAuthMismatch, IDVersionMismatch, IDIntervalMismatch, IDVIPMismatch, IDTTLNot255, IDChecksumMismatch, IDUnicastPeerMisconfig}

// discardCause explains a split brain whose adverts reach the sockets but
// are discarded, naming the findings that say why.
func discardCause(names []string) string {
	t := "the VRRP daemons discard the adverts they receive"
	if len(names) == 0 {
		return "both receive each other's adverts and still both act as master: they discard them (no finding says why: compare the two configurations and the daemons' logs)"
	}
	return t + " (see " + strings.Join(names, ", ") + ")"
}

// discardNames names the pair's and the nodes' findings that make a router
// discard adverts its socket received.
func discardNames(a, b side, diffs []diag.Finding) []string {
	var names []string
	for _, d := range diffs {
		if slices.Contains(discardIDs, d.ID) && !slices.Contains(names, d.ID) {
			names = append(names, d.ID)
		}
	}
	for _, s := range []side{a, b} {
		for _, f := range s.r.Findings {
			if f.Subject == s.in.Subject() && f.Severity >= diag.SeverityWarning && slices.Contains(discardIDs, f.ID) && !slices.Contains(names, f.ID) {
				names = append(names, s.label+"'s "+f.ID)
			}
		}
	}
	return names
}

// atOnce says whether one node's own watch saw both advertising, so that a
// split brain does not rest on reports from different times.
func atOnce(a, b side) diag.Evidence {
	for _, x := range [][2]side{{a, b}, {b, a}} {
		s, o := x[0], x[1]
		if p := s.in.peer(o.address()); s.in.Sending() && p != nil && p.Adverts > 0 && p.Priority > 0 {
			return diag.Evidence{Label: "at once", Value: fmt.Sprintf("%s's own watch saw both advertising (%d of its own adverts, %d of %s's): the split brain does not rest on reports from different times",
				s.label, s.in.Local.Adverts, p.Adverts, o.label)}
		}
	}
	return diag.Evidence{Label: "at once", Value: "no single watch saw both advertising: each node was master in its own watch, and the watches do not line up"}
}

func roleOf(s side) string {
	in := s.in
	switch {
	case !in.Observed:
		return "not observed"
	case in.Sending():
		return fmt.Sprintf("master: advertises at priority %d, holds %s", in.Local.Priority, orNone(heldList(in.Held)))
	case len(in.Held) > 0:
		return fmt.Sprintf("holds %s without advertising", heldList(in.Held))
	case daemonDown(s.r) != nil:
		return "no VRRP daemon running, holds no virtual address"
	}
	return fmt.Sprintf("backup (priority %d), holds no virtual address", in.Priority)
}

// daemonDown returns the node's keepalived-not-running finding, if any.
func daemonDown(r *Report) *diag.Finding {
	for i := range r.Findings {
		if r.Findings[i].ID == IDKeepalivedNotRunning && r.Findings[i].Subject == "" {
			return &r.Findings[i]
		}
	}
	return nil
}

// WriteCombinedJSON writes a combined report as one indented JSON document.
func WriteCombinedJSON(w io.Writer, c *Combined) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(c)
}

// WriteCombinedText renders a combined report for people: the two nodes
// and their watches, the notes, the findings and the status line.
func WriteCombinedText(w io.Writer, c *Combined, colour bool) error {
	bw := bufio.NewWriter(w)
	h := heading(colour)
	fmt.Fprintln(bw, h.Sprint("vrrpdoctor check: two nodes combined"))
	width := 0
	for _, n := range c.Nodes {
		width = max(width, len(n.Label))
	}
	for _, n := range c.Nodes {
		watch := "taps did not run"
		if n.WatchS > 0 {
			watch = "watched " + secs(n.WatchS)
		}
		fmt.Fprintf(bw, "  %-*s  checked %s UTC, %s, own verdict %s\n", width, n.Label, strings.TrimSuffix(strings.Replace(n.Time, "T", " ", 1), "Z"), watch, strings.ToUpper(n.Status))
	}
	for _, n := range c.Notes {
		wrapNote(bw, n)
	}
	fmt.Fprintln(bw)
	if err := bw.Flush(); err != nil {
		return err
	}
	fs := make([]diag.Finding, len(c.Findings))
	for i := range c.Findings {
		fs[i] = c.Findings[i].Finding
	}
	if len(fs) > 0 {
		fmt.Fprintln(w, h.Sprint("Findings"))
		if err := diag.WriteFindings(w, fs, colour); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	return diag.WriteStatus(w, c.ExitCode, fs, colour)
}

// wrapNote writes a note word-wrapped at 100 columns, as "  Note: ...".
func wrapNote(w io.Writer, text string) {
	const lead, indent, width = "  Note: ", "        ", 100
	line := lead
	for i, word := range strings.Fields(text) {
		if i > 0 && len(line)+1+len(word) > width {
			fmt.Fprintln(w, line)
			line = indent + word
			continue
		}
		if i > 0 {
			line += " "
		}
		line += word
	}
	fmt.Fprintln(w, line)
}
