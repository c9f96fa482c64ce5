package watch

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// nftGen reads the nftables ruleset generation: the kernel counts every
// committed change of the ruleset (nft, iptables-nft, firewalld on either
// backend through iptables-nft), so a watch re-reads the firewall only
// when the generation moved. One netlink round trip (NFT_MSG_GETGEN).
func nftGen(c *netlink.Conn) (uint32, error) {
	req := netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN),
			Flags: netlink.Request,
		},
		// struct nfgenmsg: family, version, resource id (big endian).
		Data: []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	}
	msgs, err := c.Execute(req)
	if err != nil {
		return 0, fmt.Errorf("nftables generation: %w", err)
	}
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return 0, fmt.Errorf("nftables generation: %w", err)
		}
		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			if ad.Type() == unix.NFTA_GEN_ID {
				return ad.Uint32(), nil
			}
		}
		if err := ad.Err(); err != nil {
			return 0, fmt.Errorf("nftables generation: %w", err)
		}
	}
	return 0, errors.New("nftables generation: no NFTA_GEN_ID in the kernel's answer")
}

// dialNetfilter opens a netfilter netlink socket in the calling thread's
// network namespace.
func dialNetfilter() (*netlink.Conn, error) {
	return netlink.Dial(unix.NETLINK_NETFILTER, nil)
}

// nftEvents follows the nftables notifications (NFNLGRP_NFTABLES) on a
// non-blocking netfilter netlink socket (a readWaiter ends a quiet window
// when something is queued): every
// committed ruleset change sends NFT_MSG_NEWGEN (and the changed objects)
// to it while the change is committed, so while nothing is queued when a
// window ends, the generation has not moved and need not be asked for.
type nftEvents struct {
	fd  int
	buf []byte
	w   *readWaiter
}

// openNftEvents subscribes in the calling thread's network namespace; poke
// (when not nil) is called when notifications are queued, once per call of
// moved.
func openNftEvents(poke func()) (*nftEvents, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, unix.NFNLGRP_NFTABLES); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &nftEvents{fd: fd, buf: make([]byte, 4<<10), w: newReadWaiter(fd, "nfnetlink", poke)}, nil
}

// moved drains the notifications queued and says whether there was any
// (or some were lost: the queue overflowed); err is a failure of the
// socket itself.
func (e *nftEvents) moved() (moved bool, err error) {
	moved = e.w.tookOverrun()
	for {
		_, _, err := unix.Recvfrom(e.fd, e.buf, unix.MSG_DONTWAIT)
		switch {
		case errors.Is(err, unix.EAGAIN):
			e.w.rearm()
			return moved, nil
		case errors.Is(err, unix.EINTR):
		case errors.Is(err, unix.ENOBUFS) || err == nil:
			moved = true // a message longer than buf is cut: it still tells
		default:
			return true, err
		}
	}
}

func (e *nftEvents) close() { e.w.close() }
