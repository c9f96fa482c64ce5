package fwlab

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"runtime"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// InNS runs fn on an OS thread switched into the network namespace nsFD, so
// that the sockets fn opens belong to it; the calling goroutine's own
// namespace never changes. nsFD 0 runs fn in the current namespace.
func InNS(nsFD int, fn func() error) error {
	if nsFD == 0 {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(netns.NsHandle(nsFD)); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: it ends with this goroutine
			// rather than serve others from the wrong namespace.
			errc <- fmt.Errorf("setns back: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Receiver watches VRRP adverts on one interface of a namespace twice: on
// the wire (AF_PACKET, before netfilter, what tcpdump sees) and on a raw
// IP-protocol-112 socket joined to the group (after netfilter, what
// keepalived gets).
type Receiver struct {
	raw, pkt int
	buf      []byte
	// Wire and Socket count the adverts seen so far.
	Wire, Socket int
}

// NewReceiver opens a Receiver in the namespace nsFD on iface, joined to
// group (224.0.0.18 or ff02::12 for VRRP).
func NewReceiver(nsFD int, iface string, group netip.Addr) (*Receiver, error) {
	r := &Receiver{raw: -1, pkt: -1, buf: make([]byte, 65536)}
	err := InNS(nsFD, func() error {
		ifi, err := interfaceIndex(iface)
		if err != nil {
			return err
		}
		if r.raw, err = rawSocket(group, ifi); err != nil {
			return fmt.Errorf("raw socket: %w", err)
		}
		if r.pkt, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL))); err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		return unix.Bind(r.pkt, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi})
	})
	if err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func interfaceIndex(name string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, fmt.Errorf("interface %s: %w", name, err)
	}
	return int(ifr.Uint32()), nil
}

// Poll waits up to d for adverts and counts them; it returns at the first
// one.
func (r *Receiver) Poll(d time.Duration) error {
	fds := []unix.PollFd{{Fd: int32(r.raw), Events: unix.POLLIN}, {Fd: int32(r.pkt), Events: unix.POLLIN}}
	if _, err := unix.Poll(fds, int(d/time.Millisecond)); err != nil && err != unix.EINTR {
		return err
	}
	if fds[0].Revents&unix.POLLIN != 0 {
		if _, _, err := unix.Recvfrom(r.raw, r.buf, unix.MSG_DONTWAIT); err == nil {
			r.Socket++
		}
	}
	if fds[1].Revents&unix.POLLIN != 0 {
		n, from, err := unix.Recvfrom(r.pkt, r.buf, unix.MSG_DONTWAIT)
		if err == nil && isVRRPFrame(r.buf[:n], from) {
			r.Wire++
		}
	}
	return nil
}

// Close closes the sockets.
func (r *Receiver) Close() {
	for _, fd := range []int{r.raw, r.pkt} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	r.raw, r.pkt = -1, -1
}

func rawSocket(grp netip.Addr, ifindex int) (int, error) {
	if grp.Is4() {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 112)
		if err != nil {
			return -1, err
		}
		mreq := &unix.IPMreqn{Multiaddr: grp.As4(), Ifindex: int32(ifindex)}
		if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, mreq); err != nil {
			unix.Close(fd)
			return -1, err
		}
		return fd, nil
	}
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 112)
	if err != nil {
		return -1, err
	}
	mreq := &unix.IPv6Mreq{Multiaddr: grp.As16(), Interface: uint32(ifindex)}
	if err := unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, mreq); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// isVRRPFrame reports whether an incoming Ethernet frame carries IP protocol 112.
func isVRRPFrame(b []byte, from unix.Sockaddr) bool {
	if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
		return false
	}
	if len(b) < 14 {
		return false
	}
	switch binary.BigEndian.Uint16(b[12:14]) {
	case unix.ETH_P_IP:
		return len(b) >= 14+20 && b[14+9] == 112
	case unix.ETH_P_IPV6:
		return len(b) >= 14+40 && b[14+6] == 112
	}
	return false
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
