package trace

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// Verdict is the kernel's verdict on a traced packet, as far as nftables
// shows it.
type Verdict string

// Verdicts of a traced packet.
const (
	// Accept: every nftables base chain the packet met let it through.
	// iptables-legacy tables, which traces do not show, may still drop it.
	Accept Verdict = "accept"
	// Drop: a rule (drop or reject) or a base chain's drop policy ended it.
	Drop Verdict = "drop"
	// Queue: handed to a user-space program, which decides.
	Queue Verdict = "queue"
	// Stolen: an expression took the packet over (for example a
	// forwarding or duplicating statement); its fate is not traced.
	Stolen Verdict = "stolen"
)

// Direction is where a traced packet was seen first.
type Direction string

// Directions of traced packets.
const (
	In  Direction = "in"  // arriving: netdev ingress or prerouting
	Out Direction = "out" // leaving the host: output
)

// VRRP is what the first bytes of a VRRP header say.
type VRRP struct {
	Version  int `json:"version"`
	Type     int `json:"type"`
	VRID     int `json:"vrid"`
	Priority int `json:"priority"`
}

// Packet is the kernel's trace of one packet through nftables.
type Packet struct {
	ID        uint32     `json:"id"`
	Time      time.Time  `json:"time"`
	Direction Direction  `json:"direction"`
	Family    int        `json:"family"`
	Src       netip.Addr `json:"src"`
	Dst       netip.Addr `json:"dst"`
	Proto     uint8      `json:"proto"`
	TTL       uint8      `json:"ttl"`
	InIface   string     `json:"in_iface,omitempty"`
	OutIface  string     `json:"out_iface,omitempty"`
	VRRP      *VRRP      `json:"vrrp,omitempty"`
	// Events are the packet's way through the ruleset, without the
	// events of vrrpdoctor's own trace table.
	Events  []Event `json:"events"`
	Verdict Verdict `json:"verdict"`
	// By is the event that decided: for Drop the rule or policy that
	// dropped; for Accept the accept (rule or policy) of the last base chain
	// that saw the packet; nil when no base chain but the tracer's saw it.
	By *Event `json:"by"`
}

// String is a one-line summary: addresses, interface, verdict and rule.
func (p *Packet) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s -> %s", p.Src, p.Dst)
	if p.Direction == In {
		fmt.Fprintf(&sb, " in on %s", p.InIface)
	} else {
		fmt.Fprintf(&sb, " out on %s", p.OutIface)
	}
	if p.VRRP != nil {
		fmt.Fprintf(&sb, " (VRRPv%d VRID %d priority %d)", p.VRRP.Version, p.VRRP.VRID, p.VRRP.Priority)
	}
	fmt.Fprintf(&sb, ": %s", strings.ToUpper(string(p.Verdict)))
	if p.By != nil {
		fmt.Fprintf(&sb, " by %s", p.By)
	}
	return sb.String()
}

// parseHeaders fills the packet's addresses from the network and transport
// headers of its first event.
func (p *Packet) parseHeaders(e Event) {
	nh := e.NetworkHeader
	switch {
	case len(nh) >= 20 && nh[0]>>4 == 4:
		p.Family = 4
		p.TTL, p.Proto = nh[8], nh[9]
		p.Src = netip.AddrFrom4([4]byte(nh[12:16]))
		p.Dst = netip.AddrFrom4([4]byte(nh[16:20]))
	case len(nh) >= 40 && nh[0]>>4 == 6:
		p.Family = 6
		p.Proto, p.TTL = nh[6], nh[7]
		p.Src = netip.AddrFrom16([16]byte(nh[8:24]))
		p.Dst = netip.AddrFrom16([16]byte(nh[24:40]))
	}
	th := e.TransportHeader
	if p.Proto == 112 && len(th) >= 3 {
		p.VRRP = &VRRP{Version: int(th[0] >> 4), Type: int(th[0] & 0xf), VRID: int(th[1]), Priority: int(th[2])}
	}
}

// decide sets the verdict from the events.
func (p *Packet) decide() {
	p.Verdict, p.By = Accept, nil
	for i := range p.Events {
		e := &p.Events[i]
		switch e.Verdict {
		case "accept":
			if e.Type == TypeRule || e.Type == TypePolicy {
				p.By = e
			}
		case "drop":
			p.Verdict, p.By = Drop, e
			return
		case "queue":
			p.Verdict, p.By = Queue, e
			return
		case "stolen":
			p.Verdict, p.By = Stolen, e
			return
		}
	}
}

// assembler groups trace events into packets.
//
// The kernel's trace ID is a hash of the skb's address, its flow hash and
// its input interface: every advert of one flow hashes alike, and skbs are
// reused, so IDs repeat from packet to packet. What marks a new packet is
// the tracer's own first chain: its rule sets nftrace, so its event is the
// first of every packet (netdev ingress on the devices traced there,
// prerouting on the others, output for the host's own packets).
type assembler struct {
	table string
	// ingress holds the interface indexes with an ingress trace chain.
	ingress map[uint32]bool
	quiet   time.Duration
	open    map[uint32]*pending
	names   func(idx uint32) string
}

type pending struct {
	p    *Packet
	last time.Time
}

func newAssembler(table string, ingress map[uint32]bool, quiet time.Duration, names func(uint32) string) *assembler {
	return &assembler{table: table, ingress: ingress, quiet: quiet, open: map[uint32]*pending{}, names: names}
}

// add takes one event and returns the packets it completes.
func (a *assembler) add(e Event, now time.Time) []*Packet {
	var done []*Packet
	if e.Table == a.table {
		dir, first := a.start(e)
		if !first {
			return nil
		}
		if old, ok := a.open[e.ID]; ok {
			done = append(done, a.finish(old.p))
		}
		p := &Packet{ID: e.ID, Time: now, Direction: dir, InIface: a.name(e.IIF), OutIface: a.name(e.OIF)}
		p.parseHeaders(e)
		a.open[e.ID] = &pending{p: p, last: now}
		return done
	}
	o, ok := a.open[e.ID]
	if !ok {
		return nil // a packet whose start the tracer did not see
	}
	o.last = now
	if e.Type == TypeRule && e.Handle == 0 && e.Verdict == "continue" {
		// The end of a chain's rules (the kernel's trailing pseudo-rule):
		// the return or policy event that follows says what happens.
		return nil
	}
	o.p.Events = append(o.p.Events, e)
	if e.Verdict == "drop" || e.Verdict == "queue" || e.Verdict == "stolen" {
		delete(a.open, e.ID)
		done = append(done, a.finish(o.p))
	}
	return done
}

// start reports whether a tracer event is a packet's first, and its direction.
func (a *assembler) start(e Event) (Direction, bool) {
	if len(e.NetworkHeader) == 0 {
		return "", false // not the first event of its chain
	}
	switch {
	case e.Family == ruleset.FamilyNetdev:
		return In, true
	case e.Chain == chainOutput:
		return Out, true
	case e.Chain == chainPrerouting:
		return In, !a.ingress[e.IIF]
	}
	return "", false
}

func (a *assembler) name(idx uint32) string {
	if idx == 0 {
		return ""
	}
	if a.names != nil {
		if n := a.names(idx); n != "" {
			return n
		}
	}
	return fmt.Sprintf("if%d", idx)
}

func (a *assembler) finish(p *Packet) *Packet {
	p.decide()
	return p
}

// flush completes the packets with no event for the quiet time (all of
// them when all is set): the kernel traces a packet's hooks within one
// pass, so silence means it went through.
func (a *assembler) flush(now time.Time, all bool) []*Packet {
	var done []*Packet
	for id, o := range a.open {
		if all || now.Sub(o.last) >= a.quiet {
			delete(a.open, id)
			done = append(done, a.finish(o.p))
		}
	}
	sortPackets(done)
	return done
}

// deadline is when the next open packet falls quiet.
func (a *assembler) deadline() (time.Time, bool) {
	var d time.Time
	for _, o := range a.open {
		if t := o.last.Add(a.quiet); d.IsZero() || t.Before(d) {
			d = t
		}
	}
	return d, !d.IsZero()
}

func sortPackets(ps []*Packet) {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Time.Before(ps[j].Time) })
}
