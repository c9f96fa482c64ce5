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

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// This file is the wire tap: an AF_PACKET socket on one interface, what
// tcpdump sees. It does not use gopacket/pcapgo's EthernetHandle, which
// (v1.1.19) drops the packet type (so incoming and outgoing frames look
// alike), leaves the VLAN tag the kernel took out of the frame in a side
// field, binds before the filter is attached (letting unfiltered frames in),
// reads with one blocking system call per packet that Close cannot
// interrupt, and queues every packet as a socket buffer (about 2 KiB of
// receive buffer each on a veth pair). This tap attaches the filter before
// binding and receives through a TPACKET_V3 ring shared with the kernel, as
// libpcap does: the kernel copies each packet into the ring at receive time
// with its timestamp, direction and VLAN tag, the ring holds some 30 times
// more VRRP packets than a socket buffer of the same size, and the reader
// takes a whole block of packets per wake-up through the Go runtime's
// poller (so Close and deadlines end a pending read). VLAN tags the kernel
// took out of the frame are put back in place, in room reserved before each
// frame (PACKET_RESERVE), as libpcap does.

// Defaults of WireOptions.
const (
	DefaultSnapLen    = 262144  // tcpdump's default
	DefaultWireBuffer = 8 << 20 // ring size, bytes
)

// Ring geometry: blocks of ringBlockSize bytes (smaller for small rings,
// see ringGeometry), retired to the reader when full or ringBlockTimeout
// after their first packet.
const (
	ringBlockSize    = 256 << 10
	ringMinBlockSize = 32 << 10 // holds a 9000-byte jumbo frame with room to spare
	ringBlockTimeout = 10       // ms
	ringMinBlocks    = 4
	vlanTagLen       = 4
)

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
	// BufferSize is the size of the ring the kernel fills, in bytes
	// (rounded up to whole blocks of 256 KiB, or of 32 to 128 KiB for rings
	// under 1 MiB; at least 128 KiB); default DefaultWireBuffer. The ring
	// stays resident while the tap is open. At about 150 bytes per VRRP
	// packet in the ring, 8 MiB hold some 55,000 packets. A frame longer
	// than a block (a jumbo frame beyond 32 KiB) is cut to fit.
	BufferSize int
	// IncomingOnly keeps the frames this host sends out of the tap: the
	// socket asks the kernel to skip it for them (PACKET_IGNORE_OUTGOING,
	// Linux 4.20), so sending an advert costs no copy and no filter run for
	// the tap, and the kernel filter refuses them too (packet type
	// PACKET_OUTGOING) on kernels without that option. For a VRRP speaker
	// that knows its own adverts (and counts them on the wire with an
	// OutCounter).
	IncomingOnly bool
}

// WireFrame is one frame read by a wire tap.
type WireFrame struct {
	// Time is the kernel's timestamp of the frame (when it was received,
	// or handed to the driver for sending).
	Time      time.Time
	Direction Direction
	// Data is the captured frame, with an 802.1Q tag the kernel had taken
	// out put back in. It points into the ring and is valid until the next
	// call to Next or Close.
	Data []byte
	// Length is the frame's length on the wire (Data may be shorter).
	Length int
}

// WireStats are a wire tap's kernel counters since it opened.
type WireStats struct {
	// Received counts frames that passed the filter, Dropped included.
	Received uint64
	// Dropped counts frames the kernel dropped because the tap's ring was
	// full (the reader fell behind).
	Dropped uint64
}

// WireTap captures the VRRP frames of one interface with an AF_PACKET
// socket. Next must not be called concurrently; Stats and Close may be
// called from any goroutine.
type WireTap struct {
	iface    string
	ifindex  int
	linkType LinkType
	file     *os.File
	rc       syscall.RawConn
	snaplen  int

	ringMu    sync.Mutex // held while the ring is read; Close unmaps under it
	ring      []byte     // the mmap'ed ring
	blocks    int
	blockSize int
	block     int    // index of the block being read
	left      uint32 // packets left to read in it (when held)
	held      bool   // the block is the reader's; hand it back before the next
	next      int    // offset in the ring of the next packet header

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
	lt := LinkTypeEthernet
	cooked := false
	if hwtype != unix.ARPHRD_ETHER && hwtype != unix.ARPHRD_LOOPBACK {
		// No Ethernet header to parse: take packets from the network
		// header on.
		unix.Close(fd)
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0); err != nil {
			return nil, socketError("open AF_PACKET socket", err)
		}
		lt, cooked = LinkTypeRaw, true
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
	dir := dirAny
	if o.IncomingOnly {
		dir = dirNotOutgoing
	}
	prog, err := wireFilter(cooked, o.Peers, uint32(o.SnapLen), dir, 0)
	if err != nil {
		return nil, err
	}
	if err := attachFilter(fd, prog); err != nil {
		return nil, fmt.Errorf("capture: attach the VRRP filter on %s: %w", iface, err)
	}
	if o.IncomingOnly {
		// Older kernels lack the option (ENOPROTOOPT): the filter refuses
		// the outgoing frames there, at the cost of a run per frame sent.
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil && !errors.Is(err, unix.ENOPROTOOPT) {
			return nil, fmt.Errorf("capture: ignore outgoing frames on %s: %w", iface, err)
		}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return nil, fmt.Errorf("capture: TPACKET_V3 on %s: %w", iface, err)
	}
	if !cooked {
		// Room in front of each frame to put a VLAN tag back.
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_RESERVE, vlanTagLen); err != nil {
			return nil, fmt.Errorf("capture: PACKET_RESERVE on %s: %w", iface, err)
		}
	}
	blockSize, blocks := ringGeometry(o.BufferSize)
	req := unix.TpacketReq3{
		Block_size: uint32(blockSize), Block_nr: uint32(blocks),
		Frame_size: uint32(blockSize), Frame_nr: uint32(blocks),
		Retire_blk_tov: ringBlockTimeout,
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, fmt.Errorf("capture: %d KiB packet ring on %s: %w", blocks*blockSize>>10, iface, err)
	}
	ring, err := unix.Mmap(fd, 0, blocks*blockSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("capture: map the packet ring of %s: %w", iface, err)
	}
	fail := func(err error) (*WireTap, error) {
		unix.Munmap(ring)
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return fail(fmt.Errorf("capture: bind AF_PACKET socket to %s: %w", iface, err))
	}
	if o.Promiscuous {
		mreq := unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			return fail(fmt.Errorf("capture: promiscuous mode on %s: %w", iface, err))
		}
	}
	// Reset the counters: nothing before bind counts.
	if _, err := unix.GetsockoptTpacketStatsV3(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err != nil {
		return fail(fmt.Errorf("capture: PACKET_STATISTICS on %s: %w", iface, err))
	}
	file := os.NewFile(uintptr(fd), "packet:"+iface)
	rc, err := file.SyscallConn()
	if err != nil {
		unix.Munmap(ring)
		file.Close()
		return nil, err
	}
	return &WireTap{
		iface:     iface,
		ifindex:   ifindex,
		file:      file,
		rc:        rc,
		snaplen:   o.SnapLen,
		ring:      ring,
		blocks:    blocks,
		blockSize: blockSize,
	}, nil
}

// attachFilter attaches a classic BPF program to the socket fd.
func attachFilter(fd int, prog []bpf.RawInstruction) error {
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
		&unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]})
}

// ringGeometry divides a ring of about bufferSize bytes into at least
// ringMinBlocks blocks of a power of two from ringMinBlockSize to
// ringBlockSize bytes: small rings (a daemon's long-running tap, whose
// ring pages stay resident) get small blocks rather than 1 MiB.
func ringGeometry(bufferSize int) (blockSize, blocks int) {
	blockSize = ringBlockSize
	for blockSize > ringMinBlockSize && blockSize*ringMinBlocks > bufferSize {
		blockSize /= 2
	}
	return blockSize, max(ringMinBlocks, (bufferSize+blockSize-1)/blockSize)
}

// Interface is the name of the tapped interface.
func (t *WireTap) Interface() string { return t.iface }

// LinkType is the link type of the frames: Ethernet, or raw IP on
// interfaces without an Ethernet header.
func (t *WireTap) LinkType() LinkType { return t.linkType }

// SnapLen is the most bytes kept per frame.
func (t *WireTap) SnapLen() int { return t.snaplen }

// SetReadDeadline makes a pending or later Next return an error wrapping
// os.ErrDeadlineExceeded once tm has passed; the zero time means none.
func (t *WireTap) SetReadDeadline(tm time.Time) error { return t.file.SetReadDeadline(tm) }

// Offsets in the ring (linux/if_packet.h): a block starts with struct
// tpacket_block_desc, whose tpacket_hdr_v1 begins at byte 8; a packet
// starts with struct tpacket3_hdr, followed by its struct sockaddr_ll at
// TPACKET_ALIGN(sizeof(struct tpacket3_hdr)).
const (
	blockStatusOff = 8
	blockNumPktOff = 12
	blockFirstOff  = 16
	tp3HdrLen      = 48
	sllPkttypeOff  = tp3HdrLen + 10
)

func (t *WireTap) blockStatus(i int) *uint32 {
	return (*uint32)(unsafe.Pointer(&t.ring[i*t.blockSize+blockStatusOff]))
}

// Next reads the next frame into f, waiting for one. After Close it
// returns ErrClosed.
func (t *WireTap) Next(f *WireFrame) error {
	t.ringMu.Lock()
	defer t.ringMu.Unlock()
	if t.closed.Load() {
		return ErrClosed
	}
	for !t.held || t.left == 0 {
		if t.held {
			// Hand the block read to the end back to the kernel.
			atomic.StoreUint32(t.blockStatus(t.block), unix.TP_STATUS_KERNEL)
			t.held = false
			t.block = (t.block + 1) % t.blocks
		}
		err := t.rc.Read(func(uintptr) bool {
			return atomic.LoadUint32(t.blockStatus(t.block))&unix.TP_STATUS_USER != 0
		})
		if err != nil {
			if t.closed.Load() {
				return ErrClosed
			}
			return fmt.Errorf("capture: read from %s: %w", t.iface, err)
		}
		base := t.block * t.blockSize
		t.held = true
		t.left = binary.NativeEndian.Uint32(t.ring[base+blockNumPktOff:])
		t.next = base + int(binary.NativeEndian.Uint32(t.ring[base+blockFirstOff:]))
	}
	off := t.next
	h := (*unix.Tpacket3Hdr)(unsafe.Pointer(&t.ring[off]))
	t.left--
	t.next = off + int(h.Next_offset)

	f.Time = time.Unix(int64(h.Sec), int64(h.Nsec))
	f.Length = int(h.Len)
	f.Direction = DirIn
	if t.ring[off+sllPkttypeOff] == unix.PACKET_OUTGOING {
		f.Direction = DirOut
	}
	start := off + int(h.Mac)
	n := int(h.Snaplen)
	if h.Status&unix.TP_STATUS_VLAN_VALID != 0 && t.linkType == LinkTypeEthernet && n >= 12 {
		tpid := uint16(etherTypeDot1Q)
		if h.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 && h.Hv1.Vlan_tpid != 0 {
			tpid = h.Hv1.Vlan_tpid
		}
		// Move the MAC addresses into the reserved room in front and
		// put the tag between them and the EtherType, as on the wire.
		copy(t.ring[start-vlanTagLen:], t.ring[start:start+12])
		start -= vlanTagLen
		binary.BigEndian.PutUint16(t.ring[start+12:], tpid)
		binary.BigEndian.PutUint16(t.ring[start+14:], uint16(h.Hv1.Vlan_tci))
		n += vlanTagLen
		f.Length += vlanTagLen
		n = min(n, t.snaplen)
	}
	f.Data = t.ring[start : start+n : start+n]
	return nil
}

// Stats returns the kernel's counters for the tap since it opened.
func (t *WireTap) Stats() (WireStats, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var st *unix.TpacketStatsV3
	var serr error
	err := t.rc.Control(func(fd uintptr) {
		st, serr = unix.GetsockoptTpacketStatsV3(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS)
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

// Close closes the tap; a pending Next returns ErrClosed. Frames read
// before are no longer valid.
func (t *WireTap) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	err := t.file.Close()
	t.ringMu.Lock()
	defer t.ringMu.Unlock()
	if merr := unix.Munmap(t.ring); err == nil {
		err = merr
	}
	t.ring = nil
	return err
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
