package main

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"testing"
	"time"
)

func memoryLimit() int64 { return debug.SetMemoryLimit(-1) }

// inUse is what the runtime compares against the memory limit.
func inUse() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64() - s[1].Value.Uint64())
}

var memTunerSink [][]byte

// TestMemTunerFollowsLiveHeap: the limit starts a little above the memory
// in use, rises after a collection when the live heap grew, falls when it
// shrank, and is gone after stop.
func TestMemTunerFollowsLiveHeap(t *testing.T) {
	if l := memoryLimit(); l != math.MaxInt64 {
		t.Skipf("a memory limit is set already (%d; GOMEMLIMIT?)", l)
	}
	runtime.GC()
	mt := startMemTuner()
	if mt == nil {
		t.Fatal("no tuner without a limit set")
	}
	defer mt.stop()
	first := memoryLimit()
	// It may be below what is in use: free heap pages not yet returned to
	// the system do not count, the runtime returns them.
	if first == math.MaxInt64 || first < 2*memHeadroomMin || first > inUse()+64<<20 {
		t.Fatalf("first limit %d, in use %d", first, inUse())
	}
	if startMemTuner() != nil {
		t.Error("a second tuner started while one runs")
	}

	// 32 MiB more live heap: after a collection the limit is above it.
	for range 32 {
		memTunerSink = append(memTunerSink, make([]byte, 1<<20))
	}
	grown := waitLimit(t, func(l int64) bool { return l > first+32<<20 })
	// About twice the live heap (the headroom is as much again) plus the
	// rest: well below twice what is in use, however the test binary's
	// other memory is counted.
	if grown > 2*inUse()+8<<20 {
		t.Errorf("limit %d far above the %d in use", grown, inUse())
	}
	// And back down once that is garbage.
	memTunerSink = nil
	waitLimit(t, func(l int64) bool { return l < grown-16<<20 })

	mt.stop()
	if l := memoryLimit(); l != math.MaxInt64 {
		t.Errorf("limit %d after stop", l)
	}
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
	if l := memoryLimit(); l != math.MaxInt64 {
		t.Errorf("limit %d set again after stop", l)
	}
	var nilTuner *memTuner
	nilTuner.stop()
}

// waitLimit collects garbage until the limit satisfies ok (the tuner
// adjusts it in a cleanup after a collection) and returns it.
func waitLimit(t *testing.T, ok func(int64) bool) int64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		l := memoryLimit()
		if ok(l) {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("limit %d, in use %d: not adjusted after collections", l, inUse())
		}
	}
}

func TestLimitProcs(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	if os.Getenv("GOMAXPROCS") == "" {
		restore := limitProcs()
		if n := runtime.GOMAXPROCS(0); n != daemonProcs {
			t.Errorf("GOMAXPROCS %d while running, want %d", n, daemonProcs)
		}
		restore()
		if n := runtime.GOMAXPROCS(0); n != before {
			t.Errorf("GOMAXPROCS %d after restore, want %d", n, before)
		}
	}
	// GOMAXPROCS in the environment wins.
	t.Setenv("GOMAXPROCS", strconv.Itoa(before))
	restore := limitProcs()
	if n := runtime.GOMAXPROCS(0); n != before {
		t.Errorf("GOMAXPROCS %d with GOMAXPROCS=%d set, want it unchanged", n, before)
	}
	restore()
}

func TestMemTunerRespectsGOMEMLIMIT(t *testing.T) {
	prev := debug.SetMemoryLimit(1 << 40)
	defer debug.SetMemoryLimit(prev)
	if mt := startMemTuner(); mt != nil {
		mt.stop()
		t.Fatal("tuner started over a limit set already")
	}
	if l := memoryLimit(); l != 1<<40 {
		t.Errorf("limit %d, want the one set", l)
	}
	// GOMEMLIMIT=off sets no limit, and means none.
	debug.SetMemoryLimit(math.MaxInt64)
	t.Setenv("GOMEMLIMIT", "off")
	if mt := startMemTuner(); mt != nil {
		mt.stop()
		t.Fatal("tuner started with GOMEMLIMIT=off")
	}
}
