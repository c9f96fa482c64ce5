package runtime

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// labSocket opens the VRRP socket of family on h's eth0.
func labSocket(t *testing.T, h *netlab.Host, family int) *vrrpSocket {
	t.Helper()
	var ifi *net.Interface
	if err := h.Do(func() (err error) { ifi, err = net.InterfaceByName("eth0"); return err }); err != nil {
		t.Fatal(err)
	}
	s, err := openSocket(sockKey{"eth0", family}, ifi, h.Do, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.close() })
	return s
}

// TestLabAdvertSender sends adverts with advertSender, multicast and
// unicast with a lower TTL, over IPv4 and IPv6, and checks what the
// peer's socket reads (source, destination, TTL or hop limit, the advert
// itself) and that a send allocates nothing once the control message is
// built.
func TestLabAdvertSender(t *testing.T) {
	lab := netlabtest.New(t)
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		family   int
		src, dst string
		group    string // joined by the receiver; "" for unicast
		ttl      uint8
	}{
		{4, "198.51.100.1", "224.0.0.18", "224.0.0.18", 255},
		{4, "198.51.100.1", "198.51.100.2", "", 200},
		{6, "2001:db8::1", "ff02::12", "ff02::12", 255},
		{6, "2001:db8::1", "2001:db8::2", "", 255},
	} {
		src, dst := netip.MustParseAddr(tc.src), netip.MustParseAddr(tc.dst)
		tx := labSocket(t, a, tc.family)
		rx := labSocket(t, b, tc.family)
		ch := make(chan packet, 1024)
		r := route{name: "VI_7", ch: ch, drops: new(atomic.Uint64)}
		if tc.group != "" {
			r.group = netip.MustParseAddr(tc.group)
		}
		if err := rx.addRoute(7, r); err != nil {
			t.Fatal(err)
		}
		adv := vrrpcore.Advert{Version: 3, Type: vrrpcore.TypeAdvertisement, VRID: 7, Priority: 100, CountIPAddrs: 1,
			Interval: 100 * time.Millisecond, Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::100")}}
		if tc.family == 4 {
			adv.Addrs = []netip.Addr{netip.MustParseAddr("203.0.113.1")}
		}
		msg, err := adv.AppendBinary(nil, src, dst, checksumKind(3))
		if err != nil {
			t.Fatal(err)
		}
		w := newAdvertSender(tx)
		if err := w.send(msg, src, dst, tc.ttl); err != nil {
			t.Fatalf("IPv%d to %v: %v", tc.family, dst, err)
		}
		select {
		case p := <-ch:
			if p.src != src || p.dst != dst || p.ttl != tc.ttl || p.advert.Priority != 100 || len(p.advert.Addrs) != 1 || p.advert.Addrs[0] != adv.Addrs[0] {
				t.Errorf("IPv%d to %v: received src %v dst %v ttl %d advert %+v", tc.family, dst, p.src, p.dst, p.ttl, p.advert)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("IPv%d to %v: nothing received", tc.family, dst)
		}
		var sendErr error
		allocs := testing.AllocsPerRun(100, func() {
			if err := w.send(msg, src, dst, tc.ttl); err != nil {
				sendErr = err
			}
		})
		if sendErr != nil {
			t.Fatalf("IPv%d to %v: %v", tc.family, dst, sendErr)
		}
		if allocs != 0 {
			t.Errorf("IPv%d to %v: %v allocations per send, want 0", tc.family, dst, allocs)
		}
	}
}
