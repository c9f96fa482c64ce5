package watch

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
)

// TestVIPMonitorLab: a virtual address added and deleted again between two
// readings is counted (the ends alone would show nothing); other addresses
// are not.
func TestVIPMonitorLab(t *testing.T) {
	lab := netlabtest.New(t)
	a, _, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	vip := netip.MustParseAddr("198.51.100.100")
	m := newVIPMonitor([]netip.Addr{vip}, slog.New(slog.DiscardHandler))
	if err := a.Do(m.subscribe); err != nil {
		t.Fatal(err)
	}
	defer m.close()
	wait := func(want uint64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			n, ok := m.count()
			if !ok {
				t.Fatal("subscription lost")
			}
			if n == want {
				return
			}
			if n > want || time.Now().After(deadline) {
				t.Fatalf("changes counted: %d, want %d", n, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err := a.AddAddr("eth0", "203.0.113.7/24"); err != nil {
		t.Fatal(err)
	}
	if err := a.AddAddr("eth0", "198.51.100.100/24"); err != nil {
		t.Fatal(err)
	}
	if err := a.DelAddr("eth0", "198.51.100.100/24"); err != nil {
		t.Fatal(err)
	}
	wait(2)
	// Settle: the other address's notification, sent first, was not
	// counted late.
	time.Sleep(200 * time.Millisecond)
	wait(2)
}
