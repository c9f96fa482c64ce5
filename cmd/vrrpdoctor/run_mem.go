package main

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// daemonProcs is how many goroutines run executes at once (GOMAXPROCS)
// unless the environment's GOMAXPROCS says otherwise. A VRRP daemon needs
// little parallelism (keepalived's VRRP process is one thread); with one
// P the scheduler and the collector keep fewer threads busy, which cost
// both CPU and memory (bench/daemon.sh, 100 instances at 0.1 s adverts).
const daemonProcs = 1

// limitProcs sets GOMAXPROCS to daemonProcs unless GOMAXPROCS is set in
// the environment, and returns what restores the runtime's default.
func limitProcs() (restore func()) {
	if os.Getenv("GOMAXPROCS") != "" {
		return func() {}
	}
	runtime.GOMAXPROCS(daemonProcs)
	return runtime.SetDefaultGOMAXPROCS
}

// memTuner keeps a soft memory limit (debug.SetMemoryLimit) a little above
// what `run` needs, re-computed after every garbage collection: the Go
// memory that is not heap (stacks, runtime metadata), plus the live heap,
// plus memHeadroom, and at least memHeapFloor for the heap.
//
// Without it the runtime keeps freed heap pages for minutes; with 100
// instances they held about a third of the daemon's resident memory (much
// of it garbage from starting the instances: 28 MB peak against 18 MB with
// the limit, bench/daemon.sh). With the limit, the runtime returns freed
// pages to the system before the heap grows past it. The limit follows the live heap up as well as down, so
// a daemon that needs more (more instances after a reload, the diagnosis'
// state) gets it after one collection; and the runtime itself caps the
// collector's CPU when a limit is too tight.
type memTuner struct {
	mu      sync.Mutex
	stopped bool
	samples []metrics.Sample
}

// memHeadroom is how far the limit stays above the Go memory in use after
// a collection. The runtime keeps 1 MiB (or 3 %) of a limit in reserve
// when it sets the heap goal, so the heap may grow by the rest before the
// next collection: as much as the live heap, and at least memHeadroomMin.
// That is the room the collector gives by default (GOGC=100), so the
// limit does not make it run more often (a tighter one, a quarter of the
// live heap, cost CPU in bench/daemon.sh for no less memory); what it
// changes is that freed pages go back to the system at once.
func memHeadroom(live uint64) uint64 { return 1<<20 + max(live, memHeadroomMin) }

const memHeadroomMin = 1 << 20

// memHeapFloor is the least heap the limit allows for: below the runtime's
// own minimum heap goal (4 MB) a limit only makes the collector run more
// often, which costs CPU and, over a run of minutes, no less memory.
const memHeapFloor = 4 << 20

// Indexes into memTuner.samples.
const (
	memTotal = iota
	memReleased
	memObjects
	memFree
	memUnused
	memLive
)

// startMemTuner sets a first limit from the memory in use now and re-sets
// it after every collection until stop. It does nothing (and returns nil)
// when GOMEMLIMIT is set (GOMEMLIMIT=off runs without a limit), or a limit
// is set already by another run in the same process (tests).
func startMemTuner() *memTuner {
	if os.Getenv("GOMEMLIMIT") != "" || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		return nil
	}
	t := &memTuner{samples: []metrics.Sample{
		memTotal:    {Name: "/memory/classes/total:bytes"},
		memReleased: {Name: "/memory/classes/heap/released:bytes"},
		memObjects:  {Name: "/memory/classes/heap/objects:bytes"},
		memFree:     {Name: "/memory/classes/heap/free:bytes"},
		memUnused:   {Name: "/memory/classes/heap/unused:bytes"},
		memLive:     {Name: "/gc/heap/live:bytes"},
	}}
	t.adjust()
	t.arm()
	return t
}

// limit computes the limit from the runtime's figures: what the runtime
// compares against the limit (memory mapped and not released) minus the
// heap that is garbage or free, plus the live heap and the headroom.
func (t *memTuner) limit() int64 {
	metrics.Read(t.samples)
	v := func(i int) uint64 {
		if t.samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return t.samples[i].Value.Uint64()
	}
	inUse := v(memTotal) - v(memReleased)
	heap := v(memObjects) + v(memFree) + v(memUnused)
	if heap > inUse {
		return math.MaxInt64
	}
	live := v(memLive)
	if live == 0 || live > v(memObjects) {
		// Before the first collection: what is allocated counts as live.
		live = v(memObjects)
	}
	l := inUse - heap + max(live+memHeadroom(live), memHeapFloor)
	if l > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(l)
}

func (t *memTuner) adjust() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.stopped {
		debug.SetMemoryLimit(t.limit())
	}
}

// gcSentinel is allocated unreachable; its cleanup runs after the
// collection that frees it. Its 16 bytes keep it out of the tiny
// allocator, whose blocks are freed together.
type gcSentinel [16]byte

// arm has adjust and arm run again after the next collection.
func (t *memTuner) arm() {
	runtime.AddCleanup(new(gcSentinel), func(t *memTuner) {
		t.mu.Lock()
		stopped := t.stopped
		t.mu.Unlock()
		if !stopped {
			t.adjust()
			t.arm()
		}
	}, t)
}

// stop removes the limit; a nil tuner does nothing.
func (t *memTuner) stop() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	debug.SetMemoryLimit(math.MaxInt64)
}
