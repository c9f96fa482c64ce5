package runtime

import (
	"fmt"
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

// minAllocs is the fewest allocations per call of f over three rounds of
// testing.AllocsPerRun: it counts the whole process's allocations, and
// those of goroutines left by other tests (netlink monitors ending, the
// collector) only ever add to the count.
func minAllocs(f func()) float64 {
	least := testing.AllocsPerRun(100, f)
	for range 2 {
		least = min(least, testing.AllocsPerRun(100, f))
	}
	return least
}

// TestLabAdvertSender sends adverts with advertSender, multicast and
// unicast with a lower TTL, over IPv4 and IPv6, and checks what the
// peer's socket reads (source, destination, TTL or hop limit, the advert
// itself), that a send allocates nothing once the control message is
// built, and that a packet read and routed costs one allocation. Each
// case has its own sockets, closed at its end: a raw socket reads every
// VRRP packet of its interface, unicast ones too.
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
		t.Run(fmt.Sprintf("IPv%d-%s", tc.family, tc.dst), func(t *testing.T) {
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
			allocs := minAllocs(func() {
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
			// Drain what the sends above left in the peer's socket and
			// channel (its reader did not run while they were counted), then
			// count a send and its reception by the peer's socket (read,
			// decode, routed to the instance's channel): one allocation, the
			// advert's address list.
			for last := uint64(0); ; {
				time.Sleep(50 * time.Millisecond)
				for len(ch) > 0 {
					<-ch
				}
				n := rx.stats().Received
				if n == last && len(ch) == 0 {
					break
				}
				last = n
			}
			var lost int
			wait := time.NewTimer(time.Hour) // reset, not allocated, per advert
			defer wait.Stop()
			allocs = minAllocs(func() {
				if err := w.send(msg, src, dst, tc.ttl); err != nil {
					sendErr = err
				}
				wait.Reset(time.Second)
				select {
				case <-ch:
				case <-wait.C:
					lost++
				}
				wait.Stop()
			})
			if sendErr != nil || lost > 0 {
				t.Fatalf("IPv%d to %v: %d adverts not received, send error %v", tc.family, dst, lost, sendErr)
			}
			if allocs > 1 {
				t.Errorf("IPv%d to %v: %v allocations per advert sent and received, want at most 1", tc.family, dst, allocs)
			}
		})
	}
}
