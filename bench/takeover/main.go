// Command takeover measures `vrrpdoctor run` against keepalived in a
// network-namespace lab (issue 3 item 6) and prints the figures and ratios:
//
//   - take-over latency of the backup, from SIGKILL of the Master's process
//     group (the backup waits Master_Down_Interval) and from SIGTERM of the
//     Master (priority 0 advert: the backup waits Skew_Time), to the VIP
//     appearing on the backup (netlink address event), for a vrrpdoctor
//     backup and a keepalived backup against the same keepalived Master,
//     VRRPv3 with advert_int 1 and 0.1; median and p95 of N trials;
//   - peak RSS of `vrrpdoctor run` with one instance against keepalived's
//     processes (parent and VRRP child) for the same configuration;
//   - CPU time of each with 100 instances at 0.1 s adverts as Master.
//
// It is a benchmark, not a test: it prints and never fails on a target.
// Run it through bench/takeover.sh, as root.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
)

var (
	bin      = flag.String("bin", "", "vrrpdoctor binary (required)")
	trials   = flag.Int("trials", 20, "trials per measurement")
	cpuFor   = flag.Duration("cpu", time.Minute, "duration of the CPU measurement with 100 instances")
	only     = flag.String("only", "", "run only: takeover, rss or cpu")
	verbose  = flag.Bool("v", false, "print every trial")
	implOnly = flag.String("impl", "", "measure only this backup: vrrpdoctor or keepalived")
	advOnly  = flag.Duration("advert", 0, "measure only this advert interval (1s or 100ms)")
	vipCIDR  = "198.51.100.100/24"
	vipAddr  = netip.MustParseAddr("198.51.100.100")
	hiPrio   = 150
	loPrio   = 100
	settle   = 200 * time.Millisecond
	failures int
)

func main() {
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "takeover: -bin vrrpdoctor is required (use bench/takeover.sh)")
		os.Exit(2)
	}
	abs, err := filepath.Abs(*bin)
	if err != nil {
		fatal(err)
	}
	*bin = abs
	lab, err := netlab.New(netlab.Options{Prefix: "vdbench"})
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

	if *only == "" || *only == "takeover" {
		takeover(lab)
	}
	if *only == "" || *only == "rss" {
		rss(lab)
	}
	if *only == "" || *only == "cpu" {
		cpu(lab)
	}
	if failures > 0 {
		fmt.Printf("\n%d trial(s) did not complete (see above)\n", failures)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "takeover:", err)
	os.Exit(1)
}

// conf renders a keepalived.conf of n VRRPv3 instances.
func conf(id string, prio, n int, advert time.Duration, state string) string {
	var inst []netlab.VRRPInstance
	for i := 1; i <= n; i++ {
		vip := vipCIDR
		if n > 1 {
			vip = fmt.Sprintf("203.0.113.%d/24", i)
		}
		inst = append(inst, netlab.VRRPInstance{
			Interface: "eth0", VRID: i, Version: 3, Priority: prio, AdvertInt: advert,
			State: state, VIPs: []string{vip},
		})
	}
	c, err := netlab.KeepalivedConfig{RouterID: id, Instances: inst}.Render()
	if err != nil {
		fatal(err)
	}
	return c
}

// router is a running VRRP daemon in a lab host.
type daemon struct {
	p *netlab.Process
}

func start(h *netlab.Host, impl, text string) daemon {
	if impl == "keepalived" {
		k, err := h.StartKeepalived(text)
		if err != nil {
			fatal(err)
		}
		return daemon{k.Process}
	}
	path := h.Lab().Path(fmt.Sprintf("%s-%d.conf", h.Name(), time.Now().UnixNano()))
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		fatal(err)
	}
	p, err := h.Start(*bin, "run", "-c", path, "--log-level", "debug")
	if err != nil {
		fatal(err)
	}
	return daemon{p}
}

func (d daemon) stop() {
	d.p.Stop(5 * time.Second)
}

// watcher timestamps the VIP's appearance on a host from netlink events.
type watcher struct {
	mu    sync.Mutex
	added []time.Time
	held  bool
	done  chan struct{}
}

func watch(h *netlab.Host) *watcher {
	w := &watcher{done: make(chan struct{})}
	ch := make(chan netlink.AddrUpdate, 256)
	if err := h.Do(func() error {
		return netlink.AddrSubscribeWithOptions(ch, w.done, netlink.AddrSubscribeOptions{ListExisting: true})
	}); err != nil {
		fatal(err)
	}
	go func() {
		for u := range ch {
			a, ok := netip.AddrFromSlice(u.LinkAddress.IP)
			if !ok || a.Unmap() != vipAddr {
				continue
			}
			w.mu.Lock()
			w.held = u.NewAddr
			if u.NewAddr {
				w.added = append(w.added, time.Now())
			}
			w.mu.Unlock()
		}
	}()
	return w
}

// addedAfter waits up to timeout for the VIP to be added after t0.
func (w *watcher) addedAfter(t0 time.Time, timeout time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		for _, t := range w.added {
			if t.After(t0) {
				w.mu.Unlock()
				return t, true
			}
		}
		w.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	return time.Time{}, false
}

func (w *watcher) holds() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.held
}

func waitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}

// takeover measures the backup's take-over latencies.
func takeover(lab *netlab.Lab) {
	fmt.Printf("== take-over latency: keepalived Master (priority %d) vs backup (priority %d), VRRPv3, %d trials\n", hiPrio, loPrio, *trials)
	for _, advert := range []time.Duration{time.Second, 100 * time.Millisecond} {
		if *advOnly != 0 && advert != *advOnly {
			continue
		}
		mdi := router.MasterDownInterval(3, uint8(loPrio), advert)
		skew := router.SkewTime(3, uint8(loPrio), advert)
		res := map[string]map[string][]time.Duration{}
		for _, impl := range []string{"vrrpdoctor", "keepalived"} {
			res[impl] = map[string][]time.Duration{}
			if *implOnly != "" && impl != *implOnly {
				continue
			}
			m, b := pair(lab)
			wm, wb := watch(m), watch(b)
			backup := start(b, impl, conf("b", loPrio, 1, advert, "BACKUP"))
			masterConf := conf("m", hiPrio, 1, advert, "MASTER")
			for _, event := range []string{"SIGKILL", "SIGTERM"} {
				for i := 0; i < *trials; i++ {
					master := start(m, "keepalived", masterConf)
					if !waitUntil(mdi+3*time.Second, func() bool { return wm.holds() && !wb.holds() }) {
						fmt.Printf("   %s %s trial %d: the Master never took the VIP\n", impl, event, i+1)
						failures++
						master.stop()
						continue
					}
					// The backup has seen adverts; the kill falls anywhere
					// in an advert interval.
					time.Sleep(settle + advert + time.Duration(rand.Int64N(int64(advert))))
					t0 := time.Now()
					if event == "SIGKILL" {
						syscall.Kill(-master.p.PID(), syscall.SIGKILL)
					} else {
						master.p.Signal(syscall.SIGTERM)
					}
					t1, ok := wb.addedAfter(t0, mdi+5*time.Second)
					master.p.Wait(5 * time.Second)
					if event == "SIGKILL" {
						m.DelAddr("eth0", vipCIDR) // the crashed Master's leftover
					}
					if !ok {
						fmt.Printf("   %s %s trial %d: the backup never took over\n", impl, event, i+1)
						failures++
						continue
					}
					res[impl][event] = append(res[impl][event], t1.Sub(t0))
					if *verbose {
						fmt.Printf("   advert_int %v %s backup %s trial %d: %v\n", advert, impl, event, i+1, ms(t1.Sub(t0)))
					}
					if event == "SIGKILL" && t1.Sub(t0) < mdi-advert-50*time.Millisecond {
						fmt.Printf("   %s backup took over %v after SIGKILL, before Master_Down_Interval - advert_int: logs follow\n--- backup\n%s\n--- master\n%s\n",
							impl, ms(t1.Sub(t0)), lastLines(backup.p.Log(), 30), lastLines(master.p.Log(), 30))
					}
				}
			}
			backup.stop()
			close(wm.done)
			close(wb.done)
		}
		fmt.Printf("-- advert_int %v: Master_Down_Interval %v, Skew_Time %v (backup priority %d)\n", advert, mdi, skew, loPrio)
		fmt.Printf("   %-8s %-11s %10s %10s %10s   %s\n", "event", "backup", "median", "p95", "max", "target")
		for _, event := range []string{"SIGKILL", "SIGTERM"} {
			bound := mdi
			if event == "SIGTERM" {
				bound = skew
			}
			for _, impl := range []string{"vrrpdoctor", "keepalived"} {
				d := res[impl][event]
				target := ""
				if impl == "vrrpdoctor" {
					target = fmt.Sprintf("<= %v + 20ms: %s", bound, verdict(pct(d, 50) <= bound+20*time.Millisecond && pct(d, 95) <= bound+20*time.Millisecond))
				}
				fmt.Printf("   %-8s %-11s %10v %10v %10v   %s\n", event, impl, ms(pct(d, 50)), ms(pct(d, 95)), ms(pct(d, 100)), target)
			}
			v, k := res["vrrpdoctor"][event], res["keepalived"][event]
			fmt.Printf("   %-8s ratio vrrpdoctor/keepalived: median %.3f, p95 %.3f (target <= 1: %s)\n", event,
				ratio(pct(v, 50), pct(k, 50)), ratio(pct(v, 95), pct(k, 95)), verdict(pct(v, 50) <= pct(k, 50)))
		}
	}
}

// pair builds two fresh hosts on one link.
func pair(lab *netlab.Lab) (*netlab.Host, *netlab.Host) {
	n := len(lab.Hosts())
	m, err := lab.AddHost(fmt.Sprintf("m%d", n))
	if err != nil {
		fatal(err)
	}
	b, err := lab.AddHost(fmt.Sprintf("b%d", n))
	if err != nil {
		fatal(err)
	}
	if err := lab.Link(m, "eth0", b, "eth0"); err != nil {
		fatal(err)
	}
	for i, h := range []*netlab.Host{m, b} {
		if err := h.AddAddr("eth0", netlab.LANAddr4(i+1)); err != nil {
			fatal(err)
		}
	}
	return m, b
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(len(l)-n, 0):], "\n")
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}

func ms(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// procTree returns pid and its descendants.
func procTree(pid int) []int {
	out := []int{pid}
	entries, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		_, rest, _ := strings.Cut(string(b), ") ")
		f := strings.Fields(rest)
		if len(f) > 1 {
			pp, _ := strconv.Atoi(f[1])
			children[pp] = append(children[pp], p)
		}
	}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// statusKB reads a "VmHWM:"-style field of /proc/PID/status, in KiB.
func statusKB(pid int, field string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field) {
			f := strings.Fields(l)
			if len(f) >= 2 {
				n, _ := strconv.Atoi(f[1])
				return n
			}
		}
	}
	return 0
}

// cpuTicks returns utime+stime of pid in clock ticks.
func cpuTicks(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.Atoi(f[11])
	s, _ := strconv.Atoi(f[12])
	return u + s
}

// rss compares peak RSS with one instance.
func rss(lab *netlab.Lab) {
	fmt.Println("== peak RSS with one instance (VRRPv3, advert_int 0.1, Master), after 5 s")
	res := map[string]int{}
	for _, impl := range []string{"vrrpdoctor", "keepalived"} {
		m, _ := pair(lab)
		d := start(m, impl, conf("m", hiPrio, 1, 100*time.Millisecond, "MASTER"))
		time.Sleep(5 * time.Second)
		var pids []string
		for _, pid := range procTree(d.p.PID()) {
			res[impl] += statusKB(pid, "VmHWM:")
			pids = append(pids, strconv.Itoa(pid))
		}
		fmt.Printf("   %-11s %6d KiB (processes %s)\n", impl, res[impl], strings.Join(pids, ","))
		d.stop()
	}
	fmt.Printf("   ratio vrrpdoctor/keepalived: %.2f (target < 1: %s)\n",
		float64(res["vrrpdoctor"])/float64(max(res["keepalived"], 1)), verdict(res["vrrpdoctor"] < res["keepalived"]))
}

// cpu compares CPU time with 100 instances as Master at 0.1 s.
func cpu(lab *netlab.Lab) {
	const n = 100
	hz := 100 // USER_HZ on Linux
	fmt.Printf("== CPU with %d instances, VRRPv3 advert_int 0.1, Master, over %v\n", n, *cpuFor)
	res := map[string]float64{}
	for _, impl := range []string{"vrrpdoctor", "keepalived"} {
		m, _ := pair(lab)
		d := start(m, impl, conf("m", hiPrio, n, 100*time.Millisecond, "MASTER"))
		time.Sleep(3 * time.Second) // startup and GARP bursts
		tree := procTree(d.p.PID())
		before := 0
		for _, pid := range tree {
			before += cpuTicks(pid)
		}
		time.Sleep(*cpuFor)
		after := 0
		for _, pid := range tree {
			after += cpuTicks(pid)
		}
		res[impl] = float64(after-before) / float64(hz) / cpuFor.Seconds() * 100
		rssKB := 0
		for _, pid := range tree {
			rssKB += statusKB(pid, "VmHWM:")
		}
		fmt.Printf("   %-11s %5.2f%% of one core, peak RSS %d KiB\n", impl, res[impl], rssKB)
		d.stop()
	}
	fmt.Printf("   vrrpdoctor target < 5%%: %s; ratio vrrpdoctor/keepalived: %.2f\n", verdict(res["vrrpdoctor"] < 5), res["vrrpdoctor"]/max(res["keepalived"], 0.01))
}
