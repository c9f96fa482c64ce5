package eval_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
	"github.com/vrrpdoctor/vrrpdoctor/fw/iptsave"
	"github.com/vrrpdoctor/vrrpdoctor/fw/nftjson"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// nftDoc builds an `nft -j` document from table, chain and rule objects.
func nftDoc(objs ...string) []byte {
	return []byte(`{"nftables": [` + strings.Join(objs, ",") + `]}`)
}

func table(fam, name string) string {
	return `{"table": {"family": "` + fam + `", "name": "` + name + `", "handle": 1}}`
}

func baseChain(fam, tbl, name, hook string, prio int, policy string) string {
	return `{"chain": {"family": "` + fam + `", "table": "` + tbl + `", "name": "` + name + `", "handle": 1, "type": "filter", "hook": "` + hook + `", "prio": ` + itoa(prio) + `, "policy": "` + policy + `"}}`
}

func rule(fam, tbl, ch string, handle int, exprs string) string {
	return `{"rule": {"family": "` + fam + `", "table": "` + tbl + `", "chain": "` + ch + `", "handle": ` + itoa(handle) + `, "expr": [` + exprs + `]}}`
}

func itoa(n int) string {
	neg := n < 0
	if neg {
		n = -n
	}
	s := ""
	for {
		s = string(rune('0'+n%10)) + s
		n /= 10
		if n == 0 {
			break
		}
	}
	if neg {
		s = "-" + s
	}
	return s
}

const (
	isVRRP    = `{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "vrrp"}}`
	ctNew     = `{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "new"}}`
	accept    = `{"accept": null}`
	drop      = `{"drop": null}`
	limit     = `{"limit": {"rate": 10, "per": "second"}}`
	counter   = `{"counter": {"packets": 0, "bytes": 0}}`
	fromPeer  = `{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "198.51.100.1"}}`
	socketSel = `{"match": {"op": "==", "left": {"socket": {"key": "transparent"}}, "right": 1}}`
)

func parse(t *testing.T, doc []byte) *ruleset.Ruleset {
	t.Helper()
	rs, err := nftjson.Parse(doc, "test")
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

var advert = eval.VRRPAdvert(eval.In, "eth0", netip.MustParseAddr("198.51.100.1"), netip.Addr{})

func evaluate(t *testing.T, rs *ruleset.Ruleset, p eval.Packet) eval.Result {
	t.Helper()
	res, err := eval.Evaluate(rs, p)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestEqualPriorityOrderMatters(t *testing.T) {
	// Two tables at input priority 0: one drops, one rejects. The kernel
	// runs them in registration order, which a ruleset does not show.
	rs := parse(t, nftDoc(
		table("ip", "a"), baseChain("ip", "a", "in", "input", 0, "accept"), rule("ip", "a", "in", 3, isVRRP+","+drop),
		table("ip", "b"), baseChain("ip", "b", "in", "input", 0, "accept"), rule("ip", "b", "in", 3, isVRRP+`,{"reject": null}`),
	))
	res := evaluate(t, rs, advert)
	if res.Verdict != eval.Unknown || !strings.Contains(res.UnknownReason, "registration order") {
		t.Fatalf("got %s (%s), want unknown because of the order", res.Verdict, res.UnknownReason)
	}
	// Both drop: the verdict is sure, the deciding rule is not.
	rs = parse(t, nftDoc(
		table("ip", "a"), baseChain("ip", "a", "in", "input", 0, "accept"), rule("ip", "a", "in", 3, isVRRP+","+drop),
		table("ip", "b"), baseChain("ip", "b", "in", "input", 0, "accept"), rule("ip", "b", "in", 3, isVRRP+","+drop),
	))
	res = evaluate(t, rs, advert)
	if res.Verdict != eval.Drop || res.Rule != nil || len(res.Notes) == 0 {
		t.Fatalf("got %s by %v %v, want drop with no single rule and a note", res.Verdict, res.Rule, res.Notes)
	}
	// The same two tables where both accept: the order does not matter.
	rs = parse(t, nftDoc(
		table("ip", "a"), baseChain("ip", "a", "in", "input", 0, "drop"), rule("ip", "a", "in", 3, isVRRP+","+accept),
		table("ip", "b"), baseChain("ip", "b", "in", "input", 0, "accept"),
	))
	if res := evaluate(t, rs, advert); res.Verdict != eval.Accept {
		t.Fatalf("got %s (%s), want accept", res.Verdict, res.UnknownReason)
	}
}

func TestLimitIrrelevantOrDecisive(t *testing.T) {
	// limit ... accept before a policy accept: accepted either way.
	rs := parse(t, nftDoc(table("inet", "f"), baseChain("inet", "f", "in", "input", 0, "accept"),
		rule("inet", "f", "in", 3, isVRRP+","+limit+","+accept)))
	res := evaluate(t, rs, advert)
	if res.Verdict != eval.Accept || len(res.Notes) == 0 {
		t.Fatalf("got %s %v, want accept with a note", res.Verdict, res.Notes)
	}
	// limit ... accept before policy drop: depends on the rate.
	rs = parse(t, nftDoc(table("inet", "f"), baseChain("inet", "f", "in", "input", 0, "drop"),
		rule("inet", "f", "in", 3, isVRRP+","+limit+","+accept)))
	res = evaluate(t, rs, advert)
	if res.Verdict != eval.Unknown || !strings.Contains(res.UnknownReason, "limit rate 10/second") {
		t.Fatalf("got %s (%s), want unknown naming the limit", res.Verdict, res.UnknownReason)
	}
}

func TestCTStateBeforeConntrack(t *testing.T) {
	// At priority -300 (raw) conntrack has not run: ct state is invalid.
	rs := parse(t, nftDoc(table("ip", "r"), baseChain("ip", "r", "pre", "prerouting", -300, "accept"),
		rule("ip", "r", "pre", 3, ctNew+","+drop)))
	if res := evaluate(t, rs, advert); res.Verdict != eval.Accept {
		t.Fatalf("got %s by %v, want accept (ct state is invalid before conntrack)", res.Verdict, res.Rule)
	}
	rs = parse(t, nftDoc(table("ip", "r"), baseChain("ip", "r", "pre", "prerouting", -150, "accept"),
		rule("ip", "r", "pre", 3, ctNew+","+drop)))
	if res := evaluate(t, rs, advert); res.Verdict != eval.Drop {
		t.Fatalf("got %s, want drop (ct state new after conntrack)", res.Verdict)
	}
}

func TestUnknownSourceAndUnsupported(t *testing.T) {
	rs := parse(t, nftDoc(table("ip", "f"), baseChain("ip", "f", "in", "input", 0, "accept"),
		rule("ip", "f", "in", 3, fromPeer+","+drop)))
	p := eval.VRRPAdvert(eval.In, "eth0", netip.Addr{}, netip.Addr{})
	res := evaluate(t, rs, p)
	if res.Verdict != eval.Unknown || !strings.Contains(res.UnknownReason, "source address is not given") {
		t.Fatalf("got %s (%s)", res.Verdict, res.UnknownReason)
	}
	rs = parse(t, nftDoc(table("ip", "f"), baseChain("ip", "f", "in", "input", 0, "accept"),
		rule("ip", "f", "in", 3, socketSel+","+drop)))
	res = evaluate(t, rs, advert)
	if res.Verdict != eval.Unknown || !strings.Contains(res.UnknownReason, "socket") {
		t.Fatalf("got %s (%s)", res.Verdict, res.UnknownReason)
	}
	// An unsupported match on a rule that only counts changes nothing.
	rs = parse(t, nftDoc(table("ip", "f"), baseChain("ip", "f", "in", "input", 0, "accept"),
		rule("ip", "f", "in", 3, socketSel+","+counter)))
	if res := evaluate(t, rs, advert); res.Verdict != eval.Accept {
		t.Fatalf("got %s (%s), want accept", res.Verdict, res.UnknownReason)
	}
}

func TestIptablesLegacyAndNftOnSameHook(t *testing.T) {
	// Legacy filter INPUT (priority 0) drops; native nft at +10 accepts:
	// the drop is final whatever the order.
	leg, err := iptsave.Parse([]byte("# Generated by iptables-save v1.8.9 on x\n*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p vrrp -j DROP\nCOMMIT\n"), "legacy", iptsave.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rs := parse(t, nftDoc(table("inet", "f"), baseChain("inet", "f", "in", "input", 10, "drop"), rule("inet", "f", "in", 3, isVRRP+","+accept)))
	if err := rs.Add(leg); err != nil {
		t.Fatal(err)
	}
	res := evaluate(t, rs, advert)
	if res.Verdict != eval.Drop || res.Rule == nil || res.Rule.Backend != ruleset.BackendIptablesLegacy || res.Rule.Position != 1 {
		t.Fatalf("got %s by %v, want drop by the legacy rule", res.Verdict, res.Rule)
	}
	// Outgoing adverts do not cross INPUT.
	out := eval.VRRPAdvert(eval.Out, "eth0", netip.MustParseAddr("198.51.100.2"), netip.Addr{})
	if res := evaluate(t, rs, out); res.Verdict != eval.Accept || len(res.Path) != 0 {
		t.Fatalf("outgoing: %s %v", res.Verdict, res.Path)
	}
}

func TestPacketChecks(t *testing.T) {
	rs := &ruleset.Ruleset{}
	bad := []eval.Packet{
		{Direction: "sideways", Dst: netip.MustParseAddr("224.0.0.18"), InIface: "eth0"},
		{Direction: eval.In, InIface: "eth0"},
		{Direction: eval.In, Dst: netip.MustParseAddr("224.0.0.18")},
		{Direction: eval.In, InIface: "eth0", Src: netip.MustParseAddr("fe80::1"), Dst: netip.MustParseAddr("224.0.0.18")},
		{Direction: eval.In, InIface: "eth0", Dst: netip.MustParseAddr("224.0.0.18"), CTState: "sleepy"},
	}
	for _, p := range bad {
		if _, err := eval.Evaluate(rs, p); err == nil {
			t.Errorf("%+v: no error", p)
		}
	}
}

// TestNATChainSeesFirstAdvertOnly: nat chains see only the first packet of
// a conntrack flow, so the accept that names the fate of the adverts is the
// filter chain's (measured: testdata kube-proxy-like, where the kernel's
// trace of the second advert on shows no nat INPUT), while a drop in a nat
// chain is final for all of them.
func TestNATChainSeesFirstAdvertOnly(t *testing.T) {
	save := "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n%sCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
	p := eval.VRRPAdvert(eval.In, "eth0", netip.MustParseAddr("198.51.100.1"), netip.Addr{})
	for _, c := range []struct {
		natRules, verdict, chain string
	}{
		{"", "accept", "filter INPUT"},
		{"-A INPUT -p vrrp -j DROP\n", "drop", "nat INPUT"},
	} {
		rs, err := iptsave.Parse([]byte(strings.Replace(save, "%s", c.natRules, 1)), "save", iptsave.Options{Backend: ruleset.BackendIptablesNFT, Family: ruleset.FamilyIP})
		if err != nil {
			t.Fatal(err)
		}
		res, err := eval.Evaluate(rs, p)
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Verdict) != c.verdict || res.Rule == nil || res.Rule.Table+" "+res.Rule.Chain != c.chain {
			t.Errorf("nat rules %q: %s by %v, want %s by %s", c.natRules, res.Verdict, res.Rule, c.verdict, c.chain)
		}
	}
}
