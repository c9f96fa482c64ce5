package watch

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/diag/check"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/keepalived"
)

// TestWatchLabKernFacts: a watcher's windows in a lab host's namespace (no
// taps, no keepalived: the interface and address facts only). Each
// window's interface is what a fresh check.InterfaceState reads at its
// end; it is read again only in the window after an address or the link
// changed (not after an address's lifetimes were refreshed), and the
// virtual address added (or added and deleted within one window) unsettles
// that window.
func TestWatchLabKernFacts(t *testing.T) {
	lab := netlabtest.New(t)
	a, _, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := keepalived.Parse("lab.conf", []byte(`vrrp_instance VI_51 {
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        198.51.100.100/24
    }
}
`))
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{Config: cfg, Enter: a.Do, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	reads := 0
	w.kern.readLink = func(name string) (check.Interface, int) {
		reads++
		return check.InterfaceLink(name)
	}
	if err := a.Do(func() error {
		w.followKernel()
		w.readHeld(nil, time.Now())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	defer w.closeKernel()
	if w.kern.ev == nil {
		t.Fatal("no notifications")
	}
	// window builds a window's report and reads the interface afresh.
	window := func(what string, wantReads int, wantSettled bool) *check.Report {
		t.Helper()
		var r *check.Report
		var settled bool
		var fresh check.Interface
		if err := a.Do(func() error {
			now := time.Now()
			r, settled = w.report(context.Background(), now.Add(-w.window), now, map[string]*windowData{})
			fresh = check.InterfaceState("eth0", "/proc", 0, 0)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		got := r.Interfaces[0]
		if got.Exists != fresh.Exists || got.Up != fresh.Up || got.LowerUp != fresh.LowerUp || got.Multicast != fresh.Multicast ||
			got.OperState != fresh.OperState || !slices.Equal(got.Addrs, fresh.Addrs) || !slices.Equal(got.Problems, fresh.Problems) ||
			(got.JoinedVRRP4 == nil) != (fresh.JoinedVRRP4 == nil) || got.JoinedVRRP4 != nil && *got.JoinedVRRP4 != *fresh.JoinedVRRP4 {
			t.Errorf("%s: window's interface %+v\nfresh reading %+v", what, got, fresh)
		}
		if reads != wantReads || settled != wantSettled {
			t.Errorf("%s: %d link readings, settled %v; want %d, %v", what, reads, settled, wantReads, wantSettled)
		}
		return r
	}
	window("first window", 1, true)
	window("nothing changed", 1, true)
	if err := a.AddAddr("eth0", "203.0.113.7/24"); err != nil {
		t.Fatal(err)
	}
	r := window("address added", 2, true)
	if !slices.Contains(r.Interfaces[0].Addrs, netip.MustParsePrefix("203.0.113.7/24")) {
		t.Errorf("address added: not in %v", r.Interfaces[0].Addrs)
	}
	window("after the address", 2, true)
	// Its lifetimes changed (as a router advertisement refreshes a SLAAC
	// address): notified, the list is as it was.
	if _, err := a.Run("ip", "addr", "change", "203.0.113.7/24", "dev", "eth0", "valid_lft", "300", "preferred_lft", "300"); err != nil {
		t.Fatal(err)
	}
	window("address refreshed", 2, true)
	if err := a.LinkDown("eth0"); err != nil {
		t.Fatal(err)
	}
	if r := window("link down", 3, true); r.Interfaces[0].Up {
		t.Error("link down: still up")
	}
	if err := a.LinkUp("eth0"); err != nil {
		t.Fatal(err)
	}
	// The carrier comes up through the kernel's link watch, which notifies
	// a moment after it acts (up to a second when events follow each other).
	time.Sleep(1500 * time.Millisecond)
	if r := window("link up", 4, true); !r.Interfaces[0].Up || !r.Interfaces[0].LowerUp {
		t.Errorf("link up: %+v", r.Interfaces[0])
	}
	window("after the link", 4, true)
	if err := a.AddAddr("eth0", "198.51.100.100/24"); err != nil {
		t.Fatal(err)
	}
	window("virtual address added", 5, false)
	if r := window("virtual address held", 5, true); len(r.Instances[0].Held) != 1 {
		t.Errorf("virtual address held at both ends: %v", r.Instances[0].Held)
	}
	if err := a.DelAddr("eth0", "198.51.100.100/24"); err != nil {
		t.Fatal(err)
	}
	if err := a.AddAddr("eth0", "198.51.100.100/24"); err != nil {
		t.Fatal(err)
	}
	window("virtual address deleted and added again", 6, false)
	window("settled again", 6, true)
}

// TestWatchLabNftEvents: the nftables notifications tell a ruleset change
// in the namespace, and nothing while none is made.
func TestWatchLabNftEvents(t *testing.T) {
	lab := netlabtest.New(t, "nft")
	a, _, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	var ev *nftEvents
	if err := a.Do(func() (err error) { ev, err = openNftEvents(nil); return err }); err != nil {
		t.Fatal(err)
	}
	defer ev.close()
	if moved, err := ev.moved(); moved || err != nil {
		t.Fatalf("nothing changed: moved %v, %v", moved, err)
	}
	if _, err := a.Nft("add", "table", "inet", "vdtest"); err != nil {
		t.Fatal(err)
	}
	if moved, err := ev.moved(); !moved || err != nil {
		t.Fatalf("table added: moved %v, %v", moved, err)
	}
	if moved, err := ev.moved(); moved || err != nil {
		t.Fatalf("drained: moved %v, %v", moved, err)
	}
}
