package runtime

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// maxMessage is the largest VRRP message: 8 bytes of header, 255 IPv6
// addresses and room for VRRPv2 authentication data.
const maxMessage = 8 + 255*16 + 8

// tosInternetControl is IPTOS_PREC_INTERNETCONTROL, the TOS / traffic class
// keepalived gives adverts.
const tosInternetControl = 0xc0

// sockKey identifies a VRRP socket: one per interface and address family.
type sockKey struct {
	ifname string
	family int // 4 or 6
}

// packet is one received advert on its way to an instance.
type packet struct {
	// at is when the socket read it: the machine's "now" for it, so that
	// the time it waits for the instance's loop does not delay the timers
	// it sets (Skew_Time after a priority 0 advert).
	at     time.Time
	advert vrrpcore.Advert
	src    netip.Addr
	dst    netip.Addr
	ttl    uint8
	ifname string
}

// route is where a socket delivers the adverts of one VRID.
type route struct {
	name  string // the instance's name, for events
	ch    chan<- packet
	group netip.Addr // multicast group the instance listens on; invalid for unicast
	drops *atomic.Uint64
}

// SocketStats count what a VRRP socket received but could not hand to an
// instance.
type SocketStats struct {
	Interface   string
	Family      int
	Received    uint64 // packets read
	Undecodable uint64 // not a VRRP message (a *vrrpcore.DecodeError)
	UnknownVRID uint64 // a VRID no instance runs on this interface
	ReadErrors  uint64
}

// vrrpSocket is a raw IP socket for protocol 112 bound to one interface,
// joined to the multicast groups its instances use. One goroutine reads it
// and hands each advert to the instance running its VRID; instances send
// through it directly (sends need no goroutine).
type vrrpSocket struct {
	key sockKey
	// ifi is the interface, replaced when it is created again with a new
	// index; gone is set while it is missing (relink.go).
	ifi    atomic.Pointer[net.Interface]
	gone   atomic.Bool
	conn   net.PacketConn
	raw    syscall.RawConn // conn's, for advertSender
	p4     *ipv4.PacketConn
	p6     *ipv6.PacketConn
	log    *slog.Logger
	emit   func(Event)
	done   chan struct{}
	closed atomic.Bool

	mu     sync.Mutex
	routes map[uint8]route
	groups map[netip.Addr]int // joined group -> number of routes using it

	received, undecodable, unknownVRID, readErrors atomic.Uint64
	limiter                                        logLimiter
}

// openSocket opens the socket for key on interface ifi; enter runs the
// socket creation in the daemon's network namespace; emit receives the
// socket's events.
func openSocket(key sockKey, ifi *net.Interface, enter func(func() error) error, log *slog.Logger, emit func(Event)) (*vrrpSocket, error) {
	s := &vrrpSocket{key: key, log: log, emit: emit, done: make(chan struct{}),
		routes: map[uint8]route{}, groups: map[netip.Addr]int{}}
	s.ifi.Store(ifi)
	network, laddr := "ip4:112", "0.0.0.0"
	if key.family == 6 {
		network, laddr = "ip6:112", "::"
	}
	// Bind to the device before the socket is bound to an address, so
	// that no packet of another interface is ever queued on it.
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifi.Name)
			if serr != nil {
				serr = fmt.Errorf("SO_BINDTODEVICE %s: %w", ifi.Name, serr)
				return
			}
			// Only the groups joined on this socket, not every group
			// joined on the host (Linux's default), like keepalived.
			if key.family == 4 {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0)
			} else {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, 0)
			}
			if serr != nil {
				serr = fmt.Errorf("multicast-all off: %w", serr)
			}
		})
		return errors.Join(err, serr)
	}}
	err := enter(func() error {
		c, err := lc.ListenPacket(context.Background(), network, laddr)
		s.conn = c
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("VRRP socket on %s: %w", ifi.Name, err)
	}
	if err := s.setup(); err != nil {
		s.conn.Close()
		return nil, fmt.Errorf("VRRP socket on %s: %w", ifi.Name, err)
	}
	if s.raw, err = s.conn.(syscall.Conn).SyscallConn(); err != nil {
		s.conn.Close()
		return nil, fmt.Errorf("VRRP socket on %s: %w", ifi.Name, err)
	}
	go s.readLoop()
	return s, nil
}

// setup sets TTL / hop limit 255 for every send (RFC 5798 §5.1.1.3,
// §5.1.2.3), no multicast loopback, the outgoing interface, keepalived's
// TOS, and asks for the TTL / hop limit, destination and interface of
// every received packet as ancillary data.
func (s *vrrpSocket) setup() error {
	if s.key.family == 4 {
		p := ipv4.NewPacketConn(s.conn)
		s.p4 = p
		return errors.Join(
			p.SetMulticastTTL(255),
			p.SetTTL(255),
			p.SetMulticastLoopback(false),
			p.SetMulticastInterface(s.ifi.Load()),
			p.SetTOS(tosInternetControl),
			p.SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst|ipv4.FlagInterface, true),
		)
	}
	p := ipv6.NewPacketConn(s.conn)
	s.p6 = p
	return errors.Join(
		p.SetMulticastHopLimit(255),
		p.SetHopLimit(255),
		p.SetMulticastLoopback(false),
		p.SetMulticastInterface(s.ifi.Load()),
		p.SetTrafficClass(tosInternetControl),
		p.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true),
	)
}

// addRoute delivers the adverts of vrid to ch, joining group first if it
// is a multicast group not joined yet.
func (s *vrrpSocket) addRoute(vrid uint8, r route) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.routes[vrid]; dup {
		return fmt.Errorf("VRID %d already runs on %s (IPv%d)", vrid, s.key.ifname, s.key.family)
	}
	if r.group.IsValid() {
		if s.groups[r.group] == 0 {
			if err := s.join(r.group); err != nil {
				return err
			}
		}
		s.groups[r.group]++
	}
	s.routes[vrid] = r
	return nil
}

// removeRoute stops delivering vrid and leaves its group when no other
// route uses it. It reports whether the socket has no route left.
func (s *vrrpSocket) removeRoute(vrid uint8) (empty bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.routes[vrid]
	if !ok {
		return len(s.routes) == 0
	}
	delete(s.routes, vrid)
	if r.group.IsValid() {
		s.groups[r.group]--
		if s.groups[r.group] == 0 {
			delete(s.groups, r.group)
			if err := s.leave(r.group); err != nil && !s.closed.Load() {
				s.log.Warn("leaving multicast group", "interface", s.key.ifname, "group", r.group, "err", err)
			}
		}
	}
	return len(s.routes) == 0
}

func (s *vrrpSocket) join(g netip.Addr) error {
	var err error
	if s.p4 != nil {
		err = s.p4.JoinGroup(s.ifi.Load(), &net.IPAddr{IP: g.AsSlice()})
	} else {
		err = s.p6.JoinGroup(s.ifi.Load(), &net.IPAddr{IP: g.AsSlice()})
	}
	if err != nil {
		return fmt.Errorf("joining %v on %s: %w", g, s.key.ifname, err)
	}
	return nil
}

func (s *vrrpSocket) leave(g netip.Addr) error {
	if s.p4 != nil {
		return s.p4.LeaveGroup(s.ifi.Load(), &net.IPAddr{IP: g.AsSlice()})
	}
	return s.p6.LeaveGroup(s.ifi.Load(), &net.IPAddr{IP: g.AsSlice()})
}

// advertSender sends one instance's adverts through its vrrpSocket. It
// is the socket's sendmsg without the allocations of package net and
// x/net (a control message, a destination address and a closure per
// packet, ten in all): the control message and the destination are kept
// from one advert to the next, built again only when the source, the
// destination, the interface index or the TTL change. Only the
// instance's loop uses it.
type advertSender struct {
	s *vrrpSocket
	// What oob and to were built for.
	built    bool
	src, dst netip.Addr
	ifindex  int
	ttl      uint8
	oob      []byte
	// The destination, as sendmsg takes it: sa4 or sa6 by family.
	sa4 unix.RawSockaddrInet4
	sa6 unix.RawSockaddrInet6
	// The message header and its one buffer, for sendmsg.
	hdr unix.Msghdr
	iov unix.Iovec
	// The message being sent and the result of sendmsg, for write.
	msg   []byte
	err   error
	write func(fd uintptr) bool // w.sendmsg, bound once
}

func newAdvertSender(s *vrrpSocket) *advertSender {
	w := &advertSender{s: s}
	w.write = w.sendmsg
	return w
}

// send sends one encoded VRRP message from src to dst out of the socket's
// interface, with TTL / hop limit ttl (255 but for keepalived's
// unicast_ttl). The error is the one package net would give.
func (w *advertSender) send(msg []byte, src, dst netip.Addr, ttl uint8) error {
	ifindex := w.s.ifi.Load().Index
	if !w.built || src != w.src || dst != w.dst || ifindex != w.ifindex || ttl != w.ttl {
		w.prepare(src, dst, ifindex, ttl)
	}
	w.msg, w.err = msg, nil
	err := w.s.raw.Write(w.write)
	w.msg = nil
	if err == nil && w.err != nil {
		err = os.NewSyscallError("sendmsg", w.err)
	}
	if err != nil {
		laddr := w.s.conn.LocalAddr()
		return &net.OpError{Op: "write", Net: laddr.Network(), Source: laddr, Addr: &net.IPAddr{IP: dst.AsSlice()}, Err: err}
	}
	return nil
}

// sendmsg is the raw connection's write function: false asks to wait
// until the socket is writable.
//
// It is a raw system call (no entersyscall): the socket is non-blocking,
// so sendmsg returns at once. A scheduled one would wake the runtime's
// sysmon thread out of its deep sleep on every advert of an idle daemon
// (a futex wake, a wait and its polling naps), which cost more CPU than
// the send itself.
func (w *advertSender) sendmsg(fd uintptr) bool {
	w.iov.Base = unsafe.SliceData(w.msg)
	w.iov.SetLen(len(w.msg))
	w.hdr.Iov = &w.iov
	w.hdr.SetIovlen(1)
	if w.s.key.family == 4 {
		w.hdr.Name, w.hdr.Namelen = (*byte)(unsafe.Pointer(&w.sa4)), unix.SizeofSockaddrInet4
	} else {
		w.hdr.Name, w.hdr.Namelen = (*byte)(unsafe.Pointer(&w.sa6)), unix.SizeofSockaddrInet6
	}
	w.hdr.Control = unsafe.SliceData(w.oob)
	w.hdr.SetControllen(len(w.oob))
	_, _, errno := unix.RawSyscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&w.hdr)), 0)
	w.err = nil
	if errno != 0 {
		w.err = errno
	}
	return errno != unix.EAGAIN
}

// prepare builds the control message and the destination address: the
// source address and the interface (IP_PKTINFO / IPV6_PKTINFO), and the
// TTL (an IP_TTL control message when it is not 255, the socket's
// default) or the hop limit and traffic class.
func (w *advertSender) prepare(src, dst netip.Addr, ifindex int, ttl uint8) {
	w.built, w.src, w.dst, w.ifindex, w.ttl = true, src, dst, ifindex, ttl
	if w.s.key.family == 4 {
		w.oob = (&ipv4.ControlMessage{Src: src.AsSlice(), IfIndex: ifindex}).Marshal()
		if ttl != 255 {
			// keepalived's unicast_ttl (x/net/ipv4 marshals no TTL).
			w.oob = append(w.oob, ttlCmsg(ttl)...)
		}
		w.sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst.As4()}
		return
	}
	w.oob = (&ipv6.ControlMessage{Src: src.WithZone("").AsSlice(), IfIndex: ifindex, HopLimit: int(ttl), TrafficClass: tosInternetControl}).Marshal()
	// No scope on dst: the interface comes from the control message (and
	// SO_BINDTODEVICE). Package net would turn a zone name into an index
	// from a cache of the interfaces of the thread's own namespace, kept
	// up to a minute: the wrong index when the daemon runs in another
	// namespace or the interface was created again, and the kernel
	// refuses a scope that disagrees with the control message (EINVAL).
	w.sa6 = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst.As16()}
}

// ttlCmsg is an IP_TTL control message setting one packet's TTL.
func ttlCmsg(ttl uint8) []byte {
	b := make([]byte, unix.CmsgSpace(4))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.IPPROTO_IP, unix.IP_TTL
	h.SetLen(unix.CmsgLen(4))
	binary.NativeEndian.PutUint32(b[unix.CmsgLen(0):], uint32(ttl))
	return b
}

// readLoop reads adverts until the socket is closed.
func (s *vrrpSocket) readLoop() {
	defer close(s.done)
	r := newPacketReader(s.raw, s.key.family)
	for {
		msg, src, dst, ttl, ifindex, err := r.next()
		if err != nil {
			if s.closed.Load() {
				return
			}
			s.readErrors.Add(1)
			s.limiter.do("read", func() {
				s.log.Warn("VRRP socket read failed", "interface", s.key.ifname, "family", s.key.family, "err", err)
			})
			time.Sleep(10 * time.Millisecond)
			continue
		}
		now := time.Now()
		s.received.Add(1)
		src, dst = src.Unmap(), dst.Unmap()
		if ifindex != 0 && ifindex != s.ifi.Load().Index {
			// SO_BINDTODEVICE makes this impossible; count it anyway.
			s.undecodable.Add(1)
			s.event(Event{Time: now, Kind: EventAdvertDiscarded, Reason: DiscardUndecodable, Src: src, Dst: dst})
			continue
		}
		var adv vrrpcore.Advert
		if err := adv.Decode(msg, src, dst); err != nil {
			var ce *vrrpcore.ChecksumError
			if !errors.As(err, &ce) {
				// Not even a VRRP message: never reaches a machine.
				s.undecodable.Add(1)
				s.event(Event{Time: now, Kind: EventAdvertDiscarded, Reason: DiscardUndecodable, Src: src, Dst: dst})
				s.limiter.do("decode "+src.String(), func() {
					s.log.Warn("undecodable VRRP packet", "interface", s.key.ifname, "src", src, "len", len(msg), "err", err)
				})
				continue
			}
			// A bad checksum is the machine's to discard and count.
		}
		s.mu.Lock()
		r, ok := s.routes[adv.VRID]
		s.mu.Unlock()
		s.event(Event{Time: now, Kind: EventAdvertReceived, Instance: r.name, VRID: adv.VRID, Src: src, Dst: dst, Priority: adv.Priority})
		if !ok {
			s.unknownVRID.Add(1)
			s.event(Event{Time: now, Kind: EventAdvertDiscarded, VRID: adv.VRID, Reason: DiscardUnknownVRID, Src: src, Dst: dst, Priority: adv.Priority})
			s.limiter.do(fmt.Sprintf("vrid %d %v", adv.VRID, src), func() {
				s.log.Debug("advert for a VRID not configured here", "interface", s.key.ifname, "src", src, "vrid", adv.VRID)
			})
			continue
		}
		p := packet{at: now, advert: adv, src: src, dst: dst, ttl: uint8(min(max(ttl, 0), 255)), ifname: s.key.ifname}
		select {
		case r.ch <- p:
		default:
			r.drops.Add(1)
			s.event(Event{Time: now, Kind: EventAdvertDiscarded, Instance: r.name, VRID: adv.VRID, Reason: DiscardQueueFull, Src: src, Dst: dst, Priority: adv.Priority})
		}
	}
}

// event completes e with the socket's interface and family and emits it.
func (s *vrrpSocket) event(e Event) {
	if s.emit == nil {
		return
	}
	e.Interface, e.Family = s.key.ifname, s.key.family
	s.emit(e)
}

// stats returns the socket's counters.
func (s *vrrpSocket) stats() SocketStats {
	return SocketStats{
		Interface: s.key.ifname, Family: s.key.family,
		Received: s.received.Load(), Undecodable: s.undecodable.Load(),
		UnknownVRID: s.unknownVRID.Load(), ReadErrors: s.readErrors.Load(),
	}
}

// close closes the socket and waits for its reader to end.
func (s *vrrpSocket) close() error {
	s.closed.Store(true)
	err := s.conn.Close()
	<-s.done
	return err
}

// logLimiter lets a message through once per key and per minute.
type logLimiter struct {
	mu   sync.Mutex
	last map[string]time.Time
}

const logEvery = time.Minute

func (l *logLimiter) do(key string, fn func()) {
	now := time.Now()
	l.mu.Lock()
	if l.last == nil {
		l.last = map[string]time.Time{}
	}
	t, seen := l.last[key]
	ok := !seen || now.Sub(t) >= logEvery
	if ok {
		l.last[key] = now
		if len(l.last) > 4096 { // bound memory under a flood of sources
			clear(l.last)
			l.last[key] = now
		}
	}
	l.mu.Unlock()
	if ok {
		fn()
	}
}
