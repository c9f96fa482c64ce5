package watch

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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
			return fmt.Errorf("no taps on eth0: %v", w.retry)
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
				t.Error(a.Err)
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

		if err := a.NftScript(egressDrop); err != nil {
			return fmt.Errorf("no nftables netdev egress hook: %w", err)
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

// TestSelfQuietWindowCountsItsEnd (root, a lab, about a minute): in self
// mode a quiet window counts this node's adverts at the device only in its
// last base window's length — before that the advert counter is unhooked
// (/proc/net/packet shows it bound to ETH_P_802_EX1, the protocol a
// paused capture.OutCounter is bound to), so that the kernel
// does not copy every frame the host sends — and an egress drop that
// begins in the window's first part, which nothing notifies, is still
// found at its end: this node holds the VIP but no advert of its leaves.
func TestSelfQuietWindowCountsItsEnd(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t, "nft")
	a, _, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	vip := "203.0.113.51/24"
	text, err := netlab.KeepalivedConfig{RouterID: "a", Instances: []netlab.VRRPInstance{{Interface: "eth0", VRID: 51, Version: 3, Priority: 150,
		AdvertInt: time.Second, VIPs: []string{vip}}}}.Render()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := keepalived.Parse("self.conf", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.AddAddr("eth0", vip); err != nil { // as the master holds it
		t.Fatal(err)
	}
	var mu sync.Mutex
	var changes []Change
	var logs netlabtest.LogBuffer
	w, err := New(Config{Config: cfg, ConfigPath: "self.conf", NoFirewall: true,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnChange: func(c Change) {
			mu.Lock()
			defer mu.Unlock()
			changes = append(changes, c)
		}})
	if err != nil {
		t.Fatal(err)
	}
	active := func() (ids []string) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range changes {
			if c.Active {
				ids = append(ids, c.Finding.ID)
			}
		}
		return ids
	}
	var pr *capture.Prober
	if err := a.Do(func() (err error) {
		pr, err = capture.OpenProber("eth0", 4, 51)
		if err != nil {
			return err
		}
		// The speaker's socket is a member of the VRRP group.
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 112)
		if err != nil {
			return err
		}
		t.Cleanup(func() { unix.Close(fd) })
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		return unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP,
			&unix.IPMreqn{Multiaddr: [4]byte{224, 0, 0, 18}, Ifindex: int32(ifi.Index)})
	}); err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The speaker: an advert a second, told to the watch.
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			w.NoteSend(pr.Send())
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	done := make(chan error, 1)
	go func() { done <- a.Do(func() error { return w.Run(ctx) }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	if err := netlab.WaitFor(30*time.Second, func() (bool, error) { return w.CurrentWindow() == quietWindow, nil }); err != nil {
		t.Fatalf("no quiet window: %v (findings %v)", err, active())
	}
	quietFrom := time.Now()
	time.Sleep(time.Second)
	if l := logs.String(); !strings.Contains(l, "advert counter paused") || strings.Contains(l, "advert counter counts") {
		t.Errorf("quiet window's start: the advert counter is not paused:\n%s", l)
	}
	if err := a.NftScript(egressDrop); err != nil {
		t.Fatalf("no nftables netdev egress hook: %v", err)
	}
	// Counted in the quiet window's last base window, then confirmed by a
	// base window.
	if err := netlab.WaitFor(quietWindow+4*w.Window(), func() (bool, error) { return slices.Contains(active(), check.IDVIPHeldByBackup), nil }); err != nil {
		t.Fatalf("egress drop not found %s after the quiet window began (findings %v)", time.Since(quietFrom).Round(time.Second), active())
	}
	if took := time.Since(quietFrom); took < quietWindow-2*w.Window() {
		t.Errorf("found after %s: before the quiet window counted", took)
	}
	if l := logs.String(); !strings.Contains(l, "advert counter counts") {
		t.Errorf("the advert counter never counted again:\n%s", l)
	}
	t.Logf("found %v %s after the quiet window began", active(), time.Since(quietFrom).Round(time.Second))
}

// egressDrop is an nftables table that drops the VRRP adverts leaving
// eth0 at the device (a netdev egress hook): sendmsg succeeds, nothing
// leaves, and only the advert counter shows it.
const egressDrop = `table netdev vdhegress {
	chain egress {
		type filter hook egress device "eth0" priority 0; policy accept;
		meta l4proto 112 drop
	}
}`
