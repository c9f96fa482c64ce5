package nftlive

import (
	"testing"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"

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

// FuzzDecodeRules: any NFT_MSG_NEWRULE payload decodes or fails with an
// error, and the decoded expressions convert to the model without a panic.
func FuzzDecodeRules(f *testing.F) {
	// inet table t, chain c: counter.
	f.Add([]byte("\x01\x00\x00\x00\x06\x00\x01\x00t\x00\x00\x00\x06\x00\x02\x00c\x00\x00\x00\x18\x00\x04\x80\x14\x00\x01\x80\x0c\x00\x01\x00counter\x00\x04\x00\x02\x80"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rules, err := decodeRules([]netlink.Message{{Data: b}})
		if err != nil {
			return
		}
		for _, r := range rules {
			for _, x := range decodeRule(nftables.TableFamily(r.family), nil, r.exprs) {
				_ = x.String()
			}
			_ = comment(r.userData)
		}
	})
}
