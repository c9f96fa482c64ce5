package runtime

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/keepalived"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startDaemon runs the configuration text in host h, in process.
func startDaemon(t *testing.T, h *netlab.Host, conf string) (*Daemon, *syncBuffer) {
	t.Helper()
	cfg, err := keepalived.Parse(h.Name()+".conf", []byte(conf))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, conf)
	}
	logs := &syncBuffer{}
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
