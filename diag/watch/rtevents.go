package watch

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"golang.org/x/sys/unix"
)

// rtEvents follows the kernel's link and address notifications
// (RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR) of one network
// namespace on a non-blocking netlink socket: the watch reads what is
// queued when a window ends (drain), and a readWaiter ends a quiet window
// when something is queued. The kernel
// queues a notification on the socket while it makes the change, so a
// drain sees every change of addresses and of the links' administrative
// state made before it; when the queue overflowed (ENOBUFS), the drain
// says notifications were lost. Carrier changes (IFF_LOWER_UP, the
// operational state) are notified by the kernel's link watch, which acts
// on them a moment later (up to a second when they follow each other).
type rtEvents struct {
	fd  int
	buf []byte
	w   *readWaiter
}

// rtEvent is one notification: a link's (RTM_NEWLINK, RTM_DELLINK) or an
// address's (RTM_NEWADDR, RTM_DELADDR).
type rtEvent struct {
	link  bool
	index int
	// name is the link's name (IFLA_IFNAME), when the notification has it.
	name string
	// addrs are the address's IFA_LOCAL and IFA_ADDRESS (they differ on
	// point-to-point links), prefixLen its prefix length; added says
	// RTM_NEWADDR (an address added or its lifetimes refreshed).
	addrs     [2]netip.Addr
	prefixLen int
	added     bool
}

// prefix is the address as check.InterfaceLink reads it (netlink.AddrList:
// IFA_LOCAL, with all its bits when it has a peer, else IFA_ADDRESS).
func (ev rtEvent) prefix() netip.Prefix {
	local, dst := ev.addrs[0], ev.addrs[1]
	switch {
	case local.IsValid() && local.Is4() && local == dst, !local.IsValid():
		return netip.PrefixFrom(dst, ev.prefixLen)
	}
	return netip.PrefixFrom(local, local.BitLen())
}

// rtEventBuffer is the read buffer; a notification longer than it (a link
// with many SR-IOV functions) is counted as lost.
const rtEventBuffer = 16 << 10

// openRTEvents subscribes in the calling thread's network namespace; poke
// (when not nil) is called when notifications are queued, once per drain.
func openRTEvents(poke func()) (*rtEvents, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	sa := &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &rtEvents{fd: fd, buf: make([]byte, rtEventBuffer), w: newReadWaiter(fd, "rtnetlink", poke)}, nil
}

func (e *rtEvents) close() { e.w.close() }

// drain calls fn for every notification queued, without waiting. lost says
// some were dropped (the queue overflowed, or one was too long to read);
// err is a failure of the socket itself (it should be opened again).
func (e *rtEvents) drain(fn func(rtEvent)) (lost bool, err error) {
	lost = e.w.tookOverrun()
	for {
		n, _, err := unix.Recvfrom(e.fd, e.buf, unix.MSG_DONTWAIT|unix.MSG_TRUNC)
		switch {
		case errors.Is(err, unix.EAGAIN):
			e.w.rearm()
			return lost, nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOBUFS):
			lost = true
			continue
		case err != nil:
			return true, err
		case n > len(e.buf):
			lost = true
			continue
		}
		if !parseRTEvents(e.buf[:n], fn) {
			lost = true
		}
	}
}

// parseRTEvents calls fn for each link or address notification in b; it
// returns false when b is malformed or tells of an overrun.
func parseRTEvents(b []byte, fn func(rtEvent)) bool {
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		typ := binary.NativeEndian.Uint16(b[4:6])
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return false
		}
		body := b[unix.NLMSG_HDRLEN:l]
		switch typ {
		case unix.RTM_NEWLINK, unix.RTM_DELLINK:
			if len(body) < unix.SizeofIfInfomsg {
				return false
			}
			ev := rtEvent{link: true, index: int(int32(binary.NativeEndian.Uint32(body[4:8])))}
			eachAttr(body[unix.SizeofIfInfomsg:], func(t uint16, v []byte) {
				if t == unix.IFLA_IFNAME {
					ev.name = cString(v)
				}
			})
			fn(ev)
		case unix.RTM_NEWADDR, unix.RTM_DELADDR:
			if len(body) < unix.SizeofIfAddrmsg {
				return false
			}
			ev := rtEvent{index: int(binary.NativeEndian.Uint32(body[4:8])), prefixLen: int(body[1]), added: typ == unix.RTM_NEWADDR}
			eachAttr(body[unix.SizeofIfAddrmsg:], func(t uint16, v []byte) {
				if ip, ok := netip.AddrFromSlice(v); ok {
					switch t {
					case unix.IFA_LOCAL:
						ev.addrs[0] = ip.Unmap()
					case unix.IFA_ADDRESS:
						ev.addrs[1] = ip.Unmap()
					}
				}
			})
			fn(ev)
		case unix.NLMSG_ERROR, unix.NLMSG_OVERRUN:
			return false
		}
		b = b[min(nlAlign(l), len(b)):]
	}
	return true
}

// eachAttr calls fn for each route attribute in b.
func eachAttr(b []byte, fn func(typ uint16, value []byte)) {
	for len(b) >= unix.SizeofRtAttr {
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		if l < unix.SizeofRtAttr || l > len(b) {
			return
		}
		fn(binary.NativeEndian.Uint16(b[2:4])&^unix.NLA_F_NESTED, b[unix.SizeofRtAttr:l])
		b = b[min(nlAlign(l), len(b)):]
	}
}

func nlAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
