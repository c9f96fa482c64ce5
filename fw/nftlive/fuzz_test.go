package nftlive

import (
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// FuzzDecodeElements: any NFT_MSG_NEWSETELEM payload decodes or fails with
// an error, and whatever decodes converts to elements of sets of several
// key types (plain, interval, concatenated, verdict map) without a panic.
func FuzzDecodeElements(f *testing.F) {
	// 203.0.113.0 flagged as an interval end.
	f.Add([]byte("\x02\x00\x00\x00\x1c\x00\x03\x80\x18\x00\x01\x80\x0c\x00\x01\x80\x08\x00\x01\x00\xcb\x00\x71\x00\x08\x00\x03\x00\x00\x00\x00\x01"))
	sets := []*ruleset.Set{
		{Name: "a", Type: []string{"ipv4_addr"}},
		{Name: "i", Type: []string{"ipv4_addr"}, Flags: []string{"interval"}},
		{Name: "s", Type: []string{"inet_service"}, Flags: []string{"interval"}},
		{Name: "c", Type: []string{"ipv4_addr", "inet_service"}},
		{Name: "e", Type: []string{"ether_addr", "ipv6_addr"}, Flags: []string{"interval"}},
		{Name: "v", Type: []string{"ifname"}, Map: "verdict"},
		{Name: "m", Type: []string{"ipv4_addr"}, Map: "mark"},
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		els, err := decodeElements(b)
		if err != nil {
			return
		}
		for _, s := range sets {
			out, msg := elements(s, els)
			if msg == "" {
				for _, e := range out {
					_ = e.String()
				}
			}
		}
	})
}
