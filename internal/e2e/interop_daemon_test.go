package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
)

// Daemon behaviour of `vrrpdoctor run` beyond the protocol: reload on
// SIGHUP, send failures, JSON logs, track and notify scripts.

const daemonAdvert = 200 * time.Millisecond

func daemonInstance(vrid int, prio int, vipCIDR string, extra ...string) netlab.VRRPInstance {
	return netlab.VRRPInstance{
		Interface: "eth0", VRID: vrid, Version: 3, Priority: prio,
		AdvertInt: daemonAdvert, VIPs: []string{vipCIDR}, Extra: extra,
	}
}

func renderConf(t *testing.T, id string, top string, inst ...netlab.VRRPInstance) string {
	t.Helper()
	conf, err := netlab.KeepalivedConfig{RouterID: id, Instances: inst}.Render()
	if err != nil {
		t.Fatal(err)
	}
	return conf + top
}

// startRun writes conf to path and runs `vrrpdoctor run` on it in h.
func startRun(t *testing.T, h *netlab.Host, path, conf string, args ...string) *netlab.Process {
	t.Helper()
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := h.Start(vrrpdoctor(t), append([]string{"run", "-c", path}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("vrrpdoctor log (%s):\n%s", h.Name(), tail(p.Log(), 80))
		}
	})
	return p
}

// TestRunReload: SIGHUP keeps an unchanged Master's mastership (its VIP is
// never removed), starts a new instance, refuses a broken configuration
// with its file:line while the running one carries on, and restarts a
// changed instance.
func TestRunReload(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t, "keepalived")
	vrrpdoctor(t)
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	vip1, vip2 := netip.MustParseAddr("198.51.100.101"), netip.MustParseAddr("198.51.100.102")
	tl1, tl2 := &timeline{}, &timeline{}
	for _, h := range []*netlab.Host{a, b} {
		tl1.watch(t, h, vip1)
		tl2.watch(t, h, vip2)
	}
	if _, err := b.StartKeepalived(renderConf(t, "b", "", daemonInstance(61, 100, "198.51.100.101/24"))); err != nil {
		t.Fatal(err)
	}
	path := lab.Path("a-reload.conf")
	p := startRun(t, a, path, renderConf(t, "a", "", daemonInstance(61, 150, "198.51.100.101/24")))
	tl1.waitHolder(t, 5*time.Second, "a", "startup")
	mastered := time.Now()

	// 1. Same instance plus a new one.
	write := func(conf string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := p.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	write(renderConf(t, "a", "", daemonInstance(61, 150, "198.51.100.101/24"), daemonInstance(62, 150, "198.51.100.102/24")))
	tl2.waitHolder(t, 5*time.Second, "a", "new instance after SIGHUP")
	if err := p.WaitLog(5*time.Second, `msg="configuration reloaded" unchanged=1 applied_in_place=0 stopped=0 started=1`); err != nil {
		t.Fatal(err)
	}

	// 2. A broken configuration is refused with its position.
	write("vrrp_instance VI_61 {\n    interface eth0\n    virtual_router_id 61\n    priority 150\n    virtual_ipaddress {\n")
	if err := p.WaitLog(5*time.Second, "reload refused"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Log(), "a-reload.conf:") {
		t.Errorf("the refused reload does not name file:line:\n%s", tail(p.Log(), 10))
	}
	time.Sleep(3 * daemonAdvert)
	for _, e := range tl1.snapshot() {
		if e.host == "a" && e.kind == "del" && e.at.After(mastered) {
			t.Fatalf("the unchanged Master lost its VIP during the reloads\n%s", tl1.dump())
		}
	}
	if p.Exited() {
		t.Fatal("vrrpdoctor exited on a broken configuration")
	}

	// 3. Instance 61's priority changed to 50 (< keepalived's 100): applied
	// in place, its adverts carry 50, and keepalived preempts; 62 stays.
	write(renderConf(t, "a", "", daemonInstance(61, 50, "198.51.100.101/24"), daemonInstance(62, 150, "198.51.100.102/24")))
	tl1.waitHolder(t, 3*time.Second, "b", "changed instance after SIGHUP")
	if got := holdersOf(tl2.snapshot()); len(got) != 1 || got[0] != "a" {
		t.Errorf("unchanged instance 62 lost its VIP: %v\n%s", got, tl2.dump())
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(5 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if got := holdersOf(tl2.snapshot()); len(got) != 0 {
		t.Errorf("VIP of instance 62 left behind after SIGTERM on %v", got)
	}
}

// TestRunSendFailureJSON: an OUTPUT rule dropping VRRP makes every send
// fail with EPERM; the failure is logged once, with the reason, and the
// recovery once the rule is gone. Logs are JSON, one object per line.
func TestRunSendFailureJSON(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t, "iptables")
	vrrpdoctor(t)
	a, _, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Iptables("-A", "OUTPUT", "-p", "112", "-j", "DROP"); err != nil {
		t.Fatal(err)
	}
	p := startRun(t, a, lab.Path("a.conf"), renderConf(t, "a", "", daemonInstance(71, 150, "198.51.100.111/24")), "--log-format", "json")
	// Master after Master_Down_Interval; then 1 advert per interval fails.
	if err := p.WaitLog(5*time.Second, `"to":"MASTER"`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * daemonAdvert)
	if _, err := a.Iptables("-D", "OUTPUT", "-p", "112", "-j", "DROP"); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitLog(3*time.Second, "adverts are sent again"); err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(5 * time.Second); err != nil {
		t.Fatal(err)
	}

	var failures, recovered []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.Log()))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", sc.Text(), err)
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("log line without %q: %s", k, sc.Text())
			}
		}
		switch rec["msg"] {
		case "advert not sent":
			failures = append(failures, rec)
		case "adverts are sent again":
			recovered = append(recovered, rec)
		}
	}
	if len(failures) != 1 {
		t.Fatalf("%d 'advert not sent' lines, want exactly 1", len(failures))
	}
	if r, _ := failures[0]["reason"].(string); !strings.Contains(r, "operation not permitted") || !strings.Contains(r, "OUTPUT firewall rule") {
		t.Errorf("reason %q does not explain the EPERM", r)
	}
	if len(recovered) != 1 {
		t.Fatalf("%d recovery lines, want 1", len(recovered))
	}
	if n, _ := recovered[0]["failed_before"].(float64); n < 3 {
		t.Errorf("failed_before = %v, want the count of the adverts dropped (>= 3)", recovered[0]["failed_before"])
	}
}

// TestRunTrackAndNotify: a track script with a negative weight moves
// mastership to keepalived when it fails and back when it recovers; the
// generic notify script gets keepalived's arguments for each change.
func TestRunTrackAndNotify(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t, "keepalived")
	vrrpdoctor(t)
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	vip := netip.MustParseAddr("198.51.100.121")
	tl := &timeline{}
	tl.watch(t, a, vip)
	tl.watch(t, b, vip)

	dir := t.TempDir()
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	healthy, events := filepath.Join(dir, "healthy"), filepath.Join(dir, "events")
	check := filepath.Join(dir, "check.sh")
	notify := filepath.Join(dir, "notify.sh")
	writeExec := func(p, body string) {
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeExec(check, "test -e "+healthy)
	writeExec(notify, `echo "$1 $2 $3 $4" >> `+events)
	if err := os.WriteFile(healthy, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	if _, err := b.StartKeepalived(renderConf(t, "b", "", daemonInstance(81, 100, "198.51.100.121/24"))); err != nil {
		t.Fatal(err)
	}
	top := fmt.Sprintf("vrrp_script chk {\n    script %q\n    interval 1\n    fall 1\n    rise 1\n    weight -60\n}\n", check)
	conf := renderConf(t, "a", top, daemonInstance(81, 150, "198.51.100.121/24",
		"track_script { chk }", fmt.Sprintf("notify %q", notify)))
	p := startRun(t, a, lab.Path("a.conf"), conf)
	tl.waitHolder(t, 5*time.Second, "a", "startup with a healthy track script")

	os.Remove(healthy) // priority 150-60 = 90 < 100
	tl.waitHolder(t, 5*time.Second, "b", "track script failing")
	if err := os.WriteFile(healthy, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tl.waitHolder(t, 5*time.Second, "a", "track script recovering")
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	mdi := router.MasterDownInterval(3, 90, daemonAdvert)
	for _, o := range overlaps(tl.snapshot(), time.Now()) {
		if d := o[1].Sub(o[0]); d > mdi {
			t.Errorf("both held the VIP for %v\n%s", d, tl.dump())
		}
	}
	got, _ := os.ReadFile(events)
	want := "INSTANCE VI_81 BACKUP 150\nINSTANCE VI_81 MASTER 150\nINSTANCE VI_81 BACKUP 90\nINSTANCE VI_81 MASTER 150\nINSTANCE VI_81 STOP 150\n"
	if string(got) != want {
		t.Errorf("notify script saw:\n%s\nwant:\n%s", got, want)
	}
}

// TestRunTrackInterfaceFault: a tracked interface going down puts the
// instance in FAULT (priority 0 advert, VIP removed, keepalived takes over
// after Skew_Time); back up, the instance starts again and preempts.
func TestRunTrackInterfaceFault(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t, "keepalived")
	vrrpdoctor(t)
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	// trk0 is tracked; its carrier follows trk1, its veth peer.
	for _, args := range [][]string{
		{"ip", "link", "add", "trk0", "type", "veth", "peer", "name", "trk1"},
		{"ip", "link", "set", "trk0", "up"},
		{"ip", "link", "set", "trk1", "up"},
	} {
		if _, err := a.Run(args[0], args[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	vip := netip.MustParseAddr("198.51.100.131")
	tl := &timeline{}
	tl.watch(t, a, vip)
	tl.watch(t, b, vip)
	if _, err := b.StartKeepalived(renderConf(t, "b", "", daemonInstance(91, 100, "198.51.100.131/24"))); err != nil {
		t.Fatal(err)
	}
	p := startRun(t, a, lab.Path("a.conf"), renderConf(t, "a", "", daemonInstance(91, 150, "198.51.100.131/24", "track_interface { trk0 }")))
	tl.waitHolder(t, 5*time.Second, "a", "startup")

	t0 := time.Now()
	if _, err := a.Run("ip", "link", "set", "trk1", "down"); err != nil {
		t.Fatal(err)
	}
	at := tl.waitHolder(t, 3*time.Second, "b", "tracked interface down")
	if skew := router.SkewTime(3, 100, daemonAdvert); at.Sub(t0) > skew+500*time.Millisecond {
		t.Errorf("takeover %v after the fault; the priority 0 advert should make it Skew_Time (%v)", at.Sub(t0), skew)
	}
	if err := p.WaitLog(2*time.Second, "to=FAULT reason=fault"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Run("ip", "link", "set", "trk1", "up"); err != nil {
		t.Fatal(err)
	}
	tl.waitHolder(t, 5*time.Second, "a", "tracked interface up again")
	if err := p.WaitLog(2*time.Second, "from=FAULT to=BACKUP reason=fault_cleared"); err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}
