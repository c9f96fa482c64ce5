package runtime

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/announce"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
)

// addrEvents subscribes to address events in h's namespace and returns
// them with the time each was read.
func addrEvents(t *testing.T, h *netlab.Host) <-chan timedAddrUpdate {
	t.Helper()
	ch := make(chan netlink.AddrUpdate, 256)
	done := make(chan struct{})
	if err := h.Do(func() error { return netlink.AddrSubscribe(ch, done) }); err != nil {
		t.Fatal(err)
	}
	out := make(chan timedAddrUpdate, 256)
	go func() {
		defer close(out)
		for u := range ch {
			out <- timedAddrUpdate{u, time.Now()}
		}
	}()
	t.Cleanup(func() { close(done) })
	return out
}

type timedAddrUpdate struct {
	netlink.AddrUpdate
	at time.Time
}

// waitAddrEvent waits for the event of ip (added if add), returning when
// it was read.
func waitAddrEvent(t *testing.T, ev <-chan timedAddrUpdate, ip netip.Addr, add bool, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case u, ok := <-ev:
			if !ok {
				t.Fatal("address subscription ended")
			}
			if got, _ := netip.AddrFromSlice(u.LinkAddress.IP); got.Unmap() == ip && u.NewAddr == add {
				return u.at
			}
		case <-deadline:
			t.Fatalf("no address event for %v (added: %v) within %v", ip, add, timeout)
		}
	}
}

// packetSocket opens an AF_PACKET socket in h that reads every frame
// arriving on ifname, with a short read timeout.
func packetSocket(t *testing.T, h *netlab.Host, ifname string) int {
	t.Helper()
	proto := int(uint16(unix.ETH_P_ALL)<<8 | uint16(unix.ETH_P_ALL)>>8)
	var fd int
	if err := h.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifi.Index})
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	return fd
}

// countFrames counts the frames equal to want read from fd within d.
func countFrames(fd int, want []byte, d time.Duration) int {
	n := 0
	buf := make([]byte, 2048)
	for end := time.Now().Add(d); time.Now().Before(end); {
		m, _, err := unix.Recvfrom(fd, buf, 0)
		if err == nil && bytes.Equal(buf[:m], want) {
			n++
		}
	}
	return n
}

// TestLabVIPRemovedOnMaster: a virtual address deleted by hand on the
// Master (IPv4 and IPv6) is added back at once, logged once, counted, and
// announced again (gratuitous ARP / unsolicited NA seen by the peer); on a
// Backup a deleted address stays deleted.
func TestLabVIPRemovedOnMaster(t *testing.T) {
	lab := netlabtest.New(t)
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	vip4, vip6 := netip.MustParseAddr("198.51.100.150"), netip.MustParseAddr("2001:db8::150")
	conf := render(t, netlab.KeepalivedConfig{RouterID: "a", Instances: []netlab.VRRPInstance{
		// No second burst after becoming Master: every announcement the
		// peer sees after the deletion is the restore's.
		{Interface: "eth0", VRID: 81, Version: 3, Priority: 150, AdvertInt: 100 * time.Millisecond, VIPs: []string{"198.51.100.150/24"}, Extra: []string{"garp_master_delay 0"}},
		{Interface: "eth0", VRID: 82, Version: 3, Priority: 150, AdvertInt: 100 * time.Millisecond, VIPs: []string{"2001:db8::150/64"}, Extra: []string{"garp_master_delay 0"}},
	}})
	d, logs := startDaemon(t, a, conf)
	for _, name := range []string{"VI_81", "VI_82"} {
		if err := netlab.WaitFor(5*time.Second, func() (bool, error) { return instanceState(d, name) == router.Master, nil }); err != nil {
			t.Fatalf("%s never became Master", name)
		}
	}
	waitHolders(t, lab, vip4, 5*time.Second, a)
	waitHolders(t, lab, vip6, 5*time.Second, a)
	time.Sleep(300 * time.Millisecond) // the Master bursts are over
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
	fd := packetSocket(t, b, "eth0")
	ev := addrEvents(t, a)

	for _, c := range []struct {
		vip   netip.Addr
		cidr  string
		name  string
		frame func() ([]byte, error)
	}{
		{vip4, "198.51.100.150/24", "VI_81", func() ([]byte, error) { return announce.GratuitousARP(mac, vip4) }},
		{vip6, "2001:db8::150/64", "VI_82", func() ([]byte, error) { return announce.UnsolicitedNA(mac, vip6, true) }},
	} {
		want, err := c.frame()
		if err != nil {
			t.Fatal(err)
		}
		countFrames(fd, want, 0) // drop what is queued
		for i := range 3 {
			if err := a.DelAddr("eth0", c.cidr); err != nil {
				t.Fatal(err)
			}
			gone := waitAddrEvent(t, ev, c.vip, false, 2*time.Second)
			back := waitAddrEvent(t, ev, c.vip, true, 2*time.Second)
			t.Logf("%v deleted on the Master (%d): added back after %v", c.vip, i+1, back.Sub(gone).Round(10*time.Microsecond))
			if back.Sub(gone) > 500*time.Millisecond {
				t.Errorf("%v added back %v after its deletion", c.vip, back.Sub(gone))
			}
		}
		if n := countFrames(fd, want, time.Second); n == 0 {
			t.Errorf("%v: no announcement reached the peer after the deletions", c.vip)
		}
		for _, s := range d.Status().Instances {
			if s.Name == c.name && (s.VIPRestored != 3 || s.State != router.Master) {
				t.Errorf("%s: %d addresses restored, state %v; want 3, MASTER", c.name, s.VIPRestored, s.State)
			}
		}
		if n := strings.Count(logs.String(), "adding it back\" instance="+c.name); n != 1 {
			t.Errorf("%s: restore logged %d times, want once (rate-limited)", c.name, n)
		}
	}

	// A Backup does not hold the address: one a user adds and deletes
	// again on it is not added back.
	hi := render(t, netlab.KeepalivedConfig{RouterID: "b", Instances: []netlab.VRRPInstance{
		{Interface: "eth0", VRID: 81, Version: 3, Priority: 200, AdvertInt: 100 * time.Millisecond, VIPs: []string{"198.51.100.150/24"}},
	}})
	startDaemon(t, b, hi)
	if err := netlab.WaitFor(5*time.Second, func() (bool, error) { return instanceState(d, "VI_81") == router.Backup, nil }); err != nil {
		t.Fatal("VI_81 did not step down for a higher priority")
	}
	waitHolders(t, lab, vip4, 5*time.Second, b)
	if err := a.AddAddr("eth0", "198.51.100.150/24"); err != nil {
		t.Fatal(err)
	}
	if err := a.DelAddr("eth0", "198.51.100.150/24"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if has, _ := a.HasAddr(vip4); has {
		t.Error("a Backup added its virtual address back")
	}
}

// TestLabInterfaceRecreated: the Master's interface is deleted and created
// again (a new index) while a peer on the same switch takes over. The
// instances on it go FAULT (with dont_track_primary too: the socket's
// interface is missing), and when the interface is back the socket moves
// to it: the Master's adverts go out again (the peer steps down) and the
// group is joined again (a Backup instance on the same socket hears the
// peer's adverts and stays Backup).
func TestLabInterfaceRecreated(t *testing.T) {
	lab := netlabtest.New(t)
	hs, sw, err := lab.LAN(2)
	if err != nil {
		t.Fatal(err)
	}
	a, b := hs[0], hs[1]
	vip1, vip2 := netip.MustParseAddr("198.51.100.161"), netip.MustParseAddr("198.51.100.162")
	inst := func(vrid, prio int, vip string, extra ...string) netlab.VRRPInstance {
		return netlab.VRRPInstance{Interface: "eth0", VRID: vrid, Version: 3, Priority: prio, AdvertInt: 100 * time.Millisecond, VIPs: []string{vip}, Extra: extra}
	}
	// a: Master of 61 (without tracking its interface), Backup of 62.
	da, logs := startDaemon(t, a, render(t, netlab.KeepalivedConfig{RouterID: "a", Instances: []netlab.VRRPInstance{
		inst(61, 150, "198.51.100.161/24", "dont_track_primary"), inst(62, 100, "198.51.100.162/24"),
	}}))
	db, _ := startDaemon(t, b, render(t, netlab.KeepalivedConfig{RouterID: "b", Instances: []netlab.VRRPInstance{
		inst(61, 100, "198.51.100.161/24"), inst(62, 150, "198.51.100.162/24"),
	}}))
	waitHolders(t, lab, vip1, 5*time.Second, a)
	waitHolders(t, lab, vip2, 5*time.Second, b)

	if _, err := a.Run("ip", "link", "del", "eth0"); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, lab, vip1, 3*time.Second, b)
	for _, name := range []string{"VI_61", "VI_62"} {
		if err := netlab.WaitFor(2*time.Second, func() (bool, error) { return instanceState(da, name) == router.Fault, nil }); err != nil {
			t.Errorf("%s in %v with its interface deleted, want FAULT", name, instanceState(da, name))
		}
	}

	if err := sw.Attach(a, "eth0"); err != nil {
		t.Fatal(err)
	}
	if err := a.AddAddr("eth0", netlab.LANAddr4(1)); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	waitHolders(t, lab, vip1, 5*time.Second, a)
	t.Logf("interface created again: %v back on a after %v", vip1, time.Since(back).Round(time.Millisecond))
	if s := instanceState(db, "VI_61"); s != router.Backup {
		t.Errorf("b's VI_61 in %v, want BACKUP: a's adverts do not reach it", s)
	}
	// Several Master_Down_Intervals: a's VI_62 hears b's adverts through
	// the group joined again, or it would take over.
	time.Sleep(time.Second)
	if s := instanceState(da, "VI_62"); s != router.Backup {
		t.Errorf("a's VI_62 in %v, want BACKUP: b's adverts do not reach it", s)
	}
	waitHolders(t, lab, vip2, time.Second, b)
	for _, s := range da.Status().Instances {
		if s.Name == "VI_61" && s.LastSendError != "" {
			t.Errorf("VI_61 still failing to send: %s", s.LastSendError)
		}
	}
	if !strings.Contains(logs.String(), "VRRP socket moved to it") {
		t.Error("the move of the socket is not logged")
	}
}

// TestLabInterfaceRecreatedVMAC: with use_vmac the macvlan goes with its
// base interface; when the base is created again, so is the macvlan (its
// ARP sysctls too), the socket moves to it and the Master holds the
// address on it again, with the virtual MAC.
func TestLabInterfaceRecreatedVMAC(t *testing.T) {
	lab := netlabtest.New(t)
	hs, sw, err := lab.LAN(2)
	if err != nil {
		t.Fatal(err)
	}
	a, b := hs[0], hs[1]
	vip := netip.MustParseAddr("198.51.100.164")
	inst := func(prio int) netlab.VRRPInstance {
		return netlab.VRRPInstance{Interface: "eth0", VRID: 64, Version: 3, Priority: prio, AdvertInt: 100 * time.Millisecond, VIPs: []string{"198.51.100.164/24"}, Extra: []string{"use_vmac"}}
	}
	da, logs := startDaemon(t, a, render(t, netlab.KeepalivedConfig{RouterID: "a", Instances: []netlab.VRRPInstance{inst(150)}}))
	db, _ := startDaemon(t, b, render(t, netlab.KeepalivedConfig{RouterID: "b", Instances: []netlab.VRRPInstance{inst(100)}}))
	waitHolders(t, lab, vip, 5*time.Second, a)

	if _, err := a.Run("ip", "link", "del", "eth0"); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, lab, vip, 3*time.Second, b)
	if err := netlab.WaitFor(2*time.Second, func() (bool, error) { return instanceState(da, "VI_64") == router.Fault, nil }); err != nil {
		t.Errorf("a in %v with its interface deleted, want FAULT", instanceState(da, "VI_64"))
	}
	if err := sw.Attach(a, "eth0"); err != nil {
		t.Fatal(err)
	}
	if err := a.AddAddr("eth0", netlab.LANAddr4(1)); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	waitHolders(t, lab, vip, 5*time.Second, a)
	t.Logf("base interface created again: %v back on a after %v", vip, time.Since(back).Round(time.Millisecond))
	out, err := a.Run("ip", "-d", "addr", "show", "dev", "vrrp.64")
	if err != nil || !strings.Contains(out, "macvlan") || !strings.Contains(out, "00:00:5e:00:01:40") || !strings.Contains(out, vip.String()) {
		t.Errorf("a: vrrp.64: %v\n%s\nwant the macvlan with the virtual MAC holding %v", err, out, vip)
	}
	if out, _ := a.Run("sysctl", "-n", "net.ipv4.conf.eth0.arp_ignore"); strings.TrimSpace(out) != "1" {
		t.Errorf("a: the new eth0's arp_ignore is %q, want 1", out)
	}
	time.Sleep(500 * time.Millisecond)
	if s := instanceState(db, "VI_64"); s != router.Backup {
		t.Errorf("b in %v, want BACKUP: a's adverts do not reach it", s)
	}
	if !strings.Contains(logs.String(), "created again") {
		t.Error("the macvlan's re-creation is not logged")
	}
}

// TestLabInterfaceRecreatedIPv6: the same for VRRPv3 over IPv6, the new
// interface given the old one's link-local address (the source of the
// adverts), as a NIC or VLAN created again with the same MAC address gets.
func TestLabInterfaceRecreatedIPv6(t *testing.T) {
	lab := netlabtest.New(t)
	hs, sw, err := lab.LAN(2)
	if err != nil {
		t.Fatal(err)
	}
	a, b := hs[0], hs[1]
	ll, err := a.LinkLocal("eth0")
	if err != nil {
		t.Fatal(err)
	}
	vip := netip.MustParseAddr("2001:db8::163")
	inst := func(prio int) netlab.VRRPInstance {
		return netlab.VRRPInstance{Interface: "eth0", VRID: 63, Version: 3, Priority: prio, AdvertInt: 100 * time.Millisecond, VIPs: []string{"2001:db8::163/64"}}
	}
	da, _ := startDaemon(t, a, render(t, netlab.KeepalivedConfig{RouterID: "a", Instances: []netlab.VRRPInstance{inst(150)}}))
	db, _ := startDaemon(t, b, render(t, netlab.KeepalivedConfig{RouterID: "b", Instances: []netlab.VRRPInstance{inst(100)}}))
	waitHolders(t, lab, vip, 5*time.Second, a)

	if _, err := a.Run("ip", "link", "del", "eth0"); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, lab, vip, 3*time.Second, b)
	if err := sw.Attach(a, "eth0"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Run("ip", "addr", "add", netip.PrefixFrom(ll.WithZone(""), 64).String(), "dev", "eth0", "nodad"); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	waitHolders(t, lab, vip, 5*time.Second, a)
	t.Logf("interface created again: %v back on a after %v", vip, time.Since(back).Round(time.Millisecond))
	time.Sleep(time.Second)
	if s := instanceState(db, "VI_63"); s != router.Backup {
		t.Errorf("b in %v, want BACKUP: a's adverts do not reach it", s)
	}
	for _, s := range da.Status().Instances {
		if s.LastSendError != "" {
			t.Errorf("a still failing to send: %s", s.LastSendError)
		}
	}
}
