package runtime

import (
	"encoding/binary"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// packetReader reads a VRRP socket's packets with recvmsg into buffers it
// keeps, and takes the source, destination, TTL / hop limit and interface
// from the socket address and the control messages the socket was asked
// for (IP_RECVTTL and IP_PKTINFO, IPV6_RECVHOPLIMIT and IPV6_RECVPKTINFO:
// vrrpSocket.setup). x/net's ReadFrom allocates about fourteen objects per
// packet doing the same; this allocates none. Only the socket's reader
// uses it.
type packetReader struct {
	raw    syscall.RawConn
	family int
	buf    []byte
	oob    []byte
	from   unix.RawSockaddrInet6 // large enough for either family
	iov    unix.Iovec
	msg    unix.Msghdr
	// The result of the last recvmsg, for next.
	n   int
	err error
	// read is r.recvmsg, bound once.
	read func(fd uintptr) bool
}

func newPacketReader(raw syscall.RawConn, family int) *packetReader {
	r := &packetReader{raw: raw, family: family,
		// An IPv4 raw socket reads the IP header too (up to 60 bytes).
		buf: make([]byte, maxMessage+64),
		// Room for a TTL and a packet information message, and more.
		oob: make([]byte, 2*unix.CmsgSpace(unix.SizeofInet6Pktinfo)+2*unix.CmsgSpace(4)),
	}
	r.iov.Base = &r.buf[0]
	r.iov.SetLen(len(r.buf))
	r.msg.Iov = &r.iov
	r.msg.SetIovlen(1)
	r.read = r.recvmsg
	return r
}

// recvmsg is the raw connection's read function: false asks to wait
// until the socket is readable.
func (r *packetReader) recvmsg(fd uintptr) bool {
	r.msg.Name = (*byte)(unsafe.Pointer(&r.from))
	r.msg.Namelen = uint32(unsafe.Sizeof(r.from))
	r.msg.Control = &r.oob[0]
	r.msg.SetControllen(len(r.oob))
	// Raw, as advertSender.sendmsg: the socket is non-blocking.
	n, _, errno := unix.RawSyscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&r.msg)), 0)
	if errno != 0 {
		r.n, r.err = 0, errno
		return errno != unix.EAGAIN
	}
	r.n, r.err = int(n), nil
	return true
}

// next reads one packet and returns its VRRP message (a slice of the
// reader's buffer, valid until the next call), where it came from and
// went to, its TTL or hop limit and the interface index it arrived on
// (0 if the kernel gave none).
func (r *packetReader) next() (msg []byte, src, dst netip.Addr, ttl, ifindex int, err error) {
	if err := r.raw.Read(r.read); err != nil {
		return nil, src, dst, 0, 0, err
	}
	if r.err != nil {
		return nil, src, dst, 0, 0, os.NewSyscallError("recvmsg", r.err)
	}
	msg, src, dst, ttl, ifindex = parsePacket(r.family, r.buf[:min(r.n, len(r.buf))], r.oob[:min(int(r.msg.Controllen), len(r.oob))], &r.from)
	return msg, src, dst, ttl, ifindex, nil
}

// parsePacket takes apart what recvmsg read from a socket of family (4
// or 6): pkt (after an IPv4 header on an IPv4 socket), the control
// messages oob and the source address from. msg is a slice of pkt.
func parsePacket(family int, pkt, oob []byte, from *unix.RawSockaddrInet6) (msg []byte, src, dst netip.Addr, ttl, ifindex int) {
	msg = pkt
	if family == 4 {
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(from))
		if sa.Family == unix.AF_INET {
			src = netip.AddrFrom4(sa.Addr)
		}
		// The IPv4 header comes first; a packet too short for the one it
		// claims has no message.
		if len(msg) >= 20 {
			hl := int(msg[0]&0x0f) << 2
			msg = msg[min(max(hl, 20), len(msg)):]
		} else {
			msg = msg[:0]
		}
	} else if from.Family == unix.AF_INET6 {
		src = netip.AddrFrom16(from.Addr)
	}
	for b := oob; len(b) >= unix.SizeofCmsghdr; {
		h, data, rest, err := unix.ParseOneSocketControlMessage(b)
		if err != nil {
			break
		}
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_TTL && len(data) >= 4,
			h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_HOPLIMIT && len(data) >= 4:
			ttl = int(int32(binary.NativeEndian.Uint32(data)))
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
			ifindex, dst = int(pi.Ifindex), netip.AddrFrom4(pi.Addr)
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
			ifindex, dst = int(pi.Ifindex), netip.AddrFrom16(pi.Addr)
		}
		b = rest
	}
	return msg, src, dst, ttl, ifindex
}
