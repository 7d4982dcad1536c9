package postgres

import (
	"context"
	"encoding/json"
	"sync"
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
// unknown.
type feed struct {
	cfg    *pgx.ConnConfig
	origin string

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
	f := &feed{cfg: cfg, origin: origin, done: make(chan struct{})}
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
			if m.Origin != f.origin {
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
