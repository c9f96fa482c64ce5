package e2e

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
)

// TestInteropOldUnicastChecksum: keepalived before 1.3.6 (CentOS 7 ships
// 1.3.5) summed VRRPv3 unicast adverts over a pseudo-header to 224.0.0.18;
// keepalived since sends that checksum with old_unicast_checksum, and
// without it switches to it when a peer sends it. Real keepalived 2.2
// (built with OLD_CHKSUM_COMPAT, as Debian's is) and vrrpdoctor run, VRRPv3
// unicast over IPv4, priority 150 on a and 100 on b:
//
//   - ka-old/vd-detect: keepalived sends the old checksum; vrrpdoctor
//     (option not set) accepts it, switches to it, stays Backup, and after
//     a hand-over its adverts are accepted by keepalived, which in this
//     mode verifies the old checksum only.
//   - vd-old/ka-detect: vrrpdoctor sends the old checksum
//     (old_unicast_checksum); keepalived switches to it and stays Backup.
//   - ka-old/vd-never: with old_unicast_checksum never vrrpdoctor refuses
//     keepalived's adverts and both hold the address: the checksum really
//     is the old one, and refusing it is a split brain.
func TestInteropOldUnicastChecksum(t *testing.T) {
	t.Parallel()
	for _, sc := range []struct {
		name, high, low    string
		highOpt, lowOpt    string // old_unicast_checksum line, "" for none
		splitBrain, handed bool
	}{
		{name: "ka-old/vd-detect", high: "ka", low: "vd", highOpt: "old_unicast_checksum", handed: true},
		{name: "vd-old/ka-detect", high: "vd", low: "ka", highOpt: "old_unicast_checksum"},
		{name: "ka-old/vd-never", high: "ka", low: "vd", highOpt: "old_unicast_checksum", lowOpt: "old_unicast_checksum never", splitBrain: true},
	} {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			lab := netlabtest.New(t, "keepalived")
			vrrpdoctor(t)
			a, b, err := lab.Pair()
			if err != nil {
				t.Fatal(err)
			}
			addrA := netip.MustParsePrefix(netlab.LANAddr4(1)).Addr().String()
			addrB := netip.MustParsePrefix(netlab.LANAddr4(2)).Addr().String()
			const vipPrefix = "198.51.100.100/24"
			const advert = 200 * time.Millisecond
			vip := netip.MustParsePrefix(vipPrefix).Addr()
			tl := &timeline{}
			tl.watch(t, a, vip)
			tl.watch(t, b, vip)
			mk := func(h *netlab.Host, impl string, prio int, self, peer, opt string) *node {
				in := netlab.VRRPInstance{Interface: "eth0", VRID: 51, Version: 3, Priority: prio, AdvertInt: advert,
					VIPs: []string{vipPrefix}, UnicastSrc: self, UnicastPeers: []string{peer}}
				if opt != "" {
					in.Extra = []string{opt}
				}
				conf, err := netlab.KeepalivedConfig{RouterID: h.Name(), Instances: []netlab.VRRPInstance{in}}.Render()
				if err != nil {
					t.Fatal(err)
				}
				return &node{t: t, h: h, impl: impl, priority: prio, conf: conf}
			}
			high := mk(a, sc.high, 150, addrA, addrB, sc.highOpt)
			low := mk(b, sc.low, 100, addrB, addrA, sc.lowOpt)
			logOnFailure(t, tl, high, low)
			mdiHigh := router.MasterDownInterval(3, 150, advert)
			mdiLow := router.MasterDownInterval(3, 100, advert)
			slack := 500 * time.Millisecond

			// The higher priority router first: the other one hears its
			// adverts before it sends any.
			high.start()
			tl.waitHolder(t, mdiHigh+3*time.Second, a.Name(), "startup")
			low.start()
			if sc.splitBrain {
				if err := netlab.WaitFor(mdiLow+3*time.Second, func() (bool, error) {
					return slices.Equal(holdersOf(tl.snapshot()), []string{a.Name(), b.Name()}), nil
				}); err != nil {
					t.Fatalf("old_unicast_checksum never: b did not take the address too: holders %v\n%s", holdersOf(tl.snapshot()), tl.dump())
				}
				if log := low.proc.Log(); !strings.Contains(log, "reason=checksum") || !strings.Contains(log, "224.0.0.18") {
					t.Errorf("b does not say why it refuses a's adverts:\n%s", tail(log, 20))
				}
				high.stop()
				low.stop()
				return
			}
			time.Sleep(3*mdiLow + slack)
			if got := holdersOf(tl.snapshot()); !slices.Equal(got, []string{a.Name()}) {
				t.Fatalf("holders %v after %v, want only %s\n%s", got, 3*mdiLow+slack, a.Name(), tl.dump())
			}
			for _, o := range overlaps(tl.snapshot(), time.Now()) {
				if d := o[1].Sub(o[0]); d > mdiLow {
					t.Errorf("both routers held the address for %v", d)
				}
			}
			vd, ka := low, high
			if sc.high == "vd" {
				vd, ka = high, low
			}
			if sc.low == "vd" && !strings.Contains(vd.proc.Log(), "kind=old_unicast_checksum") {
				t.Errorf("vrrpdoctor did not log switching to the old checksum:\n%s", tail(vd.proc.Log(), 20))
			}
			if sc.low == "ka" && !strings.Contains(ka.proc.Log(), "Setting unicast VRRPv3 checksum to old version") {
				t.Errorf("keepalived did not switch to the old checksum:\n%s", tail(ka.proc.Log(), 20))
			}
			if sc.handed {
				// vrrpdoctor is Master for a while, then keepalived, which
				// now verifies the old checksum only, returns and
				// preempts: it must accept vrrpdoctor's adverts.
				high.stop()
				tl.waitHolder(t, mdiLow+slack, b.Name(), "SIGTERM of keepalived")
				high.start()
				tl.waitHolder(t, mdiHigh+mdiLow+3*time.Second, a.Name(), "preemption by keepalived")
				time.Sleep(3 * advert)
			}
			high.stop()
			tl.waitHolder(t, mdiLow+slack, b.Name(), "SIGTERM of the Master")
			low.stop()
			for _, p := range ka.procs {
				if i := strings.Index(p.Log(), "Invalid VRRPv3 checksum"); i >= 0 {
					t.Errorf("keepalived refused vrrpdoctor's adverts: %s", lineAt(p.Log(), i))
				}
			}
		})
	}
}
