package check

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// ruleDesc names the rule that decided a verdict for people: its text, chain,
// table, backend and owner, with firewalld's zone when firewalld owns it.
func ruleDesc(v Verdict, fwd *Firewalld) string {
	r := v.Rule
	if r == nil {
		return "no rule (the evaluator named none)"
	}
	where := fmt.Sprintf("chain %s of table %s %s (%s", r.Chain, r.Family, r.Table, r.Backend)
	switch {
	case r.Handle != 0:
		where += fmt.Sprintf(", handle %d", r.Handle)
	case r.Position != 0:
		where += fmt.Sprintf(", rule %d", r.Position)
	}
	if r.Owner != "" {
		where += ", owner " + string(r.Owner)
	}
	if z := firewalldZone(v, fwd); z != "" && r.Owner == ruleset.OwnerFirewalld {
		where += ", zone " + z
	}
	where += ")"
	if r.Policy {
		return fmt.Sprintf("the %s policy of %s", strings.ToUpper(string(v.Verdict)), where)
	}
	return fmt.Sprintf("rule `%s` in %s", r.Text, where)
}

// firewalldZone is the zone of the verdict's interface, when firewalld runs.
func firewalldZone(v Verdict, fwd *Firewalld) string {
	if fwd == nil {
		return ""
	}
	if z := fwd.Zones[v.Interface]; z != "" {
		return z
	}
	return fwd.DefaultZone
}

// firewallFix returns the fix for a verdict that drops adverts: the
// fix-firewall command and the narrow rule it stands for, in the language of
// the firewall that owns the deciding rule.
func firewallFix(v Verdict, fwd *Firewalld) string {
	dir := "--in"
	if v.Direction == eval.Out {
		dir = "--out"
	}
	cmd := fmt.Sprintf("vrrpdoctor fix-firewall -i %s %s", v.Interface, dir)
	if v.Dst.Is6() {
		cmd += " --family 6"
	}
	if v.Src.IsValid() && !v.Dst.IsMulticast() {
		cmd += " --peer " + peerOf(v).String()
	}
	cmd += " --apply"
	rule := narrowRule(v, fwd)
	return "Let the adverts through with one narrow rule. This adds it, checks it live and removes it again if the adverts still do not arrive (without --apply it only prints the plan; --undo removes it later):\n  " +
		cmd + "\nor add it yourself:\n" + rule + "\nThen run vrrpdoctor check again."
}

// peerOf is the other router of a unicast verdict.
func peerOf(v Verdict) netip.Addr {
	if v.Direction == eval.Out {
		return v.Dst
	}
	return v.Src
}

// narrowRule renders the rule that lets exactly the VRRP adverts of v pass,
// for the backend that decided v, placed before the deciding rule.
func narrowRule(v Verdict, fwd *Firewalld) string {
	r := v.Rule
	six := v.Dst.Is6()
	if r == nil && fwd != nil || r != nil && (r.Owner == ruleset.OwnerFirewalld || r.Table == "firewalld") {
		// firewalld rewrites its own chains: the fix goes through it.
		return firewalldRule(v, fwd)
	}
	if r == nil {
		return nftRule(v, "inet", "filter", chainFor(v), 0, false)
	}
	switch r.Backend {
	case ruleset.BackendIptablesNFT, ruleset.BackendIptablesLegacy:
		tool := "iptables"
		if six {
			tool = "ip6tables"
		}
		if r.Backend == ruleset.BackendIptablesLegacy {
			tool += "-legacy"
		}
		args := []string{tool}
		if r.Table != "filter" {
			args = append(args, "-t", r.Table)
		}
		if r.Policy {
			args = append(args, "-A", r.Chain)
		} else {
			args = append(args, "-I", r.Chain)
			if r.Position > 0 {
				args = append(args, fmt.Sprint(r.Position))
			}
		}
		if v.Direction == eval.In {
			args = append(args, "-i", v.Interface)
		} else {
			args = append(args, "-o", v.Interface)
		}
		if v.Src.IsValid() && !v.Dst.IsMulticast() {
			args = append(args, "-s", v.Src.String())
		}
		args = append(args, "-d", v.Dst.String(), "-p", "112", "-j", "ACCEPT")
		save := "iptables-save > /etc/iptables/rules.v4"
		if six {
			save = "ip6tables-save > /etc/iptables/rules.v6"
		}
		return "  " + strings.Join(args, " ") + "\n  (make it permanent the way this host loads its rules, e.g. " + save + ")"
	default:
		return nftRule(v, string(r.Family), r.Table, r.Chain, r.Handle, r.Policy)
	}
}

func chainFor(v Verdict) string {
	if v.Direction == eval.Out {
		return "output"
	}
	return "input"
}

// nftRule renders an nft command inserting the accept before the rule with
// handle (or appending it when the policy decided).
func nftRule(v Verdict, family, table, chain string, handle uint64, policy bool) string {
	var m []string
	if v.Direction == eval.In {
		m = append(m, fmt.Sprintf("iifname %q", v.Interface))
	} else {
		m = append(m, fmt.Sprintf("oifname %q", v.Interface))
	}
	ipk := "ip"
	proto := "ip protocol 112"
	if v.Dst.Is6() {
		ipk, proto = "ip6", "meta l4proto 112"
	}
	if v.Src.IsValid() && !v.Dst.IsMulticast() {
		m = append(m, fmt.Sprintf("%s saddr %s", ipk, v.Src))
	}
	m = append(m, fmt.Sprintf("%s daddr %s", ipk, v.Dst), proto, "accept")
	verb := "insert"
	pos := ""
	switch {
	case policy || handle == 0:
		verb = "add"
	default:
		pos = fmt.Sprintf(" position %d", handle)
	}
	return fmt.Sprintf("  nft %s rule %s %s %s%s %s\n  (and add it to /etc/nftables.conf, or the file this host loads its ruleset from, to keep it)",
		verb, family, table, chain, pos, strings.Join(m, " "))
}

// firewalldRule renders the firewalld fix: a rich rule in the interface's
// zone for incoming adverts (it works with both firewalld backends, unlike
// direct rules), a policy from the host for outgoing ones.
func firewalldRule(v Verdict, fwd *Firewalld) string {
	fam := "ipv4"
	if v.Dst.Is6() {
		fam = "ipv6"
	}
	rich := fmt.Sprintf(`rule family="%s"`, fam)
	if v.Src.IsValid() && !v.Dst.IsMulticast() {
		rich += fmt.Sprintf(` source address="%s"`, v.Src)
	}
	rich += fmt.Sprintf(` destination address="%s" protocol value="vrrp" accept`, v.Dst)
	if v.Direction == eval.In {
		zone := firewalldZone(v, fwd)
		z := ""
		if zone != "" {
			z = " --zone=" + zone
		}
		return fmt.Sprintf("  firewall-cmd --permanent%s --add-rich-rule='%s'\n  firewall-cmd --reload", z, rich)
	}
	return fmt.Sprintf("  firewall-cmd --permanent --new-policy=vrrp-out\n"+
		"  firewall-cmd --permanent --policy=vrrp-out --add-ingress-zone=HOST --add-egress-zone=ANY\n"+
		"  firewall-cmd --permanent --policy=vrrp-out --add-rich-rule='%s'\n  firewall-cmd --reload", rich)
}
