package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
)

// `vrrpdoctor run` as a production daemon (issue 8): metrics and findings
// of the self-diagnosis and of --monitor beside keepalived, scraped from
// inside the lab host's namespace; reload with a broken and a changed
// configuration; the systemd notification socket.

const (
	daemonMetrics = "127.0.0.1:9712"
	daemonVRID    = 52
	// The split brain's advert interval: short for a quick diagnosis
	// window, long enough for the lab under load.
	daemonSplitAdvert = 250 * time.Millisecond
)

var (
	daemonVIP  = netip.MustParseAddr("198.51.100.152")
	daemonPeer = strings.TrimSuffix(netlab.LANAddr4(1), "/24") // a
)

// scrape fetches path from the metrics server in h's namespace: the
// connection is opened on a thread inside it.
func scrape(h *netlab.Host, path string) (int, string, error) {
	var conn net.Conn
	if err := h.Do(func() error {
		var err error
		conn, err = net.DialTimeout("tcp", daemonMetrics, 2*time.Second)
		return err
	}); err != nil {
		return 0, "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, daemonMetrics); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// sample returns the value of the series of name whose labels include
// every "k=v" of want, and whether there is one.
func sample(body, name string, want ...string) (float64, bool) {
	for _, l := range strings.Split(body, "\n") {
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		labels, value, ok := strings.Cut(l, "} ")
		if !ok {
			labels, value, _ = strings.Cut(l, " ")
		}
		match := true
		for _, w := range want {
			k, v, _ := strings.Cut(w, "=")
			if !strings.Contains(labels, k+`="`+v+`"`) {
				match = false
				break
			}
		}
		if match {
			f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// waitMetrics scrapes h until cond holds for the body.
func waitMetrics(t *testing.T, h *netlab.Host, timeout time.Duration, what string, cond func(body string) bool) string {
	t.Helper()
	var body string
	var lastErr error
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var code int
		code, body, lastErr = scrape(h, "/metrics")
		if lastErr == nil && code == 200 && cond(body) {
			return body
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v (last error %v); last scrape:\n%s", what, timeout, lastErr, vrrpSeries(body))
	return ""
}

// vrrpSeries keeps the vrrpdoctor_ series of a scrape, for failure output.
func vrrpSeries(body string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "vrrpdoctor_") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// splitFinding: the split brain is reported as split-brain or, naming
// its cause, firewall-input-drop.
func splitFinding(body string) bool {
	v1, _ := sample(body, "vrrpdoctor_finding_active", "id=split-brain")
	v2, _ := sample(body, "vrrpdoctor_finding_active", "id=firewall-input-drop")
	return v1 == 1 || v2 == 1
}

func noSplitFinding(body string) bool {
	v1, ok1 := sample(body, "vrrpdoctor_finding_active", "id=split-brain")
	v2, ok2 := sample(body, "vrrpdoctor_finding_active", "id=firewall-input-drop")
	return (!ok1 || v1 == 0) && (!ok2 || v2 == 0) && (ok1 || ok2)
}

func peerRatio(body string, want float64) bool {
	v, ok := sample(body, "vrrpdoctor_delivery_ratio", "src="+daemonPeer, "vrid="+strconv.Itoa(daemonVRID))
	return ok && v == want
}

func daemonSplitInstance(prio int) netlab.VRRPInstance {
	return netlab.VRRPInstance{
		Interface: "eth0", VRID: daemonVRID, Version: 3, Priority: prio,
		AdvertInt: daemonSplitAdvert, VIPs: []string{daemonVIP.String() + "/24"},
	}
}

// dropVRRPIn adds the INPUT drop of the split brain in h (nftables).
func dropVRRPIn(t *testing.T, h *netlab.Host) {
	t.Helper()
	if err := h.NftScript("table inet filter {\n chain input {\n  type filter hook input priority filter; policy accept;\n  ip daddr 224.0.0.18 meta l4proto vrrp drop\n }\n}\n"); err != nil {
		t.Fatal(err)
	}
}

// fixFirewall runs `vrrpdoctor fix-firewall -i eth0 --in --apply` in h.
func fixFirewall(t *testing.T, h *netlab.Host, conf string) {
	t.Helper()
	out, err := h.Run(vrrpdoctor(t), "fix-firewall", "-c", conf, "-i", "eth0", "--in", "--apply",
		"--state", filepath.Join(t.TempDir(), "fix-firewall.json"))
	if err != nil {
		t.Fatalf("fix-firewall --apply: %v\n%s", err, out)
	}
	t.Logf("fix-firewall --apply:\n%s", out)
}

// TestDaemonMetricsSplitBrain: keepalived Master on a, `vrrpdoctor run
// --metrics-address` backup on b behind an INPUT drop. /metrics shows the
// split brain (finding active, delivery ratio 0 for a's adverts, b
// MASTER); after fix-firewall --apply in b the findings clear, the ratio
// goes to 1 and b returns to BACKUP. The log has each finding once when it
// appeared and once when it cleared.
func TestDaemonMetricsSplitBrain(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t, "keepalived", "nft")
	vrrpdoctor(t)
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.StartKeepalived(renderConf(t, "a", "", daemonSplitInstance(150))); err != nil {
		t.Fatal(err)
	}
	dropVRRPIn(t, b)
	conf := lab.Path("b-run.conf")
	p := startRun(t, b, conf, renderConf(t, "b", "", daemonSplitInstance(100)), "--metrics-address", daemonMetrics)

	body := waitMetrics(t, b, 45*time.Second, "split brain on /metrics", func(body string) bool {
		master, _ := sample(body, "vrrpdoctor_instance_state", "state=MASTER")
		return splitFinding(body) && peerRatio(body, 0) && master == 1
	})
	t.Logf("split brain:\n%s", vrrpSeries(body))
	if v, ok := sample(body, "vrrpdoctor_wire_adverts_total", "src="+daemonPeer); !ok || v == 0 {
		t.Errorf("no adverts from %s on the wire: %v %v", daemonPeer, v, ok)
	}
	if v, _ := sample(body, "vrrpdoctor_socket_adverts_total", "src="+daemonPeer); v != 0 {
		t.Errorf("%v adverts from %s at the socket behind the drop", v, daemonPeer)
	}
	if code, hb, err := scrape(b, "/healthz"); err != nil || code != 200 {
		t.Errorf("/healthz: %d %q %v", code, hb, err)
	}
	if !regexp.MustCompile(`msg=finding id=(split-brain|firewall-input-drop) severity=critical`).MatchString(p.Log()) {
		t.Errorf("the finding is not logged:\n%s", tail(p.Log(), 30))
	}

	fixFirewall(t, b, conf)
	body = waitMetrics(t, b, 45*time.Second, "split brain cleared on /metrics", func(body string) bool {
		backup, _ := sample(body, "vrrpdoctor_instance_state", "state=BACKUP")
		return noSplitFinding(body) && peerRatio(body, 1) && backup == 1
	})
	t.Logf("after fix-firewall:\n%s", vrrpSeries(body))
	if held, err := b.HasAddr(daemonVIP); err != nil || held {
		t.Errorf("b still holds the VIP after returning to BACKUP (%v)", err)
	}
	if v, _ := sample(body, "vrrpdoctor_state_transitions_total", "from=MASTER", "to=BACKUP"); v < 1 {
		t.Errorf("no MASTER -> BACKUP transition counted:\n%s", vrrpSeries(body))
	}
	for _, id := range []string{"split-brain", "firewall-input-drop"} {
		appeared := strings.Count(p.Log(), "msg=finding id="+id+" ")
		cleared := strings.Count(p.Log(), `msg="finding cleared" id=`+id+" ")
		if appeared > 1 || cleared != appeared {
			t.Errorf("%s: logged %d times appearing and %d times clearing, want once each (or never):\n%s", id, appeared, cleared, tail(p.Log(), 40))
		}
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(10 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

// TestDaemonMonitor: `run --monitor` beside keepalived on the backup
// behind the same INPUT drop reports the same findings in its log and
// metrics, with no VRRP of its own, and sees them clear after the fix.
func TestDaemonMonitor(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t, "keepalived", "nft")
	vrrpdoctor(t)
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.StartKeepalived(renderConf(t, "a", "", daemonSplitInstance(150))); err != nil {
		t.Fatal(err)
	}
	dropVRRPIn(t, b)
	kb, err := b.StartKeepalived(renderConf(t, "b", "", daemonSplitInstance(100)))
	if err != nil {
		t.Fatal(err)
	}
	if err := kb.WaitState(15*time.Second, fmt.Sprintf("VI_%d", daemonVRID), "MASTER"); err != nil {
		t.Fatal(err)
	}
	p, err := b.Start(vrrpdoctor(t), "run", "--monitor", "-c", kb.ConfigPath, "--metrics-address", daemonMetrics)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("vrrpdoctor --monitor log:\n%s", tail(p.Log(), 80))
		}
	})
	body := waitMetrics(t, b, 45*time.Second, "split brain on /metrics (monitor)", func(body string) bool {
		return splitFinding(body) && peerRatio(body, 0)
	})
	t.Logf("monitor, split brain:\n%s", vrrpSeries(body))
	if _, ok := sample(body, "vrrpdoctor_instance_state"); ok {
		t.Error("monitor mode reports instance states of its own")
	}
	if v, _ := sample(body, "vrrpdoctor_findings_active", "severity=critical"); v < 1 {
		t.Errorf("findings_active{severity=critical} = %v", v)
	}
	if !regexp.MustCompile(`msg=finding id=(split-brain|firewall-input-drop) severity=critical`).MatchString(p.Log()) {
		t.Errorf("the finding is not logged:\n%s", tail(p.Log(), 30))
	}
	if strings.Contains(p.Log(), "state change") {
		t.Error("monitor mode ran VRRP instances")
	}

	fixFirewall(t, b, kb.ConfigPath)
	if err := kb.WaitState(15*time.Second, fmt.Sprintf("VI_%d", daemonVRID), "BACKUP"); err != nil {
		t.Fatal(err)
	}
	body = waitMetrics(t, b, 45*time.Second, "split brain cleared (monitor)", func(body string) bool {
		return noSplitFinding(body) && peerRatio(body, 1)
	})
	t.Logf("monitor, after the fix:\n%s", vrrpSeries(body))
	if !strings.Contains(p.Log(), `msg="finding cleared"`) {
		t.Errorf("no cleared finding logged:\n%s", tail(p.Log(), 30))
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(10 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

// TestDaemonReload: SIGHUP with a broken configuration keeps the
// daemon running as Master, the VIP in place, with its file:line logged;
// SIGHUP with a changed priority and one instance removed applies the
// priority in place (metrics and the log show it, the daemon stays Master,
// the VIP never moves) and the removed
// instance resigns at once (priority 0: keepalived takes its VIP within
// Skew_Time; a removes it).
func TestDaemonReload(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t, "keepalived")
	vrrpdoctor(t)
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	// VI_52 stays (its priority changes), VI_53 is removed by the last
	// reload.
	vip53 := netip.MustParseAddr("198.51.100.153")
	inst53 := func(prio int) netlab.VRRPInstance {
		in := daemonSplitInstance(prio)
		in.VRID, in.VIPs = 53, []string{vip53.String() + "/24"}
		return in
	}
	tl, tl53 := &timeline{}, &timeline{}
	for _, h := range []*netlab.Host{a, b} {
		tl.watch(t, h, daemonVIP)
		tl53.watch(t, h, vip53)
	}
	if _, err := b.StartKeepalived(renderConf(t, "b", "", daemonSplitInstance(100), inst53(100))); err != nil {
		t.Fatal(err)
	}
	path := lab.Path("a-run.conf")
	p := startRun(t, a, path, renderConf(t, "a", "", daemonSplitInstance(150), inst53(150)), "--metrics-address", daemonMetrics)
	mastered := tl.waitHolder(t, 10*time.Second, "a", "startup")
	tl53.waitHolder(t, 10*time.Second, "a", "startup")
	write := func(conf string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := p.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}

	write("vrrp_instance VI_52 {\n    interface eth0\n    virtual_router_id 52\n    priority 150\n    virtual_ipaddress {\n")
	if err := p.WaitLog(10*time.Second, "reload refused"); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`a-run\.conf:\d+`).MatchString(p.Log()) {
		t.Errorf("the refused reload does not name file:line:\n%s", tail(p.Log(), 10))
	}
	time.Sleep(4 * daemonSplitAdvert)
	if p.Exited() {
		t.Fatal("vrrpdoctor exited on a broken configuration")
	}
	waitMetrics(t, a, 10*time.Second, "still Master at priority 150", func(body string) bool {
		m, _ := sample(body, "vrrpdoctor_instance_state", "state=MASTER", "vrrp_instance=VI_52")
		prio, _ := sample(body, "vrrpdoctor_instance_priority", "vrrp_instance=VI_52")
		return m == 1 && prio == 150
	})
	for _, e := range tl.snapshot() {
		if e.at.After(mastered) {
			t.Fatalf("the VIP moved on a refused reload:\n%s", tl.dump())
		}
	}

	write(renderConf(t, "a", "", daemonSplitInstance(200)))
	if err := p.WaitLog(10*time.Second, `msg="configuration reloaded"`); err != nil {
		t.Fatal(err)
	}
	// The removed instance resigned: priority 0, so keepalived takes its
	// VIP after Skew_Time rather than Master_Down_Interval, and a removed
	// its address.
	resigned := time.Now()
	tl53.waitHolder(t, 5*time.Second, "b", "removed instance resigned")
	if took := time.Since(resigned); took > 2*time.Second {
		t.Errorf("keepalived took %v to take over the removed instance's VIP: no priority-0 advert?", took)
	}
	if held, err := a.HasAddr(vip53); err != nil || held {
		t.Errorf("the removed instance's VIP is left on a (%v)", err)
	}
	body := waitMetrics(t, a, 10*time.Second, "priority 200 applied", func(body string) bool {
		m, _ := sample(body, "vrrpdoctor_instance_state", "state=MASTER", "vrrp_instance=VI_52")
		prio, _ := sample(body, "vrrpdoctor_instance_priority", "vrrp_instance=VI_52")
		return m == 1 && prio == 200
	})
	t.Logf("after the priority change:\n%s", vrrpSeries(body))
	if _, ok := sample(body, "vrrpdoctor_instance_state", "vrrp_instance=VI_53"); ok {
		t.Error("the removed instance is still reported")
	}
	time.Sleep(4 * daemonSplitAdvert)
	// The priority change is applied in place: no priority 0, the VIP
	// never leaves a nor reaches keepalived.
	for _, e := range tl.snapshot() {
		if e.at.After(mastered) && (e.host == "b" && e.kind == "add" || e.host == "a" && e.kind == "del") {
			t.Fatalf("the VIP moved during the priority-only reload:\n%s", tl.dump())
		}
	}
	if !regexp.MustCompile(`msg="configuration applied in place" instance=VI_52 .*changes="priority 150 -> 200"`).MatchString(p.Log()) {
		t.Errorf("the in-place priority change is not logged:\n%s", tail(p.Log(), 15))
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(10 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}
