// Package wakeset gathers the keys that changes name for one worker that
// acts on them: keys noted while the worker is busy are merged into its
// next round, and the zero key, which says that anything may have changed,
// stands for every key.
package wakeset

import (
	"context"
	"sync"
	"time"
)

// Set is the keys noted since the worker's last round. The zero Set is
// ready to use.
type Set[K comparable] struct {
	mu      sync.Mutex
	pending map[K]bool
	wake    chan struct{}
	once    sync.Once
}

func (s *Set[K]) init() {
	s.once.Do(func() {
		s.pending = map[K]bool{}
		s.wake = make(chan struct{}, 1)
	})
}

// Note adds k for the next round and returns at once.
func (s *Set[K]) Note(k K) {
	s.init()
	s.mu.Lock()
	s.pending[k] = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run calls handle with the keys noted since its last call (only the zero
// key when it was noted), one round at a time, until ctx is done. Every
// recheck it notes the zero key itself: what a round missed (a change that
// raced with it) is found at the latest then.
func (s *Set[K]) Run(ctx context.Context, recheck time.Duration, handle func(keys map[K]bool)) {
	s.init()
	tick := time.NewTicker(recheck)
	defer tick.Stop()
	var zero K
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.Note(zero)
			continue
		case <-s.wake:
		}
		s.mu.Lock()
		keys := s.pending
		s.pending = map[K]bool{}
		s.mu.Unlock()
		if keys[zero] {
			keys = map[K]bool{zero: true}
		}
		handle(keys)
	}
}

// WhileBehind notes the zero key every every while behind says so, until
// ctx is done: while the feed that calls Note is not current, a change
// reaches the worker by no note.
func (s *Set[K]) WhileBehind(ctx context.Context, every time.Duration, behind func() bool) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var zero K
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if behind() {
			s.Note(zero)
		}
	}
}
