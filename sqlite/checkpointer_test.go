package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// No commit of the issue path copies the WAL into the database (that copy
// and its fsync held every queued issue); the store's checkpointer does,
// and under writes that never pause the WAL still starts over instead of
// growing: a checkpoint running beside the writer never catches up alone.
func TestCheckpointerKeepsTheWALBounded(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	db := mustOpen(t, path)
	defer db.Close()

	// A connection of the store's pool: the setting is the DSN's.
	var auto int
	if err := db.SQL().QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&auto); err != nil {
		t.Fatal(err)
	}
	if auto != 0 {
		t.Fatalf("wal_autocheckpoint %d: commits would checkpoint", auto)
	}

	// Eight writers that do not pause, until the checkpointer has seen the
	// WAL start over (its frame count fall) twice.
	var (
		stop     atomic.Bool
		wg       sync.WaitGroup
		n        atomic.Int64
		firstErr error
		mu       sync.Mutex
	)
	now := time.Now()
	for w := range 8 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				n.Add(1)
				if err := db.CreateCredential(ctx, testCred(fmt.Sprint(w, "-", i), fmt.Sprint("IAM:u", i%100), now)); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
			}
		})
	}
	restarts, last, lastRuns := 0, int64(0), uint64(0)
	// Up to a minute: the race detector and a busy CI machine slow the
	// writers, and a restart takes restartFrames frames of them.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("the WAL started over %d times in a minute of writes (%d credentials), want 2", restarts, n.Load())
		}
		frames, copied, runs := db.Checkpoints()
		if runs != lastRuns {
			if copied > frames {
				t.Errorf("checkpoint copied %d of %d frames", copied, frames)
			}
			if frames < last {
				restarts++
			}
			last, lastRuns = frames, runs
		}
		if restarts >= 2 {
			break
		}
	}
	stop.Store(true)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	t.Logf("%d credentials, %d restarts", n.Load(), restarts)
}
