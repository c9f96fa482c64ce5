package capture

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"
)

// This file is the wire tap: an AF_PACKET socket on one interface, what
// tcpdump sees. It does not use gopacket/pcapgo's EthernetHandle, which
// (v1.1.19) drops the packet type (so incoming and outgoing frames look
// alike), leaves the VLAN tag the kernel took out of the frame in a side
// field, binds before the filter is attached (letting unfiltered frames in)
// and reads with a blocking system call that Close cannot interrupt. This
// tap attaches the filter before binding, reads through the Go runtime's
// poller (so Close and deadlines end a pending read), reports the direction
// from sll_pkttype, puts VLAN tags back into the frame as libpcap does, and
// takes kernel timestamps (SO_TIMESTAMPNS).

// Defaults of WireOptions.
const (
	DefaultSnapLen    = 262144  // tcpdump's default
	DefaultWireBuffer = 8 << 20 // kernel receive buffer, bytes
)

// frameBufSize bounds the bytes read per frame; VRRP adverts are far
// smaller, and MSG_TRUNC still reports the full length.
const frameBufSize = 65536

// ErrClosed is returned by the taps' read methods after Close.
var ErrClosed = errors.New("capture: tap closed")

// WireOptions configure a wire tap. The zero value is usable.
type WireOptions struct {
	// Promiscuous puts the interface in promiscuous mode for as long as the
	// tap is open. Off by default: VRRP multicast reaches the host anyway,
	// and unicast VRRP to other hosts is not what this host's daemon sees.
	Promiscuous bool
	// Peers, when set, restrict the tap to VRRP packets from or to these
	// addresses (unicast VRRP peers); at most MaxFilterPeers.
	Peers []netip.Addr
	// SnapLen is the most bytes kept per frame; default DefaultSnapLen.
	SnapLen int
	// BufferSize is the kernel receive buffer in bytes; default
	// DefaultWireBuffer. It is forced past the system limit when the
	// process may (CAP_NET_ADMIN).
	BufferSize int
}

// WireFrame is one frame read by a wire tap.
type WireFrame struct {
	// Time is the kernel's timestamp of the frame (when it was received,
	// or handed to the driver for sending).
	Time      time.Time
	Direction Direction
	// Data is the captured frame, with an 802.1Q tag the kernel had taken
	// out put back in. It is valid until the next call to Next.
	Data []byte
	// Length is the frame's length on the wire (Data may be shorter).
	Length int
}

// WireStats are a wire tap's kernel counters since it opened.
type WireStats struct {
	// Received counts frames that passed the filter, Dropped included.
	Received uint64
	// Dropped counts frames the kernel dropped because the tap's receive
	// buffer was full (the reader fell behind).
	Dropped uint64
}

// WireTap captures the VRRP frames of one interface with an AF_PACKET
// socket. Next must not be called concurrently; Stats and Close may be
// called from any goroutine.
type WireTap struct {
	iface    string
	ifindex  int
	linkType layers.LinkType
	file     *os.File
	rc       syscall.RawConn
	snaplen  int
	buf      []byte
	oob      []byte

	closed atomic.Bool
	mu     sync.Mutex
	stats  WireStats
}

// OpenWire opens a wire tap on the interface named iface, in the network
// namespace of the calling thread. It needs CAP_NET_RAW; without it the
// error wraps os.ErrPermission.
func OpenWire(iface string, o WireOptions) (*WireTap, error) {
	if o.SnapLen <= 0 {
		o.SnapLen = DefaultSnapLen
	}
	if o.BufferSize <= 0 {
		o.BufferSize = DefaultWireBuffer
	}
	// Protocol 0 receives nothing until bind, so no frame gets in before
	// the filter is attached.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, socketError("open AF_PACKET socket", err)
	}
	ifindex, hwtype, err := ifaceInfo(fd, iface)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	lt := layers.LinkTypeEthernet
	cooked := false
	if hwtype != unix.ARPHRD_ETHER && hwtype != unix.ARPHRD_LOOPBACK {
		// No Ethernet header to parse: take packets from the network
		// header on.
		unix.Close(fd)
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0); err != nil {
			return nil, socketError("open AF_PACKET socket", err)
		}
		lt, cooked = layers.LinkTypeRaw, true
	}
	t, err := setupWire(fd, iface, ifindex, cooked, o)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	t.linkType = lt
	return t, nil
}

func setupWire(fd int, iface string, ifindex int, cooked bool, o WireOptions) (*WireTap, error) {
	prog, err := wireFilter(cooked, o.Peers, uint32(o.SnapLen))
	if err != nil {
		return nil, err
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
		&unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}); err != nil {
		return nil, fmt.Errorf("capture: attach the VRRP filter on %s: %w", iface, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, o.BufferSize); err != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, o.BufferSize); err != nil {
			return nil, fmt.Errorf("capture: set receive buffer on %s: %w", iface, err)
		}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
		return nil, fmt.Errorf("capture: PACKET_AUXDATA on %s: %w", iface, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return nil, fmt.Errorf("capture: SO_TIMESTAMPNS on %s: %w", iface, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return nil, fmt.Errorf("capture: bind AF_PACKET socket to %s: %w", iface, err)
	}
	if o.Promiscuous {
		mreq := unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			return nil, fmt.Errorf("capture: promiscuous mode on %s: %w", iface, err)
		}
	}
	// Reset the counters: nothing before bind counts.
	if _, err := unix.GetsockoptTpacketStats(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err != nil {
		return nil, fmt.Errorf("capture: PACKET_STATISTICS on %s: %w", iface, err)
	}
	file := os.NewFile(uintptr(fd), "packet:"+iface)
	rc, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, err
	}
	return &WireTap{
		iface:   iface,
		ifindex: ifindex,
		file:    file,
		rc:      rc,
		snaplen: o.SnapLen,
		buf:     make([]byte, frameBufSize+4),
		oob:     make([]byte, unix.CmsgSpace(int(unsafe.Sizeof(unix.TpacketAuxdata{})))+unix.CmsgSpace(int(unsafe.Sizeof(unix.Timespec{})))+64),
	}, nil
}

// Interface is the name of the tapped interface.
func (t *WireTap) Interface() string { return t.iface }

// LinkType is the link type of the frames: Ethernet, or raw IP on
// interfaces without an Ethernet header.
func (t *WireTap) LinkType() layers.LinkType { return t.linkType }

// SnapLen is the most bytes kept per frame.
func (t *WireTap) SnapLen() int { return t.snaplen }

// SetReadDeadline makes a pending or later Next return an error wrapping
// os.ErrDeadlineExceeded once tm has passed; the zero time means none.
func (t *WireTap) SetReadDeadline(tm time.Time) error { return t.file.SetReadDeadline(tm) }

// Next reads the next frame into f, waiting for one. After Close it
// returns ErrClosed.
func (t *WireTap) Next(f *WireFrame) error {
	var (
		n, oobn int
		sa      unix.RawSockaddrLinklayer
		errno   syscall.Errno
	)
	data := t.buf[4:] // room to put a VLAN tag back in front
	err := t.rc.Read(func(fd uintptr) bool {
		n, oobn, errno = recvmsg(fd, data, t.oob, unsafe.Pointer(&sa), unsafe.Sizeof(sa), unix.MSG_TRUNC)
		return errno != unix.EAGAIN
	})
	if err != nil {
		if t.closed.Load() {
			return ErrClosed
		}
		return fmt.Errorf("capture: read from %s: %w", t.iface, err)
	}
	if errno != 0 {
		return fmt.Errorf("capture: read from %s: %w", t.iface, errno)
	}
	f.Length = n
	if n > len(data) {
		n = len(data)
	}
	if n > t.snaplen {
		n = t.snaplen
	}
	f.Direction = DirIn
	if sa.Pkttype == unix.PACKET_OUTGOING {
		f.Direction = DirOut
	}
	f.Time = time.Time{}
	var aux *unix.TpacketAuxdata
	walkCmsgs(t.oob[:oobn], func(level, typ int32, b []byte) {
		switch {
		case level == unix.SOL_PACKET && typ == unix.PACKET_AUXDATA && len(b) >= int(unsafe.Sizeof(unix.TpacketAuxdata{})):
			aux = (*unix.TpacketAuxdata)(unsafe.Pointer(&b[0]))
		case level == unix.SOL_SOCKET && typ == unix.SCM_TIMESTAMPNS && len(b) >= int(unsafe.Sizeof(unix.Timespec{})):
			ts := (*unix.Timespec)(unsafe.Pointer(&b[0]))
			f.Time = time.Unix(int64(ts.Sec), int64(ts.Nsec))
		}
	})
	if f.Time.IsZero() {
		f.Time = time.Now()
	}
	f.Data = data[:n]
	if aux != nil {
		f.Length = int(aux.Len)
		if aux.Status&unix.TP_STATUS_VLAN_VALID != 0 && t.linkType == layers.LinkTypeEthernet && n >= 12 {
			tpid := uint16(etherTypeDot1Q)
			if aux.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 && aux.Vlan_tpid != 0 {
				tpid = aux.Vlan_tpid
			}
			// Move the MAC addresses 4 bytes forward and put the tag
			// between them and the EtherType, as it was on the wire.
			copy(t.buf[0:12], data[0:12])
			t.buf[12], t.buf[13] = byte(tpid>>8), byte(tpid)
			t.buf[14], t.buf[15] = byte(aux.Vlan_tci>>8), byte(aux.Vlan_tci)
			f.Length += 4
			if n += 4; n > t.snaplen {
				n = t.snaplen
			}
			f.Data = t.buf[:n]
		}
	}
	return nil
}

// Stats returns the kernel's counters for the tap since it opened.
func (t *WireTap) Stats() (WireStats, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var st *unix.TpacketStats
	var serr error
	err := t.rc.Control(func(fd uintptr) {
		st, serr = unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return t.stats, fmt.Errorf("capture: statistics of %s: %w", t.iface, err)
	}
	// The kernel resets its counters on every read.
	t.stats.Received += uint64(st.Packets)
	t.stats.Dropped += uint64(st.Drops)
	return t.stats, nil
}

// Close closes the tap; a pending Next returns ErrClosed.
func (t *WireTap) Close() error {
	t.closed.Store(true)
	if err := t.file.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	}
	return nil
}

// ifaceInfo returns the index and ARPHRD hardware type of an interface,
// asked through fd (any socket).
func ifaceInfo(fd int, iface string) (index int, hwtype uint16, err error) {
	ifr, err := unix.NewIfreq(iface)
	if err != nil {
		return 0, 0, fmt.Errorf("capture: interface %q: %w", iface, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, 0, fmt.Errorf("capture: interface %q: %w", iface, noSuchIface(err))
	}
	index = int(ifr.Uint32())
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFHWADDR, ifr); err != nil {
		return 0, 0, fmt.Errorf("capture: hardware type of %q: %w", iface, err)
	}
	return index, ifr.Uint16(), nil
}

func noSuchIface(err error) error {
	if errors.Is(err, unix.ENODEV) {
		return errors.New("no such interface")
	}
	return err
}

// socketError explains a failure to open a socket; a permission error says
// which capability is missing.
func socketError(what string, err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return &PermissionError{Op: what, Err: err}
	}
	return fmt.Errorf("capture: %s: %w", what, err)
}

// PermissionError says that a tap could not open its socket for lack of
// privilege.
type PermissionError struct {
	Op  string // what was refused
	Err error
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("capture: %s: %v: CAP_NET_RAW is needed (run as root, or grant it with: setcap cap_net_raw+ep <binary>)", e.Op, e.Err)
}

func (e *PermissionError) Unwrap() error { return os.ErrPermission }

func htons(v uint16) uint16 { return v<<8 | v>>8 }

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
