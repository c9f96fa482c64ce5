package runtime

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/keepalived"
)

// vip is one virtual address as keepalived.conf describes it, resolved to
// what netlink needs.
type vip struct {
	keepalived.VIP
	dev string // the interface it goes on: VIP.Dev, else the instance's
}

// equal reports whether two VIPs would be configured identically.
func (v vip) equal(o vip) bool {
	return v.dev == o.dev && v.Prefix == o.Prefix && v.Broadcast == o.Broadcast &&
		v.Scope == o.Scope && v.Label == o.Label && v.Peer == o.Peer &&
		slices.Equal(v.Flags, o.Flags)
}

// netlinkAddr builds the netlink address for v, with keepalived's
// conventions: the prefix as written (/32 or /128 if none), label, scope,
// broadcast only if written, peer, and IPv6 addresses added without
// duplicate address detection unless "-nodad" is given.
func (v vip) netlinkAddr() (*netlink.Addr, error) {
	a := &netlink.Addr{IPNet: prefixNet(v.Prefix), Label: v.Label}
	if v.Prefix.Addr().Is4() {
		// An explicit 0.0.0.0 stops the netlink package from adding a
		// broadcast address keepalived would not add.
		a.Broadcast = net.IPv4zero
		if v.Broadcast.IsValid() {
			a.Broadcast = v.Broadcast.AsSlice()
		}
	}
	if v.Peer.IsValid() {
		a.Peer = prefixNet(netip.PrefixFrom(v.Peer, v.Prefix.Bits()))
	}
	switch v.Scope {
	case "", "global":
		a.Scope = unix.RT_SCOPE_UNIVERSE
	case "site":
		a.Scope = unix.RT_SCOPE_SITE
	case "link":
		a.Scope = unix.RT_SCOPE_LINK
	case "host":
		a.Scope = unix.RT_SCOPE_HOST
	case "nowhere":
		a.Scope = unix.RT_SCOPE_NOWHERE
	default:
		return nil, fmt.Errorf("virtual address %v: unknown scope %q", v.Prefix, v.Scope)
	}
	nodad := v.Prefix.Addr().Is6()
	for _, f := range v.Flags {
		switch {
		case f == "-nodad":
			nodad = false
		case f == "home":
			a.Flags |= unix.IFA_F_HOMEADDRESS
		case f == "mngtmpaddr":
			a.Flags |= unix.IFA_F_MANAGETEMPADDR
		case f == "noprefixroute":
			a.Flags |= unix.IFA_F_NOPREFIXROUTE
		case f == "autojoin":
			a.Flags |= unix.IFA_F_MCAUTOJOIN
		case strings.HasPrefix(f, "preferred_lft"):
			// "preferred_lft 0" marks the address deprecated so that it
			// is never chosen as a source; anything else is forever.
			if strings.TrimSpace(strings.TrimPrefix(f, "preferred_lft")) == "0" {
				a.ValidLft, a.PreferedLft = math.MaxInt32, 0 // ~68 years: forever, and fits int on 32-bit targets
			}
		}
	}
	if nodad {
		a.Flags |= unix.IFA_F_NODAD
	}
	return a, nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}
}

// netHost is the daemon's view of the host's interfaces and addresses,
// through a netlink handle opened in the daemon's network namespace.
type netHost struct {
	h *netlink.Handle
}

// netlinkCall runs fn, a request on the netlink handle, on a goroutine of
// its own and returns its results. vishvananda/netlink keeps its 64 KiB
// receive buffer on the stack (NetlinkSocket.Receive): made on an
// instance's goroutine, each address added, removed or looked up would
// leave that goroutine with a 128 KiB stack until the collector shrinks
// it again, half at a time (12 MB with 100 instances after start-up,
// measured). A goroutine that ends gives its stack back at once.
func netlinkCall[T any](fn func() (T, error)) (T, error) {
	var (
		v    T
		err  error
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		v, err = fn()
	}()
	<-done
	return v, err
}

// netlinkDo is netlinkCall for a request with no result.
func netlinkDo(fn func() error) error {
	_, err := netlinkCall(func() (struct{}, error) { return struct{}{}, fn() })
	return err
}

// link returns the named interface.
func (n netHost) link(name string) (netlink.Link, error) {
	l, err := netlinkCall(func() (netlink.Link, error) { return n.h.LinkByName(name) })
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", name, err)
	}
	return l, nil
}

// netInterface returns the named interface as package net describes it.
func (n netHost) netInterface(name string) (*net.Interface, error) {
	l, err := n.link(name)
	if err != nil {
		return nil, err
	}
	a := l.Attrs()
	return &net.Interface{Index: a.Index, MTU: a.MTU, Name: a.Name, HardwareAddr: a.HardwareAddr, Flags: a.Flags}, nil
}

// primaryAddr returns the address adverts are sent from: the interface's
// primary IPv4 address (its first address that is not secondary), or its
// IPv6 link-local address, skipping the addresses isVIP says are virtual
// (a Master's, or one left over by a crashed run: not the interface's own).
func (n netHost) primaryAddr(ifname string, family int, isVIP func(netip.Addr) bool) (netip.Addr, error) {
	l, err := n.link(ifname)
	if err != nil {
		return netip.Addr{}, err
	}
	nf := netlink.FAMILY_V4
	if family == 6 {
		nf = netlink.FAMILY_V6
	}
	addrs, err := netlinkCall(func() ([]netlink.Addr, error) { return n.h.AddrList(l, nf) })
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return netip.Addr{}, fmt.Errorf("addresses of %s: %w", ifname, err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if isVIP(ip) {
			continue
		}
		if family == 4 && ip.Is4() && a.Flags&unix.IFA_F_SECONDARY == 0 {
			return ip, nil
		}
		if family == 6 && ip.Is6() && ip.IsLinkLocalUnicast() {
			return ip, nil
		}
	}
	if family == 4 {
		return netip.Addr{}, fmt.Errorf("interface %s has no IPv4 address to send adverts from (or set unicast_src_ip)", ifname)
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no IPv6 link-local address to send adverts from", ifname)
}

// hasAddr reports whether ifname holds ip.
func (n netHost) hasAddr(ifname string, ip netip.Addr) (bool, error) {
	held, err := n.addrsOf(ifname, ip.Is6())
	return held[ip], err
}

// addrsOf returns the addresses ifname holds in one family (IPv6 if v6).
func (n netHost) addrsOf(ifname string, v6 bool) (map[netip.Addr]bool, error) {
	l, err := n.link(ifname)
	if err != nil {
		return nil, err
	}
	nf := netlink.FAMILY_V4
	if v6 {
		nf = netlink.FAMILY_V6
	}
	addrs, err := netlinkCall(func() ([]netlink.Addr, error) { return n.h.AddrList(l, nf) })
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, err
	}
	held := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		if got, ok := netip.AddrFromSlice(a.IP); ok {
			held[got.Unmap()] = true
		}
	}
	return held, nil
}

// heldAtStart answers, for instances that start together, which addresses
// their interfaces held before they started: the addresses a previous run
// may have left behind (clearStale). Each interface and family is dumped
// once, when first asked; a dump per instance made starting n instances
// cost O(n²) (6 MB of garbage for 100 instances on one interface).
type heldAtStart struct {
	host  netHost
	mu    sync.Mutex
	dumps map[heldKey]heldDump
}

type heldKey struct {
	dev string
	v6  bool
}

type heldDump struct {
	addrs map[netip.Addr]bool
	err   error
}

func newHeldAtStart(host netHost) *heldAtStart {
	return &heldAtStart{host: host, dumps: map[heldKey]heldDump{}}
}

// has reports whether dev held ip when it was first asked about.
func (h *heldAtStart) has(dev string, ip netip.Addr) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := heldKey{dev, ip.Is6()}
	d, ok := h.dumps[k]
	if !ok {
		d.addrs, d.err = h.host.addrsOf(dev, k.v6)
		h.dumps[k] = d
	}
	return d.addrs[ip], d.err
}

// addVIP adds v; an address already there is not an error.
func (n netHost) addVIP(v vip) error {
	l, err := n.link(v.dev)
	if err != nil {
		return err
	}
	a, err := v.netlinkAddr()
	if err != nil {
		return err
	}
	if err := netlinkDo(func() error { return n.h.AddrAdd(l, a) }); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("adding %v to %s: %w", v.Prefix, v.dev, err)
	}
	return nil
}

// delVIP removes v; an address already gone, or whose interface is gone,
// is not an error.
func (n netHost) delVIP(v vip) error {
	l, err := n.link(v.dev)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		return nil // deleted with its interface
	}
	if err != nil {
		return err
	}
	a, err := v.netlinkAddr()
	if err != nil {
		return err
	}
	if err := netlinkDo(func() error { return n.h.AddrDel(l, a) }); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("removing %v from %s: %w", v.Prefix, v.dev, err)
	}
	return nil
}
