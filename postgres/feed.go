package postgres

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
)

// Channel is the NOTIFY channel every write announces its changes on.
const Channel = "shiftkey_changes"

// notice is a change as it travels: JSON, so that names with NUL bytes
// (a credential's scope and login) survive a NOTIFY payload.
type notice struct {
	Origin string `json:"o"`
	Kind   string `json:"k"`
	Name   string `json:"n,omitempty"`
}

// feed holds one LISTEN connection and hands the changes other processes
// made to the subscribers, one at a time and in commit order (the order
// PostgreSQL delivers notifications in). When the connection is lost it
// reconnects and then delivers the zero Change: what happened meanwhile is
// unknown. Pings (fresh) tell whether it is current; they reach no
// subscriber.
type feed struct {
	cfg    *pgx.ConnConfig
	origin string

	// ping NOTIFYs a ping of this process (set by Open: through the pool).
	ping func(ctx context.Context, payload string) error
	// epoch is the zero of the clock pings carry (monotonic).
	epoch time.Time
	// confirmed is the send time (since epoch, ns) of the latest own ping
	// heard back on the current LISTEN connection; 0: none.
	confirmed atomic.Int64
	// sent is when the latest ping went out (since epoch, ns).
	sent atomic.Int64

	mu   sync.Mutex
	subs []func(shiftkey.Change)

	cancel context.CancelFunc
	done   chan struct{}
}

func (f *feed) encode(c shiftkey.Change) string {
	b, _ := json.Marshal(notice{Origin: f.origin, Kind: string(c.Kind), Name: c.Name})
	return string(b)
}

// startFeed listens before it returns, so that no change committed after
// Open returns can be missed.
func startFeed(ctx context.Context, cfg *pgx.ConnConfig, origin string) (*feed, error) {
	f := &feed{cfg: cfg, origin: origin, done: make(chan struct{}), epoch: time.Now()}
	f.sent.Store(-int64(pingEvery)) // the first login may ping at once
	conn, err := f.listen(ctx)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go f.run(runCtx, conn)
	return f, nil
}

func (f *feed) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, f.cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

func (f *feed) run(ctx context.Context, conn *pgx.Conn) {
	defer close(f.done)
	backoff := 50 * time.Millisecond
	for {
		for conn != nil {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				f.confirmed.Store(0) // what is missed from here on is unknown
				conn.Close(context.Background())
				conn = nil
				break
			}
			var m notice
			if json.Unmarshal([]byte(n.Payload), &m) != nil {
				// Not ours to read: say anything may have changed.
				f.deliver(shiftkey.Change{})
				continue
			}
			switch {
			case m.Kind == pingKind:
				if m.Origin == f.origin {
					if sent, err := strconv.ParseInt(m.Name, 10, 64); err == nil && sent > f.confirmed.Load() {
						f.confirmed.Store(sent)
					}
				}
			case m.Origin != f.origin:
				f.deliver(shiftkey.Change{Kind: shiftkey.EntityKind(m.Kind), Name: m.Name})
			}
		}
		if ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		c, err := f.listen(ctx)
		if err != nil {
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		conn, backoff = c, 50*time.Millisecond
		f.deliver(shiftkey.Change{})
	}
}

// A cache may answer from memory only while the feed is known to be
// current: an own ping, NOTIFYd at some instant, was heard back at most
// freshFor after that instant. Notifications arrive in commit order on one
// connection, so every change committed before the ping was sent has been
// delivered by then. Pings go out on demand (fresh), at most one per
// pingEvery, so an idle process sends none.
const (
	pingKind  = "ping"
	pingEvery = 200 * time.Millisecond
	freshFor  = 600 * time.Millisecond
)

// fresh tells whether every change committed more than freshFor ago has
// been delivered, and sends a ping when the last is older than pingEvery.
func (f *feed) fresh() bool {
	now := int64(time.Since(f.epoch))
	c := f.confirmed.Load()
	// One ping per pingEvery at most, also while none comes back (the
	// connection is down): the one that won the swap sends it.
	if s := f.sent.Load(); now-c >= int64(pingEvery) && now-s >= int64(pingEvery) && f.ping != nil && f.sent.CompareAndSwap(s, now) {
		go f.sendPing(now)
	}
	return c > 0 && now-c < int64(freshFor)
}

func (f *feed) sendPing(at int64) {
	ctx, cancel := context.WithTimeout(context.Background(), freshFor)
	defer cancel()
	b, _ := json.Marshal(notice{Origin: f.origin, Kind: pingKind, Name: strconv.FormatInt(at, 10)})
	f.ping(ctx, string(b)) // a ping lost only delays the next
}

func (f *feed) deliver(c shiftkey.Change) {
	f.mu.Lock()
	subs := f.subs
	f.mu.Unlock()
	for _, fn := range subs {
		fn(c)
	}
}

func (f *feed) stop() {
	f.cancel()
	<-f.done
}

// Subscribe implements shiftkey.ChangeSource: fn gets, in order, every
// change another process commits to this store, and the zero Change after
// the feed was lost and regained. fn runs on the feed's goroutine: it must
// return quickly (drop a cache entry, signal a goroutine).
func (d *DB) Subscribe(fn func(shiftkey.Change)) {
	d.feed.mu.Lock()
	defer d.feed.mu.Unlock()
	d.feed.subs = append(append([]func(shiftkey.Change){}, d.feed.subs...), fn)
}

// Current implements shiftkey.CurrentSource: the feed has delivered every
// change committed more than freshFor ago (fresh), so that caches fed by
// it may answer from memory. It sends a ping when one is due.
func (d *DB) Current() bool { return d.feed.fresh() }
