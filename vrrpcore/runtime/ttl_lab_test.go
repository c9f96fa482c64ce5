package runtime

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
)

// TestLabUnicastTTL: unicast_ttl sets the TTL of unicast adverts, and a
// receiver whose unicast_peer line has min_ttl discards adverts arriving
// below it (reason ttl), as keepalived does: with unicast_ttl 200 against
// min_ttl 250 both routers end up Master; with unicast_ttl 252 the lower
// priority one stays Backup.
func TestLabUnicastTTL(t *testing.T) {
	lab := netlabtest.New(t)
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	inst := func(prio int, self, peer string, extra ...string) netlab.VRRPInstance {
		return netlab.VRRPInstance{Interface: "eth0", VRID: 91, Version: 3, Priority: prio, AdvertInt: 100 * time.Millisecond,
			VIPs: []string{"198.51.100.150/24"}, Extra: append(extra, "unicast_src_ip "+self, "unicast_peer { "+peer+" }")}
	}
	vip := netip.MustParseAddr("198.51.100.150")
	_, eb := startDaemonEvents(t, b, render(t, netlab.KeepalivedConfig{RouterID: "b", Instances: []netlab.VRRPInstance{
		inst(100, "198.51.100.2", "198.51.100.1 min_ttl 250")}}))
	eb.wait(t, "b: Master alone", 5*time.Second, func(e Event) bool { return e.Kind == EventStateChange && e.To == router.Master })

	da, _ := startDaemonEvents(t, a, render(t, netlab.KeepalivedConfig{RouterID: "a", Instances: []netlab.VRRPInstance{
		inst(150, "198.51.100.1", "198.51.100.2", "unicast_ttl 200")}}))
	eb.wait(t, "b: a's adverts discarded for their TTL", 5*time.Second, func(e Event) bool {
		return e.Kind == EventAdvertDiscarded && e.Src == netip.MustParseAddr("198.51.100.1") && e.Reason == string(router.DiscardTTL)
	})
	waitHolders(t, lab, vip, 5*time.Second, a, b) // both Master: b never hears a
	if st := instanceState(da, "VI_91"); st != router.Master {
		t.Fatalf("a in %v", st)
	}
	da.Stop()

	da, _ = startDaemonEvents(t, a, render(t, netlab.KeepalivedConfig{RouterID: "a", Instances: []netlab.VRRPInstance{
		inst(150, "198.51.100.1", "198.51.100.2", "unicast_ttl 252")}}))
	waitHolders(t, lab, vip, 5*time.Second, a)
	if st := instanceState(da, "VI_91"); st != router.Master {
		t.Fatalf("a in %v", st)
	}
}
