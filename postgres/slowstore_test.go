package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/postgres"
)

// Found in a failure-injecting review: with the credentials table locked
// by an operator's long transaction, 16 concurrent issues waited 30 s (the
// batch in flight, until its timeout) and 60 s (the batch queued behind
// it), whatever their callers' deadlines, longer than the API's write
// timeout, and failed with a driver's "timeout: context deadline
// exceeded". Each now fails within the store's write wait, with
// ServiceUnavailable, and issuing works again once the lock is gone.
func TestSlowStoreFailsIssuesWithinTheWriteWait(t *testing.T) {
	url := newURL(t)
	db := open(t, url)
	const wait = 2 * time.Second
	postgres.SetWriteWait(db, wait)
	ctx := context.Background()
	if err := db.CreateCredential(ctx, testCredential("warm", "u")); err != nil {
		t.Fatal(err)
	}
	release := holdCredentials(t, url)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		slowest time.Duration
		errs    []error
	)
	start := time.Now()
	for i := range 16 {
		wg.Go(func() {
			err := db.CreateCredential(ctx, testCredential(fmt.Sprint("slow", i), "u"))
			mu.Lock()
			defer mu.Unlock()
			slowest = max(slowest, time.Since(start))
			errs = append(errs, err)
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(wait + 5*time.Second):
		release()
		<-done
		t.Fatalf("issues against a locked table still waiting %v after they began (write wait %v); all returned after %v",
			wait+5*time.Second, wait, time.Since(start).Round(time.Millisecond))
	}
	for _, err := range errs {
		if code := shiftkey.ErrorCode(err); code != shiftkey.CodeServiceUnavailable {
			t.Fatalf("an issue against a locked table: %v, want %s", err, shiftkey.CodeServiceUnavailable)
		}
	}
	t.Logf("16 issues against a locked table failed within %v", slowest.Round(time.Millisecond))
	release()
	waitFor(t, 40*time.Second, "an issue to succeed once the lock is gone", func() bool {
		return db.CreateCredential(ctx, testCredential(fmt.Sprint("after", time.Now().UnixNano()), "u")) == nil
	})
}
