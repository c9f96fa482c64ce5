package watch

import (
	"log/slog"
	"net/netip"
	"sync/atomic"

	"github.com/vishvananda/netlink"
)

// vipMonitor counts the additions and deletions of the watched virtual
// addresses, from the kernel's address notifications. Reading which
// addresses are held at each window's end misses a hand-over and back
// inside one window (a backup that was master for a moment holds the
// address at both ends but sent nothing in between): a window in which a
// virtual address came or went is not settled, whatever its ends show.
// Other addresses are not counted: router advertisements refresh SLAAC
// addresses every few seconds on some networks.
type vipMonitor struct {
	vips    map[netip.Addr]bool
	changes atomic.Uint64
	// lost is set when the subscription ended (the kernel dropped
	// notifications): changes may have been missed until it is renewed.
	lost atomic.Bool
	done chan struct{}
	log  *slog.Logger
}

func newVIPMonitor(vips []netip.Addr, log *slog.Logger) *vipMonitor {
	m := &vipMonitor{vips: map[netip.Addr]bool{}, done: make(chan struct{}), log: log}
	for _, a := range vips {
		m.vips[a.Unmap()] = true
	}
	return m
}

// subscribe starts following the caller's network namespace (run it
// through Watcher.enter). It may be called again after the subscription
// was lost.
func (m *vipMonitor) subscribe() error {
	ch := make(chan netlink.AddrUpdate, 64)
	end := make(chan struct{})
	err := netlink.AddrSubscribeWithOptions(ch, end, netlink.AddrSubscribeOptions{
		ErrorCallback: func(err error) {
			select {
			case <-m.done: // closing the socket ends the read
			default:
				m.log.Debug("watch: address notifications", "err", err)
			}
		},
	})
	if err != nil {
		close(end)
		return err
	}
	m.lost.Store(false)
	go m.follow(ch, end)
	return nil
}

func (m *vipMonitor) follow(ch chan netlink.AddrUpdate, end chan struct{}) {
	defer close(end)
	for {
		select {
		case <-m.done:
			return
		case u, ok := <-ch:
			if !ok {
				m.lost.Store(true)
				return
			}
			if ip, ok := netip.AddrFromSlice(u.LinkAddress.IP); ok && m.vips[ip.Unmap()] {
				m.changes.Add(1)
			}
		}
	}
}

// count is the number of changes seen so far; ok is false while the
// subscription is lost.
func (m *vipMonitor) count() (n uint64, ok bool) {
	return m.changes.Load(), !m.lost.Load()
}

func (m *vipMonitor) close() { close(m.done) }

// vipLinks reads, for each of vips, the index of the interface holding it
// (0: none), from one dump of the addresses of the caller's network
// namespace: what the addresses held rest on, without check.HeldAddrs'
// dump of every link (their names).
func vipLinks(vips []netip.Addr) ([]int, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	links := make([]int, len(vips))
	for i, v := range vips {
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == v {
				links[i] = a.LinkIndex
				break
			}
		}
	}
	return links, nil
}
