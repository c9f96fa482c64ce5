package watch

import (
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/vrrpdoctor/vrrpdoctor/diag/check"
)

// Host facts at a window's end, read again only when they may have changed.
//
// The interfaces' state and addresses, and which interface holds each
// virtual address, change only with a kernel notification (rtEvents): each
// window drains the notifications queued and reads an interface again only
// when one arrived for it (by index or name), when notifications were lost,
// while its last reading had a problem, and at least every unchangedEvery.
// The VRRP group memberships (/proc/net/igmp, igmp6) have no notification:
// they are read again every membersEvery, in a window in which an
// interface was read again, when the watch's own memberships changed (a tap
// reopened), in a window in which a peer's adverts reached the wire and not
// the socket, and every window while an instance's group is not joined
// (the unhealthy state is not cached, only the healthy one).

// membersEvery bounds how long a VRRP daemon leaving its group goes
// unnoticed.
const membersEvery = 10 * time.Second

// kernFacts is the watcher goroutine's cache of interface facts.
type kernFacts struct {
	ev     notifier // nil: no notifications (everything is read every window)
	ifaces map[string]*ifaceEntry
	// readLink reads an interface; nil means check.InterfaceLink.
	readLink func(name string) (check.Interface, int)

	// files reads the memberships (kept open, in the watched namespace).
	files       procNetFiles
	members     check.Memberships
	membersAt   time.Time
	membersRead bool
	// membersHealthy: at the last reading every instance's group was
	// joined; membersNow: they were read in the current window.
	membersHealthy, membersNow bool

	// vipEvents counts the notifications of virtual addresses; vipsSeen
	// and vipsHeld are its value at the last window's end and when the
	// held addresses were last read. heldStale says the links holding
	// them changed (a rename) or notifications were lost since.
	vipEvents, vipsSeen, vipsHeld uint64
	heldStale                     bool
	// lost says the current window's notifications were lost or could not
	// be read; reopen that the socket failed and is to be opened again.
	lost, reopen bool
}

// notifier is the source of the kernel's notifications (rtEvents).
type notifier interface {
	drain(fn func(rtEvent)) (lost bool, err error)
	close()
}

// ifaceEntry is an interface as last read.
type ifaceEntry struct {
	ifc    check.Interface // without memberships
	index  int
	at     time.Time
	dirty  bool
	notify bool // a notification for it arrived in the current window
	// own4 and own6 are the watch's memberships when the groups were
	// applied; joined4 and joined6 the result.
	own4, own6       int
	joined4, joined6 *bool
	memberProblem    string
}

// followKernel subscribes to the link and address notifications of the
// watched namespace (run it through Watcher.enter).
func (w *Watcher) followKernel() {
	ev, err := openRTEvents(w.poke)
	if err != nil {
		w.log.Warn("watch: no link and address notifications; interfaces are read every window, and a hand-over and back inside one window may go unnoticed", "err", err)
		return
	}
	w.kern.ev = ev
}

func (w *Watcher) closeKernel() {
	if w.kern.ev != nil {
		w.kern.ev.close()
	}
	w.kern.files.close()
}

// kernelNews drains the notifications queued since the last window (in the
// watched namespace: a socket lost is opened again there).
func (w *Watcher) kernelNews() {
	k := &w.kern
	k.lost, k.membersNow = false, false
	for _, e := range k.ifaces {
		e.notify = false
	}
	var lost bool
	switch {
	case k.ev != nil:
		var err error
		lost, err = k.ev.drain(func(ev rtEvent) { k.note(ev, w.vipList, w.heldLinks) })
		if err != nil {
			w.log.Debug("watch: link and address notifications; subscribing again", "err", err)
			k.ev.close()
			k.ev, k.reopen, lost = nil, true, true
		}
	case k.reopen:
		// What happened while no socket listened is not known.
		if ev, err := openRTEvents(w.poke); err == nil {
			k.ev, k.reopen, lost = ev, false, true
		}
	}
	if lost {
		k.lost, k.heldStale = true, true
		for _, e := range k.ifaces {
			e.dirty, e.notify = true, true
		}
	}
}

// note applies one notification.
func (k *kernFacts) note(ev rtEvent, vips []netip.Addr, heldLinks []int) {
	for _, e := range k.ifaces {
		if ev.index == e.index && ev.added && slices.Contains(e.ifc.Addrs, ev.prefix()) {
			// An address known refreshed (SLAAC addresses, every router
			// advertisement on some networks): the list read is as it
			// was.
			continue
		}
		if ev.index == e.index || ev.link && (ev.name == e.ifc.Name || !e.ifc.Exists) {
			e.dirty, e.notify = true, true
		}
	}
	if ev.link {
		// A link holding a virtual address renamed or gone: the held
		// addresses carry the links' names.
		if ev.index != 0 && slices.Contains(heldLinks, ev.index) {
			k.heldStale = true
		}
		return
	}
	for _, a := range ev.addrs {
		if a.IsValid() && slices.Contains(vips, a) {
			k.vipEvents++
			return
		}
	}
}

// interfaceFacts sets the report's interfaces from the cache, reading again
// those that may have changed.
func (w *Watcher) interfaceFacts(r *check.Report, now time.Time) {
	k := &w.kern
	if k.ifaces == nil {
		k.ifaces = map[string]*ifaceEntry{}
	}
	w.kernelNews()
	relinked := false
	for _, name := range w.ifaces {
		e := k.ifaces[name]
		if e == nil || k.ev == nil || e.dirty || len(e.ifc.Problems) > 0 || now.Sub(e.at) >= unchangedEvery {
			read := k.readLink
			if read == nil {
				read = check.InterfaceLink
			}
			ifc, index := read(name)
			ne := &ifaceEntry{ifc: ifc, index: index, at: now, notify: e != nil && e.notify}
			if e != nil {
				ne.own4, ne.own6, ne.joined4, ne.joined6, ne.memberProblem = e.own4, e.own6, e.joined4, e.joined6, e.memberProblem
			}
			e = ne
			k.ifaces[name] = e
			relinked = true
		}
	}
	own := w.ownMemberships()
	due := k.ev == nil || !k.membersRead || !k.membersHealthy || relinked || k.lost || now.Sub(k.membersAt) >= membersEvery
	for _, name := range w.ifaces {
		e := k.ifaces[name]
		due = due || e.notify || own[name] != [2]int{e.own4, e.own6}
	}
	if due {
		w.readMembers(now)
	}
	for _, name := range w.ifaces {
		e := k.ifaces[name]
		ifc := e.ifc
		ifc.Addrs = slices.Clone(e.ifc.Addrs)
		ifc.Problems = slices.Clone(e.ifc.Problems)
		if ifc.Exists {
			if e.memberProblem != "" {
				ifc.Problems = append(ifc.Problems, e.memberProblem)
			} else {
				ifc.JoinedVRRP4, ifc.JoinedVRRP6 = e.joined4, e.joined6
			}
		}
		r.Interfaces = append(r.Interfaces, ifc)
	}
}

// ownMemberships are the group memberships the watch's own socket taps
// hold, per interface.
func (w *Watcher) ownMemberships() map[string][2]int {
	own := make(map[string][2]int, len(w.ifaces))
	w.mu.Lock()
	for name, t := range w.taps {
		own[name] = [2]int{t.own4, t.own6}
	}
	w.mu.Unlock()
	return own
}

// readMembers reads the group memberships and applies them to every
// interface entry.
func (w *Watcher) readMembers(now time.Time) {
	k := &w.kern
	igmp, err4 := k.files.read(w.procDir, igmpFile)
	igmp6, err6 := k.files.read(w.procDir, igmp6File)
	k.members, k.membersAt, k.membersRead, k.membersNow = check.MembershipsOf(igmp, err4, igmp6, err6), now, true, true
	own := w.ownMemberships()
	for name, e := range k.ifaces {
		var ifc check.Interface
		k.members.Apply(&ifc, e.index, own[name][0], own[name][1])
		e.own4, e.own6 = own[name][0], own[name][1]
		e.joined4, e.joined6, e.memberProblem = ifc.JoinedVRRP4, ifc.JoinedVRRP6, ""
		if len(ifc.Problems) > 0 {
			e.memberProblem = ifc.Problems[0]
		}
	}
	k.membersHealthy = w.membersHealthy()
}

// membersHealthy says whether, at the last reading, every multicast
// instance on an existing interface had its group joined.
func (w *Watcher) membersHealthy() bool {
	for i := range w.base {
		in := &w.base[i]
		e := w.kern.ifaces[in.Interface]
		if in.Unicast || e == nil || !e.ifc.Exists {
			continue
		}
		j := e.joined4
		if in.Family == 6 {
			j = e.joined6
		}
		if e.memberProblem != "" || j == nil || !*j {
			return false
		}
	}
	return true
}

// recheckMembers reads the group memberships again in a window in which a
// peer's adverts reached the wire and not the socket (unless they were read
// in this window) and sets them on the report's interfaces.
func (w *Watcher) recheckMembers(r *check.Report, now time.Time) {
	if w.kern.membersNow {
		return
	}
	w.readMembers(now)
	for i := range r.Interfaces {
		ifc := &r.Interfaces[i]
		e := w.kern.ifaces[ifc.Name]
		if e == nil || !ifc.Exists {
			continue
		}
		ifc.JoinedVRRP4, ifc.JoinedVRRP6 = nil, nil
		ifc.Problems = slices.Clone(e.ifc.Problems)
		if e.memberProblem != "" {
			ifc.Problems = append(ifc.Problems, e.memberProblem)
		} else {
			ifc.JoinedVRRP4, ifc.JoinedVRRP6 = e.joined4, e.joined6
		}
	}
}

// vipLinks reads, for each of vips, the index of the interface holding it
// (0: none), from one dump of the addresses of the caller's network
// namespace: what the addresses held rest on, without check.HeldAddrs'
// dump of every link (their names).
func vipLinks(vips []netip.Addr) ([]int, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	links := make([]int, len(vips))
	for i, v := range vips {
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == v {
				links[i] = a.LinkIndex
				break
			}
		}
	}
	return links, nil
}
