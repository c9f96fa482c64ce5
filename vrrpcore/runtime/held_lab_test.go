package runtime

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
)

// TestLabHeldAtStart: the instances starting together share one dump of
// each interface and family, taken when first asked, and it answers as
// the host did then.
func TestLabHeldAtStart(t *testing.T) {
	lab := netlabtest.New(t)
	a, _, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"203.0.113.1/32", "203.0.113.2/32", "2001:db8::99/128"} {
		if err := a.AddAddr("eth0", c); err != nil {
			t.Fatal(err)
		}
	}
	var h *netlink.Handle
	if err := a.Do(func() (err error) { h, err = netlink.NewHandle(); return err }); err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	host := netHost{h: h}
	held := newHeldAtStart(host)
	ask := func(addr string, want bool) {
		t.Helper()
		got, err := held.has("eth0", netip.MustParseAddr(addr))
		if err != nil || got != want {
			t.Errorf("has(eth0, %s) = %v, %v; want %v", addr, got, err, want)
		}
	}
	ask("203.0.113.1", true)
	ask("2001:db8::99", true)
	for i := 3; i < 60; i++ {
		ask(fmt.Sprintf("203.0.113.%d", i), false)
	}
	// Added after the dump: the host has it, the snapshot does not (it
	// would not have been left by a previous run).
	if err := a.AddAddr("eth0", "203.0.113.3/32"); err != nil {
		t.Fatal(err)
	}
	if now, err := host.hasAddr("eth0", netip.MustParseAddr("203.0.113.3")); err != nil || !now {
		t.Fatalf("host.hasAddr after adding: %v, %v", now, err)
	}
	ask("203.0.113.3", false)
	ask("203.0.113.2", true)
	if _, err := held.has("nosuch0", netip.MustParseAddr("203.0.113.1")); err == nil {
		t.Error("has on a missing interface: no error")
	}
}
