package fw

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
	"github.com/vrrpdoctor/vrrpdoctor/fw/internal/fwlab"
	"github.com/vrrpdoctor/vrrpdoctor/fw/iptsave"
)

// kernelExpected mirrors testdata/rulesets/*/expected.json.
type kernelExpected struct {
	Direction string `json:"direction"`
	InIface   string `json:"in_iface"`
	OutIface  string `json:"out_iface"`
	Src       string `json:"src"`
	Dst       string `json:"dst"`
	Delivered bool   `json:"delivered"`
	DecidedBy *struct {
		Backend  string `json:"backend"`
		Family   string `json:"family"`
		Table    string `json:"table"`
		Chain    string `json:"chain"`
		Handle   uint64 `json:"handle"`
		Position int    `json:"position"`
		Policy   bool   `json:"policy"`
		Text     string `json:"text"`
	} `json:"decided_by"`
}

func readExpected(t *testing.T, dir string) (kernelExpected, eval.Packet) {
	t.Helper()
	var e kernelExpected
	b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	iface := e.InIface
	if e.Direction == "out" {
		iface = e.OutIface
	}
	return e, eval.VRRPAdvert(eval.Direction(e.Direction), iface, netip.MustParseAddr(e.Src), netip.MustParseAddr(e.Dst))
}

// childEnv, when set, makes TestLiveChild read the live ruleset of the
// namespace it runs in, explain the scenario's advert and write the
// explanation as JSON to the file named by childOut.
const (
	childEnv = "VRRPDOCTOR_FW_LIVE_SCENARIO"
	childOut = "VRRPDOCTOR_FW_LIVE_OUT"
)

func TestLiveChild(t *testing.T) {
	dir := os.Getenv(childEnv)
	if dir == "" {
		t.Skip("run by TestReadLiveMatchesKernel inside a lab namespace")
	}
	_, p := readExpected(t, dir)
	ex, err := Explain(context.Background(), Options{Packet: p})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(os.Getenv(childOut))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := json.NewEncoder(f).Encode(struct {
		*Explanation
		Reason string
	}{ex, ex.UnknownReason}); err != nil {
		t.Fatal(err)
	}
}

// TestReadLiveMatchesKernel loads every testdata ruleset into a namespace
// with the real tools, reads it back live (netlink, iptables-nft-save,
// iptables-legacy-save) from inside that namespace, and checks the verdict
// and deciding rule against what the kernel did with real adverts.
func TestReadLiveMatchesKernel(t *testing.T) {
	fwlab.Require(t, fwlab.Tools)
	dirs, err := filepath.Glob("../testdata/rulesets/*/expected.json")
	if err != nil || len(dirs) < 30 {
		t.Fatalf("testdata: %d scenarios, %v", len(dirs), err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range dirs {
		dir, _ := filepath.Abs(filepath.Dir(f))
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			exp, _ := readExpected(t, dir)
			ns := fwlab.NewNS(t)
			if err := ns.Load(dir); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "result.json")
			cmd := exec.Command("ip", "netns", "exec", ns.Name, self, "-test.run", "^TestLiveChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), childEnv+"="+dir, childOut+"="+out)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("child: %v\n%s", err, b)
			}
			var got struct {
				Verdict  eval.Verdict
				Rule     *eval.RuleRef
				Reason   string
				Warnings []string
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if len(got.Warnings) > 0 {
				t.Errorf("warnings: %v", got.Warnings)
			}
			if name == "nft-limit" {
				if got.Verdict != eval.Unknown || !strings.Contains(got.Reason, "limit") {
					t.Fatalf("got %s (%s), want unknown because of the limit", got.Verdict, got.Reason)
				}
				return
			}
			if got.Verdict == eval.Unknown {
				t.Fatalf("unknown: %s", got.Reason)
			}
			if exp.Delivered != (got.Verdict == eval.Accept) {
				t.Fatalf("kernel delivered=%v, live evaluation %s by %v", exp.Delivered, got.Verdict, got.Rule)
			}
			d := exp.DecidedBy
			if d == nil {
				return
			}
			r := got.Rule
			if r == nil {
				t.Fatalf("no deciding rule; kernel: %+v", d)
			}
			pos := d.Position
			if d.Handle != 0 {
				pos = positionOf(t, dir, d.Family, d.Table, d.Chain, d.Handle)
			}
			if string(r.Backend) != d.Backend || string(r.Family) != d.Family || r.Table != d.Table || r.Chain != d.Chain || r.Policy != d.Policy || (pos != 0 && r.Position != pos) {
				t.Fatalf("decided by %s; kernel: %+v (position %d)", r, d, pos)
			}
		})
	}
}

// positionOf finds the position of a rule, given by handle, in the saved
// JSON (handles change when a ruleset is loaded again, positions do not).
func positionOf(t *testing.T, dir, fam, table, chain string, handle uint64) int {
	t.Helper()
	rs, err := LoadFiles([]string{filepath.Join(dir, "nft.json")}, iptsave.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range rs.Tables {
		if string(tb.Family) != fam || tb.Name != table {
			continue
		}
		if c := tb.Chain(chain); c != nil {
			for _, r := range c.Rules {
				if r.Handle == handle {
					return r.Position
				}
			}
		}
	}
	t.Fatalf("rule handle %d not in %s %s %s", handle, fam, table, chain)
	return 0
}

// TestExplainLiveFirewalld is the product's case, live: a real firewalld
// 1.3.3 (nftables backend, default zone) with the classic direct rules, in a
// lab namespace. Explain, run inside that namespace, must answer reject by
// firewalld's filter_IN_public, show the direct rule's accept as not final,
// and know from D-Bus that the direct rule is firewalld's.
func TestExplainLiveFirewalld(t *testing.T) {
	tools := map[string]string{}
	for k, v := range fwlab.Tools {
		tools[k] = v
	}
	for k, v := range fwlab.FirewalldTools {
		tools[k] = v
	}
	fwlab.Require(t, tools)
	ns := fwlab.NewNS(t)
	bus := ns.StartFirewalld(t, "nftables")
	for _, args := range [][]string{
		{"--permanent", "--direct", "--add-rule", "ipv4", "filter", "INPUT", "0", "--in-interface", "eth0", "--destination", "224.0.0.18", "--protocol", "vrrp", "-j", "ACCEPT"},
		{"--permanent", "--direct", "--add-rule", "ipv4", "filter", "OUTPUT", "0", "--out-interface", "eth0", "--destination", "224.0.0.18", "--protocol", "vrrp", "-j", "ACCEPT"},
		{"--reload"},
	} {
		if out, err := ns.FirewallCmd(bus, args...); err != nil {
			t.Fatalf("firewall-cmd %v: %v: %s", args, err, out)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("../testdata/rulesets/firewalld-nft-direct")
	out := filepath.Join(t.TempDir(), "result.json")
	cmd := exec.Command("ip", "netns", "exec", ns.Name, self, "-test.run", "^TestLiveChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+dir, childOut+"="+out, "DBUS_SYSTEM_BUS_ADDRESS="+bus)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Verdict   eval.Verdict
		Rule      *eval.RuleRef
		Path      []eval.Step
		Reason    string
		Warnings  []string
		Firewalld *struct {
			Running bool
			Backend string
			Direct  []any `json:"direct_rules"`
		}
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Verdict != eval.Reject || got.Rule == nil || got.Rule.Table != "firewalld" || got.Rule.Chain != "filter_IN_public" || got.Rule.Owner != "firewalld" {
		t.Fatalf("got %s by %v (%s)", got.Verdict, got.Rule, got.Reason)
	}
	if got.Firewalld == nil || !got.Firewalld.Running || got.Firewalld.Backend != "nftables" || len(got.Firewalld.Direct) != 2 {
		t.Fatalf("firewalld info %+v", got.Firewalld)
	}
	found := false
	for _, s := range got.Path {
		if s.Backend == "iptables-nft" && s.Chain == "INPUT" && s.Action == "accept" {
			found = true
			if s.Note != eval.NotFinal || s.Owner != "firewalld" || !strings.Contains(s.Text, "-p vrrp") {
				t.Errorf("direct rule step %+v", s)
			}
		}
	}
	if !found {
		t.Fatalf("direct rule missing from the path: %s", b)
	}
	if len(got.Warnings) > 0 {
		t.Errorf("warnings %v", got.Warnings)
	}
}
