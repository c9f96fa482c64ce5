package watch

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/capture"
	"github.com/vrrpdoctor/vrrpdoctor/fw"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/keepalived"
)

// advertFrame is an Ethernet frame with an IPv4 VRRPv3 advert for vrid
// from src to 224.0.0.18, priority 150, interval 0.1 s, one virtual
// address.
func advertFrame(tb testing.TB, vrid uint8, src, vip netip.Addr) []byte {
	tb.Helper()
	a := vrrpcore.Advert{Version: 3, Type: vrrpcore.TypeAdvertisement, VRID: vrid, Priority: 150, Interval: 100 * time.Millisecond,
		Addrs: []netip.Addr{vip}}
	msg, err := a.AppendBinary(nil, src, vrrpcore.GroupIPv4, vrrpcore.ChecksumPseudoHeader)
	if err != nil {
		tb.Fatal(err)
	}
	f := []byte{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12, 0x00, 0x00, 0x5e, 0x00, 0x01, vrid, 0x08, 0x00}
	ip := make([]byte, 20)
	ip[0], ip[1], ip[8], ip[9] = 0x45, 0xc0, 255, 112
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(msg)))
	s4, d4 := src.As4(), vrrpcore.GroupIPv4.As4()
	copy(ip[12:], s4[:])
	copy(ip[16:], d4[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	return append(append(f, ip...), msg...)
}

// BenchmarkWatchWindow (root, a lab): one window of the self-diagnosis of
// a busy Master as `vrrpdoctor run` does it — 100 VRRPv3 instances at
// 0.1 s on eth0, its socket joined to the VRRP group, each holding its virtual address, 10 adverts each of its
// own on the wire and 10 send attempts in the window, the peer silent, the
// firewall read once (an empty ruleset) — from cutting the taps to the
// findings. allocs/op and B/op are the garbage of one window.
func BenchmarkWatchWindow(b *testing.B) {
	const n, per = 100, 10
	lab := netlabtest.New(b)
	a, _, err := lab.Pair()
	if err != nil {
		b.Fatal(err)
	}
	var ins []netlab.VRRPInstance
	for v := 1; v <= n; v++ {
		vip := fmt.Sprintf("203.0.113.%d/24", v)
		ins = append(ins, netlab.VRRPInstance{Interface: "eth0", VRID: v, Version: 3, Priority: 150, AdvertInt: 100 * time.Millisecond,
			State: "MASTER", VIPs: []string{vip}})
		if err := a.AddAddr("eth0", vip); err != nil {
			b.Fatal(err)
		}
	}
	text, err := netlab.KeepalivedConfig{RouterID: "bench", Instances: ins}.Render()
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := keepalived.Parse("bench.conf", []byte(text))
	if err != nil {
		b.Fatal(err)
	}
	w, err := New(Config{Config: cfg, ConfigPath: "bench.conf"})
	if err != nil {
		b.Fatal(err)
	}
	w.fwall.readLive = func(context.Context) (*fw.Live, error) { return &fw.Live{Ruleset: &ruleset.Ruleset{}}, nil }
	src := netip.MustParseAddr("198.51.100.1")
	frames := make([][]byte, n)
	for v := range n {
		frames[v] = advertFrame(b, uint8(v+1), src, netip.AddrFrom4([4]byte{203, 0, 113, byte(v + 1)}))
	}
	ctx := context.Background()
	err = a.Do(func() error {
		// The speaker's own socket joins the VRRP group.
		recv, err := capture.OpenSocket("eth0", 4, capture.SocketOptions{})
		if err != nil {
			return err
		}
		defer recv.Close()
		start := time.Now()
		if err := w.openTaps(start); err != nil {
			return err
		}
		defer w.closeTaps()
		w.fwall.open()
		defer w.fwall.close()
		w.followKernel()
		defer w.closeKernel()
		w.readHeld(nil, start)
		t := w.taps["eth0"]
		if t == nil {
			return fmt.Errorf("no taps on eth0: %v", w.retry)
		}
		// One window, as the session and the speaker feed it.
		window := func(start time.Time) time.Time {
			for k := range per {
				for v := range n {
					at := start.Add(time.Duration(k)*100*time.Millisecond + time.Duration(v)*time.Millisecond)
					t.win.Load().Frame(&capture.WireFrame{Time: at, Direction: capture.DirOut, Data: frames[v], Length: len(frames[v])})
					w.NoteSend(capture.SendAttempt{Interface: "eth0", VRID: uint8(v + 1), Src: src, Dst: vrrpcore.GroupIPv4})
				}
			}
			now := start.Add(w.window)
			w.step(ctx, start, now)
			return now
		}
		// Warm up: the firewall read, the first window's state.
		for range 3 {
			start = window(start)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			start = window(start)
		}
		b.StopTimer()
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if fs := w.Findings(); len(fs) > 0 {
		b.Fatalf("a healthy Master: findings %v", findingIDs(fs))
	}
}
