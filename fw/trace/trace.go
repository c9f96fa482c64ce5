// Package trace asks the kernel itself what nftables does with VRRP
// packets: it adds a small table of its own whose chains set nftrace on
// IP protocol 112 before any other chain sees the packet, listens to the
// kernel's trace events (NFNLGRP_NFTRACE, NFT_MSG_TRACE) over netlink with
// github.com/mdlayher/netlink, and groups them into packets with the
// kernel's verdict and the rule that gave it.
//
// The table is `inet vrrpdoctor_trace` (chains prerouting and output at
// priority -350, below raw), plus `netdev vrrpdoctor_trace` with an ingress
// chain per device asked for. Close removes both; a table left by a process
// that died without Close (SIGKILL, power loss) is removed by the next
// Start, which tells it from a running trace by the owner's PID and start
// time kept in the rules' comment.
//
// iptables-legacy tables (x_tables) are not nftables: their rules never
// appear in a trace, and a packet every nftables chain accepted may still be
// dropped there.
package trace

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	vnl "github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// TableName is the name of the tracer's tables (families inet and netdev).
const TableName = "vrrpdoctor_trace"

// Priority is where the tracer's prerouting and output chains hook: below
// raw (-300) and conntrack (-200), so that every usual chain is traced.
const Priority = -350

// ingressPriority is the priority of the netdev ingress chains.
const ingressPriority = -500

const (
	chainPrerouting = "prerouting"
	chainOutput     = "output"
	chainIngress    = "ingress"
)

// Options for Start.
type Options struct {
	// NetNS is an open file descriptor of the network namespace to trace
	// in; 0 is the current one.
	NetNS int
	// IngressDevices are interfaces to trace from netdev ingress on, so
	// that ingress chains show too. Packets arriving elsewhere are traced
	// from prerouting, and so are those of devices that do not exist.
	IngressDevices []string
	// Quiet is how long a packet without a final verdict must stay silent
	// to count as through; 0 means 200ms.
	Quiet time.Duration
}

// Tracer is a running trace.
type Tracer struct {
	opts     Options
	conn     *netlink.Conn
	events   chan timedEvent
	asm      *assembler
	ready    []*Packet
	closed   sync.Once
	closeErr error
	links    *vnl.Handle
	lost     atomic.Int64
	// inflight is set while read holds messages not yet queued.
	inflight atomic.Bool
	// unreadFn is unread (a test replaces it).
	unreadFn func() bool
}

type timedEvent struct {
	e Event
	t time.Time
}

// ErrBusy is returned by Start when another live process traces in the
// same network namespace.
var ErrBusy = errors.New("another vrrpdoctor trace runs in this network namespace")

// Start subscribes to the kernel's trace events and adds the tracer's
// tables. The caller must Close the Tracer, which removes them.
func Start(opts Options) (*Tracer, error) {
	if opts.Quiet == 0 {
		opts.Quiet = 200 * time.Millisecond
	}
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: opts.NetNS})
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	// Subscribe first: the kernel sends trace events only while someone
	// listens, and none must be missed once the table is in place.
	if err := conn.JoinGroup(unix.NFNLGRP_NFTRACE); err != nil {
		conn.Close()
		return nil, fmt.Errorf("netlink: join the nftables trace group: %w", err)
	}
	bigBuffer(conn)
	var links *vnl.Handle
	if opts.NetNS != 0 {
		links, err = vnl.NewHandleAt(netns.NsHandle(opts.NetNS))
	} else {
		links, err = vnl.NewHandle()
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("rtnetlink: %w", err)
	}
	ingress := map[uint32]bool{}
	var devices []string
	for _, d := range opts.IngressDevices {
		l, err := links.LinkByName(d)
		if err != nil {
			continue // traced from prerouting, if it ever appears
		}
		ingress[uint32(l.Attrs().Index)] = true
		devices = append(devices, d)
	}
	opts.IngressDevices = devices
	t := &Tracer{opts: opts, conn: conn, events: make(chan timedEvent, 1024), links: links}
	t.unreadFn = t.unread
	t.asm = newAssembler(TableName, ingress, opts.Quiet, t.ifname)
	if err := install(opts); err != nil {
		conn.Close()
		links.Close()
		return nil, err
	}
	go t.read()
	return t, nil
}

func (t *Tracer) ifname(idx uint32) string {
	l, err := t.links.LinkByIndex(int(idx))
	if err != nil {
		return ""
	}
	return l.Attrs().Name
}

// read receives trace messages until the socket is closed.
func (t *Tracer) read() {
	defer close(t.events)
	for {
		msgs, err := t.conn.Receive()
		t.inflight.Store(true)
		if err != nil {
			t.inflight.Store(false)
			if errors.Is(err, unix.ENOBUFS) {
				t.lost.Add(1) // the kernel dropped messages: socket buffer full
				continue
			}
			return // closed
		}
		now := time.Now()
		for _, m := range msgs {
			if m.Header.Type != netlink.HeaderType(msgTrace) {
				continue
			}
			e, err := DecodeEvent(m.Data)
			if err != nil {
				t.lost.Add(1)
				continue
			}
			t.events <- timedEvent{e, now}
		}
		t.inflight.Store(false)
	}
}

// Next returns the next packet whose trace is complete: at once when a
// rule or policy dropped it, otherwise once its events have stopped for the
// quiet time. It returns ctx's error when ctx ends first.
func (t *Tracer) Next(ctx context.Context) (*Packet, error) {
	for len(t.ready) == 0 {
		if err := t.wait(ctx); err != nil {
			return nil, err
		}
	}
	p := t.ready[0]
	t.ready = t.ready[1:]
	return p, nil
}

// wait takes the events read so far, completes the packets that fell
// quiet, or else waits for more.
func (t *Tracer) wait(ctx context.Context) error {
	// Every event already read goes in first: silence is judged only
	// once they are in.
	for drained := false; !drained; {
		select {
		case te, ok := <-t.events:
			if !ok {
				return t.drainClosed()
			}
			t.ready = append(t.ready, t.asm.add(te.e, te.t)...)
		default:
			drained = true
		}
	}
	if len(t.ready) > 0 {
		return nil
	}
	var timer <-chan time.Time
	if d, ok := t.asm.deadline(); ok {
		delay := time.Until(d)
		if delay <= 0 {
			// A starved reader must not make a packet whose drop still
			// waits in the socket look accepted.
			if !t.inflight.Load() && !t.unreadFn() {
				t.ready = append(t.ready, t.asm.flush(time.Now(), false)...)
				return nil
			}
			delay = 5 * time.Millisecond // let the reader catch up
		}
		tm := time.NewTimer(delay)
		defer tm.Stop()
		timer = tm.C
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case te, ok := <-t.events:
		if !ok {
			return t.drainClosed()
		}
		t.ready = append(t.ready, t.asm.add(te.e, te.t)...)
	case <-timer:
	}
	return nil
}

// drainClosed completes every open packet once the socket is closed.
func (t *Tracer) drainClosed() error {
	t.ready = append(t.ready, t.asm.flush(time.Now(), true)...)
	if len(t.ready) == 0 {
		return errors.New("trace socket closed")
	}
	return nil
}

// unread reports whether trace messages wait in the socket.
func (t *Tracer) unread() bool {
	rc, err := t.conn.SyscallConn()
	if err != nil {
		return false
	}
	readable := false
	_ = rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, err := unix.Poll(fds, 0); err == nil && n > 0 {
			readable = fds[0].Revents&unix.POLLIN != 0
		}
	})
	return readable
}

// Lost reports how many trace messages could not be read (the kernel drops
// them when the socket's buffer is full) or decoded.
func (t *Tracer) Lost() int { return int(t.lost.Load()) }

// Close removes the tracer's tables and stops listening. It is safe to call
// more than once.
func (t *Tracer) Close() error {
	t.closed.Do(func() {
		t.closeErr = remove(t.opts.NetNS)
		t.conn.Close()
		t.links.Close()
	})
	return t.closeErr
}

// owner is the comment on the tracer's rules: who added them.
func owner() string {
	return fmt.Sprintf("vrrpdoctor trace pid %d start %d", os.Getpid(), startTime(os.Getpid()))
}

// startTime is a process's start time in clock ticks since boot
// (/proc/PID/stat field 22), which tells a live process from a later one
// that reuses its PID; 0 when unknown.
func startTime(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0
	}
	n, _ := strconv.ParseUint(f[19], 10, 64)
	return n
}

// ownerAlive reports whether the process named in a tracer comment runs.
func ownerAlive(comment string) (int, bool) {
	var pid int
	var start uint64
	if _, err := fmt.Sscanf(comment, "vrrpdoctor trace pid %d start %d", &pid, &start); err != nil {
		return 0, false
	}
	if pid == os.Getpid() {
		return pid, false // a table this process left (it never keeps two)
	}
	st := startTime(pid)
	return pid, st != 0 && st == start
}

func newConn(netnsFD int) (*nftables.Conn, error) {
	var opts []nftables.ConnOption
	if netnsFD != 0 {
		opts = append(opts, nftables.WithNetNSFd(netnsFD))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return c, nil
}

// traceRule is `meta l4proto 112 meta nftrace set 1`.
func traceRule() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{112}},
		&expr.Immediate{Register: 1, Data: []byte{1}},
		&expr.Meta{Key: expr.MetaKeyNFTRACE, SourceRegister: true, Register: 1},
	}
}

// install adds the tables, removing a stale one first.
func install(opts Options) error {
	err := add(opts)
	if err == nil || !errors.Is(err, syscall.EEXIST) {
		return err
	}
	if pid, alive := existingOwner(opts.NetNS); alive {
		return fmt.Errorf("%w (pid %d)", ErrBusy, pid)
	}
	if err := remove(opts.NetNS); err != nil {
		return fmt.Errorf("remove a stale %s table: %w", TableName, err)
	}
	return add(opts)
}

// add creates the tables in one transaction; it fails with EEXIST when a
// table of that name is there already.
func add(opts Options) error {
	c, err := newConn(opts.NetNS)
	if err != nil {
		return err
	}
	ud := userdata.AppendString(nil, userdata.TypeComment, owner())
	accept := nftables.ChainPolicyAccept
	inet := c.CreateTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: TableName})
	for _, h := range []struct {
		name string
		hook *nftables.ChainHook
	}{{chainPrerouting, nftables.ChainHookPrerouting}, {chainOutput, nftables.ChainHookOutput}} {
		ch := c.AddChain(&nftables.Chain{Name: h.name, Table: inet, Type: nftables.ChainTypeFilter,
			Hooknum: h.hook, Priority: nftables.ChainPriorityRef(Priority), Policy: &accept})
		c.AddRule(&nftables.Rule{Table: inet, Chain: ch, Exprs: traceRule(), UserData: ud})
	}
	if len(opts.IngressDevices) > 0 {
		nd := c.CreateTable(&nftables.Table{Family: nftables.TableFamilyNetdev, Name: TableName})
		for _, dev := range opts.IngressDevices {
			ch := c.AddChain(&nftables.Chain{Name: chainIngress + "_" + dev, Table: nd, Type: nftables.ChainTypeFilter,
				Hooknum: nftables.ChainHookIngress, Priority: nftables.ChainPriorityRef(ingressPriority), Policy: &accept, Device: dev})
			c.AddRule(&nftables.Rule{Table: nd, Chain: ch, Exprs: traceRule(), UserData: ud})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: add table %s: %w", TableName, err)
	}
	return nil
}

// existingOwner reads who added the tracer table that is there.
func existingOwner(netnsFD int) (int, bool) {
	c, err := newConn(netnsFD)
	if err != nil {
		return 0, false
	}
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
	rules, err := c.GetRules(t, &nftables.Chain{Name: chainPrerouting, Table: t})
	if err != nil {
		return 0, false
	}
	for _, r := range rules {
		if s, ok := userdata.GetString(r.UserData, userdata.TypeComment); ok {
			return ownerAlive(s)
		}
	}
	return 0, false
}

// remove deletes the tracer's tables, those that exist.
func remove(netnsFD int) error {
	c, err := newConn(netnsFD)
	if err != nil {
		return err
	}
	var errs []error
	for _, fam := range []nftables.TableFamily{nftables.TableFamilyINet, nftables.TableFamilyNetdev} {
		if _, err := c.ListTableOfFamily(TableName, fam); err != nil {
			continue // not there
		}
		c.DelTable(&nftables.Table{Family: fam, Name: TableName})
		if err := c.Flush(); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("nftables: delete table %s: %w", TableName, err))
		}
	}
	return errors.Join(errs...)
}

// Cleanup removes a tracer table left in the network namespace by a process
// that no longer runs, and reports whether there was one. A table of a
// running trace is left alone.
func Cleanup(netnsFD int) (bool, error) {
	c, err := newConn(netnsFD)
	if err != nil {
		return false, err
	}
	if _, err := c.ListTableOfFamily(TableName, nftables.TableFamilyINet); err != nil {
		if _, err := c.ListTableOfFamily(TableName, nftables.TableFamilyNetdev); err != nil {
			return false, nil
		}
	}
	if pid, alive := existingOwner(netnsFD); alive {
		return false, fmt.Errorf("%w (pid %d)", ErrBusy, pid)
	}
	return true, remove(netnsFD)
}

// bigBuffer gives the trace socket 4 MiB to absorb bursts (a firewalld
// host reports some 60 events per advert): beyond net.core.rmem_max with
// SO_RCVBUFFORCE when privileged, within it otherwise. Messages the kernel
// still drops are counted by Lost.
func bigBuffer(conn *netlink.Conn) {
	const size = 4 << 20
	if rc, err := conn.SyscallConn(); err == nil {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size)
		}); err == nil && serr == nil {
			return
		}
	}
	_ = conn.SetReadBuffer(size)
}
