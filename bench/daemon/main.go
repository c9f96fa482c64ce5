// Command daemon measures `vrrpdoctor run` as a long-running daemon against
// keepalived on the same configuration, side by side in a network-namespace
// lab (issue 8 item 7), and prints the figures and ratios of one run:
//
//   - idle: one instance (VRRPv2, advert_int 1, Master), CPU over -minutes
//     and peak RSS;
//   - busy: 100 instances (VRRPv3, advert_int 0.1, Master), CPU over -busy
//     and peak RSS.
//
// The subjects run at the same time, each in its own pair of namespaces
// (the Master, and an empty peer on the other end of its veth): vrrpdoctor
// as shipped (self-diagnosis on), vrrpdoctor --no-diagnose, and keepalived
// (its parent and VRRP child processes added up); in the idle phase also
// bench/idlefloor (-floor), the least a Go program does as an idle Master,
// so that each run shows where the Go runtime's floor lies against
// keepalived on this machine at that time. CPU is the scheduler's
// exact run time of every thread of the subject over the window
// (schedstat), plus the children it waited for; utime+stime, which the
// kernel samples once per clock tick and so misses or over-counts the
// short bursts of an idle daemon, is printed beside it. Peak RSS is the
// sum of the processes' VmHWM.
//
// It is a benchmark, not a test: it prints and never fails on a target.
// Run it through bench/daemon.sh, as root.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/bench/internal/procfs"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
)

var (
	bin     = flag.String("bin", "", "vrrpdoctor binary (required)")
	floor   = flag.String("floor", "", "bench/idlefloor binary, run beside the others in the idle phase (none: left out)")
	minutes = flag.Float64("minutes", 10, "length of the idle CPU window, in minutes")
	busyFor = flag.Duration("busy", time.Minute, "length of the CPU window with 100 instances at 0.1 s")
	only    = flag.String("only", "", "run only: idle or busy")
	warmup  = flag.Duration("warmup", 5*time.Second, "time after the start before the CPU window opens (start-up, GARP bursts, first diagnosis window)")
)

// subject is one daemon under test.
type subject struct {
	name string
	impl string // vrrpdoctor, keepalived or idlefloor
	args []string
}

// allSubjects are the daemons compared; the first two are held to issue 8's
// targets (summary).
var allSubjects = []subject{
	{"vrrpdoctor", "vrrpdoctor", nil},
	{"vrrpdoctor --no-diagnose", "vrrpdoctor", []string{"--no-diagnose"}},
	{"keepalived", "keepalived", nil},
	{"idlefloor (Go floor)", "idlefloor", nil},
}

// runs says whether s runs in a phase of n instances: the floor only
// idles, with one instance, and only when -floor names it.
func (s subject) runs(n int) bool { return s.impl != "idlefloor" || (n == 1 && *floor != "") }

// result is what one subject used in one phase.
type result struct {
	cpuSec  float64 // CPU seconds over the window (schedstat, exact)
	tickSec float64 // CPU seconds over the window (utime+stime, sampled)
	pct     float64 // percent of one core
	rssKiB  int     // peak RSS, processes added up
	procs   int
	running bool // every process still ran at the end
}

func main() {
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "daemon: -bin vrrpdoctor is required (use bench/daemon.sh)")
		os.Exit(2)
	}
	abs, err := filepath.Abs(*bin)
	if err != nil {
		fatal(err)
	}
	*bin = abs
	if *floor != "" {
		if *floor, err = filepath.Abs(*floor); err != nil {
			fatal(err)
		}
	}
	lab, err := netlab.New(netlab.Options{Prefix: "vdd"})
	if err != nil {
		fatal(err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		lab.Close()
		os.Exit(130)
	}()
	defer lab.Close()

	idleWin := time.Duration(*minutes * float64(time.Minute))
	var idle, busy map[string]result
	if *only == "" || *only == "idle" {
		fmt.Printf("== idle: 1 instance (VRRPv2, advert_int 1, Master), CPU over %v\n", idleWin)
		idle = phase(lab, 1, 2, time.Second, idleWin)
		report(idle)
	}
	if *only == "" || *only == "busy" {
		fmt.Printf("== busy: 100 instances (VRRPv3, advert_int 0.1, Master), CPU over %v\n", *busyFor)
		busy = phase(lab, 100, 3, 100*time.Millisecond, *busyFor)
		report(busy)
	}
	if idle != nil && busy != nil {
		summary(idle, busy)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "daemon:", err)
	os.Exit(1)
}

// conf renders a keepalived.conf of n Master instances.
func conf(n, version int, advert time.Duration) string {
	var inst []netlab.VRRPInstance
	for i := 1; i <= n; i++ {
		vip := "198.51.100.100/24"
		if n > 1 {
			vip = fmt.Sprintf("203.0.113.%d/24", i)
		}
		inst = append(inst, netlab.VRRPInstance{
			Interface: "eth0", VRID: i, Version: version, Priority: 150, AdvertInt: advert,
			State: "MASTER", VIPs: []string{vip},
		})
	}
	c, err := netlab.KeepalivedConfig{RouterID: "bench", Instances: inst}.Render()
	if err != nil {
		fatal(err)
	}
	return c
}

// pair adds a Master host and an empty peer joined by a veth pair.
func pair(lab *netlab.Lab) *netlab.Host {
	n := len(lab.Hosts())
	m, err := lab.AddHost(fmt.Sprintf("m%d", n))
	if err != nil {
		fatal(err)
	}
	p, err := lab.AddHost(fmt.Sprintf("p%d", n))
	if err != nil {
		fatal(err)
	}
	if err := lab.Link(m, "eth0", p, "eth0"); err != nil {
		fatal(err)
	}
	for i, h := range []*netlab.Host{m, p} {
		if err := h.AddAddr("eth0", netlab.LANAddr4(i+1)); err != nil {
			fatal(err)
		}
	}
	return m
}

// start runs s on h with the configuration text.
func start(h *netlab.Host, s subject, text string) *netlab.Process {
	switch s.impl {
	case "keepalived":
		k, err := h.StartKeepalived(text)
		if err != nil {
			fatal(err)
		}
		return k.Process
	case "idlefloor":
		p, err := h.Start(*floor, "-i", "eth0")
		if err != nil {
			fatal(err)
		}
		return p
	}
	path := h.Lab().Path(h.Name() + ".conf")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		fatal(err)
	}
	p, err := h.Start(*bin, append([]string{"run", "-c", path}, s.args...)...)
	if err != nil {
		fatal(err)
	}
	return p
}

// phase runs every subject at once with n instances and measures CPU over
// win after the warm-up.
func phase(lab *netlab.Lab, n, version int, advert time.Duration, win time.Duration) map[string]result {
	text := conf(n, version, advert)
	var subjects []subject
	for _, s := range allSubjects {
		if s.runs(n) {
			subjects = append(subjects, s)
		}
	}
	procs := make([]*netlab.Process, len(subjects))
	for i, s := range subjects {
		procs[i] = start(pair(lab), s, text)
	}
	time.Sleep(*warmup)
	trees := make([][]int, len(subjects))
	before := make([]int, len(subjects))
	beforeNs := make([]int64, len(subjects))
	childBefore := make([]int, len(subjects))
	for i, p := range procs {
		trees[i] = procfs.Tree(p.PID())
		before[i] = cpuTicks(trees[i])
		beforeNs[i] = runNs(trees[i])
		childBefore[i] = childTicks(trees[i])
	}
	t0 := time.Now()
	time.Sleep(win)
	elapsed := time.Since(t0).Seconds()
	out := map[string]result{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, s := range subjects {
		after, afterNs := cpuTicks(trees[i]), runNs(trees[i])
		r := result{procs: len(trees[i]), running: !procs[i].Exited()}
		for _, pid := range trees[i] {
			r.rssKiB += procfs.StatusKB(pid, "VmHWM:")
		}
		r.tickSec = float64(after-before[i]) / float64(userHZ)
		// Children waited for are known in ticks only.
		r.cpuSec = float64(afterNs-beforeNs[i])/1e9 + float64(childTicks(trees[i])-childBefore[i])/float64(userHZ)
		r.pct = r.cpuSec / elapsed * 100
		out[s.name] = r
		wg.Go(func() {
			procs[i].Stop(10 * time.Second)
			if !r.running {
				mu.Lock()
				fmt.Printf("   %s exited during the window:\n%s\n", s.name, lastLines(procs[i].Log(), 10))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out
}

func report(res map[string]result) {
	fmt.Printf("   %-26s %10s %12s %12s %14s %6s\n", "subject", "CPU s", "% of a core", "ticks CPU s", "peak RSS KiB", "procs")
	for _, s := range allSubjects {
		if r, ok := res[s.name]; ok {
			fmt.Printf("   %-26s %10.3f %11.3f%% %12.2f %14d %6d\n", s.name, r.cpuSec, r.pct, r.tickSec, r.rssKiB, r.procs)
		}
	}
	k := res["keepalived"]
	for _, s := range allSubjects {
		if r, ok := res[s.name]; ok && s.impl != "keepalived" {
			fmt.Printf("   %-26s CPU ratio %s, RSS ratio %.2f\n", s.name+"/keepalived:", ratio(r.cpuSec, k.cpuSec), float64(r.rssKiB)/float64(max(k.rssKiB, 1)))
		}
	}
}

// summary checks issue 8's targets: RSS below keepalived's processes
// combined, CPU no more than keepalived's.
func summary(idle, busy map[string]result) {
	fmt.Println("== targets (issue 8): RSS below keepalived's processes combined; CPU no more than keepalived's")
	for _, s := range allSubjects[:2] {
		for _, ph := range []struct {
			name string
			res  map[string]result
		}{{"1 instance", idle}, {"100 instances", busy}} {
			r, k := ph.res[s.name], ph.res["keepalived"]
			fmt.Printf("   %-26s %-14s RSS %6d vs %6d KiB: %-7s CPU %8.3f vs %8.3f s: %s\n", s.name, ph.name,
				r.rssKiB, k.rssKiB, verdict(r.rssKiB < k.rssKiB), r.cpuSec, k.cpuSec, verdict(r.cpuSec <= k.cpuSec))
		}
	}
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func ratio(a, b float64) string {
	if b <= 0 {
		return "n/a (keepalived used no measurable CPU)"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// userHZ is USER_HZ on Linux: the unit of utime and stime.
const userHZ = 100

// cpuTicks returns the CPU time of the processes in clock ticks (threads
// included, also those that ended), and of the children they waited for
// (the nft, iptables-save or scripts a daemon ran).
func cpuTicks(pids []int) int { return statTicks(pids, 11, 12, 13, 14) }

// childTicks returns the CPU time of the children the processes waited
// for, in clock ticks.
func childTicks(pids []int) int { return statTicks(pids, 13, 14) }

// statTicks adds up fields of /proc/PID/stat, counted after the command.
func statTicks(pids []int, fields ...int) int {
	total := 0
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		_, rest, _ := strings.Cut(string(b), ") ")
		f := strings.Fields(rest)
		if len(f) < 15 {
			continue
		}
		for _, i := range fields {
			n, _ := strconv.Atoi(f[i])
			total += n
		}
	}
	return total
}

// runNs returns the exact run time of the processes' threads.
func runNs(pids []int) int64 {
	var total int64
	for _, pid := range pids {
		total += procfs.RunNs(pid)
	}
	return total
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
