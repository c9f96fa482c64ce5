package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// This file is the socket tap: a raw IP socket for protocol 112 set up the
// way keepalived 2.2.7 sets up its receive socket (open_vrrp_read_socket in
// keepalived/vrrp/vrrp.c), so that an advert it gets is one keepalived
// gets. Each raw socket receives its own copy of a packet, and group
// memberships are counted per socket, so the tap does not take anything
// away from a VRRP daemon on the same host.

// DefaultSocketBuffer is the socket tap's default receive buffer in bytes.
const DefaultSocketBuffer = 1 << 20

// maxPacket bounds the bytes read per packet; VRRP adverts are far
// smaller.
const maxPacket = 65536

// ipv6FlowInfo is IPV6_FLOWINFO (linux/in6.h), not in x/sys/unix: it asks
// for the flow information of received packets as ancillary data.
const ipv6FlowInfo = 11

// SocketOptions configure a socket tap. The zero value is usable.
type SocketOptions struct {
	// Unicast, when valid, makes the tap mirror keepalived's receive
	// socket for unicast peers: bound to this local address
	// (unicast_src_ip), without joining the VRRP group.
	Unicast netip.Addr
	// BufferSize is the receive buffer in bytes; default
	// DefaultSocketBuffer.
	BufferSize int
}

// SocketStats are a socket tap's counters since it opened.
type SocketStats struct {
	// Received counts packets read from the socket.
	Received uint64
	// Dropped counts packets the kernel dropped on this socket because its
	// receive buffer was full (SO_RXQ_OVFL), as of the last packet read.
	Dropped uint64
}

// SocketTap receives VRRP packets of one address family on one interface
// through a raw socket, as keepalived does. Next must not be called
// concurrently; Stats and Close may be called from any goroutine.
type SocketTap struct {
	iface   string
	ifindex int
	family  uint8
	group   netip.Addr // joined group, invalid in unicast mode
	file    *os.File
	rc      syscall.RawConn
	buf     []byte
	oob     []byte
	closed  atomic.Bool
	// The last recvmsg's results and the function that calls it, made
	// once so that a read allocates nothing (Next is not concurrent).
	rd struct {
		n, oobn int
		sa      unix.RawSockaddrInet6 // large enough for either family
		errno   syscall.Errno
	}
	readFn func(fd uintptr) bool

	mu    sync.Mutex
	stats SocketStats
}

// OpenSocket opens a socket tap for family (4 or 6) on the interface named
// iface, in the network namespace of the calling thread: a raw socket for
// IP protocol 112, bound to the interface (SO_BINDTODEVICE), joined to
// 224.0.0.18 or ff02::12 on it and bound to that group (or bound to
// o.Unicast), with IP_MULTICAST_ALL off and, for IPv6, the checksum
// verified by the kernel (IPV6_CHECKSUM) as keepalived asks. It needs
// CAP_NET_RAW; without it the error is a *PermissionError.
func OpenSocket(iface string, family uint8, o SocketOptions) (*SocketTap, error) {
	if o.BufferSize <= 0 {
		o.BufferSize = DefaultSocketBuffer
	}
	domain := unix.AF_INET
	switch family {
	case 4:
	case 6:
		domain = unix.AF_INET6
	default:
		return nil, fmt.Errorf("capture: socket tap: address family %d, want 4 or 6", family)
	}
	if o.Unicast.IsValid() && (o.Unicast.Unmap().Is4() != (family == 4)) {
		return nil, fmt.Errorf("capture: socket tap: unicast address %v is not IPv%d", o.Unicast, family)
	}
	fd, err := unix.Socket(domain, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, vrrpcore.IPProtocol)
	if err != nil {
		return nil, socketError(fmt.Sprintf("open raw IPv%d socket for VRRP", family), err)
	}
	t, err := setupSocket(fd, iface, family, o)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return t, nil
}

func setupSocket(fd int, iface string, family uint8, o SocketOptions) (*SocketTap, error) {
	ifindex, _, err := ifaceInfo(fd, iface)
	if err != nil {
		return nil, err
	}
	fail := func(what string, err error) error {
		return fmt.Errorf("capture: socket tap on %s (IPv%d): %s: %w", iface, family, what, err)
	}
	t := &SocketTap{iface: iface, ifindex: ifindex, family: family}
	t.readFn = func(fd uintptr) bool {
		r := &t.rd
		r.n, r.oobn, r.errno = recvmsg(fd, t.buf, t.oob, unsafe.Pointer(&r.sa), unsafe.Sizeof(r.sa), 0)
		return r.errno != unix.EAGAIN
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, o.BufferSize); err != nil {
		return nil, fail("SO_RCVBUF", err)
	}
	if family == 4 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0); err != nil {
			return nil, fail("IP_MULTICAST_ALL", err)
		}
	}
	var bindTo unix.Sockaddr
	switch {
	case o.Unicast.IsValid() && family == 4:
		bindTo = &unix.SockaddrInet4{Addr: o.Unicast.Unmap().As4()}
	case o.Unicast.IsValid():
		sa := &unix.SockaddrInet6{Addr: o.Unicast.As16()}
		if o.Unicast.IsLinkLocalUnicast() {
			sa.ZoneId = uint32(ifindex)
		}
		bindTo = sa
	case family == 4:
		t.group = vrrpcore.GroupIPv4
		mreq := &unix.IPMreqn{Multiaddr: t.group.As4(), Ifindex: int32(ifindex)}
		if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, mreq); err != nil {
			return nil, fail("join 224.0.0.18", err)
		}
		bindTo = &unix.SockaddrInet4{Addr: t.group.As4()}
	default:
		t.group = vrrpcore.GroupIPv6
		mreq := &unix.IPv6Mreq{Multiaddr: t.group.As16(), Interface: uint32(ifindex)}
		if err := unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_ADD_MEMBERSHIP, mreq); err != nil {
			return nil, fail("join ff02::12", err)
		}
		bindTo = &unix.SockaddrInet6{Addr: t.group.As16(), ZoneId: uint32(ifindex)}
	}
	// Bound to the group, the socket gets only packets sent to it, as
	// keepalived's does; bound to a unicast address, only those to it.
	if err := unix.Bind(fd, bindTo); err != nil {
		return nil, fail("bind", err)
	}
	if family == 6 {
		for _, opt := range []struct {
			name string
			opt  int
		}{{"IPV6_RECVHOPLIMIT", unix.IPV6_RECVHOPLIMIT}, {"IPV6_RECVPKTINFO", unix.IPV6_RECVPKTINFO}, {"IPV6_FLOWINFO", ipv6FlowInfo}} {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, opt.opt, 1); err != nil {
				return nil, fail(opt.name, err)
			}
		}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return nil, fail("SO_TIMESTAMPNS", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1); err != nil {
		return nil, fail("SO_RXQ_OVFL", err)
	}
	if err := unix.BindToDevice(fd, iface); err != nil {
		return nil, fail("SO_BINDTODEVICE", err)
	}
	if family == 6 {
		// The kernel verifies the VRRP checksum (offset 6) and drops
		// packets where it is wrong before the socket sees them.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_CHECKSUM, 6); err != nil {
			return nil, fail("IPV6_CHECKSUM", err)
		}
	}
	t.file = os.NewFile(uintptr(fd), fmt.Sprintf("raw%d:%s", family, iface))
	if t.rc, err = t.file.SyscallConn(); err != nil {
		t.file.Close()
		return nil, err
	}
	t.buf = make([]byte, maxPacket)
	t.oob = make([]byte, 256)
	return t, nil
}

// Interface is the name of the tapped interface.
func (t *SocketTap) Interface() string { return t.iface }

// Family is the tap's address family, 4 or 6.
func (t *SocketTap) Family() uint8 { return t.family }

// Group is the multicast group the tap joined; invalid in unicast mode.
func (t *SocketTap) Group() netip.Addr { return t.group }

// SetReadDeadline makes a pending or later Next return an error wrapping
// os.ErrDeadlineExceeded once tm has passed; the zero time means none.
func (t *SocketTap) SetReadDeadline(tm time.Time) error { return t.file.SetReadDeadline(tm) }

// BadPacketError is a packet a tap received but could not decode. The
// Packet passed to Next holds what was decoded; the tap stays usable.
type BadPacketError struct {
	Err error
}

func (e *BadPacketError) Error() string { return e.Err.Error() }

func (e *BadPacketError) Unwrap() error { return e.Err }

// Next reads the next packet delivered to the socket into p, as keepalived
// would receive it, and decodes its advert. p.Direction is DirIn; Src, Dst,
// TTL (the IPv6 hop limit from ancillary data), IPID (IPv4) and FlowLabel
// (IPv6) come from the IP header or, for IPv6, whose raw sockets get no
// header, from the source address and ancillary data. A packet that does
// not decode gives a *BadPacketError; after Close, Next returns ErrClosed.
func (t *SocketTap) Next(p *Packet) error {
	err := t.rc.Read(t.readFn)
	n, oobn, errno, sa := t.rd.n, t.rd.oobn, t.rd.errno, &t.rd.sa
	if err != nil {
		if t.closed.Load() {
			return ErrClosed
		}
		return fmt.Errorf("capture: read from the IPv%d socket on %s: %w", t.family, t.iface, err)
	}
	if errno != 0 {
		return fmt.Errorf("capture: read from the IPv%d socket on %s: %w", t.family, t.iface, errno)
	}
	addrs := p.Advert.Addrs[:0]
	*p = Packet{Direction: DirIn, Family: t.family}
	p.Advert.Addrs = addrs
	var drops uint32
	haveDrops := false
	walkCmsgs(t.oob[:oobn], func(level, typ int32, b []byte) {
		switch {
		case level == unix.SOL_SOCKET && typ == unix.SCM_TIMESTAMPNS && len(b) >= int(unsafe.Sizeof(unix.Timespec{})):
			ts := (*unix.Timespec)(unsafe.Pointer(&b[0]))
			p.Time = time.Unix(int64(ts.Sec), int64(ts.Nsec))
		case level == unix.SOL_SOCKET && typ == unix.SO_RXQ_OVFL && len(b) >= 4:
			drops, haveDrops = binary.NativeEndian.Uint32(b), true
		case level == unix.IPPROTO_IPV6 && typ == unix.IPV6_PKTINFO && len(b) >= 16:
			p.Dst = netip.AddrFrom16([16]byte(b[:16]))
		case level == unix.IPPROTO_IPV6 && typ == unix.IPV6_HOPLIMIT && len(b) >= 4:
			p.TTL = uint8(binary.NativeEndian.Uint32(b))
		case level == unix.IPPROTO_IPV6 && typ == ipv6FlowInfo && len(b) >= 4:
			p.FlowLabel = binary.BigEndian.Uint32(b) & 0xfffff
		}
	})
	if p.Time.IsZero() {
		p.Time = time.Now()
	}
	t.mu.Lock()
	t.stats.Received++
	if haveDrops {
		t.stats.Dropped = uint64(drops)
	}
	t.mu.Unlock()

	var err2 error
	if t.family == 4 {
		err2 = decodeSocketIPv4(t.buf[:n], t.iface, p)
	} else {
		// The kernel strips the IPv6 header: the source is the
		// sender's address, the destination comes from IPV6_PKTINFO.
		p.Src = netip.AddrFrom16(sa.Addr)
		err2 = decodeSocketMsg(t.buf[:n], t.iface, p)
	}
	if err2 != nil {
		return &BadPacketError{Err: err2}
	}
	return nil
}

// decodeSocketIPv4 decodes what a raw IPv4 socket delivers (IPv4 header
// and VRRP message) into p.
func decodeSocketIPv4(b []byte, iface string, p *Packet) error {
	msg, err := parseIPv4(b, iface, p)
	if err != nil {
		return err
	}
	return decodeSocketMsg(msg, iface, p)
}

// decodeSocketMsg decodes the VRRP message msg of a packet from p.Src to
// p.Dst into p.
func decodeSocketMsg(msg []byte, iface string, p *Packet) error {
	if !p.Dst.IsValid() {
		return fmt.Errorf("capture: packet from %v on %s without its destination (IPV6_PKTINFO)", p.Src, iface)
	}
	p.Length = len(msg)
	if err := p.Advert.Decode(msg, p.Src, p.Dst); err != nil {
		return fmt.Errorf("capture: VRRP packet from %v on %s: %w", p.Src, iface, err)
	}
	return nil
}

// parseIPv4 reads the IPv4 header a raw IPv4 socket delivers with every
// packet into p and returns the VRRP message after it.
func parseIPv4(b []byte, iface string, p *Packet) ([]byte, error) {
	if len(b) < 20 {
		return nil, fmt.Errorf("capture: IPv4 packet of %d bytes on %s: shorter than an IPv4 header", len(b), iface)
	}
	p.Src = netip.AddrFrom4([4]byte(b[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(b[16:20]))
	p.TTL = b[8]
	p.IPID = binary.BigEndian.Uint16(b[4:6])
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	switch {
	case b[0]>>4 != 4:
		return nil, fmt.Errorf("capture: packet from the IPv4 socket on %s has IP version %d (byte offset 0)", iface, b[0]>>4)
	case ihl < 20 || ihl > len(b):
		return nil, fmt.Errorf("capture: IPv4 packet from %v on %s: header length %d at byte offset 0 does not fit %d bytes", p.Src, iface, ihl, len(b))
	case total < ihl || total > len(b):
		return nil, fmt.Errorf("capture: IPv4 packet from %v on %s: total length %d at byte offset 2, %d bytes received", p.Src, iface, total, len(b))
	}
	return b[ihl:total], nil
}

// Stats returns the tap's counters.
func (t *SocketTap) Stats() SocketStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}

// Close closes the socket, which leaves the group; a pending Next returns
// ErrClosed.
func (t *SocketTap) Close() error {
	t.closed.Store(true)
	if err := t.file.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	}
	return nil
}

// recvmsg is recvmsg(2) into one buffer, with the source address written to
// name. Unlike unix.Recvmsg it does not allocate.
func recvmsg(fd uintptr, p, oob []byte, name unsafe.Pointer, namelen uintptr, flags int) (n, oobn int, errno syscall.Errno) {
	var msg unix.Msghdr
	msg.Name = (*byte)(name)
	msg.Namelen = uint32(namelen)
	var iov unix.Iovec
	if len(p) > 0 {
		iov.Base = &p[0]
		iov.SetLen(len(p))
	}
	msg.Iov = &iov
	msg.Iovlen = 1
	if len(oob) > 0 {
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
	}
	r, _, e := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&msg)), uintptr(flags))
	if e != 0 {
		return 0, 0, e
	}
	return int(r), int(msg.Controllen), 0
}

// walkCmsgs calls fn for each control message in oob without allocating.
func walkCmsgs(oob []byte, fn func(level, typ int32, data []byte)) {
	hdrLen := unix.CmsgLen(0)
	for len(oob) >= hdrLen {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdrLen || l > len(oob) {
			return
		}
		fn(h.Level, h.Type, oob[hdrLen:l])
		next := unix.CmsgSpace(l - hdrLen)
		if next > len(oob) {
			return
		}
		oob = oob[next:]
	}
}
