// Package check is the engine of `vrrpdoctor check`: it gathers what one node
// knows about its VRRP instances — the keepalived configuration, the VRRP
// daemons running, the virtual addresses this host holds, what the wire tap and
// the socket tap see for a few advert intervals, the firewall's verdict on the
// adverts in both directions and the host facts that decide delivery
// (interface state, group membership, rp_filter) — into a Report, and turns
// the report into findings with evidence, explanation and fix.
//
// Gathering (Run) and judging (Evaluate) are separate: Evaluate is a pure
// function of the facts, so a report read back from JSON can be judged again,
// and Combine can put the reports of two nodes side by side to give a
// cluster verdict.
package check

import (
	"net/netip"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/diag"
	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// Schema identifies the JSON document of a single-node report
// (docs/check.md).
const Schema = "vrrpdoctor-check/1"

// Report is the result of `vrrpdoctor check` on one node: the facts gathered
// and the findings they show. Its JSON form is documented in docs/check.md.
type Report struct {
	Schema   string    `json:"schema"`
	Node     string    `json:"node"`
	Time     time.Time `json:"time"`
	Status   string    `json:"status"`
	ExitCode int       `json:"exit_code"`

	Config    ConfigFacts `json:"config"`
	Processes []Process   `json:"processes"`
	// ProcessesUnreadable says the process list could not be read, so an
	// empty Processes proves nothing.
	ProcessesUnreadable bool         `json:"processes_unreadable,omitempty"`
	Interfaces          []Interface  `json:"interfaces"`
	Instances           []Instance   `json:"instances"`
	Firewall            *Firewall    `json:"firewall,omitempty"`
	Capture             *CaptureInfo `json:"capture,omitempty"`
	// Skipped lists what could not be checked, and why (e.g. "no
	// CAP_NET_RAW: wire and socket taps skipped").
	Skipped  []string       `json:"skipped"`
	Findings []diag.Finding `json:"findings"`
}

// ConfigFacts says which configuration was checked.
type ConfigFacts struct {
	// Path is the keepalived.conf read; empty when the instance came from
	// -i/--vrid.
	Path string `json:"path,omitempty"`
	// Source says how Path was chosen: "flag" (-c), "process" (the
	// configuration of the VRRP daemon running here), "default"
	// (/etc/keepalived/keepalived.conf) or "none" (-i/--vrid).
	Source string `json:"source"`
	// Errors are what keepalived would refuse, as file:line:col: message.
	Errors []string `json:"errors"`
	// Insecure are the configuration's security problems, as
	// file:line:col: message (never quoting a password): a file holding
	// auth_pass that others than root can read, a script run as root that
	// others can replace.
	Insecure []string `json:"insecure,omitempty"`
	// Unused counts the keywords vrrpdoctor reads past or does not know
	// (keepalived's warnings; not findings).
	Unused int `json:"unused,omitempty"`
}

// Process is a VRRP daemon running in this network namespace.
type Process struct {
	PID int `json:"pid"`
	// Kind is "keepalived" or "vrrpdoctor-run".
	Kind   string `json:"kind"`
	Config string `json:"config"`
	// nsUnknown is set when the process's network namespace could not be
	// read (another user's process, without privileges): it may run in
	// another namespace.
	nsUnknown bool
}

// Interface is the state of an interface a VRRP instance runs on, read
// before the taps opened (they join the VRRP groups themselves).
type Interface struct {
	Name      string         `json:"name"`
	Exists    bool           `json:"exists"`
	Up        bool           `json:"up"`
	LowerUp   bool           `json:"lower_up"`
	Multicast bool           `json:"multicast"`
	OperState string         `json:"oper_state,omitempty"`
	Addrs     []netip.Prefix `json:"addrs"`
	// JoinedVRRP4 and JoinedVRRP6 say whether the interface had joined
	// 224.0.0.18 and ff02::12 (nil: not known).
	JoinedVRRP4 *bool     `json:"joined_vrrp4,omitempty"`
	JoinedVRRP6 *bool     `json:"joined_vrrp6,omitempty"`
	RPFilter    *RPFilter `json:"rp_filter,omitempty"`
	// Senders is the kernel's reverse-path verdict on adverts from each
	// sender heard on the interface.
	Senders  []SenderCheck `json:"senders"`
	Problems []string      `json:"problems,omitempty"`
}

// RPFilter is the reverse-path filter that applies on an interface.
type RPFilter struct {
	All       int    `json:"all"`
	Interface int    `json:"interface"`
	Effective int    `json:"effective"`
	Mode      string `json:"mode"` // off, strict, loose
}

// SenderCheck is the kernel's input-routing verdict on an advert from Sender
// arriving on the interface.
type SenderCheck struct {
	Sender       netip.Addr `json:"sender"`
	RouteBack    string     `json:"route_back,omitempty"`
	Accepted     bool       `json:"accepted"`
	RPFilterDrop bool       `json:"rp_filter_drop"`
	Reason       string     `json:"reason,omitempty"`
}

// Instance is one VRRP instance: its configuration, what this node does for
// it and what the taps and the firewall say about its adverts.
type Instance struct {
	Name      string `json:"name,omitempty"`
	Pos       string `json:"position,omitempty"` // file:line:col of vrrp_instance
	Interface string `json:"interface"`
	VRID      uint8  `json:"vrid"`
	Family    uint8  `json:"family"`
	// Version, Priority, AdvertInt and Auth are 0 / "" when not known
	// (-i/--vrid without a configuration).
	Version   int     `json:"version"`
	Priority  uint8   `json:"priority"`
	State     string  `json:"state,omitempty"` // initial state configured: MASTER or BACKUP
	AdvertInt float64 `json:"advert_int_s"`
	Auth      string  `json:"auth,omitempty"` // none, PASS, AH
	// AuthPass is the VRRPv2 password; never in JSON.
	AuthPass     string        `json:"-"`
	VIPs         []netip.Addr  `json:"vips"`
	Group        netip.Addr    `json:"group,omitzero"`
	Unicast      bool          `json:"unicast"`
	SrcIP        netip.Addr    `json:"src_ip,omitzero"`
	UnicastPeers []UnicastPeer `json:"unicast_peers,omitempty"`
	Nopreempt    bool          `json:"nopreempt,omitempty"`
	// OldUnicastChecksum is the instance's old_unicast_checksum: "" (not
	// set), "set" or "never".
	OldUnicastChecksum string      `json:"old_unicast_checksum,omitempty"`
	Held               []HeldAddr  `json:"vips_held"`
	Local              *Advertiser `json:"local,omitempty"`
	Peers              []Peer      `json:"peers"`
	FirewallIn         []Verdict   `json:"firewall_in"`
	FirewallOut        []Verdict   `json:"firewall_out"`
	// Observed says the taps ran on the instance's interface, so Local and
	// Peers are measurements (empty means none seen).
	Observed bool `json:"observed"`
	// Sends are this node's own send attempts, when the VRRP speaker
	// reported them (a watch inside `vrrpdoctor run`); nil otherwise.
	Sends *SendFacts `json:"sends,omitempty"`
}

// SendFacts are the send attempts of this node's VRRP speaker for an
// instance, compared with what left on the wire.
type SendFacts struct {
	Attempts uint64 `json:"attempts"`
	// Failed counts the attempts sendto(2) refused (EPERM: a netfilter
	// OUTPUT drop); LastError is the latest error.
	Failed    uint64 `json:"failed"`
	LastError string `json:"last_error,omitempty"`
	// OnWire and Missing count the accepted attempts seen leaving on the
	// wire, and those never seen there.
	OnWire  uint64 `json:"on_wire"`
	Missing uint64 `json:"missing"`
}

// UnicastPeer is a unicast_peer with its accepted TTL range.
type UnicastPeer struct {
	Addr   netip.Addr `json:"addr"`
	MinTTL int        `json:"min_ttl"`
	MaxTTL int        `json:"max_ttl"`
}

// HeldAddr is a virtual address of an instance that this host holds.
type HeldAddr struct {
	Addr      netip.Addr `json:"addr"`
	Interface string     `json:"interface"`
}

// Advertiser is what one sender's adverts for an instance's VRID showed on
// this host's wire during the capture.
type Advertiser struct {
	Address  netip.Addr `json:"address"`
	Adverts  uint64     `json:"adverts"`
	Versions []int      `json:"versions"`
	Priority uint8      `json:"priority"` // last seen
	Interval float64    `json:"interval_s"`
	Auth     string     `json:"auth,omitempty"` // VRRPv2: none, PASS, AH
	// AuthData is the VRRPv2 password as sent; never in JSON.
	AuthData string         `json:"-"`
	VIPs     []netip.Addr   `json:"vips"`
	TTLs     []int          `json:"ttls"`
	Dsts     []netip.Addr   `json:"destinations"`
	Checksum ChecksumCounts `json:"checksum"`
	Resigned uint64         `json:"resigned"` // priority-0 adverts
	First    time.Time      `json:"first"`
	Last     time.Time      `json:"last"`
}

// ChecksumCounts counts adverts per checksum variant.
type ChecksumCounts struct {
	Message      uint64 `json:"message"`
	PseudoHeader uint64 `json:"pseudo_header"`
	Errors       uint64 `json:"errors"`
	// OldUnicast counts VRRPv3 unicast adverts summed over a pseudo-header
	// to 224.0.0.18, as keepalived before 1.3.6 did.
	OldUnicast uint64 `json:"old_unicast,omitempty"`
}

// Peer is another router advertising the instance's VRID, as this host saw
// it: on the wire (Adverts) and at a VRRP socket set up like keepalived's.
type Peer struct {
	Advertiser
	Socket       uint64 `json:"socket"`        // adverts delivered to the socket
	Matched      uint64 `json:"matched"`       // wire sightings the socket got too
	NotDelivered uint64 `json:"not_delivered"` // wire sightings the socket never got
	// Concurrent counts the adverts that show this node and the peer
	// acting as master at once, which no takeover does: the peer's, when
	// this node wins (higher priority, or equal and higher address), sent
	// after this node had advertised for 1.5 intervals and before its next
	// advert; this node's, when the peer wins, sent more than 1.5
	// intervals after the peer's first advert and before its next.
	Concurrent uint64 `json:"concurrent_adverts"`
}

// Verdict is the firewall evaluator's answer for one advert.
type Verdict struct {
	Direction eval.Direction `json:"direction"`
	Interface string         `json:"interface"`
	Src       netip.Addr     `json:"src,omitzero"`
	Dst       netip.Addr     `json:"dst"`
	Verdict   eval.Verdict   `json:"verdict"`
	Rule      *eval.RuleRef  `json:"rule"`
	// NotFinal are the accepts on the way that a later base chain
	// overrode.
	NotFinal      []eval.RuleRef `json:"accepted_not_final"`
	Hook          ruleset.Hook   `json:"hook,omitempty"` // of the deciding rule
	UnknownReason string         `json:"unknown_reason,omitempty"`
	Notes         []string       `json:"notes,omitempty"`
}

// Firewall says which firewall this host runs.
type Firewall struct {
	Backends  []ruleset.Backend `json:"backends"`
	Sources   []string          `json:"sources"`
	Warnings  []string          `json:"warnings,omitempty"`
	Firewalld *Firewalld        `json:"firewalld,omitempty"`
}

// Firewalld is what a running firewalld said.
type Firewalld struct {
	Version     string `json:"version,omitempty"`
	Backend     string `json:"backend,omitempty"`
	DefaultZone string `json:"default_zone,omitempty"`
	// Zones maps each instance interface to its zone.
	Zones map[string]string `json:"zones,omitempty"`
	// Direct lists firewalld's direct rules as firewall-cmd takes them.
	Direct []string `json:"direct_rules,omitempty"`
}

// CaptureInfo says how long and where the taps ran.
type CaptureInfo struct {
	Duration   float64        `json:"duration_s"`
	Interfaces []CaptureIface `json:"interfaces"`
}

// CaptureIface is the capture on one interface.
type CaptureIface struct {
	Name          string `json:"name"`
	Frames        uint64 `json:"frames"`
	KernelDropped uint64 `json:"kernel_dropped"`
	Error         string `json:"error,omitempty"`
	// Sockets lists the socket taps that could not open, and why.
	SocketErrors []string `json:"socket_errors,omitempty"`
}
