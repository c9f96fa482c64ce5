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

	"github.com/vrrpdoctor/vrrpdoctor/diag"
)

// CombinedSchema identifies the JSON document of a combined report.
const CombinedSchema = "vrrpdoctor-check-combined/1"

// IDVRIDMismatch is a virtual router configured on one node of a pair only.
const IDVRIDMismatch = "vrid-mismatch"

// Combined is the cluster verdict from two nodes' reports.
type Combined struct {
	Schema   string         `json:"schema"`
	Status   string         `json:"status"`
	ExitCode int            `json:"exit_code"`
	Nodes    []NodeSummary  `json:"nodes"`
	Findings []diag.Finding `json:"findings"`
}

// NodeSummary names one node of a combined report and its own verdict.
type NodeSummary struct {
	Label    string `json:"label"`
	Node     string `json:"node"`
	Time     string `json:"time"`
	Status   string `json:"status"`
	ExitCode int    `json:"exit_code"`
}

type side struct {
	label string
	r     *Report
	in    *Instance
}

// Combine puts two nodes' reports side by side: for every virtual router
// both configure, who is master, which side drops whose adverts and every
// configuration difference that matters; the nodes' own warnings and
// critical findings follow, labelled with the node.
func Combine(a, b *Report) *Combined {
	la, lb := a.Node, b.Node
	if la == lb || la == "" || lb == "" {
		la, lb = labelWithAddr(a), labelWithAddr(b)
	}
	c := &Combined{Schema: CombinedSchema, Findings: []diag.Finding{}}
	for _, x := range []struct {
		l string
		r *Report
	}{{la, a}, {lb, b}} {
		c.Nodes = append(c.Nodes, NodeSummary{Label: x.l, Node: x.r.Node, Time: x.r.Time.UTC().Format("2006-01-02T15:04:05Z"), Status: x.r.Status, ExitCode: x.r.ExitCode})
	}
	var fs []diag.Finding
	for i := range a.Instances {
		ia := &a.Instances[i]
		ib := b.instance(ia.VRID, ia.Family)
		if ib == nil {
			fs = append(fs, onlyOn(la, lb, ia))
			continue
		}
		sa, sb := side{la, a, ia}, side{lb, b, ib}
		fs = append(fs, configDiffs(sa, sb)...)
		fs = append(fs, roles(sa, sb)...)
	}
	for i := range b.Instances {
		ib := &b.Instances[i]
		if a.instance(ib.VRID, ib.Family) == nil {
			fs = append(fs, onlyOn(lb, la, ib))
		}
	}
	// The cluster's verdicts first, then each node's own problems.
	diag.SortFindings(fs)
	var own []diag.Finding
	for _, x := range []struct {
		l string
		r *Report
	}{{la, a}, {lb, b}} {
		for _, f := range x.r.Findings {
			if f.Severity < diag.SeverityWarning {
				continue
			}
			f.Subject = strings.TrimSpace(x.l + ": " + f.Subject)
			own = append(own, f)
		}
	}
	diag.SortFindings(own)
	fs = append(fs, own...)
	c.Findings = append(c.Findings, fs...)
	code := diag.MaxSeverity(fs).ExitCode()
	if code != diag.ExitCritical && (a.ExitCode == diag.ExitUnknown || b.ExitCode == diag.ExitUnknown) {
		code = diag.ExitUnknown
	}
	c.ExitCode, c.Status = code, diag.StatusName(code)
	return c
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

// path explains what happens to x's adverts on the way to y: ok is true when
// y's VRRP socket received them (or x rightly sends none); at names the node
// where they get lost (x: not sent, y: not delivered; "" for the network or
// not known).
func path(x, y side) (text string, ok bool, ev []diag.Evidence, at string) {
	xa := x.address()
	sent := uint64(0)
	if x.in.Local != nil {
		sent = x.in.Local.Adverts
	}
	if !x.in.Observed || !y.in.Observed {
		return fmt.Sprintf("not known (the taps did not run on %s)", ifUnobserved(x, y)), false, nil, ""
	}
	if sent == 0 {
		if len(x.in.Held) == 0 {
			return fmt.Sprintf("%s does not advertise (it is backup)", x.label), true, nil, ""
		}
		t := fmt.Sprintf("%s holds %s but none of its adverts left it", x.label, heldList(x.in.Held))
		if f := findingOf(x.r, x.in, IDFirewallOutputDrop); f != nil {
			t += ": " + f.Summary
		}
		return t, false, []diag.Evidence{{Label: x.label + " sent", Value: "0 adverts on its wire while holding " + heldList(x.in.Held)}}, x.label
	}
	p := y.in.peer(xa)
	ev = append(ev, diag.Evidence{Label: x.label + " sent", Value: fmt.Sprintf("%d adverts from %s at priority %d (its own wire)", sent, xa, x.in.Local.Priority)})
	if p == nil || p.Adverts == 0 {
		ev = append(ev, diag.Evidence{Label: y.label + " received", Value: "0 of them on its wire"})
		return fmt.Sprintf("%s's adverts never reach %s's wire: the network between them does not carry them (IGMP snooping, a switch or cloud network without multicast, a VLAN mismatch) or they leave %s on another path", x.label, y.label, x.label), false, ev, ""
	}
	ev = append(ev, diag.Evidence{Label: y.label + " received", Value: fmt.Sprintf("%d on its wire, %d at its VRRP socket", p.Adverts, p.Socket)})
	if p.Socket == 0 {
		t := fmt.Sprintf("%s's wire sees %s's adverts (%d) but its VRRP socket gets none", y.label, x.label, p.Adverts)
		for _, id := range []string{IDFirewallInputDrop, IDRPFilterDrop, IDNotMemberOfGroup, IDNotDelivered} {
			if f := findingOf(y.r, y.in, id); f != nil {
				t += ": " + f.Summary
				ev = append(ev, diag.Evidence{Label: y.label + " " + id, Value: f.Summary})
				break
			}
		}
		return t, false, ev, y.label
	}
	return fmt.Sprintf("%s receives %s's adverts", y.label, x.label), true, ev, ""
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
func roles(a, b side) []diag.Finding {
	ma, mb := believesMaster(a.in), believesMaster(b.in)
	subj := a.in.Subject()
	ab, abOK, evAB, atAB := path(a, b)
	ba, baOK, evBA, atBA := path(b, a)
	ev := append(evAB, evBA...)
	switch {
	case ma && mb:
		var causes []string
		if !abOK {
			causes = append(causes, ab)
		}
		if !baOK {
			causes = append(causes, ba)
		}
		if len(causes) == 0 {
			causes = append(causes, "both receive each other's adverts and still both act as master: they discard them (see the mismatch findings)")
		}
		// The node where the adverts get lost: the receiver that does not
		// deliver them, or the sender that does not send them.
		blame := ""
		switch {
		case !abOK && baOK && atAB != "":
			blame = " Cause on " + atAB + "'s side."
		case abOK && !baOK && atBA != "":
			blame = " Cause on " + atBA + "'s side."
		case !abOK && !baOK && atAB != "" && atAB == atBA:
			blame = " Cause on " + atAB + "'s side."
		}
		return []diag.Finding{{
			ID: IDSplitBrain, Severity: diag.SeverityCritical, Subject: subj,
			Summary:  fmt.Sprintf("split brain: both %s and %s are master for VRID %d. %s.%s", a.label, b.label, a.in.VRID, strings.Join(causes, "; "), blame),
			Evidence: append([]diag.Evidence{{Label: a.label, Value: roleOf(a)}, {Label: b.label, Value: roleOf(b)}}, ev...),
			Explanation: `Each node's report is from its own point of view; side by side they show which adverts get lost where. ` +
				`A node becomes master when it stops hearing a better master: the path whose adverts are lost is the one to repair.`,
			Fix: "Apply the fix of the finding named in the cause, on that node, then run both checks again.",
		}}
	case !ma && !mb && a.in.Observed && b.in.Observed:
		return []diag.Finding{{
			ID: IDNoMaster, Severity: diag.SeverityCritical, Subject: subj,
			Summary:     fmt.Sprintf("neither %s nor %s is master for VRID %d: nobody holds the virtual addresses", a.label, b.label, a.in.VRID),
			Evidence:    []diag.Evidence{{Label: a.label, Value: roleOf(a)}, {Label: b.label, Value: roleOf(b)}},
			Explanation: "Without a master the virtual addresses are unreachable. Usually the daemons are stopped or in FAULT state (interface down, a failing track script).",
			Fix:         "Start the VRRP daemon on the intended master and check its log (journalctl -u keepalived).",
		}}
	case ma != mb:
		m, bk := a, b
		if mb {
			m, bk = b, a
		}
		t, ok, _, _ := path(m, bk)
		if !ok {
			return nil // the nodes' own findings say more
		}
		return []diag.Finding{{
			ID: IDHealthy, Severity: diag.SeverityOK, Subject: subj,
			Summary:  fmt.Sprintf("%s is master and %s backup for VRID %d; %s", m.label, bk.label, a.in.VRID, t),
			Evidence: append([]diag.Evidence{{Label: a.label, Value: roleOf(a)}, {Label: b.label, Value: roleOf(b)}}, ev...),
		}}
	}
	return nil
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
	}
	return fmt.Sprintf("backup (priority %d), holds no virtual address", in.Priority)
}

// WriteCombinedJSON writes a combined report as one indented JSON document.
func WriteCombinedJSON(w io.Writer, c *Combined) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(c)
}

// WriteCombinedText renders a combined report for people.
func WriteCombinedText(w io.Writer, c *Combined, colour bool) error {
	bw := bufio.NewWriter(w)
	h := heading(colour)
	fmt.Fprintln(bw, h.Sprint("vrrpdoctor check: two nodes combined"))
	for _, n := range c.Nodes {
		fmt.Fprintf(bw, "  %-28s checked %s UTC, own verdict %s\n", n.Label, strings.TrimSuffix(strings.Replace(n.Time, "T", " ", 1), "Z"), strings.ToUpper(n.Status))
	}
	fmt.Fprintln(bw)
	if err := bw.Flush(); err != nil {
		return err
	}
	if len(c.Findings) > 0 {
		fmt.Fprintln(w, h.Sprint("Findings"))
		if err := diag.WriteFindings(w, c.Findings, colour); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	return diag.WriteStatus(w, c.ExitCode, c.Findings, colour)
}
