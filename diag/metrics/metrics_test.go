package metrics

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vrrpdoctor/vrrpdoctor/diag"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
	vrrpruntime "github.com/vrrpdoctor/vrrpdoctor/vrrpcore/runtime"
)

var (
	peer = netip.MustParseAddr("198.51.100.1")
	self = netip.MustParseAddr("198.51.100.2")
)

// parse reads the exposition format with Prometheus's own parser.
func parse(r io.Reader) ([]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	m, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	out := make([]*dto.MetricFamily, 0, len(m))
	for _, mf := range m {
		out = append(out, mf)
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out, nil
}

func findFamily(fams []*dto.MetricFamily, name string) *dto.MetricFamily {
	for _, mf := range fams {
		if mf.GetName() == name {
			return mf
		}
	}
	return nil
}

// gatherer makes c's output a prometheus.Gatherer, parsed by Prometheus's
// text parser, for client_golang's testutil and linter.
func gatherer(t *testing.T, c *Collector) prometheus.Gatherer {
	t.Helper()
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		var b bytes.Buffer
		if _, err := c.WriteTo(&b); err != nil {
			return nil, err
		}
		return parse(&b)
	})
}

// fake holds what the sources return; tests change it between scrapes.
type fake struct {
	status   vrrpruntime.Status
	findings []diag.Finding
	flows    []Flow
}

func (f *fake) sources() Sources {
	return Sources{
		Status:   func() vrrpruntime.Status { return f.status },
		Findings: func() []diag.Finding { return f.findings },
		Flows:    func() []Flow { return f.flows },
	}
}

func newFake() *fake {
	return &fake{
		status: vrrpruntime.Status{Instances: []vrrpruntime.InstanceStatus{{
			Name: "VI_1", Interface: "eth0", VRID: 51, Version: 2, Family: 4,
			State: router.Master, Priority: 100, Configured: 100,
		}}},
		findings: []diag.Finding{
			{ID: "split-brain", Severity: diag.SeverityCritical, Summary: "both master"},
			{ID: "firewall-input-drop", Severity: diag.SeverityCritical},
			{ID: "keepalived-running", Severity: diag.SeverityOK},
		},
		flows: []Flow{
			{Interface: "eth0", Family: 4, VRID: 51, Src: peer, Wire: 12, Socket: 0, DeliveryRatio: 0},
			{Interface: "eth0", Family: 4, VRID: 52, Src: peer, Wire: 0, Socket: 0, DeliveryRatio: -1},
		},
	}
}

func observeSome(c *Collector) {
	at := time.Unix(1700000000, 500_000_000)
	ev := func(e vrrpruntime.Event) vrrpruntime.Event {
		e.Instance, e.Interface, e.VRID, e.Family = "VI_1", "eth0", 51, 4
		return e
	}
	c.Observe(ev(vrrpruntime.Event{Kind: vrrpruntime.EventStateChange, Time: at, From: router.Initialize, To: router.Backup, Reason: "startup"}))
	c.Observe(ev(vrrpruntime.Event{Kind: vrrpruntime.EventStateChange, Time: at, From: router.Backup, To: router.Master, Reason: "master_down_timer"}))
	for range 3 {
		c.Observe(ev(vrrpruntime.Event{Kind: vrrpruntime.EventAdvertSent, Src: self, Priority: 100}))
	}
	c.Observe(ev(vrrpruntime.Event{Kind: vrrpruntime.EventSendFailed, Err: errors.New("operation not permitted")}))
	c.Observe(ev(vrrpruntime.Event{Kind: vrrpruntime.EventAdvertReceived, Src: peer}))
	c.Observe(ev(vrrpruntime.Event{Kind: vrrpruntime.EventAdvertReceived, Src: peer}))
	c.Observe(ev(vrrpruntime.Event{Kind: vrrpruntime.EventAdvertDiscarded, Src: peer, Reason: "auth_mismatch"}))
	// A VRID no instance runs.
	c.Observe(vrrpruntime.Event{Kind: vrrpruntime.EventAdvertReceived, Interface: "eth0", VRID: 9, Family: 4, Src: peer})
}

func TestLint(t *testing.T) {
	c := New(newFake().sources(), BuildInfo{Version: "1.0.0", Commit: "abc", GoVersion: "go1.26"})
	observeSome(c)
	problems, err := testutil.GatherAndLint(gatherer(t, c))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

func TestValues(t *testing.T) {
	f := newFake()
	c := New(f.sources(), BuildInfo{Version: "1.0.0", Commit: "abc", GoVersion: "go1.26"})
	observeSome(c)
	want := `
# HELP vrrpdoctor_instance_state State of a VRRP instance: 1 for the state it is in, 0 for the others.
# TYPE vrrpdoctor_instance_state gauge
vrrpdoctor_instance_state{family="ipv4",interface="eth0",state="BACKUP",vrid="51",vrrp_instance="VI_1"} 0
vrrpdoctor_instance_state{family="ipv4",interface="eth0",state="FAULT",vrid="51",vrrp_instance="VI_1"} 0
vrrpdoctor_instance_state{family="ipv4",interface="eth0",state="INIT",vrid="51",vrrp_instance="VI_1"} 0
vrrpdoctor_instance_state{family="ipv4",interface="eth0",state="MASTER",vrid="51",vrrp_instance="VI_1"} 1
# HELP vrrpdoctor_state_transitions_total State changes of VRRP instances, by reason.
# TYPE vrrpdoctor_state_transitions_total counter
vrrpdoctor_state_transitions_total{from="BACKUP",reason="master_down_timer",to="MASTER",vrrp_instance="VI_1"} 1
vrrpdoctor_state_transitions_total{from="INIT",reason="startup",to="BACKUP",vrrp_instance="VI_1"} 1
# HELP vrrpdoctor_adverts_sent_total Adverts the kernel accepted for sending.
# TYPE vrrpdoctor_adverts_sent_total counter
vrrpdoctor_adverts_sent_total{family="ipv4",interface="eth0",vrid="51",vrrp_instance="VI_1"} 3
# HELP vrrpdoctor_advert_send_errors_total Adverts that could not be sent (e.g. EPERM from an OUTPUT firewall rule).
# TYPE vrrpdoctor_advert_send_errors_total counter
vrrpdoctor_advert_send_errors_total{family="ipv4",interface="eth0",vrid="51",vrrp_instance="VI_1"} 1
# HELP vrrpdoctor_adverts_received_total Adverts read from the VRRP socket, by sender (without vrrp_instance when no instance runs the VRID).
# TYPE vrrpdoctor_adverts_received_total counter
vrrpdoctor_adverts_received_total{family="ipv4",interface="eth0",src="198.51.100.1",vrid="9"} 1
vrrpdoctor_adverts_received_total{family="ipv4",interface="eth0",src="198.51.100.1",vrid="51",vrrp_instance="VI_1"} 2
# HELP vrrpdoctor_adverts_discarded_total Received adverts that were not acted on, by reason.
# TYPE vrrpdoctor_adverts_discarded_total counter
vrrpdoctor_adverts_discarded_total{family="ipv4",interface="eth0",reason="auth_mismatch",vrid="51",vrrp_instance="VI_1"} 1
# HELP vrrpdoctor_last_master_change_timestamp_seconds Time an instance last became Master or stopped being Master, in seconds since the epoch.
# TYPE vrrpdoctor_last_master_change_timestamp_seconds gauge
vrrpdoctor_last_master_change_timestamp_seconds{vrrp_instance="VI_1"} 1.7000000005e+09
# HELP vrrpdoctor_wire_adverts_total Adverts seen on the wire (AF_PACKET, before the firewall) since the daemon started (reloads included), by sender.
# TYPE vrrpdoctor_wire_adverts_total counter
vrrpdoctor_wire_adverts_total{family="ipv4",interface="eth0",src="198.51.100.1",vrid="51"} 12
vrrpdoctor_wire_adverts_total{family="ipv4",interface="eth0",src="198.51.100.1",vrid="52"} 0
# HELP vrrpdoctor_delivery_ratio Share of a sender's adverts seen on the wire that reached the VRRP socket (0 to 1).
# TYPE vrrpdoctor_delivery_ratio gauge
vrrpdoctor_delivery_ratio{family="ipv4",interface="eth0",src="198.51.100.1",vrid="51"} 0
# HELP vrrpdoctor_finding_active 1 while the diagnosis reports a finding with this ID and severity, 0 once it cleared.
# TYPE vrrpdoctor_finding_active gauge
vrrpdoctor_finding_active{id="firewall-input-drop",severity="critical"} 1
vrrpdoctor_finding_active{id="split-brain",severity="critical"} 1
# HELP vrrpdoctor_findings_active Number of findings the diagnosis reports, by severity.
# TYPE vrrpdoctor_findings_active gauge
vrrpdoctor_findings_active{severity="critical"} 2
vrrpdoctor_findings_active{severity="info"} 0
vrrpdoctor_findings_active{severity="warning"} 0
# HELP vrrpdoctor_build_info Version of the running vrrpdoctor; always 1.
# TYPE vrrpdoctor_build_info gauge
vrrpdoctor_build_info{commit="abc",goversion="go1.26",version="1.0.0"} 1
`
	names := []string{
		"vrrpdoctor_instance_state", "vrrpdoctor_state_transitions_total",
		"vrrpdoctor_adverts_sent_total", "vrrpdoctor_advert_send_errors_total",
		"vrrpdoctor_adverts_received_total", "vrrpdoctor_adverts_discarded_total",
		"vrrpdoctor_last_master_change_timestamp_seconds", "vrrpdoctor_wire_adverts_total",
		"vrrpdoctor_delivery_ratio", "vrrpdoctor_finding_active", "vrrpdoctor_findings_active",
		"vrrpdoctor_build_info",
	}
	if err := testutil.GatherAndCompare(gatherer(t, c), strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}

	// The split brain clears: its series reads 0 instead of vanishing,
	// and the peer's adverts reach the socket.
	f.findings = f.findings[1:]
	f.flows[0].Socket, f.flows[0].DeliveryRatio = 12, 1
	want = `
# HELP vrrpdoctor_finding_active 1 while the diagnosis reports a finding with this ID and severity, 0 once it cleared.
# TYPE vrrpdoctor_finding_active gauge
vrrpdoctor_finding_active{id="firewall-input-drop",severity="critical"} 1
vrrpdoctor_finding_active{id="split-brain",severity="critical"} 0
# HELP vrrpdoctor_delivery_ratio Share of a sender's adverts seen on the wire that reached the VRRP socket (0 to 1).
# TYPE vrrpdoctor_delivery_ratio gauge
vrrpdoctor_delivery_ratio{family="ipv4",interface="eth0",src="198.51.100.1",vrid="51"} 1
`
	if err := testutil.GatherAndCompare(gatherer(t, c), strings.NewReader(want), "vrrpdoctor_finding_active", "vrrpdoctor_delivery_ratio"); err != nil {
		t.Fatal(err)
	}
}

// TestSenderSeriesBounded: adverts from ever new senders (anyone on the
// LAN can forge them) do not grow the series without bound.
func TestSenderSeriesBounded(t *testing.T) {
	c := New(Sources{}, BuildInfo{Version: "dev"})
	base := netip.MustParseAddr("2001:db8::")
	for i := range MaxSenderSeries + 10 {
		src := base
		for range i {
			src = src.Next()
		}
		c.Observe(vrrpruntime.Event{Kind: vrrpruntime.EventAdvertReceived, Interface: "eth0", VRID: uint8(i), Family: 6, Src: src})
	}
	n, err := testutil.GatherAndCount(gatherer(t, c), "vrrpdoctor_adverts_received_total")
	if err != nil || n != MaxSenderSeries+1 {
		t.Errorf("%d series (%v), want %d", n, err, MaxSenderSeries+1)
	}
	want := `
# HELP vrrpdoctor_adverts_received_total Adverts read from the VRRP socket, by sender (without vrrp_instance when no instance runs the VRID).
# TYPE vrrpdoctor_adverts_received_total counter
vrrpdoctor_adverts_received_total{family="ipv6",interface="eth0",src="other",vrid="0"} 10
`
	got, err := gatherer(t, c).Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range got {
		if mf.GetName() != "vrrpdoctor_adverts_received_total" {
			continue
		}
		var other []*dto.Metric
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "src" && l.GetValue() == "other" {
					other = append(other, m)
				}
			}
		}
		mf.Metric = other
		if err := testutil.GatherAndCompare(prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return []*dto.MetricFamily{mf}, nil }), strings.NewReader(want)); err != nil {
			t.Error(err)
		}
	}
}

// TestMonitorSources: without a daemon (monitor mode) or without a
// diagnosis, the collector reports what it has and nothing else.
func TestMonitorSources(t *testing.T) {
	f := newFake()
	for _, tc := range []struct {
		name string
		src  Sources
		want int
	}{
		{"no daemon", Sources{Findings: f.sources().Findings, Flows: f.sources().Flows}, 1 + 5 + 2 + 3},
		{"no diagnosis", Sources{Status: f.sources().Status}, 1 + 4 + 2},
		{"nothing", Sources{}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New(tc.src, BuildInfo{Version: "dev"})
			if n, err := testutil.GatherAndCount(gatherer(t, c)); err != nil || n != tc.want {
				t.Errorf("%d series (%v), want %d", n, err, tc.want)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	c := New(newFake().sources(), BuildInfo{Version: "dev"})
	var healthErr error
	get := func(path string) (int, string) {
		t.Helper()
		r := respond(c, func() error { return healthErr }, "GET", path)
		return r.status, r.body
	}
	code, body := get("/metrics")
	if code != 200 || !strings.Contains(body, `vrrpdoctor_finding_active{id="split-brain",severity="critical"} 1`) {
		t.Errorf("/metrics: %d\n%s", code, body)
	}
	// The whole page, process metrics included, parses and lints.
	fams, err := parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	for _, name := range []string{"process_cpu_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds", "process_open_fds"} {
		mf := findFamily(fams, name)
		if mf == nil || len(mf.GetMetric()) != 1 {
			t.Errorf("/metrics lacks %s", name)
			continue
		}
		m := mf.GetMetric()[0]
		if v := m.GetGauge().GetValue() + m.GetCounter().GetValue(); v <= 0 && name != "process_cpu_seconds_total" {
			t.Errorf("%s = %v", name, v)
		}
	}
	if rss := findFamily(fams, "process_resident_memory_bytes"); rss != nil && rss.GetMetric()[0].GetGauge().GetValue() < 1<<20 {
		t.Errorf("process_resident_memory_bytes %v: under 1 MiB", rss.GetMetric()[0].GetGauge().GetValue())
	}
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz healthy: %d %q", code, body)
	}
	healthErr = errors.New("diagnosis not ready: first window not complete")
	if code, body := get("/healthz"); code != 503 || body != "unhealthy: diagnosis not ready: first window not complete\n" {
		t.Errorf("/healthz unhealthy: %d %q", code, body)
	}
	if code, _ := get("/nothing"); code != 404 {
		t.Errorf("/nothing: %d", code)
	}
}
