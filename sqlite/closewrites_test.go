package sqlite_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
)

// Close while writes are under way (serve's shutdown, with the API's
// background key-use writes still running): a write's commit check asked
// the WAL's file-system probe after Close had closed its descriptor (a
// data race; the descriptor's number may by then be another file's).
// Found by http's TestGoSDKRetriesTransientErrors under -race. Each write
// now either passes its check before Close closes the probe or fails;
// none touches the closed descriptor. Run with -race.
func TestCloseWhileWriting(t *testing.T) {
	ctx := context.Background()
	for range 10 {
		db := mustOpen(t, filepath.Join(t.TempDir(), "s.db"))
		if err := db.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "u", ID: "AIDAU", Path: "/", ARN: "arn:aws:iam::1:user/u", CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateAccessKey(ctx, &shiftkey.AccessKey{ID: "AKIAU", Secret: "s", UserName: "u", Status: "Active", CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for j := range 25 {
					// Errors are expected once the store is closed.
					db.RecordAccessKeyUse(ctx, "AKIAU", time.Now().Add(time.Duration(i*25+j)*time.Hour), "sts", "us-east-1")
				}
			}()
		}
		close(start)
		db.Close()
		wg.Wait()
	}
}
