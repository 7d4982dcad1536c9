package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Found in a failure-injecting review: with the store's file deleted (or
// another moved over it, or its -wal deleted) under a running store,
// issues went on being acknowledged, written to files that no path
// reaches, and lost at the next start. The writer now checks after each
// commit that the path still names the files it wrote, and fails the
// batch (and every later one) when not.
func TestStoreFileDeletedOrReplacedFailsIssues(t *testing.T) {
	for _, tc := range []struct {
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
	} {
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
