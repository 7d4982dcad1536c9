package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
)

// Found in a failure-injecting review: with the store's write lock held by
// another process (an operator's sqlite3 shell in a transaction), 16
// concurrent issues waited 10 s (busy_timeout, the batch in flight) and
// 20 s (the batch queued behind it), whatever their callers' deadlines.
// Each now fails within the store's write wait, with ServiceUnavailable,
// and issuing works again once the lock is gone.
func TestLockedStoreFailsIssuesWithinTheWriteWait(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	db := mustOpen(t, path)
	defer db.Close()
	const wait = time.Second
	db.SetWriteWait(wait)
	now := time.Now()
	if err := db.CreateCredential(ctx, testCred("warm", "IAM:a", now)); err != nil {
		t.Fatal(err)
	}
	release := holdWriteLock(t, path)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		slowest time.Duration
		errs    []error
	)
	start := time.Now()
	for i := range 16 {
		wg.Go(func() {
			err := db.CreateCredential(ctx, testCred(fmt.Sprint("locked", i), "IAM:a", now))
			mu.Lock()
			defer mu.Unlock()
			slowest = max(slowest, time.Since(start))
			errs = append(errs, err)
		})
	}
	wg.Wait()
	release()
	if slowest > wait+3*time.Second {
		t.Fatalf("issues against a locked store returned after up to %v (write wait %v)", slowest.Round(time.Millisecond), wait)
	}
	for _, err := range errs {
		if code := shiftkey.ErrorCode(err); code != shiftkey.CodeServiceUnavailable {
			t.Fatalf("an issue against a locked store: %v, want %s", err, shiftkey.CodeServiceUnavailable)
		}
	}
	waitFor(t, "an issue to succeed once the lock is gone", func() bool {
		return db.CreateCredential(ctx, testCred(fmt.Sprint("after", time.Now().UnixNano()), "IAM:a", now)) == nil
	})
}
