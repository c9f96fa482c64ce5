package capture

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// Test helpers shared by the lab tests of the taps.

var (
	labA4 = netip.MustParsePrefix(netlab.LANAddr4(1)).Addr()
	labB4 = netip.MustParsePrefix(netlab.LANAddr4(2)).Addr()
)

// labSender sends VRRP adverts from a lab host through a raw socket, as a
// VRRP daemon would (TTL 255, multicast loop off).
type labSender struct {
	family uint8
	src    netip.Addr
	c4     *ipv4.PacketConn
	c6     *ipv6.PacketConn
	conn   net.PacketConn
}

// newLabSender opens a sender on ifname of h for family 4 or 6. IPv6
// adverts leave from the interface's link-local address.
func newLabSender(t *testing.T, h *netlab.Host, ifname string, family uint8) *labSender {
	t.Helper()
	s := &labSender{family: family}
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			return err
		}
		for _, a := range addrs {
			p, err := netip.ParsePrefix(a.String())
			if err != nil {
				continue
			}
			if ip := p.Addr(); (family == 4 && ip.Is4()) || (family == 6 && ip.Is6() && ip.IsLinkLocalUnicast()) {
				s.src = ip
				break
			}
		}
		if !s.src.IsValid() {
			return errors.New("no source address on " + ifname)
		}
		if family == 4 {
			c, err := net.ListenPacket("ip4:112", s.src.String())
			if err != nil {
				return err
			}
			s.conn, s.c4 = c, ipv4.NewPacketConn(c)
			if err := s.c4.SetMulticastInterface(ifi); err != nil {
				return err
			}
			if err := s.c4.SetMulticastTTL(255); err != nil {
				return err
			}
			if err := s.c4.SetTTL(255); err != nil {
				return err
			}
			return s.c4.SetMulticastLoopback(false)
		}
		// A fresh link-local address may not be bindable at once.
		var c net.PacketConn
		if err := netlab.WaitFor(5*time.Second, func() (bool, error) {
			c, err = net.ListenPacket("ip6:112", s.src.String()+"%"+ifname)
			return err == nil, nil
		}); err != nil {
			return fmt.Errorf("listen on %v: %w", s.src, err)
		}
		s.conn, s.c6 = c, ipv6.NewPacketConn(c)
		if err := s.c6.SetMulticastInterface(ifi); err != nil {
			return err
		}
		if err := s.c6.SetMulticastHopLimit(255); err != nil {
			return err
		}
		if err := s.c6.SetHopLimit(255); err != nil {
			return err
		}
		if err := s.c6.SetChecksum(true, 6); err != nil {
			return err
		}
		return s.c6.SetMulticastLoopback(false)
	})
	if err != nil {
		t.Fatalf("sender on %s %s: %v", h.Name(), ifname, err)
	}
	t.Cleanup(func() { s.conn.Close() })
	return s
}

// send sends one VRRPv3 advert for vrid with the given priority, to the
// VRRP group or to dst when valid.
func (s *labSender) send(t *testing.T, vrid, prio uint8, dst netip.Addr) {
	t.Helper()
	if !dst.IsValid() {
		dst = vrrpcore.GroupIPv4
		if s.family == 6 {
			dst = vrrpcore.GroupIPv6
		}
	}
	vip := netip.MustParseAddr("198.51.100.100")
	if s.family == 6 {
		vip = netip.MustParseAddr("2001:db8::100")
	}
	a := vrrpcore.Advert{Version: 3, VRID: vrid, Priority: prio, Interval: time.Second, Addrs: []netip.Addr{vip}}
	kind := vrrpcore.ChecksumPseudoHeader
	msg, err := a.AppendBinary(nil, s.src, dst, kind)
	if err != nil {
		t.Fatal(err)
	}
	to := &net.IPAddr{IP: dst.AsSlice()}
	if s.family == 6 && dst.IsLinkLocalMulticast() {
		to.Zone = s.src.Zone()
	}
	if _, err := s.conn.WriteTo(msg, to); err != nil {
		t.Fatalf("send advert from %v to %v: %v", s.src, dst, err)
	}
}

// labInjector writes whole Ethernet frames onto an interface of a lab
// host through an AF_PACKET socket.
type labInjector struct {
	fd      int
	ifindex int
}

func newLabInjector(t *testing.T, h *netlab.Host, ifname string) *labInjector {
	t.Helper()
	inj := &labInjector{fd: -1}
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		inj.ifindex = ifi.Index
		// Protocol 0: the socket sends but receives nothing.
		inj.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		t.Fatalf("injector on %s %s: %v", h.Name(), ifname, err)
	}
	t.Cleanup(func() { unix.Close(inj.fd) })
	return inj
}

func (inj *labInjector) send(t *testing.T, frame []byte) {
	t.Helper()
	if err := unix.Sendto(inj.fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: inj.ifindex}); err != nil {
		t.Fatalf("inject frame: %v", err)
	}
}

// timestampWarmup is how long tests wait after opening taps before they
// send: the first socket asking for timestamps turns on receive
// timestamping through deferred kernel work, and packets received before
// that are stamped when read.
const timestampWarmup = 300 * time.Millisecond

// openWireIn opens a wire tap on ifname in host h and closes it at the
// end of the test.
func openWireIn(t *testing.T, h *netlab.Host, ifname string, o WireOptions) *WireTap {
	t.Helper()
	var tap *WireTap
	if err := h.Do(func() (err error) {
		tap, err = OpenWire(ifname, o)
		return err
	}); err != nil {
		t.Fatalf("open wire tap on %s %s: %v", h.Name(), ifname, err)
	}
	t.Cleanup(func() { tap.Close() })
	return tap
}

// readWire reads frames from tap until it has n or timeout passes, and
// decodes them; frames that are not VRRP fail the test, adverts with a bad
// checksum are kept.
func readWire(t *testing.T, tap *WireTap, n int, timeout time.Duration) []Packet {
	t.Helper()
	dec := NewDecoder()
	var got []Packet
	deadline := time.Now().Add(timeout)
	tap.SetReadDeadline(deadline)
	defer tap.SetReadDeadline(time.Time{})
	var f WireFrame
	for len(got) < n {
		err := tap.Next(&f)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var p Packet
		p.Time = f.Time
		if err := dec.Decode(tap.LinkType(), f.Data, &p); err != nil && !isChecksumError(err) {
			t.Fatalf("frame %d (% x): %v", len(got), f.Data, err)
		}
		if p.Direction == DirUnknown {
			p.Direction = f.Direction
		}
		got = append(got, p)
	}
	return got
}

func TestWireTapLab(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t)
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	tapB := openWireIn(t, b, "eth0", WireOptions{})
	// The smallest ring: 4 blocks of 32 KiB.
	tapA := openWireIn(t, a, "eth0", WireOptions{BufferSize: 128 << 10})
	if tapA.blockSize != 32<<10 || tapB.blockSize != ringBlockSize {
		t.Fatalf("block sizes %d and %d", tapA.blockSize, tapB.blockSize)
	}
	if tapB.LinkType() != 1 {
		t.Errorf("link type %v, want Ethernet", tapB.LinkType())
	}

	start := time.Now()
	s4 := newLabSender(t, a, "eth0", 4)
	s6 := newLabSender(t, a, "eth0", 6)
	inj := newLabInjector(t, a, "eth0")
	// Traffic the filter must keep out.
	if err := a.Ping(labB4, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	inj.send(t, testFrame(t, nil, labA4, vrrpcore.GroupIPv4, layers.IPProtocolUDP, []byte("not vrrp")))
	for i := range 5 {
		s4.send(t, 51, 150, netip.Addr{})
		s6.send(t, 52, 150, netip.Addr{})
		if i < 3 {
			// Tagged frames: VLAN 10, and VLAN 11 inside an 802.1ad tag.
			tpids := []layers.EthernetType{layers.EthernetTypeDot1Q}
			vrid := uint8(53)
			if i == 2 {
				tpids = []layers.EthernetType{layers.EthernetTypeQinQ, layers.EthernetTypeDot1Q}
				vrid = 55
			}
			inj.send(t, testFrame(t, tpids, labA4, vrrpcore.GroupIPv4, 112, advertBytes(t, vrid, labA4, vrrpcore.GroupIPv4)))
		}
	}
	s4.send(t, 54, 150, labB4) // unicast VRRP
	const total = 5 + 5 + 3 + 1

	check := func(name string, tap *WireTap, dir Direction) {
		got := readWire(t, tap, total, 5*time.Second)
		if len(got) != total {
			t.Fatalf("%s: %d VRRP frames, want %d", name, len(got), total)
		}
		count := map[uint8]int{}
		for _, p := range got {
			count[p.Advert.VRID]++
			if p.Direction != dir {
				t.Errorf("%s: VRID %d direction %d, want %d", name, p.Advert.VRID, p.Direction, dir)
			}
			if p.Time.Before(start.Add(-time.Second)) || p.Time.After(time.Now()) {
				t.Errorf("%s: timestamp %v outside the test's run (from %v)", name, p.Time, start)
			}
			wantVLAN := map[uint8]uint16{53: 10, 55: 11}[p.Advert.VRID]
			if p.VLAN != wantVLAN {
				t.Errorf("%s: VRID %d VLAN %d, want %d", name, p.Advert.VRID, p.VLAN, wantVLAN)
			}
			if p.TTL != 255 && wantVLAN == 0 {
				t.Errorf("%s: VRID %d TTL %d, want 255", name, p.Advert.VRID, p.TTL)
			}
		}
		if count[51] != 5 || count[52] != 5 || count[53] != 2 || count[55] != 1 || count[54] != 1 {
			t.Errorf("%s: adverts per VRID %v", name, count)
		}
		if more := readWire(t, tap, 1, 200*time.Millisecond); len(more) > 0 {
			t.Errorf("%s: unexpected frame %+v", name, more[0])
		}
		st, err := tap.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.Received != total || st.Dropped != 0 {
			t.Errorf("%s: stats %+v, want %d received, 0 dropped", name, st, total)
		}
	}
	check("b (receiver)", tapB, DirIn)
	check("a (sender)", tapA, DirOut)

	// Close ends a pending read.
	done := make(chan error, 1)
	go func() {
		var f WireFrame
		done <- tapB.Next(&f)
	}()
	time.Sleep(50 * time.Millisecond)
	if err := tapB.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Next after Close: %v, want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not end a pending Next")
	}
}

func TestOpenWireErrors(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t)
	h, err := lab.AddHost("h")
	if err != nil {
		t.Fatal(err)
	}
	err = h.Do(func() error {
		_, err := OpenWire("nosuch0", WireOptions{})
		return err
	})
	if err == nil || err.Error() != `capture: interface "nosuch0": no such interface` {
		t.Errorf("missing interface: %v", err)
	}
}

// TestWireTapRawIP: on an interface without an Ethernet header (a TUN
// device) the tap takes packets from the network header on and tells the
// protocol from the kernel's skb->protocol.
func TestWireTapRawIP(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t)
	h, err := lab.AddHost("h")
	if err != nil {
		t.Fatal(err)
	}
	tun := -1
	if err := h.Do(func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		ifr, err := unix.NewIfreq("tun0")
		if err != nil {
			return err
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return err
		}
		tun = fd
		return nil
	}); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no TUN device (/dev/net/tun, kernel CONFIG_TUN): %v", err)
		}
		t.Skipf("no TUN device (/dev/net/tun, kernel CONFIG_TUN): %v", err)
	}
	t.Cleanup(func() { unix.Close(tun) })
	if err := h.AddAddr("tun0", "203.0.113.1/24"); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkUp("tun0"); err != nil {
		t.Fatal(err)
	}
	tap := openWireIn(t, h, "tun0", WireOptions{})
	if tap.LinkType() != LinkTypeRaw {
		t.Fatalf("link type %v, want raw IP", tap.LinkType())
	}
	time.Sleep(timestampWarmup)
	src := netip.MustParseAddr("203.0.113.9")
	frame := testFrame(t, nil, src, vrrpcore.GroupIPv4, 112, advertBytes(t, 61, src, vrrpcore.GroupIPv4))
	udp := testFrame(t, nil, src, vrrpcore.GroupIPv4, layers.IPProtocolUDP, []byte("not vrrp"))
	for _, pkt := range [][]byte{udp[14:], frame[14:], frame[14:]} {
		if _, err := unix.Write(tun, pkt); err != nil {
			t.Fatal(err)
		}
	}
	got := readWire(t, tap, 2, 5*time.Second)
	if len(got) != 2 {
		t.Fatalf("%d packets, want 2", len(got))
	}
	for _, p := range got {
		if p.Advert.VRID != 61 || p.Src != src || p.Direction != DirIn || p.HasMAC {
			t.Errorf("packet %+v", p)
		}
	}
	if more := readWire(t, tap, 1, 200*time.Millisecond); len(more) != 0 {
		t.Errorf("the UDP packet passed the filter: %+v", more)
	}
}

// TestWirePromiscuous: the tap leaves promiscuous mode alone unless asked,
// and what it asks for ends with it.
func TestWirePromiscuous(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t)
	_, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	promiscuity := func() string {
		out, err := b.Run("ip", "-d", "link", "show", "eth0")
		if err != nil {
			t.Fatal(err)
		}
		i := strings.Index(out, "promiscuity ")
		if i < 0 {
			t.Fatalf("no promiscuity in %q", out)
		}
		return strings.Fields(out[i:])[1]
	}
	plain := openWireIn(t, b, "eth0", WireOptions{})
	if got := promiscuity(); got != "0" {
		t.Errorf("promiscuity %s with a plain tap", got)
	}
	plain.Close()
	promisc := openWireIn(t, b, "eth0", WireOptions{Promiscuous: true})
	if got := promiscuity(); got != "1" {
		t.Errorf("promiscuity %s with a promiscuous tap", got)
	}
	promisc.Close()
	if got := promiscuity(); got != "0" {
		t.Errorf("promiscuity %s after the tap closed", got)
	}
}
