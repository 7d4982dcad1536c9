package sqlite_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
)

func testCred(id, login string, now time.Time) *shiftkey.Credential {
	return &shiftkey.Credential{ID: id, Cluster: "c", LoginName: login, DBUser: "u", StoredKey: make([]byte, 32), ServerKey: make([]byte, 32),
		CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// holdWriteLock takes SQLite's write lock on path from a connection of its
// own, as another writer would; release lets it go.
func holdWriteLock(t *testing.T, path string) (release func()) {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := raw.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
			t.Error(err)
		}
		conn.Close()
		raw.Close()
	}
}

// Writes that queue while a batch is being committed go out together in
// the next transaction: ten credentials, two commits.
func TestGroupCommitBatchesQueuedWrites(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	db := mustOpen(t, path)
	defer db.Close()
	now := time.Now()
	if _, err := db.LoginSalt(ctx, "c", "IAM:a", "", shiftkey.LoginSalt{Salt: make([]byte, 16), Iterations: 4096}); err != nil {
		t.Fatal(err)
	}
	before, taken := db.GroupCommits(), db.TakenWrites()

	release := holdWriteLock(t, path)
	errs := make(chan error, 10)
	go func() { errs <- db.CreateCredential(ctx, testCred("first", "IAM:a", now)) }()
	// The writer has taken the first write and waits for the lock.
	waitFor(t, "the writer to take the first write", func() bool { return db.TakenWrites() == taken+1 })
	for i := range 9 {
		go func() { errs <- db.CreateCredential(ctx, testCred(fmt.Sprint("next", i), "IAM:a", now)) }()
	}
	waitFor(t, "nine queued writes", func() bool { return db.QueuedWrites() == 9 })
	release()
	for range 10 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := db.GroupCommits() - before; got != 2 {
		t.Fatalf("10 writes took %d commits, want 2 (the first alone, then the nine queued behind it)", got)
	}
	creds, _, _, err := db.LiveCredentials(ctx, "c", "IAM:a", now)
	if err != nil || len(creds) != 10 {
		t.Fatalf("live credentials: %d, %v", len(creds), err)
	}
}

// A login's salt that exists is read without a write: LoginSalt answers
// while another connection holds the write lock, and commits nothing.
func TestLoginSaltReadsExistingWithoutWriting(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	db := mustOpen(t, path)
	defer db.Close()
	first := shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: 4096}
	if _, err := db.LoginSalt(ctx, "c", "IAM:a", "", first); err != nil {
		t.Fatal(err)
	}
	commits := db.GroupCommits()
	release := holdWriteLock(t, path)
	defer release()
	ctx2, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	got, err := db.LoginSalt(ctx2, "c", "IAM:a", "", shiftkey.LoginSalt{Salt: []byte("fedcba9876543210"), Iterations: 1})
	if err != nil {
		t.Fatalf("LoginSalt of an existing login waited for the write lock: %v", err)
	}
	if !bytes.Equal(got.Salt, first.Salt) || got.Iterations != 4096 {
		t.Fatalf("salt %q/%d, want the first one", got.Salt, got.Iterations)
	}
	if db.GroupCommits() != commits {
		t.Fatal("reading an existing salt committed a transaction")
	}
}

// A burst of 64 concurrent issuers: every login keeps one salt, every
// acknowledged credential is there after the store is reopened, and the
// writes shared commits.
func TestGroupCommitConcurrentBurst(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	db := mustOpen(t, path)
	now := time.Now()
	const workers, each, logins = 64, 8, 8
	var mu sync.Mutex
	salts := map[string][]byte{}
	acked := map[string][]string{} // login → ids
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				login := fmt.Sprintf("IAM:u%d", (w+i)%logins)
				fresh := shiftkey.LoginSalt{Salt: make([]byte, 16), Iterations: 4096}
				rand.Read(fresh.Salt)
				s, err := db.LoginSalt(ctx, "c", login, "", fresh)
				if err != nil {
					t.Error(err)
					return
				}
				id := fmt.Sprintf("w%d-%d", w, i)
				if err := db.CreateCredential(ctx, testCred(id, login, now)); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if prev, ok := salts[login]; ok && !bytes.Equal(prev, s.Salt) {
					t.Errorf("%s: two salts handed out", login)
				}
				salts[login] = s.Salt
				acked[login] = append(acked[login], id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	commits := db.GroupCommits()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if commits >= workers*each+logins {
		t.Errorf("%d writes took %d commits: none shared", workers*each+logins, commits)
	}
	t.Logf("%d credentials and %d salts in %d commits", workers*each, logins, commits)

	db = mustOpen(t, path)
	defer db.Close()
	for login, ids := range acked {
		creds, salt, ok, err := db.LiveCredentials(ctx, "c", login, now)
		if err != nil || !ok {
			t.Fatalf("%s: %v %v", login, ok, err)
		}
		if !bytes.Equal(salt.Salt, salts[login]) {
			t.Errorf("%s: salt changed across reopen", login)
		}
		have := map[string]bool{}
		for _, c := range creds {
			have[c.ID] = true
		}
		for _, id := range ids {
			if !have[id] {
				t.Errorf("%s: acknowledged credential %s lost", login, id)
			}
		}
	}
}

// A cluster deleted and created again starts its logins afresh: the salt
// LoginSalt remembered for the old cluster is not handed out again.
func TestLoginSaltAfterClusterDeleted(t *testing.T) {
	ctx := context.Background()
	db := tempStore(t)
	cl := &shiftkey.Cluster{Identifier: "c", NamespaceID: "n", NodeType: "dc2.large", DBName: "dev", MasterUsername: "m", Status: "available"}
	if err := db.CreateCluster(ctx, cl); err != nil {
		t.Fatal(err)
	}
	old := shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: 4096}
	if _, err := db.LoginSalt(ctx, "c", "IAM:a", "", old); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteCluster(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateCluster(ctx, cl); err != nil {
		t.Fatal(err)
	}
	fresh := shiftkey.LoginSalt{Salt: []byte("fedcba9876543210"), Iterations: 1}
	got, err := db.LoginSalt(ctx, "c", "IAM:a", "", fresh)
	if err != nil || !bytes.Equal(got.Salt, fresh.Salt) {
		t.Fatalf("salt after the cluster was recreated: %q %v, want the fresh one", got.Salt, err)
	}
	now := time.Now()
	if err := db.CreateCredential(ctx, testCred("x", "IAM:a", now)); err != nil {
		t.Fatal(err)
	}
	if _, salt, ok, err := db.LiveCredentials(ctx, "c", "IAM:a", now); err != nil || !ok || !bytes.Equal(salt.Salt, fresh.Salt) {
		t.Fatalf("stored salt %q %v %v, want the fresh one", salt.Salt, ok, err)
	}
}

// A write gives up its request's admission place (shiftkey.WithAdmission)
// before it waits for its commit: while another connection holds the
// write lock, the place is already given up.
func TestWriteLeavesAdmissionBeforeItsCommit(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	db := mustOpen(t, path)
	defer db.Close()
	now := time.Now()
	for _, write := range []struct {
		name string
		run  func(context.Context) error
	}{
		{"salt", func(ctx context.Context) error {
			_, err := db.LoginSalt(ctx, "c", "IAM:new", "", shiftkey.LoginSalt{Salt: make([]byte, 16), Iterations: 1})
			return err
		}},
		{"credential", func(ctx context.Context) error { return db.CreateCredential(ctx, testCred("one", "IAM:new", now)) }},
	} {
		var left atomic.Bool
		actx := shiftkey.WithAdmission(ctx, func() { left.Store(true) })
		release := holdWriteLock(t, path)
		done := make(chan error, 1)
		go func() { done <- write.run(actx) }()
		waitFor(t, write.name+" to give up its place", left.Load)
		select {
		case err := <-done:
			t.Fatalf("%s: committed while another connection held the write lock: %v", write.name, err)
		default:
		}
		release()
		if err := <-done; err != nil {
			t.Fatalf("%s: %v", write.name, err)
		}
	}
}

// An issue announces its credential when it gets the login's salt, read
// from memory or written, so that a writer about to commit a small batch
// waits for it (groupcommit.Gather) instead of leaving it a flush of its
// own; storing the credential takes the announcement back.
func TestLoginSaltAnnouncesTheCredential(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, filepath.Join(t.TempDir(), "s.db"))
	defer db.Close()
	now := time.Now()
	for i, how := range []string{"a new login's salt", "a known login's salt"} {
		if _, err := db.LoginSalt(ctx, "c", "IAM:a", "", shiftkey.LoginSalt{Salt: make([]byte, 16), Iterations: 4096}); err != nil {
			t.Fatal(err)
		}
		if got := db.ComingWrites(); got != 1 {
			t.Fatalf("after %s: %d writes announced, want 1", how, got)
		}
		if err := db.CreateCredential(ctx, testCred(fmt.Sprint("cred", i), "IAM:a", now)); err != nil {
			t.Fatal(err)
		}
		if got := db.ComingWrites(); got != 0 {
			t.Fatalf("after the credential of %s: %d writes announced, want 0", how, got)
		}
	}
}

// A write of a batch that fails (a credential id already stored, and one
// repeated within the batch) fails only itself: the others of its batch
// commit, in the one transaction, and the salt written among them is
// answered.
func TestGroupCommitFailureIsolated(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	db := mustOpen(t, path)
	defer db.Close()
	now := time.Now()
	if _, err := db.LoginSalt(ctx, "c", "IAM:a", "", shiftkey.LoginSalt{Salt: make([]byte, 16), Iterations: 1}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateCredential(ctx, testCred("dup", "IAM:a", now)); err != nil {
		t.Fatal(err)
	}
	taken := db.TakenWrites()
	release := holdWriteLock(t, path)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := db.CreateCredential(ctx, testCred("first", "IAM:a", now)); err != nil {
			t.Error(err)
		}
	})
	waitFor(t, "the writer to take the first write", func() bool { return db.TakenWrites() == taken+1 })
	ids := []string{"ok0", "dup", "ok1", "twice", "twice", "ok2"}
	errs := make([]error, len(ids))
	for i, id := range ids {
		wg.Go(func() { errs[i] = db.CreateCredential(ctx, testCred(id, "IAM:a", now)) })
		waitFor(t, "the write to queue", func() bool { return db.QueuedWrites() == i+1 })
	}
	var salt shiftkey.LoginSalt
	var saltErr error
	wg.Go(func() {
		salt, saltErr = db.LoginSalt(ctx, "c", "IAM:fresh", "", shiftkey.LoginSalt{Salt: []byte("fresh-salt-16byt"), Iterations: 1})
	})
	waitFor(t, "the salt write to queue", func() bool { return db.QueuedWrites() == len(ids)+1 })
	commits := db.GroupCommits()
	release()
	wg.Wait()
	for i, err := range errs {
		if want := ids[i] == "dup" || i == 4; (err != nil) != want {
			t.Errorf("write %d (%s): err = %v, want failed %v", i, ids[i], err, want)
		}
	}
	if saltErr != nil || string(salt.Salt) != "fresh-salt-16byt" {
		t.Errorf("the salt written in the batch: %q, %v", salt.Salt, saltErr)
	}
	if n := db.GroupCommits() - commits; n != 2 {
		t.Errorf("%d commits, want 2 (the first, then the batch of seven)", n)
	}
	creds, _, _, err := db.LiveCredentials(ctx, "c", "IAM:a", now)
	if err != nil || len(creds) != 6 { // dup, first, ok0, ok1, twice, ok2
		t.Fatalf("live credentials: %d, %v; want 6", len(creds), err)
	}
}

// Found in review-gcommit: a write lock another process holds past
// busy_timeout (an operator's sqlite3 shell in a transaction, a long
// `credentials revoke`) failed the batch's BEGIN IMMEDIATE with
// SQLITE_BUSY, which reached the API as InternalFailure (500, logged as
// an internal error), where the docs promise ServiceUnavailable for a
// store that did not record the write in time. The writer now answers
// such a batch StoreUnavailable; nothing of it was written.
func TestWriteLockHeldPastBusyTimeoutIsUnavailable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	db := mustOpen(t, path)
	defer db.Close()
	now := time.Now()
	if _, err := db.LoginSalt(ctx, "c", "IAM:a", "", shiftkey.LoginSalt{Salt: make([]byte, 16), Iterations: 1}); err != nil {
		t.Fatal(err)
	}
	release := holdWriteLock(t, path)
	err := db.CreateCredential(ctx, testCred("locked-out", "IAM:a", now))
	release()
	if err == nil {
		t.Fatal("a write committed while another connection held the write lock")
	}
	if code := shiftkey.ErrorCode(err); code != shiftkey.CodeServiceUnavailable {
		t.Fatalf("a write that waited out busy_timeout: %v (code %q), want %s", err, code, shiftkey.CodeServiceUnavailable)
	}
	if db.WriteErr() == nil {
		t.Error("WriteErr is nil after a batch failed for the write lock")
	}
	if err := db.CreateCredential(ctx, testCred("after", "IAM:a", now)); err != nil {
		t.Fatalf("a write once the lock is gone: %v", err)
	}
	creds, _, _, err := db.LiveCredentials(ctx, "c", "IAM:a", now)
	if err != nil || len(creds) != 1 || creds[0].ID != "after" {
		t.Fatalf("stored credentials %v, %v; want only the one written after the lock", creds, err)
	}
}
