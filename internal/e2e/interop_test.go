package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
)

// The interop matrix: vrrpdoctor ("vd") and keepalived 2.2 ("ka") as the
// two routers of one virtual router, in every role, for VRRPv2 (with and
// without PASS), VRRPv3 over IPv4 and IPv6, and unicast peers. Each
// scenario walks through startup, a graceful handover (SIGTERM: priority
// 0), the return of the higher priority router (preemption), a crash
// (SIGKILL) and a restart after the crash, and asserts from netlink
// address events which host holds the virtual address over time: the
// right one after each event, within the protocol's time, and never two
// live holders for longer than Master_Down_Interval. Both routers run the
// same keepalived.conf text.

// interopScenario is one cell of the matrix.
type interopScenario struct {
	name      string
	high, low string // implementation of the priority 150 and 100 routers: "vd" or "ka"
	version   int
	family    int
	auth      string
	unicast   bool
	nopreempt bool
	advert    time.Duration
}

func TestInterop(t *testing.T) {
	t.Parallel()
	const v3int = 200 * time.Millisecond
	var cells []interopScenario
	for _, roles := range [][2]string{{"vd", "vd"}, {"ka", "vd"}, {"vd", "ka"}} {
		pair := roles[0] + "-" + roles[1]
		cells = append(cells,
			interopScenario{name: pair + "/v3-ipv4", high: roles[0], low: roles[1], version: 3, family: 4, advert: v3int},
			interopScenario{name: pair + "/v3-ipv6", high: roles[0], low: roles[1], version: 3, family: 6, advert: v3int},
			interopScenario{name: pair + "/v3-unicast", high: roles[0], low: roles[1], version: 3, family: 4, unicast: true, advert: v3int},
			interopScenario{name: pair + "/v3-unicast-ipv6", high: roles[0], low: roles[1], version: 3, family: 6, unicast: true, advert: v3int},
			interopScenario{name: pair + "/v2-unicast", high: roles[0], low: roles[1], version: 2, family: 4, unicast: true, advert: time.Second},
			interopScenario{name: pair + "/v2-pass", high: roles[0], low: roles[1], version: 2, family: 4, auth: "s3cret:x", advert: time.Second},
		)
		if roles[0] != roles[1] {
			cells = append(cells,
				interopScenario{name: pair + "/v2", high: roles[0], low: roles[1], version: 2, family: 4, advert: time.Second},
				interopScenario{name: pair + "/v3-nopreempt", high: roles[0], low: roles[1], version: 3, family: 4, nopreempt: true, advert: v3int},
			)
		}
	}
	for _, sc := range cells {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			runInterop(t, sc)
		})
	}
}

// node is one router of a scenario.
type node struct {
	t        *testing.T
	h        *netlab.Host
	impl     string
	priority int
	conf     string
	proc     *netlab.Process
	ka       *netlab.Keepalived
	procs    []*netlab.Process // every run, for the logs
}

func (n *node) start() {
	n.t.Helper()
	switch n.impl {
	case "ka":
		k, err := n.h.StartKeepalived(n.conf)
		if err != nil {
			n.t.Fatal(err)
		}
		n.ka, n.proc = k, k.Process
	default:
		path := n.h.Lab().Path(fmt.Sprintf("%s-vrrpdoctor-%d.conf", n.h.Name(), len(n.procs)))
		if err := os.WriteFile(path, []byte(n.conf), 0o600); err != nil {
			n.t.Fatal(err)
		}
		// run's self-diagnosis stays on (the default): a finding it
		// logged during the hand-overs staged here (split-brain is
		// the one to fear) counts as a complaint below.
		p, err := n.h.Start(vrrpdoctor(n.t), "run", "-c", path, "--log-level", "debug")
		if err != nil {
			n.t.Fatal(err)
		}
		n.proc = p
	}
	n.procs = append(n.procs, n.proc)
}

// stop sends SIGTERM and waits for a clean exit.
func (n *node) stop() {
	n.t.Helper()
	if err := n.proc.Signal(syscall.SIGTERM); err != nil {
		n.t.Fatalf("%s: SIGTERM: %v", n, err)
	}
	if err := n.proc.Wait(10 * time.Second); err != nil {
		n.t.Fatalf("%s after SIGTERM: %v", n, err)
	}
}

// kill kills the router's whole process group at once (keepalived's parent
// and VRRP child alike), as a crash would.
func (n *node) kill() {
	n.t.Helper()
	if err := syscall.Kill(-n.proc.PID(), syscall.SIGKILL); err != nil {
		n.t.Fatalf("%s: SIGKILL: %v", n, err)
	}
	n.proc.Wait(10 * time.Second)
}

func (n *node) String() string {
	return fmt.Sprintf("%s(%s, priority %d)", n.h.Name(), n.impl, n.priority)
}

// vipEvent is one change seen on the lab: the address added to or removed
// from a host, or a host crashing (its addresses no longer count) or
// coming back.
type vipEvent struct {
	at   time.Time
	host string
	kind string // "add", "del", "dead", "alive"
}

// timeline records every change of the virtual address on every host,
// from netlink address notifications in each host's namespace.
type timeline struct {
	mu     sync.Mutex
	events []vipEvent
}

func (tl *timeline) add(e vipEvent) {
	tl.mu.Lock()
	tl.events = append(tl.events, e)
	tl.mu.Unlock()
}

func (tl *timeline) snapshot() []vipEvent {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return slices.Clone(tl.events)
}

// watch follows ip on host h until the test ends.
func (tl *timeline) watch(t *testing.T, h *netlab.Host, ip netip.Addr) {
	t.Helper()
	updates := make(chan netlink.AddrUpdate, 256)
	done := make(chan struct{})
	err := h.Do(func() error {
		return netlink.AddrSubscribeWithOptions(updates, done, netlink.AddrSubscribeOptions{ListExisting: true})
	})
	if err != nil {
		t.Fatalf("watching addresses of %s: %v", h.Name(), err)
	}
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for u := range updates {
			a, ok := netip.AddrFromSlice(u.LinkAddress.IP)
			if !ok || a.Unmap() != ip {
				continue
			}
			kind := "del"
			if u.NewAddr {
				kind = "add"
			}
			tl.add(vipEvent{at: time.Now(), host: h.Name(), kind: kind})
		}
	}()
	t.Cleanup(func() { close(done); <-finished })
}

// holders replays the events up to the end and returns the live hosts
// holding the address.
func holdersOf(events []vipEvent) []string {
	holds, dead := map[string]bool{}, map[string]bool{}
	for _, e := range events {
		apply(holds, dead, e)
	}
	var out []string
	for h, ok := range holds {
		if ok && !dead[h] {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return out
}

func apply(holds, dead map[string]bool, e vipEvent) {
	switch e.kind {
	case "add":
		holds[e.host] = true
	case "del":
		holds[e.host] = false
	case "dead":
		dead[e.host] = true
	case "alive":
		dead[e.host] = false
	}
}

// overlaps returns every period during which two live hosts held the
// address, as [start, end) pairs; an open period ends at now.
func overlaps(events []vipEvent, now time.Time) [][2]time.Time {
	holds, dead := map[string]bool{}, map[string]bool{}
	live := func() int {
		n := 0
		for h, ok := range holds {
			if ok && !dead[h] {
				n++
			}
		}
		return n
	}
	var out [][2]time.Time
	var since time.Time
	for _, e := range events {
		apply(holds, dead, e)
		switch n := live(); {
		case n >= 2 && since.IsZero():
			since = e.at
		case n < 2 && !since.IsZero():
			out = append(out, [2]time.Time{since, e.at})
			since = time.Time{}
		}
	}
	if !since.IsZero() {
		out = append(out, [2]time.Time{since, now})
	}
	return out
}

// waitHolder waits until exactly want holds the address (among live
// hosts) and returns when it started to.
func (tl *timeline) waitHolder(t *testing.T, timeout time.Duration, want string, what string) time.Time {
	t.Helper()
	var got []string
	err := netlab.WaitFor(timeout, func() (bool, error) {
		got = holdersOf(tl.snapshot())
		return len(got) == 1 && got[0] == want, nil
	})
	if err != nil {
		t.Fatalf("%s: VIP held by %v, want [%s] within %v\n%s", what, got, want, timeout, tl.dump())
	}
	ev := tl.snapshot()
	for i := len(ev) - 1; i >= 0; i-- {
		if ev[i].host == want && ev[i].kind == "add" {
			return ev[i].at
		}
	}
	return time.Time{}
}

func (tl *timeline) dump() string {
	ev := tl.snapshot()
	if len(ev) == 0 {
		return "(no address events)"
	}
	var b strings.Builder
	t0 := ev[0].at
	for _, e := range ev {
		fmt.Fprintf(&b, "  %+8.3fs %-2s %s\n", e.at.Sub(t0).Seconds(), e.host, e.kind)
	}
	return b.String()
}

func runInterop(t *testing.T, sc interopScenario) {
	progs := []string{}
	if sc.high == "ka" || sc.low == "ka" {
		progs = append(progs, "keepalived")
	}
	lab := netlabtest.New(t, progs...)
	vrrpdoctor(t)
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	vipPrefix := "198.51.100.100/24"
	var addrs [2]string
	for i := range addrs {
		addrs[i] = netip.MustParsePrefix(netlab.LANAddr4(i + 1)).Addr().String()
	}
	if sc.family == 6 {
		vipPrefix = "2001:db8::100/64"
		for i := range addrs {
			// Unicast peers and source: the hosts' global addresses.
			addrs[i] = netip.MustParsePrefix(netlab.LANAddr6(i + 1)).Addr().String()
		}
	}
	vipAddr := netip.MustParsePrefix(vipPrefix).Addr()
	tl := &timeline{}
	tl.watch(t, a, vipAddr)
	tl.watch(t, b, vipAddr)

	mk := func(h *netlab.Host, impl string, prio int, self, peer string) *node {
		in := netlab.VRRPInstance{
			Interface: "eth0", VRID: 51, Version: sc.version, Priority: prio,
			AdvertInt: sc.advert, VIPs: []string{vipPrefix}, AuthPass: sc.auth, NoPreempt: sc.nopreempt,
		}
		if sc.unicast {
			in.UnicastSrc, in.UnicastPeers = self, []string{peer}
		}
		conf, err := netlab.KeepalivedConfig{RouterID: h.Name(), Instances: []netlab.VRRPInstance{in}}.Render()
		if err != nil {
			t.Fatal(err)
		}
		return &node{t: t, h: h, impl: impl, priority: prio, conf: conf}
	}
	high := mk(a, sc.high, 150, addrs[0], addrs[1])
	low := mk(b, sc.low, 100, addrs[1], addrs[0])
	logOnFailure(t, tl, high, low)

	// Master_Down_Interval of each router, and the margin allowed on top
	// for scheduling on a loaded test machine.
	mdiHigh := router.MasterDownInterval(uint8(sc.version), 150, sc.advert)
	mdiLow := router.MasterDownInterval(uint8(sc.version), 100, sc.advert)
	skewLow := router.SkewTime(uint8(sc.version), 100, sc.advert)
	slack := 500 * time.Millisecond
	checkOverlaps := func(step string) {
		t.Helper()
		for _, o := range overlaps(tl.snapshot(), time.Now()) {
			if d := o[1].Sub(o[0]); d > mdiLow {
				t.Errorf("%s: both routers held the VIP for %v (> Master_Down_Interval %v)\n%s", step, d.Round(time.Millisecond), mdiLow, tl.dump())
			}
		}
	}

	if sc.nopreempt {
		// The lower priority router is Master first; the higher one
		// must then leave it alone.
		low.start()
		tl.waitHolder(t, mdiLow+3*time.Second, b.Name(), "low priority router alone")
		high.start()
		time.Sleep(3*mdiHigh + slack)
		if got := holdersOf(tl.snapshot()); !slices.Equal(got, []string{b.Name()}) {
			t.Fatalf("nopreempt: higher priority router took over: holders %v\n%s", got, tl.dump())
		}
		t0 := time.Now()
		low.stop()
		at := tl.waitHolder(t, mdiHigh+slack, a.Name(), "nopreempt: handover on SIGTERM")
		t.Logf("handover after SIGTERM of the Master: %v", at.Sub(t0).Round(time.Millisecond))
		checkOverlaps("nopreempt")
		high.stop()
		checkClean(t, tl, high, low)
		return
	}

	// 1. Startup: the higher priority router wins.
	low.start()
	high.start()
	tl.waitHolder(t, mdiHigh+3*time.Second, a.Name(), "startup")
	checkOverlaps("startup")

	// 2. Graceful handover: the Master stops, sends priority 0, and the
	// backup takes over after Skew_Time.
	t0 := time.Now()
	high.stop()
	at := tl.waitHolder(t, mdiLow+slack, b.Name(), "SIGTERM of the Master")
	if d := at.Sub(t0); d > skewLow+slack {
		t.Errorf("takeover %v after SIGTERM; a priority 0 advert should give Skew_Time %v", d.Round(time.Millisecond), skewLow)
	}
	t.Logf("takeover after SIGTERM: %v (Skew_Time %v)", at.Sub(t0).Round(time.Millisecond), skewLow)
	checkOverlaps("SIGTERM")

	// 3. The higher priority router returns and preempts.
	high.start()
	tl.waitHolder(t, mdiHigh+mdiLow+3*time.Second, a.Name(), "preemption by the returning higher priority router")
	checkOverlaps("preemption")

	// 4. Crash: the Master's process group is killed; its address stays
	// behind, but the host is dead until restarted.
	tl.add(vipEvent{at: time.Now(), host: a.Name(), kind: "dead"})
	t0 = time.Now()
	high.kill()
	at = tl.waitHolder(t, mdiLow+slack, b.Name(), "SIGKILL of the Master")
	if d := at.Sub(t0); d < mdiLow-sc.advert {
		t.Errorf("takeover %v after SIGKILL, before Master_Down_Interval %v", d, mdiLow)
	}
	t.Logf("takeover after SIGKILL: %v (Master_Down_Interval %v)", at.Sub(t0).Round(time.Millisecond), mdiLow)

	// 5. Restart after the crash: the stale address must go before the
	// router is Backup, then it preempts.
	restart := time.Now()
	tl.add(vipEvent{at: restart, host: a.Name(), kind: "alive"})
	high.start()
	tl.waitHolder(t, mdiHigh+mdiLow+3*time.Second, a.Name(), "preemption after the crash")
	if high.impl == "vd" {
		removed := false
		for _, e := range tl.snapshot() {
			if e.at.After(restart) && e.host == a.Name() && e.kind == "del" {
				removed = true
				break
			}
		}
		if !removed {
			t.Errorf("vrrpdoctor kept the VIP a crashed run left behind instead of removing it before starting as Backup\n%s", tl.dump())
		}
	}
	checkOverlaps("restart after crash")

	high.stop()
	tl.waitHolder(t, mdiLow+slack, b.Name(), "final SIGTERM of the Master")
	low.stop()
	checkClean(t, tl, high, low)
}

// logOnFailure logs, when t has failed, the address timeline and every run's
// log of the nodes.
func logOnFailure(t *testing.T, tl *timeline, nodes ...*node) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		t.Logf("address timeline:\n%s", tl.dump())
		for _, n := range nodes {
			for i, p := range n.procs {
				t.Logf("%s run %d log:\n%s", n, i+1, tail(p.Log(), 60))
			}
		}
	})
}

// checkClean checks the end of a scenario: nobody holds the address, and
// neither router complained about the other's adverts.
func checkClean(t *testing.T, tl *timeline, nodes ...*node) {
	t.Helper()
	if err := netlab.WaitFor(2*time.Second, func() (bool, error) { return len(holdersOf(tl.snapshot())) == 0, nil }); err != nil {
		t.Errorf("after both routers stopped the VIP is still held by %v", holdersOf(tl.snapshot()))
	}
	for _, n := range nodes {
		for _, p := range n.procs {
			log := p.Log()
			switch n.impl {
			case "ka":
				lower := strings.ToLower(log)
				for _, bad := range []string{"invalid", "mismatch", "bogus", "checksum"} {
					if i := strings.Index(lower, bad); i >= 0 {
						t.Errorf("%s logged %q: %s", n, bad, lineAt(log, i))
					}
				}
			case "vd":
				for _, l := range strings.Split(log, "\n") {
					if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
						t.Errorf("%s: %s", n, l)
					}
				}
			}
		}
	}
}

func lineAt(s string, i int) string {
	start := strings.LastIndexByte(s[:i], '\n') + 1
	end := strings.IndexByte(s[i:], '\n')
	if end < 0 {
		return s[start:]
	}
	return s[start : i+end]
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// TestInteropReplace swaps keepalived and vrrpdoctor on the nodes of a live
// pair, with one unchanged keepalived.conf per node: replacing the backup
// (either way) never moves the VIP; replacing the Master hands it over
// cleanly (priority 0) and back (preemption).
func TestInteropReplace(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t, "keepalived")
	vrrpdoctor(t)
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	const advert = 200 * time.Millisecond
	vipAddr := netip.MustParseAddr("198.51.100.100")
	tl := &timeline{}
	tl.watch(t, a, vipAddr)
	tl.watch(t, b, vipAddr)
	mk := func(h *netlab.Host, impl string, prio int) *node {
		conf, err := netlab.KeepalivedConfig{RouterID: h.Name(), Instances: []netlab.VRRPInstance{{
			Interface: "eth0", VRID: 51, Version: 3, Priority: prio, AdvertInt: advert, VIPs: []string{"198.51.100.100/24"},
		}}}.Render()
		if err != nil {
			t.Fatal(err)
		}
		return &node{t: t, h: h, impl: impl, priority: prio, conf: conf}
	}
	var nodes []*node
	run := func(h *netlab.Host, impl string, prio int) *node {
		n := mk(h, impl, prio)
		n.start()
		nodes = append(nodes, n)
		return n
	}
	// nodes grows as the test goes: read it when the test ends.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("address timeline:\n%s", tl.dump())
			for _, n := range nodes {
				t.Logf("%s log:\n%s", n, tail(n.proc.Log(), 40))
			}
		}
	})
	mdi := router.MasterDownInterval(3, 100, advert)
	quiet := func(step string, since time.Time) {
		t.Helper()
		time.Sleep(3 * mdi)
		for _, e := range tl.snapshot() {
			if e.at.After(since) {
				t.Fatalf("%s: the VIP moved (%s %s)\n%s", step, e.host, e.kind, tl.dump())
			}
		}
	}

	master := run(a, "ka", 150)
	backup := run(b, "ka", 100)
	tl.waitHolder(t, mdi+3*time.Second, "a", "keepalived pair")

	since := time.Now()
	backup.stop()
	backup = run(b, "vd", 100)
	quiet("keepalived backup replaced by vrrpdoctor", since)

	master.stop()
	tl.waitHolder(t, mdi, "b", "keepalived Master stopped")
	master = run(a, "vd", 150)
	tl.waitHolder(t, 2*mdi+2*time.Second, "a", "vrrpdoctor Master preempts")

	since = time.Now()
	backup.stop()
	backup = run(b, "ka", 100)
	quiet("vrrpdoctor backup replaced by keepalived", since)

	now := time.Now()
	for _, o := range overlaps(tl.snapshot(), now) {
		if d := o[1].Sub(o[0]); d > mdi {
			t.Errorf("both held the VIP for %v\n%s", d, tl.dump())
		}
	}
	for _, g := range gaps(tl.snapshot(), now) {
		if d := g[1].Sub(g[0]); d > mdi {
			t.Errorf("nobody held the VIP for %v (> Master_Down_Interval %v)\n%s", d, mdi, tl.dump())
		}
	}
	master.stop()
	backup.stop()
	checkClean(t, tl, nodes...)
}

// gaps returns every period, after the address was first held, during
// which no live host held it, as [start, end) pairs; an open period ends
// at now.
func gaps(events []vipEvent, now time.Time) [][2]time.Time {
	holds, dead := map[string]bool{}, map[string]bool{}
	live := func() int {
		n := 0
		for h, ok := range holds {
			if ok && !dead[h] {
				n++
			}
		}
		return n
	}
	var out [][2]time.Time
	var since time.Time
	held := false
	for _, e := range events {
		apply(holds, dead, e)
		switch n := live(); {
		case n > 0:
			held = true
			if !since.IsZero() {
				out = append(out, [2]time.Time{since, e.at})
				since = time.Time{}
			}
		case held && since.IsZero():
			since = e.at
		}
	}
	if !since.IsZero() {
		out = append(out, [2]time.Time{since, now})
	}
	return out
}
