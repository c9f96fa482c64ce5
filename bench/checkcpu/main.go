// Command checkcpu measures `vrrpdoctor check` against the Performance
// targets of issue 6 on a live keepalived pair in a network-namespace lab:
//
//   - wall time from start to verdict with the default watch (3 × the advert
//     interval + 1 s), against that same figure as the target;
//   - CPU used by check (user+sys from the child's rusage) as a share of one
//     core over its wall time, against the 5 % target, next to the CPU of
//     the backup's own keepalived VRRP process over the same window
//     (utime+stime from /proc/PID/stat) as the peer figure.
//
// check runs on the backup (priority 100) through `ip netns exec`, -runs
// times, for VRRPv2 with advert_int 1 and VRRPv3 with advert_int 0.25. It is
// a benchmark, not a test: it prints and never fails on a target. Run it
// through bench/checkcpu.sh, as root.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
)

var (
	bin     = flag.String("bin", "", "vrrpdoctor binary (required)")
	runs    = flag.Int("runs", 5, "check runs per configuration")
	verbose = flag.Bool("v", false, "print every run")
	vip     = netip.MustParseAddr("198.51.100.100")
)

// clockTick is USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const clockTick = 10 * time.Millisecond

func main() {
	flag.Parse()
	if *bin == "" || *runs < 1 {
		fmt.Fprintln(os.Stderr, "checkcpu: -bin vrrpdoctor is required and -runs must be at least 1 (use bench/checkcpu.sh)")
		os.Exit(2)
	}
	abs, err := filepath.Abs(*bin)
	if err != nil {
		fatal(err)
	}
	*bin = abs
	fmt.Printf("vrrpdoctor check on the backup of a keepalived pair, default watch, %d runs per configuration\n\n", *runs)
	fmt.Println("| configuration | target to verdict (3 × interval + 1 s) | wall to verdict, median / max | beyond the target, median | check CPU, median / max (% of a core) | target | keepalived VRRP process (backup), same windows: utime+stime; schedstat | exit codes |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, c := range []struct {
		name    string
		version int
		advert  time.Duration
	}{
		{"VRRPv2, advert_int 1", 2, time.Second},
		{"VRRPv3, advert_int 0.25", 3, 250 * time.Millisecond},
	} {
		if err := measure(c.name, c.version, c.advert); err != nil {
			fatal(fmt.Errorf("%s: %w", c.name, err))
		}
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "checkcpu:", err)
	os.Exit(1)
}

// run is one check run.
type run struct {
	wall, cpu time.Duration
	peerTicks int           // keepalived VRRP process, utime+stime, clock ticks
	peerRun   time.Duration // the same process, time on CPU (schedstat)
	exit      int
}

// measure builds a lab with a keepalived pair, runs check on the backup
// -runs times and prints one table row. The lab is removed on return and on
// SIGINT/SIGTERM.
func measure(name string, version int, advert time.Duration) error {
	lab, err := netlab.New(netlab.Options{Prefix: "vdbench"})
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	stop := make(chan struct{})
	defer func() {
		signal.Stop(sigs)
		close(stop)
		lab.Close()
	}()
	go func() {
		select {
		case <-sigs:
			lab.Close()
			os.Exit(130)
		case <-stop:
		}
	}()

	a, b, err := lab.Pair()
	if err != nil {
		return err
	}
	var kb *netlab.Keepalived
	for i, h := range []*netlab.Host{a, b} {
		in := netlab.VRRPInstance{Interface: "eth0", VRID: 51, Version: version, Priority: 150 - 50*i, AdvertInt: advert, VIPs: []string{vip.String() + "/24"}}
		k, err := h.StartKeepalivedConfig(netlab.KeepalivedConfig{RouterID: h.Name(), Instances: []netlab.VRRPInstance{in}})
		if err != nil {
			return err
		}
		kb = k
	}
	if err := kb.WaitState(15*time.Second, "VI_51", "BACKUP"); err != nil {
		return err
	}
	if err := netlab.WaitFor(20*time.Second, func() (bool, error) {
		h, err := lab.Holders(vip)
		return slices.Equal(h, []*netlab.Host{a}), err
	}); err != nil {
		return fmt.Errorf("VIP not on a alone: %w", err)
	}
	time.Sleep(time.Second) // past the backup's start-up
	pid, err := kb.VRRPPID()
	if err != nil {
		return err
	}

	var rs []run
	for i := range *runs {
		r, err := checkOnce(b, pid)
		if err != nil {
			return err
		}
		if *verbose {
			fmt.Fprintf(os.Stderr, "%s run %d: wall %s, check CPU %s (%.2f%%), keepalived %d ticks (%.2f%%), %s on CPU (%.3f%%), exit %d\n",
				name, i+1, r.wall.Round(time.Millisecond), r.cpu.Round(time.Millisecond), pct(r.cpu, r.wall), r.peerTicks, pct(time.Duration(r.peerTicks)*clockTick, r.wall), r.peerRun, pct(r.peerRun, r.wall), r.exit)
		}
		rs = append(rs, r)
	}

	target := 3*advert + time.Second
	walls := make([]time.Duration, len(rs))
	cpus := make([]float64, len(rs))
	var totalWall time.Duration
	var peerTicks int
	var peerRun time.Duration
	exits := map[int]int{}
	for i, r := range rs {
		walls[i] = r.wall
		cpus[i] = pct(r.cpu, r.wall)
		totalWall += r.wall
		peerTicks += r.peerTicks
		peerRun += r.peerRun
		exits[r.exit]++
	}
	slices.Sort(walls)
	slices.Sort(cpus)
	var ex []string
	for code, n := range exits {
		ex = append(ex, fmt.Sprintf("%d×%d", n, code))
	}
	slices.Sort(ex)
	fmt.Printf("| %s | %s | %s / %s (max %.2f × target: %s) | %s | %.2f %% / %.2f %% | < 5 %% (%s) | %.2f %% (%d ticks in %s); %.3f %% (%s on CPU) | %s |\n",
		name, target, walls[len(walls)/2].Round(time.Millisecond), walls[len(walls)-1].Round(time.Millisecond),
		float64(walls[len(walls)-1])/float64(target), verdict(walls[len(walls)-1] <= target), (walls[len(walls)/2] - target).Round(time.Millisecond),
		cpus[len(cpus)/2], cpus[len(cpus)-1], verdict(cpus[len(cpus)-1] < 5),
		pct(time.Duration(peerTicks)*clockTick, totalWall), peerTicks, totalWall.Round(time.Millisecond),
		pct(peerRun, totalWall), peerRun.Round(time.Microsecond), strings.Join(ex, ", "))
	return nil
}

// checkOnce runs `vrrpdoctor check` in h and reads the CPU of the keepalived
// process pid before and after.
func checkOnce(h *netlab.Host, pid int) (run, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := h.Command(ctx, *bin, "check")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	before, beforeRun, err := cpuTime(pid)
	if err != nil {
		return run{}, err
	}
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	after, afterRun, err2 := cpuTime(pid)
	if err2 != nil {
		return run{}, err2
	}
	r := run{wall: wall, peerTicks: after - before, peerRun: afterRun - beforeRun}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.exit = ee.ExitCode()
	case err != nil:
		return run{}, fmt.Errorf("vrrpdoctor check: %w\n%s", err, errOut.String())
	}
	if r.exit > 3 || r.exit < 0 {
		return run{}, fmt.Errorf("vrrpdoctor check: exit %d\n%s%s", r.exit, out.String(), errOut.String())
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return run{}, errors.New("no rusage for the check process")
	}
	r.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return r, nil
}

// cpuTime returns utime+stime of pid in clock ticks (/proc/PID/stat fields
// 14 and 15) and its time on CPU in nanoseconds (/proc/PID/schedstat, first
// field), finer than a tick for a process as idle as a keepalived backup.
func cpuTime(pid int) (ticks int, onCPU time.Duration, err error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	_, rest, ok := strings.Cut(string(raw), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	u, err := strconv.Atoi(f[11])
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat utime: %w", pid, err)
	}
	s, err := strconv.Atoi(f[12])
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat stime: %w", pid, err)
	}
	raw, err = os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
	if err != nil {
		return 0, 0, err
	}
	f = strings.Fields(string(raw))
	if len(f) == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/schedstat: empty", pid)
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/schedstat: %w", pid, err)
	}
	return u + s, time.Duration(ns), nil
}

// pct is d as a percentage of one core over wall.
func pct(d, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return 100 * d.Seconds() / wall.Seconds()
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}
