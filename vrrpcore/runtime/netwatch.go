package runtime

import (
	"errors"
	"log/slog"
	"syscall"
	"time"
)

// netWatch follows what can change under a running daemon in its network
// namespace besides the tracked links: interfaces deleted and created
// again (relink.go) and virtual addresses removed by someone else
// (addrwatch.go). Each watcher has its own netlink subscription and
// goroutine; neither is waited for on close (they take the daemon's lock,
// which Stop holds), and both stop touching the daemon once it is stopped.
type netWatch struct {
	relink *relinker
	addrs  *addrWatcher
}

// startNetWatch subscribes to link and address events in d's namespace.
func startNetWatch(d *Daemon) (*netWatch, error) {
	r, err := startRelinker(d)
	if err != nil {
		return nil, err
	}
	a, err := startAddrWatcher(d)
	if err != nil {
		r.close()
		return nil, err
	}
	return &netWatch{relink: r, addrs: a}, nil
}

func (w *netWatch) close() {
	w.relink.close()
	w.addrs.close()
}

// sendFailed looks at a failed send: ENODEV or ENXIO means the socket's
// interface is gone (perhaps created again, with a new index, in events
// the relinker missed), so the relinker checks every socket now.
func (w *netWatch) sendFailed(err error) {
	if w == nil || !(errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.ENXIO)) {
		return
	}
	select {
	case w.relink.check <- struct{}{}:
	default:
	}
}

// resubscribe opens a new netlink subscription with open after the last
// one ended (the kernel drops a subscriber that falls behind with ENOBUFS,
// and its events are lost), retrying every second. It returns nil once
// done is closed.
func resubscribe[T any](done <-chan struct{}, log *slog.Logger, what string, open func() (chan T, error)) chan T {
	select {
	case <-done: // closed by close: the end, not a failure
		return nil
	default:
	}
	log.Warn(what + ": netlink subscription ended, events may be lost: subscribing again and looking at everything")
	for {
		ch, err := open()
		if err == nil {
			return ch
		}
		log.Error(what+": subscribing to netlink events", "err", err)
		select {
		case <-done:
			return nil
		case <-time.After(time.Second):
		}
	}
}

// drain reads ch until the netlink package closes it, so that its reader
// never blocks on a send after the subscription is closed.
func drain[T any](ch chan T) {
	go func() {
		for range ch {
		}
	}()
}

// subscriptionErrors returns a netlink ErrorCallback that logs errors
// unless done is closed (closing the subscription makes its read fail).
func subscriptionErrors(done <-chan struct{}, log *slog.Logger, what string) func(error) {
	return func(err error) {
		select {
		case <-done:
		default:
			log.Warn(what, "err", err)
		}
	}
}
