package firewalld

import "testing"

func TestChainZone(t *testing.T) {
	for chain, want := range map[string]string{
		"filter_IN_public":                  "filter IN zone public",
		"filter_IN_public_allow":            "filter IN zone public",
		"IN_work_deny":                      " IN zone work",
		"filter_OUT_policy_allow-host-ipv6": "filter OUT policy allow-host-ipv6",
		"nat_PRE_public_pre":                "nat PRE zone public",
		"filter_INPUT":                      "   ",
		"INPUT_ZONES":                       "   ",
		"filter_IN_":                        "   ",
	} {
		table, dir, kind, name := ChainZone(chain)
		if got := table + " " + dir + " " + kind + " " + name; got != want {
			t.Errorf("%s: %q, want %q", chain, got, want)
		}
	}
}
