package router

// A deterministic simulation of N virtual routers on one LAN with loss,
// delay, partitions, crashes, graceful restarts, faults and tracking
// changes, driven by a seeded PRNG and a simulated clock. After the
// network heals it checks RFC 5798's promise: exactly one Master within
// Master_Down_Interval (plus the delay bound, plus preempt_delay), the
// highest priority (or the owner) when preempting, and no flap that the
// protocol does not call for.
//
//	go test ./vrrpcore/router -run Simulation -router.sim.seeds=20000
//	go test ./vrrpcore/router -run Simulation -router.sim.seed=42 -v   # one seed, with its trace

import (
	"container/heap"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

var (
	simSeeds = flag.Int("router.sim.seeds", 1000, "number of seeds TestSimulation runs (100 with -short)")
	simSeed  = flag.Int64("router.sim.seed", -1, "run only this TestSimulation seed and log its trace")
)

type simEventKind uint8

const (
	evDeliver simEventKind = iota
	evTick
	evScript
)

type simEvent struct {
	at   time.Time
	seq  uint64
	kind simEventKind
	node int
	gen  int // node incarnation the event belongs to
	adv  vrrpcore.Advert
	src  netip.Addr
	fn   func()
}

type eventQueue []*simEvent

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*simEvent)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

type simNode struct {
	id      int
	cfg     Config
	m       *Machine
	up      bool
	gen     int
	holds   bool // holds the VIPs, as the Ready actions say
	tickAt  time.Time
	faulted bool
}

type simTransition struct {
	at   time.Time
	node int
	tr   Transition
}

type sim struct {
	rng         *rand.Rand
	now         time.Time
	q           eventQueue
	seq         uint64
	nodes       []*simNode
	loss        float64
	maxDelay    time.Duration
	group       []int // partition: nodes talk only within their group
	transitions []simTransition
	trace       []string
	err         error
}

func (s *sim) logf(format string, args ...any) {
	s.trace = append(s.trace, fmt.Sprintf("%9.4fs ", s.now.Sub(t0).Seconds())+fmt.Sprintf(format, args...))
}

func (s *sim) fail(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf("at %v: %s", s.now.Sub(t0), fmt.Sprintf(format, args...))
	}
}

func (s *sim) push(e *simEvent) {
	s.seq++
	e.seq = s.seq
	heap.Push(&s.q, e)
}

func (s *sim) at(d time.Time, fn func()) { s.push(&simEvent{at: d, kind: evScript, fn: fn}) }

// apply carries out a Ready for node n the way a runtime would, and checks
// the invariants every Ready must keep.
func (s *sim) apply(n *simNode, r Ready) {
	st := n.m.State()
	for _, tr := range r.Transitions {
		s.transitions = append(s.transitions, simTransition{s.now, n.id, tr})
		s.logf("n%d %v -> %v (%s) prio %d", n.id, tr.From, tr.To, tr.Reason, n.m.Priority())
	}
	resigned := len(r.Transitions) > 0 && r.Transitions[0].From == Master
	for _, a := range r.Adverts {
		if st != Master && !(a.Priority == 0 && resigned) {
			s.fail("n%d sent priority %d while %v", n.id, a.Priority, st)
		}
		for _, peer := range s.nodes {
			if peer == n || s.group[peer.id] != s.group[n.id] || s.rng.Float64() < s.loss {
				continue
			}
			delay := time.Duration(s.rng.Int64N(int64(s.maxDelay) + 1))
			s.push(&simEvent{at: s.now.Add(delay), kind: evDeliver, node: peer.id, adv: verified(a), src: n.cfg.PrimaryAddr})
		}
	}
	if len(r.RemoveVIPs) > 0 {
		if !n.holds {
			s.fail("n%d removes VIPs it does not hold", n.id)
		}
		n.holds = false
	}
	if len(r.AddVIPs) > 0 {
		if n.holds {
			s.fail("n%d adds VIPs it already holds", n.id)
		}
		n.holds = true
	}
	if n.holds != (st == Master) {
		s.fail("n%d holds VIPs=%v in state %v", n.id, n.holds, st)
	}
	for _, d := range r.Discards {
		if d.Reason.Invalid() {
			s.fail("n%d discarded a valid advert: %+v", n.id, d)
		}
	}
	// A deadline already due (tracking moved a Backup's timer into the
	// past) means "tick now", as for a runtime's timer.
	if !r.Deadline.Equal(n.tickAt) {
		n.tickAt = r.Deadline
		if !r.Deadline.IsZero() {
			s.push(&simEvent{at: later(r.Deadline, s.now), kind: evTick, node: n.id, gen: n.gen})
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (s *sim) run(until time.Time, each func()) {
	for len(s.q) > 0 && !s.q[0].at.After(until) && s.err == nil {
		e := heap.Pop(&s.q).(*simEvent)
		s.now = e.at
		switch e.kind {
		case evDeliver:
			n := s.nodes[e.node]
			if n.up {
				s.apply(n, n.m.Receive(s.now, RecvAdvert{Advert: e.adv, Src: e.src, TTL: 255}))
			}
		case evTick:
			n := s.nodes[e.node]
			if n.up && e.gen == n.gen && later(n.tickAt, e.at).Equal(e.at) && !n.tickAt.IsZero() {
				r := n.m.Tick(s.now)
				if !r.Deadline.IsZero() && !r.Deadline.After(s.now) {
					s.fail("n%d: Tick left deadline %v due", n.id, r.Deadline.Sub(t0))
				}
				s.apply(n, r)
			}
		case evScript:
			e.fn()
		}
		if each != nil {
			each()
		}
	}
	if s.err == nil {
		s.now = until
	}
}

func (s *sim) start(n *simNode) {
	m, err := New(n.cfg)
	if err != nil {
		s.fail("n%d: %v", n.id, err)
		return
	}
	n.m, n.up, n.holds, n.faulted = m, true, false, false
	n.gen++
	n.tickAt = time.Time{}
	s.logf("n%d start, priority %d", n.id, n.cfg.Priority)
	s.apply(n, m.Start(s.now))
}

// crash stops a node without a word: its VIPs vanish with it.
func (s *sim) crash(n *simNode) {
	if !n.up {
		return
	}
	s.logf("n%d crash", n.id)
	n.up, n.holds = false, false
	n.gen++
}

func (s *sim) shutdown(n *simNode) {
	if !n.up {
		return
	}
	s.logf("n%d shutdown", n.id)
	s.apply(n, n.m.Shutdown(s.now))
	n.up = false
	n.gen++
}

func (s *sim) masters() []*simNode {
	var ms []*simNode
	for _, n := range s.nodes {
		if n.up && n.m.State() == Master {
			ms = append(ms, n)
		}
	}
	return ms
}

// bound is how long after the network heals one Master must exist: a
// Backup's timer was last reset at most maxDelay after the heal (adverts
// in flight), preempt_delay may hold it, it runs for at most the largest
// Master_Down_Interval, and the losers hear the winner within maxDelay.
func (s *sim) bound() time.Duration {
	var worst time.Duration
	for _, n := range s.nodes {
		c := n.m.Config()
		worst = max(worst, downInterval(c.Version, n.m.Priority(), c.AdvertInterval, c.DownTimerAdverts)+c.PreemptDelay)
	}
	return worst + 2*s.maxDelay + time.Millisecond
}

// simScenario builds a random LAN for one seed.
func simScenario(seed int64) (*sim, string) {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	s := &sim{rng: rng, now: t0}
	n := 3 + rng.IntN(3)
	version := uint8(2 + rng.IntN(2))
	family := 4
	if version == 3 && rng.IntN(2) == 0 {
		family = 6
	}
	interval := time.Second
	if version == 3 {
		interval = []time.Duration{100 * ms, 250 * ms, time.Second}[rng.IntN(3)]
	}
	s.maxDelay = []time.Duration{100 * time.Microsecond, time.Millisecond, 5 * ms, interval / 5}[rng.IntN(4)]
	preempt := rng.IntN(3) != 0
	var preemptDelay time.Duration
	if preempt && rng.IntN(5) == 0 {
		preemptDelay = 2 * interval
	}
	owner := -1
	if preempt && rng.IntN(4) == 0 {
		owner = rng.IntN(n)
	}
	prios := rng.Perm(254)[:n]
	for i := range prios {
		prios[i]++
	}
	if rng.IntN(4) == 0 { // a tie at the top
		top := slices.Index(prios, slices.Max(prios))
		prios[(top+1)%n] = prios[top]
	}
	addrOrder := rng.Perm(n)
	unicast := rng.IntN(5) == 0

	primary := func(i int) netip.Addr {
		if family == 6 {
			return netip.MustParseAddr(fmt.Sprintf("fe80::%x", 10+addrOrder[i]))
		}
		return netip.MustParseAddr(fmt.Sprintf("198.51.100.%d", 10+addrOrder[i]))
	}
	vips := []netip.Addr{ip("203.0.113.1")}
	if family == 6 {
		vips = []netip.Addr{ip("fe80::1:1"), ip("2001:db8::1")}
	}
	for i := range n {
		c := Config{
			VRID: 51, Version: version, Family: family, Priority: uint8(prios[i]),
			AdvertInterval: interval, NoPreempt: !preempt, PreemptDelay: preemptDelay,
			VIPs: vips, PrimaryAddr: primary(i),
		}
		if i == owner {
			c.Priority = OwnerPriority
		}
		if version == 2 && rng.IntN(2) == 0 {
			c.AuthType = vrrpcore.AuthSimple
			copy(c.AuthData[:], "lan")
		}
		if rng.IntN(2) == 0 {
			c.GARP = GARPConfig{MasterRepeat: KeepalivedGarpMasterRepeat, MasterDelay: KeepalivedGarpMasterDelay}
		}
		if unicast {
			for j := range n {
				if j != i {
					c.UnicastPeers = append(c.UnicastPeers, primary(j))
				}
			}
		}
		s.nodes = append(s.nodes, &simNode{id: i, cfg: c})
	}
	// All nodes share the VRRPv2 password (or none).
	for _, nd := range s.nodes[1:] {
		nd.cfg.AuthType, nd.cfg.AuthData = s.nodes[0].cfg.AuthType, s.nodes[0].cfg.AuthData
	}
	s.group = make([]int, n)
	desc := fmt.Sprintf("seed %d: %d routers, VRRPv%d IPv%d, interval %v, max delay %v, preempt %v (delay %v), owner n%d, unicast %v, priorities %v",
		seed, n, version, family, interval, s.maxDelay, preempt, preemptDelay, owner, unicast, prios)
	return s, desc
}

// runSimulation runs one seed and returns an error describing the first
// broken promise, with the scenario and the end of the trace.
func runSimulation(seed int64) (trace []string, err error) {
	s, desc := simScenario(seed)
	s.trace = append(s.trace, desc)
	rng := s.rng
	interval := s.nodes[0].cfg.AdvertInterval
	preempt := !s.nodes[0].cfg.NoPreempt

	// Phase 1: staggered starts, then chaos.
	for _, n := range s.nodes {
		s.at(t0.Add(time.Duration(rng.Int64N(int64(interval)))), func() { s.start(n) })
	}
	chaos := 40 * interval
	for range 5 + rng.IntN(15) {
		when := t0.Add(time.Duration(rng.Int64N(int64(chaos))))
		n := s.nodes[rng.IntN(len(s.nodes))]
		switch rng.IntN(7) {
		case 0:
			groups := make([]int, len(s.nodes))
			for i := range groups {
				groups[i] = rng.IntN(3)
			}
			s.at(when, func() { s.group = groups; s.logf("partition %v", groups) })
		case 1:
			s.at(when, func() { s.group = make([]int, len(s.nodes)); s.logf("partition healed") })
		case 2:
			loss := rng.Float64() * 0.5
			s.at(when, func() { s.loss = loss; s.logf("loss %.2f", loss) })
		case 3:
			back := when.Add(time.Duration(rng.Int64N(int64(10 * interval))))
			s.at(when, func() { s.crash(n) })
			s.at(back, func() {
				if !n.up {
					s.start(n)
				}
			})
		case 4:
			back := when.Add(time.Duration(rng.Int64N(int64(10 * interval))))
			s.at(when, func() { s.shutdown(n) })
			s.at(back, func() {
				if !n.up {
					s.start(n)
				}
			})
		case 5:
			p := 1 + rng.IntN(254)
			s.at(when, func() {
				if n.up {
					s.logf("n%d tracking priority %d", n.id, p)
					s.apply(n, n.m.SetPriority(s.now, p))
				}
			})
		case 6:
			down := rng.IntN(2) == 0
			s.at(when, func() {
				if n.up {
					s.logf("n%d fault %v", n.id, down)
					n.faulted = down
					s.apply(n, n.m.SetFault(s.now, down))
				}
			})
		}
	}
	heal := t0.Add(chaos)
	s.run(heal, nil)

	// Phase 2: the network heals; every router is up and out of fault.
	s.loss, s.group = 0, make([]int, len(s.nodes))
	s.logf("HEAL")
	for _, n := range s.nodes {
		switch {
		case !n.up:
			s.start(n)
		case n.faulted || n.m.Faulted():
			n.faulted = false
			s.apply(n, n.m.SetFault(s.now, false))
		}
	}
	converged := heal.Add(s.bound())
	window := 20 * interval
	s.run(converged, nil)
	ms := s.masters()
	if s.err == nil && len(ms) != 1 {
		s.fail("%d Masters %v after the heal plus %v", len(ms), ids(ms), s.bound())
	}
	if s.err != nil {
		return s.trace, fmt.Errorf("%s\n%w", desc, s.err)
	}
	master := ms[0]
	if preempt {
		best := slices.MaxFunc(s.nodes, func(a, b *simNode) int { return int(a.m.Priority()) - int(b.m.Priority()) })
		if master.m.Priority() != best.m.Priority() {
			s.fail("preempting, yet Master n%d has priority %d and n%d has %d", master.id, master.m.Priority(), best.id, best.m.Priority())
		}
	}
	mark := len(s.transitions)
	s.run(converged.Add(window), nil)
	if s.err == nil && len(s.transitions) != mark {
		s.fail("flap in a healed network: %+v", s.transitions[mark:])
	}
	if s.err != nil {
		return s.trace, fmt.Errorf("%s\n%w", desc, s.err)
	}

	// Phase 3: a Backup restarts, then tracking raises it above the
	// Master. Preempting, it takes over (unless the Master owns the
	// address); not preempting, nothing but its own startup may happen.
	var backups []*simNode
	for _, n := range s.nodes {
		if n != master {
			backups = append(backups, n)
		}
	}
	r := backups[rng.IntN(len(backups))]
	restart := s.now.Add(interval / 2)
	raise := restart.Add(interval)
	raised := master.m.Priority() < 254
	s.crash(r)
	s.at(restart, func() { s.start(r) })
	if raised {
		s.at(raise, func() { s.logf("n%d tracking priority 254", r.id); s.apply(r, r.m.SetPriority(s.now, 254)) })
	}
	mark = len(s.transitions)
	s.run(raise, nil)
	end := raise.Add(s.bound() + window)
	s.run(end, nil)
	if s.err != nil {
		return s.trace, fmt.Errorf("%s\n%w", desc, s.err)
	}
	var got []string
	for _, tr := range s.transitions[mark:] {
		got = append(got, fmt.Sprintf("n%d:%v->%v:%s", tr.node, tr.tr.From, tr.tr.To, tr.tr.Reason))
	}
	want := []string{fmt.Sprintf("n%d:INIT->BACKUP:startup", r.id)}
	if preempt && raised {
		want = append(want, fmt.Sprintf("n%d:BACKUP->MASTER:preempted", r.id), fmt.Sprintf("n%d:MASTER->BACKUP:higher_priority_advert", master.id))
	}
	if !slices.Equal(got, want) {
		s.fail("after n%d restarted (raised to 254: %v): transitions %v, want %v", r.id, raised, got, want)
	}
	if ms := s.masters(); s.err == nil && len(ms) != 1 {
		s.fail("%d Masters at the end", len(ms))
	}
	if s.err != nil {
		return s.trace, fmt.Errorf("%s\n%w", desc, s.err)
	}
	return s.trace, nil
}

func ids(ns []*simNode) []int {
	var out []int
	for _, n := range ns {
		out = append(out, n.id)
	}
	return out
}

func TestSimulation(t *testing.T) {
	seeds := []int64{}
	if *simSeed >= 0 {
		seeds = append(seeds, *simSeed)
	} else {
		n := *simSeeds
		if testing.Short() {
			n = min(n, 100)
		}
		for i := range n {
			seeds = append(seeds, int64(i))
		}
	}
	for _, seed := range seeds {
		trace, err := runSimulation(seed)
		if *simSeed >= 0 {
			t.Log("\n" + strings.Join(trace, "\n"))
		}
		if err != nil {
			tail := trace[max(0, len(trace)-60):]
			t.Fatalf("%v\n--- last %d trace lines (rerun with -router.sim.seed=%d -v for all):\n%s", err, len(tail), seed, strings.Join(tail, "\n"))
		}
	}
}

// The simulation is deterministic: one seed, one history.
func TestSimulationDeterministic(t *testing.T) {
	a, errA := runSimulation(7)
	b, errB := runSimulation(7)
	if fmt.Sprint(errA) != fmt.Sprint(errB) || !slices.Equal(a, b) {
		t.Fatal("two runs of seed 7 differ")
	}
	if len(a) < 10 {
		t.Fatalf("trace of %d lines: the simulation did nothing", len(a))
	}
}
