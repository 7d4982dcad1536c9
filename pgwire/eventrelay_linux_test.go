package pgwire

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// perLoop counts the sessions on each loop now.
func (r *EventRelay) perLoop() []int {
	out := make([]int, len(r.loops))
	for i, l := range r.loops {
		out[i] = l.sessions()
	}
	return out
}

func (r *EventRelay) backlogCounts() (toClient, toBackend int64) {
	return r.backlogs[0].Load(), r.backlogs[1].Load()
}

func (r *EventRelay) isRunning() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running
}

// Where io_uring cannot be set up (seccomp, io_uring_disabled, an old
// kernel), the default engine is epoll; asking for io_uring is an error.
func TestEventRelayFallsBackToEpoll(t *testing.T) {
	made := makeURingLoop
	t.Cleanup(func() { makeURingLoop = made })
	makeURingLoop = func(*EventRelay) (relayLoop, error) { return nil, unix.EPERM }
	r, err := NewEventRelay(2, "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Engine() != EngineEpoll || len(r.loops) != 2 {
		t.Fatalf("engine %q with %d loops, want epoll with 2", r.Engine(), len(r.loops))
	}
	if _, err := NewEventRelay(1, EngineIOURing); !errors.Is(err, unix.EPERM) {
		t.Fatalf("io_uring asked for: %v, want EPERM", err)
	}
	if _, err := NewEventRelay(1, "kqueue"); err == nil {
		t.Fatal("an unknown engine was accepted")
	}
}
