package watch

import (
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/diag/check"
)

// TestWireRingFor: the wire ring grows with the adverts the interface's
// instances send, within its bounds; other interfaces' instances do not
// count.
func TestWireRingFor(t *testing.T) {
	many := func(n int, iface string, interval float64) []check.Instance {
		ins := make([]check.Instance, n)
		for i := range ins {
			ins[i] = check.Instance{Interface: iface, VRID: uint8(i + 1), AdvertInt: interval}
		}
		return ins
	}
	for _, c := range []struct {
		name string
		base []check.Instance
		want int
	}{
		{"one instance at 1 s", many(1, "eth0", 1), wireRingMin},
		{"100 instances at 0.1 s", many(100, "eth0", 0.1), wireRingMax},
		{"20 instances at 0.1 s", many(20, "eth0", 0.1), 2 * 400 * wireSlot},
		{"interval not known", many(1, "eth0", 0), 2 * 200 * wireSlot},
		{"instances on another interface", many(100, "eth1", 0.1), wireRingMin},
	} {
		if got := wireRingFor(c.base, "eth0"); got != c.want {
			t.Errorf("%s: %d bytes, want %d", c.name, got, c.want)
		}
	}
}
