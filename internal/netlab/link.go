package netlab

import (
	"fmt"
	"regexp"
	"sync"
)

// ifnameRE restricts interface names the lab creates (IFNAMSIZ is 16 with NUL).
var ifnameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_.-]{0,14}$`) })

func checkIfname(name string) error {
	if !ifnameRE().MatchString(name) {
		return fmt.Errorf("netlab: interface name %q must match %s", name, ifnameRE())
	}
	return nil
}

// Link connects host a and host b with a veth pair: interface aIf in a and
// bIf in b, both up. The pair is created directly inside the two namespaces;
// it never appears in the root namespace.
func (l *Lab) Link(a *Host, aIf string, b *Host, bIf string) error {
	if err := checkIfname(aIf); err != nil {
		return err
	}
	if err := checkIfname(bIf); err != nil {
		return err
	}
	if a == b {
		return fmt.Errorf("netlab: link from %s to itself", a.name)
	}
	if _, err := l.run(nil, "ip", "-n", a.ns, "link", "add", aIf, "type", "veth", "peer", "name", bIf, "netns", b.ns); err != nil {
		return err
	}
	if err := a.LinkUp(aIf); err != nil {
		return err
	}
	return b.LinkUp(bIf)
}

// Switch is an Ethernet segment for more than two hosts: a Linux bridge "br0"
// in a namespace of its own, with IGMP/MLD snooping off so every VRRP advert
// is flooded, and IPv6 off so the switch itself sends nothing.
type Switch struct {
	lab  *Lab
	name string
	ns   string
}

// AddSwitch creates a switch. Its name shares the host name space.
func (l *Lab) AddSwitch(name string) (*Switch, error) {
	ns, err := l.reserve(name)
	if err != nil {
		return nil, err
	}
	s := &Switch{lab: l, name: name, ns: ns}
	if _, err := l.run(nil, "ip", "netns", "add", ns); err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.switches = append(l.switches, s)
	l.mu.Unlock()
	in := &Host{lab: l, name: name, ns: ns}
	if err := in.Sysctl("net.ipv6.conf.all.disable_ipv6", "1"); err != nil {
		return nil, err
	}
	if err := in.Sysctl("net.ipv6.conf.default.disable_ipv6", "1"); err != nil {
		return nil, err
	}
	if _, err := l.run(nil, "ip", "-n", ns, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"); err != nil {
		return nil, err
	}
	if _, err := l.run(nil, "ip", "-n", ns, "link", "set", "br0", "up"); err != nil {
		return nil, err
	}
	return s, nil
}

// Name is the switch's logical name.
func (s *Switch) Name() string { return s.name }

// Netns is the name of the switch's network namespace.
func (s *Switch) Netns() string { return s.ns }

// Attach connects host h to the switch through a veth pair: ifname in h (up)
// and port "p-<host>" on the bridge.
func (s *Switch) Attach(h *Host, ifname string) error {
	if err := checkIfname(ifname); err != nil {
		return err
	}
	port := "p-" + h.name
	l := s.lab
	if _, err := l.run(nil, "ip", "-n", s.ns, "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", h.ns); err != nil {
		return err
	}
	if _, err := l.run(nil, "ip", "-n", s.ns, "link", "set", port, "master", "br0", "up"); err != nil {
		return err
	}
	return h.LinkUp(ifname)
}

// LANAddr4 returns the standard IPv4 address in CIDR notation of the i-th
// host (from 1) that Pair and LAN build: 198.51.100.i/24.
func LANAddr4(i int) string { return fmt.Sprintf("198.51.100.%d/24", i) }

// LANAddr6 returns the standard IPv6 address in CIDR notation of the i-th
// host (from 1): 2001:db8::i/64 (i in hex).
func LANAddr6(i int) string { return fmt.Sprintf("2001:db8::%x/64", i) }

// Pair builds the usual two-node LAN: hosts "a" and "b" joined by a veth pair
// named eth0 on both sides, with 198.51.100.1/24 and 2001:db8::1/64 on a and
// .2/::2 on b.
func (l *Lab) Pair() (a, b *Host, err error) {
	if a, err = l.AddHost("a"); err != nil {
		return nil, nil, err
	}
	if b, err = l.AddHost("b"); err != nil {
		return nil, nil, err
	}
	if err = l.Link(a, "eth0", b, "eth0"); err != nil {
		return nil, nil, err
	}
	for i, h := range []*Host{a, b} {
		if err = h.AddAddr("eth0", LANAddr4(i+1)); err != nil {
			return nil, nil, err
		}
		if err = h.AddAddr("eth0", LANAddr6(i+1)); err != nil {
			return nil, nil, err
		}
	}
	return a, b, nil
}

// LAN builds n hosts named "h1".."hn" on one switch "sw", each with eth0 and
// the standard addresses LANAddr4(i) and LANAddr6(i).
func (l *Lab) LAN(n int) ([]*Host, *Switch, error) {
	if n < 1 || n > 250 {
		return nil, nil, fmt.Errorf("netlab: LAN of %d hosts: want 1..250", n)
	}
	sw, err := l.AddSwitch("sw")
	if err != nil {
		return nil, nil, err
	}
	hosts := make([]*Host, n)
	for i := range hosts {
		h, err := l.AddHost(fmt.Sprintf("h%d", i+1))
		if err != nil {
			return nil, nil, err
		}
		if err := sw.Attach(h, "eth0"); err != nil {
			return nil, nil, err
		}
		if err := h.AddAddr("eth0", LANAddr4(i+1)); err != nil {
			return nil, nil, err
		}
		if err := h.AddAddr("eth0", LANAddr6(i+1)); err != nil {
			return nil, nil, err
		}
		hosts[i] = h
	}
	return hosts, sw, nil
}
