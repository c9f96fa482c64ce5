// Package metrics exposes a running vrrpdoctor — the VRRP daemon of
// `vrrpdoctor run` and its self-diagnosis, or the watcher of
// `vrrpdoctor run --monitor` — as Prometheus metrics.
//
// A Collector reads the daemon's status, the diagnosis's findings and its
// wire-versus-socket flows at each scrape, and keeps counters fed from the
// daemon's events (Observe, wired to vrrpcore/runtime's Options.OnEvent).
// Counters live in the Collector, not in the daemon's instances, so they
// survive a reload that restarts an instance.
package metrics

import (
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
	// diagnosis started.
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

var (
	instLabels = []string{"vrrp_instance", "interface", "vrid", "family"}
	flowLabels = []string{"interface", "vrid", "family", "src"}

	descState = prometheus.NewDesc("vrrpdoctor_instance_state",
		"State of a VRRP instance: 1 for the state it is in, 0 for the others.",
		append(instLabels[:4:4], "state"), nil)
	descPriority = prometheus.NewDesc("vrrpdoctor_instance_priority",
		"Effective priority of a VRRP instance (configured, as changed by tracking).",
		instLabels, nil)
	descConfigured = prometheus.NewDesc("vrrpdoctor_instance_configured_priority",
		"Priority of a VRRP instance in the configuration.",
		instLabels, nil)
	descTransitions = prometheus.NewDesc("vrrpdoctor_state_transitions_total",
		"State changes of VRRP instances, by reason.",
		[]string{"vrrp_instance", "from", "to", "reason"}, nil)
	descSent = prometheus.NewDesc("vrrpdoctor_adverts_sent_total",
		"Adverts the kernel accepted for sending.",
		instLabels, nil)
	descSendErrors = prometheus.NewDesc("vrrpdoctor_advert_send_errors_total",
		"Adverts that could not be sent (e.g. EPERM from an OUTPUT firewall rule).",
		instLabels, nil)
	descReceived = prometheus.NewDesc("vrrpdoctor_adverts_received_total",
		"Adverts read from the VRRP socket, by sender (vrrp_instance is empty when no instance runs the VRID).",
		append(instLabels[:4:4], "src"), nil)
	descDiscarded = prometheus.NewDesc("vrrpdoctor_adverts_discarded_total",
		"Received adverts that were not acted on, by reason.",
		append(instLabels[:4:4], "reason"), nil)
	descLastMaster = prometheus.NewDesc("vrrpdoctor_last_master_change_timestamp_seconds",
		"Time an instance last became Master or stopped being Master, in seconds since the epoch.",
		[]string{"vrrp_instance"}, nil)
	descWire = prometheus.NewDesc("vrrpdoctor_wire_adverts_total",
		"Adverts seen on the wire (AF_PACKET, before the firewall) since the diagnosis started (it restarts on reload), by sender.",
		flowLabels, nil)
	descSocket = prometheus.NewDesc("vrrpdoctor_socket_adverts_total",
		"Adverts that reached a VRRP socket (after the firewall) since the diagnosis started (it restarts on reload), by sender.",
		flowLabels, nil)
	descRatio = prometheus.NewDesc("vrrpdoctor_delivery_ratio",
		"Share of a sender's adverts seen on the wire that reached the VRRP socket (0 to 1).",
		flowLabels, nil)
	descFinding = prometheus.NewDesc("vrrpdoctor_finding_active",
		"1 while the diagnosis reports a finding with this ID and severity, 0 once it cleared.",
		[]string{"id", "severity"}, nil)
	descFindings = prometheus.NewDesc("vrrpdoctor_findings_active",
		"Number of findings the diagnosis reports, by severity.",
		[]string{"severity"}, nil)
	descBuild = prometheus.NewDesc("vrrpdoctor_build_info",
		"Version of the running vrrpdoctor; always 1.",
		[]string{"version", "commit", "goversion"}, nil)
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

// Collector is a prometheus.Collector for a running vrrpdoctor.
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
		c.received[rxKey{k, e.Src}]++
	case vrrpruntime.EventAdvertDiscarded:
		c.discarded[discardKey{k, e.Reason}]++
	}
}

// Describe sends the descriptions of every metric the Collector reports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descState, descPriority, descConfigured, descTransitions, descSent,
		descSendErrors, descReceived, descDiscarded, descLastMaster, descWire,
		descSocket, descRatio, descFinding, descFindings, descBuild,
	} {
		ch <- d
	}
}

// Collect reads the sources and sends the current value of every metric.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descBuild, prometheus.GaugeValue, 1, c.build.Version, c.build.Commit, c.build.GoVersion)
	if c.src.Status != nil {
		for _, in := range c.src.Status().Instances {
			lv := instKey{in.Name, in.Interface, in.VRID, in.Family}.labels()
			for _, s := range states {
				v := 0.0
				if in.State == s {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, append(lv, s.String())...)
			}
			ch <- prometheus.MustNewConstMetric(descPriority, prometheus.GaugeValue, float64(in.Priority), lv...)
			ch <- prometheus.MustNewConstMetric(descConfigured, prometheus.GaugeValue, float64(in.Configured), lv...)
		}
	}
	c.collectCounters(ch)
	if c.src.Flows != nil {
		for _, f := range c.src.Flows() {
			lv := []string{f.Interface, strconv.Itoa(int(f.VRID)), familyName(f.Family), f.Src.String()}
			ch <- prometheus.MustNewConstMetric(descWire, prometheus.CounterValue, float64(f.Wire), lv...)
			ch <- prometheus.MustNewConstMetric(descSocket, prometheus.CounterValue, float64(f.Socket), lv...)
			if f.DeliveryRatio >= 0 {
				ch <- prometheus.MustNewConstMetric(descRatio, prometheus.GaugeValue, f.DeliveryRatio, lv...)
			}
		}
	}
	if c.src.Findings != nil {
		c.collectFindings(ch, c.src.Findings())
	}
}

func (c *Collector) collectCounters(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, n := range c.transitions {
		ch <- prometheus.MustNewConstMetric(descTransitions, prometheus.CounterValue, float64(n), k.instance, k.from, k.to, k.reason)
	}
	for k, n := range c.sent {
		ch <- prometheus.MustNewConstMetric(descSent, prometheus.CounterValue, float64(n), k.labels()...)
	}
	for k, n := range c.sendErrors {
		ch <- prometheus.MustNewConstMetric(descSendErrors, prometheus.CounterValue, float64(n), k.labels()...)
	}
	for k, n := range c.received {
		ch <- prometheus.MustNewConstMetric(descReceived, prometheus.CounterValue, float64(n), append(k.inst.labels(), k.src.String())...)
	}
	for k, n := range c.discarded {
		ch <- prometheus.MustNewConstMetric(descDiscarded, prometheus.CounterValue, float64(n), append(k.inst.labels(), k.reason)...)
	}
	for inst, t := range c.lastMaster {
		ch <- prometheus.MustNewConstMetric(descLastMaster, prometheus.GaugeValue, float64(t.UnixNano())/1e9, inst)
	}
}

func (c *Collector) collectFindings(ch chan<- prometheus.Metric, fs []diag.Finding) {
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
		ch <- prometheus.MustNewConstMetric(descFinding, prometheus.GaugeValue, v, k.id, k.severity.String())
	}
	for _, s := range activeSeverities {
		ch <- prometheus.MustNewConstMetric(descFindings, prometheus.GaugeValue, float64(count[s]), s.String())
	}
}

// familyName is the family label: "ipv4" or "ipv6".
func familyName(f int) string {
	if f == 6 {
		return "ipv6"
	}
	return "ipv4"
}
