package watch

import (
	"context"
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

// BenchmarkWatchWindow (root, a lab): one window of the self-diagnosis of
// a busy Master as `vrrpdoctor run` does it — 100 VRRPv3 instances at
// 0.1 s on eth0, its socket joined to the VRRP group, each holding its
// virtual address, 10 send attempts each in the window (NoteSend), all
// counted on the wire (the advert counter's count is credited to the tap:
// no advert is sent), the peer silent, the firewall read once (an empty
// ruleset) — from cutting the taps to the findings. In self mode the wire
// tap takes none of this node's frames: none is fed to the window.
// allocs/op and B/op are the garbage of one window.
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
		w.fwall.open(nil)
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
					w.NoteSend(capture.SendAttempt{Time: at, Interface: "eth0", VRID: uint8(v + 1), Src: src, Dst: vrrpcore.GroupIPv4,
						Priority: 150, Version: 3, Interval: 100 * time.Millisecond, Checksum: vrrpcore.ChecksumPseudoHeader, TTL: 255})
				}
			}
			t.credit[0] += n * per // as the advert counter would count them
			now := start.Add(w.window)
			w.step(ctx, start, now, false)
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
