package capture

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// openSocketIn opens a socket tap on ifname in host h and closes it at the
// end of the test.
func openSocketIn(t *testing.T, h *netlab.Host, ifname string, family uint8, o SocketOptions) *SocketTap {
	t.Helper()
	var tap *SocketTap
	if err := h.Do(func() (err error) {
		tap, err = OpenSocket(ifname, family, o)
		return err
	}); err != nil {
		t.Fatalf("open IPv%d socket tap on %s %s: %v", family, h.Name(), ifname, err)
	}
	t.Cleanup(func() { tap.Close() })
	return tap
}

// readSocket reads packets from tap until it has n or timeout passes.
// Packets that do not decode are returned with their error.
func readSocket(t *testing.T, tap *SocketTap, n int, timeout time.Duration) (got []Packet, bad []error) {
	t.Helper()
	tap.SetReadDeadline(time.Now().Add(timeout))
	defer tap.SetReadDeadline(time.Time{})
	for len(got)+len(bad) < n {
		var p Packet
		err := tap.Next(&p)
		var be *BadPacketError
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return got, bad
		case errors.As(err, &be):
			bad = append(bad, err)
		case err != nil:
			t.Fatal(err)
		default:
			got = append(got, p)
		}
	}
	return got, bad
}

// sendRaw sends msg as it is (no checksum computed by the kernel).
func (s *labSender) sendRaw(t *testing.T, msg []byte, dst netip.Addr) {
	t.Helper()
	if s.c6 != nil {
		if err := s.c6.SetChecksum(false, 0); err != nil {
			t.Fatal(err)
		}
		defer s.c6.SetChecksum(true, 6)
	}
	to := &net.IPAddr{IP: dst.AsSlice()}
	if dst.Is6() && dst.IsLinkLocalMulticast() {
		to.Zone = s.src.Zone()
	}
	if _, err := s.conn.WriteTo(msg, to); err != nil {
		t.Fatal(err)
	}
}

func TestSocketTapLab(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t)
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	sock4 := openSocketIn(t, b, "eth0", 4, SocketOptions{})
	sock6 := openSocketIn(t, b, "eth0", 6, SocketOptions{})
	wire := openWireIn(t, b, "eth0", WireOptions{})
	if sock4.Group() != vrrpcore.GroupIPv4 || sock6.Group() != vrrpcore.GroupIPv6 {
		t.Errorf("groups %v %v", sock4.Group(), sock6.Group())
	}
	s4 := newLabSender(t, a, "eth0", 4)
	s6 := newLabSender(t, a, "eth0", 6)
	time.Sleep(timestampWarmup)
	for range 5 {
		s4.send(t, 51, 150, netip.Addr{})
		s6.send(t, 52, 150, netip.Addr{})
	}
	// Unicast VRRP to b: keepalived's multicast socket does not get it.
	s4.send(t, 54, 150, labB4)
	// Bad checksums: keepalived gets the IPv4 one (and rejects it itself);
	// the kernel drops the IPv6 one (IPV6_CHECKSUM) before the socket.
	bad4 := advertBytes(t, 56, s4.src, vrrpcore.GroupIPv4)
	bad4[6] ^= 0xff
	s4.sendRaw(t, bad4, vrrpcore.GroupIPv4)
	bad6 := advertBytes(t, 57, s6.src, vrrpcore.GroupIPv6)
	bad6[6] ^= 0xff
	s6.sendRaw(t, bad6, vrrpcore.GroupIPv6)

	onWire := readWire(t, wire, 13, 5*time.Second)
	if len(onWire) != 13 {
		t.Fatalf("wire tap saw %d packets, want 13", len(onWire))
	}
	wireByID := map[uint16]Packet{}
	var wire6 []Packet
	for _, p := range onWire {
		if p.Family == 4 {
			wireByID[p.IPID] = p
		} else {
			wire6 = append(wire6, p)
		}
	}

	got4, bad := readSocket(t, sock4, 6, 3*time.Second)
	if more, moreBad := readSocket(t, sock4, 1, 300*time.Millisecond); len(more)+len(moreBad) > 0 {
		t.Errorf("IPv4 socket got more: %+v %v", more, moreBad)
	}
	if len(got4) != 5 || len(bad) != 1 {
		t.Fatalf("IPv4 socket: %d adverts and %d bad packets, want 5 and 1 (%v)", len(got4), len(bad), bad)
	}
	if _, ok := errors.AsType[*vrrpcore.ChecksumError](bad[0]); !ok {
		t.Errorf("bad IPv4 packet: %v, want a checksum error", bad[0])
	}
	for _, p := range got4 {
		w, ok := wireByID[p.IPID]
		switch {
		case p.Advert.VRID != 51 || p.Src != s4.src || p.Dst != vrrpcore.GroupIPv4 || p.TTL != 255 || p.Direction != DirIn:
			t.Errorf("IPv4 socket packet %+v", p)
		case !ok:
			t.Errorf("IPv4 socket packet with IP ID %d not seen on the wire", p.IPID)
		case w.Advert.Checksum != p.Advert.Checksum || w.Length != p.Length:
			t.Errorf("IPv4 socket packet %+v differs from the wire's %+v", p, w)
		case !w.Time.Equal(p.Time):
			t.Errorf("IPv4 ID %d: wire timestamp %v, socket %v: not the kernel's receive timestamp", p.IPID, w.Time, p.Time)
		}
	}

	got6, bad := readSocket(t, sock6, 5, 3*time.Second)
	if more, moreBad := readSocket(t, sock6, 1, 300*time.Millisecond); len(more)+len(moreBad) > 0 {
		t.Errorf("IPv6 socket got more: %+v %v", more, moreBad)
	}
	if len(got6) != 5 || len(bad) != 0 {
		t.Fatalf("IPv6 socket: %d adverts and %d bad packets, want 5 and 0 (%v)", len(got6), len(bad), bad)
	}
	for i, p := range got6 {
		w := wire6[i]
		if p.Advert.VRID != 52 || p.Src != s6.src.WithZone("") || p.Dst != vrrpcore.GroupIPv6 || p.TTL != 255 || p.Length != w.Length {
			t.Errorf("IPv6 socket packet %+v", p)
		}
		if p.FlowLabel != w.FlowLabel {
			t.Errorf("IPv6 socket packet flow label %#x, wire %#x", p.FlowLabel, w.FlowLabel)
		}
		if !w.Time.Equal(p.Time) {
			t.Errorf("IPv6 packet %d: wire timestamp %v, socket %v: not the kernel's receive timestamp", i, w.Time, p.Time)
		}
	}
	if st := sock4.Stats(); st.Received != 6 || st.Dropped != 0 {
		t.Errorf("IPv4 socket stats %+v", st)
	}
}

// TestSocketTapBesideKeepalived: a socket tap opened and closed next to a
// keepalived backup must not take its adverts away: with 250 ms adverts the
// backup would become master after about 0.8 s without them (a tap is open
// for 2.5 s a round). Not shorter: on a loaded machine a master's 100 ms
// adverts can come late enough for its backup to take over on its own.
func TestSocketTapBesideKeepalived(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t, "keepalived")
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	var kb *netlab.Keepalived
	for i, h := range []*netlab.Host{a, b} {
		cfg := netlab.KeepalivedConfig{RouterID: h.Name(), Instances: []netlab.VRRPInstance{
			{Interface: "eth0", VRID: 51, Version: 3, Priority: 150 - 50*i, AdvertInt: 250 * time.Millisecond, VIPs: []string{"198.51.100.100/24"}},
			{Interface: "eth0", VRID: 52, Version: 3, Priority: 150 - 50*i, AdvertInt: 250 * time.Millisecond, VIPs: []string{"2001:db8::100/64"}},
		}}
		k, err := h.StartKeepalivedConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			kb = k
		}
	}
	for _, inst := range []string{"VI_51", "VI_52"} {
		if err := kb.WaitState(10*time.Second, inst, "BACKUP"); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 3 {
		s4 := openSocketIn(t, b, "eth0", 4, SocketOptions{})
		s6 := openSocketIn(t, b, "eth0", 6, SocketOptions{})
		got4, _ := readSocket(t, s4, 10, 6*time.Second)
		got6, _ := readSocket(t, s6, 10, 6*time.Second)
		if len(got4) != 10 || len(got6) != 10 {
			t.Fatalf("round %d: socket taps got %d IPv4 and %d IPv6 adverts, want 10 each", round, len(got4), len(got6))
		}
		s4.Close()
		s6.Close()
		time.Sleep(time.Second)
	}
	if log := kb.Log(); strings.Contains(log, "Entering MASTER STATE") {
		t.Fatalf("the backup became master while socket taps opened and closed beside it:\n%s", log)
	}
	// keepalived still holds its group memberships.
	igmp, err := b.Run("cat", "/proc/net/igmp")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(igmp, "120000E0") {
		t.Errorf("224.0.0.18 membership gone after the tap closed:\n%s", igmp)
	}
}
