package maintenance_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/maintenance"
	"github.com/shiftkey/shiftkey/sqlite"
)

// reconciler counts the sweeps that reached it.
type reconciler struct{ calls atomic.Int32 }

func (r *reconciler) Reconcile(context.Context) (int, error) {
	r.calls.Add(1)
	return 0, nil
}

// live reports which of the credentials of (cluster, login) the store
// still holds, expired or not.
func live(t *testing.T, db *sqlite.DB, login string) int {
	t.Helper()
	creds, _, _, err := db.LiveCredentials(context.Background(), "c1", login, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return len(creds)
}

// The sweep deletes credentials and STS sessions once they have been
// expired for Retention, not before, reconciles every backend each time,
// and runs every Interval.
func TestSweepDeletesAfterRetention(t *testing.T) {
	ctx := context.Background()
	// Opened outside the bubble: the store's own goroutines are not the
	// bubble's to wait for.
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	synctest.Test(t, func(t *testing.T) {
		now := time.Now() // the bubble's clock
		credential := func(login string, expires time.Time) {
			// A login's credentials are found by its salt.
			if _, err := db.LoginSalt(ctx, "c1", login, "", shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: 4096}); err != nil {
				t.Fatal(err)
			}
			c := &shiftkey.Credential{ID: shiftkey.NewUUID(), Cluster: "c1", LoginName: login, DBUser: login, StoredKey: make([]byte, 32), ServerKey: make([]byte, 32),
				CreatedAt: expires.Add(-time.Hour), ExpiresAt: expires}
			if err := db.CreateCredential(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		credential("IAM:old", now.Add(-maintenance.Retention-time.Hour))
		credential("IAM:soon", now.Add(-maintenance.Retention+30*time.Second))
		credential("IAM:fresh", now.Add(time.Hour))
		expired := &shiftkey.Session{AccessKeyID: "ASIAOLD", Secret: "s", Token: "t", RoleName: "r", SessionName: "n",
			CreatedAt: now.Add(-maintenance.Retention - 2*time.Hour), ExpiresAt: now.Add(-maintenance.Retention - time.Hour)}
		if err := db.CreateSession(ctx, expired); err != nil {
			t.Fatal(err)
		}

		backend := &reconciler{}
		sw := &maintenance.Sweeper{Store: db, Backends: func() []maintenance.Reconciler { return []maintenance.Reconciler{backend} }}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { sw.Run(runCtx); close(done) }()
		defer func() { stop(); <-done }()
		synctest.Wait() // the first sweep has run; Run waits for its ticker
		if live(t, db, "IAM:old") != 0 || live(t, db, "IAM:soon") != 1 || live(t, db, "IAM:fresh") != 1 || backend.calls.Load() != 1 {
			t.Fatalf("first sweep: old %d soon %d fresh %d, reconciled %d times; want 0 1 1, once",
				live(t, db, "IAM:old"), live(t, db, "IAM:soon"), live(t, db, "IAM:fresh"), backend.calls.Load())
		}
		if _, err := db.Session(ctx, "ASIAOLD"); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
			t.Fatalf("a session expired past retention: %v", err)
		}
		time.Sleep(maintenance.Interval)
		synctest.Wait()
		if live(t, db, "IAM:soon") != 0 || live(t, db, "IAM:fresh") != 1 || backend.calls.Load() != 2 {
			t.Fatalf("second sweep: soon %d fresh %d, reconciled %d times; want 0 1, twice", live(t, db, "IAM:soon"), live(t, db, "IAM:fresh"), backend.calls.Load())
		}
	})
}

// A store that fails (closed here) does not stop the sweep: the backends
// are still reconciled.
func TestSweepGoesOnAfterStoreFailure(t *testing.T) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := db.DeleteExpiredCredentials(context.Background(), time.Now()); err == nil {
		t.Fatal("test premise: a closed store fails")
	}
	backend := &reconciler{}
	sw := &maintenance.Sweeper{Store: db, Backends: func() []maintenance.Reconciler { return []maintenance.Reconciler{backend} }}
	sw.Sweep(context.Background())
	if backend.calls.Load() != 1 {
		t.Fatalf("reconciled %d times after a store failure, want once", backend.calls.Load())
	}
}
