package runtime

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/scripts"
)

// Reloading an instance in place. Like keepalived, Reload keeps a running
// instance through most configuration changes: its state machine takes the
// new router.Config (router.Machine.Reconfigure: priority, advert_int,
// preempt, virtual addresses, GARP, authentication, unicast peers and
// source), and the I/O around it takes the rest (tracked objects and
// their weights, notify scripts, vrrp_garp_interval / vrrp_gna_interval,
// unicast_ttl, how a virtual address is configured). Only what changes the
// instance's socket, macvlan, accept-mode table or sync group, or the
// Machine's identity (VRID, version, family, address owner), restarts it:
// priority 0 and addresses removed, then started again.

// ctlReload asks an instance to switch to plan in place; done is closed
// once the Machine and the plan are switched.
type ctlReload struct {
	plan    *plan
	changes []string
	done    chan struct{}
}

// reloadDiff compares the plan an instance runs (p) with its plan in a new
// configuration (q): the changes it can take in place, and those that need
// a restart. ps and qs are the vrrp_scripts of the two configurations.
func (p *plan) reloadDiff(q *plan, ps, qs map[string]*scriptPlan) (inPlace, restart []string) {
	inPlace, restart = router.Diff(p.rc, q.rc)
	need := func(cond bool, what string) {
		if cond {
			restart = append(restart, what)
		}
	}
	need(p.ifname != q.ifname, fmt.Sprintf("interface %s -> %s", p.ifname, q.ifname))
	need(p.family != q.family, fmt.Sprintf("family IPv%d -> IPv%d", p.family, q.family))
	need(p.group != q.group, fmt.Sprintf("multicast group (or unicast) %v -> %v", p.group, q.group))
	need(!p.vmac.equal(q.vmac), "use_vmac")
	need(!sameGroup(p.sync, q.sync), "vrrp_sync_group")
	need(p.noAccept != q.noAccept, "accept mode")

	add := func(cond bool, what string) {
		if cond {
			inPlace = append(inPlace, what)
		}
	}
	add(p.garpInterval != q.garpInterval || p.gnaInterval != q.gnaInterval, "garp/gna interval")
	add(p.unicastTTL != q.unicastTTL, fmt.Sprintf("unicast_ttl %d -> %d", p.unicastTTL, q.unicastTTL))
	tracks := !slices.Equal(p.tracks, q.tracks)
	for _, t := range q.tracks {
		if t.script != "" && !ps[t.script].equal(qs[t.script]) {
			tracks = true
		}
	}
	add(tracks, "tracked objects")
	var redone []string
	for a, v := range p.vips {
		if w, ok := q.vips[a]; ok && !v.equal(w) {
			redone = append(redone, a.String())
		}
	}
	slices.Sort(redone)
	add(len(redone) > 0, fmt.Sprintf("virtual address settings %v", redone))
	add(!p.notify.equal(q.notify), "notify scripts")
	return inPlace, restart
}

func (n notifyPlan) equal(o notifyPlan) bool {
	same := func(a, b *scripts.Command) bool {
		if a == nil || b == nil {
			return a == b
		}
		return slices.Equal(a.Argv, b.Argv) && a.UID == b.UID && a.GID == b.GID && slices.Equal(a.Groups, b.Groups)
	}
	return same(n.master, o.master) && same(n.backup, o.backup) && same(n.fault, o.fault) &&
		same(n.stop, o.stop) && same(n.any, o.any)
}

// reload switches the instance to np in place and waits until its loop
// has done so (the actions that follow, such as adding addresses, run
// right after).
func (in *instance) reload(np *plan, changes []string) {
	c := ctlReload{plan: np, changes: changes, done: make(chan struct{})}
	select {
	case in.ctl <- c:
		<-c.done
	case <-in.done:
	}
}

// applyReload is the loop's side of reload: it hands the Machine the new
// configuration, carries out at once what needs the old plan (removing
// addresses no longer configured, or configured differently), switches
// the plan, and returns the rest to be carried out (new addresses and
// their announcements, an advert with a new interval or address list, and
// whatever tracking under the new plan changes).
func (in *instance) applyReload(now time.Time, c ctlReload) router.Ready {
	old, np := in.currentPlan(), c.plan
	r, err := in.m.Reconfigure(now, np.rc)
	if err != nil {
		// reloadDiff let through what Reconfigure refuses: keep running
		// the old configuration rather than stop.
		in.log.Error("configuration not applied in place: the instance keeps its old configuration", "err", err)
		close(c.done)
		return router.Ready{Deadline: in.m.Deadline()}
	}
	// Addresses configured differently (another dev, prefix, label): a
	// Master removes the old form and adds the new one.
	var redone []netip.Addr
	if in.m.State() == router.Master {
		for _, a := range slices.SortedFunc(maps.Keys(old.vips), netip.Addr.Compare) {
			if w, ok := np.vips[a]; ok && !old.vips[a].equal(w) && !slices.Contains(r.RemoveVIPs, a) {
				redone = append(redone, a)
			}
		}
	}
	in.exec(&router.Ready{RemoveVIPs: append(slices.Clone(r.RemoveVIPs), redone...)})
	r.RemoveVIPs = nil
	if len(redone) > 0 {
		r.AddVIPs = append(r.AddVIPs, redone...)
		r.Announce = append(r.Announce, router.Announcement{Addrs: redone, Count: in.m.Config().GARP.MasterRepeat, Reason: router.AnnounceVIPsAdded})
	}
	// The changes are logged below, with those outside the Machine.
	r.Notices = slices.DeleteFunc(r.Notices, func(n router.Notice) bool { return n.Kind == router.NoticeReconfigured })
	in.setPlan(np)
	close(c.done)
	in.log.Info("configuration applied in place", "changes", strings.Join(c.changes, "; "),
		"state", in.m.State().String(), "priority", in.m.Priority())
	in.srcCheck.Store(true) // the new plan's source, read at planning, may be stale already
	appendReady(&r, in.retrack(now))
	return r
}

// reloadIdle switches an instance whose Machine has not started yet (it
// waits for its track scripts) to c.plan, and returns it.
func (in *instance) reloadIdle(now time.Time, c ctlReload) *plan {
	defer close(c.done)
	if _, err := in.m.Reconfigure(now, c.plan.rc); err != nil {
		in.log.Error("configuration not applied in place: the instance keeps its old configuration", "err", err)
		return in.currentPlan()
	}
	in.setPlan(c.plan)
	in.log.Info("configuration applied in place", "changes", strings.Join(c.changes, "; "), "state", in.m.State().String())
	return c.plan
}
