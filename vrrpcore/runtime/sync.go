package runtime

import (
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
)

// groupPlan is a vrrp_sync_group of two or more running instances.
type groupPlan struct {
	name    string
	members []string // sorted
	notify  notifyPlan
}

// syncGroup makes the members of a vrrp_sync_group move together, as
// keepalived does:
//
//   - a member that becomes Master (on its own: timer, priority 0,
//     preemption) takes the others to Master (router SyncMaster);
//   - a member that falls from Master to Backup (a higher priority
//     advert) takes the others to Backup (SyncBackup);
//   - a member whose tracked objects put it in FAULT puts them all in
//     FAULT, until every member's own fault has cleared;
//   - a member's take-over waits (SetSyncHold) until every other member
//     is Master or wants to be (its own Master_Down_Timer expired): with
//     one link's Master alive, the group stays Backup rather than thrash.
//
// Members tell the group what they did after each step of their loop
// (update) and learn what to do when kicked (takePending, othersWant,
// fault). The group's own notify scripts run when all members have
// reached MASTER or BACKUP, or one has gone to FAULT.
type syncGroup struct {
	name   string
	log    *slog.Logger
	notify *notifier

	planMu sync.Mutex
	plan   *groupPlan // replaced on reload when only the notify scripts change

	mu      sync.Mutex
	members map[string]*groupMember
	state   string // last state notified: MASTER, BACKUP, FAULT or ""
}

type groupMember struct {
	kick    chan struct{}
	state   router.State
	want    bool
	fault   bool         // the member's own fault (its tracked objects)
	pending router.State // Master or Backup to follow; Initialize: nothing
}

func newSyncGroup(gp *groupPlan, timeout time.Duration, log *slog.Logger) *syncGroup {
	log = log.With("sync_group", gp.name)
	g := &syncGroup{name: gp.name, log: log, plan: gp, members: map[string]*groupMember{}}
	g.notify = newNotifier(gp.name, "GROUP", timeout, func() notifyPlan { return g.currentPlan().notify }, log)
	return g
}

func (g *syncGroup) currentPlan() *groupPlan {
	g.planMu.Lock()
	defer g.planMu.Unlock()
	return g.plan
}

func (g *syncGroup) setPlan(gp *groupPlan) {
	g.planMu.Lock()
	g.plan = gp
	g.planMu.Unlock()
}

// empty reports whether no member runs.
func (g *syncGroup) empty() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.members) == 0
}

// join adds a running member.
func (g *syncGroup) join(name string, kick chan struct{}) {
	g.mu.Lock()
	g.members[name] = &groupMember{kick: kick}
	g.mu.Unlock()
}

// leave removes a member that stopped; the others carry on as a group.
func (g *syncGroup) leave(name string) {
	g.mu.Lock()
	delete(g.members, name)
	g.mu.Unlock()
}

// kickOthers wakes every member but name; g.mu is held.
func (g *syncGroup) kickOthers(name string) {
	for n, m := range g.members {
		if n == name {
			continue
		}
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
}

// othersWant reports whether every member but name is Master or wants to
// be: name may then become Master.
func (g *syncGroup) othersWant(name string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for n, m := range g.members {
		if n != name && m.state != router.Master && !m.want {
			return false
		}
	}
	return true
}

// setFault records name's own fault condition and returns the group's:
// true while any member's own fault lasts.
func (g *syncGroup) setFault(name string, own bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := g.members[name]
	if m != nil && m.fault != own {
		m.fault = own
		g.kickOthers(name)
	}
	for _, m := range g.members {
		if m.fault {
			return true
		}
	}
	return false
}

// takePending returns (and forgets) what name must follow.
func (g *syncGroup) takePending(name string) router.State {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := g.members[name]
	if m == nil {
		return router.Initialize
	}
	p := m.pending
	m.pending = router.Initialize
	return p
}

// update records name's state after a step of its loop, with the
// transitions of that step, and tells the other members what to follow.
func (g *syncGroup) update(name string, state router.State, want bool, transitions []router.Transition) {
	g.mu.Lock()
	defer g.mu.Unlock()
	me := g.members[name]
	if me == nil || len(transitions) == 0 && me.state == state && me.want == want {
		return // most steps: an advert received or sent, nothing new
	}
	for _, t := range transitions {
		if t.Reason == router.ReasonSyncGroup {
			continue // following, not leading
		}
		var follow router.State
		switch {
		case t.To == router.Master:
			follow = router.Master
		case t.From == router.Master && t.To == router.Backup:
			follow = router.Backup
		default:
			continue
		}
		g.log.Info("syncing instances", "to", follow.String(), "because", name, "reason", string(t.Reason))
		for n, m := range g.members {
			if n != name && m.state != follow && m.state != router.Fault {
				m.pending = follow
				select {
				case m.kick <- struct{}{}:
				default:
				}
			}
		}
	}
	wantChanged := me.want != want
	me.state, me.want = state, want
	if wantChanged {
		g.kickOthers(name) // a held member may go now
	}
	g.notifyState()
}

// notifyState runs the group's notify scripts when the group as a whole
// has changed state; g.mu is held.
func (g *syncGroup) notifyState() {
	states := make([]router.State, 0, len(g.members))
	for _, m := range g.members {
		states = append(states, m.state)
	}
	var now string
	switch {
	case slices.Contains(states, router.Fault):
		now = "FAULT"
	case len(states) > 0 && !slices.ContainsFunc(states, func(s router.State) bool { return s != router.Master }):
		now = "MASTER"
	case len(states) > 0 && !slices.ContainsFunc(states, func(s router.State) bool { return s != router.Backup }):
		now = "BACKUP"
	default:
		return // on the way
	}
	if now == g.state {
		return
	}
	g.state = now
	g.log.Info("sync group state", "state", now)
	// A group has no priority of its own: keepalived passes 0.
	g.notify.post(notifyEvent{state: now, priority: 0})
}
