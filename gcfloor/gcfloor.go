// Package gcfloor keeps the garbage collector's heap goal at or above a
// floor. With GOGC's default (100) a process whose live heap is small
// collects whenever it has allocated as much again: a server with 2 MB
// live collects every 2 MB, dozens of times a second under load, and its
// requests pay the marking, the assists and the write barriers. A floor
// of a few tens of MB makes collections rare while the heap is small and
// changes nothing once the live heap is past half the floor (the goal is
// then twice the live heap, as with GOGC=100).
//
// A memory limit (GOMEMLIMIT) still applies: the collector meets the
// lower of the two goals.
package gcfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// base is GOGC's default: the percentage used once the floor is reached.
const base = 100

// runtimeMinimum is the runtime's smallest heap goal at GOGC=100; it
// scales with the percentage (4 MiB × GOGC/100), so that the percentage
// alone sets a floor too: floor×100/runtimeMinimum gives it, whatever the
// live heap (none yet at start).
const runtimeMinimum = 4 << 20

// Start keeps the heap goal at least floor bytes: after each collection
// it sets the GC percentage so that the next goal is the larger of floor
// and twice the live heap. It does nothing when floor is 0 or GOGC is set
// in the environment (the operator's choice stands). stop restores GOGC's
// default and ends the adjustments.
func Start(floor uint64) (stop func()) {
	if floor == 0 || os.Getenv("GOGC") != "" {
		return func() {}
	}
	f := &floorState{floor: floor, samples: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	f.adjust()
	f.arm()
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if !f.stopped {
			f.stopped = true
			debug.SetGCPercent(base)
		}
	}
}

type floorState struct {
	floor   uint64
	mu      sync.Mutex // stop against an adjustment
	stopped bool
	percent int
	samples []metrics.Sample
}

// cycle is garbage whose finalizer runs once per collection (the first
// one after it is allocated): it adjusts the percentage and allocates the
// next one.
type cycle struct {
	f *floorState
	_ [2]uint64 // no tiny-allocator object: those may never be finalized
}

func (f *floorState) arm() {
	runtime.SetFinalizer(&cycle{f: f}, func(c *cycle) {
		c.f.mu.Lock()
		stopped := c.f.stopped
		if !stopped {
			c.f.adjust()
		}
		c.f.mu.Unlock()
		if !stopped {
			c.f.arm()
		}
	})
}

// adjust sets the percentage for the live heap of the last collection.
func (f *floorState) adjust() {
	metrics.Read(f.samples)
	live := uint64(0)
	if f.samples[0].Value.Kind() == metrics.KindUint64 {
		live = f.samples[0].Value.Uint64()
	}
	p := Percent(live, f.floor)
	// Small changes are left alone: each call recomputes the pacer's goal.
	if p != f.percent && (p == base || p*20 < f.percent*19 || p*19 > f.percent*20) {
		debug.SetGCPercent(p)
		f.percent = p
	}
}

// Percent is the GC percentage that makes the heap goal the larger of
// floor and twice live. The goal is the larger of live × (1 + percent/100)
// and the runtime's minimum (runtimeMinimum × percent/100), so the
// percentage never exceeds the one whose minimum is floor.
func Percent(live, floor uint64) int {
	if 2*live >= floor {
		return base
	}
	atMost := floor * 100 / runtimeMinimum
	if live == 0 {
		return int(max(atMost, base))
	}
	return int(max(min((floor-live)*100/live, atMost), base))
}
