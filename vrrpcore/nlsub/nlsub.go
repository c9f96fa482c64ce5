// Package nlsub follows the kernel's link and address notifications
// (rtnetlink multicast groups), as vishvananda/netlink's LinkSubscribe and
// AddrSubscribe do, and delivers the same LinkUpdate and AddrUpdate
// values.
//
// It exists for memory: vishvananda/netlink receives into a 64 KiB array
// on the reading goroutine's stack, so every subscription kept a parked
// goroutine with a 128 KiB stack (the runtime cannot shrink a stack that
// deep), 4–5 of them in `vrrpdoctor run`. Here the goroutine reads into a
// buffer on the heap and stays at the runtime's smallest stacks.
package nlsub

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// bufSize is the receive buffer: a notification is one link or address
// (under 2 KiB for a link with its statistics); a datagram the kernel
// cuts is reported, not parsed. A variable, not a constant: a buffer of
// constant size that does not escape is put on the goroutine's stack by
// the compiler, which is what this package exists to avoid.
var bufSize = 16 << 10

// Links subscribes, in the calling thread's network namespace, to link
// changes and sends them on ch until done closes or receiving fails; then
// it closes ch. onErr, if not nil, is told of failures and of messages it
// cannot parse.
func Links(ch chan<- netlink.LinkUpdate, done <-chan struct{}, onErr func(error)) error {
	return subscribe(unix.RTMGRP_LINK, done, onErr, func() { close(ch) }, func(m syscall.NetlinkMessage) error {
		u, err := ParseLink(m)
		if err == nil {
			ch <- u
		}
		return err
	})
}

// Addrs subscribes, in the calling thread's network namespace, to IPv4
// and IPv6 address changes and sends them on ch until done closes or
// receiving fails; then it closes ch. onErr as for Links.
func Addrs(ch chan<- netlink.AddrUpdate, done <-chan struct{}, onErr func(error)) error {
	return subscribe(unix.RTMGRP_IPV4_IFADDR|unix.RTMGRP_IPV6_IFADDR, done, onErr, func() { close(ch) }, func(m syscall.NetlinkMessage) error {
		u, err := ParseAddr(m)
		if err == nil {
			ch <- u
		}
		return err
	})
}

// subscribe opens the socket joined to groups and starts its reader.
func subscribe(groups uint32, done <-chan struct{}, onErr func(error), end func(), deliver func(syscall.NetlinkMessage) error) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		unix.Close(fd)
		return os.NewSyscallError("bind", err)
	}
	// Non-blocking: reads wait in the netpoller, and Close wakes them.
	f := os.NewFile(uintptr(fd), "rtnetlink")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return err
	}
	report := func(err error) {
		if onErr != nil {
			onErr(err)
		}
	}
	if done != nil {
		go func() {
			<-done
			f.Close()
		}()
	}
	go func() {
		defer end()
		buf := make([]byte, bufSize)
		for {
			var n int
			var from unix.Sockaddr
			var rerr error
			err := raw.Read(func(fd uintptr) bool {
				// MSG_TRUNC: n is the datagram's length, also when it is
				// longer than buf.
				n, from, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_TRUNC)
				return rerr != unix.EAGAIN
			})
			if err == nil {
				err = rerr
			}
			if err != nil {
				report(fmt.Errorf("receive failed: %w", err))
				return
			}
			if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != nl.PidKernel {
				continue // not the kernel's
			}
			if n > len(buf) {
				report(fmt.Errorf("notification of %d bytes cut to %d", n, len(buf)))
				continue
			}
			// The updates may keep slices of the message (a link's
			// hardware address): parse a copy, buf is read into again.
			msgs, err := syscall.ParseNetlinkMessage(append([]byte(nil), buf[:n]...))
			if err != nil {
				report(fmt.Errorf("notification: %w", err))
				continue
			}
			for _, m := range msgs {
				if m.Header.Type == unix.NLMSG_DONE || m.Header.Type == unix.NLMSG_NOOP {
					continue
				}
				if m.Header.Type == unix.NLMSG_ERROR {
					if len(m.Data) >= 4 {
						if e := int32(binary.NativeEndian.Uint32(m.Data)); e != 0 {
							report(fmt.Errorf("error message: %w", syscall.Errno(-e)))
						}
					}
					continue
				}
				if err := deliver(m); err != nil {
					report(err)
				}
			}
		}
	}()
	return nil
}

// errShort is a message shorter than its fixed header.
var errShort = errors.New("message too short")

// ParseLink decodes an RTM_NEWLINK or RTM_DELLINK message as
// netlink.LinkSubscribe would deliver it.
func ParseLink(m syscall.NetlinkMessage) (netlink.LinkUpdate, error) {
	if m.Header.Type != unix.RTM_NEWLINK && m.Header.Type != unix.RTM_DELLINK {
		return netlink.LinkUpdate{}, fmt.Errorf("link notification: unexpected message type %d", m.Header.Type)
	}
	if len(m.Data) < unix.SizeofIfInfomsg {
		return netlink.LinkUpdate{}, fmt.Errorf("link notification: %w (%d bytes, want %d)", errShort, len(m.Data), unix.SizeofIfInfomsg)
	}
	if _, err := attributes(m.Data[unix.SizeofIfInfomsg:]); err != nil {
		return netlink.LinkUpdate{}, fmt.Errorf("link notification: %w", err)
	}
	hdr := unix.NlMsghdr(m.Header)
	link, err := deserializeLink(&hdr, m.Data)
	if err != nil {
		return netlink.LinkUpdate{}, fmt.Errorf("link notification: %w", err)
	}
	return netlink.LinkUpdate{IfInfomsg: *nl.DeserializeIfInfomsg(m.Data), Header: hdr, Link: link}, nil
}

// deserializeLink is netlink.LinkDeserialize, which slices nested
// attributes without checking their lengths: a malformed one is an error
// here, not a panic.
func deserializeLink(hdr *unix.NlMsghdr, data []byte) (link netlink.Link, err error) {
	defer func() {
		if r := recover(); r != nil {
			link, err = nil, fmt.Errorf("malformed attributes: %v", r)
		}
	}()
	return netlink.LinkDeserialize(hdr, data)
}

// attr is one route attribute: its type and value.
type attr struct {
	typ   uint16
	value []byte
}

// attributes splits b into route attributes, checking every length.
func attributes(b []byte) ([]attr, error) {
	var out []attr
	for off := 0; len(b)-off >= unix.SizeofRtAttr; {
		l := int(binary.NativeEndian.Uint16(b[off:]))
		if l < unix.SizeofRtAttr || l > len(b)-off {
			return nil, fmt.Errorf("attribute at byte %d: length %d, %d bytes left", off, l, len(b)-off)
		}
		out = append(out, attr{typ: binary.NativeEndian.Uint16(b[off+2:]), value: b[off+unix.SizeofRtAttr : off+l]})
		off += (l + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1)
	}
	return out, nil
}

// ParseAddr decodes an RTM_NEWADDR or RTM_DELADDR message as
// netlink.AddrSubscribe would deliver it: the local address when the
// message has one (IPv4 gives the peer as IFA_ADDRESS), with the prefix
// length's mask, the flags (IFA_FLAGS over the header's) and lifetimes.
func ParseAddr(m syscall.NetlinkMessage) (netlink.AddrUpdate, error) {
	var u netlink.AddrUpdate
	if m.Header.Type != unix.RTM_NEWADDR && m.Header.Type != unix.RTM_DELADDR {
		return u, fmt.Errorf("address notification: unexpected message type %d", m.Header.Type)
	}
	if len(m.Data) < unix.SizeofIfAddrmsg {
		return u, fmt.Errorf("address notification: %w (%d bytes, want %d)", errShort, len(m.Data), unix.SizeofIfAddrmsg)
	}
	msg := nl.DeserializeIfAddrmsg(m.Data)
	attrs, err := attributes(m.Data[unix.SizeofIfAddrmsg:])
	if err != nil {
		return u, fmt.Errorf("address notification: %w", err)
	}
	u.LinkIndex, u.Scope, u.Flags = int(msg.Index), int(msg.Scope), int(msg.Flags)
	u.NewAddr = m.Header.Type == unix.RTM_NEWADDR
	var local, peer []byte
	for _, a := range attrs {
		switch a.typ {
		case unix.IFA_ADDRESS:
			peer = a.value
		case unix.IFA_LOCAL:
			local = a.value
		case unix.IFA_FLAGS:
			if len(a.value) >= 4 {
				u.Flags = int(binary.NativeEndian.Uint32(a.value))
			}
		case unix.IFA_CACHEINFO:
			if len(a.value) >= 8 {
				u.PreferedLft = int(binary.NativeEndian.Uint32(a.value))
				u.ValidLft = int(binary.NativeEndian.Uint32(a.value[4:]))
			}
		}
	}
	ip := peer
	if local != nil {
		ip = local
	}
	if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
		return u, fmt.Errorf("address notification: no address of 4 or 16 bytes (interface index %d)", msg.Index)
	}
	bits := 8 * len(ip)
	if int(msg.Prefixlen) > bits {
		return u, fmt.Errorf("address notification: prefix length %d for a %d-bit address", msg.Prefixlen, bits)
	}
	// As vishvananda's parseAddr: a local address has a full mask (the
	// prefix belongs to the peer) unless it is IPv4 and the same as
	// IFA_ADDRESS, the usual case.
	ones := int(msg.Prefixlen)
	if local != nil && (msg.Family != unix.AF_INET || peer == nil || !net.IP(local).Equal(net.IP(peer))) {
		ones = bits
	}
	u.LinkAddress = net.IPNet{IP: net.IP(ip), Mask: net.CIDRMask(ones, bits)}
	return u, nil
}
