package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/postgres"
)

// Found in review-gcommit: on a store server with lock_timeout or
// statement_timeout set (a common guard on managed PostgreSQL), a lock
// held on credentials failed the group writer's batch with 55P03 or 57014;
// the writer took that for the fault of one of its writes, retried each
// alone (each waiting out the timeout again, in turn), and each caller got
// the raw PostgreSQL error, which the API answers InternalFailure, where
// the docs promise ServiceUnavailable for a store that does not commit in
// time. Now each caller gets ServiceUnavailable, at the first timeout.
func TestServerTimeoutsOnALockedTableAreUnavailable(t *testing.T) {
	for _, setting := range []string{"lock_timeout", "statement_timeout"} {
		t.Run(setting, func(t *testing.T) {
			ctx := context.Background()
			url := newURL(t)
			admin := adminConn(t, url)
			if _, err := admin.Exec(ctx, fmt.Sprintf(`DO $$ BEGIN EXECUTE format('ALTER DATABASE %%I SET %s = 300', current_database()); END $$`, setting)); err != nil {
				t.Fatal(err)
			}
			db := open(t, url)
			if err := db.CreateCredential(ctx, testCredential("warm", "u")); err != nil {
				t.Fatal(err)
			}
			taken := postgres.WriterTaken(db)
			release := holdCredentials(t, url)
			defer release()
			var wg sync.WaitGroup
			errs := make([]error, 5)
			wg.Go(func() { errs[0] = db.CreateCredential(ctx, testCredential("first", "u")) })
			waitFor(t, 5*time.Second, "the first write to be taken", func() bool { return postgres.WriterTaken(db) == taken+1 })
			for i := 1; i < len(errs); i++ {
				wg.Go(func() { errs[i] = db.CreateCredential(ctx, testCredential(fmt.Sprint("q", i), "u")) })
			}
			wg.Wait()
			for i, err := range errs {
				if err == nil {
					t.Fatalf("write %d committed while the table was locked", i)
				}
				if !errors.Is(err, shiftkey.ErrStoreUnavailable) && shiftkey.ErrorCode(err) != shiftkey.CodeServiceUnavailable {
					t.Errorf("write %d against a locked table: %v, want the store unavailable (ServiceUnavailable)", i, err)
				}
			}
		})
	}
}
