package watch

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/capture"
	"github.com/vrrpdoctor/vrrpdoctor/diag/check"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/keepalived"
)

// TestSelfSendsLab (root, a lab): in self mode the wire tap takes none of
// this node's adverts — the window's Local comes from the send attempts
// (NoteSend), as far as the advert counter saw them reach the device —
// while a peer's advert still reaches it; an nftables netdev egress drop,
// which sendmsg does not report for IPv4, shows as sends missing on the
// wire, and this node as not advertising.
func TestSelfSendsLab(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t, "nft")
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	text, err := netlab.KeepalivedConfig{RouterID: "a", Instances: []netlab.VRRPInstance{{Interface: "eth0", VRID: 51, Version: 3, Priority: 150,
		AdvertInt: time.Second, VIPs: []string{"203.0.113.51/24"}}}}.Render()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := keepalived.Parse("self.conf", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{Config: cfg, ConfigPath: "self.conf", NoFirewall: true})
	if err != nil {
		t.Fatal(err)
	}
	var peer *capture.Prober
	if err := b.Do(func() (err error) {
		peer, err = capture.OpenProber("eth0", 4, 52)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	ctx := context.Background()
	err = a.Do(func() error {
		pr, err := capture.OpenProber("eth0", 4, 51)
		if err != nil {
			return err
		}
		defer pr.Close()
		start := time.Now()
		if err := w.openTaps(start); err != nil {
			return err
		}
		defer w.closeTaps()
		w.followKernel()
		defer w.closeKernel()
		w.readHeld(nil, start)
		tp := w.taps["eth0"]
		if tp == nil {
			t.Fatalf("no taps on eth0: %v", w.retry)
		}
		time.Sleep(200 * time.Millisecond) // the taps' timestamping warms up
		// One window: n adverts of this node's, one of the peer's.
		frames := uint64(0)
		window := func(n int) *check.Instance {
			t.Helper()
			for range n {
				w.NoteSend(pr.Send())
			}
			if a := peer.Send(); a.Err != nil {
				t.Fatal(a.Err)
			}
			time.Sleep(300 * time.Millisecond)
			cut, _ := w.cut()
			now := time.Now()
			r, _ := w.report(ctx, now.Add(-300*time.Millisecond), now, cut)
			if r.Capture == nil || r.Capture.Duration != 0.3 {
				t.Errorf("report's capture %+v, want the window's real length, 0.3 s (the setting is %s)", r.Capture, w.window)
			}
			if d := cut["eth0"]; d == nil || d.stats.Frames != frames+1 {
				t.Errorf("wire tap frames: %+v, want only the peer's", d)
			} else {
				frames = d.stats.Frames
			}
			return &r.Instances[0]
		}
		window(0) // what came before the first window
		in := window(5)
		if s := in.Sends; s == nil || s.Attempts != 5 || s.Failed != 0 || s.OnWire != 5 || s.Missing != 0 {
			t.Errorf("healthy: sends %+v", in.Sends)
		}
		if l := in.Local; l == nil || l.Adverts != 5 || l.Priority != capture.ProbePriority || l.Address != pr.Source() || !slices.Equal(l.Versions, []int{3}) ||
			l.Checksum.PseudoHeader != 5 || l.Interval != 1 || !slices.Equal(l.TTLs, []int{255}) || l.Last.Before(start) || l.First.After(l.Last) {
			t.Errorf("healthy: local %+v", in.Local)
		} else if !in.Sending() {
			t.Error("healthy: not sending")
		}

		if err := a.NftScript(`table netdev vdhoegress {
	chain egress {
		type filter hook egress device "eth0" priority 0; policy accept;
		meta l4proto 112 drop
	}
}`); err != nil {
			t.Skipf("no nftables netdev egress hook: %v", err)
		}
		in = window(4)
		if s := in.Sends; s == nil || s.Attempts != 4 || s.Failed != 0 || s.OnWire != 0 || s.Missing != 4 {
			t.Errorf("egress drop: sends %+v", in.Sends)
		}
		if in.Local != nil || in.Sending() {
			t.Errorf("egress drop: local %+v", in.Local)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
