package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
)

// TestInteropSyncGroup: a vrrp_sync_group of two instances on two links
// (eth0 and eth1 between the same two hosts). When the Master's eth1 goes
// down, its eth1 instance goes to FAULT and the group takes the eth0
// instance along: the backup holds both addresses, the old Master none.
// Back up, the higher priority router takes both back. The group's notify
// script hears GROUP transitions. Run vrrpdoctor/vrrpdoctor and against
// keepalived in both roles.
func TestInteropSyncGroup(t *testing.T) {
	t.Parallel()
	for _, roles := range [][2]string{{"vd", "vd"}, {"vd", "ka"}, {"ka", "vd"}} {
		t.Run(roles[0]+"-"+roles[1], func(t *testing.T) {
			t.Parallel()
			runSyncGroup(t, roles[0], roles[1])
		})
	}
}

// newTwoLinkPair builds hosts a and b linked on eth0 (198.51.100.0/24) and
// on eth1 (203.0.113.1 and .2/24). eth1 goes through a switch: a's link
// going down must not take b's carrier with it, as a veth pair would.
func newTwoLinkPair(t *testing.T) (lab *netlab.Lab, a, b *netlab.Host) {
	t.Helper()
	lab = netlabtest.New(t, "keepalived")
	vrrpdoctor(t)
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	sw, err := lab.AddSwitch("sw1")
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range []*netlab.Host{a, b} {
		if err := sw.Attach(h, "eth1"); err != nil {
			t.Fatal(err)
		}
		if err := h.AddAddr("eth1", fmt.Sprintf("203.0.113.%d/24", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	return lab, a, b
}

func runSyncGroup(t *testing.T, highImpl, lowImpl string) {
	_, a, b := newTwoLinkPair(t)
	vip0, vip1 := netip.MustParseAddr("198.51.100.110"), netip.MustParseAddr("203.0.113.110")
	tl0, tl1 := &timeline{}, &timeline{}
	for _, h := range []*netlab.Host{a, b} {
		tl0.watch(t, h, vip0)
		tl1.watch(t, h, vip1)
	}
	dir := t.TempDir()
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const advert = 200 * time.Millisecond
	conf := func(id string, prio int) (string, string) {
		events := filepath.Join(dir, id+"-events")
		notify := filepath.Join(dir, id+"-notify.sh")
		if err := os.WriteFile(notify, []byte("#!/bin/sh\necho \"$1 $2 $3 $4\" >> "+events+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		stop := filepath.Join(dir, id+"-stop.sh")
		if err := os.WriteFile(stop, []byte("#!/bin/sh\necho group notify_stop >> "+events+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		inst := []netlab.VRRPInstance{
			{Interface: "eth0", VRID: 61, Version: 3, Priority: prio, AdvertInt: advert, VIPs: []string{"198.51.100.110/24"}},
			{Interface: "eth1", VRID: 62, Version: 3, Priority: prio, AdvertInt: advert, VIPs: []string{"203.0.113.110/24"}},
		}
		top := fmt.Sprintf("vrrp_sync_group G1 {\n    group {\n        VI_61\n        VI_62\n    }\n    notify %q\n    notify_stop %q\n}\n", notify, stop)
		return renderConf(t, id, top, inst...), events
	}
	confA, eventsA := conf("a", 150)
	confB, eventsB := conf("b", 100)
	na := &node{t: t, h: a, impl: highImpl, priority: 150, conf: confA}
	nb := &node{t: t, h: b, impl: lowImpl, priority: 100, conf: confB}
	na.start()
	nb.start()
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range []*node{na, nb} {
				t.Logf("%s log:\n%s", n, tail(n.proc.Log(), 60))
			}
		}
	})
	both := func(want, what string, timeout time.Duration) {
		t.Helper()
		tl0.waitHolder(t, timeout, want, what+" (eth0 instance)")
		tl1.waitHolder(t, timeout, want, what+" (eth1 instance)")
	}
	both("a", "startup", 10*time.Second)

	if err := a.LinkDown("eth1"); err != nil {
		t.Fatal(err)
	}
	both("b", "a's eth1 down: its group goes to FAULT", 5*time.Second)
	if err := a.LinkUp("eth1"); err != nil {
		t.Fatal(err)
	}
	both("a", "a's eth1 up again: a takes both back", 10*time.Second)
	na.stop()
	both("b", "a stopped", 5*time.Second)
	nb.stop()

	mdi := router.MasterDownInterval(3, 100, advert)
	for i, tl := range []*timeline{tl0, tl1} {
		for _, o := range overlaps(tl.snapshot(), time.Now()) {
			if d := o[1].Sub(o[0]); d > mdi {
				t.Errorf("VIP %d held by both for %v (> Master_Down_Interval %v)\n%s", i, d, mdi, tl.dump())
			}
		}
	}
	// The group's own notify script: vrrpdoctor's must have run it.
	for _, c := range []struct {
		n      *node
		events string
		want   []string
	}{
		{na, eventsA, []string{"GROUP G1 MASTER 0", "GROUP G1 FAULT 0", "GROUP G1 MASTER 0", "group notify_stop"}},
		{nb, eventsB, []string{"GROUP G1 BACKUP 0", "GROUP G1 MASTER 0", "GROUP G1 BACKUP 0", "group notify_stop"}},
	} {
		if c.n.impl != "vd" {
			continue
		}
		got, _ := os.ReadFile(c.events)
		if !inOrder(string(got), c.want) || strings.Contains(string(got), "GROUP G1 STOP") {
			t.Errorf("%s: group notify saw:\n%s\nwant in order: %q, and no STOP for the group's generic notify", c.n, got, c.want)
		}
	}
	if highImpl == "ka" || lowImpl == "ka" {
		for _, n := range []*node{na, nb} {
			if n.impl != "ka" {
				continue
			}
			for _, bad := range []string{"invalid", "mismatch", "bogus", "checksum"} {
				if strings.Contains(strings.ToLower(n.proc.Log()), bad) {
					t.Errorf("keepalived on %s logged %q:\n%s", n.h.Name(), bad, tail(n.proc.Log(), 40))
				}
			}
		}
	}
}

// inOrder reports whether the lines of s contain want, in that order
// (other lines may come between).
func inOrder(s string, want []string) bool {
	i := 0
	for _, l := range strings.Split(s, "\n") {
		if i < len(want) && strings.Contains(l, want[i]) {
			i++
		}
	}
	return i == len(want)
}
