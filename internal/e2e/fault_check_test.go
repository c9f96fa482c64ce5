package e2e

import (
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
)

// TestFaultCheckUnderLoss: `vrrpdoctor check` on a healthy keepalived pair
// (VRRPv3, 250 ms) while 10 % of the VRRP packets arriving at each node are
// dropped (nftables, numgen random) never reports a split brain: exit 0 or
// 1 (a warning about lost adverts is fair), never the split-brain finding.
// Three runs on each node.
func TestFaultCheckUnderLoss(t *testing.T) {
	t.Parallel()
	p := newCheckPair(t, 3, 250*time.Millisecond, "nft")
	p.waitHolders(t, p.a)
	for _, h := range []*netlab.Host{p.a, p.b} {
		nftLoss(t, h, 10)
	}
	codes := map[int]int{}
	for i := range 3 {
		for _, h := range []*netlab.Host{p.a, p.b} {
			r, raw, _ := checkNode(t, p.lab, h, nil, h.Name())
			codes[r.ExitCode]++
			if r.ExitCode > 1 || r.find("split-brain") != nil {
				t.Errorf("run %d on %s under 10%% loss: exit %d, findings %v\n%s", i+1, h.Name(), r.ExitCode, r.ids(), raw)
			}
			if holders, err := p.lab.Holders(vip); err != nil || len(holders) != 1 {
				t.Logf("VIP holders during run %d: %s (%v)", i+1, netlab.HostNames(holders), err)
			}
		}
	}
	t.Logf("FAULT check under 10%% loss, 6 runs: exit codes %v", codes)
}
