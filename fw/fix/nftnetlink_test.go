package fix

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/fw"
	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
	"github.com/vrrpdoctor/vrrpdoctor/fw/internal/fwlab"
	"github.com/vrrpdoctor/vrrpdoctor/fw/iptsave"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// readNS reads a lab namespace's nftables ruleset as nft prints it, and as
// the model.
func readNS(t *testing.T, ns *fwlab.NS) (string, *ruleset.Ruleset) {
	t.Helper()
	text, err := ns.Exec(nil, "nft", "list", "ruleset")
	if err != nil {
		t.Fatalf("nft list ruleset: %v: %s", err, text)
	}
	js, err := ns.Exec(nil, "nft", "-j", "list", "ruleset")
	if err != nil {
		t.Fatalf("nft -j list ruleset: %v: %s", err, js)
	}
	rs, err := fw.Parse("nft -j", js, iptsave.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return string(text), rs
}

// TestNetlinkInNamespace adds the planned rules over netlink in a lab
// namespace (never the caller's) — before a drop rule in an inet table and at
// the end of an ip6 chain whose policy drops — checks what nft lists and that
// the evaluator accepts the adverts on the ruleset read back, then deletes
// them by handle: the ruleset is as before.
func TestNetlinkInNamespace(t *testing.T) {
	fwlab.Require(t, map[string]string{"ip": "iproute2", "nft": "nftables"})
	ns := fwlab.NewNS(t)
	script := "table inet filter {\n chain input {\n  type filter hook input priority filter; policy accept;\n  ct state established accept\n  ip daddr 224.0.0.18 meta l4proto vrrp drop\n }\n}\n" +
		"table ip6 f6 {\n chain out {\n  type filter hook output priority filter; policy drop;\n  oifname \"lo\" accept\n }\n}\n"
	if out, err := ns.Exec([]byte(script), "nft", "-f", "-"); err != nil {
		t.Fatalf("nft -f: %v: %s", err, out)
	}
	before, rs := readNS(t, ns)
	targets := []Target{
		{Iface: "eth0", Family: 4, Group: group4, In: true},
		{Iface: "eth0", Family: 6, Group: group6, Self: netip.MustParseAddr("fe80::2"), Out: true},
	}
	plan, err := Make(rs, targets, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Rules) != 2 || len(plan.Refused) > 0 {
		t.Fatalf("plan: rules %+v, refused %v", plan.Rules, plan.Refused)
	}
	nl := Netlink{NetNS: ns.FD}
	if err := nl.Add(plan.Rules); err != nil {
		t.Fatal(err)
	}
	after, rs := readNS(t, ns)
	for _, want := range []string{
		"\t\tiifname \"eth0\" ip daddr 224.0.0.18 meta l4proto vrrp accept comment \"vrrpdoctor: allow VRRP\"\n\t\tip daddr 224.0.0.18 meta l4proto vrrp drop\n",
		"\t\toifname \"lo\" accept\n\t\toifname \"eth0\" ip6 daddr ff02::12 meta l4proto vrrp accept comment \"vrrpdoctor: allow VRRP\"\n",
	} {
		if !strings.Contains(after, want) {
			t.Errorf("nft lists no %q:\n%s", want, after)
		}
	}
	for _, c := range plan.Checks {
		res, err := eval.Evaluate(rs, c.Packet)
		if err != nil {
			t.Fatal(err)
		}
		if res.Verdict != eval.Accept {
			t.Errorf("%s: %s by %s on the ruleset read back", c.Label, res.Verdict, refString(res.Rule))
		}
	}
	marked := Marked(rs)
	if len(marked) != 2 {
		t.Fatalf("marked %+v", marked)
	}
	if err := nl.Delete(marked); err != nil {
		t.Fatal(err)
	}
	if again, _ := readNS(t, ns); again != before {
		t.Errorf("after deleting:\n%s\nbefore:\n%s", again, before)
	}
}
