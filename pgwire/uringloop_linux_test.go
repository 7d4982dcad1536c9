//go:build amd64 || arm64

package pgwire

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// With two provided buffers and an eight-entry submission queue, a dozen
// sessions streaming both ways at once keep running out of both: receives
// end for want of a buffer and are re-armed when one comes back, and the
// queue is submitted before it overflows. Every byte still arrives, in
// order.
func TestURingWithFewBuffers(t *testing.T) {
	size := uringSize
	uringSize.entries, uringSize.bufs = 8, 2
	r := eventRelay(t, 1, EngineIOURing)
	uringSize = size // the loop has its sizes
	_, addr := newGateway(t, func(g *Gateway) { g.Relay = r; g.PoolSize = 2 })
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for w := range 12 {
		wg.Go(func() {
			c, err := login(addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close(ctx)
			// About 1 MB down.
			rows, err := c.Query(ctx, "SELECT i, md5(i::text) FROM generate_series(1, 20000) i")
			if err != nil {
				errs <- err
				return
			}
			n := 0
			for rows.Next() {
				var i int
				var h string
				if err := rows.Scan(&i, &h); err != nil {
					errs <- err
					return
				}
				n++
				if sum := md5.Sum([]byte(fmt.Sprint(i))); i != n || h != hex.EncodeToString(sum[:]) {
					errs <- fmt.Errorf("session %d, row %d: %d %s", w, n, i, h)
					return
				}
			}
			if rows.Err() != nil || n != 20000 {
				errs <- fmt.Errorf("session %d read %d rows: %v", w, n, rows.Err())
				return
			}
			// About 1 MB up.
			if _, err := c.Exec(ctx, "CREATE TEMP TABLE up (line text)"); err != nil {
				errs <- err
				return
			}
			var data bytes.Buffer
			for i := range 8000 {
				fmt.Fprintf(&data, "%d %d %s\n", w, i, strings.Repeat("y", 120))
			}
			want := md5.Sum(data.Bytes())
			if _, err := c.PgConn().CopyFrom(ctx, bytes.NewReader(data.Bytes()), "COPY up FROM STDIN"); err != nil {
				errs <- err
				return
			}
			var got string
			if err := c.QueryRow(ctx, "SELECT md5(string_agg(line || E'\\n', '' ORDER BY split_part(line, ' ', 2)::int)) FROM up").Scan(&got); err != nil {
				errs <- err
				return
			}
			if got != hex.EncodeToString(want[:]) {
				errs <- fmt.Errorf("session %d uploaded md5 %s, want %x", w, got, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if r.starvations.Load() == 0 || r.earlySubmits.Load() == 0 {
		t.Errorf("receives starved %d times, early submits %d: want both paths taken", r.starvations.Load(), r.earlySubmits.Load())
	}
	if held := r.loops[0].(*uringLoop).maxHeld.Load(); held != 1 {
		t.Errorf("sends held up to %d of the 2 buffers at once, want 1", held)
	}
	t.Logf("receives starved %d times, early submits %d", r.starvations.Load(), r.earlySubmits.Load())
}

// Two sessions whose clients stop reading a 16 MB result do not hold up a
// third session on a loop with two buffers.
func TestURingBlockedSendsLeaveBuffers(t *testing.T) {
	size := uringSize
	uringSize.bufs = 2
	r := eventRelay(t, 1, EngineIOURing)
	uringSize = size
	_, addr := newGateway(t, func(g *Gateway) { g.Relay = r })
	for range 2 {
		raw := rawLogin(t, addr)
		defer raw.Close()
		// 16 MB the client never reads: the send to it blocks.
		q, _ := (&pgproto3.Query{String: "SELECT repeat('x', 16000000)"}).Encode(nil)
		if _, err := raw.Write(q); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := login(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var got int
	if err := c.QueryRow(ctx, "SELECT 42").Scan(&got); err != nil || got != 42 {
		t.Fatalf("third session: %d %v", got, err)
	}
}
