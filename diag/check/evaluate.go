package check

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/diag"
	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// Stable IDs of the findings of `vrrpdoctor check` (docs/check.md). Those
// shared with `vrrpdoctor analyze` use diag's constants.
const (
	IDSplitBrain           = diag.IDSplitBrain
	IDFirewallInputDrop    = "firewall-input-drop"
	IDFirewallOutputDrop   = "firewall-output-drop"
	IDAcceptNotFinal       = "accept-not-final"
	IDNotDelivered         = "adverts-not-delivered"
	IDNoAdvertsReceived    = "no-adverts-received"
	IDVRIDCollision        = "vrid-collision"
	IDAuthMismatch         = diag.IDAuthMismatch
	IDVersionMismatch      = diag.IDVersionMismatch
	IDIntervalMismatch     = diag.IDIntervalMismatch
	IDVIPMismatch          = diag.IDVIPMismatch
	IDChecksumMismatch     = diag.IDChecksumMismatch
	IDTTLNot255            = diag.IDTTLNot255
	IDRPFilterDrop         = "rp-filter-drop"
	IDNotMemberOfGroup     = "not-member-of-group"
	IDInterfaceDown        = "interface-down"
	IDPriorityTie          = "priority-tie"
	IDOwnerConflict        = "owner-conflict"
	IDUnicastPeerMisconfig = "unicast-peer-misconfig"
	IDKeepalivedNotRunning = "keepalived-not-running"
	IDVIPHeldByBackup      = "vip-held-by-backup"
	IDConfigError          = "config-error"
	IDConfigInsecure       = "config-insecure"
	IDHealthy              = "healthy"
	IDNoMaster             = "no-master"
)

// Evaluate judges a report's facts and returns its findings, worst first.
// It does not change r; Finish stores the findings with the status.
func Evaluate(r *Report) []diag.Finding {
	return evaluate(r, false)
}

// EvaluateProblems returns Evaluate's findings worse than
// diag.SeverityOK, in the same order, without making the others: what a
// watch that reports only problems needs of each window.
func EvaluateProblems(r *Report) []diag.Finding {
	return evaluate(r, true)
}

func evaluate(r *Report, problems bool) []diag.Finding {
	e := &evaluator{r: r, problems: problems}
	e.config()
	e.daemon()
	global := diag.MaxSeverity(e.fs)
	for i := range r.Instances {
		e.instance(&r.Instances[i], global)
	}
	// After the instances: a security problem of the file does not make
	// an instance unhealthy.
	e.insecure()
	if problems {
		e.fs = slices.DeleteFunc(e.fs, func(f diag.Finding) bool { return f.Severity <= diag.SeverityOK })
	}
	diag.SortFindings(e.fs)
	return e.fs
}

// Finish evaluates r and stores its findings, status and exit code.
func (r *Report) Finish() {
	r.Findings = Evaluate(r)
	code := diag.MaxSeverity(r.Findings).ExitCode()
	if code != diag.ExitCritical && r.incomplete() {
		code = diag.ExitUnknown
	}
	r.ExitCode = code
	r.Status = diag.StatusName(code)
	if r.Skipped == nil {
		r.Skipped = []string{}
	}
}

// incomplete says the report lacks what a verdict needs: an instance, and
// the taps on its interface.
func (r *Report) incomplete() bool {
	if len(r.Instances) == 0 {
		return true
	}
	for _, in := range r.Instances {
		if !in.Observed {
			if ifc := r.iface(in.Interface); ifc != nil && (!ifc.Exists || !ifc.Up) {
				continue // interface-down explains it
			}
			return true
		}
	}
	return false
}

type evaluator struct {
	r  *Report
	fs []diag.Finding
	// problems: findings of diag.SeverityOK are not made (EvaluateProblems).
	problems bool
}

// discards lists the mismatches for which a VRRP daemon discards a peer's
// adverts (keepalived does; RFC 3768 §7.1, RFC 5798 §7.1).
var discards = map[string]bool{
	IDVersionMismatch: true, IDIntervalMismatch: true, IDAuthMismatch: true,
	IDTTLNot255: true, IDChecksumMismatch: true, IDUnicastPeerMisconfig: true,
}

func (e *evaluator) add(f diag.Finding) { e.fs = append(e.fs, f) }

func (r *Report) iface(name string) *Interface {
	for i := range r.Interfaces {
		if r.Interfaces[i].Name == name {
			return &r.Interfaces[i]
		}
	}
	return nil
}

// Subject names an instance for people: "VRID 51 on eth0 (VRRPv2, IPv4)".
func (in *Instance) Subject() string {
	s := fmt.Sprintf("VRID %d on %s (", in.VRID, in.Interface)
	if in.Version != 0 {
		s += fmt.Sprintf("VRRPv%d, ", in.Version)
	}
	return s + fmt.Sprintf("IPv%d)", in.Family)
}

// Sending says the taps saw this node advertise the instance's VRID: in VRRP
// only the master does.
func (in *Instance) Sending() bool {
	return in.Local != nil && in.Local.Adverts > 0 && in.Local.Priority > 0
}

// advertising lists the peers that sent adverts with a priority above 0.
func (in *Instance) advertising() []*Peer {
	var ps []*Peer
	for i := range in.Peers {
		if p := &in.Peers[i]; p.Adverts > 0 && p.Priority > 0 {
			ps = append(ps, p)
		}
	}
	return ps
}

// priority is this node's priority as its adverts carry it (the effective
// one, tracking included), else as configured.
func (in *Instance) priority() uint8 {
	if in.Sending() {
		return in.Local.Priority
	}
	return in.Priority
}

func (e *evaluator) config() {
	if len(e.r.Config.Errors) == 0 {
		return
	}
	var ev []diag.Evidence
	for _, msg := range e.r.Config.Errors {
		ev = append(ev, diag.Evidence{Label: "error", Value: msg})
	}
	e.add(diag.Finding{
		ID: IDConfigError, Severity: diag.SeverityCritical, Subject: e.r.Config.Path,
		Summary:     fmt.Sprintf("%s has %d %s that keepalived refuses", e.r.Config.Path, len(e.r.Config.Errors), plural(len(e.r.Config.Errors), "error", "errors")),
		Evidence:    ev,
		Explanation: `keepalived stops (or, on reload, keeps the old configuration) when its configuration has errors, so what runs may not be what the file says. The checks below use what could be read.`,
		Fix:         `Correct the lines named above, then check with keepalived -t -f ` + e.r.Config.Path + ` (or vrrpdoctor run --check-config -c ` + e.r.Config.Path + `) and reload keepalived.`,
	})
}

// insecure reports the configuration's security problems: a password
// others can read, a script run as root that others can replace.
func (e *evaluator) insecure() {
	c := &e.r.Config
	if len(c.Insecure) == 0 {
		return
	}
	var ev []diag.Evidence
	secret, script := false, false
	for _, msg := range c.Insecure {
		ev = append(ev, diag.Evidence{Label: "problem", Value: msg})
		secret = secret || strings.Contains(msg, "holds auth_pass")
		script = script || !strings.Contains(msg, "holds auth_pass")
	}
	var expl, fix []string
	if secret {
		expl = append(expl, `A VRRPv2 password (auth_pass) travels in clear text in every advert and is weak protection already; a file others can read hands it to every local user, who can then forge adverts that win the election.`)
		fix = append(fix, `Make each file holding auth_pass readable by root only: chmod 600 FILE (and chown root:root FILE).`)
	}
	if script {
		expl = append(expl, `A script keepalived runs as root that another user can replace (its file or a directory above it is theirs or writable by them) runs their code as root on the next state change or check. With enable_script_security keepalived refuses to run it, so the tracking or notification it stands for does not happen.`)
		fix = append(fix, `Give each script and every directory above it to root and take the write bits from group and others: chown root:root PATH; chmod go-w PATH (or run the script as an unprivileged user: script_user, or user in vrrp_script).`)
	}
	e.add(diag.Finding{
		ID: IDConfigInsecure, Severity: diag.SeverityWarning, Subject: c.Path,
		Summary:     fmt.Sprintf("%s has %d security %s", c.Path, len(c.Insecure), plural(len(c.Insecure), "problem", "problems")),
		Evidence:    ev,
		Explanation: strings.Join(expl, " "),
		Fix:         strings.Join(fix, " "),
	})
}

func (e *evaluator) daemon() {
	if len(e.r.Processes) > 0 || len(e.r.Instances) == 0 || e.r.ProcessesUnreadable {
		return
	}
	ev := []diag.Evidence{{Label: "processes", Value: "no keepalived or vrrpdoctor run process in this network namespace"}}
	var held []string
	for _, in := range e.r.Instances {
		for _, h := range in.Held {
			held = append(held, h.Addr.String()+" on "+h.Interface)
		}
	}
	summary := "no VRRP daemon (keepalived or vrrpdoctor run) runs in this network namespace"
	if len(held) > 0 {
		ev = append(ev, diag.Evidence{Label: "virtual addresses held anyway", Value: strings.Join(held, ", ")})
		summary += ", yet this host holds virtual addresses"
	}
	e.add(diag.Finding{
		ID: IDKeepalivedNotRunning, Severity: diag.SeverityCritical, Summary: summary, Evidence: ev,
		Explanation: `Without its VRRP daemon this node neither advertises nor takes over: it is no backup for its peers. ` +
			`Virtual addresses left on an interface by a daemon that died are still answered here, beside the real master.`,
		Fix: "Start it (systemctl start keepalived), and find why it stopped: journalctl -u keepalived. Remove addresses it left behind: ip addr del <VIP> dev <interface>.",
	})
}

func (e *evaluator) instance(in *Instance, global diag.Severity) {
	before := len(e.fs)
	ifc := e.r.iface(in.Interface)
	if e.interfaceDown(in, ifc) {
		return
	}
	e.membership(in, ifc)
	fwIn := e.firewall(in, in.FirewallIn)
	fwOut := e.firewall(in, in.FirewallOut)
	if in.Observed {
		e.delivery(in, ifc, fwIn)
		// The mismatches with each peer, which make a daemon discard its
		// adverts, go into the split-brain verdict.
		var refused map[netip.Addr][]string // made for the first mismatch
		for _, p := range in.Peers {
			if p.Adverts > 0 {
				n := len(e.fs)
				e.compare(in, p)
				for _, f := range e.fs[n:] {
					if discards[f.ID] {
						if refused == nil {
							refused = map[netip.Addr][]string{}
						}
						refused[p.Address] = append(refused[p.Address], f.ID)
					}
				}
			}
		}
		e.ownerLowered(in)
		if !e.splitBrain(in, ifc, fwIn, fwOut, refused) {
			e.heldByBackup(in, fwOut)
		}
		e.collision(in)
		e.noAdverts(in)
	}
	worst := max(global, diag.MaxSeverity(e.fs[before:]))
	if worst < diag.SeverityWarning && in.Observed && !e.problems {
		e.healthy(in)
	}
}

func (e *evaluator) interfaceDown(in *Instance, ifc *Interface) bool {
	if ifc == nil {
		return false
	}
	var what string
	switch {
	case !ifc.Exists:
		what = "does not exist"
	case !ifc.Up:
		what = "is administratively down"
	case !ifc.LowerUp:
		what = "has no carrier (link down)"
	case !ifc.Multicast && !in.Unicast:
		what = "has multicast switched off"
	default:
		return false
	}
	ev := []diag.Evidence{{Label: "interface", Value: in.Interface}}
	if ifc.Exists {
		ev = append(ev, diag.Evidence{Label: "state", Value: fmt.Sprintf("up %v, carrier %v, multicast %v, operstate %s", ifc.Up, ifc.LowerUp, ifc.Multicast, ifc.OperState)})
	}
	fix := fmt.Sprintf("ip link set %s up (and check the cable, switch port or peer end of the link)", in.Interface)
	switch {
	case !ifc.Exists:
		fix = "Create the interface or correct `interface` in the vrrp_instance."
	case ifc.Up && ifc.LowerUp:
		fix = fmt.Sprintf("ip link set %s multicast on", in.Interface)
	}
	e.add(diag.Finding{
		ID: IDInterfaceDown, Severity: diag.SeverityCritical, Subject: in.Subject(),
		Summary:     fmt.Sprintf("interface %s %s", in.Interface, what),
		Evidence:    ev,
		Explanation: `keepalived puts an instance whose interface is missing or down in FAULT state: it neither advertises nor holds the virtual addresses, and its peer is on its own.`,
		Fix:         fix,
	})
	return true
}

func (e *evaluator) membership(in *Instance, ifc *Interface) {
	if ifc == nil || in.Unicast || len(e.r.Processes) == 0 {
		return
	}
	joined, group, groupAddr := ifc.JoinedVRRP4, "224.0.0.18", vrrpcore.GroupIPv4
	if in.Family == 6 {
		joined, group, groupAddr = ifc.JoinedVRRP6, "ff02::12", vrrpcore.GroupIPv6
	}
	if in.Group.IsValid() && in.Group != groupAddr {
		return // a non-default group: hostfacts checks only the standard ones
	}
	if joined == nil || *joined {
		return
	}
	file := "/proc/net/igmp"
	if in.Family == 6 {
		file = "/proc/net/igmp6"
	}
	ev := []diag.Evidence{
		{Label: "memberships", Value: fmt.Sprintf("%s lists no %s on %s (read before this check's own socket joined it)", file, group, in.Interface)},
		{Label: "daemons", Value: processList(e.r.Processes)},
	}
	// This check's own socket tap joins the group too: its failure says why
	// the daemon's join failed (e.g. ENOBUFS from igmp_max_memberships).
	if c := e.r.Capture; c != nil {
		for _, ci := range c.Interfaces {
			for _, msg := range append([]string{ci.Error}, ci.SocketErrors...) {
				if ci.Name == in.Interface && strings.Contains(msg, "join "+group) {
					ev = append(ev, diag.Evidence{Label: "this check's own join", Value: msg})
				}
			}
		}
	}
	limit := ` ("No buffer space available": the host's limit of group memberships, sysctl net.ipv4.igmp_max_memberships, is used up; raise it)`
	if in.Family == 6 {
		limit = ""
	}
	e.add(diag.Finding{
		ID: IDNotMemberOfGroup, Severity: diag.SeverityCritical, Subject: in.Subject(),
		Summary:  fmt.Sprintf("%s has not joined the VRRP group %s although a VRRP daemon runs", in.Interface, group),
		Evidence: ev,
		Explanation: `A host delivers multicast to its sockets only for groups one of its sockets joined on that interface. ` +
			`keepalived joins the VRRP group when its instance starts; without the membership the peers' adverts are discarded before any firewall. ` +
			`If keepalived still has its VRRP socket it takes over as master (split brain); if setting up the socket failed (keepalived logs "cant do IP_ADD_MEMBERSHIP"), it stays a silent backup that never takes over.`,
		Fix: "Check keepalived's log for errors joining the group" + limit + ", " +
			"check that the instance's interface is the one the peers are on, then restart keepalived (systemctl restart keepalived).",
	})
}

func processList(ps []Process) string {
	var s []string
	for _, p := range ps {
		s = append(s, fmt.Sprintf("%s (pid %d, %s)", p.Kind, p.PID, p.Config))
	}
	return strings.Join(s, ", ")
}

// fwDrop is a dropping verdict and what the capture says about it.
type fwDrop struct {
	v Verdict
	// confirmed: the taps saw the adverts on the wire and not at the
	// socket (in), or this node held its VIPs while none of its adverts
	// left (out).
	confirmed bool
	evidence  []diag.Evidence
}

// firewall reports the verdicts of one direction that drop adverts, and
// returns them by source (in) or destination (out).
func (e *evaluator) firewall(in *Instance, vs []Verdict) map[netip.Addr]*fwDrop {
	var drops map[netip.Addr]*fwDrop // made for the first drop: most instances have none
	for _, v := range vs {
		if v.Verdict != eval.Drop && v.Verdict != eval.Reject {
			continue
		}
		d := &fwDrop{v: v}
		if v.Direction == eval.In {
			p := in.peer(v.Src)
			switch {
			case p != nil && p.Adverts > 0 && p.Socket > 0:
				continue // delivered all the same: the evaluator is wrong here, trust the taps
			case p != nil && p.Adverts > 0:
				d.confirmed = true
				d.evidence = append(d.evidence, diag.Evidence{Label: "adverts from " + p.Address.String(),
					Value: fmt.Sprintf("%d seen on %s's wire, %d reached the VRRP socket", p.Adverts, in.Interface, p.Socket)})
			case in.Observed:
				d.evidence = append(d.evidence, diag.Evidence{Label: "capture", Value: "no adverts from " + srcName(v.Src) + " arrived while the taps ran; the verdict is the evaluator's alone"})
			}
			if drops == nil {
				drops = map[netip.Addr]*fwDrop{}
			}
			drops[v.Src] = d
		} else {
			if s := in.Sends; s != nil && s.Failed > 0 {
				// The speaker's own word: sendto refused its adverts.
				d.confirmed = true
				v := fmt.Sprintf("%d of this node's %d attempts to send an advert failed", s.Failed, s.Attempts)
				if s.LastError != "" {
					v += ": " + s.LastError
				}
				d.evidence = append(d.evidence, diag.Evidence{Label: "send attempts", Value: v})
			}
			switch {
			case d.confirmed && in.Sending():
			case in.Sending():
				continue // the adverts left: trust the wire
			case in.Observed && len(in.Held) > 0:
				d.confirmed = true
				d.evidence = append(d.evidence, diag.Evidence{Label: "adverts sent",
					Value: fmt.Sprintf("0 of this node's adverts appeared on %s's wire in %s, although it holds %s (so its VRRP daemon acts as master)", in.Interface, secs(e.r.captureDuration()), heldList(in.Held))})
			case in.Observed:
				d.evidence = append(d.evidence, diag.Evidence{Label: "capture", Value: "this node did not advertise while the taps ran (it is backup); the verdict is the evaluator's alone"})
			}
			if drops == nil {
				drops = map[netip.Addr]*fwDrop{}
			}
			drops[v.Dst] = d
		}
	}
	if len(drops) == 0 {
		return drops
	}
	// One finding per deciding rule.
	type group struct {
		ds []*fwDrop
	}
	var order []string
	groups := map[string]*group{}
	for _, v := range vs {
		key := v.Src
		if v.Direction == eval.Out {
			key = v.Dst
		}
		d, ok := drops[key]
		if !ok || d.v.Src != v.Src || d.v.Dst != v.Dst {
			continue
		}
		k := "none"
		if d.v.Rule != nil {
			k = d.v.Rule.String()
		}
		if groups[k] == nil {
			groups[k] = &group{}
			order = append(order, k)
		}
		groups[k].ds = append(groups[k].ds, d)
	}
	fwd := e.fwd()
	for _, k := range order {
		g := groups[k]
		v := g.ds[0].v
		confirmed := false
		var ev []diag.Evidence
		for _, d := range g.ds {
			confirmed = confirmed || d.confirmed
			ev = append(ev, d.evidence...)
		}
		ev = append(ev, diag.Evidence{Label: "deciding rule", Value: ruleDesc(v, fwd)})
		if v.Hook != "" {
			ev = append(ev, diag.Evidence{Label: "hook", Value: string(v.Hook)})
		}
		ev = append(ev, diag.Evidence{Label: "advert evaluated", Value: packetDesc(v)})
		for _, n := range v.Notes {
			ev = append(ev, diag.Evidence{Label: "note", Value: n})
		}
		sev := diag.SeverityWarning
		if confirmed {
			sev = diag.SeverityCritical
		}
		id, summary, why := IDFirewallInputDrop, "", ""
		verb := strings.ToUpper(string(v.Verdict))
		if v.Direction == eval.In {
			summary = fmt.Sprintf("the firewall %ss VRRP adverts arriving on %s: %s", strings.ToLower(verb), in.Interface, ruleDesc(v, fwd))
			why = `tcpdump and other captures see packets before the firewall, so adverts visible there can still be dropped before they reach keepalived's socket. ` +
				`A backup that does not receive the master's adverts becomes master itself: both nodes hold the virtual addresses (split brain).`
			if !confirmed {
				why += ` No adverts arrived while the taps ran, so nothing is lost now, but the adverts of whichever router becomes master will be.`
			}
		} else {
			id = IDFirewallOutputDrop
			summary = fmt.Sprintf("the firewall %ss this node's VRRP adverts leaving %s: %s", strings.ToLower(verb), in.Interface, ruleDesc(v, fwd))
			why = `keepalived's adverts are refused by the OUTPUT path before they reach the wire (sendto fails with EPERM). ` +
				`Its peers hear nothing, so a backup takes over while this node believes it is master: both hold the virtual addresses.`
			if !confirmed {
				why += ` This node is backup now, so nothing is lost yet; once it becomes master its adverts will not leave.`
			}
		}
		e.add(diag.Finding{ID: id, Severity: sev, Subject: in.Subject(), Summary: summary, Evidence: ev, Explanation: why, Fix: firewallFix(v, fwd)})
		if len(v.NotFinal) > 0 {
			e.acceptNotFinal(in, v, sev, fwd)
		}
	}
	return drops
}

func (e *evaluator) acceptNotFinal(in *Instance, v Verdict, sev diag.Severity, fwd *Firewalld) {
	var ev []diag.Evidence
	for _, a := range v.NotFinal {
		ev = append(ev, diag.Evidence{Label: "accepted by", Value: fmt.Sprintf("rule `%s` in chain %s of table %s %s (%s, owner %s) — accepted, but not final", a.Text, a.Chain, a.Family, a.Table, a.Backend, a.Owner)})
	}
	ev = append(ev, diag.Evidence{Label: "then " + strings.ToLower(string(v.Verdict)) + "ed by", Value: ruleDesc(v, fwd)})
	e.add(diag.Finding{
		ID: IDAcceptNotFinal, Severity: sev, Subject: in.Subject(),
		Summary:  fmt.Sprintf("an ACCEPT for VRRP exists (%s %s), but a later base chain still %ss the adverts", v.NotFinal[0].Table, v.NotFinal[0].Chain, strings.ToLower(string(v.Verdict))),
		Evidence: ev,
		Explanation: `In netfilter an accept ends only the chain family it is in: every other base chain on the same hook still sees the packet, and a drop or reject there is final. ` +
			`This is what happens to the classic firewalld direct rules (firewall-cmd --direct ... -j ACCEPT) with firewalld's nftables backend: ` +
			`they land in iptables-nft's filter INPUT, and firewalld's own zone chain rejects the advert afterwards.`,
		Fix: "Allow VRRP in the chain that rejects it, not before it:\n" + narrowRule(v, fwd) + "\nThe accept above can then go.",
	})
}

func (e *evaluator) fwd() *Firewalld {
	if e.r.Firewall == nil {
		return nil
	}
	return e.r.Firewall.Firewalld
}

func packetDesc(v Verdict) string {
	s := fmt.Sprintf("VRRP (IP protocol 112, TTL 255) %s %s", map[eval.Direction]string{eval.In: "in on", eval.Out: "out of"}[v.Direction], v.Interface)
	return s + fmt.Sprintf(" from %s to %s", srcName(v.Src), v.Dst)
}

func srcName(a netip.Addr) string {
	if !a.IsValid() {
		return "any peer"
	}
	return a.String()
}

func heldList(hs []HeldAddr) string {
	var s []string
	for _, h := range hs {
		s = append(s, h.Addr.String())
	}
	return strings.Join(s, ", ")
}

func (r *Report) captureDuration() float64 {
	if r.Capture == nil {
		return 0
	}
	return r.Capture.Duration
}

func secs(s float64) string { return strings.TrimSuffix(fmt.Sprintf("%.1f", s), ".0") + " s" }

func (in *Instance) peer(a netip.Addr) *Peer {
	for i := range in.Peers {
		if in.Peers[i].Address == a {
			return &in.Peers[i]
		}
	}
	return nil
}

const (
	ownerExplanation = `Priority 255 means "address owner": the router that has the virtual addresses as its real addresses, and there can be only one. ` +
		`Two owners both start as master at once.`
	ownerFix = "Give all but the real owner a priority below 255 (e.g. priority 100)."
)

// ownerLowered reports an instance configured as the address owner (255)
// whose own adverts carry 254: keepalived lowers an owner that hears
// another owner, so a second router claims the addresses too.
func (e *evaluator) ownerLowered(in *Instance) {
	if in.Priority != 255 || !in.Sending() || in.Local.Priority != 254 {
		return
	}
	e.add(diag.Finding{
		ID: IDOwnerConflict, Severity: diag.SeverityCritical, Subject: in.Subject(),
		Summary: "this node is configured as the address owner (priority 255) but advertises 254: " +
			"keepalived lowered it after hearing another router claim to own the virtual addresses",
		Evidence:    []diag.Evidence{{Label: "this node", Value: "priority 255 configured, 254 in its adverts"}},
		Explanation: ownerExplanation + ` keepalived, hearing a second owner, logs "both configured as address owner" and lowers its own priority to 254, so the conflict hides behind a 254 on the wire.`,
		Fix:         ownerFix + " Look for the other owner with vrrpdoctor capture on this interface, or in the keepalived logs of the other nodes.",
	})
}

// lossCause explains why a peer's adverts seen on the wire never reached the
// socket, from the firewall verdict and the host facts; "" when delivered.
func (e *evaluator) lossCause(in *Instance, ifc *Interface, p *Peer, fwIn map[netip.Addr]*fwDrop) (id, cause string) {
	if p.Adverts == 0 || p.Socket > 0 {
		return "", ""
	}
	if m, u := dstKinds(p.Dsts); !in.Unicast && u && !m {
		return IDUnicastPeerMisconfig, fmt.Sprintf("they are sent unicast to %s, and this node, configured for multicast, listens on the group %s only", addrs(p.Dsts), in.Group)
	} else if in.Unicast && m && !u {
		return IDUnicastPeerMisconfig, fmt.Sprintf("they are sent to the multicast group %s, and this node, configured with unicast peers, listens on its unicast address only", addrs(p.Dsts))
	}
	if d := fwIn[p.Address]; d != nil {
		return IDFirewallInputDrop, ruleDesc(d.v, e.fwd()) + " " + strings.ToLower(string(d.v.Verdict)) + "s them"
	}
	if ifc != nil {
		for _, s := range ifc.Senders {
			if s.Sender == p.Address && s.RPFilterDrop {
				return IDRPFilterDrop, fmt.Sprintf("rp_filter (%s) drops them: the route back to %s does not use %s", rpMode(ifc), p.Address, in.Interface)
			}
		}
	}
	for _, v := range in.FirewallIn {
		if (v.Src == p.Address || !v.Src.IsValid()) && v.Verdict == eval.Unknown {
			return IDNotDelivered, "the firewall evaluator could not decide whether the firewall drops them: " + v.UnknownReason
		}
	}
	return IDNotDelivered, "neither the firewall evaluator nor the reverse-path check explains it"
}

// dstKinds says whether the destinations include multicast and unicast
// addresses.
func dstKinds(ds []netip.Addr) (multicast, unicast bool) {
	for _, d := range ds {
		if d.IsMulticast() {
			multicast = true
		} else {
			unicast = true
		}
	}
	return multicast, unicast
}

func rpMode(ifc *Interface) string {
	if ifc.RPFilter == nil {
		return "on"
	}
	return ifc.RPFilter.Mode
}

// delivery reports peers whose adverts reached the wire but not the socket,
// when no firewall finding already says why.
func (e *evaluator) delivery(in *Instance, ifc *Interface, fwIn map[netip.Addr]*fwDrop) {
	for i := range in.Peers {
		p := &in.Peers[i]
		id, cause := e.lossCause(in, ifc, p, fwIn)
		switch id {
		case "", IDFirewallInputDrop, IDUnicastPeerMisconfig:
			if id == "" && p.NotDelivered > 0 && p.Matched > 0 && p.NotDelivered*10 > p.Adverts && p.NotDelivered >= 2 {
				e.add(diag.Finding{
					ID: IDNotDelivered, Severity: diag.SeverityWarning, Subject: in.Subject(),
					Summary: fmt.Sprintf("%d of %d adverts from %s seen on the wire did not reach the VRRP socket", p.NotDelivered, p.Adverts, p.Address),
					Evidence: []diag.Evidence{{Label: "adverts from " + p.Address.String(),
						Value: fmt.Sprintf("%d on the wire, %d matched at the socket, %d not delivered", p.Adverts, p.Matched, p.NotDelivered)}},
					Explanation: `Some adverts are lost between the interface and the VRRP socket: a rate limit in the firewall, a full socket buffer or a firewall change while the check ran. Three lost in a row make a backup take over.`,
					Fix:         "Run vrrpdoctor check again; vrrpdoctor capture -i " + in.Interface + " shows the losses live.",
				})
			}
			continue
		case IDRPFilterDrop:
			var ev []diag.Evidence
			ev = append(ev, diag.Evidence{Label: "adverts from " + p.Address.String(), Value: fmt.Sprintf("%d seen on %s's wire, %d reached the VRRP socket", p.Adverts, in.Interface, p.Socket)})
			if ifc.RPFilter != nil {
				ev = append(ev, diag.Evidence{Label: "rp_filter", Value: fmt.Sprintf("%s (all=%d, %s=%d)", ifc.RPFilter.Mode, ifc.RPFilter.All, in.Interface, ifc.RPFilter.Interface)})
			}
			for _, s := range ifc.Senders {
				if s.Sender == p.Address {
					rb := s.RouteBack
					if rb == "" {
						rb = "none"
					}
					ev = append(ev, diag.Evidence{Label: "route back to " + p.Address.String(), Value: "via " + rb + "; kernel: " + s.Reason})
				}
			}
			e.add(diag.Finding{
				ID: IDRPFilterDrop, Severity: diag.SeverityCritical, Subject: in.Subject(),
				Summary:  fmt.Sprintf("reverse-path filtering drops the adverts of %s on %s", p.Address, in.Interface),
				Evidence: ev,
				Explanation: `With rp_filter the kernel drops a packet when the route back to its source does not leave through the interface it came in on (strict) or does not exist at all (loose). ` +
					`This happens before the firewall and before any socket, so captures show the adverts but keepalived never gets them and takes over as master.`,
				Fix: fmt.Sprintf("Add a route to %s through %s, or relax the filter on it: sysctl -w net.ipv4.conf.%s.rp_filter=2 (and net.ipv4.conf.all.rp_filter=2 if all is 1); persist it in /etc/sysctl.d/.", p.Address, in.Interface, in.Interface),
			})
		default:
			e.add(diag.Finding{
				ID: IDNotDelivered, Severity: diag.SeverityCritical, Subject: in.Subject(),
				Summary:  fmt.Sprintf("%d adverts from %s reached %s's wire, none the VRRP socket", p.Adverts, p.Address, in.Interface),
				Evidence: []diag.Evidence{{Label: "adverts from " + p.Address.String(), Value: fmt.Sprintf("%d on the wire, %d at the socket", p.Adverts, p.Socket)}, {Label: "cause", Value: cause}},
				Explanation: `Something on this host discards the adverts between the interface and the VRRP socket. ` +
					`Candidates the evaluator cannot see: tc or XDP programs, ebtables/bridge filtering, a socket filter, security modules.`,
				Fix: "Trace one advert through netfilter: vrrpdoctor fw explain --trace -i " + in.Interface + " (or nft monitor trace with a meta nftrace rule), and check tc filter show dev " + in.Interface + " ingress.",
			})
		}
	}
}

// splitBrain reports peers acting as master while this node does too, and
// says whether it did: adverts of both sent at once where no takeover would
// (Peer.Concurrent), or this node holding its addresses throughout the check
// while a peer advertised, and acting as master itself — advertising, its
// adverts dropped on the way out, or its daemon not getting or refusing
// (refused: the mismatches per peer) the peer's adverts.
func (e *evaluator) splitBrain(in *Instance, ifc *Interface, fwIn, fwOut map[netip.Addr]*fwDrop, refused map[netip.Addr][]string) bool {
	fired := false
	var outDrop *fwDrop
	for _, d := range fwOut {
		if d.confirmed {
			outDrop = d
		}
	}
	for _, p := range in.advertising() {
		var sent uint64
		if in.Local != nil {
			sent = in.Local.Adverts
		}
		// keepalived masters that discard each other's adverts may take
		// turns rather than overlap, or one may stay silent (each advert it
		// discards re-arms its timer) while it holds the addresses.
		lossID, _ := e.lossCause(in, ifc, p, fwIn)
		silent := len(in.Held) > 0 && !in.Sending() && len(e.r.Processes) > 0 && (len(refused[p.Address]) > 0 || lossID != "")
		// When this node advertises and gets and accepts the peer's
		// adverts, both routers see each other: the lower priority one
		// steps down at the first advert it hears from the higher, so
		// only Concurrent tells a split brain from a takeover or
		// preemption. Holding the addresses at both ends of the watch
		// proves nothing then: a preemption at the watch's end leaves
		// the loser's addresses in place until it has heard the winner.
		// Other virtual addresses (vip-mismatch, a warning as not every
		// daemon discards such adverts) leave it unproven: keepalived's
		// masters then take turns rather than overlap.
		heard := in.Sending() && p.Socket > 0 && len(refused[p.Address]) == 0 &&
			(len(in.VIPs) == 0 || len(p.VIPs) == 0 || slices.Equal(sortedAddrs(in.VIPs), sortedAddrs(p.VIPs)))
		switch {
		case in.Sending() && p.Concurrent > 0:
		case len(in.Held) > 0 && outDrop != nil:
		case len(in.Held) > 0 && sent > 0 && !heard:
		case silent:
		default:
			continue
		}
		fired = true
		held := "holds no virtual address"
		if len(in.Held) > 0 {
			held = "holds " + heldList(in.Held)
		}
		us := in.Priority
		if in.Sending() {
			us = in.Local.Priority
		}
		self := fmt.Sprintf("master: %d adverts sent at priority %d, %s", sent, us, held)
		if in.Sending() {
			self = fmt.Sprintf("master: %d adverts sent at priority %d from %s, %s", sent, us, in.Local.Address, held)
		}
		ev := []diag.Evidence{
			{Label: "this node", Value: self},
			{Label: "peer " + p.Address.String(), Value: fmt.Sprintf("master too: %d adverts at priority %d seen on %s's wire, %d reached the VRRP socket", p.Adverts, p.Priority, in.Interface, p.Socket)},
		}
		if p.Concurrent > 0 {
			ev = append(ev, diag.Evidence{Label: "both advertising", Value: fmt.Sprintf("%d %s sent while the other router was already advertising (a takeover sends none)", p.Concurrent, plural(int(p.Concurrent), "advert", "adverts"))})
		}
		if len(in.Held) > 0 {
			ev = append(ev, diag.Evidence{Label: "addresses", Value: fmt.Sprintf("this node held %s before and after the %s watch, while %s advertised", heldList(in.Held), secs(e.r.captureDuration()), p.Address)})
		}
		var summary, fix string
		id, cause := e.lossCause(in, ifc, p, fwIn)
		switch {
		case silent && outDrop == nil:
			why := strings.Join(refused[p.Address], ", ")
			if why == "" {
				why = lossID
			}
			summary = fmt.Sprintf("This node holds %s while %s is master for VRID %d at priority %d, and it discards %s's adverts (%s): its VRRP daemon acts as master too — both nodes hold the virtual addresses.",
				heldList(in.Held), p.Address, in.VRID, p.Priority, p.Address, why)
			ev = append(ev, diag.Evidence{Label: "cause", Value: "this node's daemon refuses or does not get the master's adverts (see " + why + "); it stays silent while it hears them, which is why it sent none"})
			fix = "Correct what the " + why + " finding reports, so that this node accepts the master's adverts and falls back to backup."
		case !in.Sending() && outDrop != nil:
			summary = fmt.Sprintf("This node acts as MASTER for VRID %d and %s, but none of its adverts leave it: %s %ss them. So %s (priority %d) does not hear it and is master too.",
				in.VRID, held, ruleDesc(outDrop.v, e.fwd()), strings.ToLower(string(outDrop.v.Verdict)), p.Address, p.Priority)
			ev = append(ev, diag.Evidence{Label: "cause", Value: "this node's adverts are dropped on the way out (see firewall-output-drop)"})
			fix = firewallFix(outDrop.v, e.fwd())
		case id != "":
			summary = fmt.Sprintf("This node is MASTER for VRID %d and %s, but %s advertises VRID %d at priority %d — both nodes are master. %d of its adverts reached %s, %d reached the VRRP socket: %s.",
				in.VRID, held, p.Address, in.VRID, p.Priority, p.Adverts, in.Interface, p.Socket, cause)
			ev = append(ev, diag.Evidence{Label: "cause", Value: cause + " (see " + id + ")"})
			fix = "Fix the cause on this node (see the " + id + " finding)."
			if d := fwIn[p.Address]; d != nil {
				fix = firewallFix(d.v, e.fwd())
			}
		case wins(us, in.Local.Address, p.Priority, p.Address):
			summary = fmt.Sprintf("%s also advertises VRID %d (priority %d) while this node is master (priority %d): it does not hear us. Run vrrpdoctor check there.",
				p.Address, in.VRID, p.Priority, us)
			ev = append(ev, diag.Evidence{Label: "cause", Value: fmt.Sprintf("this node receives %s's adverts and, with the higher priority, rightly stays master; %s should fall back to backup on hearing ours, so ours do not reach its VRRP daemon (or it discards them)", p.Address, p.Address)})
			fix = fmt.Sprintf("On %s: vrrpdoctor check (its firewall, rp_filter or multicast membership drops our adverts, the network between us filters multicast, or a mismatch makes it discard them). "+
				"Then compare both nodes: vrrpdoctor check --json > this.json here and there, and vrrpdoctor check --combine this.json that.json.", p.Address)
		default:
			summary = fmt.Sprintf("%s advertises VRID %d at priority %d, above ours (%d), and its adverts reach this node's VRRP socket, yet this node stays master: it discards them.",
				p.Address, in.VRID, p.Priority, us)
			ev = append(ev, diag.Evidence{Label: "cause", Value: "the adverts arrive but are refused: see the mismatch findings for this VRID (version, interval, authentication, addresses, TTL, checksum)"})
			fix = "Correct the mismatch reported for this VRID so that both nodes accept each other's adverts."
		}
		e.add(diag.Finding{
			ID: IDSplitBrain, Severity: diag.SeverityCritical, Subject: in.Subject(), Summary: summary, Evidence: ev,
			Explanation: `In VRRP only the master sends adverts; a backup stays silent as long as it hears the master. ` +
				`Here both routers act as master at once, so each holds the virtual addresses: ` +
				`traffic for them goes to whichever answered ARP or neighbour discovery last. A capture with tcpdump shows both routers' adverts and proves nothing, ` +
				`because it looks before the firewall; the socket tap sees what the VRRP daemon gets.`,
			Fix: fix,
		})
	}
	return fired
}

// wins says whether priority a at address aa beats priority b at ab (RFC
// 5798 §6.4.3: higher priority, then higher primary address).
func wins(a uint8, aa netip.Addr, b uint8, ab netip.Addr) bool {
	if a != b {
		return a > b
	}
	return aa.Compare(ab) > 0
}

func (e *evaluator) heldByBackup(in *Instance, fwOut map[netip.Addr]*fwDrop) {
	if len(in.Held) == 0 || in.Sending() {
		return
	}
	for _, d := range fwOut {
		if d.confirmed {
			return // firewall-output-drop explains it
		}
	}
	masters := in.advertising()
	sev := diag.SeverityWarning
	var ev []diag.Evidence
	ev = append(ev, diag.Evidence{Label: "held here", Value: heldList(in.Held) + " on " + in.Held[0].Interface},
		diag.Evidence{Label: "adverts sent", Value: fmt.Sprintf("none in %s: this node is not master", secs(e.r.captureDuration()))})
	summary := fmt.Sprintf("this node holds %s but does not advertise VRID %d", heldList(in.Held), in.VRID)
	for _, m := range masters {
		sev = diag.SeverityCritical
		ev = append(ev, diag.Evidence{Label: "master", Value: fmt.Sprintf("%s advertises at priority %d (%d adverts)", m.Address, m.Priority, m.Adverts)})
	}
	if len(masters) > 0 {
		summary += fmt.Sprintf(", while %s is master: both answer for the virtual addresses", masters[0].Address)
	}
	e.add(diag.Finding{
		ID: IDVIPHeldByBackup, Severity: sev, Subject: in.Subject(), Summary: summary, Evidence: ev,
		Explanation: `Only the master holds the virtual addresses. A backup holding them answers ARP or neighbour discovery for them too, so clients reach either node at random. ` +
			`Usually they were left behind by a VRRP daemon that was killed (kill -9, a crash) or added by hand or by another tool.`,
		Fix: fmt.Sprintf("Remove them here: ip addr del <VIP>/<prefix> dev %s (keepalived adds them back if it becomes master), and check that no other tool manages them.", in.Held[0].Interface),
	})
}

// compare checks one peer's adverts against this node's configuration.
func (e *evaluator) compare(in *Instance, p Peer) {
	subj := in.Subject()
	peerName := "peer " + p.Address.String()
	// version
	if in.Version != 0 {
		for _, v := range p.Versions {
			if v != in.Version {
				e.add(diag.Finding{
					ID: IDVersionMismatch, Severity: diag.SeverityWarning, Subject: subj,
					Summary:  fmt.Sprintf("%s advertises VRID %d with VRRPv%d, this node is configured for VRRPv%d", p.Address, in.VRID, v, in.Version),
					Evidence: []diag.Evidence{{Label: "this node", Value: fmt.Sprintf("version %d (%s)", in.Version, in.Pos)}, {Label: peerName, Value: fmt.Sprintf("VRRPv%d adverts: %d", v, p.Adverts)}},
					Explanation: `VRRPv2 and VRRPv3 adverts differ in format; a router ignores adverts of the other version. ` +
						`Routers that ignore each other both become master.`,
					Fix: "Use the same version on both nodes: vrrp_version in global_defs, or version in the vrrp_instance.",
				})
				break
			}
		}
	}
	if in.AdvertInt > 0 && math.Abs(p.Interval-in.AdvertInt) > 0.005 {
		e.add(diag.Finding{
			ID: IDIntervalMismatch, Severity: diag.SeverityWarning, Subject: subj,
			Summary:  fmt.Sprintf("%s advertises every %s, this node is configured for %s", p.Address, secs2(p.Interval), secs2(in.AdvertInt)),
			Evidence: []diag.Evidence{{Label: "this node", Value: "advert_int " + secs2(in.AdvertInt) + " (" + in.Pos + ")"}, {Label: peerName, Value: "declares " + secs2(p.Interval)}},
			Explanation: `All routers of a virtual router must use the same advert interval. A VRRPv2 router discards adverts with another interval (RFC 3768 §7.1) and takes over; ` +
				`a VRRPv3 backup adopts the master's, but failover timing then differs per node.`,
			Fix: fmt.Sprintf("Set the same advert_int on both nodes, e.g. advert_int %s.", strings.TrimSuffix(secs2(p.Interval), "s")),
		})
	}
	if in.Version == 2 && slices.Contains(p.Versions, 2) && in.Auth != "" && p.Auth != "" {
		if p.Auth != in.Auth || (in.Auth == "PASS" && p.AuthData != in.AuthPass) {
			what := "authentication type"
			if p.Auth == in.Auth {
				what = "password"
			}
			e.add(diag.Finding{
				ID: IDAuthMismatch, Severity: diag.SeverityWarning, Subject: subj,
				Summary: fmt.Sprintf("%s uses another VRRPv2 %s than this node", p.Address, what),
				Evidence: []diag.Evidence{
					{Label: "this node", Value: "auth_type " + in.Auth, Secret: quoteIf(in.Auth == "PASS", in.AuthPass)},
					{Label: peerName, Value: "auth_type " + p.Auth, Secret: quoteIf(p.Auth == "PASS", p.AuthData)},
				},
				Explanation: `A VRRPv2 router discards adverts whose authentication type or password differs from its own, and takes over as master. ` +
					`Only the first 8 characters of auth_pass count; the password travels in clear in every advert.`,
				Fix: "Use the same authentication block on both nodes (or none on both): authentication { auth_type PASS auth_pass <same 8 characters> }",
			})
		}
	}
	if len(in.VIPs) > 0 && len(p.VIPs) > 0 {
		ours, theirs := sortedAddrs(in.VIPs), sortedAddrs(p.VIPs)
		if !slices.Equal(ours, theirs) {
			id, sev := IDVIPMismatch, diag.SeverityWarning
			summary := fmt.Sprintf("%s advertises other virtual addresses for VRID %d than this node", p.Address, in.VRID)
			why := `All routers of one virtual router must protect the same addresses; after a failover the ones missing on the new master become unreachable.`
			fix := "Give both nodes the same virtual_ipaddress block."
			if disjoint(ours, theirs) {
				id, sev = IDVRIDCollision, diag.SeverityCritical
				summary = fmt.Sprintf("%s advertises VRID %d for unrelated addresses (%s): another cluster on this segment uses the same VRID", p.Address, in.VRID, addrs(theirs))
				why = `VRIDs must be unique per segment. Two clusters with one VRID read each other's adverts: the lower priority side of each gives up mastership to a router that does not hold its addresses, or they fight, and keepalived logs address-list mismatches.`
				fix = fmt.Sprintf("Give one of the clusters another virtual_router_id (free on this segment); vrrpdoctor analyze on a capture of the segment lists the VRIDs in use.")
			}
			e.add(diag.Finding{
				ID: id, Severity: sev, Subject: subj, Summary: summary,
				Evidence:    []diag.Evidence{{Label: "this node", Value: addrs(ours)}, {Label: peerName, Value: addrs(theirs)}},
				Explanation: why, Fix: fix,
			})
		}
	}
	e.ttl(in, p)
	if p.Checksum.OldUnicast > 0 && in.OldUnicastChecksum == "never" {
		e.add(diag.Finding{
			ID: IDChecksumMismatch, Severity: diag.SeverityWarning, Subject: subj,
			Summary: fmt.Sprintf("%s sums its unicast adverts as keepalived before 1.3.6 did; old_unicast_checksum never makes this node refuse %d of them", p.Address, p.Checksum.OldUnicast),
			Evidence: []diag.Evidence{
				{Label: peerName, Value: checksumKind(p.Checksum)},
				{Label: "this node", Value: "old_unicast_checksum never (" + in.Pos + ")"},
			},
			Explanation: `keepalived before 1.3.6 (CentOS 7 ships 1.3.5) put the group 224.0.0.18, not the unicast peer, in the pseudo-header of its VRRPv3 checksum. ` +
				`keepalived since then, and vrrpdoctor run, accept that checksum and switch to it, unless old_unicast_checksum never is set: then they discard those adverts and become master too.`,
			Fix: "Remove never from old_unicast_checksum on this node (or upgrade the peer's keepalived).",
		})
	}
	if p.Checksum.Errors > 0 {
		e.add(diag.Finding{
			ID: IDChecksumMismatch, Severity: diag.SeverityWarning, Subject: subj,
			Summary:     fmt.Sprintf("%d of %d adverts from %s carry a checksum that matches no variant", p.Checksum.Errors, p.Adverts, p.Address),
			Evidence:    []diag.Evidence{{Label: peerName, Value: fmt.Sprintf("%d bad, %d message-only, %d pseudo-header", p.Checksum.Errors, p.Checksum.Message, p.Checksum.PseudoHeader)}},
			Explanation: `Receivers discard adverts with a wrong checksum and take over as master. The cause is corruption on the path or an implementation that computes it differently.`,
			Fix:         "Find the sender's implementation and version and align it with its peers.",
		})
	} else if in.Family == 4 && in.Local != nil && slices.Contains(p.Versions, 3) && slices.Contains(in.Local.Versions, 3) {
		lm, lp := in.Local.Checksum.Message > 0, in.Local.Checksum.PseudoHeader > 0
		pm, pp := p.Checksum.Message > 0, p.Checksum.PseudoHeader > 0
		if (lm && pp && !lp) || (lp && pm && !pp) {
			e.add(diag.Finding{
				ID: IDChecksumMismatch, Severity: diag.SeverityWarning, Subject: subj,
				Summary: fmt.Sprintf("%s and this node compute the VRRPv3 checksum differently", p.Address),
				Evidence: []diag.Evidence{
					{Label: "this node", Value: checksumKind(in.Local.Checksum)},
					{Label: peerName, Value: checksumKind(p.Checksum)},
				},
				Explanation: `RFC 5798 sums an IP pseudo-header plus the message; some VRRPv3 implementations over IPv4 sum the message only, like VRRPv2. A router that accepts only one variant discards the other's adverts.`,
				Fix:         "Align the implementations (keepalived: old_unicast_checksum, or upgrade the older side).",
			})
		}
	}
	if p.Priority > 0 && in.priority() > 0 {
		us := in.priority()
		switch {
		case us == 255 && p.Priority == 254 && !in.Sending():
			// An owner never stays backup; keepalived lowers an owner
			// that hears a second one to 254, so this master was one.
			e.add(diag.Finding{
				ID: IDOwnerConflict, Severity: diag.SeverityCritical, Subject: subj,
				Summary: fmt.Sprintf("this node is configured as the address owner (priority 255) yet stays backup to %s advertising 254: "+
					"another router claims to own the virtual addresses too, and keepalived lowered the owners it saw to 254", p.Address),
				Evidence:    []diag.Evidence{{Label: "this node", Value: "priority 255 configured, not advertising"}, {Label: peerName, Value: "priority 254, master"}},
				Explanation: ownerExplanation + ` keepalived, hearing a second owner, logs "both configured as address owner" and lowers its own priority to 254, so the conflict hides behind a 254 on the wire.`,
				Fix:         ownerFix,
			})
		case us == 255 && p.Priority == 255:
			e.add(diag.Finding{
				ID: IDOwnerConflict, Severity: diag.SeverityCritical, Subject: subj,
				Summary:     fmt.Sprintf("both this node and %s claim to own the virtual addresses (priority 255)", p.Address),
				Evidence:    []diag.Evidence{{Label: "this node", Value: "priority 255"}, {Label: peerName, Value: "priority 255"}},
				Explanation: ownerExplanation,
				Fix:         ownerFix,
			})
		case us == p.Priority:
			e.add(diag.Finding{
				ID: IDPriorityTie, Severity: diag.SeverityWarning, Subject: subj,
				Summary:  fmt.Sprintf("this node and %s both have priority %d", p.Address, us),
				Evidence: []diag.Evidence{{Label: "this node", Value: fmt.Sprintf("priority %d", us)}, {Label: peerName, Value: fmt.Sprintf("priority %d", p.Priority)}},
				Explanation: `With equal priorities the higher IP address wins (RFC 5798 §6.4.3), so which node is master depends on addressing, not intent, ` +
					`and an address change silently swaps the roles.`,
				Fix: "Give the intended master a higher priority, e.g. priority 150 there and 100 on the backup.",
			})
		}
	}
	e.unicast(in, p)
}

func (e *evaluator) ttl(in *Instance, p Peer) {
	lo, hi := 255, 255
	if in.Unicast {
		for _, u := range in.UnicastPeers {
			if u.Addr == p.Address {
				lo, hi = u.MinTTL, u.MaxTTL
			}
		}
		if lo == 0 && hi == 255 {
			return // keepalived does not check the TTL of unicast adverts unless min_ttl/max_ttl say so
		}
	}
	var bad []string
	for _, t := range p.TTLs {
		if t < lo || t > hi {
			bad = append(bad, fmt.Sprint(t))
		}
	}
	if len(bad) == 0 {
		return
	}
	field := "TTL"
	if in.Family == 6 {
		field = "hop limit"
	}
	e.add(diag.Finding{
		ID: IDTTLNot255, Severity: diag.SeverityWarning, Subject: in.Subject(),
		Summary: fmt.Sprintf("adverts from %s arrive with %s %s, not %s", p.Address, field, strings.Join(bad, ", "), ttlRange(lo, hi)),
		Evidence: []diag.Evidence{
			{Label: "peer " + p.Address.String(), Value: fmt.Sprintf("%s values %v in %d adverts", field, p.TTLs, p.Adverts)},
		},
		Explanation: `A VRRP router sends every advert with ` + field + ` 255 and receivers discard any other value (RFC 5798 §7.1): it proves the advert was not forwarded. ` +
			`A lower value means a router forwarded it or something rewrites the header (a mangle rule, a tunnel).`,
		Fix: `Keep the peers on one layer-2 segment, or find the rule that changes it (nft list ruleset | grep -E 'ttl|hoplimit'; iptables-save | grep -i ttl). Across a routed path use unicast_peer { <peer> min_ttl <n> }.`,
	})
}

func ttlRange(lo, hi int) string {
	if lo == hi {
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("within %d–%d", lo, hi)
}

func (e *evaluator) unicast(in *Instance, p Peer) {
	var multicast, unicast []netip.Addr
	for _, d := range p.Dsts {
		if d.IsMulticast() {
			multicast = append(multicast, d)
		} else {
			unicast = append(unicast, d)
		}
	}
	var summary, fix string
	ev := []diag.Evidence{{Label: "peer " + p.Address.String(), Value: "sends to " + addrs(p.Dsts)}}
	switch {
	case in.Unicast && len(multicast) > 0 && len(unicast) == 0:
		summary = fmt.Sprintf("%s sends multicast adverts while this node is configured for unicast peers", p.Address)
		ev = append(ev, diag.Evidence{Label: "this node", Value: "unicast_peer " + peerList(in.UnicastPeers)})
		fix = "Configure both nodes the same way: unicast_src_ip and unicast_peer { <the other node> } on both, or neither."
	case !in.Unicast && len(unicast) > 0 && len(multicast) == 0:
		summary = fmt.Sprintf("%s sends unicast adverts to %s while this node listens on the multicast group", p.Address, addrs(unicast))
		ev = append(ev, diag.Evidence{Label: "this node", Value: "multicast to " + in.Group.String()})
		fix = fmt.Sprintf("Add unicast_src_ip <this node's address> and unicast_peer { %s } here, or remove unicast_peer there.", p.Address)
	case in.Unicast && len(in.UnicastPeers) > 0 && !slices.ContainsFunc(in.UnicastPeers, func(u UnicastPeer) bool { return u.Addr == p.Address }):
		summary = fmt.Sprintf("%s advertises VRID %d to this node but is not in its unicast_peer list", p.Address, in.VRID)
		ev = append(ev, diag.Evidence{Label: "this node", Value: "unicast_peer " + peerList(in.UnicastPeers)})
		fix = fmt.Sprintf("Add %s to unicast_peer (or correct the address listed there), on both nodes.", p.Address)
	default:
		return
	}
	e.add(diag.Finding{
		ID: IDUnicastPeerMisconfig, Severity: diag.SeverityWarning, Subject: in.Subject(), Summary: summary, Evidence: ev,
		Explanation: `A keepalived instance with unicast_peer sends its adverts to those addresses only and listens on its unicast source address, not on the multicast group; ` +
			`one without listens on the group only. When the two nodes disagree, or list the wrong address, each misses the other's adverts and both become master.`,
		Fix: fix,
	})
}

func peerList(ps []UnicastPeer) string {
	var as []netip.Addr
	for _, p := range ps {
		as = append(as, p.Addr)
	}
	return addrs(as)
}

func (e *evaluator) collision(in *Instance) {
	// Two or more other routers advertising at once, besides this node:
	// more masters than one cluster can have.
	ps := in.advertising()
	if len(ps) < 2 {
		return
	}
	var ev []diag.Evidence
	for _, p := range ps {
		ev = append(ev, diag.Evidence{Label: "peer " + p.Address.String(), Value: fmt.Sprintf("%d adverts at priority %d for %s", p.Adverts, p.Priority, addrs(p.VIPs))})
	}
	e.add(diag.Finding{
		ID: IDVRIDCollision, Severity: diag.SeverityCritical, Subject: in.Subject(),
		Summary:     fmt.Sprintf("%d other routers advertise VRID %d at the same time", len(ps), in.VRID),
		Evidence:    ev,
		Explanation: `Only one master advertises a virtual router. Several senders at once mean either several clusters share this VRID on the segment, or their members do not hear each other.`,
		Fix:         "Give each cluster on the segment its own virtual_router_id, and run vrrpdoctor check on each sender.",
	})
}

func (e *evaluator) noAdverts(in *Instance) {
	for _, p := range in.Peers {
		if p.Adverts > 0 {
			return
		}
	}
	if in.Sending() || len(e.r.Processes) == 0 {
		return // a master hears nothing from a healthy backup; healthy says so
	}
	for _, v := range in.FirewallOut {
		if v.Verdict == eval.Drop || v.Verdict == eval.Reject {
			if len(in.Held) > 0 {
				return // firewall-output-drop: this node believes it is master
			}
		}
	}
	ev := []diag.Evidence{{Label: "capture", Value: fmt.Sprintf("no adverts for VRID %d on %s's wire in %s, from this node or any other", in.VRID, in.Interface, secs(e.r.captureDuration()))}}
	if in.Unicast {
		ev = append(ev, diag.Evidence{Label: "unicast peers", Value: peerList(in.UnicastPeers)})
	}
	e.add(diag.Finding{
		ID: IDNoAdvertsReceived, Severity: diag.SeverityWarning, Subject: in.Subject(),
		Summary:  fmt.Sprintf("nothing advertises VRID %d on %s: no master is heard and this node does not advertise either", in.VRID, in.Interface),
		Evidence: ev,
		Explanation: `No advert arrives on the wire at all, so no firewall on this host is involved. Either the peer is down or its VRRP daemon stopped, ` +
			`its own OUTPUT firewall drops its adverts, or the network does not carry multicast between the nodes (IGMP snooping on a switch without a querier, ` +
			`a cloud or hypervisor network without multicast). This node's daemon is not advertising either (it may be starting, or in FAULT state).`,
		Fix: "Run vrrpdoctor check on the peer. On networks without multicast use unicast: unicast_src_ip <this node> and unicast_peer { <the other node> } on both nodes.",
	})
}

func (e *evaluator) healthy(in *Instance) {
	ps := in.advertising()
	var summary string
	var ev []diag.Evidence
	switch {
	case in.Sending() && len(ps) == 0:
		summary = fmt.Sprintf("this node is MASTER for VRID %d on %s (priority %d) and holds %s; no other router advertises, as a backup should not",
			in.VRID, in.Interface, in.Local.Priority, orNone(heldList(in.Held)))
		ev = append(ev, diag.Evidence{Label: "adverts sent", Value: fmt.Sprintf("%d in %s", in.Local.Adverts, secs(e.r.captureDuration()))},
			diag.Evidence{Label: "note", Value: "a healthy backup is silent, so from here it cannot be told from a stopped one: check the peer too, or combine both nodes' reports (--combine)"})
	case !in.Sending() && len(ps) == 1:
		p := ps[0]
		summary = fmt.Sprintf("this node is BACKUP for VRID %d on %s; %s is MASTER at priority %d and %d of its %d adverts reached the VRRP socket",
			in.VRID, in.Interface, p.Address, p.Priority, p.Socket, p.Adverts)
		ev = append(ev, diag.Evidence{Label: "master " + p.Address.String(), Value: fmt.Sprintf("%d adverts on the wire, %d at the socket, virtual addresses %s", p.Adverts, p.Socket, addrs(p.VIPs))},
			diag.Evidence{Label: "virtual addresses here", Value: orNone(heldList(in.Held))})
	case in.Sending() && len(ps) == 1:
		// Both advertised, one after the other (split-brain found no
		// overlap): a takeover or preemption during the watch.
		p := ps[0]
		last := "this node"
		if p.Last.After(in.Local.Last) {
			last = p.Address.String()
		}
		summary = fmt.Sprintf("VRID %d on %s changed master during the watch (one after the other, not both at once): this node at priority %d and %s at priority %d; %s advertised last",
			in.VRID, in.Interface, in.Local.Priority, p.Address, p.Priority, last)
		ev = append(ev, diag.Evidence{Label: "this node", Value: fmt.Sprintf("%d adverts, last at %s", in.Local.Adverts, in.Local.Last.Format(time.RFC3339Nano))},
			diag.Evidence{Label: "peer " + p.Address.String(), Value: fmt.Sprintf("%d adverts on the wire, %d at the socket, last at %s", p.Adverts, p.Socket, p.Last.Format(time.RFC3339Nano))},
			diag.Evidence{Label: "virtual addresses here", Value: orNone(heldList(in.Held))},
			diag.Evidence{Label: "note", Value: "run check again for the settled state"})
	default:
		return
	}
	e.add(diag.Finding{ID: IDHealthy, Severity: diag.SeverityOK, Subject: in.Subject(), Summary: summary, Evidence: ev})
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func quoteIf(ok bool, s string) string {
	if !ok {
		return ""
	}
	return fmt.Sprintf("%q", s)
}

func checksumKind(c ChecksumCounts) string {
	s := fmt.Sprintf("%d adverts summed over the message only, %d over pseudo-header and message", c.Message, c.PseudoHeader)
	if c.OldUnicast > 0 {
		s += fmt.Sprintf(", %d over a pseudo-header to 224.0.0.18 (keepalived < 1.3.6 unicast)", c.OldUnicast)
	}
	return s
}

func secs2(s float64) string { return diag.FormatDuration(durationOf(s)) }

func sortedAddrs(as []netip.Addr) []netip.Addr {
	s := slices.Clone(as)
	slices.SortFunc(s, netip.Addr.Compare)
	return slices.Compact(s)
}

func disjoint(a, b []netip.Addr) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func addrs(as []netip.Addr) string {
	if len(as) == 0 {
		return "none"
	}
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
