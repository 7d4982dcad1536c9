// Package gencache is a bounded in-memory map that a read racing a write
// cannot make stale: a reader notes the generation before it reads the
// source of truth and stores what it read only if no write dropped
// anything since. Writers drop after their commit, never before.
package gencache

import "sync"

// Map is the cache; the zero value is not usable, call New.
type Map[K comparable, V any] struct {
	mu  sync.Mutex
	gen uint64
	m   map[K]V
	max int
}

// New makes a map of at most max entries; a new key beyond that clears it,
// which is no worse than no cache.
func New[K comparable, V any](max int) *Map[K, V] {
	return &Map[K, V]{m: map[K]V{}, max: max}
}

// Get returns the entry of k and the generation to pass to Put after a miss.
func (c *Map[K, V]) Get(k K) (V, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok, c.gen
}

// Put stores v for k unless a drop happened since Get returned gen.
func (c *Map[K, V]) Put(k K, v V, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[k] = v
}

// Drop removes k.
func (c *Map[K, V]) Drop(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.m, k)
}

// Update is a write that changes the entry of k in place of dropping it:
// it bumps the generation as Drop does, then, when k has an entry, stores
// what f makes of it (keep false removes it). f runs under the map's lock.
func (c *Map[K, V]) Update(k K, f func(V) (v V, keep bool)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	v, ok := c.m[k]
	if !ok {
		return
	}
	if nv, keep := f(v); keep {
		c.m[k] = nv
	} else {
		delete(c.m, k)
	}
}

// UpdateIf is Update for every entry whose key match says so (nil: every
// entry).
func (c *Map[K, V]) UpdateIf(match func(K) bool, f func(V) (v V, keep bool)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, v := range c.m {
		if match != nil && !match(k) {
			continue
		}
		if nv, keep := f(v); keep {
			c.m[k] = nv
		} else {
			delete(c.m, k)
		}
	}
}

// Replace stores what f makes of the entry of k when f says to (ok), and
// is not a write: readers' generations stay valid. It is for a value that
// answers as the one it replaces does (say, the same read with what has
// expired taken out); f, under the map's lock, checks that the entry is
// still the one it was made from.
func (c *Map[K, V]) Replace(k K, f func(V) (v V, ok bool)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	if !ok {
		return
	}
	if nv, ok := f(v); ok {
		c.m[k] = nv
	}
}

// DropIf removes every entry whose key match says so (nil: every entry).
func (c *Map[K, V]) DropIf(match func(K) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if match == nil {
		clear(c.m)
		return
	}
	for k := range c.m {
		if match(k) {
			delete(c.m, k)
		}
	}
}

// Len is the number of entries.
func (c *Map[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
