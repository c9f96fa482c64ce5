// Package eval walks a packet through a ruleset.Ruleset the way netfilter
// does, and names the rule that decides its fate.
//
// Semantics, as the kernel implements them:
//   - the hooks a packet crosses are taken in order (ingress, prerouting,
//     input for an incoming packet; output, postrouting, egress for an
//     outgoing one), and on each hook every base chain of every table that
//     applies — native nftables, iptables-nft and iptables-legacy alike — in
//     priority order;
//   - an accept ends only the base chain it is in: the next base chain still
//     sees the packet; drop and reject are final;
//   - jump pushes a return point, goto does not, return (or the end of a
//     regular chain) pops it, and the end of a base chain applies its policy;
//   - conntrack attaches at priority -200 of prerouting and output: before
//     that, "ct state" reads invalid; notrack before it makes the packet
//     untracked.
//
// Anything the evaluator cannot decide (a rate limit, an ipset, an xt
// extension it does not know, a NAT rewrite, two base chains at the same
// priority whose order matters) is followed both ways; when the ways
// disagree the verdict is "unknown", with the reason. It never guesses.
package eval

import (
	"fmt"
	"sort"
	"strings"

	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// Verdict is the fate of the packet.
type Verdict string

// Verdicts.
const (
	Accept  Verdict = "accept"
	Drop    Verdict = "drop"
	Reject  Verdict = "reject"
	Unknown Verdict = "unknown"
)

// RuleRef names a rule, or a chain's policy when Policy is set.
type RuleRef struct {
	Backend  ruleset.Backend `json:"backend"`
	Family   ruleset.Family  `json:"family"`
	Table    string          `json:"table"`
	Chain    string          `json:"chain"`
	Handle   uint64          `json:"handle,omitempty"`
	Position int             `json:"position,omitempty"`
	Policy   bool            `json:"policy,omitempty"`
	Text     string          `json:"text"`
	Owner    ruleset.Owner   `json:"owner"`
}

// String is "backend family table chain #handle: text".
func (r RuleRef) String() string {
	id := ""
	switch {
	case r.Policy:
		id = " (policy)"
	case r.Handle != 0:
		id = fmt.Sprintf(" handle %d", r.Handle)
	case r.Position != 0:
		id = fmt.Sprintf(" rule %d", r.Position)
	}
	return fmt.Sprintf("%s %s %s %s%s: %s", r.Backend, r.Family, r.Table, r.Chain, id, r.Text)
}

// Step is one rule that matched (or a base chain policy that applied) on the
// packet's way.
type Step struct {
	RuleRef
	Hook     ruleset.Hook `json:"hook"`
	Priority int          `json:"priority"`
	// Action is what the rule did: accept, drop, reject, jump X, goto X,
	// return, continue, mark set 0x10, notrack, ...
	Action string `json:"action"`
	// Note qualifies the action, for example "accepted, but not final".
	Note string `json:"note,omitempty"`
}

// Result is the evaluator's answer.
type Result struct {
	Packet  Packet   `json:"-"`
	Verdict Verdict  `json:"verdict"`
	Rule    *RuleRef `json:"rule"`
	Path    []Step   `json:"path"`
	// UnknownReason says why the verdict is unknown.
	UnknownReason string `json:"unknown_reason,omitempty"`
	// Notes are caveats that do not change the verdict (for example that the
	// deciding rule depends on a rate limit while the verdict does not).
	Notes []string `json:"notes,omitempty"`
}

// NotFinal is the note on an accept that a later base chain overrides or
// still sees.
const NotFinal = "accepted, but not final"

// maxBranches bounds how many undecidable conditions are followed both ways.
const maxBranches = 256

// maxOrders bounds the orderings tried for base chains of equal priority.
const maxOrders = 24

// base is one base chain on the packet's way.
type base struct {
	t    *ruleset.Table
	c    *ruleset.Chain
	hook ruleset.Hook
	hi   int // index of the hook in the packet's hook order
}

// Evaluate walks p through rs.
func Evaluate(rs *ruleset.Ruleset, p Packet) (Result, error) {
	p, err := p.normalize()
	if err != nil {
		return Result{}, err
	}
	e := &evaluator{rs: rs, p: p, ctMarkSet: setsCTMark(rs)}
	for _, t := range rs.Tables {
		if t.Incomplete != "" && e.familyApplies(t.Family) {
			return Result{Packet: p, Verdict: Unknown, UnknownReason: fmt.Sprintf("the rules of %s table %s %s are not known: %s", t.Backend, t.Family, t.Name, t.Incomplete)}, nil
		}
	}
	bases := e.bases()
	orders, tied := orderings(bases)
	if len(orders) > maxOrders {
		return Result{Packet: p, Verdict: Unknown, UnknownReason: fmt.Sprintf("too many base chains share a priority (%s): their order is not known", tied)}, nil
	}
	var first Result
	for i, order := range orders {
		r := e.walk(order)
		if i == 0 {
			first = r
			continue
		}
		why := fmt.Sprintf("base chains %s share a hook and priority; the kernel runs them in registration order, which the ruleset does not show (%s by %s in one order, %s by %s in another)",
			tied, first.Verdict, refText(first.Rule), r.Verdict, refText(r.Rule))
		if r.Verdict != first.Verdict {
			return Result{Packet: p, Verdict: Unknown, Path: first.Path, UnknownReason: why}, nil
		}
		if !sameRule(r.Rule, first.Rule) && first.Rule != nil {
			first.Rule = nil
			first.Notes = append(first.Notes, "the verdict does not depend on the order, but the deciding rule does: "+why)
		}
	}
	first.Packet = p
	return first, nil
}

func refText(r *RuleRef) string {
	if r == nil {
		return "no rule"
	}
	return r.String()
}

func sameRule(a, b *RuleRef) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// hookOrder lists the hooks a packet crosses.
func hookOrder(d Direction) []ruleset.Hook {
	if d == In {
		return []ruleset.Hook{ruleset.HookIngress, ruleset.HookPrerouting, ruleset.HookInput}
	}
	return []ruleset.Hook{ruleset.HookOutput, ruleset.HookPostrouting, ruleset.HookEgress}
}

// bases collects the base chains the packet meets, in hook then priority order.
func (e *evaluator) bases() []base {
	hooks := hookOrder(e.p.Direction)
	var out []base
	for _, t := range e.rs.Tables {
		for _, c := range t.Chains {
			if c.Base == nil {
				continue
			}
			hi := -1
			for i, h := range hooks {
				if c.Base.Hook == h {
					hi = i
				}
			}
			if hi < 0 || !e.applies(t, c) {
				continue
			}
			out = append(out, base{t: t, c: c, hook: c.Base.Hook, hi: hi})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].hi != out[j].hi {
			return out[i].hi < out[j].hi
		}
		return out[i].c.Base.Priority < out[j].c.Base.Priority
	})
	return out
}

// applies reports whether a base chain sees the packet: the table's family
// matches and, for ingress/egress, the chain's device is the interface.
func (e *evaluator) applies(t *ruleset.Table, c *ruleset.Chain) bool {
	if !e.familyApplies(t.Family) {
		return false
	}
	if c.Base.Hook == ruleset.HookIngress || c.Base.Hook == ruleset.HookEgress {
		dev := e.p.InIface
		if c.Base.Hook == ruleset.HookEgress {
			dev = e.p.OutIface
		}
		if c.Base.DevicesUnknown {
			return true // walk forks on it: see base.maybe
		}
		for _, d := range c.Base.Devices {
			if d == dev {
				return true
			}
		}
		return false
	}
	return t.Family != ruleset.FamilyNetdev
}

// orderings returns every order of the base chains that the kernel could
// use: chains sharing a hook and priority run in registration order, which
// a ruleset does not show.
func orderings(bs []base) ([][]base, string) {
	orders := [][]base{nil}
	var tied []string
	for i := 0; i < len(bs); {
		j := i + 1
		for j < len(bs) && bs[j].hi == bs[i].hi && bs[j].c.Base.Priority == bs[i].c.Base.Priority {
			j++
		}
		group := bs[i:j]
		if len(group) > 1 {
			var names []string
			for _, b := range group {
				names = append(names, fmt.Sprintf("%s %s %s %s", b.t.Backend, b.t.Family, b.t.Name, b.c.Name))
			}
			tied = append(tied, fmt.Sprintf("[%s at %s %d]", strings.Join(names, ", "), group[0].hook, group[0].c.Base.Priority))
		}
		perms := permutations(group)
		var next [][]base
		for _, o := range orders {
			for _, p := range perms {
				next = append(next, append(append([]base(nil), o...), p...))
				if len(next) > maxOrders {
					return next, strings.Join(tied, " ")
				}
			}
		}
		orders = next
		i = j
	}
	return orders, strings.Join(tied, " ")
}

func permutations(g []base) [][]base {
	if len(g) <= 1 {
		return [][]base{append([]base(nil), g...)}
	}
	if len(g) > 4 {
		// 5! orders exceed maxOrders anyway.
		out := make([][]base, maxOrders+1)
		for i := range out {
			out[i] = append([]base(nil), g...)
		}
		return out
	}
	var out [][]base
	for i := range g {
		rest := append(append([]base(nil), g[:i]...), g[i+1:]...)
		for _, p := range permutations(rest) {
			out = append(out, append([]base{g[i]}, p...))
		}
	}
	return out
}

// setsCTMark reports whether any rule writes the conntrack mark.
func setsCTMark(rs *ruleset.Ruleset) bool {
	for _, t := range rs.Tables {
		for _, c := range t.Chains {
			for _, r := range c.Rules {
				for _, x := range r.Exprs {
					if m, ok := x.(ruleset.Mangle); ok {
						if k, ok := m.Key.(ruleset.CT); ok && k.Key == "mark" {
							return true
						}
					}
				}
			}
		}
	}
	return false
}

// evaluator holds what is fixed during one evaluation.
type evaluator struct {
	rs        *ruleset.Ruleset
	p         Packet
	ctMarkSet bool
}

// state is what the path changes: the mark and whether conntrack was skipped.
type state struct {
	mark      uint32
	markKnown bool
	untracked bool
}

// branch is one way through the ruleset.
type branch struct {
	st   state
	path []Step
	// may lists the undecidable conditions assumed, and how, on this way.
	may []string
	// set once the packet's fate is sealed
	done    bool
	verdict Verdict
	rule    *RuleRef
	reason  string
	// lastAccept is the rule or policy that accepted in the latest base
	// chain, not of type nat unless only nat chains accepted (see accepted).
	lastAccept    *RuleRef
	lastAcceptNAT bool
}

// accepted records the accept that ended base chain bc. Chains of type nat
// see only the first packet of a conntrack flow: once the first advert is
// through, the next ones of the same sender skip them (conntrack keeps the
// flow while adverts keep coming). So an accept in a nat chain names the
// advert's fate only when no other chain accepted it. (A drop there is
// final for every advert: the flow is then never confirmed.)
func (b *branch) accepted(bc base, ref RuleRef) {
	nat := bc.c.Base.Type == "nat"
	if nat && b.lastAccept != nil && !b.lastAcceptNAT {
		return
	}
	b.lastAccept, b.lastAcceptNAT = &ref, nat
}

func (b branch) clone() branch {
	b.path = append([]Step(nil), b.path...)
	b.may = append([]string(nil), b.may...)
	return b
}

// walk evaluates one ordering of base chains.
func (e *evaluator) walk(order []base) Result {
	start := branch{st: state{mark: e.p.Mark, markKnown: true}}
	live := []branch{start}
	var finished []branch
	for _, bc := range order {
		var skip []branch
		if bc.c.Base.DevicesUnknown {
			// Follow both ways: attached to the packet's interface or not.
			cond := fmt.Sprintf("%s %s %s %s is attached to %s (the ruleset does not say which devices it hooks)", bc.t.Backend, bc.t.Family, bc.t.Name, bc.c.Name, e.iface())
			for i, b := range live {
				n := b.clone()
				n.may = append(n.may, "not: "+cond)
				skip = append(skip, n)
				live[i] = b.clone()
				live[i].may = append(live[i].may, cond)
			}
		}
		var next []branch
		for _, b := range live {
			for _, r := range e.runBase(bc, b) {
				if r.done {
					finished = append(finished, r)
				} else {
					next = append(next, r)
				}
			}
		}
		live = append(next, skip...)
		if len(live)+len(finished) > maxBranches {
			return Result{Verdict: Unknown, UnknownReason: "too many undecidable conditions to follow"}
		}
	}
	for _, b := range live {
		b.done, b.verdict, b.rule = true, Accept, b.lastAccept
		finished = append(finished, b)
	}
	return combine(finished)
}

// combine merges the ways into one answer.
func combine(bs []branch) Result {
	for i := range bs {
		markNotFinal(&bs[i])
	}
	first := bs[0]
	res := Result{Verdict: first.verdict, Rule: first.rule, Path: first.path}
	if first.verdict == Unknown {
		res.UnknownReason = first.reason
	}
	sameVerdict, sameRuleAll := true, true
	for _, b := range bs[1:] {
		if b.verdict != first.verdict {
			sameVerdict = false
		}
		if !sameRule(b.rule, first.rule) {
			sameRuleAll = false
		}
	}
	var conds []string
	seen := map[string]bool{}
	for _, b := range bs {
		for _, m := range b.may {
			m = strings.TrimPrefix(m, "not: ")
			if !seen[m] {
				seen[m] = true
				conds = append(conds, m)
			}
		}
	}
	switch {
	case len(bs) == 1:
	case !sameVerdict:
		var outs []string
		for _, b := range bs {
			s := string(b.verdict)
			if b.rule != nil {
				s += " by " + b.rule.String()
			}
			if b.verdict == Unknown {
				s += " (" + b.reason + ")"
			}
			if len(b.may) > 0 {
				s += " if " + strings.Join(b.may, " and ")
			}
			outs = append(outs, s)
		}
		res.Verdict, res.Rule = Unknown, nil
		res.UnknownReason = "the verdict depends on conditions the ruleset alone cannot decide: " + strings.Join(outs, "; ")
	case first.verdict == Unknown:
		// Every way is unknown: keep the first reason.
	case !sameRuleAll:
		res.Notes = append(res.Notes, fmt.Sprintf("the verdict is %s either way, but which rule decides depends on: %s", first.verdict, strings.Join(conds, "; ")))
	default:
		res.Notes = append(res.Notes, "followed both ways without changing the answer: "+strings.Join(conds, "; "))
	}
	return res
}

// markNotFinal notes every accept on the path except the one that decided.
func markNotFinal(b *branch) {
	for i := range b.path {
		s := &b.path[i]
		if s.Action != "accept" {
			continue
		}
		if b.verdict == Accept && b.rule != nil && s.RuleRef == *b.rule {
			continue
		}
		s.Note = NotFinal
	}
}

// frame is a chain on the jump stack.
type frame struct {
	c   *ruleset.Chain
	idx int
}

// runBase evaluates one base chain for one way; it returns ways that are
// either done (drop, reject, unknown) or accepted by this chain.
func (e *evaluator) runBase(bc base, b branch) []branch {
	return e.exec(bc, []frame{{c: bc.c}}, b, 0)
}

func (e *evaluator) ref(bc base, c *ruleset.Chain, r *ruleset.Rule) RuleRef {
	o, _ := ruleset.OwnerOf(bc.t, c, r)
	ref := RuleRef{Backend: bc.t.Backend, Family: bc.t.Family, Table: bc.t.Name, Chain: c.Name, Owner: o}
	if r == nil {
		ref.Policy = true
		ref.Text = "policy " + bc.c.Base.Policy
		return ref
	}
	ref.Handle, ref.Position, ref.Text = r.Handle, r.Position, r.Text
	return ref
}

func (e *evaluator) step(bc base, c *ruleset.Chain, r *ruleset.Rule, action string) Step {
	return Step{RuleRef: e.ref(bc, c, r), Hook: bc.hook, Priority: bc.c.Base.Priority, Action: action}
}

// exec runs the chain stack until the base chain ends.
func (e *evaluator) exec(bc base, stack []frame, b branch, depth int) []branch {
	if depth > maxBranches {
		b.done, b.verdict, b.reason = true, Unknown, "too many undecidable conditions to follow"
		return []branch{b}
	}
	for {
		top := &stack[len(stack)-1]
		if top.idx >= len(top.c.Rules) {
			if len(stack) == 1 {
				return []branch{e.policy(bc, b)}
			}
			stack = stack[:len(stack)-1]
			continue
		}
		r := top.c.Rules[top.idx]
		top.idx++
		outs := e.rule(bc, top.c, r, b)
		if len(outs) == 1 {
			o := outs[0]
			var end bool
			stack, b, end = e.apply(bc, stack, o)
			if end {
				return []branch{b}
			}
			continue
		}
		var res []branch
		for _, o := range outs {
			st := append([]frame(nil), stack...)
			st2, nb, end := e.apply(bc, st, o)
			if end {
				res = append(res, nb)
				continue
			}
			res = append(res, e.exec(bc, st2, nb, depth+1)...)
		}
		return res
	}
}

// apply carries out a rule's outcome on the stack. end reports that the base
// chain is over for this way (accepted, or the packet's fate sealed).
func (e *evaluator) apply(bc base, stack []frame, o ruleOut) ([]frame, branch, bool) {
	b := o.b
	switch o.kind {
	case outNoMatch:
		return stack, b, false
	case outUnknown:
		b.done, b.verdict, b.reason = true, Unknown, o.reason
		return stack, b, true
	}
	v := o.v
	switch v.Kind {
	case "accept":
		ref := b.path[len(b.path)-1].RuleRef
		b.accepted(bc, ref)
		return stack, b, true
	case "drop", "reject":
		ref := b.path[len(b.path)-1].RuleRef
		b.done, b.rule = true, &ref
		b.verdict = Drop
		if v.Kind == "reject" {
			b.verdict = Reject
		}
		return stack, b, true
	case "continue":
		return stack, b, false
	case "return":
		if len(stack) == 1 {
			p := e.policy(bc, b)
			return stack, p, true
		}
		return stack[:len(stack)-1], b, false
	case "jump", "goto":
		t := bc.t.Chain(v.Target)
		if t == nil {
			b.done, b.verdict = true, Unknown
			b.reason = fmt.Sprintf("%s to chain %s, which table %s %s does not have", v.Kind, v.Target, bc.t.Family, bc.t.Name)
			return stack, b, true
		}
		if len(stack) >= 64 {
			b.done, b.verdict, b.reason = true, Unknown, "jumps nest deeper than 64 chains (a loop?)"
			return stack, b, true
		}
		if v.Kind == "goto" {
			stack[len(stack)-1] = frame{c: t}
		} else {
			stack = append(stack, frame{c: t})
		}
		return stack, b, false
	case "queue":
		b.done, b.verdict = true, Unknown
		b.reason = "queued to a user-space program (" + b.path[len(b.path)-1].Text + "), which decides"
		return stack, b, true
	}
	b.done, b.verdict, b.reason = true, Unknown, "verdict "+v.Kind+" is not understood"
	return stack, b, true
}

// policy ends a base chain with its policy.
func (e *evaluator) policy(bc base, b branch) branch {
	ref := e.ref(bc, bc.c, nil)
	s := Step{RuleRef: ref, Hook: bc.hook, Priority: bc.c.Base.Priority, Action: bc.c.Base.Policy}
	b.path = append(b.path, s)
	switch bc.c.Base.Policy {
	case "accept":
		b.accepted(bc, ref)
	case "drop":
		b.done, b.verdict, b.rule = true, Drop, &ref
	default:
		b.done, b.verdict, b.reason = true, Unknown, "policy "+bc.c.Base.Policy+" is not understood"
	}
	return b
}

// iface is the interface the packet crosses.
func (e *evaluator) iface() string {
	if e.p.Direction == In {
		return e.p.InIface
	}
	return e.p.OutIface
}

// familyApplies reports whether tables of family f can see the packet.
func (e *evaluator) familyApplies(f ruleset.Family) bool {
	switch f {
	case ruleset.FamilyIP:
		return e.p.Family == 4
	case ruleset.FamilyIP6:
		return e.p.Family == 6
	case ruleset.FamilyInet, ruleset.FamilyNetdev:
		return true
	}
	return false // arp, bridge: not on an IP packet's routed path
}
