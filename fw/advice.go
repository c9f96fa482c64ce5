package fw

import (
	"fmt"

	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
	"github.com/vrrpdoctor/vrrpdoctor/fw/firewalld"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// advise says where the fix belongs when firewalld owns the rule that
// drops or rejects the advert, or when firewalld's direct rules accept it
// without effect. It returns nil when there is nothing to say.
func advise(res eval.Result, info *firewalld.Info) []string {
	var out []string
	if (res.Verdict == eval.Drop || res.Verdict == eval.Reject) && res.Rule != nil && res.Rule.Owner == ruleset.OwnerFirewalld {
		out = append(out, firewalldFix(res, info)...)
	}
	// A direct rule is futile when firewalld's own tables are nftables (its
	// nftables backend) and decide against the advert; on its iptables
	// backend firewalld's chain policies accept without being final, and
	// they are no direct rules.
	nftBackend := res.Rule != nil && res.Rule.Owner == ruleset.OwnerFirewalld && res.Rule.Backend == ruleset.BackendNFT
	for _, s := range res.Path {
		if res.Verdict == eval.Accept || !nftBackend {
			break // the direct rule is redundant, not harmful
		}
		if s.Owner == ruleset.OwnerFirewalld && !s.Policy && s.Action == "accept" && s.Note == eval.NotFinal && s.Backend != ruleset.BackendNFT {
			out = append(out, fmt.Sprintf("The accept of %s %s %s %s is firewalld's direct rule (deprecated since firewalld 1.0): with firewalld's nftables backend it ends only that iptables chain, and firewalld's own table still sees the advert. Remove it (firewall-cmd --permanent --direct --remove-rule ...) once the zone lets VRRP in.",
				s.Backend, s.Family, s.Table, s.Chain))
			break
		}
	}
	return out
}

// firewalldFix is the advice for an advert firewalld drops or rejects.
func firewalldFix(res eval.Result, info *firewalld.Info) []string {
	p := res.Packet
	_, _, kind, name := firewalld.ChainZone(res.Rule.Chain)
	if kind == "" && info != nil && info.Running {
		kind, name = "zone", info.DefaultZone
		if info.InterfaceZone != nil {
			name = info.InterfaceZone.Name
		}
	}
	fam := "ipv4"
	if p.Family == 6 {
		fam = "ipv6"
	}
	// The narrowest match a rich rule has (it has no interface match: the
	// interface narrows through its zone).
	match := fmt.Sprintf("destination address=\"%s\"", p.Dst)
	if p.Direction == eval.In && !p.Dst.IsMulticast() && p.Src.IsValid() {
		match = fmt.Sprintf("source address=\"%s\"", p.Src)
	}
	rich := fmt.Sprintf("rule family=\"%s\" %s protocol value=\"vrrp\" accept", fam, match)
	lines := []string{fmt.Sprintf("The fix belongs in firewalld, not beside it: %s is firewalld's. firewalld rebuilds its tables on every reload and restart, so a rule added with nft or iptables by hand is lost then; and an accept in another table or in iptables is not final (it ends only its own base chain): firewalld's chain still rejects the advert.", refName(res.Rule))}
	switch {
	case kind == "policy":
		lines = append(lines, fmt.Sprintf("Allow VRRP in firewalld policy %s:", name),
			fmt.Sprintf("    firewall-cmd --permanent --policy=%s --add-rich-rule='%s'", name, rich),
			"    firewall-cmd --reload")
	case kind == "zone":
		iface := p.InIface
		if p.Direction == eval.Out {
			iface = p.OutIface
		}
		lines = append(lines, fmt.Sprintf("Allow VRRP in zone %s (the zone of %s):", name, iface),
			fmt.Sprintf("    firewall-cmd --permanent --zone=%s --add-rich-rule='%s'", name, rich),
			"    firewall-cmd --reload",
			fmt.Sprintf("or allow the protocol for the whole zone: firewall-cmd --permanent --zone=%s --add-protocol=vrrp (firewalld 2.1 and later ship a \"vrrp\" service too: --add-service=vrrp).", name))
	default:
		lines = append(lines, "Allow VRRP in the zone of the interface (firewall-cmd --get-zone-of-interface=IFACE) or in the policy that applies:",
			fmt.Sprintf("    firewall-cmd --permanent --zone=ZONE --add-rich-rule='%s'", rich),
			"    firewall-cmd --reload")
	}
	return lines
}

func refName(r *eval.RuleRef) string {
	if r.Policy {
		return fmt.Sprintf("the policy of %s %s %s", r.Family, r.Table, r.Chain)
	}
	return fmt.Sprintf("the rule in %s %s %s", r.Family, r.Table, r.Chain)
}
