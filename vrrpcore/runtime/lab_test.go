package runtime

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/keepalived"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
)

// startDaemon runs the configuration text in host h, in process.
func startDaemon(t *testing.T, h *netlab.Host, conf string) (*Daemon, *netlabtest.LogBuffer) {
	t.Helper()
	cfg, err := keepalived.Parse(h.Name()+".conf", []byte(conf))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, conf)
	}
	logs := &netlabtest.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d, err := New(cfg, Options{Enter: h.Do, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Stop()
		if t.Failed() || testing.Verbose() {
			t.Logf("vrrpdoctor log (%s):\n%s", h.Name(), logs)
		}
	})
	return d, logs
}

func render(t *testing.T, c netlab.KeepalivedConfig) string {
	t.Helper()
	s, err := c.Render()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitHolders waits until exactly the hosts want hold ip.
func waitHolders(t *testing.T, lab *netlab.Lab, ip netip.Addr, timeout time.Duration, want ...*netlab.Host) {
	t.Helper()
	var got []*netlab.Host
	err := netlab.WaitFor(timeout, func() (bool, error) {
		var err error
		got, err = lab.Holders(ip)
		if err != nil || len(got) != len(want) {
			return false, err
		}
		for i := range got {
			if got[i] != want[i] {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("%v held by [%s], want [%s]: %v", ip, netlab.HostNames(got), netlab.HostNames(want), err)
	}
}

func instanceState(d *Daemon, name string) router.State {
	for _, s := range d.Status().Instances {
		if s.Name == name {
			return s.State
		}
	}
	return router.Initialize
}

// TestLabAgainstKeepalived runs an in-process Daemon as the higher priority
// router next to a real keepalived, then stops it: keepalived must take
// over at once (priority 0) and nothing may be left behind.
func TestLabAgainstKeepalived(t *testing.T) {
	lab := netlabtest.New(t, "keepalived")
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	vip := netip.MustParseAddr("198.51.100.100")
	inst := netlab.VRRPInstance{Interface: "eth0", VRID: 51, Version: 3, AdvertInt: 100 * time.Millisecond, VIPs: []string{"198.51.100.100/24"}}
	ia, ib := inst, inst
	ia.Priority, ib.Priority = 150, 100
	// A stale copy of the VIP from a "previous run" must go before start.
	if err := b.AddAddr("eth0", "198.51.100.100/24"); err != nil {
		t.Fatal(err)
	}
	k, err := b.StartKeepalivedConfig(netlab.KeepalivedConfig{RouterID: "b", Instances: []netlab.VRRPInstance{ib}})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.WaitState(10*time.Second, "VI_51", "MASTER"); err != nil {
		t.Fatal(err)
	}
	d, logs := startDaemon(t, a, render(t, netlab.KeepalivedConfig{RouterID: "a", Instances: []netlab.VRRPInstance{ia}}))
	waitHolders(t, lab, vip, 5*time.Second, a)
	if err := k.WaitState(5*time.Second, "VI_51", "BACKUP"); err != nil {
		t.Fatal(err)
	}
	if s := instanceState(d, "VI_51"); s != router.Master {
		t.Fatalf("vrrpdoctor in %v, want MASTER", s)
	}
	d.Stop()
	waitHolders(t, lab, vip, 2*time.Second, b)
	if !strings.Contains(logs.String(), "reason=shutdown") {
		t.Errorf("no shutdown transition logged:\n%s", logs)
	}
	for _, bad := range []string{"invalid", "mismatch", "bogus", "checksum"} {
		if strings.Contains(strings.ToLower(k.Log()), bad) {
			t.Errorf("keepalived logged %q about our adverts:\n%s", bad, k.Log())
		}
	}
}

// TestLabReloadStatus reloads a running Daemon while its status is read
// concurrently: the unchanged instance stays Master, the new one starts,
// the removed one stops and releases its address.
func TestLabReloadStatus(t *testing.T) {
	lab := netlabtest.New(t)
	a, _, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	inst := func(vrid int, vip string) netlab.VRRPInstance {
		return netlab.VRRPInstance{Interface: "eth0", VRID: vrid, Version: 3, Priority: 150, AdvertInt: 50 * time.Millisecond, VIPs: []string{vip}}
	}
	one := render(t, netlab.KeepalivedConfig{RouterID: "a", Instances: []netlab.VRRPInstance{inst(1, "198.51.100.11/24"), inst(2, "198.51.100.12/24")}})
	d, _ := startDaemon(t, a, one)
	waitState := func(name string, want router.State) {
		t.Helper()
		if err := netlab.WaitFor(3*time.Second, func() (bool, error) { return instanceState(d, name) == want, nil }); err != nil {
			t.Fatalf("%s: state %v, want %v", name, instanceState(d, name), want)
		}
	}
	waitState("VI_1", router.Master)
	waitState("VI_2", router.Master)
	before := d.Status()

	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				d.Status()
			}
		}
	}()
	two := render(t, netlab.KeepalivedConfig{RouterID: "a", Instances: []netlab.VRRPInstance{inst(1, "198.51.100.11/24"), inst(3, "198.51.100.13/24")}})
	cfg, err := keepalived.Parse("a.conf", []byte(two))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	waitState("VI_3", router.Master)
	close(stop)
	<-done

	st := d.Status()
	if len(st.Instances) != 2 || st.Instances[0].Name != "VI_1" || st.Instances[1].Name != "VI_3" {
		t.Fatalf("instances after reload: %+v", st.Instances)
	}
	if got, was := st.Instances[0].Stats.BecameMaster, before.Instances[0].Stats.BecameMaster; got != was {
		t.Errorf("VI_1 became Master %d times, %d before the reload: it was restarted", got, was)
	}
	if has, _ := a.HasAddr(netip.MustParseAddr("198.51.100.12")); has {
		t.Error("the removed instance left its address behind")
	}
	for _, ip := range []string{"198.51.100.11", "198.51.100.13"} {
		if has, _ := a.HasAddr(netip.MustParseAddr(ip)); !has {
			t.Errorf("%s not held", ip)
		}
	}
	if len(st.Sockets) != 1 || st.Sockets[0].Interface != "eth0" || st.Sockets[0].Family != 4 {
		t.Errorf("sockets %+v, want one on eth0 IPv4", st.Sockets)
	}
}
