package diag

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

// adverts returns the adverts of the events in time order.
func adverts(evs ...[]event) []event {
	var all []event
	for _, e := range evs {
		all = append(all, e...)
	}
	slices.SortStableFunc(all, func(a, b event) int { return int(a.at - b.at) })
	return all
}

// TestAnalyzerReset: an analyzer reset and fed other adverts reports as a
// new one fed those adverts only, and Sources gives each group's senders
// as Report does.
func TestAnalyzerReset(t *testing.T) {
	// The first set: split brain with priority changes, more senders and
	// groups than the second, which has other addresses, VLANs, versions.
	prioA := nodeA
	prioA.prio = 200
	first := adverts(every(nodeA, 0, 5*time.Second, time.Second), every(prioA, 5*time.Second, 8*time.Second, time.Second),
		every(nodeB, 500*time.Millisecond, 10*time.Second, time.Second),
		every(sender{src: "198.51.100.3", prio: 90, vlan: 7, vips: []string{"203.0.113.1", "203.0.113.2"}}, 0, 3*time.Second, 300*time.Millisecond),
		every(sender{src: "2001:db8::1", prio: 100, version: 3, interval: 100 * time.Millisecond}, 0, 2*time.Second, 100*time.Millisecond))
	second := adverts(every(sender{src: "198.51.100.9", prio: 120, ttl: 254, auth: "pw"}, 0, 4*time.Second, time.Second),
		every(sender{src: "198.51.100.3", prio: 80, version: 3, interval: 200 * time.Millisecond, vips: []string{"203.0.113.5"}}, 0, 2*time.Second, 150*time.Millisecond),
		every(nodeA, time.Second, 3*time.Second, time.Second))
	reused := NewAnalyzer()
	for range 2 {
		for _, e := range first {
			reused.Add(e.s.packet(e.at))
		}
		reused.Reset()
		for _, e := range second {
			reused.Add(e.s.packet(e.at))
		}
		fresh := NewAnalyzer()
		for _, e := range second {
			fresh.Add(e.s.packet(e.at))
		}
		got, want := reused.Report(nil), fresh.Report(nil)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("after Reset:\n%+v\nfresh:\n%+v", got, want)
		}
		for _, g := range want.Groups {
			var srcs []Source
			reused.Sources(g.GroupKey, func(s *Source) {
				c := *s
				c.PriorityChanges, c.Intervals, c.VIPs, c.TTLs = cloneOrNil(c.PriorityChanges), cloneOrNil(c.Intervals), cloneOrNil(c.VIPs), cloneOrNil(c.TTLs)
				srcs = append(srcs, c)
			})
			if !reflect.DeepEqual(srcs, g.Sources) {
				t.Errorf("Sources of %+v:\n%+v\nReport:\n%+v", g.GroupKey, srcs, g.Sources)
			}
		}
		reused.Reset()
	}
	reused.Sources(GroupKey{VRID: 51, Version: 2, Family: 4}, func(*Source) { t.Error("a sender after Reset") })
}
