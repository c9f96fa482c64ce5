package capture

import (
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
)

// countUntil sums c's counts until they reach want or timeout passes,
// then waits a little for more and returns the sum.
func countUntil(t *testing.T, c *OutCounter, want uint64, timeout time.Duration) uint64 {
	t.Helper()
	var n uint64
	deadline := time.Now().Add(timeout)
	for {
		k, err := c.Count()
		if err != nil {
			t.Fatal(err)
		}
		n += k
		if n >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	k, err := c.Count()
	if err != nil {
		t.Fatal(err)
	}
	return n + k
}

func openOutCounterIn(t *testing.T, h *netlab.Host, ifname string, family uint8) *OutCounter {
	t.Helper()
	var c *OutCounter
	if err := h.Do(func() (err error) {
		c, err = OpenOutCounter(ifname, family)
		return err
	}); err != nil {
		t.Fatalf("open advert counter on %s %s: %v", h.Name(), ifname, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestOutCounterLab checks the kernel's side of a speaker's taps: a wire
// tap with IncomingOnly never gets the host's own adverts, and the advert
// counters count them per family, beyond what their receive buffer holds,
// but not those an nftables netdev egress rule drops.
func TestOutCounterLab(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t, "nft")
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	tapA := openWireIn(t, a, "eth0", WireOptions{IncomingOnly: true})
	tapB := openWireIn(t, b, "eth0", WireOptions{})
	// The kernel skips the tap for sent frames: no copy, no filter run.
	if err := tapA.rc.Control(func(fd uintptr) {
		v, err := unix.GetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING)
		if err != nil || v != 1 {
			t.Errorf("PACKET_IGNORE_OUTGOING of an incoming-only tap: %d, %v; want 1", v, err)
		}
	}); err != nil {
		t.Fatal(err)
	}
	c4 := openOutCounterIn(t, a, "eth0", 4)
	c6 := openOutCounterIn(t, a, "eth0", 6)
	if c4.Family() != 4 || c4.Interface() != "eth0" {
		t.Errorf("counter of %s IPv%d", c4.Interface(), c4.Family())
	}
	s4, s6 := newLabSender(t, a, "eth0", 4), newLabSender(t, a, "eth0", 6)
	peer := newLabSender(t, b, "eth0", 4)
	time.Sleep(timestampWarmup)

	// Far more than the counter's receive buffer holds.
	const n4, n6, nPeer = 40, 3, 4
	for i := range n4 {
		s4.send(t, 51, 150, netip.Addr{})
		if i < n6 {
			s6.send(t, 52, 150, netip.Addr{})
		}
		if i < nPeer {
			peer.send(t, 51, 100, netip.Addr{})
		}
	}
	s4.send(t, 53, 150, labB4) // unicast
	if got := countUntil(t, c4, n4+1, 5*time.Second); got != n4+1 {
		t.Errorf("IPv4 counter: %d adverts, want %d", got, n4+1)
	}
	if got := countUntil(t, c6, n6, 5*time.Second); got != n6 {
		t.Errorf("IPv6 counter: %d adverts, want %d", got, n6)
	}
	// The tap of the sending side sees only the peer's adverts.
	got := readWire(t, tapA, nPeer+1, time.Second)
	if len(got) != nPeer {
		t.Errorf("incoming-only tap: %d frames, want the peer's %d", len(got), nPeer)
	}
	for _, p := range got {
		if p.Direction != DirIn || p.Src != peer.src {
			t.Errorf("incoming-only tap: frame from %v direction %d", p.Src, p.Direction)
		}
	}
	// The other side saw them all: the adverts did leave.
	if got := readWire(t, tapB, n4+1+n6+nPeer, 5*time.Second); len(got) != n4+1+n6+nPeer {
		t.Errorf("peer's tap: %d frames, want %d", len(got), n4+1+n6+nPeer)
	}

	// Paused: the kernel hands the counter nothing; resumed: it counts
	// again, from the Resume.
	ignoring := func() int {
		v, err := unix.GetsockoptInt(c4.fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if err := c4.Pause(); err != nil {
		t.Fatal(err)
	}
	if v := ignoring(); v != 1 {
		t.Errorf("paused counter: PACKET_IGNORE_OUTGOING %d, want 1", v)
	}
	for range 3 {
		s4.send(t, 51, 150, netip.Addr{})
	}
	time.Sleep(100 * time.Millisecond)
	if n, err := c4.Count(); err != nil || n != 0 {
		t.Errorf("paused IPv4 counter: %d, %v; want 0", n, err)
	}
	if err := c4.Resume(); err != nil {
		t.Fatal(err)
	}
	if v := ignoring(); v != 0 {
		t.Errorf("resumed counter: PACKET_IGNORE_OUTGOING %d, want 0", v)
	}
	for range 2 {
		s4.send(t, 51, 150, netip.Addr{})
	}
	if got := countUntil(t, c4, 2, 5*time.Second); got != 2 {
		t.Errorf("resumed IPv4 counter: %d adverts, want 2", got)
	}
	readWire(t, tapB, 5, 5*time.Second) // what the pause let out

	// Dropped at the device's egress: sent as far as sendmsg knows, never
	// on the wire, never counted.
	if err := a.NftScript(`table netdev vdhodrop {
	chain egress {
		type filter hook egress device "eth0" priority 0; policy accept;
		meta l4proto 112 drop
	}
}`); err != nil {
		t.Skipf("no nftables netdev egress hook: %v", err)
	}
	// (IPv6's sendmsg reports this drop, ENOBUFS; IPv4's does not.)
	for range 5 {
		s4.send(t, 51, 150, netip.Addr{})
	}
	time.Sleep(200 * time.Millisecond)
	if n, err := c4.Count(); err != nil || n != 0 {
		t.Errorf("IPv4 counter behind an egress drop: %d, %v; want 0", n, err)
	}
	if got := readWire(t, tapB, 1, 300*time.Millisecond); len(got) != 0 {
		t.Errorf("the egress drop let %d frames out", len(got))
	}
	c4.Close()
	if _, err := c4.Count(); err != ErrClosed {
		t.Errorf("Count after Close: %v", err)
	}
	if err := c4.Pause(); err != ErrClosed {
		t.Errorf("Pause after Close: %v", err)
	}
	if err := c4.Resume(); err != ErrClosed {
		t.Errorf("Resume after Close: %v", err)
	}
}
