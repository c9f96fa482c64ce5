package hostfacts

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
)

func TestGatherLab(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t, "keepalived", "iptables-legacy", "nft")
	_, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	k, err := b.StartKeepalivedConfig(netlab.KeepalivedConfig{RouterID: "b", Instances: []netlab.VRRPInstance{
		{Interface: "eth0", VRID: 51, Priority: 100, VIPs: []string{"198.51.100.100/24"}},
		{Interface: "eth0", VRID: 52, Priority: 100, VIPs: []string{"2001:db8::100/64"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.WaitState(10*time.Second, "VI_51", "BACKUP"); err != nil {
		t.Fatal(err)
	}
	// Strict rp_filter; 203.0.113.5 has no route back.
	for _, key := range []string{"net/ipv4/conf/all/rp_filter", "net/ipv4/conf/eth0/rp_filter"} {
		if err := b.Sysctl(key, "1"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.IptablesLegacy("-t", "raw", "-A", "PREROUTING", "-p", "112", "-j", "ACCEPT"); err != nil {
		t.Fatal(err)
	}
	if err := b.NftScript("table inet vdtest { chain input { type filter hook input priority 0; }; }"); err != nil {
		t.Fatal(err)
	}
	peer := netip.MustParsePrefix(netlab.LANAddr4(1)).Addr()
	stranger := netip.MustParseAddr("203.0.113.5")
	var f *Facts
	if err := b.Do(func() (err error) {
		f, err = Gather("eth0", Options{Senders: []netip.Addr{peer, stranger}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(f.Problems) > 0 {
		t.Errorf("problems: %v", f.Problems)
	}
	ifc := f.Interface
	if ifc.Name != "eth0" || !ifc.Up || !ifc.LowerUp || !ifc.Multicast || ifc.Promisc || ifc.MTU != 1500 {
		t.Errorf("interface %+v", ifc)
	}
	if !slices.Contains(ifc.Addrs, netip.MustParsePrefix(netlab.LANAddr4(2))) {
		t.Errorf("addresses %v lack %s", ifc.Addrs, netlab.LANAddr4(2))
	}
	if !f.JoinedVRRP4 || !f.JoinedVRRP6 {
		t.Errorf("keepalived's groups not seen: %+v", f.Memberships)
	}
	if f.RPFilter != (RPFilter{All: 1, Default: f.RPFilter.Default, Interface: 1, Effective: 1}) || Mode(f.RPFilter.Effective) != "strict" {
		t.Errorf("rp_filter %+v", f.RPFilter)
	}
	if len(f.Senders) != 2 {
		t.Fatalf("senders %+v", f.Senders)
	}
	if s := f.Senders[0]; !s.Accepted || s.RouteBack != "eth0" || s.RPFilterDrop || !s.ReversePathOK {
		t.Errorf("peer: %+v", s)
	}
	if s := f.Senders[1]; s.Accepted || !s.RPFilterDrop || s.RouteBack != "" || s.ReversePathOK {
		t.Errorf("stranger: %+v", s)
	}
	if !slices.Contains(f.Tables.Legacy4, "raw") || !slices.Contains(f.Tables.Nft, "inet vdtest") || !f.Tables.LegacyBesideNft() {
		t.Errorf("tables %+v", f.Tables)
	}
	var mine []KeepalivedProcess
	for _, p := range f.Keepalived {
		if p.SameNetns && p.SameNetnsKnown {
			mine = append(mine, p)
		}
	}
	if len(mine) < 2 {
		t.Fatalf("keepalived processes in b: %+v", mine)
	}
	for _, p := range mine {
		if p.Config != k.ConfigPath {
			t.Errorf("keepalived %d reads %q, want %q", p.PID, p.Config, k.ConfigPath)
		}
		if p.Parent != (p.PID == k.PID()) {
			t.Errorf("keepalived %d: parent %v (started as %d)", p.PID, p.Parent, k.PID())
		}
	}
	// Loose rp_filter accepts any sender with a route; the stranger has none.
	if err := b.Sysctl("net/ipv4/conf/all/rp_filter", "2"); err != nil {
		t.Fatal(err)
	}
	if err := b.Sysctl("net/ipv4/conf/eth0/rp_filter", "0"); err != nil {
		t.Fatal(err)
	}
	if err := b.Do(func() (err error) {
		f, err = Gather("eth0", Options{Senders: []netip.Addr{stranger}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if s := f.Senders[0]; f.RPFilter.Effective != 2 || s.Accepted || s.ReversePathOK || !s.RPFilterDrop {
		t.Errorf("loose: %+v %+v", f.RPFilter, s)
	}
	// With a route back through another interface, strict refuses and
	// loose accepts.
	if _, err := b.Run("ip", "link", "add", "other0", "type", "veth", "peer", "name", "other1"); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"link", "set", "other0", "up"}, {"link", "set", "other1", "up"}, {"addr", "add", "203.0.113.1/24", "dev", "other0"}} {
		if _, err := b.Run("ip", cmd...); err != nil {
			t.Fatal(err)
		}
	}
	for _, mode := range []string{"1", "2"} {
		if err := b.Sysctl("net/ipv4/conf/all/rp_filter", mode); err != nil {
			t.Fatal(err)
		}
		if err := b.Do(func() (err error) {
			f, err = Gather("eth0", Options{Senders: []netip.Addr{stranger}})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		s := f.Senders[0]
		if s.RouteBack != "other0" || s.Accepted != (mode == "2") || s.RPFilterDrop != (mode == "1") {
			t.Errorf("rp_filter %s, route back through other0: %+v", mode, s)
		}
	}
	if err := b.Do(func() error { _, err := Gather("nosuch0", Options{}); return err }); err == nil {
		t.Error("missing interface accepted")
	}
}
