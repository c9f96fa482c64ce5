// Command takeover measures `vrrpdoctor run` against keepalived in a
// network-namespace lab (issue 3 item 6) and prints the figures and ratios:
//
//   - take-over latency of the backup, from SIGKILL of the Master's process
//     group (the backup waits Master_Down_Interval) and from SIGTERM of the
//     Master (priority 0 advert: the backup waits Skew_Time), to the VIP
//     appearing on the backup (netlink address event), for a vrrpdoctor
//     backup and a keepalived backup against the same keepalived Master,
//     VRRPv2 with advert_int 1 and VRRPv3 with advert_int 0.1; median and
//     p95 of N trials. For SIGTERM it also splits the latency at the
//     priority-0 advert's arrival in the backup's namespace (a raw socket
//     of the benchmark's own): the Master's part (SIGTERM to advert) and
//     the backup's part (advert to VIP), whose excess over Skew_Time is the
//     backup's own delay;
//   - peak RSS of `vrrpdoctor run` with one instance against keepalived's
//     processes (parent and VRRP child) for the same configuration;
//   - CPU time of each with 100 instances at 0.1 s adverts as Master.
//
// It is a benchmark, not a test: it prints and never fails on a target.
// Run it through bench/takeover.sh, as root.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/vrrpdoctor/vrrpdoctor/bench/internal/procfs"
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
	evOnly   = flag.String("event", "", "measure only this event: SIGKILL or SIGTERM")
	load     = flag.Int("load", 0, "busy-loop processes competing for the CPU during the take-over trials")
	spin     = flag.Bool("spin", false, "internal: be a busy loop")
	runArgs  = flag.String("run-args", "", "more arguments for `vrrpdoctor run`, space-separated (e.g. --no-diagnose)")
	vipCIDR  = "198.51.100.100/24"
	vipAddr  = netip.MustParseAddr("198.51.100.100")
	hiPrio   = 150
	loPrio   = 100
	settle   = 200 * time.Millisecond
	failures int
)

// cases are the advert intervals measured, each with its VRRP version.
var cases = []struct {
	version int
	advert  time.Duration
}{{2, time.Second}, {3, 100 * time.Millisecond}}

func main() {
	flag.Parse()
	if *spin {
		for {
		}
	}
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
	var spinners []*exec.Cmd
	stopSpinners := func() {
		for _, c := range spinners {
			c.Process.Kill()
			c.Wait()
		}
		spinners = nil
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		stopSpinners()
		lab.Close()
		os.Exit(130)
	}()
	defer lab.Close()

	if *only == "" || *only == "takeover" {
		self, err := os.Executable()
		if err != nil {
			fatal(err)
		}
		for range *load {
			c := exec.Command(self, "-spin")
			if err := c.Start(); err != nil {
				fatal(err)
			}
			spinners = append(spinners, c)
		}
		takeover(lab)
		stopSpinners()
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

// conf renders a keepalived.conf of n instances.
func conf(id string, prio, n, version int, advert time.Duration, state string) string {
	var inst []netlab.VRRPInstance
	for i := 1; i <= n; i++ {
		vip := vipCIDR
		if n > 1 {
			vip = fmt.Sprintf("203.0.113.%d/24", i)
		}
		inst = append(inst, netlab.VRRPInstance{
			Interface: "eth0", VRID: i, Version: version, Priority: prio, AdvertInt: advert,
			State: state, VIPs: []string{vip},
		})
	}
	c, err := netlab.KeepalivedConfig{RouterID: id, Instances: inst}.Render()
	if err != nil {
		fatal(err)
	}
	return c
}

// daemon is a running VRRP daemon in a lab host.
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
	args := append([]string{"run", "-c", path, "--log-level", "debug", "--log-format", "json"}, strings.Fields(*runArgs)...)
	p, err := h.Start(*bin, args...)
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
	return firstAfter(&w.mu, &w.added, t0, timeout)
}

func firstAfter(mu *sync.Mutex, list *[]time.Time, t0 time.Time, timeout time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(timeout)
	for {
		mu.Lock()
		for _, t := range *list {
			if t.After(t0) {
				mu.Unlock()
				return t, true
			}
		}
		mu.Unlock()
		if time.Now().After(deadline) {
			return time.Time{}, false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (w *watcher) holds() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.held
}

// resignWatcher timestamps the priority-0 adverts arriving in a host's
// namespace, on a raw socket of its own (every raw socket for protocol
// 112 gets a copy; the group is joined by the daemon under test).
type resignWatcher struct {
	mu     sync.Mutex
	seen   []time.Time
	master []time.Time // the Master's adverts (priority hiPrio)
	conn   net.PacketConn
}

func watchResign(h *netlab.Host) *resignWatcher {
	w := &resignWatcher{}
	if err := h.Do(func() error {
		var err error
		w.conn, err = net.ListenPacket("ip4:112", "0.0.0.0")
		return err
	}); err != nil {
		fatal(err)
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := w.conn.ReadFrom(buf)
			if err != nil {
				return
			}
			now := time.Now()
			w.mu.Lock()
			switch {
			case n < 4:
			case buf[2] == 0: // VRRP priority 0
				w.seen = append(w.seen, now)
			case int(buf[2]) == hiPrio:
				w.master = append(w.master, now)
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *resignWatcher) after(t0 time.Time) (time.Time, bool) {
	return firstAfter(&w.mu, &w.seen, t0, 0)
}

// lastMaster returns the arrival of the Master's last advert before t.
func (w *resignWatcher) lastMaster(t time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := len(w.master) - 1; i >= 0; i-- {
		if w.master[i].Before(t) {
			return w.master[i], true
		}
	}
	return time.Time{}, false
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

// logTime returns the time of the first JSON log line after t0 whose msg
// starts with msg and whose attributes include want.
func logTime(log, msg string, t0 time.Time, want map[string]string) (time.Time, bool) {
	for _, line := range strings.Split(log, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if m, _ := rec["msg"].(string); !strings.HasPrefix(m, msg) {
			continue
		}
		ok := true
		for k, v := range want {
			if fmt.Sprint(rec[k]) != v {
				ok = false
			}
		}
		ts, _ := rec["time"].(string)
		t, err := time.Parse(time.RFC3339Nano, ts)
		if ok && err == nil && t.After(t0) {
			return t, true
		}
	}
	return time.Time{}, false
}

// sample is one take-over trial.
type sample struct {
	total time.Duration // event to VIP on the backup
	// SIGTERM only: event to the priority-0 advert's arrival, and its
	// arrival to the VIP (valid when arrived is set).
	master, backup time.Duration
	arrived        bool
	// vrrpdoctor SIGTERM only: arrival to the daemon's read of the
	// advert, and Skew_Time's end to the state change being logged.
	read, late time.Duration
	traced     bool
}

// takeover measures the backup's take-over latencies.
func takeover(lab *netlab.Lab) {
	fmt.Printf("== take-over latency: keepalived Master (priority %d) vs backup (priority %d), %d trials", hiPrio, loPrio, *trials)
	if *runArgs != "" {
		fmt.Printf(", vrrpdoctor run %s", *runArgs)
	}
	if *load > 0 {
		fmt.Printf(", %d busy-loop processes competing for the CPU", *load)
	}
	fmt.Println()
	events := []string{"SIGKILL", "SIGTERM"}
	if *evOnly != "" {
		events = []string{*evOnly}
	}
	for _, c := range cases {
		advert := c.advert
		if *advOnly != 0 && advert != *advOnly {
			continue
		}
		mdi := router.MasterDownInterval(uint8(c.version), uint8(loPrio), advert)
		skew := router.SkewTime(uint8(c.version), uint8(loPrio), advert)
		res := map[string]map[string][]sample{}
		type rig struct {
			m      *netlab.Host
			wm, wb *watcher
			rw     *resignWatcher
			backup daemon
		}
		rigs := map[string]*rig{}
		var impls []string
		for _, impl := range []string{"vrrpdoctor", "keepalived"} {
			res[impl] = map[string][]sample{}
			if *implOnly != "" && impl != *implOnly {
				continue
			}
			m, b := pair(lab)
			r := &rig{m: m, wm: watch(m), wb: watch(b), rw: watchResign(b)}
			r.backup = start(b, impl, conf("b", loPrio, 1, c.version, advert, "BACKUP"))
			rigs[impl] = r
			impls = append(impls, impl)
		}
		masterConf := conf("m", hiPrio, 1, c.version, advert, "MASTER")
		// The two backups' trials alternate, so that both meet the same
		// load from the rest of the machine.
		for _, event := range events {
			for i := 0; i < *trials; i++ {
				for _, impl := range impls {
					r := rigs[impl]
					m, wm, wb, rw, backup := r.m, r.wm, r.wb, r.rw, r.backup
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
					s := sample{total: t1.Sub(t0)}
					if ta, ok := rw.lastMaster(t1); ok && event == "SIGKILL" {
						// From the dead Master's last advert: the
						// backup's effective Master_Down_Interval.
						s.backup, s.arrived = t1.Sub(ta), true
					}
					if event == "SIGTERM" {
						if ta, ok := rw.after(t0); ok && !ta.After(t1) {
							s.master, s.backup, s.arrived = ta.Sub(t0), t1.Sub(ta), true
							if impl == "vrrpdoctor" {
								log := backup.p.Log()
								tr, ok1 := logTime(log, "master resigned", t0, nil)
								tm, ok2 := logTime(log, "state change", t0, map[string]string{"to": "MASTER"})
								if ok1 && ok2 {
									s.read, s.late, s.traced = tr.Sub(ta), tm.Sub(ta)-skew, true
								}
							}
						}
					}
					res[impl][event] = append(res[impl][event], s)
					if event == "SIGTERM" && s.arrived && s.backup > skew+20*time.Millisecond && !*verbose {
						// The bench's own watchers are processes under the
						// same load: say what the daemon itself logged.
						fmt.Printf("   outlier: advert_int %v %s backup %s trial %d: VIP seen Skew_Time + %v after the advert's arrival", advert, impl, event, i+1, ms(s.backup-skew))
						if s.traced {
							fmt.Printf("; the daemon logged its state change (after adding the VIP) at Skew_Time + %v", ms(s.late))
						}
						fmt.Println()
					}
					if *verbose {
						fmt.Printf("   advert_int %v %s backup %s trial %d: %v", advert, impl, event, i+1, ms(s.total))
						if s.arrived && event == "SIGKILL" {
							fmt.Printf(" (%v after the Master's last advert)", ms(s.backup))
						} else if s.arrived {
							fmt.Printf(" (master %v, backup %v = Skew_Time + %v", ms(s.master), ms(s.backup), ms(s.backup-skew))
							if s.traced {
								fmt.Printf("; read %v after arrival, state change logged Skew_Time + %v after arrival", ms(s.read), ms(s.late))
							}
							fmt.Print(")")
						}
						fmt.Println()
					}
					if event == "SIGKILL" && s.total < mdi-advert-50*time.Millisecond {
						fmt.Printf("   %s backup took over %v after SIGKILL, before Master_Down_Interval - advert_int: logs follow\n--- backup\n%s\n--- master\n%s\n",
							impl, ms(s.total), lastLines(backup.p.Log(), 30), lastLines(master.p.Log(), 30))
					}
				}
			}
		}
		for _, r := range rigs {
			r.backup.stop()
			close(r.wm.done)
			close(r.wb.done)
			r.rw.conn.Close()
		}
		fmt.Printf("-- VRRPv%d advert_int %v: Master_Down_Interval %v, Skew_Time %v (backup priority %d)\n", c.version, advert, mdi, skew, loPrio)
		fmt.Printf("   %-8s %-11s %10s %10s %10s   %s\n", "event", "backup", "median", "p95", "max", "target")
		for _, event := range events {
			bound := mdi
			if event == "SIGTERM" {
				bound = skew
			}
			for _, impl := range []string{"vrrpdoctor", "keepalived"} {
				d := totals(res[impl][event], func(s sample) (time.Duration, bool) { return s.total, true })
				target := ""
				if impl == "vrrpdoctor" && event == "SIGKILL" {
					target = fmt.Sprintf("p95 <= %v + 20ms: %s", bound, verdict(len(d) > 0 && pct(d, 95) <= bound+20*time.Millisecond))
				} else if impl == "vrrpdoctor" {
					// Issue 3: within Skew_Time + 20 ms of the priority-0
					// advert, i.e. from its arrival (the split below).
					b := totals(res[impl][event], func(s sample) (time.Duration, bool) { return s.backup, s.arrived })
					target = fmt.Sprintf("advert to VIP p95 %v <= %v + 20ms: %s", ms(pct(b, 95)), bound, verdict(len(b) > 0 && pct(b, 95) <= bound+20*time.Millisecond))
				}
				fmt.Printf("   %-8s %-11s %10v %10v %10v   %s\n", event, impl, ms(pct(d, 50)), ms(pct(d, 95)), ms(pct(d, 100)), target)
			}
			v := totals(res["vrrpdoctor"][event], func(s sample) (time.Duration, bool) { return s.total, true })
			k := totals(res["keepalived"][event], func(s sample) (time.Duration, bool) { return s.total, true })
			fmt.Printf("   %-8s ratio vrrpdoctor/keepalived: median %.3f, p95 %.3f (target <= 1: %s)\n", event,
				ratio(pct(v, 50), pct(k, 50)), ratio(pct(v, 95), pct(k, 95)), verdict(len(v) > 0 && pct(v, 50) <= pct(k, 50)))
			if event != "SIGTERM" {
				for _, impl := range []string{"vrrpdoctor", "keepalived"} {
					bp := totals(res[impl][event], func(s sample) (time.Duration, bool) { return s.backup, s.arrived })
					fmt.Printf("   %-8s %-11s from the Master's last advert to the VIP: median %v p95 %v min %v max %v (Master_Down_Interval %v)\n",
						event, impl, ms(pct(bp, 50)), ms(pct(bp, 95)), ms(pct(bp, 1)), ms(pct(bp, 100)), mdi)
				}
				continue
			}
			for _, impl := range []string{"vrrpdoctor", "keepalived"} {
				mp := totals(res[impl][event], func(s sample) (time.Duration, bool) { return s.master, s.arrived })
				bp := totals(res[impl][event], func(s sample) (time.Duration, bool) { return s.backup - skew, s.arrived })
				fmt.Printf("   %-8s %-11s split at the advert's arrival: Master part median %v p95 %v; backup beyond Skew_Time median %v p95 %v max %v (%d of %d trials)\n",
					event, impl, ms(pct(mp, 50)), ms(pct(mp, 95)), ms(pct(bp, 50)), ms(pct(bp, 95)), ms(pct(bp, 100)), len(bp), len(res[impl][event]))
			}
			rd := totals(res["vrrpdoctor"][event], func(s sample) (time.Duration, bool) { return s.read, s.traced })
			lt := totals(res["vrrpdoctor"][event], func(s sample) (time.Duration, bool) { return s.late, s.traced })
			if len(rd) > 0 {
				fmt.Printf("   %-8s vrrpdoctor  socket read after arrival median %v p95 %v; state change logged (VIP added) Skew_Time + median %v p95 %v after arrival\n",
					event, ms(pct(rd, 50)), ms(pct(rd, 95)), ms(pct(lt, 50)), ms(pct(lt, 95)))
			}
		}
	}
}

// totals picks one duration from every sample that has it.
func totals(ss []sample, pick func(sample) (time.Duration, bool)) []time.Duration {
	var out []time.Duration
	for _, s := range ss {
		if d, ok := pick(s); ok {
			out = append(out, d)
		}
	}
	return out
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

// treeCPU sums the time on CPU of pids and all their threads (schedstat,
// nanoseconds, where utime+stime count 10 ms ticks: a keepalived backup
// uses less than a tick in a minute).
func treeCPU(pids []int) time.Duration {
	var sum time.Duration
	for _, pid := range pids {
		sum += time.Duration(procfs.RunNs(pid))
	}
	return sum
}

// rss compares peak RSS with one instance.
func rss(lab *netlab.Lab) {
	fmt.Println("== peak RSS with one instance (VRRPv3, advert_int 0.1, Master), after 5 s")
	res := map[string]int{}
	for _, impl := range []string{"vrrpdoctor", "keepalived"} {
		m, _ := pair(lab)
		d := start(m, impl, conf("m", hiPrio, 1, 3, 100*time.Millisecond, "MASTER"))
		time.Sleep(5 * time.Second)
		var pids []string
		for _, pid := range procfs.Tree(d.p.PID()) {
			res[impl] += procfs.StatusKB(pid, "VmHWM:")
			pids = append(pids, strconv.Itoa(pid))
		}
		fmt.Printf("   %-11s %6d KiB (processes %s)\n", impl, res[impl], strings.Join(pids, ","))
		d.stop()
	}
	fmt.Printf("   ratio vrrpdoctor/keepalived: %.2f (target < 1: %s)\n",
		float64(res["vrrpdoctor"])/float64(max(res["keepalived"], 1)), verdict(res["vrrpdoctor"] < res["keepalived"]))
}

// cpu compares CPU time with 100 instances at 0.1 s: the Masters on one
// host and their backups on the other, each run by vrrpdoctor and then by
// keepalived (the peer is always keepalived).
func cpu(lab *netlab.Lab) {
	const n = 100
	fmt.Printf("== CPU with %d instances, VRRPv3 advert_int 0.1, over %v (time on CPU of every thread, /proc/*/task/*/schedstat); vrrpdoctor run %s\n", n, *cpuFor, *runArgs)
	res := map[string]float64{}
	for _, role := range []string{"MASTER", "BACKUP"} {
		for _, impl := range []string{"vrrpdoctor", "keepalived"} {
			m, b := pair(lab)
			prio, peerPrio := hiPrio, loPrio
			if role == "BACKUP" {
				prio, peerPrio = loPrio, hiPrio
			}
			peerState := "BACKUP"
			if role == "BACKUP" {
				peerState = "MASTER"
			}
			peer := start(b, "keepalived", conf("b", peerPrio, n, 3, 100*time.Millisecond, peerState))
			d := start(m, impl, conf("m", prio, n, 3, 100*time.Millisecond, role))
			time.Sleep(3 * time.Second) // startup, elections and GARP bursts
			tree := procfs.Tree(d.p.PID())
			before := treeCPU(tree)
			t0 := time.Now()
			time.Sleep(*cpuFor)
			used := treeCPU(tree) - before
			key := role + " " + impl
			res[key] = float64(used) / float64(time.Since(t0)) * 100
			rssKB := 0
			for _, pid := range tree {
				rssKB += procfs.StatusKB(pid, "VmHWM:")
			}
			fmt.Printf("   %-7s %-11s %5.2f%% of one core, peak RSS %d KiB\n", role, impl, res[key], rssKB)
			d.stop()
			peer.stop()
		}
		v, k := res[role+" vrrpdoctor"], res[role+" keepalived"]
		fmt.Printf("   %-7s vrrpdoctor target < 5%%: %s; ratio vrrpdoctor/keepalived: %.2f\n", role, verdict(v < 5), v/max(k, 0.01))
	}
}
