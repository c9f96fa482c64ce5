package runtime

import (
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/keepalived"
)

// TestReloadDiff classifies configuration changes: what a running
// instance takes in place, and what restarts it (its socket, macvlan,
// accept-mode table, sync group, or its state machine's identity change).
func TestReloadDiff(t *testing.T) {
	lab := netlabtest.New(t)
	a, _, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
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
	const base = `
vrrp_script chk { script "/bin/true" interval 1 }
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        198.51.100.100/24
    }
    track_script {
        chk weight -20
    }
}
`
	planOf := func(conf string) (*plan, map[string]*scriptPlan) {
		t.Helper()
		cfg, err := keepalived.Parse("test.conf", []byte(conf))
		if err != nil {
			t.Fatalf("parse: %v\n%s", err, conf)
		}
		plans, scripts, _, err := makePlans(cfg, netHost{h: h})
		if err != nil {
			t.Fatalf("plan: %v\n%s", err, conf)
		}
		return plans[0], scripts
	}
	old, oldScripts := planOf(base)
	for _, tc := range []struct {
		name, from, to string
		restart        bool
		want           string // in the changes listed
	}{
		{"priority", "priority 150", "priority 200", false, "priority 150 -> 200"},
		{"advert_int", "advert_int 1", "advert_int 2", false, "advert_int 1s -> 2s"},
		{"nopreempt", "advert_int 1", "advert_int 1\n    nopreempt", false, "nopreempt false -> true"},
		{"preempt_delay", "advert_int 1", "advert_int 1\n    preempt_delay 5", false, "preempt_delay 0s -> 5s"},
		{"vip added", "198.51.100.100/24", "198.51.100.100/24\n        198.51.100.101/24", false, "virtual addresses +[198.51.100.101] -[]"},
		{"vip label", "198.51.100.100/24", "198.51.100.100/24 label eth0:v", false, "virtual address settings [198.51.100.100]"},
		{"track weight", "chk weight -20", "chk weight -30", false, "tracked objects"},
		{"track script", `"/bin/true"`, `"/bin/false"`, false, "tracked objects"},
		{"notify", "advert_int 1", "advert_int 1\n    notify_master /bin/true", false, "notify scripts"},
		{"garp", "advert_int 1", "advert_int 1\n    garp_master_refresh 10", false, "garp"},
		{"unicast source", "advert_int 1", "advert_int 1\n    unicast_src_ip 198.51.100.1\n    unicast_peer {\n        198.51.100.2\n    }", true, "multicast group"},
		{"vrid", "virtual_router_id 51", "virtual_router_id 52", true, "VRID 51 -> 52"},
		{"interface", "interface eth0", "interface lo", true, "interface eth0 -> lo"},
		{"owner", "priority 150", "priority 255", true, "address owner"},
		{"use_vmac", "advert_int 1", "advert_int 1\n    use_vmac", true, "use_vmac"},
		{"accept", "advert_int 1", "advert_int 1\n    no_accept", true, "accept mode"},
		{"group", "advert_int 1", "advert_int 1\n    mcast_dst_ip 224.0.0.19", true, "multicast group"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(base, tc.from) {
				t.Fatalf("%q is not in the base configuration", tc.from)
			}
			np, newScripts := planOf(strings.Replace(base, tc.from, tc.to, 1))
			inPlace, restart := old.reloadDiff(np, oldScripts, newScripts)
			if got := len(restart) > 0; got != tc.restart {
				t.Fatalf("restart %v (%q), want %v; in place %q", got, restart, tc.restart, inPlace)
			}
			list := inPlace
			if tc.restart {
				list = restart
			}
			if !strings.Contains(strings.Join(list, "; "), tc.want) {
				t.Errorf("changes %q, want one with %q", list, tc.want)
			}
		})
	}
	same, sameScripts := planOf(base)
	if inPlace, restart := old.reloadDiff(same, oldScripts, sameScripts); len(inPlace)+len(restart) != 0 {
		t.Errorf("unchanged configuration: in place %q, restart %q", inPlace, restart)
	}

	// Unicast to unicast: the socket stays, peers and source change in
	// place.
	uni := strings.Replace(base, "advert_int 1", "advert_int 1\n    unicast_src_ip 198.51.100.1\n    unicast_peer {\n        198.51.100.2\n    }", 1)
	up, us := planOf(uni)
	np, ns := planOf(strings.Replace(strings.Replace(uni, "198.51.100.2\n", "198.51.100.3\n", 1), "unicast_src_ip 198.51.100.1", "unicast_src_ip 198.51.100.9", 1))
	inPlace, restart := up.reloadDiff(np, us, ns)
	if len(restart) > 0 || !strings.Contains(strings.Join(inPlace, "; "), "unicast peers [198.51.100.2] -> [198.51.100.3]") ||
		!strings.Contains(strings.Join(inPlace, "; "), "source address 198.51.100.1 -> 198.51.100.9") {
		t.Errorf("unicast peers and source: in place %q, restart %q", inPlace, restart)
	}
}
