package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
)

// The lab scenarios of the capture command (issue 4): a keepalived pair,
// something between b's wire and b's VRRP socket, and `vrrpdoctor capture`
// run in b's network namespace.

// captureReport is the part of `vrrpdoctor capture --json` these tests
// read.
type captureReport struct {
	Wire struct {
		Frames   int `json:"frames"`
		Received int `json:"kernel_received"`
		Dropped  int `json:"kernel_dropped"`
	} `json:"wire"`
	Sockets []struct {
		Family int  `json:"family"`
		Open   bool `json:"open"`
	} `json:"sockets"`
	Flows []captureFlow `json:"flows"`
	Host  struct {
		RPFilter struct {
			Mode string `json:"mode"`
		} `json:"rp_filter"`
		Senders []struct {
			Sender       string `json:"sender"`
			RouteBack    string `json:"route_back"`
			RPFilterDrop bool   `json:"rp_filter_drop"`
		} `json:"senders"`
		Tables struct {
			Legacy4         []string `json:"iptables_legacy_ipv4"`
			Nft             []string `json:"nftables"`
			LegacyBesideNft bool     `json:"legacy_beside_nftables"`
		} `json:"tables"`
		Keepalived []struct {
			PID       int    `json:"pid"`
			Parent    bool   `json:"parent"`
			Config    string `json:"config"`
			SameNetns *bool  `json:"same_netns"`
		} `json:"keepalived"`
	} `json:"host"`
}

type captureFlow struct {
	Direction string `json:"direction"`
	Family    int    `json:"family"`
	VRID      int    `json:"vrid"`
	Sender    string `json:"sender"`
	Wire      struct {
		Packets int `json:"packets"`
	} `json:"wire"`
	Socket struct {
		Packets int `json:"packets"`
	} `json:"socket"`
	Matched       int      `json:"matched"`
	NotDelivered  int      `json:"not_delivered"`
	SocketOnly    int      `json:"socket_only"`
	Pending       int      `json:"pending"`
	DeliveryRatio *float64 `json:"delivery_ratio"`
	Sends         int      `json:"sends"`
	SendErrors    int      `json:"send_errors"`
	LastSendError string   `json:"last_send_error"`
	SentOnWire    int      `json:"sent_on_wire"`
}

// flow returns the flow of dir, vrid and sender, and whether there is one.
func (r *captureReport) flow(dir string, vrid int, sender string) (captureFlow, bool) {
	for _, f := range r.Flows {
		if f.Direction == dir && f.VRID == vrid && f.Sender == sender {
			return f, true
		}
	}
	return captureFlow{}, false
}

// runCapture runs `vrrpdoctor capture -i eth0` in host h for d with args
// and returns its standard output, standard error and exit code.
func runCapture(t *testing.T, h *netlab.Host, d time.Duration, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	args = append([]string{"capture", "-i", "eth0", "--duration", d.String()}, args...)
	cmd := h.Command(ctx, vrrpdoctor(t), args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("vrrpdoctor %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// captureJSON runs the capture with --json and decodes the report.
func captureJSON(t *testing.T, h *netlab.Host, d time.Duration, args ...string) (captureReport, string) {
	t.Helper()
	out, errOut, code := runCapture(t, h, d, append([]string{"--json"}, args...)...)
	var r captureReport
	if code != 0 {
		t.Fatalf("vrrpdoctor capture exited %d\nstderr:\n%s\nstdout:\n%s", code, errOut, out)
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("vrrpdoctor capture --json: %v\n%s", err, out)
	}
	return r, out
}

// captureLab is a keepalived pair for the capture scenarios: VRRPv3 with
// 250 ms adverts, VRID 51 over IPv4 and, with ipv6, VRID 52 over IPv6.
// prio gives a's and b's priorities; 0 leaves a node without keepalived.
type captureLab struct {
	lab  *netlab.Lab
	a, b *netlab.Host
	ka   *netlab.Keepalived
	kb   *netlab.Keepalived
	// ll are the hosts' IPv6 link-local addresses (IPv6 adverts' source).
	llA, llB netip.Addr
}

const captureAdvertInt = 250 * time.Millisecond

func newCaptureLab(t *testing.T, prioA, prioB int, ipv6 bool, programs ...string) *captureLab {
	t.Helper()
	lab := netlabtest.New(t, append([]string{"keepalived"}, programs...)...)
	vrrpdoctor(t)
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	c := &captureLab{lab: lab, a: a, b: b}
	if c.llA, err = a.LinkLocal("eth0"); err != nil {
		t.Fatal(err)
	}
	if c.llB, err = b.LinkLocal("eth0"); err != nil {
		t.Fatal(err)
	}
	c.llA, c.llB = c.llA.WithZone(""), c.llB.WithZone("")
	for i, h := range []*netlab.Host{a, b} {
		prio := []int{prioA, prioB}[i]
		if prio == 0 {
			continue
		}
		cfg := netlab.KeepalivedConfig{RouterID: h.Name(), Instances: []netlab.VRRPInstance{
			{Interface: "eth0", VRID: 51, Version: 3, Priority: prio, AdvertInt: captureAdvertInt, VIPs: []string{vip.String() + "/24"}},
		}}
		if ipv6 {
			cfg.Instances = append(cfg.Instances, netlab.VRRPInstance{Interface: "eth0", VRID: 52, Version: 3, Priority: prio, AdvertInt: captureAdvertInt, VIPs: []string{"2001:db8::100/64"}})
		}
		k, err := h.StartKeepalivedConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			c.ka = k
		} else {
			c.kb = k
		}
	}
	return c
}

// waitState waits for a keepalived instance to log entering state.
func waitState(t *testing.T, k *netlab.Keepalived, instance, state string) {
	t.Helper()
	if err := k.WaitState(15*time.Second, instance, state); err != nil {
		t.Fatal(err)
	}
}

// checkLost checks that the adverts of sender reached b's wire and none
// reached the socket.
func checkLost(t *testing.T, r captureReport, vrid int, sender string) {
	t.Helper()
	f, ok := r.flow("in", vrid, sender)
	if !ok {
		t.Fatalf("no incoming flow for VRID %d from %s: %+v", vrid, sender, r.Flows)
	}
	if f.Wire.Packets < 5 || f.Socket.Packets != 0 || f.NotDelivered != f.Wire.Packets || f.Matched != 0 || f.Pending != 0 ||
		f.DeliveryRatio == nil || *f.DeliveryRatio != 0 {
		t.Errorf("VRID %d from %s: %+v, want >= 5 on the wire, none delivered", vrid, sender, f)
	}
}

const captureFor = 3 * time.Second

// TestCaptureHealthy (a): a healthy pair, IPv4 and IPv6. Every advert of
// the master reaches b's socket (delivery ratio 1, no false alarm), the
// pcapng holds what the wire tap saw, and b stays backup while the taps
// open and close beside its keepalived.
func TestCaptureHealthy(t *testing.T) {
	t.Parallel()
	requireTshark(t)
	c := newCaptureLab(t, 150, 100, true)
	waitState(t, c.kb, "VI_51", "BACKUP")
	waitState(t, c.kb, "VI_52", "BACKUP")
	time.Sleep(4 * captureAdvertInt) // past b's first adverts before it learnt of a
	pcapng := filepath.Join(c.lab.Dir(), "healthy.pcapng")
	r, raw := captureJSON(t, c.b, captureFor, "-w", pcapng)
	for _, k := range []struct {
		vrid   int
		sender string
	}{{51, addrA.String()}, {52, c.llA.String()}} {
		f, ok := r.flow("in", k.vrid, k.sender)
		if !ok {
			t.Fatalf("no flow for VRID %d from %s:\n%s", k.vrid, k.sender, raw)
		}
		if f.Wire.Packets < 8 || f.Socket.Packets != f.Wire.Packets || f.Matched != f.Wire.Packets || f.NotDelivered != 0 ||
			f.SocketOnly != 0 || f.DeliveryRatio == nil || *f.DeliveryRatio != 1 {
			t.Errorf("VRID %d from %s: %+v, want every advert delivered", k.vrid, k.sender, f)
		}
	}
	for _, f := range r.Flows {
		if f.Direction == "out" || f.Sender == addrB.String() {
			t.Errorf("the backup sent adverts: %+v", f)
		}
	}
	if r.Wire.Dropped != 0 || len(r.Sockets) != 2 || !r.Sockets[0].Open || !r.Sockets[1].Open {
		t.Errorf("taps: %+v %+v", r.Wire, r.Sockets)
	}
	var mine int
	for _, k := range r.Host.Keepalived {
		if k.SameNetns != nil && *k.SameNetns && k.Parent && k.Config == c.kb.ConfigPath {
			mine++
		}
	}
	if mine != 1 {
		t.Errorf("host facts name %d keepalived parents with %s in b: %+v", mine, c.kb.ConfigPath, r.Host.Keepalived)
	}
	if n := tsharkCount(t, pcapng); n != r.Wire.Frames || n == 0 {
		t.Errorf("tshark reads %d packets from %s, the wire tap saw %d", n, pcapng, r.Wire.Frames)
	}
	if strings.Count(c.kb.Log(), "Entering MASTER STATE") != 0 {
		t.Errorf("b became master while the capture ran:\n%s", c.kb.Log())
	}

	// The text summary, as a pipe gets it.
	out, errOut, code := runCapture(t, c.b, 2*time.Second)
	if code != 0 || !strings.Contains(out, "in   IPv4  51    "+addrA.String()) || !strings.Contains(out, "100%") {
		t.Errorf("text summary (exit %d, stderr %q):\n%s", code, errOut, out)
	}
}

// TestCaptureInputDrop (b): an INPUT drop on the backup with each tool a
// user may have; the master's adverts reach the wire, not the socket.
func TestCaptureInputDrop(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		programs []string
		apply    func(h *netlab.Host) error
	}{
		{"iptables-nft", []string{"iptables-nft"}, func(h *netlab.Host) error {
			_, err := h.Run("iptables-nft", "-A", "INPUT", "-d", "224.0.0.18", "-p", "vrrp", "-j", "DROP")
			return err
		}},
		{"iptables-legacy", []string{"iptables-legacy"}, func(h *netlab.Host) error {
			_, err := h.IptablesLegacy("-A", "INPUT", "-d", "224.0.0.18", "-p", "vrrp", "-j", "DROP")
			return err
		}},
		{"nft", []string{"nft"}, func(h *netlab.Host) error {
			return h.NftScript("table inet filter {\n chain input {\n  type filter hook input priority filter; policy accept;\n  ip daddr 224.0.0.18 meta l4proto vrrp drop\n }\n}\n")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCaptureLab(t, 150, 100, false, tc.programs...)
			waitState(t, c.kb, "VI_51", "BACKUP")
			if err := tc.apply(c.b); err != nil {
				t.Fatal(err)
			}
			waitState(t, c.kb, "VI_51", "MASTER") // the split brain
			r, raw := captureJSON(t, c.b, captureFor)
			checkLost(t, r, 51, addrA.String())
			if f, ok := r.flow("out", 51, addrB.String()); !ok || f.Wire.Packets < 5 {
				t.Errorf("b's own adverts as master: %+v (%v)", f, ok)
			}
			if tc.name == "iptables-legacy" && !slices.Contains(r.Host.Tables.Legacy4, "filter") {
				t.Errorf("host facts do not list the legacy filter table: %+v", r.Host.Tables)
			}
			if t.Failed() {
				t.Logf("capture --json:\n%s", raw)
			}
		})
	}
}

// TestCaptureRPFilter (c): strict rp_filter on b, with the route back to a
// through another interface. The adverts reach the wire, not the socket,
// and the host facts name rp_filter.
func TestCaptureRPFilter(t *testing.T) {
	t.Parallel()
	c := newCaptureLab(t, 150, 100, false)
	waitState(t, c.kb, "VI_51", "BACKUP")
	b := c.b
	if _, err := b.Run("ip", "link", "add", "other0", "type", "veth", "peer", "name", "other1"); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"link", "set", "other0", "up"}, {"link", "set", "other1", "up"}, {"route", "add", addrA.String() + "/32", "dev", "other0"}} {
		if _, err := b.Run("ip", args...); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"net/ipv4/conf/all/rp_filter", "net/ipv4/conf/eth0/rp_filter"} {
		if err := b.Sysctl(k, "1"); err != nil {
			t.Fatal(err)
		}
	}
	waitState(t, c.kb, "VI_51", "MASTER")
	r, raw := captureJSON(t, b, captureFor)
	checkLost(t, r, 51, addrA.String())
	if r.Host.RPFilter.Mode != "strict" || len(r.Host.Senders) != 1 || !r.Host.Senders[0].RPFilterDrop || r.Host.Senders[0].RouteBack != "other0" {
		t.Errorf("host facts: rp_filter %+v, senders %+v", r.Host.RPFilter, r.Host.Senders)
	}
	if t.Failed() {
		t.Logf("capture --json:\n%s", raw)
	}
	out, _, _ := runCapture(t, b, 2*time.Second)
	if !strings.Contains(out, "rp_filter (strict on eth0) drops them: the route back to it uses other0") {
		t.Errorf("text summary does not name rp_filter:\n%s", out)
	}
}

// TestCapturePeerStopped (d): the master's keepalived stops; b sees
// nothing from it on either tap.
func TestCapturePeerStopped(t *testing.T) {
	t.Parallel()
	c := newCaptureLab(t, 150, 100, false)
	waitState(t, c.kb, "VI_51", "BACKUP")
	if err := c.ka.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	waitState(t, c.kb, "VI_51", "MASTER")
	time.Sleep(captureAdvertInt)
	r, raw := captureJSON(t, c.b, captureFor)
	for _, f := range r.Flows {
		if f.Direction == "in" {
			t.Errorf("incoming adverts with the peer stopped: %+v", f)
		}
	}
	if f, ok := r.flow("out", 51, addrB.String()); !ok || f.Wire.Packets < 5 {
		t.Errorf("b's own adverts: %+v (%v)\n%s", f, ok, raw)
	}
}

// TestCaptureOutputDrop (e): an OUTPUT drop on the local node (b, the
// master). Its keepalived's adverts never leave, a probe's sends fail with
// EPERM, and a sees nothing from b.
func TestCaptureOutputDrop(t *testing.T) {
	t.Parallel()
	c := newCaptureLab(t, 100, 150, false, "iptables")
	waitState(t, c.kb, "VI_51", "MASTER")
	if _, err := c.b.Iptables("-A", "OUTPUT", "-p", "vrrp", "-j", "DROP"); err != nil {
		t.Fatal(err)
	}
	waitState(t, c.ka, "VI_51", "MASTER") // a no longer hears b
	rb, raw := captureJSON(t, c.b, captureFor, "--probe-vrid", "254")
	probe, ok := rb.flow("out", 254, addrB.String())
	if !ok || probe.Sends < 2 || probe.SendErrors != probe.Sends || probe.LastSendError != "operation not permitted" || probe.Wire.Packets != 0 || probe.SentOnWire != 0 {
		t.Errorf("probe: %+v (%v), want every send failing with EPERM and nothing on the wire", probe, ok)
	}
	if f, ok := rb.flow("out", 51, addrB.String()); ok {
		t.Errorf("b's adverts left despite the OUTPUT drop: %+v", f)
	}
	if f, ok := rb.flow("in", 51, addrA.String()); !ok || f.Socket.Packets < 5 {
		t.Errorf("b does not get a's adverts: %+v (%v)", f, ok)
	}
	if t.Failed() {
		t.Logf("capture on b:\n%s", raw)
	}
	ra, raw := captureJSON(t, c.a, captureFor)
	for _, f := range ra.Flows {
		if f.Direction == "in" {
			t.Errorf("a received adverts from b: %+v\n%s", f, raw)
		}
	}
}

// TestCapturePreroutingDrops (f): drops in raw PREROUTING, mangle
// PREROUTING and filter INPUT all act after the wire tap.
func TestCapturePreroutingDrops(t *testing.T) {
	t.Parallel()
	for _, chain := range [][2]string{{"raw", "PREROUTING"}, {"mangle", "PREROUTING"}, {"filter", "INPUT"}} {
		t.Run(chain[0]+"-"+chain[1], func(t *testing.T) {
			t.Parallel()
			c := newCaptureLab(t, 150, 100, false, "iptables")
			waitState(t, c.kb, "VI_51", "BACKUP")
			if _, err := c.b.Iptables("-t", chain[0], "-A", chain[1], "-p", "vrrp", "-j", "DROP"); err != nil {
				t.Fatal(err)
			}
			waitState(t, c.kb, "VI_51", "MASTER")
			r, raw := captureJSON(t, c.b, captureFor)
			checkLost(t, r, 51, addrA.String())
			if t.Failed() {
				t.Logf("capture --json:\n%s", raw)
			}
		})
	}
}

// TestCaptureWithoutCapNetRaw: without CAP_NET_RAW the command says so.
func TestCaptureWithoutCapNetRaw(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		msg := "setpriv not found: install the Debian package util-linux"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	a, _, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	cmd := a.Command(context.Background(), "setpriv", "--bounding-set", "-net_raw", "--inh-caps", "-net_raw", vrrpdoctor(t), "capture", "-i", "eth0", "--duration", "1s")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("exit %v, want status 3\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	want := "vrrpdoctor: capture on eth0 needs CAP_NET_RAW, which this process lacks (operation not permitted)"
	if !strings.HasPrefix(errOut.String(), want) {
		t.Errorf("stderr %q, want it to start with %q", errOut.String(), want)
	}
}

func requireTshark(t *testing.T) {
	t.Helper()
	netlabtest.Require(t, "tshark")
}

// tsharkCount is the number of packets tshark reads from a capture file.
func tsharkCount(t *testing.T, file string) int {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command("tshark", "-r", file, "-T", "fields", "-e", "frame.number")
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("tshark -r %s: %v\n%s", file, err, errOut.String())
	}
	lines := strings.Fields(out.String())
	if len(lines) == 0 {
		return 0
	}
	n, err := strconv.Atoi(lines[len(lines)-1])
	if err != nil || n != len(lines) {
		t.Fatalf("tshark output %q", out.String())
	}
	return n
}

// TestCaptureTerminalAndInterrupt: on a terminal the table redraws in
// place; Ctrl-C (SIGINT) prints the summary and exits 0.
func TestCaptureTerminalAndInterrupt(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("script"); err != nil {
		msg := "script not found: install the Debian package bsdutils"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	c := newCaptureLab(t, 150, 100, false)
	waitState(t, c.kb, "VI_51", "BACKUP")

	// A pseudo-terminal from script(1).
	out, errOut, code := func() (string, string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := c.b.Command(ctx, "script", "-qfec", vrrpdoctor(t)+" capture -i eth0 --duration 3s --refresh 300ms", "/dev/null")
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return o.String(), e.String(), cmd.ProcessState.ExitCode()
	}()
	if code != 0 || strings.Count(out, "\x1b[") < 3 || !strings.Contains(out, "VRRP on eth0 for") {
		t.Errorf("on a terminal: exit %d, stderr %q, output %q", code, errOut, out)
	}

	// Interrupted like Ctrl-C.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := c.b.Command(ctx, vrrpdoctor(t), "capture", "-i", "eth0")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGINT: %v\nstderr:\n%s", err, e.String())
	}
	if !strings.Contains(o.String(), "VRRP on eth0 for") || !strings.Contains(o.String(), "in   IPv4  51    "+addrA.String()) {
		t.Errorf("no summary after SIGINT:\n%s", o.String())
	}
}

// TestCaptureUnicastHealthy: keepalived with unicast peers; the socket tap
// binds to the unicast source as keepalived's does, so a healthy pair shows
// every advert delivered (no false alarm).
func TestCaptureUnicastHealthy(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t, "keepalived")
	vrrpdoctor(t)
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	var kb *netlab.Keepalived
	for i, h := range []*netlab.Host{a, b} {
		self, peer := []netip.Addr{addrA, addrB}[i], []netip.Addr{addrB, addrA}[i]
		k, err := h.StartKeepalivedConfig(netlab.KeepalivedConfig{RouterID: h.Name(), Instances: []netlab.VRRPInstance{{
			Interface: "eth0", VRID: 51, Version: 3, Priority: 150 - 50*i, AdvertInt: captureAdvertInt, VIPs: []string{vip.String() + "/24"},
			UnicastSrc: self.String(), UnicastPeers: []string{peer.String()},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		kb = k
	}
	waitState(t, kb, "VI_51", "BACKUP")
	r, raw := captureJSON(t, b, captureFor, "--peer", addrA.String())
	f, ok := r.flow("in", 51, addrA.String())
	if !ok || f.Wire.Packets < 8 || f.Socket.Packets != f.Wire.Packets || f.NotDelivered != 0 || f.DeliveryRatio == nil || *f.DeliveryRatio != 1 {
		t.Errorf("unicast adverts from a: %+v (%v)\n%s", f, ok, raw)
	}
}
