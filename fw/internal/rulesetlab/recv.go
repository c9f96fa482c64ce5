package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// recvResult is what `rulesetlab recv` prints: VRRP packets seen on the wire
// (AF_PACKET, before netfilter) and delivered to a protocol-112 raw socket
// joined to the group (after netfilter, what keepalived gets).
type recvResult struct {
	Wire   int `json:"wire"`
	Socket int `json:"socket"`
}

const protoVRRP = 112

// runRecv is the "recv" subcommand, run inside a lab namespace.
func runRecv(args []string) error {
	fs := flag.NewFlagSet("recv", flag.ContinueOnError)
	ifname := fs.String("i", "eth0", "interface")
	group := fs.String("g", "224.0.0.18", "multicast group to join")
	want := fs.Int("n", 3, "stop after this many packets on the wire")
	timeout := fs.Duration("t", 12*time.Second, "give up after")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ifi, err := net.InterfaceByName(*ifname)
	if err != nil {
		return err
	}
	grp, err := netip.ParseAddr(*group)
	if err != nil {
		return err
	}
	rawFD, err := rawSocket(grp, ifi.Index)
	if err != nil {
		return fmt.Errorf("raw socket: %w", err)
	}
	defer unix.Close(rawFD)
	pktFD, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return fmt.Errorf("packet socket: %w", err)
	}
	defer unix.Close(pktFD)
	if err := unix.Bind(pktFD, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		return fmt.Errorf("bind packet socket: %w", err)
	}
	fmt.Fprintln(os.Stderr, "ready")
	var res recvResult
	deadline := time.Now().Add(*timeout)
	var stopAt time.Time
	buf := make([]byte, 65536)
	for {
		now := time.Now()
		if now.After(deadline) || (!stopAt.IsZero() && now.After(stopAt)) {
			break
		}
		fds := []unix.PollFd{{Fd: int32(rawFD), Events: unix.POLLIN}, {Fd: int32(pktFD), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, 100); err != nil && err != unix.EINTR {
			return err
		}
		if fds[0].Revents&unix.POLLIN != 0 {
			if _, _, err := unix.Recvfrom(rawFD, buf, 0); err == nil {
				res.Socket++
			}
		}
		if fds[1].Revents&unix.POLLIN != 0 {
			n, from, err := unix.Recvfrom(pktFD, buf, 0)
			if err == nil && isVRRPFrame(buf[:n], from) {
				res.Wire++
				if res.Wire >= *want && stopAt.IsZero() {
					// Leave time for the last advert to reach the socket.
					stopAt = time.Now().Add(500 * time.Millisecond)
				}
			}
		}
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

func rawSocket(grp netip.Addr, ifindex int) (int, error) {
	if grp.Is4() {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, protoVRRP)
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
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW, protoVRRP)
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
		return len(b) >= 14+20 && b[14+9] == protoVRRP
	case unix.ETH_P_IPV6:
		return len(b) >= 14+40 && b[14+6] == protoVRRP
	}
	return false
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
