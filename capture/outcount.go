package capture

import (
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// OutCounter counts the VRRP adverts of one address family this host sent
// out of one interface, as the device took them (where a wire tap sees
// them: after the netdev egress hook and the traffic control's egress, so
// that adverts they drop are not counted), without reading them.
//
// It is an AF_PACKET socket whose kernel filter passes only outgoing VRRP
// of the family, with the smallest receive buffer the kernel allows. It is
// never read and never waited on, so no advert wakes anything: the kernel
// queues the first few and drops the rest, and counts both
// (PACKET_STATISTICS' tp_packets, which includes tp_drops and is reset on
// every reading). While it counts, the kernel copies every frame the host
// sends out of the interface for it (its filter then drops all but the
// adverts), which costs tens of microseconds a frame on a small machine:
// Pause spares that while it is not needed, and Resume counts again.
// Count, Pause, Resume and Close may be called from any goroutine.
type OutCounter struct {
	iface  string
	family uint8
	mu     sync.Mutex
	fd     int // -1 once closed
}

// outCounterBuffer is the receive buffer asked for; the kernel raises it to
// its minimum (SOCK_MIN_RCVBUF, a couple of frames).
const outCounterBuffer = 1

// OpenOutCounter opens a counter of the outgoing VRRP adverts of family (4
// or 6) on the interface named iface, in the network namespace of the
// calling thread. It needs CAP_NET_RAW; without it the error wraps
// os.ErrPermission.
func OpenOutCounter(iface string, family uint8) (*OutCounter, error) {
	if family != 4 && family != 6 {
		return nil, fmt.Errorf("capture: address family %d for an advert counter", family)
	}
	// Protocol 0 receives nothing until bind, so no frame gets in before
	// the filter is attached. Blocking: it is never read.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, socketError("open AF_PACKET socket", err)
	}
	c, err := setupOutCounter(fd, iface, family)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return c, nil
}

func setupOutCounter(fd int, iface string, family uint8) (*OutCounter, error) {
	ifindex, hwtype, err := ifaceInfo(fd, iface)
	if err != nil {
		return nil, err
	}
	if hwtype != unix.ARPHRD_ETHER && hwtype != unix.ARPHRD_LOOPBACK {
		// The frames of SOCK_RAW start with the link's own header:
		// parse them from the network header on.
		nfd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, socketError("open AF_PACKET socket", err)
		}
		unix.Close(fd)
		c, err := setupCounterSocket(nfd, iface, ifindex, true, family)
		if err != nil {
			unix.Close(nfd)
		}
		return c, err
	}
	return setupCounterSocket(fd, iface, ifindex, false, family)
}

func setupCounterSocket(fd int, iface string, ifindex int, cooked bool, family uint8) (*OutCounter, error) {
	prog, err := wireFilter(cooked, nil, 1, dirOutgoingOnly, family)
	if err != nil {
		return nil, err
	}
	if err := attachFilter(fd, prog); err != nil {
		return nil, fmt.Errorf("capture: attach the advert counter's filter on %s: %w", iface, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, outCounterBuffer); err != nil {
		return nil, fmt.Errorf("capture: receive buffer of the advert counter on %s: %w", iface, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return nil, fmt.Errorf("capture: bind AF_PACKET socket to %s: %w", iface, err)
	}
	c := &OutCounter{iface: iface, family: family, fd: fd}
	// Nothing before bind counts.
	if err := c.reset(); err != nil {
		return nil, err
	}
	return c, nil
}

// reset resets the statistics. Called with mu held or before c is shared.
func (c *OutCounter) reset() error {
	if _, err := c.stats(); err != nil {
		return fmt.Errorf("capture: PACKET_STATISTICS on %s: %w", c.iface, err)
	}
	return nil
}

// stats reads (and so resets) the statistics. Like the other socket
// options of Count, Pause and Resume it is a raw system call, which the
// Go scheduler does not see: these calls never block, and a scheduled one
// would wake the runtime's sysmon thread from its sleep. Called with mu
// held or before c is shared.
func (c *OutCounter) stats() (unix.TpacketStats, error) {
	var st unix.TpacketStats
	n := uint32(unsafe.Sizeof(st))
	_, _, errno := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(c.fd), unix.SOL_PACKET, unix.PACKET_STATISTICS,
		uintptr(unsafe.Pointer(&st)), uintptr(unsafe.Pointer(&n)), 0)
	if errno != 0 {
		return st, errno
	}
	return st, nil
}

// Pause stops counting: the kernel skips the counter for the frames the
// host sends (PACKET_IGNORE_OUTGOING, checked before the copy). The next
// Count after Resume counts from the Resume. On kernels before 4.20, which
// lack the option, the counter keeps counting (and costing) until Resume
// resets it.
func (c *OutCounter) Pause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ignoreOutgoing(1)
}

// Resume counts again, from zero, after Pause; on a counter that counts
// it only resets the count.
func (c *OutCounter) Resume() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.ignoreOutgoing(0); err != nil {
		return err
	}
	return c.reset()
}

// ignoreOutgoing sets PACKET_IGNORE_OUTGOING. Called with mu held.
func (c *OutCounter) ignoreOutgoing(v int) error {
	if c.fd < 0 {
		return ErrClosed
	}
	v32 := int32(v)
	_, _, errno := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(c.fd), unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING,
		uintptr(unsafe.Pointer(&v32)), unsafe.Sizeof(v32), 0)
	if errno != 0 && errno != unix.ENOPROTOOPT {
		return fmt.Errorf("capture: PACKET_IGNORE_OUTGOING on the advert counter on %s: %w", c.iface, errno)
	}
	return nil
}

// Interface is the name of the interface counted.
func (c *OutCounter) Interface() string { return c.iface }

// Family is the address family counted, 4 or 6.
func (c *OutCounter) Family() uint8 { return c.family }

// Count returns the number of adverts sent since the last Count (since
// the counter opened, the first time).
func (c *OutCounter) Count() (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return 0, ErrClosed
	}
	st, err := c.stats()
	if err != nil {
		return 0, fmt.Errorf("capture: statistics of the advert counter on %s: %w", c.iface, err)
	}
	// tp_packets counts the frames the filter passed, those dropped for
	// want of room included.
	return uint64(st.Packets), nil
}

// Close closes the counter.
func (c *OutCounter) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return nil
	}
	err := unix.Close(c.fd)
	c.fd = -1
	return err
}
