package runtime

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
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
// Its goroutine and queue exist only once a state change finds a script
// to run: most instances have none, and an idle goroutine per instance
// costs its stack.
type notifier struct {
	name    string
	kind    string // "INSTANCE" or "GROUP", the generic notify's first argument
	log     *slog.Logger
	timeout time.Duration
	plan    func() notifyPlan

	mu     sync.Mutex
	queue  chan notifyEvent // nil until the first event with a script
	done   chan struct{}
	closed bool
}

const notifyQueue = 32

// empty reports whether no notify script is configured.
func (p notifyPlan) empty() bool {
	return p.master == nil && p.backup == nil && p.fault == nil && p.stop == nil && p.any == nil
}

func newNotifier(name, kind string, timeout time.Duration, plan func() notifyPlan, log *slog.Logger) *notifier {
	return &notifier{name: name, kind: kind, log: log, timeout: timeout, plan: plan}
}

// post queues an event; if the scripts are that far behind the event is
// dropped with a warning rather than stalling the state machine. Without
// any notify script configured (and none queued) there is nothing to run
// and the event is not queued.
func (n *notifier) post(e notifyEvent) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	if n.queue == nil {
		if n.plan().empty() {
			return
		}
		n.queue, n.done = make(chan notifyEvent, notifyQueue), make(chan struct{})
		go n.run(n.queue, n.done)
	}
	select {
	case n.queue <- e:
	default:
		n.log.Warn("notify scripts lag behind: state change not notified", "state", e.state)
	}
}

// close runs what is queued and returns when done.
func (n *notifier) close() {
	n.mu.Lock()
	n.closed = true
	queue, done := n.queue, n.done
	n.mu.Unlock()
	if queue != nil {
		close(queue)
		<-done
	}
}

func (n *notifier) run(queue <-chan notifyEvent, done chan<- struct{}) {
	defer close(done)
	for e := range queue {
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
