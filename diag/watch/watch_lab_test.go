package watch

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/capture"
	"github.com/vrrpdoctor/vrrpdoctor/diag"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/keepalived"
)

// Lab tests: a keepalived pair (a priority 150, b 100, VRID 51) and a
// watcher in b's network namespace in Monitor mode, as `vrrpdoctor run
// --monitor` runs beside keepalived. The watcher runs in a child process
// (this test binary again, TestWatchHelperProcess) started in b's namespace
// with ip netns exec, as the daemon would run there: the firewall reader
// (fw.ReadLive) reads the namespace of the whole process, not of one
// thread.

var labVIP = netip.MustParseAddr("198.51.100.100")

type labPair struct {
	lab    *netlab.Lab
	a, b   *netlab.Host
	ka, kb *netlab.Keepalived
}

func newLabPair(t *testing.T, advertInt time.Duration, programs ...string) *labPair {
	t.Helper()
	return newLabPairWith(t, func(i int) netlab.VRRPInstance {
		return netlab.VRRPInstance{Interface: "eth0", VRID: 51, Version: 3, Priority: 150 - 50*i, AdvertInt: advertInt, VIPs: []string{labVIP.String() + "/24"}}
	}, programs...)
}

// newLabPairWith starts keepalived on a (i 0) and b (i 1) with the
// instance inst(i) and waits until a is master and b backup.
func newLabPairWith(t *testing.T, inst func(i int) netlab.VRRPInstance, programs ...string) *labPair {
	t.Helper()
	lab := netlabtest.New(t, append([]string{"keepalived"}, programs...)...)
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	p := &labPair{lab: lab, a: a, b: b}
	for i, h := range []*netlab.Host{a, b} {
		k, err := h.StartKeepalivedConfig(netlab.KeepalivedConfig{RouterID: h.Name(), Instances: []netlab.VRRPInstance{inst(i)}})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			p.ka = k
		} else {
			p.kb = k
		}
	}
	name := fmt.Sprintf("VI_%d", inst(1).VRID)
	if err := p.kb.WaitState(20*time.Second, name, "BACKUP"); err != nil {
		t.Fatal(err)
	}
	if err := p.ka.WaitState(20*time.Second, name, "MASTER"); err != nil {
		t.Fatal(err)
	}
	return p
}

// The child's output: one JSON object a line.
type helperLine struct {
	Kind string `json:"kind"` // "change" or "state"
	// change
	Time    time.Time    `json:"time,omitzero"`
	Active  bool         `json:"active,omitempty"`
	Finding diag.Finding `json:"finding,omitzero"`
	// state
	Window   time.Duration  `json:"window,omitempty"`
	Current  time.Duration  `json:"current,omitempty"`
	Ready    bool           `json:"ready,omitempty"`
	Findings []diag.Finding `json:"findings,omitempty"`
	Flows    []Flow         `json:"flows,omitempty"`
}

// TestWatchHelperProcess is the watcher run by the lab tests in a lab
// host's namespace; it does nothing in a normal test run.
func TestWatchHelperProcess(t *testing.T) {
	path := os.Getenv("VRRPDOCTOR_WATCH_HELPER")
	if path == "" {
		t.Skip("helper process of the lab tests")
	}
	cfg, err := keepalived.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	enc := json.NewEncoder(os.Stdout)
	emit := func(l helperLine) {
		mu.Lock()
		defer mu.Unlock()
		if err := enc.Encode(l); err != nil {
			panic(err)
		}
	}
	// VRRPDOCTOR_WATCH_QUIET: as a daemon runs, for measuring its cost —
	// no debug log, the state told every 2 s.
	level, every := slog.LevelDebug, 200*time.Millisecond
	if os.Getenv("VRRPDOCTOR_WATCH_QUIET") == "1" {
		level, every = slog.LevelInfo, 2*time.Second
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	w, err := New(Config{Config: cfg, ConfigPath: path, Monitor: os.Getenv("VRRPDOCTOR_WATCH_MONITOR") == "1", Logger: log,
		OnChange: func(c Change) { emit(helperLine{Kind: "change", Time: c.Time, Active: c.Active, Finding: c.Finding}) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// VRRPDOCTOR_WATCH_CPUPROFILE=FILE: where the watcher's time goes.
	if path := os.Getenv("VRRPDOCTOR_WATCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	go func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				emit(helperLine{Kind: "state", Window: w.Window(), Current: w.CurrentWindow(), Ready: w.Ready(), Findings: w.Findings(), Flows: w.Flows()})
			}
		}
	}()
	// VRRPDOCTOR_WATCH_SPEAK=IFACE:VRID: this process is the VRRP speaker,
	// as `vrrpdoctor run` is: it joins the VRRP group with a receiving
	// socket, sends adverts every 250 ms and reports each send attempt.
	if sp := os.Getenv("VRRPDOCTOR_WATCH_SPEAK"); sp != "" {
		iface, v, _ := strings.Cut(sp, ":")
		vrid, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("VRRPDOCTOR_WATCH_SPEAK=%q: %v", sp, err)
		}
		recv, err := capture.OpenSocket(iface, 4, capture.SocketOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer recv.Close()
		pr, err := capture.OpenProber(iface, 4, uint8(vrid))
		if err != nil {
			t.Fatal(err)
		}
		defer pr.Close()
		go func() {
			tick := time.NewTicker(250 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					w.NoteSend(pr.Send())
				}
			}
		}()
	}
	if err := w.Run(ctx); err != nil {
		t.Fatal(err)
	}
	// VRRPDOCTOR_WATCH_MEMPROFILE=FILE: where the watcher's allocations
	// went (go tool pprof -sample_index=alloc_space).
	if path := os.Getenv("VRRPDOCTOR_WATCH_MEMPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			t.Fatal(err)
		}
	}
}

// watchProc is a watcher running in a child process.
type watchProc struct {
	proc *netlab.Process

	mu      sync.Mutex
	changes []Change
	state   helperLine
}

func (p *watchProc) all() []Change {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.changes)
}

func (p *watchProc) current() helperLine {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

// find returns the latest change of id with the given state at or after
// since.
func (p *watchProc) find(id string, active bool, since time.Time) *Change {
	cs := p.all()
	for i := len(cs) - 1; i >= 0; i-- {
		if c := cs[i]; c.Finding.ID == id && c.Active == active && !c.Time.Before(since) {
			return &c
		}
	}
	return nil
}

func (p *watchProc) flow(src string) *Flow {
	for _, f := range p.current().Flows {
		if f.Src.String() == src && f.VRID == 51 {
			return &f
		}
	}
	return nil
}

func changeList(cs []Change) string {
	var s []string
	for _, c := range cs {
		st := "appeared"
		if !c.Active {
			st = "cleared"
		}
		s = append(s, c.Time.Format("15:04:05.000")+" "+c.Finding.ID+" "+st+": "+c.Finding.Summary)
	}
	return strings.Join(s, "\n")
}

// startWatch runs a watcher in h's namespace for the configuration at
// path, with env added to the helper's environment, and waits until it
// has judged its first window.
func startWatch(t *testing.T, h *netlab.Host, path string, monitor bool, env ...string) *watchProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	m := "0"
	if monitor {
		m = "1"
	}
	// The lab's process runner takes a program and its arguments: env
	// sets the child's variables.
	for _, k := range []string{"VRRPDOCTOR_WATCH_MEMPROFILE", "VRRPDOCTOR_WATCH_CPUPROFILE"} {
		if v := os.Getenv(k); v != "" {
			env = append(env, k+"="+v+"."+t.Name()[strings.LastIndexByte(t.Name(), '/')+1:]+"."+h.Name())
		}
	}
	args := append([]string{"VRRPDOCTOR_WATCH_HELPER=" + path, "VRRPDOCTOR_WATCH_MONITOR=" + m}, env...)
	args = append(args, exe, "-test.run=^TestWatchHelperProcess$", "-test.v", "-test.count=1")
	proc, err := h.Start("env", args...)
	if err != nil {
		t.Fatal(err)
	}
	p := &watchProc{proc: proc}
	t.Cleanup(func() {
		proc.Signal(syscall.SIGTERM)
		proc.Wait(10 * time.Second)
		if strings.Contains(proc.Log(), "DATA RACE") || strings.Contains(proc.Log(), "panic:") {
			t.Errorf("watcher process: data race or panic")
		}
		if t.Failed() {
			t.Logf("watcher output:\n%s", tail(proc.Log(), 200))
		}
	})
	go p.follow(proc)
	if err := netlab.WaitFor(30*time.Second, func() (bool, error) { return p.current().Ready, nil }); err != nil {
		t.Fatalf("watcher not ready: %v\n%s", err, tail(proc.Log(), 50))
	}
	return p
}

// follow reads the child's log (its stdout and stderr) as it grows.
func (p *watchProc) follow(proc *netlab.Process) {
	seen := 0
	for {
		b, err := os.ReadFile(proc.LogPath)
		if err != nil || len(b) < seen {
			return // the lab, and the log with it, is gone
		}
		rest := string(b[seen:])
		if i := strings.LastIndexByte(rest, '\n'); i >= 0 {
			seen += i + 1
			sc := bufio.NewScanner(strings.NewReader(rest[:i]))
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var l helperLine
				if !strings.HasPrefix(sc.Text(), "{") || json.Unmarshal(sc.Bytes(), &l) != nil {
					continue
				}
				p.mu.Lock()
				switch l.Kind {
				case "change":
					p.changes = append(p.changes, Change{Time: l.Time, Active: l.Active, Finding: l.Finding})
				case "state":
					p.state = l
				}
				p.mu.Unlock()
			}
		}
		if proc.Exited() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func evidence(f diag.Finding, label string) string {
	for _, e := range f.Evidence {
		if e.Label == label {
			return e.Value
		}
	}
	return ""
}

// usage returns the CPU time and the resident set size of a process.
func usage(pid int) (cpu time.Duration, rssKB int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	cpu = time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ 100
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			rssKB, _ = strconv.Atoi(strings.Fields(v)[0])
		}
	}
	return cpu, rssKB, nil
}

// memDetail is how a process's resident memory divides (anonymous, file,
// shared: the wire tap's ring), from /proc/PID/status.
func memDetail(pid int) string {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err.Error()
	}
	var parts []string
	for _, l := range strings.Split(string(status), "\n") {
		for _, k := range []string{"RssAnon:", "RssFile:", "RssShmem:", "VmHWM:"} {
			if v, ok := strings.CutPrefix(l, k); ok {
				parts = append(parts, k+" "+strings.Join(strings.Fields(v), " "))
			}
		}
	}
	return strings.Join(parts, ", ")
}

// TestWatchLabIdleCost: one instance at 1 s adverts, healthy: no finding
// over the whole run, and the watcher's CPU and memory beside keepalived's.
// VRRPDOCTOR_WATCH_COST_SECONDS sets how long it measures (default 30).
func TestWatchLabIdleCost(t *testing.T) {
	t.Parallel()
	p := newLabPair(t, time.Second)
	w := startWatch(t, p.b, p.kb.ConfigPath, true, "VRRPDOCTOR_WATCH_QUIET=1")
	secs := 30
	if s, err := strconv.Atoi(os.Getenv("VRRPDOCTOR_WATCH_COST_SECONDS")); err == nil && s > 0 {
		secs = s
	}
	pid := w.proc.PID()
	cpu0, _, err := usage(pid)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	time.Sleep(time.Duration(secs) * time.Second)
	cpu1, rss, err := usage(pid)
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Since(start)
	share := 100 * (cpu1 - cpu0).Seconds() / wall.Seconds()
	var kaRSS int
	kaPIDs := []int{p.kb.Process.PID()}
	if child, err := p.kb.VRRPPID(); err == nil {
		kaPIDs = append(kaPIDs, child)
	}
	for _, k := range kaPIDs {
		if _, r, err := usage(k); err == nil {
			kaRSS += r
		}
	}
	t.Logf("watcher (window %s, test binary as the process): %.2f%% of a core over %s (%s CPU), RSS %d KiB; keepalived on b: RSS %d KiB (%d processes)",
		w.current().Window, share, wall.Round(time.Second), cpu1-cpu0, rss, kaRSS, len(kaPIDs))
	t.Logf("watcher memory: %s", memDetail(pid))
	if cs := w.all(); len(cs) > 0 {
		t.Errorf("healthy pair: changes\n%s", changeList(cs))
	}
	// The flows are updated when a window ends: a quiet one ends up to
	// quietWindow after the first, and the helper tells its state every
	// 2 s.
	healthy := func() bool {
		fl := w.flow("198.51.100.1")
		return fl != nil && fl.DeliveryRatio == 1 && fl.Socket >= uint64(secs/2)
	}
	if err := netlab.WaitFor(quietWindow+5*time.Second, func() (bool, error) { return healthy(), nil }); err != nil {
		t.Errorf("flow from a: %+v", w.flow("198.51.100.1"))
	}
	if share >= 1 {
		t.Errorf("watcher used %.2f%% of a core at idle, want under 1%%", share)
	}
}

// TestWatchLabHealthy: no false alarm on healthy keepalived pairs — VRRPv2,
// IPv6 and unicast — over four windows, on the backup (Monitor mode) and
// on the master; every peer's adverts all delivered.
func TestWatchLabHealthy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		peer string // the other node's advert source, seen from b
		inst func(i int) netlab.VRRPInstance
	}{
		{"v2", "198.51.100.1", func(i int) netlab.VRRPInstance {
			return netlab.VRRPInstance{Interface: "eth0", VRID: 51, Version: 2, Priority: 150 - 50*i, AdvertInt: time.Second, VIPs: []string{labVIP.String() + "/24"}}
		}},
		{"ipv6", "", func(i int) netlab.VRRPInstance {
			return netlab.VRRPInstance{Interface: "eth0", VRID: 52, Version: 3, Priority: 150 - 50*i, AdvertInt: 250 * time.Millisecond, VIPs: []string{"2001:db8::100/64"}}
		}},
		{"unicast", "198.51.100.1", func(i int) netlab.VRRPInstance {
			self, other := netlab.LANAddr4(i+1), netlab.LANAddr4(2-i)
			return netlab.VRRPInstance{Interface: "eth0", VRID: 53, Version: 3, Priority: 150 - 50*i, AdvertInt: 250 * time.Millisecond, VIPs: []string{labVIP.String() + "/24"},
				UnicastSrc: strings.TrimSuffix(self, "/24"), UnicastPeers: []string{strings.TrimSuffix(other, "/24")}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newLabPairWith(t, tc.inst)
			wb := startWatch(t, p.b, p.kb.ConfigPath, true, "VRRPDOCTOR_WATCH_QUIET=1")
			wa := startWatch(t, p.a, p.ka.ConfigPath, true, "VRRPDOCTOR_WATCH_QUIET=1")
			time.Sleep(4*wb.current().Window + 2*time.Second)
			for name, w := range map[string]*watchProc{"a": wa, "b": wb} {
				if cs := w.all(); len(cs) > 0 {
					t.Errorf("%s: changes on a healthy pair\n%s", name, changeList(cs))
				}
			}
			fs := wb.current().Flows
			if len(fs) != 1 || fs[0].DeliveryRatio != 1 || fs[0].Socket == 0 || tc.peer != "" && fs[0].Src.String() != tc.peer {
				t.Errorf("b's flows %+v", fs)
			}
		})
	}
}

// TestWatchLabNotMemberOfGroup: b refuses multicast memberships
// (net.ipv4.igmp_max_memberships=0), so keepalived there runs without the
// VRRP group — and the watcher's own socket taps cannot join either; its
// taps are retried every window. The memberships the daemon holds decide:
// not-member-of-group appears, and nothing else.
func TestWatchLabNotMemberOfGroup(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t, "keepalived")
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Sysctl("net/ipv4/igmp_max_memberships", "0"); err != nil {
		t.Fatal(err)
	}
	var kb *netlab.Keepalived
	for i, h := range []*netlab.Host{a, b} {
		k, err := h.StartKeepalivedConfig(netlab.KeepalivedConfig{RouterID: h.Name(), Instances: []netlab.VRRPInstance{{Interface: "eth0", VRID: 51, Version: 3,
			Priority: 150 - 50*i, AdvertInt: 250 * time.Millisecond, VIPs: []string{labVIP.String() + "/24"}}}})
		if err != nil {
			t.Fatal(err)
		}
		kb = k
	}
	if err := kb.WaitLog(20*time.Second, "IP_ADD_MEMBERSHIP"); err != nil {
		t.Logf("keepalived on b did not log its failed join: %v", err)
	}
	w := startWatch(t, b, kb.ConfigPath, true)
	win := w.current().Window
	if err := netlab.WaitFor(4*win+10*time.Second, func() (bool, error) { return w.find("not-member-of-group", true, time.Time{}) != nil, nil }); err != nil {
		t.Fatalf("not-member-of-group not reported: %v\n%s", err, changeList(w.all()))
	}
	f := w.find("not-member-of-group", true, time.Time{}).Finding
	if f.Severity != diag.SeverityCritical || !strings.Contains(f.Summary, "eth0 has not joined the VRRP group 224.0.0.18 although a VRRP daemon runs") {
		t.Errorf("not-member-of-group %+v", f)
	}
	time.Sleep(2 * win)
	for _, c := range w.all() {
		if c.Finding.ID != "not-member-of-group" || !c.Active {
			t.Errorf("unexpected change %s %v: %s", c.Finding.ID, c.Active, c.Finding.Summary)
		}
	}
}

// TestWatchLabLegacyDrop: an iptables-legacy INPUT drop moves no nftables
// generation; the legacy tables' fingerprint (read every window) does, so
// the drop, added to a legacy filter table that already exists, is named
// within a few windows — well before the 60 s periodic re-read.
func TestWatchLabLegacyDrop(t *testing.T) {
	t.Parallel()
	p := newLabPair(t, 250*time.Millisecond, "iptables-legacy")
	if _, err := p.b.IptablesLegacy("-A", "INPUT", "-p", "tcp", "--dport", "9", "-j", "ACCEPT"); err != nil {
		t.Fatal(err)
	}
	w := startWatch(t, p.b, p.kb.ConfigPath, true)
	win := w.current().Window
	time.Sleep(win)
	dropAt := time.Now()
	if _, err := p.b.IptablesLegacy("-A", "INPUT", "-p", "vrrp", "-j", "DROP"); err != nil {
		t.Fatal(err)
	}
	if err := netlab.WaitFor(4*win+10*time.Second, func() (bool, error) {
		return w.find("firewall-input-drop", true, dropAt) != nil && w.find("split-brain", true, dropAt) != nil, nil
	}); err != nil {
		t.Fatalf("legacy drop not reported: %v\n%s", err, changeList(w.all()))
	}
	fd := w.find("firewall-input-drop", true, dropAt)
	t.Logf("firewall-input-drop after %s", fd.Time.Sub(dropAt).Round(time.Millisecond))
	if r := evidence(fd.Finding, "deciding rule"); !strings.Contains(r, "iptables-legacy") || !strings.Contains(r, "-p vrrp -j DROP") {
		t.Errorf("deciding rule %q", r)
	}
	fixAt := time.Now()
	if _, err := p.b.IptablesLegacy("-D", "INPUT", "-p", "vrrp", "-j", "DROP"); err != nil {
		t.Fatal(err)
	}
	if err := netlab.WaitFor(4*win+10*time.Second, func() (bool, error) {
		return w.find("firewall-input-drop", false, fixAt) != nil && w.find("split-brain", false, fixAt) != nil, nil
	}); err != nil {
		t.Fatalf("legacy drop removed, findings stay: %v\n%s", err, changeList(w.all()))
	}
	t.Logf("cleared after %s", w.find("firewall-input-drop", false, fixAt).Time.Sub(fixAt).Round(time.Millisecond))
	// The deletion too was seen in the fingerprint: the verdict is accept
	// again (the debug log of each window lists the verdicts).
	if err := netlab.WaitFor(4*win+10*time.Second, func() (bool, error) {
		lines := strings.Split(strings.TrimSpace(w.proc.Log()), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			if strings.Contains(lines[i], "window judged") {
				return strings.Contains(lines[i], "in 198.51.100.1→224.0.0.18 accept"), nil
			}
		}
		return false, nil
	}); err != nil {
		t.Errorf("verdict after the deletion: %v", err)
	}
}

// TestWatchLabFailover: a handover is not a fault. The master (a) stops
// (priority 0: b takes over at once), then starts again and takes back
// over (preemption); b's watcher reports nothing through either takeover.
func TestWatchLabFailover(t *testing.T) {
	t.Parallel()
	p := newLabPair(t, 250*time.Millisecond)
	w := startWatch(t, p.b, p.kb.ConfigPath, true)
	win := w.current().Window
	if err := p.ka.Process.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := p.kb.WaitState(10*time.Second, "VI_51", "MASTER"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * win)
	ka, err := p.a.StartKeepalivedConfig(netlab.KeepalivedConfig{RouterID: "a", Instances: []netlab.VRRPInstance{{Interface: "eth0", VRID: 51, Version: 3,
		Priority: 150, AdvertInt: 250 * time.Millisecond, VIPs: []string{labVIP.String() + "/24"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ka.WaitState(20*time.Second, "VI_51", "MASTER"); err != nil {
		t.Fatal(err)
	}
	if err := netlab.WaitFor(10*time.Second, func() (bool, error) { h, err := p.lab.Holders(labVIP); return len(h) == 1 && h[0] == p.a, err }); err != nil {
		t.Fatalf("a holds the address alone: %v", err)
	}
	time.Sleep(4 * win)
	if cs := w.all(); len(cs) > 0 {
		t.Errorf("b's watcher through two takeovers:\n%s", changeList(cs))
	}
	if fl := w.flow("198.51.100.1"); fl == nil || fl.DeliveryRatio != 1 {
		t.Errorf("flow from a after it came back: %+v", fl)
	}
}

// TestWatchLabLoad (VRRPDOCTOR_WATCH_LOAD=1; one run, not in CI): 100
// instances at 0.1 s adverts, healthy; the watcher's CPU, window
// judgement time and RSS beside keepalived's CPU.
func TestWatchLabLoad(t *testing.T) {
	if os.Getenv("VRRPDOCTOR_WATCH_LOAD") != "1" {
		t.Skip("a measurement: set VRRPDOCTOR_WATCH_LOAD=1")
	}
	const n = 100
	lab := netlabtest.New(t, "keepalived")
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	var ks []*netlab.Keepalived
	for i, h := range []*netlab.Host{a, b} {
		var ins []netlab.VRRPInstance
		for v := 1; v <= n; v++ {
			ins = append(ins, netlab.VRRPInstance{Interface: "eth0", VRID: v, Version: 3, Priority: 150 - 50*i, AdvertInt: 100 * time.Millisecond,
				VIPs: []string{fmt.Sprintf("203.0.113.%d/24", v)}})
		}
		k, err := h.StartKeepalivedConfig(netlab.KeepalivedConfig{RouterID: h.Name(), Instances: ins})
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, k)
	}
	if err := ks[1].WaitState(30*time.Second, fmt.Sprintf("VI_%d", n), "BACKUP"); err != nil {
		t.Fatal(err)
	}
	w := startWatch(t, b, ks[1].ConfigPath, true, "VRRPDOCTOR_WATCH_QUIET=1")
	time.Sleep(5 * time.Second)
	pid := w.proc.PID()
	kaPID, err := ks[1].VRRPPID()
	if err != nil {
		t.Fatal(err)
	}
	cpu0, _, err := usage(pid)
	if err != nil {
		t.Fatal(err)
	}
	ka0, _, _ := usage(kaPID)
	start := time.Now()
	time.Sleep(20 * time.Second)
	cpu1, rss, err := usage(pid)
	if err != nil {
		t.Fatal(err)
	}
	ka1, _, _ := usage(kaPID)
	wall := time.Since(start).Seconds()
	t.Logf("%d instances at 0.1 s, window %s: watcher %.2f%% of a core, RSS %d KiB (%s); keepalived's VRRP process on b %.2f%%",
		n, w.current().Window, 100*(cpu1-cpu0).Seconds()/wall, rss, memDetail(pid), 100*(ka1-ka0).Seconds()/wall)
	if cs := w.all(); len(cs) > 0 {
		t.Errorf("healthy: changes\n%s", changeList(cs))
	}
	if fs := w.current().Flows; len(fs) != maxFlows {
		t.Errorf("%d flows, want the %d most recent of %d", len(fs), maxFlows, n)
	}
}

// TestWatchLabInterfaceDown: b's eth0 goes down (keepalived there enters
// FAULT) — interface-down appears; back up, it clears, and the taps,
// reopened, see a's adverts delivered again.
func TestWatchLabInterfaceDown(t *testing.T) {
	t.Parallel()
	p := newLabPair(t, 250*time.Millisecond)
	w := startWatch(t, p.b, p.kb.ConfigPath, true)
	win := w.current().Window
	downAt := time.Now()
	if err := p.b.LinkDown("eth0"); err != nil {
		t.Fatal(err)
	}
	if err := netlab.WaitFor(4*win+10*time.Second, func() (bool, error) { return w.find("interface-down", true, downAt) != nil, nil }); err != nil {
		t.Fatalf("interface-down not reported: %v\n%s", err, changeList(w.all()))
	}
	f := w.find("interface-down", true, downAt)
	t.Logf("interface-down after %s: %s", f.Time.Sub(downAt).Round(time.Millisecond), f.Finding.Summary)
	upAt := time.Now()
	if err := p.b.LinkUp("eth0"); err != nil {
		t.Fatal(err)
	}
	if err := netlab.WaitFor(6*win+20*time.Second, func() (bool, error) {
		fl := w.flow("198.51.100.1")
		return w.find("interface-down", false, upAt) != nil && fl != nil && fl.DeliveryRatio == 1 && fl.LastSeen.After(upAt), nil
	}); err != nil {
		t.Fatalf("after the link came up: %v; flow %+v\n%s", err, w.flow("198.51.100.1"), changeList(w.all()))
	}
	t.Logf("interface-down cleared after %s", w.find("interface-down", false, upAt).Time.Sub(upAt).Round(time.Millisecond))
	for _, c := range w.all() {
		if c.Finding.ID != "interface-down" {
			t.Errorf("unexpected change %s %v: %s", c.Finding.ID, c.Active, c.Finding.Summary)
		}
	}
}

// TestWatchLabSpeakerOutputDrop: self-diagnosis inside the VRRP speaker
// (Monitor false). b's watcher process is the speaker: it holds the
// virtual address and sends adverts, and no keepalived runs — which a
// Monitor-mode watcher beside it reports (keepalived-not-running) and the
// speaker's own must not. An OUTPUT drop makes the speaker's sends fail:
// firewall-output-drop appears with the failed attempts and the rule, and
// clears when the rule goes.
func TestWatchLabSpeakerOutputDrop(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t, "iptables")
	_, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	conf, err := netlab.KeepalivedConfig{RouterID: "b", Instances: []netlab.VRRPInstance{{Interface: "eth0", VRID: 51, Version: 3, Priority: 100,
		AdvertInt: time.Second, VIPs: []string{labVIP.String() + "/24"}}}}.Render()
	if err != nil {
		t.Fatal(err)
	}
	path := lab.Path("b-run.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := b.AddAddr("eth0", labVIP.String()+"/24"); err != nil { // the speaker is master
		t.Fatal(err)
	}
	speaker := startWatch(t, b, path, false, "VRRPDOCTOR_WATCH_SPEAK=eth0:51")
	monitor := startWatch(t, b, path, true, "VRRPDOCTOR_WATCH_QUIET=1")
	win := speaker.current().Window
	if err := netlab.WaitFor(3*win+5*time.Second, func() (bool, error) { return monitor.find("keepalived-not-running", true, time.Time{}) != nil, nil }); err != nil {
		t.Errorf("monitor mode beside no keepalived: %v\n%s", err, changeList(monitor.all()))
	}
	time.Sleep(2 * win)
	if cs := speaker.all(); len(cs) > 0 {
		t.Fatalf("speaker, healthy: changes\n%s", changeList(cs))
	}

	dropAt := time.Now()
	if _, err := b.Iptables("-A", "OUTPUT", "-p", "vrrp", "-j", "DROP"); err != nil {
		t.Fatal(err)
	}
	if err := netlab.WaitFor(4*win+10*time.Second, func() (bool, error) {
		return speaker.find("firewall-output-drop", true, dropAt) != nil, nil
	}); err != nil {
		t.Fatalf("output drop not reported: %v\n%s", err, changeList(speaker.all()))
	}
	od := speaker.find("firewall-output-drop", true, dropAt)
	t.Logf("firewall-output-drop after %s: %s", od.Time.Sub(dropAt).Round(time.Millisecond), od.Finding.Summary)
	if od.Finding.Severity != diag.SeverityCritical || !strings.Contains(evidence(od.Finding, "deciding rule"), "-p vrrp -j DROP") ||
		!strings.Contains(evidence(od.Finding, "send attempts"), "attempts to send an advert failed: ") {
		t.Errorf("firewall-output-drop %+v", od.Finding)
	}
	fixAt := time.Now()
	if _, err := b.Iptables("-D", "OUTPUT", "-p", "vrrp", "-j", "DROP"); err != nil {
		t.Fatal(err)
	}
	if err := netlab.WaitFor(4*win+10*time.Second, func() (bool, error) {
		return speaker.find("firewall-output-drop", false, fixAt) != nil, nil
	}); err != nil {
		t.Fatalf("output drop did not clear: %v\n%s", err, changeList(speaker.all()))
	}
	for _, c := range speaker.all() {
		if c.Finding.ID != "firewall-output-drop" {
			t.Errorf("speaker: unexpected change %s %v: %s", c.Finding.ID, c.Active, c.Finding.Summary)
		}
	}
	t.Logf("speaker changes:\n%s", changeList(speaker.all()))
}

// TestWatchLabInputDrop: healthy at first (no finding over several
// windows), then the staged split brain — an INPUT drop on b — makes
// split-brain and firewall-input-drop appear with the deciding rule and a
// delivery ratio of 0; deleting the rule clears both within about two
// windows.
func TestWatchLabInputDrop(t *testing.T) {
	t.Parallel()
	p := newLabPair(t, 250*time.Millisecond, "iptables")
	w := startWatch(t, p.b, p.kb.ConfigPath, true)
	win := w.current().Window
	t.Logf("window %s", win)

	// Healthy: nothing over four windows.
	time.Sleep(4 * win)
	if cs := w.all(); len(cs) > 0 {
		t.Fatalf("healthy pair: changes\n%s", changeList(cs))
	}
	if fl := w.flow("198.51.100.1"); fl == nil || fl.DeliveryRatio != 1 || fl.Socket == 0 {
		t.Errorf("healthy flow from a: %+v", fl)
	}

	dropAt := time.Now()
	if _, err := p.b.Iptables("-A", "INPUT", "-d", "224.0.0.18", "-j", "DROP"); err != nil {
		t.Fatal(err)
	}
	err := netlab.WaitFor(6*win+10*time.Second, func() (bool, error) {
		return w.find("split-brain", true, dropAt) != nil && w.find("firewall-input-drop", true, dropAt) != nil, nil
	})
	if err != nil {
		t.Fatalf("split brain not reported: %v\n%s", err, changeList(w.all()))
	}
	sb, fd := w.find("split-brain", true, dropAt), w.find("firewall-input-drop", true, dropAt)
	t.Logf("after the drop: split-brain in %s, firewall-input-drop in %s", sb.Time.Sub(dropAt).Round(time.Millisecond), fd.Time.Sub(dropAt).Round(time.Millisecond))
	if !strings.Contains(sb.Finding.Summary, "198.51.100.1 advertises VRID 51 at priority 150") || !strings.Contains(sb.Finding.Summary, "0 reached the VRRP socket") {
		t.Errorf("split-brain: %s", sb.Finding.Summary)
	}
	if r := evidence(fd.Finding, "deciding rule"); !strings.Contains(r, "chain INPUT of table ip filter (iptables-nft") || !strings.Contains(r, "-d 224.0.0.18/32 -j DROP") {
		t.Errorf("firewall-input-drop deciding rule %q", r)
	}
	if fd.Finding.Severity != diag.SeverityCritical {
		t.Errorf("firewall-input-drop severity %s, want critical (confirmed by the taps)", fd.Finding.Severity)
	}
	if err := netlab.WaitFor(2*win+2*time.Second, func() (bool, error) {
		fl := w.flow("198.51.100.1")
		return fl != nil && fl.DeliveryRatio == 0 && fl.Wire > 0, nil
	}); err != nil {
		t.Errorf("flow from a under the drop: %+v", w.flow("198.51.100.1"))
	}
	// Findings() lists them (the child tells its state every 200 ms).
	var ids []string
	if err := netlab.WaitFor(2*time.Second, func() (bool, error) {
		ids = nil
		for _, f := range w.current().Findings {
			ids = append(ids, f.ID)
		}
		return slices.Contains(ids, "split-brain") && slices.Contains(ids, "firewall-input-drop"), nil
	}); err != nil {
		t.Errorf("active findings %v", ids)
	}

	fixAt := time.Now()
	if _, err := p.b.Iptables("-D", "INPUT", "-d", "224.0.0.18", "-j", "DROP"); err != nil {
		t.Fatal(err)
	}
	err = netlab.WaitFor(6*win+10*time.Second, func() (bool, error) {
		return w.find("split-brain", false, fixAt) != nil && w.find("firewall-input-drop", false, fixAt) != nil, nil
	})
	if err != nil {
		t.Fatalf("findings did not clear: %v\n%s", err, changeList(w.all()))
	}
	sc, fc := w.find("split-brain", false, fixAt), w.find("firewall-input-drop", false, fixAt)
	took := max(sc.Time.Sub(fixAt), fc.Time.Sub(fixAt))
	t.Logf("after the fix: split-brain cleared in %s, firewall-input-drop in %s (window %s)", sc.Time.Sub(fixAt).Round(time.Millisecond), fc.Time.Sub(fixAt).Round(time.Millisecond), win)
	if took > 2*win+win/2 {
		t.Errorf("clearing took %s, want within about 2 windows (%s)", took, 2*win)
	}
	time.Sleep(win + 500*time.Millisecond)
	if fs := w.current().Findings; len(fs) > 0 {
		t.Errorf("findings left after the fix: %v", fs)
	}
	t.Logf("changes:\n%s", changeList(w.all()))
	t.Logf("time to judge a window (gather, evaluate): %s", stepTimes(w.proc.Log()))
}

// stepTimes summarises the "took" of the watcher's debug log.
func stepTimes(log string) string {
	var ds []time.Duration
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, "window judged") {
			continue
		}
		_, v, ok := strings.Cut(l, " took=")
		if !ok {
			continue
		}
		v, _, _ = strings.Cut(v, " ")
		if d, err := time.ParseDuration(v); err == nil {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 {
		return "none logged"
	}
	slices.Sort(ds)
	return fmt.Sprintf("%d windows, median %s, max %s", len(ds), ds[len(ds)/2], ds[len(ds)-1])
}
