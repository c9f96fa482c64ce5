package runtime

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/scripts"
)

// notifyEvent is one state change to report to the notify scripts.
type notifyEvent struct {
	state    string // MASTER, BACKUP, FAULT or STOP, as keepalived names them
	priority uint8
}

// notifier runs an instance's (or sync group's) notify scripts in the
// order of its state changes, one at a time, off the instance's loop.
type notifier struct {
	name    string
	kind    string // "INSTANCE" or "GROUP", the generic notify's first argument
	log     *slog.Logger
	timeout time.Duration
	queue   chan notifyEvent
	done    chan struct{}
	plan    func() notifyPlan
}

const notifyQueue = 32

func newNotifier(name, kind string, timeout time.Duration, plan func() notifyPlan, log *slog.Logger) *notifier {
	n := &notifier{name: name, kind: kind, log: log, timeout: timeout, plan: plan,
		queue: make(chan notifyEvent, notifyQueue), done: make(chan struct{})}
	go n.run()
	return n
}

// post queues an event; if the scripts are that far behind the event is
// dropped with a warning rather than stalling the state machine.
func (n *notifier) post(e notifyEvent) {
	select {
	case n.queue <- e:
	default:
		n.log.Warn("notify scripts lag behind: state change not notified", "state", e.state)
	}
}

// close runs what is queued and returns when done.
func (n *notifier) close() {
	close(n.queue)
	<-n.done
}

func (n *notifier) run() {
	defer close(n.done)
	for e := range n.queue {
		p := n.plan()
		var specific *scripts.Command
		switch e.state {
		case "MASTER":
			specific = p.master
		case "BACKUP":
			specific = p.backup
		case "FAULT":
			specific = p.fault
		case "STOP":
			specific = p.stop
		}
		if specific != nil {
			n.exec(specific, e.state)
		}
		// keepalived.conf(5): the generic notify's STOP "only applies to
		// instances"; a group's stop runs its notify_stop alone.
		if p.any != nil && !(n.kind == "GROUP" && e.state == "STOP") {
			n.exec(p.any, e.state, n.kind, n.name, e.state, strconv.Itoa(int(e.priority)))
		}
	}
}

func (n *notifier) exec(c *scripts.Command, state string, args ...string) {
	r := c.Run(context.Background(), n.timeout, args...)
	if r.OK() {
		n.log.Debug("notify script done", "state", state, "command", c.String(), "took", r.Duration)
		return
	}
	n.log.Warn("notify script failed", "state", state, "command", c.String(), "err", r.Err, "stderr", r.Stderr)
}
