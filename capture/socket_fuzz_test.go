package capture

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// FuzzDecodeSocketIPv4 feeds arbitrary bytes to the decoding of what a raw
// IPv4 socket delivers: it must never panic, and what it accepts must be a
// VRRP message inside the packet.
func FuzzDecodeSocketIPv4(f *testing.F) {
	src := netip.MustParseAddr("198.51.100.1")
	frame := testFrame(&testing.T{}, nil, src, vrrpcore.GroupIPv4, 112, nil)
	ip := frame[14:]
	f.Add(ip)
	f.Add(ip[:30])
	f.Add(append([]byte{0x4f}, ip[1:]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Packet
		err := decodeSocketIPv4(b, "eth0", &p)
		if err != nil {
			return
		}
		if !p.Src.Is4() || !p.Dst.Is4() || p.Length > len(b)-20 || p.Advert.Version < 2 {
			t.Fatalf("accepted %x as %+v", b, p)
		}
	})
}

func TestDecodeSocketIPv4Errors(t *testing.T) {
	src := netip.MustParseAddr("198.51.100.1")
	ip := testFrame(t, nil, src, vrrpcore.GroupIPv4, 112, nil)[14:]
	total := int(ip[2])<<8 | int(ip[3])
	ip = ip[:total] // without the Ethernet padding
	var p Packet
	if err := decodeSocketIPv4(ip, "eth0", &p); err != nil || p.Advert.VRID != 51 || p.IPID != 0 || p.TTL != 255 || p.Length != total-20 {
		t.Fatalf("valid packet: %+v %v", p, err)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"short", ip[:19], "capture: IPv4 packet of 19 bytes on eth0: shorter than an IPv4 header"},
		{"version", append([]byte{0x65}, ip[1:]...), "capture: packet from the IPv4 socket on eth0 has IP version 6 (byte offset 0)"},
		{"ihl", append([]byte{0x44}, ip[1:]...), "capture: IPv4 packet from 198.51.100.1 on eth0: header length 16 at byte offset 0 does not fit 32 bytes"},
		{"total", ip[:31], "capture: IPv4 packet from 198.51.100.1 on eth0: total length 32 at byte offset 2, 31 bytes received"},
		{"advert", append(append([]byte{}, ip[:2]...), append([]byte{0, 28}, ip[4:28]...)...), "capture: VRRP packet from 198.51.100.1 on eth0: "},
	} {
		if err := decodeSocketIPv4(tc.b, "eth0", &p); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
