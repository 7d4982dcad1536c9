package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
)

// fileMishaps are what an operator can do to the store's files under a
// running store.
var fileMishaps = []struct {
	name string
	do   func(t *testing.T, path string)
}{
	{"database deleted", func(t *testing.T, path string) {
		for _, f := range []string{path, path + "-wal", path + "-shm"} {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
	}},
	{"database replaced", func(t *testing.T, path string) {
		other := path + ".restored"
		if err := os.WriteFile(other, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(other, path); err != nil {
			t.Fatal(err)
		}
	}},
	{"wal deleted", func(t *testing.T, path string) {
		if err := os.Remove(path + "-wal"); err != nil {
			t.Fatal(err)
		}
	}},
}

// Found in a failure-injecting review: with the store's file deleted (or
// another moved over it, or its -wal deleted) under a running store,
// issues went on being acknowledged, written to files that no path
// reaches, and lost at the next start. The writer now checks after each
// commit that the path still names the files it wrote, and fails the
// batch (and every later one) when not.
func TestStoreFileDeletedOrReplacedFailsIssues(t *testing.T) {
	for _, tc := range fileMishaps {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "s.db")
			db := mustOpen(t, path)
			defer db.Close()
			now := time.Now()
			if err := db.CreateCredential(ctx, testCred("before", "IAM:a", now)); err != nil {
				t.Fatal(err)
			}
			tc.do(t, path)
			for i := range 3 {
				if err := db.CreateCredential(ctx, testCred(fmt.Sprint("after", i), "IAM:a", now)); err == nil {
					t.Fatalf("issue %d acknowledged after the store's file was %s: it is in no file the path reaches", i, tc.name)
				} else if i == 0 {
					t.Logf("issue after the store's file was %s: %v", tc.name, err)
				}
			}
		})
	}
}

// Found in a failure-injecting review: the check above ran on the issue
// path only. IAM writes and revocations, committed through other
// transactions, were acknowledged into the files no path reaches: a key
// deactivated (or a credential revoked) "successfully" was active again
// after a restart. Every write of the store now fails instead.
func TestStoreFileDeletedOrReplacedFailsEveryWrite(t *testing.T) {
	for _, tc := range fileMishaps {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "s.db")
			db := mustOpen(t, path)
			defer db.Close()
			now := time.Now()
			user := func(name string) *shiftkey.Entity {
				return &shiftkey.Entity{Kind: shiftkey.KindUser, Name: name, ID: shiftkey.NewID("AIDA"), Path: "/",
					ARN: "arn:aws:iam::123456789012:user/" + name, CreatedAt: now}
			}
			key := func(id string) *shiftkey.AccessKey {
				return &shiftkey.AccessKey{ID: id, Secret: "secret", UserName: "alice", Status: "Active", CreatedAt: now}
			}
			if err := db.CreateEntity(ctx, user("alice")); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateAccessKey(ctx, key("AKIAKEPT")); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateCredential(ctx, testCred("leaked", "IAM:a", now)); err != nil {
				t.Fatal(err)
			}
			tc.do(t, path)
			for _, w := range []struct {
				what string
				do   func() error
			}{
				{"UpdateAccessKey (deactivate)", func() error { return db.UpdateAccessKey(ctx, "AKIAKEPT", "Inactive") }},
				{"RevokeCredentials", func() error {
					_, err := db.RevokeCredentials(ctx, shiftkey.CredentialFilter{ID: "leaked"}, now, true)
					return err
				}},
				{"PutInlinePolicy", func() error {
					return db.PutInlinePolicy(ctx, shiftkey.KindUser, "alice", shiftkey.PolicyDocument{Name: "p", Document: `{}`})
				}},
				{"CreateEntity", func() error { return db.CreateEntity(ctx, user("bob")) }},
				{"CreateAccessKey", func() error { return db.CreateAccessKey(ctx, key("AKIANEW")) }},
				{"DeleteAccessKey", func() error { return db.DeleteAccessKey(ctx, "AKIAKEPT") }},
			} {
				if err := w.do(); err == nil {
					t.Errorf("%s acknowledged after the store's file was %s: it is in no file the path reaches, lost at restart", w.what, tc.name)
				} else {
					t.Logf("%s after the store's file was %s: %v", w.what, tc.name, err)
				}
			}
		})
	}
}

// Found reading what /readyz checks: "store writes" (WriteErr) reported
// only the issue path's last batch, so a store whose file was deleted or
// replaced stayed ready until an issue failed, and a balancer kept
// sending it the calls that then failed. The files are now checked when
// asked.
func TestWriteErrReportsAStoreFileDeletedOrReplaced(t *testing.T) {
	for _, tc := range fileMishaps {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.db")
			db := mustOpen(t, path)
			defer db.Close()
			if err := db.CreateCredential(context.Background(), testCred("before", "IAM:a", time.Now())); err != nil {
				t.Fatal(err)
			}
			if err := db.WriteErr(); err != nil {
				t.Fatalf("WriteErr before anything happened to the files: %v", err)
			}
			tc.do(t, path)
			if err := db.WriteErr(); err == nil {
				t.Fatalf("WriteErr with the store's file %s and no write since: nil, want the failure every write would get", tc.name)
			} else {
				t.Logf("WriteErr: %v", err)
			}
		})
	}
}
