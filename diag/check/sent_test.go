package check

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// TestFillSent: this node's adverts as its speaker reported them set
// Local; none that reached the wire set nothing.
func TestFillSent(t *testing.T) {
	w := &Window{o: newObservation()}
	src := netip.MustParseAddr("198.51.100.2")
	t0 := time.Unix(1000, 0)
	ifc := &Interface{Name: "eth0", Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.2/24")}}
	in := &Instance{Interface: "eth0", VRID: 51, Family: 4}
	w.FillSent(in, ifc, nil, &Sent{Adverts: 0, Priority: 150})
	if !in.Observed || in.Local != nil || in.Sending() {
		t.Errorf("nothing on the wire: local %+v", in.Local)
	}
	in = &Instance{Interface: "eth0", VRID: 51, Family: 4}
	w.FillSent(in, ifc, nil, &Sent{Address: src, Adverts: 3, Resigned: 1, Versions: []int{3}, Priority: 150, Interval: time.Second, TTL: 255,
		Dsts: []netip.Addr{netip.MustParseAddr("224.0.0.18")}, Checksum: ChecksumCounts{PseudoHeader: 3}, First: t0, Last: t0.Add(2 * time.Second),
		Times: []time.Time{t0, t0.Add(time.Second)}})
	l := in.Local
	if l == nil || l.Address != src || l.Adverts != 3 || l.Resigned != 1 || !slices.Equal(l.Versions, []int{3}) || l.Priority != 150 ||
		l.Interval != 1 || !slices.Equal(l.TTLs, []int{255}) || len(l.Dsts) != 1 || l.Checksum.PseudoHeader != 3 || !l.First.Equal(t0) ||
		!l.Last.Equal(t0.Add(2*time.Second)) || l.VIPs == nil {
		t.Fatalf("local %+v", l)
	}
	if !in.Sending() || in.priority() != 150 {
		t.Error("not sending")
	}
}
