package pgwire

import (
	"sync"
	"sync/atomic"
	"time"
)

// workers run sessions on goroutines that wait a while for the next one
// after their session ends. A new goroutine's stack starts small and is
// grown (copied) several times during a login; a goroutine that has logged
// one in keeps its stack for the next (GC shrinks it if it stays idle).
type workers struct {
	init    sync.Once
	next    chan *session // an idle worker takes a session
	quit    chan struct{} // closed when the gateway stops: idle workers exit
	stopped sync.Once
	idle    atomic.Int32
}

const (
	// maxIdleWorkers bounds the goroutines kept waiting (a burst of
	// connections leaves no more than this many behind).
	maxIdleWorkers = 64
	// workerIdle is how long a worker waits for a session before exiting.
	workerIdle = 5 * time.Second
)

func (w *workers) setup() {
	w.init.Do(func() {
		w.next = make(chan *session)
		w.quit = make(chan struct{})
	})
}

// start runs s on an idle worker, or on a new one.
func (w *workers) start(s *session) {
	w.setup()
	select {
	case w.next <- s:
	default:
		go w.work(s)
	}
}

func (w *workers) work(s *session) {
	var t *time.Timer
	for {
		s.g.runSession(s)
		s = nil // not kept alive while waiting
		if w.idle.Add(1) > maxIdleWorkers {
			w.idle.Add(-1)
			return
		}
		if t == nil {
			t = time.NewTimer(workerIdle)
		} else {
			t.Reset(workerIdle)
		}
		select {
		case s = <-w.next:
			w.idle.Add(-1)
		case <-t.C:
			w.idle.Add(-1)
			return
		case <-w.quit:
			w.idle.Add(-1)
			t.Stop()
			return
		}
	}
}

// stop lets the idle workers exit.
func (w *workers) stop() {
	w.setup()
	w.stopped.Do(func() { close(w.quit) })
}
