package ruleset

import (
	"fmt"
	"strings"
)

// Owner is the tool that most likely wrote a rule.
type Owner string

// Owners told apart by OwnerOf.
const (
	OwnerFirewalld  Owner = "firewalld"
	OwnerDocker     Owner = "docker"
	OwnerPodman     Owner = "podman"
	OwnerUFW        Owner = "ufw"
	OwnerKubeProxy  Owner = "kube-proxy"
	OwnerCalico     Owner = "calico"
	OwnerCilium     Owner = "cilium"
	OwnerFlannel    Owner = "flannel"
	OwnerCNI        Owner = "cni"
	OwnerLibvirt    Owner = "libvirt"
	OwnerFail2ban   Owner = "fail2ban"
	OwnerKeepalived Owner = "keepalived"
	// OwnerHand is the answer when no tool's signature is found.
	OwnerHand Owner = "hand-written"
)

// tableOwners maps nftables table names written by tools.
var tableOwners = map[string]Owner{
	"firewalld":       OwnerFirewalld,
	"docker-bridges":  OwnerDocker,
	"kube-proxy":      OwnerKubeProxy,
	"libvirt_network": OwnerLibvirt,
	"libvirt":         OwnerLibvirt,
	"f2b-table":       OwnerFail2ban,
	"netavark":        OwnerPodman,
	"keepalived":      OwnerKeepalived,
	"calico":          OwnerCalico,
	"cilium":          OwnerCilium,
}

// chainPrefixes maps chain name prefixes written by tools.
var chainPrefixes = []struct {
	prefix string
	owner  Owner
}{
	{"DOCKER", OwnerDocker},
	{"KUBE-", OwnerKubeProxy},
	{"kube-", OwnerKubeProxy},
	{"ufw-", OwnerUFW},
	{"ufw6-", OwnerUFW},
	{"LIBVIRT_", OwnerLibvirt},
	{"f2b-", OwnerFail2ban},
	{"NETAVARK", OwnerPodman},
	{"CNI-", OwnerCNI},
	{"cali-", OwnerCalico},
	{"CILIUM_", OwnerCilium},
	{"FLANNEL", OwnerFlannel},
}

// commentWords maps words in rule comments to tools.
var commentWords = []struct {
	word  string
	owner Owner
}{
	{"kubernetes", OwnerKubeProxy},
	{"kube-proxy", OwnerKubeProxy},
	{"cali:", OwnerCalico},
	{"cilium", OwnerCilium},
	{"ufw", OwnerUFW},
	{"docker", OwnerDocker},
	{"libvirt", OwnerLibvirt},
	{"flanneld", OwnerFlannel},
	{"firewalld", OwnerFirewalld},
	{"keepalived", OwnerKeepalived},
}

// ifacePrefixes maps interface names created by tools.
var ifacePrefixes = []struct {
	prefix string
	owner  Owner
}{
	{"docker", OwnerDocker},
	{"virbr", OwnerLibvirt},
	{"cni-podman", OwnerPodman},
	{"podman", OwnerPodman},
	{"cali", OwnerCalico},
	{"cilium_", OwnerCilium},
	{"flannel", OwnerFlannel},
	{"kube-", OwnerKubeProxy},
}

// IsFirewalldChain reports whether an iptables chain name is one firewalld's
// iptables backend creates (INPUT_direct, INPUT_ZONES, IN_public_allow, ...).
func IsFirewalldChain(name string) bool {
	if strings.HasSuffix(name, "_direct") || strings.HasSuffix(name, "_ZONES") || strings.HasSuffix(name, "_ZONES_SOURCE") ||
		strings.Contains(name, "_POLICIES") {
		return true
	}
	for _, p := range []string{"IN_", "FWD_", "FWDI_", "FWDO_", "PRE_", "POST_", "OUT_"} {
		if strings.HasPrefix(name, p) && len(name) > len(p) {
			return true
		}
	}
	return false
}

// OwnerOf names the tool that most likely wrote rule r (which may be nil, to
// ask about the chain) of chain c in table t, with the evidence for it.
// The answer is a heuristic on table and chain names, jump targets,
// interface names and comments; OwnerHand when nothing matches.
func OwnerOf(t *Table, c *Chain, r *Rule) (Owner, string) {
	if r != nil && r.Owner != "" {
		return r.Owner, "known from " + string(r.Owner)
	}
	if o, ok := tableOwners[t.Name]; ok && t.Backend == BackendNFT {
		return o, fmt.Sprintf("table %s %s", t.Family, t.Name)
	}
	if c != nil {
		if o, ok := chainOwner(c.Name); ok {
			return o, "chain " + c.Name
		}
	}
	if r != nil {
		if o, why, ok := ruleOwner(r); ok {
			return o, why
		}
	}
	if t.Backend != BackendNFT && c != nil && c.IsBase() {
		// firewalld and ufw manage the built-in chains of the tables they
		// use, policies included.
		if tableHasChains(t, IsFirewalldChain) {
			return OwnerFirewalld, fmt.Sprintf("table %s has firewalld's chains", t.Name)
		}
		if tableHasChains(t, func(n string) bool { return strings.HasPrefix(n, "ufw-") || strings.HasPrefix(n, "ufw6-") }) {
			return OwnerUFW, fmt.Sprintf("table %s has ufw's chains", t.Name)
		}
	}
	if c != nil && c.Comment != "" {
		if o, ok := commentOwner(c.Comment); ok {
			return o, "chain comment " + c.Comment
		}
	}
	if t.Comment != "" {
		if o, ok := commentOwner(t.Comment); ok {
			return o, "table comment " + t.Comment
		}
	}
	return OwnerHand, "no tool's signature"
}

func chainOwner(name string) (Owner, bool) {
	for _, p := range chainPrefixes {
		if strings.HasPrefix(name, p.prefix) {
			return p.owner, true
		}
	}
	if IsFirewalldChain(name) {
		return OwnerFirewalld, true
	}
	return "", false
}

func commentOwner(s string) (Owner, bool) {
	l := strings.ToLower(s)
	for _, w := range commentWords {
		if strings.Contains(l, w.word) {
			return w.owner, true
		}
	}
	return "", false
}

func ruleOwner(r *Rule) (Owner, string, bool) {
	if r.Comment != "" {
		if o, ok := commentOwner(r.Comment); ok {
			return o, fmt.Sprintf("comment %q", r.Comment), true
		}
	}
	for _, x := range r.Exprs {
		switch v := x.(type) {
		case Verdict:
			if v.Target != "" {
				if o, ok := chainOwner(v.Target); ok {
					return o, v.Kind + " to chain " + v.Target, true
				}
			}
		case Match:
			if !isIfnameKey(v.Left) {
				continue
			}
			if c, ok := v.Right.(Const); ok {
				for _, p := range ifacePrefixes {
					if strings.HasPrefix(c.Value, p.prefix) {
						return p.owner, "interface " + c.Value, true
					}
				}
			}
		}
	}
	return "", "", false
}

func tableHasChains(t *Table, is func(string) bool) bool {
	for _, c := range t.Chains {
		if !c.IsBase() && is(c.Name) {
			return true
		}
	}
	return false
}
