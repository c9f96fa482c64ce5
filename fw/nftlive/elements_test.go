package nftlive

import (
	"math/rand"
	"strings"
	"testing"

	"github.com/google/nftables"

	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// TestIntervalPairingIgnoresDumpOrder: the boundaries of adjacent ranges
// share a key; whatever order the elements come in (the kernel's rbtree
// dumps them from the highest key down, a start before the end of equal
// key), each range must end where the next begins.
func TestIntervalPairingIgnoresDumpOrder(t *testing.T) {
	start := func(a ...byte) nftables.SetElement { return nftables.SetElement{Key: a} }
	end := func(a ...byte) nftables.SetElement { return nftables.SetElement{Key: a, IntervalEnd: true} }
	// 203.0.113.0/26, 203.0.113.64/26, 203.0.113.128-203.0.113.254,
	// 198.51.100.7, 240.0.0.0-255.255.255.255, and nft's old end marker at 0.
	kernel := []nftables.SetElement{
		start(240, 0, 0, 0),
		end(203, 0, 113, 255), start(203, 0, 113, 128),
		end(203, 0, 113, 128), start(203, 0, 113, 64),
		end(203, 0, 113, 64), start(203, 0, 113, 0),
		end(198, 51, 100, 8), start(198, 51, 100, 7),
		end(0, 0, 0, 0),
	}
	want := "198.51.100.7, 203.0.113.0/26, 203.0.113.64/26, 203.0.113.128-203.0.113.254, 240.0.0.0/4"
	ms := &ruleset.Set{Name: "s", Type: []string{"ipv4_addr"}, Flags: []string{"interval"}}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 20; i++ {
		els := append([]nftables.SetElement(nil), kernel...)
		if i > 0 {
			rng.Shuffle(len(els), func(a, b int) { els[a], els[b] = els[b], els[a] })
		}
		got, msg := elements(ms, els)
		if msg != "" {
			t.Fatal(msg)
		}
		var s []string
		for _, e := range got {
			s = append(s, e.String())
		}
		if strings.Join(s, ", ") != want {
			t.Fatalf("order %d: got %s, want %s", i, strings.Join(s, ", "), want)
		}
	}
}

// TestConcatKeyBadLength: a key that does not fit the concatenation's
// types is reported, not decoded from the wrong bytes.
func TestConcatKeyBadLength(t *testing.T) {
	ms := &ruleset.Set{Name: "s", Type: []string{"ipv4_addr", "inet_service"}}
	for _, k := range [][]byte{{203, 0, 113, 1}, {203, 0, 113, 1, 0, 22}, {203, 0, 113, 1, 0, 22, 0, 0, 0}} {
		if _, msg := elements(ms, []nftables.SetElement{{Key: k}}); msg == "" {
			t.Errorf("key %x: no error", k)
		}
	}
	got, msg := elements(ms, []nftables.SetElement{{Key: []byte{203, 0, 113, 1, 0, 22, 0, 0}}})
	if msg != "" || len(got) != 1 || got[0].String() != "203.0.113.1 . 22" {
		t.Errorf("got %v (%s), want 203.0.113.1 . 22", got, msg)
	}
}
