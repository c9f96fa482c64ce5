package runtime

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// vmacPlan is keepalived's use_vmac: a macvlan interface on the instance's
// interface carrying the VRRP virtual MAC (RFC 5798 §7.3:
// 00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID} for IPv6), on
// which the virtual addresses are configured and, unless vmac_xmit_base,
// adverts are sent and received. Hosts then reach the Master at the same
// MAC address whichever router it is.
type vmacPlan struct {
	name     string // vrrp.{VRID}, or as configured
	base     string
	mac      net.HardwareAddr
	family   int
	xmitBase bool // vmac_xmit_base: adverts stay on the base interface
}

// vmacName is keepalived's default name of the macvlan, whatever the
// family (checked against keepalived 2.2.7).
func vmacName(vrid uint8) string {
	return fmt.Sprintf("vrrp.%d", vrid)
}

// virtualMAC is the virtual router MAC address of RFC 5798 §7.3.
func virtualMAC(family int, vrid uint8) net.HardwareAddr {
	kind := byte(1)
	if family == 6 {
		kind = 2
	}
	return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, kind, vrid}
}

func (v *vmacPlan) equal(o *vmacPlan) bool {
	if v == nil || o == nil {
		return v == o
	}
	return v.name == o.name && v.base == o.base && v.family == o.family && v.xmitBase == o.xmitBase &&
		v.mac.String() == o.mac.String()
}

// addVMAC creates the macvlan of v (private mode, as keepalived's) and
// brings it up. One a previous run left behind is replaced; an interface
// of that name that is not a macvlan on v.base is an error. For IPv6 the
// kernel gives it no address of its own (the virtual MAC's EUI-64
// link-local would be the same on every router): it gets the base
// interface's link-local address, the source of the adverts.
func (n netHost) addVMAC(v *vmacPlan, linkLocal netip.Addr) error {
	base, err := n.link(v.base)
	if err != nil {
		return err
	}
	if old, err := n.h.LinkByName(v.name); err == nil {
		mv, ok := old.(*netlink.Macvlan)
		if !ok || mv.ParentIndex != base.Attrs().Index {
			return fmt.Errorf("use_vmac: interface %s exists and is not a macvlan on %s", v.name, v.base)
		}
		if err := n.h.LinkDel(old); err != nil {
			return fmt.Errorf("use_vmac: removing %s left over by a previous run: %w", v.name, err)
		}
	}
	l := &netlink.Macvlan{
		LinkAttrs: netlink.LinkAttrs{Name: v.name, ParentIndex: base.Attrs().Index, HardwareAddr: v.mac},
		Mode:      netlink.MACVLAN_MODE_PRIVATE,
	}
	if err := n.h.LinkAdd(l); err != nil {
		return fmt.Errorf("use_vmac: creating macvlan %s on %s: %w", v.name, v.base, err)
	}
	fail := func(err error) error {
		n.h.LinkDel(l)
		return fmt.Errorf("use_vmac %s: %w", v.name, err)
	}
	if v.family == 6 {
		if err := n.h.LinkSetIP6AddrGenMode(l, 1); err != nil { // IN6_ADDR_GEN_MODE_NONE
			return fail(fmt.Errorf("no automatic IPv6 address: %w", err))
		}
	}
	if err := n.h.LinkSetUp(l); err != nil {
		return fail(err)
	}
	if v.family == 6 && linkLocal.IsValid() {
		a := &netlink.Addr{IPNet: prefixNet(netip.PrefixFrom(linkLocal.WithZone(""), 64)), Flags: unix.IFA_F_NODAD}
		if err := n.h.AddrAdd(l, a); err != nil && !errors.Is(err, unix.EEXIST) {
			return fail(fmt.Errorf("adding %v: %w", linkLocal, err))
		}
	}
	return nil
}

// delVMAC removes the macvlan (and with it its addresses).
func (n netHost) delVMAC(name string) error {
	l, err := n.h.LinkByName(name)
	if err != nil {
		return nil // gone already
	}
	if _, ok := l.(*netlink.Macvlan); !ok {
		return fmt.Errorf("use_vmac: %s is not a macvlan any more; left alone", name)
	}
	return n.h.LinkDel(l)
}

// sysctls changes IPv4 sysctls of interfaces in the daemon's namespace
// and puts the old values back on exit. For use_vmac: arp_ignore 1 on the
// base interface and on the macvlan, so that only the macvlan answers ARP
// for the virtual addresses (with the virtual MAC), and only for those;
// arp_announce 2 on the base interface, so that its ARP requests never
// give a virtual address as their sender (the peer would learn the base
// interface's MAC for it). Checked in the lab: without them the peer's
// neighbour entry for a virtual address flips to the base MAC.
type sysctls struct {
	enter func(func() error) error
	saved map[string]string // path -> value before the first change
}

func (s *sysctls) set(ifname, key, value string) error {
	path := "/proc/sys/net/ipv4/conf/" + ifname + "/" + key
	return s.enter(func() error {
		old, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if s.saved == nil {
			s.saved = map[string]string{}
		}
		if _, ok := s.saved[path]; !ok {
			s.saved[path] = strings.TrimSpace(string(old))
		}
		return os.WriteFile(path, []byte(value), 0o644)
	})
}

// restore puts every changed value back.
func (s *sysctls) restore() error {
	var errs []error
	for path, v := range s.saved {
		errs = append(errs, s.enter(func() error {
			err := os.WriteFile(path, []byte(v), 0o644)
			if errors.Is(err, os.ErrNotExist) {
				return nil // the interface is gone
			}
			return err
		}))
	}
	s.saved = nil
	return errors.Join(errs...)
}
