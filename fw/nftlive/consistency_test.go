package nftlive_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/fw/internal/fwlab"
	"github.com/vrrpdoctor/vrrpdoctor/fw/nftlive"
)

// TestReadConsistentWhileChanging: Read takes one dump per chain and per
// set, so a ruleset changing meanwhile could be read half old, half new.
// Transactions here always give chains a and b (read far apart, with filler
// chains between them) the same number of rules; every reading Read returns
// must show them equal.
func TestReadConsistentWhileChanging(t *testing.T) {
	fwlab.Require(t, fwlab.Tools)
	ns := fwlab.NewNS(t)
	var b strings.Builder
	b.WriteString("table inet t {\n\tchain a {\n\t}\n")
	for i := range 40 {
		fmt.Fprintf(&b, "\tchain f%d {\n", i)
		for j := range 30 {
			fmt.Fprintf(&b, "\t\tip saddr 198.51.100.%d tcp dport %d counter accept\n", j, 1000+i)
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("\tchain b {\n\t}\n}\n")
	if _, err := ns.Exec([]byte(b.String()), "nft", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writeErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := 1; ; k = k%6 + 1 {
			select {
			case <-stop:
				return
			case <-time.After(40 * time.Millisecond):
			}
			tx := "flush chain inet t a\nflush chain inet t b\n" +
				strings.Repeat("add rule inet t a counter\n", k) + strings.Repeat("add rule inet t b counter\n", k)
			if _, err := ns.Exec([]byte(tx), "nft", "-f", "-"); err != nil {
				writeErr = err
				return
			}
		}
	}()
	deadline := time.Now().Add(2 * time.Second)
	reads, changing := 0, 0
	for time.Now().Before(deadline) {
		rs, err := nftlive.Read(nftlive.Options{NetNS: ns.FD})
		if err != nil {
			if strings.Contains(err.Error(), "changed during each") {
				changing++
				continue
			}
			t.Fatal(err)
		}
		reads++
		a, bb := rs.Tables[0].Chain("a"), rs.Tables[0].Chain("b")
		if a == nil || bb == nil || len(a.Rules) != len(bb.Rules) {
			t.Fatalf("inconsistent reading: chain a %+v, chain b %+v", a, bb)
		}
	}
	close(stop)
	wg.Wait()
	if writeErr != nil {
		t.Fatal(writeErr)
	}
	// Once the ruleset is quiet, Read must not give up.
	rs, err := nftlive.Read(nftlive.Options{NetNS: ns.FD})
	if err != nil {
		t.Fatalf("quiet ruleset: %v", err)
	}
	if a, bb := rs.Tables[0].Chain("a"), rs.Tables[0].Chain("b"); a == nil || bb == nil || len(a.Rules) == 0 || len(a.Rules) != len(bb.Rules) {
		t.Fatalf("quiet ruleset: chains a and b %+v %+v", a, bb)
	}
	t.Logf("%d consistent readings while the ruleset changed, %d gave up", reads, changing)
}
