package firewalld

import "strings"

// ChainZone tells, from the name of one of firewalld's chains, the zone or
// policy it belongs to: filter_IN_public_allow (nftables backend),
// IN_public_deny (iptables backend), filter_OUT_policy_allow-host-ipv6, ...
// table is the prefix naming the table on the nftables backend (filter,
// nat, mangle, raw; "" on the iptables backend), dir the chain's direction
// (IN, OUT, FWD, FWDI, FWDO, PRE, POST), kind "zone" or "policy". kind is
// "" for chains of no zone or policy (filter_INPUT, INPUT_ZONES, ...).
func ChainZone(chain string) (table, dir, kind, name string) {
	for _, t := range []string{"filter", "nat", "mangle", "raw"} {
		if rest, ok := strings.CutPrefix(chain, t+"_"); ok {
			table, chain = t, rest
			break
		}
	}
	for _, d := range []string{"IN", "OUT", "FWD", "FWDI", "FWDO", "PRE", "POST"} {
		if rest, ok := strings.CutPrefix(chain, d+"_"); ok {
			dir, name = d, rest
			break
		}
	}
	if dir == "" {
		return "", "", "", ""
	}
	kind = "zone"
	if p, ok := strings.CutPrefix(name, "policy_"); ok {
		kind, name = "policy", p
	}
	for _, s := range []string{"_pre", "_log", "_deny", "_allow", "_post", "_rich"} {
		name = strings.TrimSuffix(name, s)
	}
	if name == "" {
		return "", "", "", ""
	}
	return table, dir, kind, name
}
