package storecache_test

import (
	"context"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/storecache"
)

// A Declaring run's writes commit together when it returns. A call of
// another request that reads, during the run, what the run has written
// (and so dropped from the cache) reads the old, committed value: cached,
// it would be answered after the commit, and this process hears nothing
// of its own commit to drop it (the feed skips one's own changes). And a
// value the run read of its own writes is not cached either: a run that
// fails is rolled back.
func TestDeclaringRunLeavesNothingStaleInTheCache(t *testing.T) {
	ctx := context.Background()
	s := pgtest.Server(t)
	db := openReplica(t, s.ConnString(s.Superuser(), pgtest.NewDatabase(t)))
	c := storecache.New(db)
	// The cache answers from memory only while the feed is current.
	for deadline := time.Now().Add(10 * time.Second); !db.Current(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the change feed is not current after 10 s")
		}
	}
	if err := c.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "u", ID: "AIDACACHEDECLARE0001", Path: "/", ARN: "arn:aws:iam::1:user/u", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"AKIACACHEDECLARE0001", "AKIACACHEDECLARE0002"} {
		if err := c.CreateAccessKey(ctx, &shiftkey.AccessKey{ID: id, Secret: "s", UserName: "u", Status: "Active", CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Declaring(ctx, func(run context.Context) error {
		if err := c.UpdateAccessKey(run, "AKIACACHEDECLARE0001", "Inactive"); err != nil {
			return err
		}
		// Another request's read (not the run's context) before the commit.
		if got := keyStatus(t, c, "AKIACACHEDECLARE0001"); got != "Active" {
			t.Errorf("another request read %s before the run committed, want the committed Active", got)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := keyStatus(t, c, "AKIACACHEDECLARE0001"); got != "Inactive" {
		t.Errorf("after the run committed the key's deactivation, the cache answers %s", got)
	}
	failed := context.Canceled
	err := c.Declaring(ctx, func(run context.Context) error {
		if err := c.UpdateAccessKey(run, "AKIACACHEDECLARE0002", "Inactive"); err != nil {
			return err
		}
		// The run reads its own write.
		if k, err := c.AccessKey(run, "AKIACACHEDECLARE0002"); err != nil || k.Status != "Inactive" {
			t.Errorf("the run reads %v, %v of its own write", k, err)
		}
		return failed
	})
	if err != failed {
		t.Fatal(err)
	}
	if got := keyStatus(t, c, "AKIACACHEDECLARE0002"); got != "Active" {
		t.Errorf("after the run failed (rolled back), the cache answers %s, want Active", got)
	}
}
