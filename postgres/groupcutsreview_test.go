package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
)

// Cuts are kept a day: a cut recorded prunes those older, and only those.
func TestAGroupCutPrunesCutsOlderThanADay(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	a := open(t, url)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, age := range []string{"25 hours", "23 hours"} {
		if _, err := conn.Exec(ctx, `INSERT INTO group_cuts (scope, role, grp, reason, owner, at)
			VALUES ('c1', 'r', 'g', $1::text, 'another', now() - $1::text::interval)`, age); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.RecordGroupCut(ctx, shiftkey.GroupCut{Scope: "c1", Role: "r", Group: "g", Reason: "why"}); err != nil {
		t.Fatal(err)
	}
	var left []string
	rows, _ := conn.Query(ctx, `SELECT reason FROM group_cuts ORDER BY at`)
	left, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 2 || left[0] != "23 hours" || left[1] != "why" {
		t.Fatalf("cuts kept %q, want the one 23 hours old and the new one", left)
	}
}

// A cut recorded late (the store was unreachable at the revoke) is dated
// its Age before the store's now: when the revoke was, not when the store
// took it.
func TestALateGroupCutIsDatedByItsAge(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	a, b := open(t, url), open(t, url)
	before := b.Now()
	if err := a.RecordGroupCut(ctx, shiftkey.GroupCut{Scope: "c1", Role: "r", Group: "g", Reason: "why", Age: time.Hour}); err != nil {
		t.Fatal(err)
	}
	after := b.Now()
	got, err := b.GroupCuts(ctx, "c1", "r", time.Time{})
	if err != nil || len(got) != 1 {
		t.Fatalf("read %+v, %v; want the cut", got, err)
	}
	if at := got[0].At; at.Before(before.Add(-time.Hour-time.Second)) || at.After(after.Add(-time.Hour+time.Second)) {
		t.Fatalf("the cut is dated %v, want an hour before it was recorded (%v to %v)", at, before, after)
	}
}
