package netlab_test

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
)

// A keepalived pair whose backup drops VRRP in its INPUT chain: both end up
// holding the VIP, and tcpdump on the backup still sees the master's adverts.
// Tests get the lab from netlabtest.New(t, "keepalived", "tcpdump", "iptables")
// instead, which also skips or fails on missing prerequisites and cleans up.
func Example() {
	lab, err := netlab.New(netlab.Options{})
	if err != nil {
		panic(err)
	}
	defer lab.Close()
	a, b, err := lab.Pair() // eth0: 198.51.100.1/24 and .2/24, 2001:db8::1/64 and ::2/64
	if err != nil {
		panic(err)
	}
	if _, err := b.Iptables("-A", "INPUT", "-d", "224.0.0.18", "-j", "DROP"); err != nil {
		panic(err)
	}
	vip := netip.MustParseAddr("198.51.100.100")
	for i, h := range []*netlab.Host{a, b} {
		cfg := netlab.KeepalivedConfig{RouterID: h.Name(), Instances: []netlab.VRRPInstance{{
			Interface: "eth0", VRID: 51, Priority: 150 - 50*i, AdvertInt: time.Second,
			VIPs: []string{"198.51.100.100/24"},
		}}}
		if _, err := h.StartKeepalivedConfig(cfg); err != nil {
			panic(err)
		}
	}
	err = netlab.WaitFor(15*time.Second, func() (bool, error) {
		holders, err := lab.Holders(vip)
		return slices.Equal(holders, []*netlab.Host{a, b}), err
	})
	if err != nil {
		panic(err)
	}
	c, err := b.StartCapture(netlab.CaptureOptions{Interface: "eth0", Filter: "vrrp"})
	if err != nil {
		panic(err)
	}
	time.Sleep(3 * time.Second) // the capture's length, not a wait for a condition
	if err := c.Stop(); err != nil {
		panic(err)
	}
	fmt.Println("capture:", c.File)
}
