// Package metrics exposes a running vrrpdoctor — the VRRP daemon of
// `vrrpdoctor run` and its self-diagnosis, or the watcher of
// `vrrpdoctor run --monitor` — as Prometheus metrics.
//
// A Collector reads the daemon's status, the diagnosis's findings and its
// wire-versus-socket flows at each scrape, and keeps counters fed from the
// daemon's events (Observe, wired to vrrpcore/runtime's Options.OnEvent).
// Counters live in the Collector, not in the daemon's instances, so they
// survive a reload that restarts an instance.
//
// It writes the Prometheus text exposition format (version 0.0.4) itself
// rather than through github.com/prometheus/client_golang: linking that
// library (and the protobuf runtime under it) raised the daemon's peak RSS
// by 3.1 MB, a quarter of it, for a few dozen series. The tests parse the
// output with client_golang's own parser and check it with its linter.
package metrics

import (
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/diag"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
	vrrpruntime "github.com/vrrpdoctor/vrrpdoctor/vrrpcore/runtime"
)

// Flow is what the diagnosis counted for one sender's adverts on one
// interface: on the wire (AF_PACKET, what tcpdump sees) and at a VRRP
// socket (what the daemon gets after the firewall).
type Flow struct {
	Interface string
	Family    int // 4 or 6
	VRID      uint8
	Src       netip.Addr
	// Wire and Socket count the adverts seen at each tap since the
	// daemon started, across reloads.
	Wire, Socket uint64
	// DeliveryRatio is the share of the last window's adverts on the
	// wire that reached the socket, or -1 when nothing was seen on the
	// wire in it.
	DeliveryRatio float64
}

// Sources are read at every scrape; any may be nil (no daemon in monitor
// mode, no diagnosis with --no-diagnose). They are called concurrently
// with everything else and must be safe for that.
type Sources struct {
	Status   func() vrrpruntime.Status
	Findings func() []diag.Finding
	Flows    func() []Flow
}

// BuildInfo names the running binary.
type BuildInfo struct {
	Version, Commit, GoVersion string
}

// states are the instance states, in the order vrrpdoctor_instance_state
// reports them.
var states = []router.State{router.Initialize, router.Backup, router.Master, router.Fault}

// Severities that count as an active finding, in the order they are
// reported by vrrpdoctor_findings_active.
var activeSeverities = []diag.Severity{diag.SeverityInfo, diag.SeverityWarning, diag.SeverityCritical}

// Metric types of the exposition format.
const (
	gauge   = "gauge"
	counter = "counter"
)

// desc describes one metric: its name, help, type and label names.
type desc struct {
	name, help, typ string
	labels          []string
}

var (
	instLabels = []string{"vrrp_instance", "interface", "vrid", "family"}
	flowLabels = []string{"interface", "vrid", "family", "src"}

	descState = desc{"vrrpdoctor_instance_state",
		"State of a VRRP instance: 1 for the state it is in, 0 for the others.",
		gauge, append(instLabels[:4:4], "state")}
	descPriority = desc{"vrrpdoctor_instance_priority",
		"Effective priority of a VRRP instance (configured, as changed by tracking).",
		gauge, instLabels}
	descConfigured = desc{"vrrpdoctor_instance_configured_priority",
		"Priority of a VRRP instance in the configuration.",
		gauge, instLabels}
	descTransitions = desc{"vrrpdoctor_state_transitions_total",
		"State changes of VRRP instances, by reason.",
		counter, []string{"vrrp_instance", "from", "to", "reason"}}
	descSent = desc{"vrrpdoctor_adverts_sent_total",
		"Adverts the kernel accepted for sending.",
		counter, instLabels}
	descSendErrors = desc{"vrrpdoctor_advert_send_errors_total",
		"Adverts that could not be sent (e.g. EPERM from an OUTPUT firewall rule).",
		counter, instLabels}
	descReceived = desc{"vrrpdoctor_adverts_received_total",
		"Adverts read from the VRRP socket, by sender (without vrrp_instance when no instance runs the VRID).",
		counter, append(instLabels[:4:4], "src")}
	descDiscarded = desc{"vrrpdoctor_adverts_discarded_total",
		"Received adverts that were not acted on, by reason.",
		counter, append(instLabels[:4:4], "reason")}
	descLastMaster = desc{"vrrpdoctor_last_master_change_timestamp_seconds",
		"Time an instance last became Master or stopped being Master, in seconds since the epoch.",
		gauge, []string{"vrrp_instance"}}
	descWire = desc{"vrrpdoctor_wire_adverts_total",
		"Adverts seen on the wire (AF_PACKET, before the firewall) since the daemon started (reloads included), by sender.",
		counter, flowLabels}
	descSocket = desc{"vrrpdoctor_socket_adverts_total",
		"Adverts that reached a VRRP socket (after the firewall) since the daemon started (reloads included), by sender.",
		counter, flowLabels}
	descRatio = desc{"vrrpdoctor_delivery_ratio",
		"Share of a sender's adverts seen on the wire that reached the VRRP socket (0 to 1).",
		gauge, flowLabels}
	descFinding = desc{"vrrpdoctor_finding_active",
		"1 while the diagnosis reports a finding with this ID and severity, 0 once it cleared.",
		gauge, []string{"id", "severity"}}
	descFindings = desc{"vrrpdoctor_findings_active",
		"Number of findings the diagnosis reports, by severity.",
		gauge, []string{"severity"}}
	descBuild = desc{"vrrpdoctor_build_info",
		"Version of the running vrrpdoctor; always 1.",
		gauge, []string{"version", "commit", "goversion"}}
)

type instKey struct {
	instance, iface string
	vrid            uint8
	family          int
}

func (k instKey) labels() []string {
	return []string{k.instance, k.iface, strconv.Itoa(int(k.vrid)), familyName(k.family)}
}

type transKey struct{ instance, from, to, reason string }

type rxKey struct {
	inst instKey
	src  netip.Addr
}

type discardKey struct {
	inst   instKey
	reason string
}

type findingKey struct {
	id       string
	severity diag.Severity
}

// Collector gathers the metrics of a running vrrpdoctor.
type Collector struct {
	src   Sources
	build BuildInfo

	mu          sync.Mutex
	transitions map[transKey]uint64
	sent        map[instKey]uint64
	sendErrors  map[instKey]uint64
	received    map[rxKey]uint64
	discarded   map[discardKey]uint64
	lastMaster  map[string]time.Time
	// seen remembers every finding reported once, so that a cleared one
	// reads 0 instead of vanishing.
	seen map[findingKey]bool
}

// New returns a Collector reading src at each scrape.
func New(src Sources, build BuildInfo) *Collector {
	return &Collector{
		src:         src,
		build:       build,
		transitions: map[transKey]uint64{},
		sent:        map[instKey]uint64{},
		sendErrors:  map[instKey]uint64{},
		received:    map[rxKey]uint64{},
		discarded:   map[discardKey]uint64{},
		lastMaster:  map[string]time.Time{},
		seen:        map[findingKey]bool{},
	}
}

// Observe counts one event of the daemon. It is cheap and never blocks
// for long: it is called from the daemon's instance and socket goroutines.
func (c *Collector) Observe(e vrrpruntime.Event) {
	k := instKey{e.Instance, e.Interface, e.VRID, e.Family}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch e.Kind {
	case vrrpruntime.EventStateChange:
		c.transitions[transKey{e.Instance, e.From.String(), e.To.String(), e.Reason}]++
		if e.From == router.Master || e.To == router.Master {
			t := e.Time
			if t.IsZero() {
				t = time.Now()
			}
			c.lastMaster[e.Instance] = t
		}
	case vrrpruntime.EventAdvertSent:
		c.sent[k]++
	case vrrpruntime.EventSendFailed:
		c.sendErrors[k]++
	case vrrpruntime.EventAdvertReceived:
		rk := rxKey{k, e.Src}
		if _, ok := c.received[rk]; !ok && len(c.received) >= MaxSenderSeries {
			rk = rxKey{instKey{iface: e.Interface, family: e.Family}, netip.Addr{}}
		}
		c.received[rk]++
	case vrrpruntime.EventAdvertDiscarded:
		c.discarded[discardKey{k, e.Reason}]++
	}
}

// MaxSenderSeries bounds the series of vrrpdoctor_adverts_received_total:
// every sender on the LAN, of any VRID, gets one, and anyone on the LAN can
// send from many addresses. Beyond it, adverts from new senders are counted
// under src="other", vrid="0", without vrrp_instance.
const MaxSenderSeries = 1024

// srcLabel is a sender's label value; the zero address stands for the
// senders beyond MaxSenderSeries.
func srcLabel(a netip.Addr) string {
	if !a.IsValid() {
		return "other"
	}
	return a.String()
}

// series is one sample: label values in the order of its desc's labels.
type series struct {
	values []string
	v      float64
}

// family is a desc and its samples.
type family struct {
	d      desc
	series []series
}

func (f *family) add(v float64, values ...string) {
	f.series = append(f.series, series{values, v})
}

// gather reads the sources and returns every family, in a fixed order,
// each with its series sorted by label values.
func (c *Collector) gather() []*family {
	fam := func(d desc) *family { return &family{d: d} }
	var (
		state, prio, conf         = fam(descState), fam(descPriority), fam(descConfigured)
		trans, sent, sendErr      = fam(descTransitions), fam(descSent), fam(descSendErrors)
		recv, disc, last          = fam(descReceived), fam(descDiscarded), fam(descLastMaster)
		wire, sock, ratio         = fam(descWire), fam(descSocket), fam(descRatio)
		finding, findings, buildF = fam(descFinding), fam(descFindings), fam(descBuild)
	)
	buildF.add(1, c.build.Version, c.build.Commit, c.build.GoVersion)
	if c.src.Status != nil {
		for _, in := range c.src.Status().Instances {
			lv := instKey{in.Name, in.Interface, in.VRID, in.Family}.labels()
			for _, s := range states {
				v := 0.0
				if in.State == s {
					v = 1
				}
				state.add(v, append(lv[:4:4], s.String())...)
			}
			prio.add(float64(in.Priority), lv...)
			conf.add(float64(in.Configured), lv...)
		}
	}
	c.mu.Lock()
	for k, n := range c.transitions {
		trans.add(float64(n), k.instance, k.from, k.to, k.reason)
	}
	for k, n := range c.sent {
		sent.add(float64(n), k.labels()...)
	}
	for k, n := range c.sendErrors {
		sendErr.add(float64(n), k.labels()...)
	}
	for k, n := range c.received {
		recv.add(float64(n), append(k.inst.labels(), srcLabel(k.src))...)
	}
	for k, n := range c.discarded {
		disc.add(float64(n), append(k.inst.labels(), k.reason)...)
	}
	for inst, t := range c.lastMaster {
		last.add(float64(t.UnixNano())/1e9, inst)
	}
	c.mu.Unlock()
	if c.src.Flows != nil {
		for _, f := range c.src.Flows() {
			lv := []string{f.Interface, strconv.Itoa(int(f.VRID)), familyName(f.Family), f.Src.String()}
			wire.add(float64(f.Wire), lv...)
			sock.add(float64(f.Socket), lv...)
			if f.DeliveryRatio >= 0 {
				ratio.add(f.DeliveryRatio, lv...)
			}
		}
	}
	if c.src.Findings != nil {
		c.gatherFindings(finding, findings, c.src.Findings())
	}
	out := []*family{state, prio, conf, trans, sent, sendErr, recv, disc, last, wire, sock, ratio, finding, findings, buildF}
	for _, f := range out {
		slices.SortFunc(f.series, func(a, b series) int { return slices.Compare(a.values, b.values) })
	}
	return out
}

func (c *Collector) gatherFindings(finding, findings *family, fs []diag.Finding) {
	active := map[findingKey]bool{}
	count := map[diag.Severity]int{}
	for _, f := range fs {
		if f.Severity == diag.SeverityOK {
			continue // a check that passed
		}
		active[findingKey{f.ID, f.Severity}] = true
		count[f.Severity]++
	}
	c.mu.Lock()
	for k := range active {
		c.seen[k] = true
	}
	keys := make([]findingKey, 0, len(c.seen))
	for k := range c.seen {
		keys = append(keys, k)
	}
	c.mu.Unlock()
	for _, k := range keys {
		v := 0.0
		if active[k] {
			v = 1
		}
		finding.add(v, k.id, k.severity.String())
	}
	for _, s := range activeSeverities {
		findings.add(float64(count[s]), s.String())
	}
}

// WriteTo writes every metric in the Prometheus text exposition format
// (version 0.0.4). Metrics without a series are left out.
func (c *Collector) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	for _, f := range c.gather() {
		writeFamily(&b, f)
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

func writeFamily(b *strings.Builder, f *family) {
	if len(f.series) == 0 {
		return
	}
	b.WriteString("# HELP " + f.d.name + " " + escapeHelp(f.d.help) + "\n")
	b.WriteString("# TYPE " + f.d.name + " " + f.d.typ + "\n")
	for _, s := range f.series {
		writeSeries(b, f.d.name, f.d.labels, s.values, s.v)
	}
}

// writeSeries writes one sample, its labels sorted by name as
// client_golang writes them.
func writeSeries(b *strings.Builder, name string, labels, values []string, v float64) {
	b.WriteString(name)
	if len(labels) > 0 {
		order := make([]int, len(labels))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(x, y int) int { return strings.Compare(labels[x], labels[y]) })
		b.WriteByte('{')
		n := 0
		for _, i := range order {
			if values[i] == "" {
				continue // an empty label is no label to Prometheus
			}
			if n > 0 {
				b.WriteByte(',')
			}
			n++
			b.WriteString(labels[i] + `="` + escapeLabel(values[i]) + `"`)
		}
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(formatFloat(v))
	b.WriteByte('\n')
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeLabel(s string) string { return labelEscaper.Replace(s) }

// formatFloat writes a sample value as the exposition format wants it.
func formatFloat(v float64) string {
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// familyName is the family label: "ipv4" or "ipv6".
func familyName(f int) string {
	if f == 6 {
		return "ipv6"
	}
	return "ipv4"
}
