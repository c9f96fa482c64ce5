package runtime

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/keepalived"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
)

// planIn plans conf against lab host a of a fresh Pair, after setup.
func planIn(t *testing.T, conf string, setup ...func(a *netlab.Host) error) ([]*plan, map[string]*scriptPlan, []keepalived.Warning, error) {
	t.Helper()
	lab := netlabtest.New(t)
	a, _, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range setup {
		if err := f(a); err != nil {
			t.Fatal(err)
		}
	}
	var h *netlink.Handle
	if err := a.Do(func() error {
		var err error
		h, err = netlink.NewHandle()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	cfg, err := keepalived.Parse("test.conf", []byte(conf))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return makePlans(cfg, netHost{h: h})
}

// TestPlanKeepalivedDefaults checks the mapping of a classic keepalived
// instance onto the state machine: keepalived's defaults where the RFC
// differs, PASS authentication, the primary address as source.
func TestPlanKeepalivedDefaults(t *testing.T) {
	plans, _, _, err := planIn(t, `
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass 1234
    }
    virtual_ipaddress {
        198.51.100.100/24 dev eth0 label eth0:vip
        198.51.100.101
    }
    virtual_ipaddress_excluded {
        2001:db8::100/64
    }
}
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(plans) != 1 {
		t.Fatalf("%d plans", len(plans))
	}
	p := plans[0]
	rc := p.rc
	want := router.Config{
		VRID: 51, Version: 2, Family: 4, Priority: 150, AdvertInterval: time.Second,
		Accept: true, Interface: "eth0", StartAsMaster: true, DownTimerAdverts: 3,
		DiscardAddrMismatch: true, AcceptAnyUnicastSource: true,
		VIPs:        []netip.Addr{netip.MustParseAddr("198.51.100.100"), netip.MustParseAddr("198.51.100.101")},
		PrimaryAddr: netip.MustParseAddr("198.51.100.1"),
		AuthType:    vrrpcore.AuthSimple,
		AuthData:    [8]byte{'1', '2', '3', '4'},
		GARP:        router.GARPConfig{MasterRepeat: 5, MasterDelay: 5 * time.Second, MasterRefreshRepeat: 1, LowerPrioRepeat: 5, LowerPrioDelay: 5 * time.Second},
	}
	if rc.VRID != want.VRID || rc.Version != want.Version || rc.Family != want.Family || rc.Priority != want.Priority ||
		rc.AdvertInterval != want.AdvertInterval || rc.Accept != want.Accept || rc.Interface != want.Interface ||
		rc.StartAsMaster != want.StartAsMaster || !rc.DiscardAddrMismatch || !rc.AcceptAnyUnicastSource ||
		rc.PrimaryAddr != want.PrimaryAddr || rc.AuthType != want.AuthType || rc.AuthData != want.AuthData ||
		rc.GARP.MasterRepeat != 5 || rc.GARP.MasterDelay != 5*time.Second {
		t.Errorf("router config\n got %+v\nwant %+v", rc, want)
	}
	if len(rc.VIPs) != 2 || rc.VIPs[0] != want.VIPs[0] || rc.VIPs[1] != want.VIPs[1] {
		t.Errorf("VIPs %v, want %v", rc.VIPs, want.VIPs)
	}
	if len(rc.ExcludedVIPs) != 1 || rc.ExcludedVIPs[0] != netip.MustParseAddr("2001:db8::100") {
		t.Errorf("excluded %v: the IPv6 excluded address goes to the machine with the IPv4 instance", rc.ExcludedVIPs)
	}
	if p.group != vrrpcore.GroupIPv4 {
		t.Errorf("group %v", p.group)
	}
	v := p.vips[netip.MustParseAddr("198.51.100.100")]
	a, err := v.netlinkAddr()
	if err != nil {
		t.Fatal(err)
	}
	if ones, _ := a.Mask.Size(); ones != 24 || a.Label != "eth0:vip" || v.dev != "eth0" {
		t.Errorf("VIP %v label %q dev %s, want /24 eth0:vip eth0", a.IPNet, a.Label, v.dev)
	}
	if ones, _ := p.vips[netip.MustParseAddr("198.51.100.101")].Prefix, 0; ones.Bits() != 32 {
		t.Errorf("a VIP without prefix is /%d, want /32", ones.Bits())
	}
	v6, _ := p.vips[netip.MustParseAddr("2001:db8::100")].netlinkAddr()
	if v6.Flags&0x02 == 0 { // IFA_F_NODAD
		t.Errorf("IPv6 VIP flags %#x lack nodad", v6.Flags)
	}
	if len(p.tracks) != 1 || p.tracks[0].iface != "eth0" || p.tracks[0].weight != 0 {
		t.Errorf("tracks %+v, want the instance's interface with weight 0", p.tracks)
	}
}

// TestPlanSourceNotAVIP: the source address planned for an instance is
// never a virtual address, its own or another instance's, even when the
// interface lists it before its own (a Master's link-local VIP, or one a
// crashed run left).
func TestPlanSourceNotAVIP(t *testing.T) {
	vip := netip.MustParseAddr("fe80::60")
	plans, _, _, err := planIn(t, `
vrrp_instance VA {
    interface eth0
    virtual_router_id 60
    virtual_ipaddress {
        fe80::60/64
        2001:db8::60/64
    }
}
vrrp_instance VB {
    interface eth0
    virtual_router_id 61
    virtual_ipaddress {
        2001:db8::61/64
    }
}
vrrp_instance V4 {
    interface eth0
    virtual_router_id 62
    virtual_ipaddress {
        203.0.113.62/24
    }
}
`, func(a *netlab.Host) error {
		// The host's own addresses go; a VIP comes first.
		if _, err := a.Run("ip", "addr", "flush", "dev", "eth0"); err != nil {
			return err
		}
		for _, c := range []string{"203.0.113.62/24", "198.51.100.1/24", "fe80::1/64", "fe80::60/64"} {
			if err := a.AddAddr("eth0", c); err != nil {
				return err
			}
		}
		addrs, err := a.Addrs()
		if err != nil {
			return err
		}
		// The test proves something only if the VIPs are listed first.
		var first4, first6 netip.Addr
		for _, ad := range addrs {
			if ad.Interface != "eth0" {
				continue
			}
			ip := ad.Prefix.Addr()
			if ip.Is4() && !first4.IsValid() {
				first4 = ip
			}
			if ip.Is6() && !first6.IsValid() {
				first6 = ip
			}
		}
		if first4 != netip.MustParseAddr("203.0.113.62") || first6 != vip {
			return fmt.Errorf("eth0 lists %v and %v first, not the VIPs: the test would prove nothing", first4, first6)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]netip.Addr{"VA": netip.MustParseAddr("fe80::1"), "VB": netip.MustParseAddr("fe80::1"), "V4": netip.MustParseAddr("198.51.100.1")}
	for _, p := range plans {
		if got := p.rc.PrimaryAddr; got != want[p.name] {
			t.Errorf("%s: source %v, want %v (a virtual address is never the source)", p.name, got, want[p.name])
		}
	}
}

func TestPlanIPv6AndUnicast(t *testing.T) {
	plans, _, warnings, err := planIn(t, `
vrrp_instance V6 {
    interface eth0
    virtual_router_id 52
    advert_int 0.5
    virtual_ipaddress {
        2001:db8::52/64
    }
}
vrrp_instance UC {
    interface eth0
    virtual_router_id 53
    version 3
    unicast_src_ip 198.51.100.1
    unicast_peer {
        198.51.100.2
    }
    no_accept
    virtual_ipaddress {
        198.51.100.53
    }
}
`)
	if err != nil {
		t.Fatal(err)
	}
	v6, uc := plans[0], plans[1]
	if v6.rc.Version != 3 || v6.family != 6 || !v6.rc.PrimaryAddr.IsLinkLocalUnicast() || v6.group != vrrpcore.GroupIPv6 || v6.rc.AdvertInterval != 500*time.Millisecond {
		t.Errorf("IPv6 instance: version %d family %d source %v group %v interval %v", v6.rc.Version, v6.family, v6.rc.PrimaryAddr, v6.group, v6.rc.AdvertInterval)
	}
	if uc.group.IsValid() || len(uc.rc.UnicastPeers) != 1 || uc.rc.UnicastPeers[0] != netip.MustParseAddr("198.51.100.2") || uc.rc.PrimaryAddr != netip.MustParseAddr("198.51.100.1") {
		t.Errorf("unicast instance: group %v peers %v source %v", uc.group, uc.rc.UnicastPeers, uc.rc.PrimaryAddr)
	}
	if !uc.noAccept || v6.noAccept || uc.rc.Accept {
		t.Errorf("no_accept: unicast instance %v (Accept %v), IPv6 instance %v", uc.noAccept, uc.rc.Accept, v6.noAccept)
	}
	for _, w := range warnings {
		if strings.Contains(w.Msg, "no_accept") {
			t.Errorf("no_accept is enforced now, yet warned: %s", w.Msg)
		}
	}
}

func TestPlanErrors(t *testing.T) {
	_, _, _, err := planIn(t, `
vrrp_instance A {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        198.51.100.100
    }
}
vrrp_instance C {
    interface eth0
    virtual_router_id 54
    authentication {
        auth_type AH
        auth_pass secret
    }
    virtual_ipaddress {
        198.51.100.102 dev vd-missing0
    }
}
vrrp_instance D {
    interface vd-missing1
    virtual_router_id 55
    virtual_ipaddress {
        198.51.100.103
    }
}
`)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"test.conf:12:5: vrrp_instance C: auth_type AH is not supported",
		"test.conf:17:9: virtual address 198.51.100.102/32: interface vd-missing0",
		"vrrp_instance D: interface vd-missing1",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
}
