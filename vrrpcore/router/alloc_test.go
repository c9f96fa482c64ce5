package router

import (
	"reflect"
	"testing"
)

// A Master's adverts cost no allocation: with 100 instances at 0.1 s they
// were nearly all of the daemon's garbage (bench/daemon.sh).
func TestMasterTickAllocatesNothing(t *testing.T) {
	for name, c := range map[string]Config{"v2": v2Config(255), "v3": v3Config(255), "v6": v6Config(255)} {
		t.Run(name, func(t *testing.T) {
			m := started(t, c, Master)
			sent := 0
			allocs := testing.AllocsPerRun(100, func() {
				r := m.Tick(m.Deadline())
				sent += len(r.Adverts)
			})
			if allocs != 0 {
				t.Errorf("Tick while Master: %v allocations per call, want 0", allocs)
			}
			if sent < 100 {
				t.Errorf("%d adverts in 101 Ticks at the deadline, want one each", sent)
			}
		})
	}
}

// A Ready's adverts stay as they were while the Machine hands out fewer
// than advertSlots more, and appending to them (as the runtime does to
// merge two Readys) never writes over another Ready's.
func TestReadyAdvertsOutliveLaterCalls(t *testing.T) {
	m := started(t, v3Config(255), Master)
	first := m.Tick(m.Deadline())
	if len(first.Adverts) != 1 {
		t.Fatalf("first Tick: %d adverts, want 1", len(first.Adverts))
	}
	want := first.Adverts[0]
	want.Addrs = append(want.Addrs[:0:0], want.Addrs...)
	var later []Ready
	for range advertSlots - 1 {
		later = append(later, m.Tick(m.Deadline()))
		if n := len(later[len(later)-1].Adverts); n != 1 {
			t.Fatalf("Tick %d: %d adverts, want 1", len(later), n)
		}
	}
	if !reflect.DeepEqual(first.Adverts[0], want) {
		t.Fatalf("first advert changed by later calls:\n got %+v\nwant %+v", first.Adverts[0], want)
	}
	last := later[len(later)-1].Adverts
	keep := last[0]
	merged := append(first.Adverts, last...)
	if len(merged) != 2 || !reflect.DeepEqual(merged[1], keep) || !reflect.DeepEqual(last[0], keep) {
		t.Fatalf("appending one Ready's adverts to another's: merged %+v, last now %+v", merged, last[0])
	}
	if merged[0].Priority != want.Priority {
		t.Fatalf("merged[0] priority %d, want %d", merged[0].Priority, want.Priority)
	}
}
