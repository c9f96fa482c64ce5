// Package fix computes, verifies and applies the narrowest firewall rules
// that let VRRP adverts through: IP protocol 112, to the VRRP group (or
// between this node and its unicast peers), on the VRRP interface, in the
// direction that is dropped — and nothing else.
//
// A fix is planned on a copy of the ruleset model: each advert is walked
// through it with fw/eval; where it is dropped or rejected, an accept for
// exactly that advert is inserted in the chain that decides (before the
// deciding rule, or at the end of a chain whose policy decides), and the
// advert is walked again, until it is accepted. An accept is not final in
// netfilter (it ends only its own base chain), so a rule put anywhere else —
// a table of its own, iptables beside nftables, firewalld's direct rules
// beside its nftables zones — would not help, and the evaluator says so.
//
// Rules vrrpdoctor adds to nftables and iptables carry the comment Marker, so
// that a second run recognises them and Undo removes exactly them. firewalld
// rich rules cannot carry a comment: they are recorded in a state file.
package fix

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
	"github.com/vrrpdoctor/vrrpdoctor/fw/firewalld"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// Marker is the comment on every rule vrrpdoctor adds.
const Marker = "vrrpdoctor: allow VRRP"

// Backend is where a fix goes: the firewall that owns the deciding rule.
type Backend string

// Backends a fix can be written for.
const (
	Firewalld      Backend = "firewalld"
	NFT            Backend = "nftables"
	IptablesNFT    Backend = "iptables-nft"
	IptablesLegacy Backend = "iptables-legacy"
)

// ParseBackend checks a --backend value.
func ParseBackend(s string) (Backend, error) {
	switch b := Backend(s); b {
	case Firewalld, NFT, IptablesNFT, IptablesLegacy:
		return b, nil
	}
	return "", fmt.Errorf("backend %q: want firewalld, nftables, iptables-nft or iptables-legacy", s)
}

// Target is the VRRP traffic of one instance (or of the flags): multicast to
// Group, or unicast between Self and each of Peers.
type Target struct {
	// Name labels the target in output ("VI_1 (VRID 51)"); may be empty.
	Name   string
	Iface  string
	Family int // 4 or 6
	// Group is the multicast group (multicast mode, Peers empty).
	Group netip.Addr
	// Peers are the unicast peers. Self is this node's address, the
	// source of its adverts (unicast_src_ip, or the interface's; for
	// multicast over IPv6 its link-local one); invalid when unknown.
	Peers []netip.Addr
	Self  netip.Addr
	// In and Out select the directions; both false means both.
	In, Out bool
}

// Packets are the adverts the target needs through the firewall: the peers'
// (or any router's) adverts in, and this node's adverts out.
func (t Target) Packets() []eval.Packet {
	in, out := t.In, t.Out
	if !in && !out {
		in, out = true, true
	}
	var ps []eval.Packet
	if len(t.Peers) == 0 {
		if in {
			ps = append(ps, eval.VRRPAdvert(eval.In, t.Iface, netip.Addr{}, t.Group))
		}
		if out {
			ps = append(ps, eval.VRRPAdvert(eval.Out, t.Iface, t.Self, t.Group))
		}
		return ps
	}
	for _, peer := range t.Peers {
		if in {
			p := eval.VRRPAdvert(eval.In, t.Iface, peer, t.Self)
			p.Family = t.Family
			ps = append(ps, p)
		}
	}
	for _, peer := range t.Peers {
		if out {
			ps = append(ps, eval.VRRPAdvert(eval.Out, t.Iface, t.Self, peer))
		}
	}
	return ps
}

// Rule is one rule to add.
type Rule struct {
	Backend Backend `json:"backend"`
	// Family, Table and Chain locate the rule (nftables and iptables; for
	// firewalld, the chain firewalld puts the rich rule in).
	Family ruleset.Family `json:"family"`
	Table  string         `json:"table"`
	Chain  string         `json:"chain"`
	// Handle is the nftables rule the new one goes before (0: at the end of
	// the chain); Position the iptables position it is inserted at (0:
	// appended).
	Handle   uint64 `json:"handle,omitempty"`
	Position int    `json:"position,omitempty"`
	// Zone and Rich are the firewalld zone and rich rule.
	Zone string `json:"zone,omitempty"`
	Rich string `json:"rich_rule,omitempty"`
	// Text is the nftables rule as it is written in a ruleset file.
	Text string `json:"text,omitempty"`
	// Why says why this rule, in this place.
	Why string `json:"why"`
	// Command is the command that adds the rule (runtime); Persist the
	// one that makes it permanent, where the backend has one.
	Command []string `json:"command"`
	// Shell is Command as a user pastes it (set by RenderJSON).
	Shell   string   `json:"shell,omitempty"`
	Persist []string `json:"persist,omitempty"`
	// Undo removes it again (nftables: by handle once added, see Undo).
	Undo []string `json:"undo,omitempty"`

	packet eval.Packet
	model  *ruleset.Rule
}

// Check is one advert with the evaluator's verdict before and after the fix.
type Check struct {
	Label  string         `json:"label"`
	Before eval.Verdict   `json:"before"`
	Rule   *eval.RuleRef  `json:"deciding_rule,omitempty"`
	After  eval.Verdict   `json:"after"`
	Reason string         `json:"reason,omitempty"`
	Packet eval.Packet    `json:"-"`
	Path   []eval.Step    `json:"-"`
	Result *eval.Result   `json:"-"`
	Target *Target        `json:"-"`
	Owner  ruleset.Owner  `json:"owner,omitempty"`
	Family ruleset.Family `json:"-"`
}

// Alternative is another form of the fix, printed for the user to choose,
// with the evaluator's verdict on it.
type Alternative struct {
	Title    string       `json:"title"`
	Note     string       `json:"note"`
	Commands [][]string   `json:"commands"`
	Verdict  eval.Verdict `json:"verdict"`
	Works    bool         `json:"works"`
}

// Plan is what fix-firewall would do.
type Plan struct {
	Checks []Check `json:"checks"`
	Rules  []Rule  `json:"rules"`
	// Alternatives are other forms (firewalld's direct rules, the vrrp
	// service), with whether the evaluator says they work.
	Alternatives []Alternative `json:"alternatives,omitempty"`
	Notes        []string      `json:"notes,omitempty"`
	// Refused says why the plan must not be applied (empty: it may).
	Refused []string `json:"refused,omitempty"`
}

// NothingToDo reports whether every advert is accepted already.
func (p *Plan) NothingToDo() bool { return len(p.Rules) == 0 && len(p.Refused) == 0 }

// Options tune planning.
type Options struct {
	// Backend, when set, is the only backend rules may be added to.
	Backend Backend
	// Force plans past verdicts the evaluator cannot decide (unknown),
	// placing the rule before the rule that made it undecidable.
	Force bool
	// Firewalld is what a running firewalld said (nil: not running).
	Firewalld *firewalld.Info
}

// Make plans the fix for the targets on ruleset rs. It never changes rs.
func Make(rs *ruleset.Ruleset, targets []Target, opts Options) (*Plan, error) {
	model := clone(rs)
	plan := &Plan{}
	for ti := range targets {
		t := &targets[ti]
		for _, p := range t.Packets() {
			res, err := eval.Evaluate(model, p)
			if err != nil {
				return nil, err
			}
			c := Check{Label: p.Label(t.Name), Before: res.Verdict, Rule: res.Rule, Packet: p, Target: t}
			if res.Rule != nil {
				c.Owner = res.Rule.Owner
			}
			for range 8 {
				if res.Verdict == eval.Accept {
					break
				}
				if res.Verdict == eval.Unknown && !opts.Force {
					c.Reason = "the evaluator cannot decide: " + res.UnknownReason + " (--force places the rule before the undecidable rule anyway)"
					break
				}
				at := res
				if at.Verdict == eval.Unknown {
					at = forced(res)
				}
				if at.Rule == nil {
					c.Reason = "no deciding rule to place the fix before: " + res.UnknownReason
					break
				}
				r, why := place(model, at, p, opts)
				if r == nil {
					c.Reason = why
					break
				}
				insert(model, r)
				plan.Rules = append(plan.Rules, *r)
				prev := refString(at.Rule)
				res, err = eval.Evaluate(model, p)
				if err != nil {
					return nil, err
				}
				if next := forced(res); res.Verdict != eval.Accept && refString(next.Rule) == prev {
					c.Reason = "the accept placed before " + prev + " does not change the verdict"
					break
				}
			}
			c.After = res.Verdict
			c.Result = &res
			// --force accepts an unknown verdict once a rule is placed
			// before the undecidable one; not when none could be placed
			// (a reason is set): that would pass off "unknown" as
			// "nothing to do".
			if res.Verdict != eval.Accept && (c.Reason != "" || !(opts.Force && res.Verdict == eval.Unknown)) {
				if c.Reason == "" {
					c.Reason = fmt.Sprintf("still %s after the fix, by %s", res.Verdict, refString(res.Rule))
				}
				plan.Refused = append(plan.Refused, c.Label+": "+c.Reason)
			}
			plan.Checks = append(plan.Checks, c)
		}
	}
	if opts.Firewalld != nil && opts.Firewalld.Running {
		if err := firewalldAlternatives(rs, plan, opts.Firewalld); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

// forced is where --force places the fix for an undecidable verdict: before
// the rule the evaluator names, else before the last drop or reject on the
// way it followed (for example a chain policy after a rate-limited accept).
func forced(res eval.Result) eval.Result {
	if res.Rule != nil {
		return res
	}
	for i := len(res.Path) - 1; i >= 0; i-- {
		s := res.Path[i]
		for _, v := range []eval.Verdict{eval.Drop, eval.Reject} {
			if strings.Contains(s.Action, string(v)) {
				ref := s.RuleRef
				res.Rule, res.Verdict = &ref, v
				return res
			}
		}
	}
	return res
}

func refString(r *eval.RuleRef) string {
	if r == nil {
		return "no rule"
	}
	return r.String()
}

// backendOf maps the deciding rule to the backend the fix belongs to.
func backendOf(ref *eval.RuleRef) Backend {
	if ref.Owner == ruleset.OwnerFirewalld {
		return Firewalld
	}
	switch ref.Backend {
	case ruleset.BackendIptablesNFT:
		return IptablesNFT
	case ruleset.BackendIptablesLegacy:
		return IptablesLegacy
	}
	return NFT
}

// place builds the rule that accepts p right before the rule that decided
// res, or returns nil with the reason it cannot.
func place(model *ruleset.Ruleset, res eval.Result, p eval.Packet, opts Options) (*Rule, string) {
	ref := res.Rule
	b := backendOf(ref)
	if opts.Backend != "" && b != opts.Backend {
		return nil, fmt.Sprintf("the advert is %s by %s, which belongs to %s, not %s: an accept added in %s is not final (it ends only its own base chain) and would not help", res.Verdict, ref, b, opts.Backend, opts.Backend)
	}
	r := &Rule{Backend: b, Family: ref.Family, Table: ref.Table, Chain: ref.Chain, packet: p}
	dir := "incoming"
	if p.Direction == eval.Out {
		dir = "outgoing"
	}
	switch b {
	case Firewalld:
		return placeFirewalld(model, res, p, opts.Firewalld)
	case NFT:
		if !ref.Policy {
			r.Handle = ref.Handle
			if r.Handle == 0 {
				return nil, fmt.Sprintf("%s has no handle to insert before", ref)
			}
		}
		r.Command = append([]string{"nft", "insert", "rule"}, nftLocation(r)...)
		if r.Handle == 0 {
			r.Command[1] = "add"
		}
		body := append(nftMatch(p, ref.Family), "accept", "comment", `"`+Marker+`"`)
		r.Command = append(r.Command, body...)
		r.Text = strings.Join(body, " ")
	case IptablesNFT, IptablesLegacy:
		if !ref.Policy {
			r.Position = ref.Position
		}
		r.Command = iptablesCommand(r, p)
	}
	where := "before " + ref.String()
	if ref.Policy {
		where = fmt.Sprintf("at the end of %s %s %s, whose policy is %s", ref.Family, ref.Table, ref.Chain, res.Verdict)
	}
	r.Why = fmt.Sprintf("accept the %s VRRP adverts (protocol 112, %s) %s, in the chain that %ss them: an accept elsewhere is not final", dir, addrText(p), where, res.Verdict)
	if o := ref.Owner; o != "" && o != ruleset.OwnerHand {
		r.Why += fmt.Sprintf(". The chain is %s's, which may rebuild it (on restart or reload) and drop this rule: run fix-firewall again then, or allow VRRP in %s's own configuration", o, o)
	}
	r.model = modelRule(p, ref.Family, false)
	return r, ""
}

// addrText describes the addresses a rule matches.
func addrText(p eval.Packet) string {
	iface := p.InIface
	if p.Direction == eval.Out {
		iface = p.OutIface
	}
	var s []string
	if p.Src.IsValid() {
		s = append(s, "from "+p.Src.String())
	}
	if p.Dst.IsValid() {
		s = append(s, "to "+p.Dst.String())
	}
	return strings.Join(append(s, "on "+iface), " ")
}

// nftLocation is "FAMILY TABLE CHAIN [position H]".
func nftLocation(r *Rule) []string {
	loc := []string{string(r.Family), r.Table, r.Chain}
	if r.Handle != 0 {
		loc = append(loc, "position", fmt.Sprint(r.Handle))
	}
	return loc
}

// nftMatch is the nft match of exactly the advert p.
func nftMatch(p eval.Packet, fam ruleset.Family) []string {
	var m []string
	if p.Direction == eval.In && fam != ruleset.FamilyNetdev {
		m = append(m, "iifname", `"`+p.InIface+`"`)
	} else if p.Direction == eval.Out {
		m = append(m, "oifname", `"`+p.OutIface+`"`)
	}
	proto := "ip"
	if p.Dst.Is6() {
		proto = "ip6"
	}
	if p.Src.IsValid() && !p.Dst.IsMulticast() || p.Src.IsValid() && p.Direction == eval.In {
		m = append(m, proto, "saddr", p.Src.String())
	}
	if p.Dst.IsValid() {
		m = append(m, proto, "daddr", p.Dst.String())
	}
	return append(m, "meta", "l4proto", "vrrp")
}

// iptablesCommand is the iptables command inserting (or appending) r.
func iptablesCommand(r *Rule, p eval.Packet) []string {
	cmd := []string{iptablesBinary(r.Backend, r.Family), "-w", "-t", r.Table}
	if r.Position > 0 {
		cmd = append(cmd, "-I", r.Chain, fmt.Sprint(r.Position))
	} else {
		cmd = append(cmd, "-A", r.Chain)
	}
	return append(cmd, iptablesMatch(p)...)
}

// iptablesMatch is the iptables rule specification of exactly the advert p.
func iptablesMatch(p eval.Packet) []string {
	var m []string
	if p.Direction == eval.In {
		m = append(m, "-i", p.InIface)
	} else {
		m = append(m, "-o", p.OutIface)
	}
	if p.Src.IsValid() && (p.Direction == eval.In || !p.Dst.IsMulticast()) {
		m = append(m, "-s", p.Src.String())
	}
	if p.Dst.IsValid() {
		m = append(m, "-d", p.Dst.String())
	}
	return append(m, "-p", "vrrp", "-m", "comment", "--comment", Marker, "-j", "ACCEPT")
}

// iptablesBinary names the iptables program of the backend and family.
func iptablesBinary(b Backend, f ruleset.Family) string {
	name := "iptables"
	if f == ruleset.FamilyIP6 {
		name = "ip6tables"
	}
	if b == IptablesLegacy {
		return name + "-legacy"
	}
	return name + "-nft"
}

// modelRule is the model of the accept for p (with iifname/oifname unless
// noIface), as the evaluator reads it.
func modelRule(p eval.Packet, fam ruleset.Family, noIface bool) *ruleset.Rule {
	var ex []ruleset.Expr
	eq := func(l ruleset.Expr, v string) {
		ex = append(ex, ruleset.Match{Op: ruleset.OpEq, Left: l, Right: ruleset.Const{Value: v}})
	}
	if !noIface {
		if p.Direction == eval.In && fam != ruleset.FamilyNetdev {
			eq(ruleset.Meta{Key: "iifname"}, p.InIface)
		} else if p.Direction == eval.Out {
			eq(ruleset.Meta{Key: "oifname"}, p.OutIface)
		}
	}
	proto := "ip"
	if p.Dst.Is6() {
		proto = "ip6"
	}
	if p.Src.IsValid() && (p.Direction == eval.In || !p.Dst.IsMulticast()) {
		eq(ruleset.Payload{Proto: proto, Field: "saddr"}, p.Src.String())
	}
	if p.Dst.IsValid() {
		eq(ruleset.Payload{Proto: proto, Field: "daddr"}, p.Dst.String())
	}
	eq(ruleset.Meta{Key: "l4proto"}, "vrrp")
	ex = append(ex, ruleset.Verdict{Kind: "accept"})
	return &ruleset.Rule{Exprs: ex, Comment: Marker, Text: ruleset.RuleText(ex, Marker)}
}

// insert puts r's model into the model ruleset: before the rule with its
// handle (nftables), at its position (iptables), or at the end.
func insert(model *ruleset.Ruleset, r *Rule) {
	if r.Backend == Firewalld {
		insertFirewalld(model, r)
		return
	}
	var tb *ruleset.Table
	for _, t := range model.Tables {
		if t.Family == r.Family && t.Name == r.Table && backendMatches(t, r.Backend) {
			tb = t
		}
	}
	if tb == nil {
		return
	}
	c := tb.Chain(r.Chain)
	if c == nil {
		return
	}
	at := len(c.Rules)
	for i, x := range c.Rules {
		if (r.Handle != 0 && x.Handle == r.Handle) || (r.Position > 0 && i == r.Position-1) {
			at = i
			break
		}
	}
	c.Rules = slices.Insert(c.Rules, at, r.model)
	for i, x := range c.Rules {
		if x.Position != 0 || x == r.model {
			cp := *x
			cp.Position = i + 1
			c.Rules[i] = &cp
		}
	}
	r.model = c.Rules[at]
}

// backendMatches reports whether table t is where a rule of backend b goes.
func backendMatches(t *ruleset.Table, b Backend) bool {
	switch b {
	case IptablesNFT:
		return t.Backend == ruleset.BackendIptablesNFT
	case IptablesLegacy:
		return t.Backend == ruleset.BackendIptablesLegacy
	case NFT:
		return t.Backend == ruleset.BackendNFT
	}
	return true
}

// clone copies the tables, chains and rule lists of rs (rules themselves are
// shared: the model never changes a rule in place).
func clone(rs *ruleset.Ruleset) *ruleset.Ruleset {
	out := &ruleset.Ruleset{Sources: slices.Clone(rs.Sources)}
	for _, t := range rs.Tables {
		ct := *t
		ct.Chains = nil
		for _, c := range t.Chains {
			cc := *c
			cc.Rules = slices.Clone(c.Rules)
			ct.Chains = append(ct.Chains, &cc)
		}
		out.Tables = append(out.Tables, &ct)
	}
	return out
}
