package runtime

import (
	"fmt"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/keepalived"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
)

// busyInstances is the size of bench/daemon.sh's busy configuration.
const busyInstances = 100

// busyConfig renders n VRRPv3 instances at advert_int 0.1 s on eth0 with
// the given priority, one VIP each.
func busyConfig(tb testing.TB, n, priority int) string {
	tb.Helper()
	insts := make([]netlab.VRRPInstance, n)
	for i := range insts {
		insts[i] = netlab.VRRPInstance{Interface: "eth0", VRID: i + 1, Version: 3, Priority: priority,
			AdvertInt: 100 * time.Millisecond, VIPs: []string{fmt.Sprintf("203.0.113.%d/32", i+1)}}
	}
	s, err := netlab.KeepalivedConfig{RouterID: "bench", Instances: insts}.Render()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestLabInstanceStacks starts 50 instances that become Master (each adds
// its address through netlink) and checks that their goroutines' stacks
// stay small: netlink requests made on them left each with a 128 KiB
// stack (netlinkCall), 6 MB for 50.
func TestLabInstanceStacks(t *testing.T) {
	const n = 50
	lab := netlabtest.New(t)
	ha, _, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := keepalived.Parse("stacks.conf", []byte(busyConfig(t, n, 150)))
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	d, err := New(cfg, Options{Enter: ha.Do, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	err = netlab.WaitFor(30*time.Second, func() (bool, error) {
		for _, s := range d.Status().Instances {
			if s.State != router.Master {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("instances not all Master: %v", err)
	}
	runtime.ReadMemStats(&after)
	grown := int64(after.StackInuse) - int64(before.StackInuse)
	t.Logf("goroutine stacks grew by %d KiB for %d instances", grown/1024, n)
	if limit := int64(n * 48 << 10); grown > limit {
		t.Errorf("goroutine stacks grew by %d KiB for %d instances, want at most %d KiB", grown/1024, n, limit/1024)
	}
}

// BenchmarkLabBusy runs bench/daemon.sh's busy case in process: 100
// instances, VRRPv3 at 0.1 s, 1000 adverts a second. In "master" they
// are Master beside an idle peer (the send path); in "backup" a keepalived
// peer is Master of all and they listen (the receive path). One
// iteration is one second of running; it reports the process's CPU time
// per second, heap allocations per advert, goroutines and the memory of
// their stacks.
func BenchmarkLabBusy(b *testing.B) {
	for _, role := range []string{"master", "backup"} {
		b.Run(role, func(b *testing.B) {
			var lab *netlab.Lab
			if role == "backup" {
				lab = netlabtest.New(b, "keepalived")
			} else {
				lab = netlabtest.New(b)
			}
			ha, hb, err := lab.Pair()
			if err != nil {
				b.Fatal(err)
			}
			prio := 150
			if role == "backup" {
				prio = 100
				if _, err := hb.StartKeepalived(busyConfig(b, busyInstances, 200)); err != nil {
					b.Fatal(err)
				}
			}
			cfg, err := keepalived.Parse("bench.conf", []byte(busyConfig(b, busyInstances, prio)))
			if err != nil {
				b.Fatal(err)
			}
			var events atomic.Uint64
			d, err := New(cfg, Options{Enter: ha.Do, Logger: slog.New(slog.DiscardHandler),
				OnEvent: func(Event) { events.Add(1) }})
			if err != nil {
				b.Fatal(err)
			}
			if err := d.Start(); err != nil {
				b.Fatal(err)
			}
			defer d.Stop()
			want := router.Master
			if role == "backup" {
				want = router.Backup
			}
			err = netlab.WaitFor(30*time.Second, func() (bool, error) {
				for _, s := range d.Status().Instances {
					if s.State != want || (role == "backup" && s.Stats.Received == 0) {
						return false, nil
					}
				}
				return true, nil
			})
			if err != nil {
				b.Fatalf("instances not all %v: %v", want, err)
			}
			time.Sleep(time.Second) // start-up bursts

			adverts := func() (n uint64) {
				for _, s := range d.Status().Instances {
					n += s.Stats.Sent + s.Stats.Received
				}
				return n
			}
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			a0, cpu0 := adverts(), cpuTime(b)
			b.ResetTimer()
			for range b.N {
				time.Sleep(time.Second)
			}
			b.StopTimer()
			a1, cpu1 := adverts(), cpuTime(b)
			runtime.ReadMemStats(&ms1)
			b.ReportMetric(float64(cpu1-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/s")
			if n := a1 - a0; n > 0 {
				b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(n), "allocs/advert")
				b.ReportMetric(float64(n)/float64(b.N), "adverts/s")
			}
			b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
			b.ReportMetric(float64(ms1.StackInuse)/1024, "stack-KiB")
			ss := []metrics.Sample{{Name: "/gc/stack/starting-size:bytes"}}
			metrics.Read(ss)
			b.ReportMetric(float64(ss[0].Value.Uint64())/1024, "stack-start-KiB")
		})
	}
}
