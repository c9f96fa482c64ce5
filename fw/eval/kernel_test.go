package eval_test

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/fw"
	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
	"github.com/vrrpdoctor/vrrpdoctor/fw/iptsave"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// expected mirrors testdata/rulesets/*/expected.json, written by
// fw/internal/rulesetlab from what the kernel did with real adverts.
type expected struct {
	Direction string `json:"direction"`
	Family    int    `json:"family"`
	InIface   string `json:"in_iface"`
	OutIface  string `json:"out_iface"`
	Src       string `json:"src"`
	Dst       string `json:"dst"`
	Wire      int    `json:"wire"`
	Socket    int    `json:"socket"`
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

// undecidable lists the scenarios whose verdict depends on something no
// ruleset holds, with the word the reason must contain.
var undecidable = map[string]string{
	"nft-limit": "limit rate",
	// nft 1.0.6's JSON omits a netdev chain's device; the live reader has it.
	"nft-netdev-ingress-drop": "does not say which devices",
}

func loadScenario(t *testing.T, dir string) (*ruleset.Ruleset, expected) {
	t.Helper()
	var exp expected
	b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, name := range []string{"nft.json", "iptables-nft-save.txt", "ip6tables-nft-save.txt", "iptables-legacy-save.txt", "ip6tables-legacy-save.txt"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			files = append(files, p)
		}
	}
	rs, err := fw.LoadFiles(files, iptsave.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rs, exp
}

func packetOf(exp expected) eval.Packet {
	iface := exp.InIface
	if exp.Direction == "out" {
		iface = exp.OutIface
	}
	return eval.VRRPAdvert(eval.Direction(exp.Direction), iface, netip.MustParseAddr(exp.Src), netip.MustParseAddr(exp.Dst))
}

// TestKernelObserved evaluates every ruleset in testdata/rulesets for the
// advert the lab sent through it and compares with what the kernel did.
func TestKernelObserved(t *testing.T) {
	dirs, err := filepath.Glob("../../testdata/rulesets/*/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 30 {
		t.Fatalf("found %d kernel-observed rulesets, want at least 30", len(dirs))
	}
	for _, f := range dirs {
		dir := filepath.Dir(f)
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			rs, exp := loadScenario(t, dir)
			res, err := eval.Evaluate(rs, packetOf(exp))
			if err != nil {
				t.Fatal(err)
			}
			if word, ok := undecidable[name]; ok {
				if res.Verdict != eval.Unknown || !strings.Contains(res.UnknownReason, word) {
					t.Fatalf("verdict %s (%s), want unknown because of %q", res.Verdict, res.UnknownReason, word)
				}
				return
			}
			if res.Verdict == eval.Unknown {
				t.Fatalf("unknown: %s", res.UnknownReason)
			}
			if exp.Delivered != (res.Verdict == eval.Accept) {
				t.Fatalf("kernel delivered=%v (wire %d, socket %d); evaluator says %s by %v", exp.Delivered, exp.Wire, exp.Socket, res.Verdict, res.Rule)
			}
			d := exp.DecidedBy
			if d == nil {
				return
			}
			r := res.Rule
			if r == nil {
				t.Fatalf("no deciding rule; kernel: %+v", d)
			}
			if string(r.Backend) != d.Backend || string(r.Family) != d.Family || r.Table != d.Table || r.Chain != d.Chain || r.Policy != d.Policy ||
				(d.Handle != 0 && r.Handle != d.Handle) || (d.Position != 0 && r.Position != d.Position) {
				t.Fatalf("decided by %s; kernel: %+v", r, d)
			}
			wantReject := strings.Contains(strings.ToLower(d.Text), "reject")
			if wantReject != (res.Verdict == eval.Reject) {
				t.Fatalf("verdict %s, kernel's deciding rule %q", res.Verdict, d.Text)
			}
		})
	}
}

// TestDirectRuleNotFinal is the case the product exists for: with firewalld's
// nftables backend the classic direct rule accepts the advert in
// iptables-nft's ip filter INPUT, and firewalld's zone rejects it later.
func TestDirectRuleNotFinal(t *testing.T) {
	rs, exp := loadScenario(t, "../../testdata/rulesets/firewalld-nft-direct")
	res, err := eval.Evaluate(rs, packetOf(exp))
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != eval.Reject || res.Rule == nil || res.Rule.Table != "firewalld" || res.Rule.Chain != "filter_IN_public" || res.Rule.Owner != ruleset.OwnerFirewalld {
		t.Fatalf("got %s by %v, want reject by firewalld's filter_IN_public", res.Verdict, res.Rule)
	}
	found := false
	for _, s := range res.Path {
		if s.Backend == ruleset.BackendIptablesNFT && s.Table == "filter" && s.Chain == "INPUT" && s.Action == "accept" {
			found = true
			if s.Note != eval.NotFinal {
				t.Errorf("direct rule's accept noted %q, want %q", s.Note, eval.NotFinal)
			}
			if !strings.Contains(s.Text, "-p vrrp") {
				t.Errorf("direct rule text %q, want the iptables form", s.Text)
			}
		}
	}
	if !found {
		t.Fatalf("direct rule's accept missing from the path: %+v", res.Path)
	}
}

// TestIPv6SenderUnknown: the sender of a VRRPv3 advert over IPv6 is not
// known from this host's keepalived.conf, but it is link-local, which is
// enough for firewalld's reverse-path rule (fib saddr . mark . iif oif
// missing drop) not to apply.
func TestIPv6SenderUnknown(t *testing.T) {
	rs, _ := loadScenario(t, "../../testdata/rulesets/firewalld-nft-ipv6-default")
	p := eval.VRRPAdvert(eval.In, "eth0", netip.Addr{}, netip.MustParseAddr("ff02::12"))
	if !p.SrcLinkLocal || !strings.Contains(p.String(), "any link-local -> ff02::12") {
		t.Fatalf("packet %s", p)
	}
	res, err := eval.Evaluate(rs, p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != eval.Reject || res.Rule == nil || res.Rule.Chain != "filter_IN_public" {
		t.Fatalf("%s by %v (%s)", res.Verdict, res.Rule, res.UnknownReason)
	}
}
