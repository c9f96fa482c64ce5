package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
)

// TestInteropSyncGroupReload: vrrpdoctor (a, Master) runs a
// vrrp_sync_group of two instances on two links beside keepalived (b).
// SIGHUP with a new priority for both members applies it in place: no
// address moves, and the group still acts as one afterwards (a's eth1 down
// moves both addresses to b; up again, a takes both back). SIGHUP that
// takes the eth1 instance out of the group restarts both members (their
// group changed) without leaving an address on both nodes for longer than
// Master_Down_Interval; after it (keepalived's group changed the same
// way), a's eth1 going down moves only the eth1 address.
func TestInteropSyncGroupReload(t *testing.T) {
	t.Parallel()
	lab, a, b := newTwoLinkPair(t)
	vip0, vip1 := netip.MustParseAddr("198.51.100.120"), netip.MustParseAddr("203.0.113.120")
	tl0, tl1 := &timeline{}, &timeline{}
	for _, h := range []*netlab.Host{a, b} {
		tl0.watch(t, h, vip0)
		tl1.watch(t, h, vip1)
	}
	const advert = 200 * time.Millisecond
	conf := func(id string, prio int, members ...int) string {
		inst := []netlab.VRRPInstance{
			{Interface: "eth0", VRID: 71, Version: 3, Priority: prio, AdvertInt: advert, VIPs: []string{vip0.String() + "/24"}},
			{Interface: "eth1", VRID: 72, Version: 3, Priority: prio, AdvertInt: advert, VIPs: []string{vip1.String() + "/24"}},
		}
		top := "vrrp_sync_group G1 {\n    group {\n"
		for _, m := range members {
			top += fmt.Sprintf("        VI_%d\n", m)
		}
		top += "    }\n}\n"
		return renderConf(t, id, top, inst...)
	}
	kb, err := b.StartKeepalived(conf("b", 100, 71, 72))
	if err != nil {
		t.Fatal(err)
	}
	path := lab.Path("a-run.conf")
	p := startRun(t, a, path, conf("a", 150, 71, 72), "--log-level", "debug")
	both := func(want, what string, timeout time.Duration) time.Time {
		t.Helper()
		tl0.waitHolder(t, timeout, want, what+" (eth0 instance)")
		return tl1.waitHolder(t, timeout, want, what+" (eth1 instance)")
	}
	reload := func(c string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
		n := len(regexp.MustCompile(`msg="configuration reloaded"`).FindAllString(p.Log(), -1))
		if err := p.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if err := netlab.WaitFor(10*time.Second, func() (bool, error) {
			return len(regexp.MustCompile(`msg="configuration reloaded"`).FindAllString(p.Log(), -1)) > n, nil
		}); err != nil {
			t.Fatalf("no reload logged: %v\n%s", err, tail(p.Log(), 20))
		}
	}
	moved := func(tl *timeline, since time.Time) bool {
		for _, e := range tl.snapshot() {
			if e.at.After(since) {
				return true
			}
		}
		return false
	}
	both("a", "startup", 10*time.Second)
	mastered := time.Now()

	reload(conf("a", 200, 71, 72))
	for _, vrid := range []int{71, 72} {
		re := regexp.MustCompile(fmt.Sprintf(`msg="configuration applied in place" instance=VI_%d .*changes="priority 150 -> 200"`, vrid))
		if !re.MatchString(p.Log()) {
			t.Errorf("VI_%d: the in-place priority change is not logged:\n%s", vrid, tail(p.Log(), 20))
		}
	}
	time.Sleep(5 * advert)
	if moved(tl0, mastered) || moved(tl1, mastered) {
		t.Fatalf("an address moved on a priority-only reload of the group:\neth0:\n%s\neth1:\n%s", tl0.dump(), tl1.dump())
	}
	// The group still acts as one.
	if err := a.LinkDown("eth1"); err != nil {
		t.Fatal(err)
	}
	both("b", "after the reload, a's eth1 down: its group goes to FAULT", 5*time.Second)
	if err := a.LinkUp("eth1"); err != nil {
		t.Fatal(err)
	}
	both("a", "a's eth1 up again: a takes both back", 10*time.Second)

	// VI_72 leaves the group, on both nodes (keepalived first: its group
	// would otherwise keep its eth1 instance Backup while its eth0 one
	// hears a): a's members restart.
	if err := os.WriteFile(kb.ConfigPath, []byte(conf("b", 100, 71)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := kb.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := kb.WaitLog(10*time.Second, "Reload complete"); err != nil {
		t.Fatalf("keepalived did not reload: %v", err)
	}
	reload(conf("a", 200, 71))
	if !regexp.MustCompile(`restart_for=.*vrrp_sync_group`).MatchString(p.Log()) {
		t.Errorf("the members whose group changed did not restart:\n%s", tail(p.Log(), 20))
	}
	both("a", "after the members' restart", 10*time.Second)
	settled := time.Now()
	if err := a.LinkDown("eth1"); err != nil {
		t.Fatal(err)
	}
	tl1.waitHolder(t, 5*time.Second, "b", "a's eth1 down: the eth1 instance, out of the group, moves")
	time.Sleep(router.MasterDownInterval(3, 100, advert) + 5*advert)
	if moved(tl0, settled) {
		t.Errorf("the eth0 instance followed the eth1 instance out of the group:\n%s", tl0.dump())
	}
	if err := a.LinkUp("eth1"); err != nil {
		t.Fatal(err)
	}
	both("a", "a's eth1 up again", 10*time.Second)

	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(10 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	mdi := router.MasterDownInterval(3, 100, advert)
	for i, tl := range []*timeline{tl0, tl1} {
		for _, o := range overlaps(tl.snapshot(), time.Now()) {
			if d := o[1].Sub(o[0]); d > mdi {
				t.Errorf("VIP %d held by both for %v (> Master_Down_Interval %v)\n%s", i, d, mdi, tl.dump())
			}
		}
	}
}
