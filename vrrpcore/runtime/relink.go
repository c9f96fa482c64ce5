package runtime

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/nlsub"
)

// Interfaces deleted and created again. A VRRP socket is tied to its
// interface's index: SO_BINDTODEVICE, its multicast memberships and the
// outgoing interface of every advert. When the interface is deleted and
// one of the same name is created, the old index names nothing: adverts
// fail with ENODEV and none arrive. The relinker follows link events (and
// sends failing with ENODEV or ENXIO) and moves each socket to the new
// index: bound to the device again, its multicast interface set, its
// groups left on the old index and joined on the new one. While a
// socket's interface is missing, the instances on it are in FAULT
// (instance.tracking), so that none becomes Master on an interface that
// is not there; they are woken when it is back.

// relinkRetry is how soon a failed move is tried again.
const relinkRetry = time.Second

// relinker keeps the daemon's VRRP sockets on their interfaces.
type relinker struct {
	d     *Daemon
	log   *slog.Logger
	done  chan struct{}
	check chan struct{} // a send failed with ENODEV or ENXIO
}

func startRelinker(d *Daemon) (*relinker, error) {
	r := &relinker{d: d, log: d.log, done: make(chan struct{}), check: make(chan struct{}, 1)}
	ch, err := r.subscribe()
	if err != nil {
		return nil, fmt.Errorf("interface monitor: %w", err)
	}
	go r.run(ch)
	return r, nil
}

func (r *relinker) subscribe() (chan netlink.LinkUpdate, error) {
	ch := make(chan netlink.LinkUpdate, 64)
	err := r.d.enter(func() error {
		return nlsub.Links(ch, r.done, subscriptionErrors(r.done, r.log, "interface monitor"))
	})
	return ch, err
}

func (r *relinker) close() { close(r.done) }

func (r *relinker) run(ch chan netlink.LinkUpdate) {
	var retry <-chan time.Time // armed while something failed
	for {
		var failed bool
		select {
		case <-r.done:
			drain(ch)
			return
		case u, ok := <-ch:
			if !ok {
				if ch = resubscribe(r.done, r.log, "interface monitor", r.subscribe); ch == nil {
					return
				}
				failed = r.sweep("")
				break
			}
			failed = r.sweep(u.Attrs().Name)
		case <-r.check:
			failed = r.sweep("")
		case <-retry:
			retry = nil
			failed = r.sweep("")
		}
		if failed && retry == nil {
			retry = time.After(relinkRetry)
		}
	}
}

// sweep checks the sockets on interface name (every socket if name is
// ""), moves those whose interface has a new index, and drops the
// announcement senders of interfaces that changed. It reports whether
// something failed and must be tried again.
func (r *relinker) sweep(name string) (failed bool) {
	d := r.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return false
	}
	created, failed := r.remakeVMACs(name)
	if created {
		name = "" // their sockets are on the new macvlans
	}
	for _, s := range d.sockets {
		if name != "" && s.key.ifname != name {
			continue
		}
		changed, err := r.relink(s)
		if err != nil {
			failed = true
		}
		if changed {
			for _, in := range d.instances {
				if in.sock == s {
					in.srcCheck.Store(true) // a new interface may have new addresses (source.go)
					select {
					case in.kick <- struct{}{}:
					default:
					}
				}
			}
		}
	}
	d.dropStaleSenders(name)
	return failed
}

// relink brings s to its interface's current index. It reports whether
// the socket went missing or came back (its instances must look again).
func (r *relinker) relink(s *vrrpSocket) (changed bool, err error) {
	name := s.key.ifname
	ifi, err := r.d.host.netInterface(name)
	var missing netlink.LinkNotFoundError
	switch {
	case errors.As(err, &missing):
		if s.gone.Swap(true) {
			return false, nil
		}
		r.log.Warn("interface deleted: its VRRP instances are in FAULT until it is back", "interface", name, "family", s.key.family)
		return true, nil
	case err != nil:
		r.log.Error("interface monitor", "interface", name, "err", err)
		return false, err
	}
	old := s.ifi.Load()
	if ifi.Index == old.Index {
		return s.gone.Swap(false), nil
	}
	if err := s.rebind(ifi); err != nil {
		r.d.limiter.do("relink "+name+" "+err.Error(), func() {
			r.log.Error("interface created again, but the VRRP socket cannot move to it; trying again", "interface", name, "family", s.key.family, "err", err)
		})
		return !s.gone.Swap(true), err
	}
	r.log.Info("interface created again: VRRP socket moved to it", "interface", name, "family", s.key.family,
		"old_index", old.Index, "index", ifi.Index)
	s.gone.Store(false)
	return true, nil
}

// remakeVMACs creates again the use_vmac macvlans that are gone while
// their base interface is there: deleting an interface deletes the
// macvlans on it, so they go when it goes, and come back when it is
// created again (or deleted by hand, at once). The ARP sysctls
// use_vmac needs are set again on the new interfaces (restored on exit
// as before). Only the macvlans of interface name (base or macvlan) are
// looked at, all if name is "". It reports whether it created any, and
// whether one failed. The daemon's lock is held.
func (r *relinker) remakeVMACs(name string) (created, failed bool) {
	d := r.d
	for _, in := range d.instances {
		p := in.currentPlan()
		v := p.vmac
		if v == nil || name != "" && name != v.base && name != v.name {
			continue
		}
		base, err := d.host.link(v.base)
		if err != nil {
			continue // not back (yet)
		}
		if l, err := d.host.link(v.name); err == nil {
			if mv, ok := l.(*netlink.Macvlan); ok && mv.ParentIndex == base.Attrs().Index {
				continue
			}
		}
		err = d.host.addVMAC(v, p.rc.PrimaryAddr)
		if err == nil && v.family == 4 {
			err = errors.Join(d.sysctls.set(v.base, "arp_ignore", "1"), d.sysctls.set(v.base, "arp_announce", "2"),
				d.sysctls.set(v.name, "arp_ignore", "1"))
		}
		if err != nil {
			failed = true
			d.limiter.do("vmac "+v.name+" "+err.Error(), func() {
				r.log.Error("use_vmac: macvlan gone and not created again; trying again", "instance", p.name, "interface", v.name, "err", err)
			})
			continue
		}
		r.log.Info("use_vmac: macvlan gone (with its base interface, or deleted): created again", "instance", p.name, "interface", v.name, "base", v.base)
		created = true
	}
	return created, failed
}

// missing reports whether the socket's interface is deleted (s may be
// nil: an instance without a socket, in tests).
func (s *vrrpSocket) missing() bool { return s != nil && s.gone.Load() }

// rebind moves s to ifi, the interface of its name under a new index:
// bound to the device, multicast sent out of it, every group left on the
// old index (the kernel keeps the membership record until then) and
// joined on the new one. The socket keeps its old index until everything
// worked, so a failed move is simply tried again.
func (s *vrrpSocket) rebind(ifi *net.Interface) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.ifi.Load()
	rc, err := s.conn.(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifi.Name)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("SO_BINDTODEVICE %s: %w", ifi.Name, serr)
	}
	if s.p4 != nil {
		err = s.p4.SetMulticastInterface(ifi)
	} else {
		err = s.p6.SetMulticastInterface(ifi)
	}
	if err != nil {
		return fmt.Errorf("multicast interface %s: %w", ifi.Name, err)
	}
	for g := range s.groups {
		group := &net.IPAddr{IP: g.AsSlice()}
		if s.p4 != nil {
			s.p4.LeaveGroup(old, group) // the old index's record; may be gone already
			err = s.p4.JoinGroup(ifi, group)
		} else {
			s.p6.LeaveGroup(old, group)
			err = s.p6.JoinGroup(ifi, group)
		}
		if err != nil && !errors.Is(err, unix.EADDRINUSE) { // joined by an earlier try
			return fmt.Errorf("joining %v on %s: %w", g, ifi.Name, err)
		}
	}
	s.ifi.Store(ifi)
	return nil
}

// dropStaleSenders closes the announcement senders of interface name
// (of every interface if name is "") that is gone or has a new index; the
// next announcement opens one on the interface as it is now.
func (d *Daemon) dropStaleSenders(name string) {
	d.sendersMu.Lock()
	defer d.sendersMu.Unlock()
	for dev, s := range d.senders {
		if name != "" && dev != name {
			continue
		}
		if l, err := d.host.link(dev); err == nil && l.Attrs().Index == s.Interface().Index {
			continue
		}
		s.Close()
		delete(d.senders, dev)
	}
}
