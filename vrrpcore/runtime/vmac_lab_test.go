package runtime

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
)

// TestLabUseVMAC: with use_vmac the Master puts its addresses on a macvlan
// named as keepalived names it (vrrp.VRID) with the virtual
// router MAC (00:00:5e:00:01:VRID, 00:00:5e:00:02:VRID) and sends its
// adverts from it: the peer's neighbour table and the adverts' source
// show the virtual MAC. keepalived as the backup, with the same
// configuration, creates the same interfaces and stays BACKUP. On exit
// the macvlans are gone and the base interface's ARP sysctls restored.
func TestLabUseVMAC(t *testing.T) {
	lab := netlabtest.New(t, "keepalived", "tcpdump")
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	vip4, vip6 := netip.MustParseAddr("198.51.100.140"), netip.MustParseAddr("2001:db8::140")
	conf := func(id string, prio int) netlab.KeepalivedConfig {
		return netlab.KeepalivedConfig{RouterID: id, Instances: []netlab.VRRPInstance{
			{Interface: "eth0", VRID: 81, Version: 3, Priority: prio, AdvertInt: 100 * time.Millisecond, VIPs: []string{"198.51.100.140/24"}, Extra: []string{"use_vmac"}},
			{Interface: "eth0", VRID: 82, Version: 3, Priority: prio, AdvertInt: 100 * time.Millisecond, VIPs: []string{"2001:db8::140/64"}, Extra: []string{"use_vmac"}},
		}}
	}
	k, err := b.StartKeepalivedConfig(conf("b", 100))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := startDaemon(t, a, render(t, conf("a", 150)))
	for _, name := range []string{"VI_81", "VI_82"} {
		if err := netlab.WaitFor(5*time.Second, func() (bool, error) { return instanceState(d, name) == router.Master, nil }); err != nil {
			t.Fatalf("%s never became Master", name)
		}
	}
	waitHolders(t, lab, vip4, 5*time.Second, a)
	waitHolders(t, lab, vip6, 5*time.Second, a)
	for _, name := range []string{"VI_81", "VI_82"} {
		if err := k.WaitState(5*time.Second, name, "BACKUP"); err != nil {
			t.Fatal(err)
		}
	}

	for _, c := range []struct {
		link, mac string
		vip       netip.Addr
	}{
		{"vrrp.81", "00:00:5e:00:01:51", vip4},
		{"vrrp.82", "00:00:5e:00:02:52", vip6},
	} {
		out, err := a.Run("ip", "-d", "addr", "show", "dev", c.link)
		if err != nil || !strings.Contains(out, "macvlan") || !strings.Contains(out, c.mac) || !strings.Contains(out, c.vip.String()) {
			t.Errorf("a: %s: %v\n%s\nwant a macvlan with MAC %s holding %v", c.link, err, out, c.mac, c.vip)
		}
		if out, err := b.Run("ip", "-d", "link", "show", "dev", c.link); err != nil || !strings.Contains(out, "macvlan") {
			t.Errorf("keepalived on b has no macvlan %s (names differ?): %v\n%s", c.link, err, out)
		}
		if err := b.Ping(c.vip, 3*time.Second); err != nil {
			t.Errorf("ping %v from b: %v", c.vip, err)
			continue
		}
		out, _ = b.Run("ip", "neigh", "show", c.vip.String())
		if !strings.Contains(out, c.mac) {
			t.Errorf("b's neighbour entry for %v: %q, want lladdr %s", c.vip, out, c.mac)
		}
	}
	if t.Failed() {
		for _, h := range []*netlab.Host{a, b} {
			out, _ := h.Run("ip", "-d", "link")
			out2, _ := h.Run("ip", "neigh")
			out3, _ := h.Run("ip", "addr")
			t.Logf("%s:\n%s\n%s\n%s", h.Name(), out, out2, out3)
		}
	}
	for filter, mac := range map[string]string{"vrrp": "00:00:5e:00:01:51 >", "ip6 proto 112": "00:00:5e:00:02:52 >"} {
		out, err := b.Run("timeout", "5", "tcpdump", "-n", "-e", "-c", "2", "-i", "eth0", filter)
		if err != nil || strings.Count(out, mac) != 2 {
			t.Errorf("adverts (%s) seen on b do not come from the virtual MAC %s: %v\n%s", filter, mac, err, out)
		}
	}
	if out, _ := a.Run("sysctl", "-n", "net.ipv4.conf.eth0.arp_ignore"); strings.TrimSpace(out) != "1" {
		t.Errorf("a: eth0 arp_ignore %q while use_vmac runs, want 1", out)
	}

	d.Stop()
	waitHolders(t, lab, vip4, 5*time.Second, b)
	for _, link := range []string{"vrrp.81", "vrrp.82"} {
		if out, err := a.Run("ip", "link", "show", "dev", link); err == nil {
			t.Errorf("a: %s left behind:\n%s", link, out)
		}
	}
	if out, _ := a.Run("sysctl", "-n", "net.ipv4.conf.eth0.arp_ignore"); strings.TrimSpace(out) != "0" {
		t.Errorf("a: eth0 arp_ignore %q after exit, want 0 restored", out)
	}
}
