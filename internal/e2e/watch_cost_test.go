package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
)

// TestWatchCost measures what the continuous self-diagnosis (diag/watch)
// costs in the real binary, one instance at 1 s adverts, healthy, each
// figure over 20 s (VRRPDOCTOR_WATCH_COST_SECONDS to change):
//
//   - `vrrpdoctor run` on b with its self-diagnosis and with
//     --no-diagnose (the difference is the watcher's), a keepalived master
//     on a;
//   - `vrrpdoctor run --monitor` beside keepalived on b.
//
// It logs CPU and RSS beside keepalived's, and fails when a watcher finds
// something on the healthy pair or uses 1 % of a core or more.
func TestWatchCost(t *testing.T) {
	t.Parallel()
	secs := 20
	if s, err := strconv.Atoi(os.Getenv("VRRPDOCTOR_WATCH_COST_SECONDS")); err == nil && s > 0 {
		secs = s
	}
	p := newCheckLab(t)
	inst := func(h *netlab.Host, prio int) netlab.KeepalivedConfig {
		return netlab.KeepalivedConfig{RouterID: h.Name(), Instances: []netlab.VRRPInstance{{Interface: "eth0", VRID: 51, Version: 3, Priority: prio, AdvertInt: time.Second, VIPs: []string{vip.String() + "/24"}}}}
	}
	ka, err := p.a.StartKeepalivedConfig(inst(p.a, 150))
	if err != nil {
		t.Fatal(err)
	}
	if err := ka.WaitState(20*time.Second, "VI_51", "MASTER"); err != nil {
		t.Fatal(err)
	}
	confB, err := inst(p.b, 100).Render()
	if err != nil {
		t.Fatal(err)
	}
	pathB := p.lab.Path("b-run.conf")
	if err := os.WriteFile(pathB, []byte(confB), 0o644); err != nil {
		t.Fatal(err)
	}

	// measure runs args on b for secs after a settling time and returns
	// its CPU share and peak RSS.
	measure := func(name string, args ...string) (share float64, hwmKB int) {
		t.Helper()
		proc, err := p.b.Start(vrrpdoctor(t), args...)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := proc.Stop(5 * time.Second); err != nil && err != netlab.ErrExited {
				t.Errorf("%s: stop: %v", name, err)
			}
			log := proc.Log()
			if strings.Contains(log, "msg=finding") {
				t.Errorf("%s: a finding on a healthy pair:\n%s", name, log)
			}
		}()
		time.Sleep(8 * time.Second) // start, first windows
		cpu0, _, err := watchProcUsage(proc.PID())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		time.Sleep(time.Duration(secs) * time.Second)
		cpu1, hwm, err := watchProcUsage(proc.PID())
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, proc.Log())
		}
		share = 100 * (cpu1 - cpu0).Seconds() / time.Since(start).Seconds()
		t.Logf("%s: %.2f%% of a core (%s CPU in %ds), peak RSS %d KiB (now: %s)", name, share, cpu1-cpu0, secs, hwm, watchMemDetail(proc.PID()))
		return share, hwm
	}

	diagShare, diagHWM := measure("vrrpdoctor run (self-diagnosis)", "run", "-c", pathB)
	plainShare, plainHWM := measure("vrrpdoctor run --no-diagnose", "run", "--no-diagnose", "-c", pathB)
	t.Logf("the watcher inside run: %+.2f%% of a core, %+d KiB peak RSS", diagShare-plainShare, diagHWM-plainHWM)

	kb, err := p.b.StartKeepalivedConfig(inst(p.b, 100))
	if err != nil {
		t.Fatal(err)
	}
	if err := kb.WaitState(20*time.Second, "VI_51", "BACKUP"); err != nil {
		t.Fatal(err)
	}
	monShare, monHWM := measure("vrrpdoctor run --monitor", "run", "--monitor", "-c", kb.ConfigPath)
	kaHWM := 0
	pids := []int{kb.Process.PID()}
	if child, err := kb.VRRPPID(); err == nil {
		pids = append(pids, child)
	}
	for _, pid := range pids {
		if _, hwm, err := watchProcUsage(pid); err == nil {
			kaHWM += hwm
		}
	}
	t.Logf("keepalived on b (%d processes): peak RSS %d KiB; vrrpdoctor run --monitor beside it: %d KiB", len(pids), kaHWM, monHWM)
	for name, s := range map[string]float64{"run": diagShare, "run --monitor": monShare} {
		if s >= 1 {
			t.Errorf("%s used %.2f%% of a core at idle, want under 1%%", name, s)
		}
	}
}

// watchMemDetail is how a process's resident memory divides now, from
// /proc/PID/status: anonymous (heap, stacks) and file (the binary's pages).
func watchMemDetail(pid int) string {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err.Error()
	}
	var parts []string
	for _, l := range strings.Split(string(status), "\n") {
		for _, k := range []string{"RssAnon:", "RssFile:", "RssShmem:"} {
			if v, ok := strings.CutPrefix(l, k); ok {
				parts = append(parts, k+" "+strings.Join(strings.Fields(v), " "))
			}
		}
	}
	return strings.Join(parts, ", ")
}

// watchProcUsage returns a process's CPU time (user + system) and peak RSS
// (VmHWM).
func watchProcUsage(pid int) (cpu time.Duration, hwmKB int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	cpu = time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ 100
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			hwmKB, _ = strconv.Atoi(strings.Fields(v)[0])
		}
	}
	return cpu, hwmKB, nil
}
