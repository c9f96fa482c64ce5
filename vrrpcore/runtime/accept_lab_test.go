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

// TestLabAcceptMode: a non-owner Master without Accept_Mode (no_accept)
// drops packets to its virtual addresses (RFC 5798 §6.4.3) through the
// table inet vrrpdoctor: a ping from the peer fails while the address is
// held, IPv4 and IPv6. With accept it succeeds. The table is removed on
// exit and another table is left alone.
func TestLabAcceptMode(t *testing.T) {
	lab := netlabtest.New(t, "nft")
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.NftScript("table inet other {\n chain c { type filter hook input priority 0; policy accept; }\n}\n"); err != nil {
		t.Fatal(err)
	}
	vip4, vip6 := netip.MustParseAddr("198.51.100.130"), netip.MustParseAddr("2001:db8::130")
	conf := func(accept string) string {
		return render(t, netlab.KeepalivedConfig{RouterID: "a", Instances: []netlab.VRRPInstance{
			{Interface: "eth0", VRID: 71, Version: 3, Priority: 150, AdvertInt: 100 * time.Millisecond, VIPs: []string{"198.51.100.130/24"}, Extra: []string{accept}},
			{Interface: "eth0", VRID: 72, Version: 3, Priority: 150, AdvertInt: 100 * time.Millisecond, VIPs: []string{"2001:db8::130/64"}, Extra: []string{accept}},
		}})
	}
	held := func(d *Daemon) {
		t.Helper()
		for _, name := range []string{"VI_71", "VI_72"} {
			if err := netlab.WaitFor(5*time.Second, func() (bool, error) { return instanceState(d, name) == router.Master, nil }); err != nil {
				t.Fatalf("%s never became Master", name)
			}
		}
		waitHolders(t, lab, vip4, 5*time.Second, a)
		waitHolders(t, lab, vip6, 5*time.Second, a)
	}

	d, _ := startDaemon(t, a, conf("no_accept"))
	held(d)
	for _, vip := range []netip.Addr{vip4, vip6} {
		if err := b.Ping(vip, time.Second); err == nil {
			t.Errorf("ping %v answered in no_accept mode", vip)
		}
	}
	out, err := a.Nft("list", "table", "inet", AcceptTable)
	if err != nil || !strings.Contains(out, "198.51.100.130") || !strings.Contains(out, "2001:db8::130") {
		t.Errorf("table inet %s: %v\n%s", AcceptTable, err, out)
	}
	d.Stop()
	out, _ = a.Nft("list", "tables")
	if strings.Contains(out, AcceptTable) || !strings.Contains(out, "table inet other") {
		t.Errorf("after stop, tables:\n%s\nwant inet other and no %s", out, AcceptTable)
	}

	d, _ = startDaemon(t, a, conf("accept"))
	held(d)
	for _, vip := range []netip.Addr{vip4, vip6} {
		if err := b.Ping(vip, 2*time.Second); err != nil {
			t.Errorf("ping %v with accept: %v", vip, err)
		}
	}
	if out, _ := a.Nft("list", "tables"); strings.Contains(out, AcceptTable) {
		t.Errorf("accept mode created the table:\n%s", out)
	}
}
