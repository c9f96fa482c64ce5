package fix

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
	"github.com/vrrpdoctor/vrrpdoctor/fw/firewalld"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// zoneOf tells the firewalld zone or policy of a filter chain of incoming
// or outgoing adverts, and the chain's direction prefix (IN_ or OUT_).
func zoneOf(chain string) (kind, name, dir string) {
	table, d, kind, name := firewalld.ChainZone(chain)
	if kind == "" || table != "" && table != "filter" || d != "IN" && d != "OUT" {
		return "", "", ""
	}
	return kind, name, d + "_"
}

// RichRule is the firewalld rich rule accepting exactly the advert p (rich
// rules have no interface match: the zone narrows to the interface).
func RichRule(p eval.Packet) string {
	fam := "ipv4"
	if p.Dst.Is6() {
		fam = "ipv6"
	}
	s := fmt.Sprintf("rule family=%q", fam)
	if p.Src.IsValid() && (p.Direction == eval.In || !p.Dst.IsMulticast()) {
		s += fmt.Sprintf(" source address=%q", p.Src.String())
	}
	if p.Dst.IsValid() {
		s += fmt.Sprintf(" destination address=%q", p.Dst.String())
	}
	return s + ` protocol value="vrrp" accept`
}

// placeFirewalld builds the rich rule for an advert firewalld drops, in the
// zone (or policy) whose chain decided.
func placeFirewalld(model *ruleset.Ruleset, res eval.Result, p eval.Packet, info *firewalld.Info) (*Rule, string) {
	ref := res.Rule
	kind, name, dir := zoneOf(ref.Chain)
	if kind == "" {
		if p.Direction == eval.Out {
			return nil, fmt.Sprintf("firewalld's %s drops this host's own adverts outside any zone or policy: allow them with a policy (firewall-cmd --permanent --new-policy ... --add-ingress-zone HOST --add-egress-zone ANY)", ref)
		}
		if info == nil || !info.Running {
			return nil, fmt.Sprintf("%s is firewalld's, but firewalld does not answer on D-Bus: cannot tell the zone", ref)
		}
		kind, name, dir = "zone", info.DefaultZone, "IN_"
		if info.InterfaceZone != nil {
			name = info.InterfaceZone.Name
		}
	}
	rich := RichRule(p)
	sel := "--zone=" + name
	if kind == "policy" {
		sel = "--policy=" + name
	}
	r := &Rule{Backend: Firewalld, Zone: name, Rich: rich, packet: p,
		Command: []string{"firewall-cmd", sel, "--add-rich-rule=" + rich},
		Persist: []string{"firewall-cmd", "--permanent", sel, "--add-rich-rule=" + rich},
		Undo:    []string{"firewall-cmd", sel, "--remove-rich-rule=" + rich},
	}
	if kind == "policy" {
		r.Zone = "policy " + name
	}
	// Where firewalld puts an accepting rich rule: the zone's allow chain.
	chain := dir + name + "_allow"
	if kind == "policy" {
		chain = dir + "policy_" + name + "_allow"
	}
	fam := ruleset.FamilyIP
	if p.Dst.Is6() {
		fam = ruleset.FamilyIP6
	}
	for _, t := range model.Tables {
		if t.Family != ruleset.FamilyInet && t.Family != fam {
			continue
		}
		for _, c := range t.Chains {
			if c.Name == chain || c.Name == "filter_"+chain {
				r.Backend, r.Family, r.Table, r.Chain = Firewalld, t.Family, t.Name, c.Name
			}
		}
	}
	if r.Chain == "" {
		return nil, fmt.Sprintf("%s is firewalld's, but its %s %s has no chain %s to check a rich rule in", ref, kind, name, chain)
	}
	r.model = modelRule(p, r.Family, true)
	what := "zone " + name
	if kind == "policy" {
		what = "policy " + name
	}
	r.Why = fmt.Sprintf("firewalld's %s %ss the advert (%s): the fix belongs in firewalld, which rebuilds its tables on every reload. A rich rule cannot name an interface; it applies to the interfaces of %s", what, res.Verdict, ref, what)
	return r, ""
}

// insertFirewalld puts the model of a rich rule at the end of its chain.
func insertFirewalld(model *ruleset.Ruleset, r *Rule) {
	for _, t := range model.Tables {
		if t.Family == r.Family && t.Name == r.Table {
			if c := t.Chain(r.Chain); c != nil {
				c.Rules = append(c.Rules, r.model)
			}
		}
	}
}

// versionAtLeast reports whether firewalld version v is at least maj.min.
func versionAtLeast(v string, maj, min int) bool {
	f := strings.SplitN(v, ".", 3)
	if len(f) < 2 {
		return false
	}
	a, err1 := strconv.Atoi(f[0])
	b, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return a > maj || a == maj && b >= min
}

// firewalldAlternatives adds the other firewalld forms to the plan: the
// classic direct rules, evaluated on the original ruleset with them added
// where firewalld puts them, and the vrrp service of firewalld 2.1.
func firewalldAlternatives(rs *ruleset.Ruleset, plan *Plan, info *firewalld.Info) error {
	model := clone(rs)
	var cmds [][]string
	var packets []eval.Packet
	for _, c := range plan.Checks {
		p := c.Packet
		packets = append(packets, p)
		ipv, fam := "ipv4", ruleset.FamilyIP
		if p.Dst.Is6() {
			ipv, fam = "ipv6", ruleset.FamilyIP6
		}
		chain, ifo, iface := "INPUT", "--in-interface", p.InIface
		if p.Direction == eval.Out {
			chain, ifo, iface = "OUTPUT", "--out-interface", p.OutIface
		}
		args := []string{ifo, iface}
		if p.Src.IsValid() && (p.Direction == eval.In || !p.Dst.IsMulticast()) {
			args = append(args, "--source", p.Src.String())
		}
		args = append(args, "--destination", p.Dst.String(), "--protocol", "vrrp", "-j", "ACCEPT")
		cmds = append(cmds, append([]string{"firewall-cmd", "--direct", "--permanent", "--add-rule", ipv, "filter", chain, "0"}, args...))
		addDirect(model, info.Backend, fam, chain, modelRule(p, fam, false))
	}
	cmds = append(cmds, []string{"firewall-cmd", "--reload"})
	alt := Alternative{
		Title:    "classic: firewalld direct rules (deprecated since firewalld 1.0)",
		Commands: cmds,
		Verdict:  eval.Accept,
	}
	for _, p := range packets {
		res, err := eval.Evaluate(model, p)
		if err != nil {
			return err
		}
		if res.Verdict != eval.Accept {
			alt.Verdict = res.Verdict
		}
	}
	alt.Works = alt.Verdict == eval.Accept
	switch {
	case info.Backend == "nftables" && !alt.Works:
		alt.Note = fmt.Sprintf("Do NOT use these with firewalld's nftables backend (this host's): the direct rules land in iptables-nft's own filter table (ip or ip6 filter INPUT/OUTPUT), where their ACCEPT ends only that base chain; firewalld's own inet firewalld zone chain sees the advert afterwards and rejects it (evaluated: %s). Use the rich rule above.", alt.Verdict)
	case alt.Works:
		alt.Note = fmt.Sprintf("These work with firewalld's %s backend (evaluated: accept) and name the interface, but the direct interface is deprecated since firewalld 1.0 (superseded by policies); prefer the rich rule unless the zone holds other interfaces VRRP must not reach.", info.Backend)
	default:
		alt.Note = fmt.Sprintf("The evaluator says these would not let the adverts through (%s).", alt.Verdict)
	}
	plan.Alternatives = append(plan.Alternatives, alt)
	if versionAtLeast(info.Version, 2, 1) {
		zone := info.DefaultZone
		if info.InterfaceZone != nil {
			zone = info.InterfaceZone.Name
		}
		plan.Alternatives = append(plan.Alternatives, Alternative{
			Title:    "firewalld " + info.Version + " ships the vrrp service",
			Commands: [][]string{{"firewall-cmd", "--permanent", "--zone=" + zone, "--add-service=vrrp"}, {"firewall-cmd", "--reload"}},
			Note:     vrrpServiceNote,
		})
	}
	plan.Notes = append(plan.Notes, "firewalld rich rules cannot name an interface: they apply to every interface and source of their zone. To narrow VRRP to one interface, give that interface a zone of its own (firewall-cmd --permanent --zone=ZONE --change-interface=IFACE).")
	return nil
}

// vrrpServiceNote says what firewalld's vrrp service allows. firewalld
// 2.1.0 added it (commit d62fc8d, "feat(service): add vrrp"): protocol 112
// to 224.0.0.18 and ff02::12. firewalld's repository also holds a
// config/services/vrrp.xml of protocol 112 alone (any destination), so the
// note sends the user to --info-service for the host's own.
const vrrpServiceNote = "The vrrp service came with firewalld 2.1.0, whose definition allows IP protocol 112 to 224.0.0.18 and ff02::12 in the whole zone (both families; it does not cover unicast VRRP or another vrrp_mcast_group). A variant of protocol 112 alone, to any destination, is also in firewalld's repository: firewall-cmd --info-service=vrrp shows this host's. Simpler to keep, not narrower than the rich rules; not evaluated here."

// addDirect puts a direct rule's model where firewalld puts it: with the
// nftables backend in iptables-nft's own filter table (created if absent),
// with the iptables backend in firewalld's <CHAIN>_direct chain.
func addDirect(model *ruleset.Ruleset, backend string, fam ruleset.Family, chain string, r *ruleset.Rule) {
	if backend == "iptables" {
		for _, t := range model.Tables {
			if t.Family == fam && t.Name == "filter" && t.Backend != ruleset.BackendNFT {
				if c := t.Chain(chain + "_direct"); c != nil {
					c.Rules = append([]*ruleset.Rule{r}, c.Rules...)
					return
				}
			}
		}
	}
	var tb *ruleset.Table
	for _, t := range model.Tables {
		if t.Family == fam && t.Name == "filter" && t.Backend == ruleset.BackendIptablesNFT {
			tb = t
		}
	}
	if tb == nil {
		tb = &ruleset.Table{Backend: ruleset.BackendIptablesNFT, Family: fam, Name: "filter"}
		for name, bc := range ruleset.XtablesHooks("filter") {
			bc := bc
			bc.Policy = "accept"
			tb.Chains = append(tb.Chains, &ruleset.Chain{Name: name, Base: &bc})
		}
		model.Tables = append(model.Tables, tb)
	}
	if c := tb.Chain(chain); c != nil {
		c.Rules = append([]*ruleset.Rule{r}, c.Rules...)
	}
}
