package runtime

import (
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/nlsub"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
)

// Virtual addresses removed by someone else. A Master must hold its
// virtual addresses; one deleted by hand (ip addr del), by a network
// manager or by a DHCP client is added back, as keepalived does from its
// netlink address monitor, and announced again (gratuitous ARP or
// unsolicited NA). The addrWatcher follows address deletions in the
// daemon's namespace and asks the instances whose address it was to look;
// each instance checks on its own loop, where its state is known.

// addrWatcher flags the instances whose virtual addresses were deleted.
type addrWatcher struct {
	d    *Daemon
	log  *slog.Logger
	done chan struct{}
}

func startAddrWatcher(d *Daemon) (*addrWatcher, error) {
	w := &addrWatcher{d: d, log: d.log, done: make(chan struct{})}
	ch, err := w.subscribe()
	if err != nil {
		return nil, fmt.Errorf("address monitor: %w", err)
	}
	go w.run(ch)
	return w, nil
}

func (w *addrWatcher) subscribe() (chan netlink.AddrUpdate, error) {
	ch := make(chan netlink.AddrUpdate, 64)
	err := w.d.enter(func() error {
		return nlsub.Addrs(ch, w.done, subscriptionErrors(w.done, w.log, "address monitor"))
	})
	return ch, err
}

func (w *addrWatcher) close() { close(w.done) }

func (w *addrWatcher) run(ch chan netlink.AddrUpdate) {
	for {
		select {
		case <-w.done:
			drain(ch)
			return
		case u, ok := <-ch:
			if !ok {
				if ch = resubscribe(w.done, w.log, "address monitor", w.subscribe); ch == nil {
					return
				}
				w.flag(netip.Addr{}) // deletions may have been missed: every instance looks
				continue
			}
			ip, ok := netip.AddrFromSlice(u.LinkAddress.IP)
			if !ok {
				continue
			}
			w.flagSource(u.LinkIndex, ip.Unmap()) // source.go
			if !u.NewAddr {
				w.flag(ip.Unmap())
			}
		}
	}
}

// flag asks every instance with the virtual address ip (every instance if
// ip is not valid, and then its source address too) to check its
// addresses.
func (w *addrWatcher) flag(ip netip.Addr) {
	d := w.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return
	}
	for _, in := range d.instances {
		if ip.IsValid() {
			if _, ok := in.currentPlan().vips[ip]; !ok {
				continue
			}
		} else {
			in.srcCheck.Store(true) // events missed: the source too (source.go)
		}
		in.vipCheck.Store(true)
		select {
		case in.kick <- struct{}{}:
		default:
		}
	}
}

// restoreVIPs adds back, on a Master flagged by the address monitor, the
// virtual addresses (advertised and excluded) that are missing from their
// interfaces, counts and logs each (once a minute per address), and
// announces them. An address whose interface is gone or down is left to
// tracking and the relinker. Only the instance's loop may call it.
func (in *instance) restoreVIPs() {
	if !in.vipCheck.Swap(false) || in.m.State() != router.Master {
		return
	}
	p := in.currentPlan()
	var back []netip.Addr
	for _, a := range slices.SortedFunc(maps.Keys(p.vips), netip.Addr.Compare) {
		v := p.vips[a]
		if l, err := in.d.host.link(v.dev); err != nil || !linkUp(l.Attrs()) {
			continue // the kernel drops IPv6 addresses of a link going down
		}
		has, err := in.d.host.hasAddr(v.dev, a)
		if err != nil || has {
			continue
		}
		in.vipRestored++
		in.d.limiter.do(fmt.Sprintf("restore %s %v", p.name, a), func() {
			in.log.Warn("virtual address removed by someone else while Master: adding it back",
				"address", v.Prefix, "dev", v.dev, "restored", in.vipRestored)
		})
		in.addVIP(v)
		back = append(back, a)
	}
	if len(back) > 0 {
		in.announce(p, router.Announcement{Addrs: back, Count: max(p.rc.GARP.MasterRepeat, 1)})
	}
}
