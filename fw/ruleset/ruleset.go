// Package ruleset is the firewall model shared by vrrpdoctor's readers and its
// packet-path evaluator: nftables tables, chains, rules, sets and maps, and
// iptables (nft and legacy flavours, IPv4 and IPv6) expressed in the same
// terms, with enough provenance to name the tool that owns a rule.
//
// Readers (fw/nftjson, fw/iptsave, fw/nftlive) build a Ruleset; fw/eval walks it.
// Expressions keep the values as the tools print them (for example "vrrp",
// "224.0.0.0/24", "eth*"); the evaluator interprets them by the type of the
// key they are compared with.
package ruleset

import (
	"fmt"
	"sort"
)

// Backend is the kernel subsystem and user-space tool a table belongs to.
type Backend string

// Backends. iptables-nft tables live in nf_tables (nft lists them) but are
// written with xtables semantics; iptables-legacy tables are the old
// x_tables, invisible to nft.
const (
	BackendNFT            Backend = "nftables"
	BackendIptablesNFT    Backend = "iptables-nft"
	BackendIptablesLegacy Backend = "iptables-legacy"
)

// Family is an nftables address family; iptables tables use FamilyIP
// (iptables) or FamilyIP6 (ip6tables).
type Family string

// Address families.
const (
	FamilyIP     Family = "ip"
	FamilyIP6    Family = "ip6"
	FamilyInet   Family = "inet"
	FamilyARP    Family = "arp"
	FamilyBridge Family = "bridge"
	FamilyNetdev Family = "netdev"
)

// Hook is a netfilter hook a base chain attaches to.
type Hook string

// Netfilter hooks.
const (
	HookIngress     Hook = "ingress"
	HookPrerouting  Hook = "prerouting"
	HookInput       Hook = "input"
	HookForward     Hook = "forward"
	HookOutput      Hook = "output"
	HookPostrouting Hook = "postrouting"
	HookEgress      Hook = "egress"
)

// Standard netfilter priorities (include/uapi/linux/netfilter_ipv4.h).
const (
	PriorityConntrackDefrag = -400
	PriorityRaw             = -300
	PriorityConntrack       = -200
	PriorityMangle          = -150
	PriorityNATDst          = -100
	PriorityFilter          = 0
	PrioritySecurity        = 50
	PriorityNATSrc          = 100
)

// Ruleset is everything read from one host (or from saved files of one host).
type Ruleset struct {
	Tables []*Table
	// Sources says where the tables were read from, for the report.
	Sources []string
}

// Table is an nftables table or an iptables table of one family and backend.
type Table struct {
	Backend Backend
	Family  Family
	Name    string
	Handle  uint64 // nftables handle; 0 for iptables-legacy
	Flags   []string
	Comment string
	Chains  []*Chain
	Sets    []*Set // named sets and maps
	// Source names the file or live source the table was read from.
	Source string
	// Incomplete, when set, says why the table's rules are not known (for
	// example legacy tables present while iptables-legacy-save is missing).
	Incomplete string
}

// Chain is a base chain (Base != nil) or a regular chain.
type Chain struct {
	Name    string
	Handle  uint64
	Base    *BaseChain
	Rules   []*Rule
	Comment string
}

// BaseChain holds what attaches a chain to a netfilter hook.
type BaseChain struct {
	Type     string // filter, nat, route
	Hook     Hook
	Priority int
	Policy   string // "accept" or "drop"
	Devices  []string
	// DevicesUnknown is set when the source does not say which devices an
	// ingress or egress chain is attached to (nft 1.0.x's JSON omits them).
	DevicesUnknown bool
}

// Rule is one rule: expressions evaluated left to right.
type Rule struct {
	Handle   uint64 // nftables handle; 0 when unknown
	Position int    // 1-based position in its chain
	Exprs    []Expr
	Comment  string
	// Text is the rule as the user would write it: nft syntax for nftables,
	// the "-A CHAIN ..." line for iptables.
	Text string
	// Origin locates the rule in its source: "file:line" or a JSON path.
	Origin string
	// Incomplete, when set, says why the expressions are known not to be the
	// whole rule (for example an expression kind the reader cannot decode).
	Incomplete string
	// Owner, when set, is the tool known to have written the rule (for
	// example firewalld, for a rule it lists as a direct rule); OwnerOf
	// then needs no heuristic.
	Owner Owner
}

// Set is a named set, map (Map != "") or verdict map (Map == "verdict").
type Set struct {
	Name     string
	Handle   uint64
	Type     []string // key data types; several for a concatenation
	Map      string   // data type for maps, empty for sets
	Flags    []string // interval, constant, timeout, dynamic, ...
	Elements []Element
	// Incomplete, when set, says why the elements are not known in full.
	Incomplete string
}

// Element is one set or map element.
type Element struct {
	Key   Expr // Const, Prefix, Range or Concat of those
	Value Expr // map data: Const or Verdict; nil for sets
}

// IsMap reports whether the set maps keys to data.
func (s *Set) IsMap() bool { return s.Map != "" }

// HasFlag reports whether the set carries the named flag.
func (s *Set) HasFlag(f string) bool {
	for _, x := range s.Flags {
		if x == f {
			return true
		}
	}
	return false
}

// IsBase reports whether the chain is attached to a hook.
func (c *Chain) IsBase() bool { return c.Base != nil }

// Chain returns the chain of that name, or nil.
func (t *Table) Chain(name string) *Chain {
	for _, c := range t.Chains {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Set returns the set or map of that name, or nil.
func (t *Table) Set(name string) *Set {
	for _, s := range t.Sets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// ID is "backend family name", unique within a Ruleset.
func (t *Table) ID() string {
	return fmt.Sprintf("%s %s %s", t.Backend, t.Family, t.Name)
}

// Table returns the table with that backend, family and name, or nil.
func (rs *Ruleset) Table(b Backend, f Family, name string) *Table {
	for _, t := range rs.Tables {
		if t.Backend == b && t.Family == f && t.Name == name {
			return t
		}
	}
	return nil
}

// Add appends the tables of other to rs. A table already present (same
// backend, family and name) is an error: the caller gave the same ruleset twice.
func (rs *Ruleset) Add(other *Ruleset) error {
	for _, t := range other.Tables {
		if old := rs.Table(t.Backend, t.Family, t.Name); old != nil {
			return fmt.Errorf("table %s %s (%s) read twice: from %s and from %s", t.Family, t.Name, t.Backend, old.Source, t.Source)
		}
	}
	rs.Tables = append(rs.Tables, other.Tables...)
	rs.Sources = append(rs.Sources, other.Sources...)
	return nil
}

// Backends lists the backends present, sorted.
func (rs *Ruleset) Backends() []Backend {
	seen := map[Backend]bool{}
	var out []Backend
	for _, t := range rs.Tables {
		if !seen[t.Backend] {
			seen[t.Backend] = true
			out = append(out, t.Backend)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// XtablesHooks gives, for an iptables table name, the built-in chains with
// their hooks and the priority the kernel registers them at.
func XtablesHooks(table string) map[string]BaseChain {
	h := func(hook Hook, prio int, typ string) BaseChain {
		return BaseChain{Type: typ, Hook: hook, Priority: prio, Policy: "accept"}
	}
	switch table {
	case "raw":
		return map[string]BaseChain{
			"PREROUTING": h(HookPrerouting, PriorityRaw, "filter"),
			"OUTPUT":     h(HookOutput, PriorityRaw, "filter"),
		}
	case "mangle":
		return map[string]BaseChain{
			"PREROUTING":  h(HookPrerouting, PriorityMangle, "filter"),
			"INPUT":       h(HookInput, PriorityMangle, "filter"),
			"FORWARD":     h(HookForward, PriorityMangle, "filter"),
			"OUTPUT":      h(HookOutput, PriorityMangle, "route"),
			"POSTROUTING": h(HookPostrouting, PriorityMangle, "filter"),
		}
	case "nat":
		return map[string]BaseChain{
			"PREROUTING":  h(HookPrerouting, PriorityNATDst, "nat"),
			"INPUT":       h(HookInput, PriorityNATSrc, "nat"),
			"OUTPUT":      h(HookOutput, PriorityNATDst, "nat"),
			"POSTROUTING": h(HookPostrouting, PriorityNATSrc, "nat"),
		}
	case "filter":
		return map[string]BaseChain{
			"INPUT":   h(HookInput, PriorityFilter, "filter"),
			"FORWARD": h(HookForward, PriorityFilter, "filter"),
			"OUTPUT":  h(HookOutput, PriorityFilter, "filter"),
		}
	case "security":
		return map[string]BaseChain{
			"INPUT":   h(HookInput, PrioritySecurity, "filter"),
			"FORWARD": h(HookForward, PrioritySecurity, "filter"),
			"OUTPUT":  h(HookOutput, PrioritySecurity, "filter"),
		}
	}
	return nil
}

// PriorityName renders a priority the way nft does for the family and hook
// ("filter + 10", "raw", "-90").
func PriorityName(f Family, hook Hook, prio int) string {
	type named struct {
		name string
		val  int
	}
	var names []named
	switch f {
	case FamilyIP, FamilyIP6, FamilyInet:
		names = []named{{"raw", PriorityRaw}, {"mangle", PriorityMangle}, {"filter", PriorityFilter}, {"security", PrioritySecurity}}
		if hook == HookPrerouting || hook == HookOutput {
			names = append(names, named{"dstnat", PriorityNATDst})
		}
		if hook == HookPostrouting || hook == HookInput {
			names = append(names, named{"srcnat", PriorityNATSrc})
		}
	case FamilyBridge:
		names = []named{{"filter", -200}, {"out", 100}}
	case FamilyNetdev, FamilyARP:
		names = []named{{"filter", 0}}
	}
	for _, n := range names {
		d := prio - n.val
		if d == 0 {
			return n.name
		}
		if d > 0 && d <= 10 {
			return fmt.Sprintf("%s + %d", n.name, d)
		}
		if d < 0 && d >= -10 {
			return fmt.Sprintf("%s - %d", n.name, -d)
		}
	}
	return fmt.Sprint(prio)
}

// xtablesTables are the table names iptables-nft creates.
var xtablesTables = map[string]bool{"filter": true, "nat": true, "mangle": true, "raw": true, "security": true}

// DetectIptablesNFT marks an nftables table as iptables-nft's when it looks
// like one: an xtables table name in the ip or ip6 family whose base chains
// all carry xtables' built-in names, hooks and priorities. (nftables 1.0.x
// keeps no marker of its own for these tables.)
func DetectIptablesNFT(t *Table) {
	if t.Backend != BackendNFT || t.Family != FamilyIP && t.Family != FamilyIP6 || !xtablesTables[t.Name] {
		return
	}
	std := XtablesHooks(t.Name)
	bases := 0
	for _, c := range t.Chains {
		if c.Base == nil {
			continue
		}
		want, ok := std[c.Name]
		if !ok || want.Hook != c.Base.Hook || want.Priority != c.Base.Priority {
			return
		}
		bases++
	}
	if bases > 0 {
		t.Backend = BackendIptablesNFT
	}
}
