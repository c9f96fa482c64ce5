package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
)

// TestWatchPreempt: two `vrrpdoctor run` with their self-diagnosis on, a
// (150) and b (100). a stops (b takes over), starts again and preempts: an
// ordinary hand-over in which both advertise for a moment, so neither
// node may log a split brain. Then an INPUT drop on b makes a real one,
// which b must log.
func TestWatchPreempt(t *testing.T) {
	t.Parallel()
	for _, sc := range []struct {
		name    string
		version int
		advert  time.Duration
	}{
		{"v3-100ms", 3, 100 * time.Millisecond},
		{"v3-250ms", 3, 250 * time.Millisecond},
		{"v2-1s", 2, time.Second},
	} {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			watchPreempt(t, sc.version, sc.advert)
		})
	}
}

func watchPreempt(t *testing.T, version int, advert time.Duration) {
	lab := netlabtest.New(t, "iptables")
	vrrpdoctor(t)
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	vip := netip.MustParseAddr("198.51.100.101")
	tl := &timeline{}
	for _, h := range []*netlab.Host{a, b} {
		tl.watch(t, h, vip)
	}
	inst := func(prio int) netlab.VRRPInstance {
		return netlab.VRRPInstance{Interface: "eth0", VRID: 61, Version: version, Priority: prio, AdvertInt: advert, VIPs: []string{"198.51.100.101/24"}}
	}
	// check's window for this interval: 3 intervals + 1 s - 0.3 s.
	window := 3*advert + 700*time.Millisecond
	settle := 4*window + 3*advert
	confA, confB := renderConf(t, "a", "", inst(150)), renderConf(t, "b", "", inst(100))
	var procs []*netlab.Process
	startA := func(n int) *netlab.Process {
		p := startRun(t, a, lab.Path(fmt.Sprintf("a-%d.conf", n)), confA, "--log-level", "debug")
		procs = append(procs, p)
		return p
	}
	pb := startRun(t, b, lab.Path("b.conf"), confB, "--log-level", "debug")
	procs = append(procs, pb)
	pa := startA(0)
	tl.waitHolder(t, 10*time.Second, "a", "startup")
	time.Sleep(settle)

	// As in the interop matrix: a comes back as soon as b is master, so
	// the hand-overs fall into consecutive windows; twice after a
	// SIGTERM (priority 0), once after a crash (SIGKILL: b waits
	// Master_Down_Interval, a's address stays until its restart).
	for i := 1; i <= 3; i++ {
		if i == 3 {
			if err := syscall.Kill(-pa.PID(), syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			pa.Wait(10 * time.Second)
			tl.add(vipEvent{at: time.Now(), host: "a", kind: "dead"})
		} else {
			pa.Stop(10 * time.Second)
		}
		tl.waitHolder(t, 10*time.Second, "b", "a stopped")
		tl.add(vipEvent{at: time.Now(), host: "a", kind: "alive"})
		pa = startA(i)
		tl.waitHolder(t, 10*time.Second, "a", "a back, preempting")
		time.Sleep(2 * window)
	}
	time.Sleep(settle)

	for _, p := range procs {
		if log := p.Log(); strings.Contains(log, "id=split-brain") {
			t.Errorf("split brain logged during an ordinary hand-over:\n%s", grepLines(log, "split-brain", "state change", "watch: window judged"))
		}
	}
	if t.Failed() {
		t.Logf("VIP timeline (from %s):\n%s", tl.snapshot()[0].at.UTC().Format("15:04:05.000"), tl.dump())
		return
	}

	// A real split brain: b no longer hears a.
	if _, err := b.Iptables("-A", "INPUT", "-d", "224.0.0.18", "-j", "DROP"); err != nil {
		t.Fatal(err)
	}
	if err := pb.WaitLog(3*window+10*time.Second, "msg=finding id=split-brain"); err != nil {
		t.Fatalf("no split brain on b with its INPUT dropping VRRP: %v\n%s", err, tail(pb.Log(), 40))
	}
}

// grepLines returns the lines of log that contain any of words.
func grepLines(log string, words ...string) string {
	var out []string
	for l := range strings.SplitSeq(log, "\n") {
		for _, w := range words {
			if strings.Contains(l, w) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
