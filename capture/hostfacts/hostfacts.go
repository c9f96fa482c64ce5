// Package hostfacts gathers, in one place, the facts about the local host
// that explain why a VRRP advert seen on the wire never reached the VRRP
// daemon's socket without netfilter being involved, or that tell which
// firewall is in play: the interface's flags and addresses, its multicast
// group memberships, rp_filter and whether a sender is reachable back
// through the interface, whether iptables-legacy tables are loaded beside
// nftables, and the keepalived processes running with their configuration.
//
// Everything is read for the network namespace of the calling thread
// (/proc/thread-self/net, netlink sockets opened on the calling thread), so
// a caller may gather the facts of another namespace from a thread
// switched into it.
package hostfacts

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// Facts are the host facts for one interface.
type Facts struct {
	Interface Interface
	// Memberships are the multicast groups joined on the interface
	// (IPv4 and IPv6).
	Memberships []Membership
	// JoinedVRRP4 and JoinedVRRP6 say whether the interface has joined
	// 224.0.0.18 and ff02::12: without it the kernel discards the adverts
	// before any socket.
	JoinedVRRP4, JoinedVRRP6 bool
	RPFilter                 RPFilter
	// Senders holds the reverse-path check of each sender asked about.
	Senders []SenderCheck
	Tables  Tables
	// Keepalived lists every keepalived process on the host; check
	// SameNetns for those that share this network namespace.
	Keepalived []KeepalivedProcess
	// Problems lists the facts that could not be gathered, and why.
	Problems []string
}

// Interface is the state of a network interface.
type Interface struct {
	Name      string
	Index     int
	MTU       int
	MAC       string
	Up        bool // administratively up (IFF_UP)
	LowerUp   bool // carrier (IFF_LOWER_UP)
	Multicast bool // IFF_MULTICAST
	Promisc   bool
	OperState string
	Addrs     []netip.Prefix
}

// RPFilter holds the reverse path filter settings that apply to IPv4
// packets received on the interface (0 off, 1 strict, 2 loose). The kernel
// uses the higher of "all" and the interface's own value; "default" only
// seeds interfaces created later.
type RPFilter struct {
	All, Default, Interface int
	Effective               int
}

// Mode names an rp_filter value: "off", "strict" or "loose".
func Mode(v int) string {
	switch v {
	case 0:
		return "off"
	case 1:
		return "strict"
	case 2:
		return "loose"
	}
	return "unknown (" + strconv.Itoa(v) + ")"
}

// SenderCheck is the kernel's reverse-path verdict on adverts from one
// sender arriving on the interface.
type SenderCheck struct {
	Sender netip.Addr
	// RouteBack names the interface the route back to the sender uses
	// ("" when there is none).
	RouteBack string
	// ReversePathOK says whether the route back passes the interface's
	// effective rp_filter mode: strict wants the route back through this
	// interface, loose wants any route back, off wants nothing.
	ReversePathOK bool
	// Accepted is the kernel's own answer to "would a packet from Sender
	// to the VRRP group (or, before anything joined it, to the
	// interface's address) arriving on the interface pass input routing?"
	// (RTM_GETROUTE with the input interface, which runs rp_filter).
	// Reason holds the kernel's error when not.
	Accepted bool
	Reason   string
	// RPFilterDrop says the kernel refuses the packet and rp_filter is
	// why: the kernel answers EXDEV ("invalid cross-device link"), or,
	// on kernels that answer every input routing failure with EINVAL
	// (6.13 and later), rp_filter is on and the route back fails it.
	RPFilterDrop bool
}

// Tables tells which packet filter tables are loaded in the namespace.
type Tables struct {
	// Legacy4 and Legacy6 are the iptables-legacy (x_tables) tables the
	// kernel has instantiated (/proc/net/ip_tables_names,
	// ip6_tables_names). Rules there apply in addition to nftables.
	Legacy4, Legacy6 []string
	// Nft lists the nftables tables as "family name", including the ones
	// iptables-nft creates.
	Nft []string
}

// LegacyBesideNft reports whether both iptables-legacy tables and nftables
// tables are loaded: a packet must then pass both.
func (t Tables) LegacyBesideNft() bool {
	return len(t.Legacy4)+len(t.Legacy6) > 0 && len(t.Nft) > 0
}

// Options say what Gather looks at.
type Options struct {
	// Senders are addresses of VRRP peers whose reverse path to check.
	Senders []netip.Addr
	// ProcDir is where proc is mounted; default /proc.
	ProcDir string
}

// Gather collects the facts for the interface named iface. It fails only
// when the interface does not exist; other facts that cannot be read are
// listed in Facts.Problems.
func Gather(iface string, o Options) (*Facts, error) {
	if o.ProcDir == "" {
		o.ProcDir = "/proc"
	}
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("hostfacts: netlink: %w", err)
	}
	defer h.Close()
	link, err := h.LinkByName(iface)
	if err != nil {
		return nil, fmt.Errorf("hostfacts: interface %q: %w", iface, err)
	}
	f := &Facts{}
	problem := func(format string, args ...any) { f.Problems = append(f.Problems, fmt.Sprintf(format, args...)) }
	a := link.Attrs()
	f.Interface = Interface{
		Name: a.Name, Index: a.Index, MTU: a.MTU, MAC: a.HardwareAddr.String(),
		Up:        a.Flags&net.FlagUp != 0,
		LowerUp:   a.RawFlags&unix.IFF_LOWER_UP != 0,
		Multicast: a.Flags&net.FlagMulticast != 0,
		Promisc:   a.RawFlags&unix.IFF_PROMISC != 0,
		OperState: a.OperState.String(),
	}
	if addrs, err := h.AddrList(link, netlink.FAMILY_ALL); err != nil {
		problem("addresses of %s: %v", iface, err)
	} else {
		for _, ad := range addrs {
			if p, ok := prefixOf(ad.IPNet); ok {
				f.Interface.Addrs = append(f.Interface.Addrs, p)
			}
		}
	}

	procNet := filepath.Join(o.ProcDir, "thread-self", "net")
	if _, err := os.Stat(procNet); err != nil {
		procNet = filepath.Join(o.ProcDir, "net")
	}
	for _, g := range []struct {
		file  string
		parse func([]byte) ([]Membership, error)
	}{{"igmp", ParseIGMP}, {"igmp6", ParseIGMP6}} {
		b, err := os.ReadFile(filepath.Join(procNet, g.file))
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) { // igmp6 is absent without IPv6
				problem("%v", err)
			}
			continue
		}
		ms, err := g.parse(b)
		if err != nil {
			problem("%s: %v", filepath.Join(procNet, g.file), err)
			continue
		}
		for _, m := range ms {
			if m.Ifindex == a.Index {
				f.Memberships = append(f.Memberships, m)
				f.JoinedVRRP4 = f.JoinedVRRP4 || m.Group == vrrpcore.GroupIPv4
				f.JoinedVRRP6 = f.JoinedVRRP6 || m.Group == vrrpcore.GroupIPv6
			}
		}
	}

	procSys := filepath.Join(o.ProcDir, "sys", "net", "ipv4", "conf")
	for _, v := range []struct {
		dir string
		dst *int
	}{{"all", &f.RPFilter.All}, {"default", &f.RPFilter.Default}, {iface, &f.RPFilter.Interface}} {
		b, err := os.ReadFile(filepath.Join(procSys, v.dir, "rp_filter"))
		if err != nil {
			problem("rp_filter: %v", err)
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			problem("rp_filter of %s: %q", v.dir, b)
			continue
		}
		*v.dst = n
	}
	f.RPFilter.Effective = max(f.RPFilter.All, f.RPFilter.Interface)

	for _, s := range o.Senders {
		f.Senders = append(f.Senders, checkSender(h, link, f, s))
	}

	for _, t := range []struct {
		file string
		dst  *[]string
	}{{"ip_tables_names", &f.Tables.Legacy4}, {"ip6_tables_names", &f.Tables.Legacy6}} {
		b, err := os.ReadFile(filepath.Join(procNet, t.file))
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) { // absent: x_tables not in the kernel
				problem("%v", err)
			}
			continue
		}
		*t.dst = strings.Fields(string(b))
		slices.Sort(*t.dst)
	}
	if nt, err := nftTables(); err != nil {
		problem("nftables: %v", err)
	} else {
		f.Tables.Nft = nt
	}

	if ka, err := Keepalived(o.ProcDir); err != nil {
		problem("keepalived processes: %v", err)
	} else {
		f.Keepalived = ka
	}
	return f, nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones), true
}

// checkSender asks the kernel whether a packet from sender arriving on
// link passes input routing, rp_filter included.
func checkSender(h *netlink.Handle, link netlink.Link, f *Facts, sender netip.Addr) SenderCheck {
	c := SenderCheck{Sender: sender}
	sender = sender.Unmap()
	if routes, err := h.RouteGet(sender.AsSlice()); err == nil && len(routes) > 0 {
		if l, err := h.LinkByIndex(routes[0].LinkIndex); err == nil {
			c.RouteBack = l.Attrs().Name
		}
	}
	switch {
	case !sender.Is4() || f.RPFilter.Effective == 0: // rp_filter is IPv4 only
		c.ReversePathOK = true
	case f.RPFilter.Effective == 1:
		c.ReversePathOK = c.RouteBack == link.Attrs().Name
	default:
		c.ReversePathOK = c.RouteBack != ""
	}
	// Multicast input routing needs the group joined; before that ask
	// about a packet to the interface's own address, which runs the same
	// source validation.
	dst := vrrpcore.GroupIPv4
	joined := f.JoinedVRRP4
	if sender.Is6() {
		dst, joined = vrrpcore.GroupIPv6, f.JoinedVRRP6
	}
	if !joined {
		dst = netip.Addr{}
		for _, p := range f.Interface.Addrs {
			if p.Addr().Is4() == sender.Is4() && !p.Addr().IsLinkLocalUnicast() {
				dst = p.Addr()
				break
			}
		}
		if !dst.IsValid() {
			c.Reason = fmt.Sprintf("no IPv%d address on %s to check against", map[bool]int{true: 4, false: 6}[sender.Is4()], link.Attrs().Name)
			return c
		}
	}
	_, err := h.RouteGetWithOptions(dst.AsSlice(), &netlink.RouteGetOptions{IifIndex: link.Attrs().Index, SrcAddr: sender.AsSlice()})
	if err == nil {
		c.Accepted = true
		return c
	}
	c.Reason = err.Error()
	c.RPFilterDrop = errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EINVAL) && !c.ReversePathOK
	return c
}

// nftTables lists the nftables tables of the namespace.
func nftTables() ([]string, error) {
	conn, err := nftables.New()
	if err != nil {
		return nil, err
	}
	defer conn.CloseLasting()
	tables, err := conn.ListTables()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range tables {
		out = append(out, familyName(t.Family)+" "+t.Name)
	}
	slices.Sort(out)
	return out, nil
}

func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	case nftables.TableFamilyARP:
		return "arp"
	case nftables.TableFamilyNetdev:
		return "netdev"
	case nftables.TableFamilyBridge:
		return "bridge"
	}
	return fmt.Sprintf("family%d", f)
}
