package pgwire

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
)

// timesLog keeps the times of the logins and session ends reported.
type timesLog struct {
	mu     sync.Mutex
	logins []time.Time
	ends   chan *shiftkey.SessionEnd
}

func (l *timesLog) Login(e *shiftkey.Login) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.logins = append(l.logins, e.Time)
}
func (l *timesLog) SessionEnd(e *shiftkey.SessionEnd) { l.ends <- e }

// A login's and a session's audit times are the gateway's time (Now:
// with replicas sharing PostgreSQL, the store's), not the machine's clock
// read beside it: `audit tail` merges replicas' logs by them.
func TestEventTimesAreTheGatewaysTime(t *testing.T) {
	ahead := 7 * time.Minute
	obs := &timesLog{ends: make(chan *shiftkey.SessionEnd, 1)}
	g, addr := fakeGateway(t, &fakeBackend{}, func(g *Gateway) {
		g.Observer = obs
		g.Now = func() time.Time { return time.Now().Add(ahead) }
	})
	before := time.Now().Add(ahead)
	c, err := connect(addr, "pw")
	if err != nil {
		t.Fatal(err)
	}
	c.Close(context.Background())
	var end *shiftkey.SessionEnd
	select {
	case end = <-obs.ends:
	case <-time.After(10 * time.Second):
		t.Fatal("no session end reported")
	}
	after := time.Now().Add(ahead)
	ended(t, g)
	obs.mu.Lock()
	defer obs.mu.Unlock()
	in := func(what string, at time.Time) {
		if at.Before(before) || at.After(after) {
			t.Errorf("%s at %s, want the gateway's time, between %s and %s", what, at.Format(time.RFC3339Nano), before.Format(time.RFC3339Nano), after.Format(time.RFC3339Nano))
		}
	}
	if len(obs.logins) != 1 {
		t.Fatalf("logins reported: %v", obs.logins)
	}
	in("login", obs.logins[0])
	in("session start", end.Start)
	in("session end", end.End)
	if end.End.Before(end.Start) {
		t.Errorf("session ends (%v) before it starts (%v)", end.End, end.Start)
	}
}
