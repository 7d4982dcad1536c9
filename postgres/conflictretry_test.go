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

// injectConflicts makes the server fail the insert of credential id with
// SQLSTATE code (a serialization failure or a deadlock, as another
// replica's transaction causes them) the first times times it runs: a
// sequence counts the attempts, as it is not rolled back with them.
func injectConflicts(t *testing.T, url, id, code string, times int) {
	t.Helper()
	_, err := adminConn(t, url).Exec(context.Background(), fmt.Sprintf(`
		CREATE SEQUENCE conflicts;
		CREATE FUNCTION conflict() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.id = %[1]s AND nextval('conflicts') <= %[3]d THEN
				RAISE EXCEPTION 'injected conflict' USING ERRCODE = %[2]s;
			END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER conflict BEFORE INSERT ON credentials FOR EACH ROW EXECUTE FUNCTION conflict()`,
		quoteLiteral(id), quoteLiteral(code), times))
	if err != nil {
		t.Fatal(err)
	}
}

func quoteLiteral(s string) string { return "'" + s + "'" }

// conflictAttempts is how many times the injected conflict's insert ran.
func conflictAttempts(t *testing.T, url string) int {
	t.Helper()
	var n int
	if err := adminConn(t, url).QueryRow(context.Background(), `SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM conflicts`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// issueBatch writes "first" while the credentials table is held, then
// queues ids behind it, so that they go as one batch once it is released,
// and returns each one's error.
func issueBatch(t *testing.T, db *postgres.DB, url string, ids ...string) []error {
	t.Helper()
	ctx := context.Background()
	taken := postgres.WriterTaken(db)
	release := holdCredentials(t, url)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := db.CreateCredential(ctx, testCredential("first", "u")); err != nil {
			t.Error(err)
		}
	})
	waitFor(t, 5*time.Second, "the first write to be taken", func() bool { return postgres.WriterTaken(db) == taken+1 })
	errs := make([]error, len(ids))
	for i, id := range ids {
		wg.Go(func() { errs[i] = db.CreateCredential(ctx, testCredential(id, "u")) })
		waitFor(t, 5*time.Second, "the write queued", func() bool { return postgres.WriterQueued(db) == i+1 })
	}
	release()
	wg.Wait()
	return errs
}

func storedIDs(t *testing.T, url string) map[string]bool {
	t.Helper()
	rows, err := adminConn(t, url).Query(context.Background(), `SELECT id FROM credentials`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	ids := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids[id] = true
	}
	return ids
}

// A write of a batch that failed for a serialization failure (40001) or a
// deadlock (40P01), retried alone, that meets it again is retried after a
// short backoff until it commits: a transient conflict is not a failure of
// the issue. Found in review: the retry alone answered the raw error, which
// the API sends as InternalFailure (500), which the SDKs do not retry.
func TestConflictRetriedAloneIsRetriedAgain(t *testing.T) {
	for _, code := range []string{"40001", "40P01"} {
		t.Run(code, func(t *testing.T) {
			url := newURL(t)
			db := open(t, url)
			injectConflicts(t, url, "conflicted", code, 3) // the batch, alone, once more
			errs := issueBatch(t, db, url, "ok0", "conflicted", "ok1")
			for i, err := range errs {
				if err != nil {
					t.Errorf("write %d: %v (answered %s)", i, err, apiCode(err))
				}
			}
			stored := storedIDs(t, url)
			for _, id := range []string{"first", "ok0", "conflicted", "ok1"} {
				if !stored[id] {
					t.Errorf("credential %s is not stored", id)
				}
			}
			if n := conflictAttempts(t, url); n != 4 {
				t.Errorf("the conflicted insert ran %d times, want 4 (its batch, alone, 2 retries)", n)
			}
		})
	}
}

// A write that meets a conflict at every retry is answered
// ServiceUnavailable after a bounded number of them, records nothing, and
// fails no other write of its batch.
func TestConflictAtEveryRetryIsServiceUnavailable(t *testing.T) {
	for _, code := range []string{"40001", "40P01"} {
		t.Run(code, func(t *testing.T) {
			url := newURL(t)
			db := open(t, url)
			injectConflicts(t, url, "conflicted", code, 1000)
			errs := issueBatch(t, db, url, "ok0", "conflicted", "ok1")
			if c := apiCode(errs[1]); c != shiftkey.CodeServiceUnavailable {
				t.Errorf("the write that met a conflict at each retry: %v, answered %s, want %s", errs[1], c, shiftkey.CodeServiceUnavailable)
			}
			for _, i := range []int{0, 2} {
				if errs[i] != nil {
					t.Errorf("write %d: %v", i, errs[i])
				}
			}
			if stored := storedIDs(t, url); stored["conflicted"] || !stored["ok0"] || !stored["ok1"] {
				t.Errorf("stored %v, want ok0 and ok1 and not conflicted", stored)
			}
			if n := conflictAttempts(t, url); n < 3 || n > 20 {
				t.Errorf("the conflicted insert ran %d times, want a few bounded retries", n)
			}
		})
	}
}

// apiCode is the code the API answers err with (http's writeError).
func apiCode(err error) string {
	if c := shiftkey.ErrorCode(err); c != "" {
		return c
	}
	if errors.Is(err, shiftkey.ErrStoreUnavailable) {
		return shiftkey.CodeServiceUnavailable
	}
	return shiftkey.CodeInternalFailure
}

// A batch that failed (a duplicate id) has its writes retried alone; a
// write whose caller left meanwhile (its context ended: it was answered
// with an error) is not committed then: no credential is stored that its
// issuer was not told of. Found in review: the retry alone committed it.
func TestRetryAloneSkipsWritesWhoseCallerLeft(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	db := open(t, url)
	if err := db.CreateCredential(ctx, testCredential("dup", "u")); err != nil {
		t.Fatal(err)
	}
	// The insert of "held" waits for an advisory lock the test holds, so
	// that the retry alone stops there until the next write's caller left.
	admin := adminConn(t, url)
	if _, err := admin.Exec(ctx, `CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.id = 'held' THEN PERFORM pg_advisory_xact_lock(77); END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER hold BEFORE INSERT ON credentials FOR EACH ROW EXECUTE FUNCTION hold();
		SELECT pg_advisory_lock(77)`); err != nil {
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
	var dupErr, heldErr, goneErr error
	leave, left := context.WithCancel(ctx)
	goneDone := make(chan struct{})
	wg.Go(func() { dupErr = db.CreateCredential(ctx, testCredential("dup", "u")) })
	waitFor(t, 5*time.Second, "dup queued", func() bool { return postgres.WriterQueued(db) == 1 })
	wg.Go(func() { heldErr = db.CreateCredential(ctx, testCredential("held", "u")) })
	waitFor(t, 5*time.Second, "held queued", func() bool { return postgres.WriterQueued(db) == 2 })
	go func() {
		defer close(goneDone)
		goneErr = db.CreateCredential(leave, testCredential("gone", "u"))
	}()
	waitFor(t, 5*time.Second, "gone queued", func() bool { return postgres.WriterQueued(db) == 3 })
	release()
	// The batch failed on dup; dup failed alone; held waits for the lock.
	waitForLockWait(t, admin, `wait_event = 'advisory'`, nil)
	left()
	<-goneDone
	if goneErr == nil {
		t.Fatal("the write whose caller left was acknowledged")
	}
	if _, err := admin.Exec(ctx, `SELECT pg_advisory_unlock(77)`); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if dupErr == nil {
		t.Error("the duplicate was acknowledged")
	}
	if heldErr != nil {
		t.Errorf("held: %v", heldErr)
	}
	stored := storedIDs(t, url)
	if !stored["held"] {
		t.Error("held is not stored")
	}
	// The writer is done with the batch once a next write commits.
	if err := db.CreateCredential(ctx, testCredential("after", "u")); err != nil {
		t.Fatal(err)
	}
	if storedIDs(t, url)["gone"] {
		t.Errorf("the credential whose caller left before its retry alone was stored (its caller got %v)", goneErr)
	}
}

// A write of the pool's (not the group writer's) that the server rolls
// back for a serialization failure or a deadlock is answered
// ServiceUnavailable, which clients retry, not InternalFailure.
func TestPoolWriteConflictIsServiceUnavailable(t *testing.T) {
	for _, code := range []string{"40001", "40P01"} {
		t.Run(code, func(t *testing.T) {
			ctx := context.Background()
			url := newURL(t)
			db := open(t, url)
			if _, err := adminConn(t, url).Exec(ctx, fmt.Sprintf(`CREATE FUNCTION conflict() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN RAISE EXCEPTION 'injected conflict' USING ERRCODE = '%s'; END $$;
				CREATE TRIGGER conflict BEFORE INSERT ON clusters FOR EACH ROW EXECUTE FUNCTION conflict()`, code)); err != nil {
				t.Fatal(err)
			}
			err := db.CreateCluster(ctx, &shiftkey.Cluster{Identifier: "c", NamespaceID: "ns", NodeType: "dc2.large", DBName: "dev",
				MasterUsername: "admin", Status: "available", CreatedAt: time.Now()})
			if c := apiCode(err); c != shiftkey.CodeServiceUnavailable {
				t.Errorf("CreateCluster that met a conflict: %v, answered %s, want %s", err, c, shiftkey.CodeServiceUnavailable)
			}
		})
	}
}
