// Command rss compares the peak resident memory of `vrrpdoctor run` with
// keepalived's on the same keepalived.conf (issue 3 item 6, issue 8 item
// 7), and measures what single imports cost a Go program at init. Use it
// through bench/rss.sh.
//
// Daemons: in a lab of network namespaces (two hosts on a veth link, the
// peer idle), each daemon runs the same configuration of N VRRPv2
// instances (advert_int 1, priority 100, one VIP each) until it holds every
// VIP, then for -settle more (keepalived repeats its gratuitous ARPs 5 s
// after becoming master). Its peak RSS is VmHWM summed over its process
// tree: keepalived's parent and VRRP child, vrrpdoctor's one process (run
// as it ships, with its self-diagnosis, and with --no-diagnose).
//
// Probes: every executable in -probes runs -runs times and prints its own
// VmHWM (package hwm); the median is reported.
package main

import (
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

	"github.com/vrrpdoctor/vrrpdoctor/bench/internal/procfs"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
)

var (
	bin       = flag.String("bin", "", "vrrpdoctor binary (required for the daemon comparison)")
	instances = flag.String("instances", "1,100", "comma-separated instance counts to compare")
	settle    = flag.Duration("settle", 30*time.Second, "time to keep running after every VIP is held")
	probes    = flag.String("probes", "", "directory of probe programs to measure (optional)")
	runs      = flag.Int("runs", 5, "runs per probe")
)

func main() {
	flag.Parse()
	if *probes != "" {
		if err := measureProbes(*probes); err != nil {
			fatal(err)
		}
	}
	if *bin == "" {
		return
	}
	abs, err := filepath.Abs(*bin)
	if err != nil {
		fatal(err)
	}
	*bin = abs
	var counts []int
	for f := range strings.SplitSeq(*instances, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 200 {
			fatal(fmt.Errorf("-instances: %q is not a count from 1 to 200", f))
		}
		counts = append(counts, n)
	}
	lab, err := netlab.New(netlab.Options{Prefix: "vdrss"})
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
	err = compare(lab, counts)
	if cerr := lab.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "rss:", err)
	os.Exit(1)
}

// measureProbes prints the median peak RSS of every program in dir and its
// difference from the probe named "none".
func measureProbes(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	res := map[string]int{}
	var names []string
	for _, e := range entries {
		var kb []int
		for range *runs {
			path := filepath.Join(dir, e.Name())
			out, err := exec.Command(path).CombinedOutput()
			if err != nil {
				return fmt.Errorf("probe %s: %v\n%s", e.Name(), err, out)
			}
			rest, ok := strings.CutPrefix(string(out), "VmHWM:")
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if !ok || err != nil {
				return fmt.Errorf("probe %s printed %q, want its VmHWM line", e.Name(), out)
			}
			kb = append(kb, n)
		}
		slices.Sort(kb)
		res[e.Name()] = kb[len(kb)/2]
		names = append(names, e.Name())
	}
	fmt.Printf("== peak RSS (own VmHWM at exit) of a Go program that only imports (median of %d runs)\n", *runs)
	for _, n := range names {
		fmt.Printf("   %-12s %6d KiB  %+6d KiB against none\n", n, res[n], res[n]-res["none"])
	}
	return nil
}

// compare runs both daemons for every instance count and prints their
// peak RSS and the ratio.
func compare(lab *netlab.Lab, counts []int) error {
	fmt.Printf("== peak RSS (VmHWM summed over the process tree) holding every VIP, then %v more\n", *settle)
	for _, n := range counts {
		conf, last, err := config(n)
		if err != nil {
			return err
		}
		res := map[string]int{}
		impls := []string{"vrrpdoctor", "vrrpdoctor --no-diagnose", "keepalived"}
		for _, impl := range impls {
			kb, pids, err := peak(lab, impl, conf, last)
			if err != nil {
				return fmt.Errorf("%s with %d instances: %w", impl, n, err)
			}
			res[impl] = kb
			fmt.Printf("   %3d instance(s) %-24s %7d KiB = %5.1f MB (processes %s)\n", n, impl, kb, float64(kb)/1024, pids)
		}
		for _, impl := range impls[:2] {
			ratio := float64(res[impl]) / float64(max(res["keepalived"], 1))
			verdict := "met"
			if ratio >= 1 {
				verdict = "NOT MET"
			}
			fmt.Printf("   %3d instance(s) ratio %s/keepalived %.2f (target < 1: %s)\n", n, impl, ratio, verdict)
		}
	}
	return nil
}

// config renders n VRRPv2 instances on eth0 (VRIDs 1..n, VIPs
// 203.0.113.1..n) and returns the last VIP.
func config(n int) (string, netip.Addr, error) {
	var inst []netlab.VRRPInstance
	for i := 1; i <= n; i++ {
		inst = append(inst, netlab.VRRPInstance{Interface: "eth0", VRID: i, Version: 2, Priority: 100,
			AdvertInt: time.Second, VIPs: []string{fmt.Sprintf("203.0.113.%d/24", i)}})
	}
	conf, err := netlab.KeepalivedConfig{RouterID: "rss", Instances: inst}.Render()
	return conf, netip.AddrFrom4([4]byte{203, 0, 113, byte(n)}), err
}

// peak starts impl with conf on a new host, waits until it holds last and
// for -settle more, and returns the summed VmHWM of its processes.
func peak(lab *netlab.Lab, impl, conf string, last netip.Addr) (int, string, error) {
	k := len(lab.Hosts())
	h, err := lab.AddHost(fmt.Sprintf("d%d", k))
	if err != nil {
		return 0, "", err
	}
	peer, err := lab.AddHost(fmt.Sprintf("p%d", k))
	if err != nil {
		return 0, "", err
	}
	if err := lab.Link(h, "eth0", peer, "eth0"); err != nil {
		return 0, "", err
	}
	if err := h.AddAddr("eth0", netlab.LANAddr4(1)); err != nil {
		return 0, "", err
	}
	var p *netlab.Process
	if impl == "keepalived" {
		kp, err := h.StartKeepalived(conf)
		if err != nil {
			return 0, "", err
		}
		p = kp.Process
	} else {
		path := lab.Path(h.Name() + ".conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			return 0, "", err
		}
		args := append([]string{"run", "-c", path}, strings.Fields(strings.TrimPrefix(impl, "vrrpdoctor"))...)
		if p, err = h.Start(*bin, args...); err != nil {
			return 0, "", err
		}
	}
	defer p.Stop(10 * time.Second)
	deadline := time.Now().Add(60 * time.Second)
	for {
		held, err := h.HasAddr(last)
		if err != nil {
			return 0, "", err
		}
		if held {
			break
		}
		if p.Exited() || time.Now().After(deadline) {
			return 0, "", fmt.Errorf("never held %v (exited: %v); log:\n%s", last, p.Exited(), p.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(*settle)
	if p.Exited() {
		return 0, "", fmt.Errorf("exited during the measurement; log:\n%s", p.Log())
	}
	kb := 0
	var pids []string
	for _, pid := range procfs.Tree(p.PID()) {
		kb += procfs.StatusKB(pid, "VmHWM:")
		pids = append(pids, strconv.Itoa(pid))
	}
	return kb, strings.Join(pids, ","), nil
}
