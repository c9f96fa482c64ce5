package announce

import (
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Sender sends announcements on one Ethernet interface. It is safe for
// concurrent use.
type Sender struct {
	ifi *net.Interface
	fd  int
}

// Open returns a Sender for the named interface. It needs CAP_NET_RAW.
// Interfaces without an Ethernet address (loopback, tun, ...) are refused.
func Open(ifname string) (*Sender, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("announce: %w", err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("announce: interface %s has no Ethernet address", ifname)
	}
	// Protocol 0: the socket sends but never receives.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("announce: AF_PACKET socket for %s: %w", ifname, err)
	}
	return &Sender{ifi: ifi, fd: fd}, nil
}

// Interface returns the interface the Sender sends on.
func (s *Sender) Interface() *net.Interface { return s.ifi }

// Announce sends one announcement for ip: a gratuitous ARP for IPv4, an
// unsolicited Neighbor Advertisement with the Router flag for IPv6.
func (s *Sender) Announce(ip netip.Addr) error {
	var (
		frame []byte
		err   error
		proto uint16
		dst   net.HardwareAddr
	)
	if ip.Is4() || ip.Is4In6() {
		frame, err = GratuitousARP(s.ifi.HardwareAddr, ip.Unmap())
		proto, dst = unix.ETH_P_ARP, broadcastMAC
	} else {
		frame, err = UnsolicitedNA(s.ifi.HardwareAddr, ip, true)
		proto, dst = unix.ETH_P_IPV6, allNodesMAC
	}
	if err != nil {
		return err
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: s.ifi.Index, Halen: 6}
	copy(sa.Addr[:], dst)
	if err := unix.Sendto(s.fd, frame, 0, sa); err != nil {
		return fmt.Errorf("announce %v on %s: %w", ip, s.ifi.Name, err)
	}
	return nil
}

// Close releases the socket.
func (s *Sender) Close() error { return unix.Close(s.fd) }

func htons(v uint16) uint16 { return v<<8 | v>>8 }
