package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/postgres"
)

// On a store whose database defaults to SERIALIZABLE, a batch in which one
// write races another session (a new login's salt that it inserted and
// commits while the batch waits on its row) takes none of the others down
// with it, and none gets a wrong answer: every credential of the batch is
// stored, and the salt write answers the salt the store holds. The
// store's sessions run READ COMMITTED (setUpSession): the batch reads the
// other's salt after its wait and commits as one, where at SERIALIZABLE
// it met a serialization failure (40001) and each write went again alone
// (that path, with the failure injected: TestConflictRetriedAloneIsRetriedAgain).
func TestBatchOnSerializableDatabaseFailsNoOther(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	admin := adminConn(t, url)
	if _, err := admin.Exec(ctx, `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_isolation = serializable', current_database()); END $$`); err != nil {
		t.Fatal(err)
	}
	db := open(t, url)
	if err := db.CreateCredential(ctx, testCredential("warm", "u")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.LoginSalt(ctx, "gc", "u", "", shiftkey.LoginSalt{Salt: []byte{1}, Iterations: 1}); err != nil {
		t.Fatal(err)
	}
	// Another session (another replica) inserts the salt of "raced" and
	// commits only once the writer's batch waits on its row.
	other := adminConn(t, url)
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	theirs := []byte("their-salt")
	if _, err := tx.Exec(ctx, `INSERT INTO login_salts (cluster, login_name, salt, iterations) VALUES ('gc', 'raced', $1, 7)`, theirs); err != nil {
		t.Fatal(err)
	}
	taken := postgres.WriterTaken(db)
	release := holdCredentials(t, url)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := db.CreateCredential(ctx, testCredential("first", "u")); err != nil {
			t.Error(err)
		}
	})
	waitFor(t, 5*time.Second, "the first write to be taken", func() bool { return postgres.WriterTaken(db) == taken+1 })
	errs := make([]error, 6)
	var salt shiftkey.LoginSalt
	for i := range errs {
		if i == 3 {
			wg.Go(func() {
				salt, errs[i] = db.LoginSalt(ctx, "gc", "raced", "", shiftkey.LoginSalt{Salt: []byte("mine"), Iterations: 1})
			})
		} else {
			wg.Go(func() { errs[i] = db.CreateCredential(ctx, testCredential(fmt.Sprint("s", i), "u")) })
		}
	}
	waitFor(t, 5*time.Second, "six writes queued", func() bool { return postgres.WriterQueued(db) == 6 })
	commits := postgres.WriterCommits(db)
	release()
	// The batch of six now waits on the uncommitted salt row.
	waitFor(t, 5*time.Second, "the batch to wait on the other session's row", func() bool {
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%login_salts%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	})
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	if !bytes.Equal(salt.Salt, theirs) || salt.Iterations != 7 {
		t.Errorf("the raced login's salt: %q/%d, want the stored %q/7", salt.Salt, salt.Iterations, theirs)
	}
	live, _, _, err := db.LiveCredentials(ctx, "gc", "u", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 7 { // warm, first, s0, s1, s2, s4, s5
		t.Errorf("%d credentials stored, want 7", len(live))
	}
	// The batch of six waited for the other session's salt and committed
	// as one: the first's commit, then the six's.
	if n := postgres.WriterCommits(db) - commits; n != 2 {
		t.Errorf("%d commits after the lock's release, want 2 (the first, then the six together)", n)
	}
}
