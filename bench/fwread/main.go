// Command fwread measures reading and evaluating a 10,000-rule nftables
// ruleset (issue 5 item 7) and prints the figures and ratios of one run:
//
//   - vrrpdoctor's netlink reader, fw/nftlive.Read, and the whole live read
//     `fw explain` does, fw.ReadLive (netlink, plus nft's JSON for rules the
//     netlink decoders cannot read, iptables-nft-save when iptables-nft tables
//     exist, firewalld over D-Bus when a bus exists): best and median of -runs;
//   - `nft -j list ruleset` on the same ruleset: best and median of -runs;
//   - fw/eval.Evaluate of a VRRP advert against the ruleset read live: best
//     and median of -runs, and the verdict, which must be the one drop the
//     ruleset holds for VRRP.
//
// Targets: evaluate < 20 ms, live read < 200 ms. It is a benchmark, not a
// test: it prints and fails only when the setup or the checks fail.
//
// The parent creates a network namespace vdbenchfw-<pid>-<random>, loads the
// generated ruleset into it with `nft -f`, runs itself inside it with
// `ip netns exec NS <self> -child`, and deletes the namespace at the end, on
// failure and on SIGINT/SIGTERM. Run it through bench/fwread.sh, as root.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/fw"
	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
	"github.com/vrrpdoctor/vrrpdoctor/fw/iptsave"
	"github.com/vrrpdoctor/vrrpdoctor/fw/nftlive"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

const nsPrefix = "vdbenchfw-"

var (
	child      = flag.Bool("child", false, "internal: measure inside the namespace -ns")
	nsName     = flag.String("ns", "", "internal: the namespace the child must be in")
	rules      = flag.Int("rules", 10000, "rules in the generated ruleset")
	runs       = flag.Int("runs", 5, "timed runs of each measurement")
	cpuProfile = flag.String("cpuprofile", "", "after the timed runs, profile -profileruns more reads into this file")
	profRuns   = flag.Int("profileruns", 20, "reads profiled with -cpuprofile")
	profWhat   = flag.String("profile", "nftlive", "what -cpuprofile profiles: nftlive or readlive")
	keepFile   = flag.String("save", "", "also write the generated nft script to this file")
)

func main() {
	flag.Parse()
	var err error
	if *child {
		err = runChild()
	} else {
		err = runParent()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fwread:", err)
		os.Exit(1)
	}
}

func runParent() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces); use bench/fwread.sh")
	}
	for _, prog := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(prog); err != nil {
			return fmt.Errorf("%s not found (Debian: apt-get install iproute2 nftables)", prog)
		}
	}
	script, err := genRuleset(*rules)
	if err != nil {
		return err
	}
	if *keepFile != "" {
		if err := os.WriteFile(*keepFile, []byte(script), 0o644); err != nil {
			return err
		}
	}
	tmp, err := os.MkdirTemp("", "fwread-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	file := filepath.Join(tmp, "ruleset.nft")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	suffix := make([]byte, 3)
	if _, err := rand.Read(suffix); err != nil {
		return err
	}
	ns := fmt.Sprintf("%s%d-%s", nsPrefix, os.Getpid(), hex.EncodeToString(suffix))
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add %s: %v: %s", ns, err, strings.TrimSpace(string(out)))
	}
	var once sync.Once
	cleanup := func() { // from the signal handler or the return, once
		once.Do(func() {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "fwread: ip netns del %s: %v: %s\n", ns, err, strings.TrimSpace(string(out)))
			}
		})
	}
	defer cleanup()
	// The measuring child, stopped by its PID on a signal (ip netns exec
	// execs it, so the PID is the child's own).
	var childProc atomic.Pointer[os.Process]
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		if p := childProc.Load(); p != nil {
			p.Kill()
		}
		cleanup()
		os.RemoveAll(tmp)
		fmt.Fprintf(os.Stderr, "fwread: %v: namespace %s removed\n", s, ns)
		os.Exit(1)
	}()

	start := time.Now()
	if out, err := exec.Command("ip", "netns", "exec", ns, "nft", "-f", file).CombinedOutput(); err != nil {
		return fmt.Errorf("nft -f (in %s): %v: %s", ns, err, strings.TrimSpace(string(out)))
	}
	fmt.Printf("namespace %s: %d rules loaded with nft -f in %s\n", ns, *rules, ms(time.Since(start)))

	args := []string{"netns", "exec", ns, self, "-child", "-ns", ns, "-rules", fmt.Sprint(*rules), "-runs", fmt.Sprint(*runs)}
	if *cpuProfile != "" {
		abs, err := filepath.Abs(*cpuProfile)
		if err != nil {
			return err
		}
		args = append(args, "-cpuprofile", abs, "-profileruns", fmt.Sprint(*profRuns), "-profile", *profWhat)
	}
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("measuring in %s: %v", ns, err)
	}
	childProc.Store(cmd.Process)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("measuring in %s: %v", ns, err)
	}
	return nil
}

// inNamespace checks that the process runs in the network namespace
// /run/netns/name, so the child never measures (or profiles) the host's own.
func inNamespace(name string) error {
	if !strings.HasPrefix(name, nsPrefix) || strings.ContainsRune(name, '/') {
		return fmt.Errorf("-ns %q is not a %s* namespace of this benchmark", name, nsPrefix)
	}
	var want, got syscall.Stat_t
	if err := syscall.Stat(filepath.Join("/run/netns", name), &want); err != nil {
		return err
	}
	if err := syscall.Stat("/proc/self/ns/net", &got); err != nil {
		return err
	}
	if want.Dev != got.Dev || want.Ino != got.Ino {
		return fmt.Errorf("not running in namespace %s: the child only runs under `ip netns exec %s`", name, name)
	}
	return nil
}

// series is the timings of one measurement.
type series []time.Duration

func (s series) best() time.Duration { return slices.Min(s) }

func (s series) median() time.Duration {
	c := slices.Clone(s)
	slices.Sort(c)
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}

func runChild() error {
	if err := inNamespace(*nsName); err != nil {
		return err
	}
	if *runs < 1 {
		return errors.New("-runs must be at least 1")
	}
	ctx := context.Background()
	advert := eval.VRRPAdvert(eval.In, advertIface, netip.MustParseAddr(advertSrc), netip.Addr{})
	load0 := loadavg()

	// One untimed round first (page cache, binaries, the kernel's caches),
	// which also checks what is read.
	rs, err := nftlive.Read(nftlive.Options{})
	if err != nil {
		return err
	}
	if n, inc := countRules(rs); n != *rules || inc != 0 {
		return fmt.Errorf("nftlive.Read found %d rules (%d incomplete), want %d complete", n, inc, *rules)
	}
	live, err := fw.ReadLive(ctx)
	if err != nil {
		return err
	}
	if n, inc := countRules(live.Ruleset); n != *rules || inc != 0 {
		return fmt.Errorf("fw.ReadLive found %d rules (%d incomplete), want %d complete", n, inc, *rules)
	}
	js, err := exec.Command("nft", "-j", "list", "ruleset").Output()
	if err != nil {
		return fmt.Errorf("nft -j list ruleset: %v", err)
	}
	fromJSON, err := fw.Parse("nft -j list ruleset", js, iptsave.Options{})
	if err != nil {
		return err
	}
	if n, inc := countRules(fromJSON); n != *rules || inc != 0 {
		return fmt.Errorf("nft's JSON parsed to %d rules (%d incomplete), want %d complete", n, inc, *rules)
	}
	// The advert must walk the whole zone and meet the one VRRP drop. Both
	// readings are checked; the evaluation is timed on one that gets the
	// verdict right, so that it times the full walk.
	var evalOn *ruleset.Ruleset
	var evalName string
	var wrong []string
	for _, r := range []struct {
		name string
		rs   *ruleset.Ruleset
	}{{"live (nftlive.Read)", rs}, {"nft -j (fw.Parse)", fromJSON}} {
		res, err := eval.Evaluate(r.rs, advert)
		if err != nil {
			return err
		}
		fmt.Printf("advert %s -> 224.0.0.18 on %s, ruleset read %s: %s by %v (%d steps on the path)\n",
			advertSrc, advertIface, r.name, res.Verdict, res.Rule, len(res.Path))
		if res.Verdict != eval.Drop || res.Rule == nil || !strings.Contains(res.Rule.Text, dropComment) {
			wrong = append(wrong, fmt.Sprintf("read %s: got %s by %v, want drop by the rule commented %q", r.name, res.Verdict, res.Rule, dropComment))
			continue
		}
		if evalOn == nil {
			evalOn, evalName = r.rs, r.name
		}
	}
	for _, w := range wrong {
		fmt.Printf("WRONG VERDICT, %s\n", w)
	}
	if evalOn == nil {
		return errors.New("no reading of the ruleset gives the right verdict: evaluation not timed")
	}

	var tNftlive, tReadLive, tNft, tParse, tEval series
	for i := 0; i < *runs; i++ { // interleaved, so load drifts hit all alike
		t := time.Now()
		if _, err := nftlive.Read(nftlive.Options{}); err != nil {
			return err
		}
		tNftlive = append(tNftlive, time.Since(t))

		t = time.Now()
		if _, err := fw.ReadLive(ctx); err != nil {
			return err
		}
		tReadLive = append(tReadLive, time.Since(t))

		t = time.Now()
		out, err := exec.Command("nft", "-j", "list", "ruleset").Output()
		if err != nil {
			return fmt.Errorf("nft -j list ruleset: %v", err)
		}
		tNft = append(tNft, time.Since(t))

		t = time.Now()
		if _, err := fw.Parse("nft -j list ruleset", out, iptsave.Options{}); err != nil {
			return err
		}
		tParse = append(tParse, time.Since(t))

		t = time.Now()
		if _, err := eval.Evaluate(evalOn, advert); err != nil {
			return err
		}
		tEval = append(tEval, time.Since(t))
	}
	load1 := loadavg()

	fmt.Printf("ruleset: %d rules, %d chains, %d sets/maps in %d table(s); nft -j output %d KiB\n",
		*rules, countChains(rs), countSets(rs), len(rs.Tables), len(js)/1024)
	if len(live.Warnings) > 0 {
		fmt.Printf("fw.ReadLive warnings: %s\n", strings.Join(live.Warnings, "; "))
	}
	fmt.Printf("fw.ReadLive sources: %s\n\n", strings.Join(live.Ruleset.Sources, ", "))
	fmt.Printf("%-42s %10s %10s\n", fmt.Sprintf("measurement (%d runs)", *runs), "best", "median")
	row := func(name string, s series) {
		fmt.Printf("%-42s %10s %10s\n", name, ms(s.best()), ms(s.median()))
	}
	row("vrrpdoctor read, netlink (nftlive.Read)", tNftlive)
	row("vrrpdoctor live read (fw.ReadLive)", tReadLive)
	row("nft -j list ruleset", tNft)
	row("vrrpdoctor parse of nft -j (fw.Parse)", tParse)
	row("evaluate, ruleset read "+evalName, tEval)
	fmt.Println()
	ratio := func(name string, a, b series) {
		fmt.Printf("%-42s %9.2fx %9.2fx\n", name, float64(a.best())/float64(b.best()), float64(a.median())/float64(b.median()))
	}
	ratio("ratio nftlive.Read / nft -j", tNftlive, tNft)
	ratio("ratio fw.ReadLive / nft -j", tReadLive, tNft)
	fmt.Println()
	target := func(name string, s series, limit time.Duration) {
		verdict := "met"
		if s.median() >= limit {
			verdict = "NOT met"
		}
		fmt.Printf("target %-35s < %s: %s (median %s, best %s)\n", name, ms(limit), verdict, ms(s.median()), ms(s.best()))
	}
	target("evaluate", tEval, 20*time.Millisecond)
	target("live read (nftlive.Read)", tNftlive, 200*time.Millisecond)
	target("live read (fw.ReadLive)", tReadLive, 200*time.Millisecond)
	fmt.Printf("\nload average (1/5/15 min) before: %s, after: %s\n", load0, load1)

	if *cpuProfile != "" {
		if err := profile(ctx); err != nil {
			return err
		}
	}
	if len(wrong) > 0 {
		return fmt.Errorf("%d reading(s) of the ruleset give a wrong verdict (above)", len(wrong))
	}
	return nil
}

// profile writes a CPU profile of -profileruns reads.
func profile(ctx context.Context) error {
	f, err := os.Create(*cpuProfile)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	for i := 0; i < *profRuns; i++ {
		switch *profWhat {
		case "nftlive":
			_, err = nftlive.Read(nftlive.Options{})
		case "readlive":
			_, err = fw.ReadLive(ctx)
		default:
			err = fmt.Errorf("-profile %q: want nftlive or readlive", *profWhat)
		}
		if err != nil {
			pprof.StopCPUProfile()
			return err
		}
	}
	pprof.StopCPUProfile()
	fmt.Printf("CPU profile of %d %s reads: %s\n", *profRuns, *profWhat, *cpuProfile)
	return nil
}

func countRules(rs *ruleset.Ruleset) (n, incomplete int) {
	for _, t := range rs.Tables {
		for _, c := range t.Chains {
			for _, r := range c.Rules {
				n++
				if r.Incomplete != "" {
					incomplete++
				}
			}
		}
	}
	return n, incomplete
}

func countChains(rs *ruleset.Ruleset) (n int) {
	for _, t := range rs.Tables {
		n += len(t.Chains)
	}
	return n
}

func countSets(rs *ruleset.Ruleset) (n int) {
	for _, t := range rs.Tables {
		n += len(t.Sets)
	}
	return n
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }
