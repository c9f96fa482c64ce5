package runtime

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/announce"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/keepalived"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
)

// drainAddrEvents reads the queued address events and reports those of
// ip, as "+" (added) or "-" (removed).
func drainAddrEvents(ev <-chan timedAddrUpdate, ip netip.Addr) []string {
	var seen []string
	for {
		select {
		case u, ok := <-ev:
			if !ok {
				return seen
			}
			if got, _ := netip.AddrFromSlice(u.LinkAddress.IP); got.Unmap() == ip {
				if u.NewAddr {
					seen = append(seen, "+")
				} else {
					seen = append(seen, "-")
				}
			}
		default:
			return seen
		}
	}
}

func reloadConf(t *testing.T, d *Daemon, conf string) {
	t.Helper()
	cfg, err := keepalived.Parse("reload.conf", []byte(conf))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, conf)
	}
	if err := d.Reload(cfg); err != nil {
		t.Fatal(err)
	}
}

func status(t *testing.T, d *Daemon, name string) InstanceStatus {
	t.Helper()
	for _, s := range d.Status().Instances {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no instance %s", name)
	return InstanceStatus{}
}

// TestLabReloadInPlace: a Master reloaded with another priority, more
// virtual addresses and another advert_int stays Master through each,
// without its address moving: the peer's Backup sees the new priority in
// its adverts, the new address is added and announced (gratuitous ARP
// seen by the peer), and the peer keeps waiting across the longer
// interval (it learns it from the advert sent at once). Lowered below the
// peer's priority, it stays Master until the peer preempts it.
func TestLabReloadInPlace(t *testing.T) {
	lab := netlabtest.New(t)
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	vip1, vip2 := netip.MustParseAddr("198.51.100.171"), netip.MustParseAddr("198.51.100.172")
	conf := func(host string, prio int, interval time.Duration, vips ...string) string {
		return render(t, netlab.KeepalivedConfig{RouterID: host, Instances: []netlab.VRRPInstance{
			{Interface: "eth0", VRID: 71, Version: 3, Priority: prio, AdvertInt: interval, VIPs: vips},
		}})
	}
	const step = 100 * time.Millisecond
	da, logs := startDaemon(t, a, conf("a", 150, step, "198.51.100.171/24"))
	db, _ := startDaemon(t, b, conf("b", 100, step, "198.51.100.171/24"))
	waitHolders(t, lab, vip1, 5*time.Second, a)
	if err := netlab.WaitFor(5*time.Second, func() (bool, error) { return instanceState(db, "VI_71") == router.Backup, nil }); err != nil {
		t.Fatal("b never became Backup")
	}
	evA, evB := addrEvents(t, a), addrEvents(t, b)
	became := status(t, da, "VI_71").Stats.BecameMaster
	noMove := func(what string) {
		t.Helper()
		if s := status(t, da, "VI_71"); s.State != router.Master || s.Stats.BecameMaster != became {
			t.Errorf("%s: a in %v, became Master %d times (%d before): the instance was restarted", what, s.State, s.Stats.BecameMaster, became)
		}
		if ev := drainAddrEvents(evA, vip1); len(ev) > 0 {
			t.Errorf("%s: %v on a: %v", what, vip1, ev)
		}
		if ev := drainAddrEvents(evB, vip1); len(ev) > 0 {
			t.Errorf("%s: %v on b: %v", what, vip1, ev)
		}
	}

	// Priority 150 -> 200: adverts carry it.
	reloadConf(t, da, conf("a", 200, step, "198.51.100.171/24"))
	if err := netlab.WaitFor(2*time.Second, func() (bool, error) { return status(t, db, "VI_71").MasterPriority == 200, nil }); err != nil {
		t.Errorf("b sees the Master at priority %d, want 200", status(t, db, "VI_71").MasterPriority)
	}
	if s := status(t, da, "VI_71"); s.Priority != 200 || s.Configured != 200 {
		t.Errorf("a's priority %d (configured %d), want 200", s.Priority, s.Configured)
	}
	time.Sleep(5 * step)
	noMove("priority reload")
	if !strings.Contains(logs.String(), `msg="configuration applied in place" instance=VI_71`) ||
		!strings.Contains(logs.String(), "priority 150 -> 200") {
		t.Errorf("the applied change is not logged:\n%s", logs)
	}

	// A second virtual address, on both: added on a and announced.
	var mac net.HardwareAddr
	if err := a.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err == nil {
			mac = ifi.HardwareAddr
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	garp, err := announce.GratuitousARP(mac, vip2)
	if err != nil {
		t.Fatal(err)
	}
	fd := packetSocket(t, b, "eth0")
	reloadConf(t, db, conf("b", 100, step, "198.51.100.171/24", "198.51.100.172/24"))
	reloadConf(t, da, conf("a", 200, step, "198.51.100.171/24", "198.51.100.172/24"))
	waitHolders(t, lab, vip2, 2*time.Second, a)
	if n := countFrames(fd, garp, time.Second); n == 0 {
		t.Errorf("no gratuitous ARP for %v reached b", vip2)
	}
	noMove("address added")
	if s := instanceState(db, "VI_71"); s != router.Backup {
		t.Errorf("b in %v after the address was added, want BACKUP", s)
	}

	// advert_int 100 ms -> 1 s on a only (VRRPv3: b learns it): b's
	// timer for 100 ms adverts would run out in 0.36 s.
	two := []string{"198.51.100.171/24", "198.51.100.172/24"}
	reloadConf(t, da, conf("a", 200, time.Second, two...))
	time.Sleep(4500 * time.Millisecond)
	if s := instanceState(db, "VI_71"); s != router.Backup {
		t.Errorf("b in %v after a's advert_int grew to 1 s, want BACKUP", s)
	}
	noMove("advert_int reload")

	// Priority 200 -> 50, below b's 100: a stays Master until b preempts
	// it (Master_Down_Interval on a's lower adverts: 3 s + skew).
	reloadConf(t, da, conf("a", 50, time.Second, two...))
	lowered := time.Now()
	time.Sleep(500 * time.Millisecond)
	if s := instanceState(da, "VI_71"); s != router.Master {
		t.Errorf("a in %v right after its priority dropped, want MASTER until b preempts", s)
	}
	waitHolders(t, lab, vip1, 8*time.Second, b)
	t.Logf("b preempted a %v after a's priority dropped below b's", time.Since(lowered).Round(10*time.Millisecond))
	if s := instanceState(da, "VI_71"); s != router.Backup {
		t.Errorf("a in %v after b preempted, want BACKUP", s)
	}
}

// TestLabInterfaceRecreatedNewSource: the Master's interface is deleted
// and created again with another IPv4 address. The instance takes the new
// address as the source of its adverts (FAULT while the interface has
// none): its adverts reach the peer again, which steps down and sees the
// new address as the Master's.
func TestLabInterfaceRecreatedNewSource(t *testing.T) {
	lab := netlabtest.New(t)
	hs, sw, err := lab.LAN(2)
	if err != nil {
		t.Fatal(err)
	}
	a, b := hs[0], hs[1]
	vip := netip.MustParseAddr("198.51.100.165")
	inst := func(prio int) netlab.VRRPInstance {
		return netlab.VRRPInstance{Interface: "eth0", VRID: 65, Version: 3, Priority: prio, AdvertInt: 100 * time.Millisecond, VIPs: []string{"198.51.100.165/24"}}
	}
	da, logs := startDaemon(t, a, render(t, netlab.KeepalivedConfig{RouterID: "a", Instances: []netlab.VRRPInstance{inst(150)}}))
	db, _ := startDaemon(t, b, render(t, netlab.KeepalivedConfig{RouterID: "b", Instances: []netlab.VRRPInstance{inst(100)}}))
	waitHolders(t, lab, vip, 5*time.Second, a)

	if _, err := a.Run("ip", "link", "del", "eth0"); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, lab, vip, 3*time.Second, b)
	if err := sw.Attach(a, "eth0"); err != nil {
		t.Fatal(err)
	}
	// No address yet: the instance must not take over.
	time.Sleep(time.Second)
	if s := instanceState(da, "VI_65"); s != router.Fault {
		t.Errorf("a in %v on an interface without an address, want FAULT", s)
	}
	newSrc := netip.MustParsePrefix(netlab.LANAddr4(9)).Addr()
	if err := a.AddAddr("eth0", netlab.LANAddr4(9)); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	waitHolders(t, lab, vip, 5*time.Second, a)
	t.Logf("interface created again with %v: %v back on a after %v", newSrc, vip, time.Since(back).Round(time.Millisecond))
	time.Sleep(time.Second)
	sb := status(t, db, "VI_65")
	if sb.State != router.Backup || sb.Master != newSrc {
		t.Errorf("b in %v with Master %v, want BACKUP under %v: a's adverts do not reach it", sb.State, sb.Master, newSrc)
	}
	if s := status(t, da, "VI_65"); s.LastSendError != "" || s.Master != newSrc {
		t.Errorf("a: Master %v, last send error %q; want %v and none", s.Master, s.LastSendError, newSrc)
	}
	if !strings.Contains(logs.String(), "source address changed") {
		t.Error("the new source address is not logged")
	}
}

// TestLabInterfaceRecreatedNewLinkLocal: the same for VRRPv3 over IPv6,
// the interface created again with a new MAC address and so a new
// link-local address, which the adverts now go from.
func TestLabInterfaceRecreatedNewLinkLocal(t *testing.T) {
	lab := netlabtest.New(t)
	hs, sw, err := lab.LAN(2)
	if err != nil {
		t.Fatal(err)
	}
	a, b := hs[0], hs[1]
	oldLL, err := a.LinkLocal("eth0")
	if err != nil {
		t.Fatal(err)
	}
	vip := netip.MustParseAddr("2001:db8::166")
	inst := func(prio int) netlab.VRRPInstance {
		return netlab.VRRPInstance{Interface: "eth0", VRID: 66, Version: 3, Priority: prio, AdvertInt: 100 * time.Millisecond, VIPs: []string{"2001:db8::166/64"}}
	}
	da, logs := startDaemon(t, a, render(t, netlab.KeepalivedConfig{RouterID: "a", Instances: []netlab.VRRPInstance{inst(150)}}))
	db, _ := startDaemon(t, b, render(t, netlab.KeepalivedConfig{RouterID: "b", Instances: []netlab.VRRPInstance{inst(100)}}))
	waitHolders(t, lab, vip, 5*time.Second, a)

	if _, err := a.Run("ip", "link", "del", "eth0"); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, lab, vip, 3*time.Second, b)
	if err := sw.Attach(a, "eth0"); err != nil { // a new veth: a new MAC
		t.Fatal(err)
	}
	var newLL netip.Addr
	if err := netlab.WaitFor(3*time.Second, func() (bool, error) {
		newLL, err = a.LinkLocal("eth0")
		return err == nil, nil
	}); err != nil {
		t.Fatalf("no link-local address on the new eth0: %v", err)
	}
	newLL = newLL.WithZone("")
	if newLL == oldLL.WithZone("") {
		t.Fatalf("the new interface has the old link-local address %v", newLL)
	}
	back := time.Now()
	waitHolders(t, lab, vip, 5*time.Second, a)
	t.Logf("interface created again with %v (was %v): %v back on a after %v", newLL, oldLL, vip, time.Since(back).Round(time.Millisecond))
	time.Sleep(time.Second)
	sb := status(t, db, "VI_66")
	if sb.State != router.Backup || sb.Master != newLL {
		t.Errorf("b in %v with Master %v, want BACKUP under %v: a's adverts do not reach it", sb.State, sb.Master, newLL)
	}
	if s := status(t, da, "VI_66"); s.LastSendError != "" {
		t.Errorf("a still failing to send: %s", s.LastSendError)
	}
	if !strings.Contains(logs.String(), "source address changed") {
		t.Error("the new source address is not logged")
	}
}
