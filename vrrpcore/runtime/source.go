package runtime

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
)

// The source address of the adverts. Without unicast_src_ip an instance
// sends from its interface's primary IPv4 address or IPv6 link-local
// address, read when the configuration is planned. That address can change
// under a running instance: an interface created again may come back with
// another IPv4 address, or (a new MAC address) another link-local one; an
// address can be deleted by hand. Sending from an address the interface no
// longer holds fails, and an instance that cannot advertise must not
// become Master. So the address monitor (addrwatch.go) and the relinker
// ask the instances on an interface whose addresses changed to look again
// (instance.srcCheck): an instance takes the new address
// (router.Machine.SetPrimaryAddr), and is in FAULT while its interface
// has none (instance.tracking).

// checkSource looks at the instance's source address when asked to. Only
// the loop may call it, before tracking.
func (in *instance) checkSource(now time.Time) router.Ready {
	if !in.srcCheck.Swap(false) {
		return router.Ready{}
	}
	p := in.currentPlan()
	if p.fixedSrc {
		return router.Ready{}
	}
	a, err := in.d.host.sourceAddr(p)
	var gone netlink.LinkNotFoundError
	switch {
	case errors.As(err, &gone):
		return router.Ready{} // the interface is deleted: the relinker's FAULT
	case err != nil:
		if !in.srcMissing {
			in.srcMissing = true
			in.log.Warn("no address to send adverts from: FAULT until the interface has one", "err", err)
		}
		return router.Ready{}
	}
	if in.srcMissing {
		in.srcMissing = false
		in.log.Info("the interface has an address to send adverts from again", "address", a)
	}
	cur := in.m.Config().PrimaryAddr
	if a == cur {
		return router.Ready{}
	}
	r, err := in.m.SetPrimaryAddr(now, a)
	if err != nil {
		in.log.Error("source address not changed", "address", a, "err", err)
		return router.Ready{}
	}
	np := *p
	np.rc.PrimaryAddr = a
	in.setPlan(&np)
	in.log.Info("source address changed: adverts go from the new one", "old", cur, "address", a)
	r.Notices = nil // logged above
	return r
}

// sourceAddr returns the address p's adverts go from now: the primary IPv4
// address of its interface, or its IPv6 link-local address, as at
// planning (netHost.primaryAddr), but never one of p's virtual addresses
// (an address a Master added is not the interface's own) nor an IPv6
// address still in (or failed) duplicate address detection, which the
// kernel does not send from.
func (n netHost) sourceAddr(p *plan) (netip.Addr, error) {
	l, err := n.link(p.ifname)
	if err != nil {
		return netip.Addr{}, err
	}
	nf := netlink.FAMILY_V4
	if p.family == 6 {
		nf = netlink.FAMILY_V6
	}
	addrs, err := netlinkCall(func() ([]netlink.Addr, error) { return n.h.AddrList(l, nf) })
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return netip.Addr{}, fmt.Errorf("addresses of %s: %w", p.ifname, err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if _, isVIP := p.vips[ip]; isVIP {
			continue
		}
		if p.family == 4 && ip.Is4() && a.Flags&unix.IFA_F_SECONDARY == 0 {
			return ip, nil
		}
		if p.family == 6 && ip.Is6() && ip.IsLinkLocalUnicast() && a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) == 0 {
			return ip, nil
		}
	}
	if p.family == 4 {
		return netip.Addr{}, fmt.Errorf("interface %s has no IPv4 address", p.ifname)
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no usable IPv6 link-local address", p.ifname)
}

// withSource returns p, or for a running instance's new plan a copy with
// the source address sourceAddr finds: planning takes the interface's
// first address of the kind, which on a Master may be one of its own
// virtual addresses (an IPv6 link-local one, typically).
func (d *Daemon) withSource(p *plan) *plan {
	if p.fixedSrc {
		return p
	}
	a, err := d.host.sourceAddr(p)
	if err != nil || a == p.rc.PrimaryAddr {
		return p
	}
	q := *p
	q.rc.PrimaryAddr = a
	return &q
}

// flagSource asks the instances on the interface of index ifindex to look
// at their source address: an address ip (not a virtual address) was
// added to it or removed from it.
func (w *addrWatcher) flagSource(ifindex int, ip netip.Addr) {
	d := w.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return
	}
	for _, in := range d.instances {
		if _, isVIP := in.currentPlan().vips[ip]; isVIP {
			return // a Master's own address coming or going
		}
	}
	l, err := d.handle.LinkByIndex(ifindex)
	if err != nil {
		return // deleted: the relinker's business
	}
	name := l.Attrs().Name
	for _, in := range d.instances {
		p := in.currentPlan()
		if p.ifname != name || p.fixedSrc || (p.family == 4) != ip.Is4() {
			continue
		}
		in.srcCheck.Store(true)
		select {
		case in.kick <- struct{}{}:
		default:
		}
	}
}
