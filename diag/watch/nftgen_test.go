package watch

import (
	"os"
	"testing"
)

// TestNftGen reads the nftables generation (read-only) twice: it is
// stable while nothing changes.
func TestNftGen(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_NET_ADMIN) to read the nftables generation")
	}
	c, err := dialNetfilter()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	g1, err := nftGen(c)
	if err != nil {
		t.Fatal(err)
	}
	g2, err := nftGen(c)
	if err != nil {
		t.Fatal(err)
	}
	if g1 != g2 {
		t.Logf("generation moved while reading (%d, %d): another process changed the ruleset", g1, g2)
	}
}
