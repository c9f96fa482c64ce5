package capture

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// A Prober sends VRRP adverts the way keepalived's send socket does
// (open_vrrp_send_socket: raw socket for protocol 112 bound to the
// interface, TTL or hop limit 255, multicast loop off), so that the host's
// OUTPUT and POSTROUTING rules treat them as they treat keepalived's. Each
// send is reported as a SendAttempt: a netfilter drop shows as sendto
// failing with EPERM, and the wire tap shows whether the advert left.
//
// The probe adverts carry a VRID chosen by the user, priority 1 and no
// virtual addresses. Routers for that VRID would see a backup of the lowest
// priority; choose a VRID nobody uses on the link.
type Prober struct {
	iface   string
	ifindex int
	family  uint8
	vrid    uint8
	src     netip.Addr // without zone
	dst     netip.Addr
	file    *os.File
	rc      syscall.RawConn
	msg     []byte
}

// ProbePriority is the priority of probe adverts: the lowest a backup can
// have.
const ProbePriority = 1

// OpenProber opens a prober for family (4 or 6) on the interface named
// iface, in the calling thread's network namespace, sending adverts for
// vrid to the VRRP group. It sends from the interface's first IPv4 address,
// or its IPv6 link-local address.
func OpenProber(iface string, family uint8, vrid uint8) (*Prober, error) {
	if vrid == 0 {
		return nil, errors.New("capture: probe VRID must be 1..255")
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("capture: probe on %q: %w", iface, err)
	}
	src, err := probeSource(ifi, family)
	if err != nil {
		return nil, err
	}
	p := &Prober{iface: iface, ifindex: ifi.Index, family: family, vrid: vrid, src: src}
	domain := unix.AF_INET
	p.dst = vrrpcore.GroupIPv4
	if family == 6 {
		domain, p.dst = unix.AF_INET6, vrrpcore.GroupIPv6
	}
	fd, err := unix.Socket(domain, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, vrrpcore.IPProtocol)
	if err != nil {
		return nil, socketError(fmt.Sprintf("open raw IPv%d socket for VRRP", family), err)
	}
	if err := setupProber(fd, ifi, p); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("capture: probe socket on %s (IPv%d): %w", iface, family, err)
	}
	p.file = os.NewFile(uintptr(fd), fmt.Sprintf("probe%d:%s", family, iface))
	if p.rc, err = p.file.SyscallConn(); err != nil {
		p.file.Close()
		return nil, err
	}
	a := vrrpcore.Advert{Version: 3, VRID: vrid, Priority: ProbePriority, Interval: time.Second}
	if p.msg, err = a.AppendBinary(nil, p.src, p.dst, vrrpcore.ChecksumPseudoHeader); err != nil {
		p.file.Close()
		return nil, err
	}
	return p, nil
}

func probeSource(ifi *net.Interface, family uint8) (netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("capture: addresses of %s: %w", ifi.Name, err)
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if family == 4 && ip.Is4() || family == 6 && ip.Is6() && ip.IsLinkLocalUnicast() {
			return ip, nil
		}
	}
	what := "IPv4 address"
	if family == 6 {
		what = "IPv6 link-local address"
	}
	return netip.Addr{}, fmt.Errorf("capture: %s has no %s to send probes from", ifi.Name, what)
}

func setupProber(fd int, ifi *net.Interface, p *Prober) error {
	// Receive nothing: a raw socket would otherwise queue every VRRP
	// packet of the host.
	drop := []unix.SockFilter{{Code: 0x06, K: 0}} // ret #0
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: 1, Filter: &drop[0]}); err != nil {
		return err
	}
	if err := unix.BindToDevice(fd, ifi.Name); err != nil {
		return err
	}
	if p.family == 4 {
		for _, o := range []struct{ opt, val int }{{unix.IP_MULTICAST_TTL, 255}, {unix.IP_TTL, 255}, {unix.IP_MULTICAST_LOOP, 0}, {unix.IP_MULTICAST_ALL, 0}, {unix.IP_TOS, 0xc0}} {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, o.opt, o.val); err != nil {
				return err
			}
		}
		if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, &unix.IPMreqn{Ifindex: int32(ifi.Index)}); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrInet4{Addr: p.src.As4()})
	}
	for _, o := range []struct{ opt, val int }{{unix.IPV6_MULTICAST_HOPS, 255}, {unix.IPV6_UNICAST_HOPS, 255}, {unix.IPV6_MULTICAST_LOOP, 0}, {unix.IPV6_MULTICAST_IF, ifi.Index}, {unix.IPV6_CHECKSUM, 6}} {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, o.opt, o.val); err != nil {
			return err
		}
	}
	return unix.Bind(fd, &unix.SockaddrInet6{Addr: p.src.As16(), ZoneId: uint32(ifi.Index)})
}

// Source is the address probe adverts are sent from.
func (p *Prober) Source() netip.Addr { return p.src }

// Send sends one probe advert and returns the attempt with the error
// sendto(2) gave (EPERM when a netfilter rule dropped it).
func (p *Prober) Send() SendAttempt {
	a := SendAttempt{Interface: p.iface, VRID: p.vrid, Src: p.src, Dst: p.dst,
		Priority: ProbePriority, Version: 3, Interval: time.Second, Checksum: vrrpcore.ChecksumPseudoHeader, TTL: 255}
	var to unix.Sockaddr
	if p.family == 4 {
		to = &unix.SockaddrInet4{Addr: p.dst.As4()}
	} else {
		to = &unix.SockaddrInet6{Addr: p.dst.As16(), ZoneId: uint32(p.ifindex)}
	}
	a.Time = time.Now()
	var serr error
	err := p.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), p.msg, 0, to)
		return serr != unix.EAGAIN
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		a.Err = err
	}
	return a
}

// Close closes the probe socket.
func (p *Prober) Close() error { return p.file.Close() }
