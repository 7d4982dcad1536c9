package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
)

// A group cut one replica records reaches the other's feed as a change
// naming its scope and role, and the other reads it, dated by the store's
// clock; the replica that made it does not read it back (it ended its own
// sessions as it revoked), nor does a reader of another scope, another
// role, or cuts since a later time.
func TestGroupCutsReachTheOtherReplicas(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	a, b := open(t, url), open(t, url)
	var onB recorder
	b.Subscribe(onB.add)
	before := b.Now().Add(-time.Second)
	cut := shiftkey.GroupCut{Scope: "c1", Role: "r", Group: "g", Reason: "it may create in a schema"}
	if err := a.RecordGroupCut(ctx, cut); err != nil {
		t.Fatal(err)
	}
	want := shiftkey.Change{Kind: shiftkey.KindGroupCut, Name: "c1\x00r"}
	waitFor(t, time.Second, "the cut's change on the other replica's feed", func() bool {
		for _, c := range onB.snapshot() {
			if c == want {
				return true
			}
		}
		return false
	})
	got, err := b.GroupCuts(ctx, "c1", "r", before)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Group != "g" || got[0].Reason != cut.Reason || got[0].Scope != "c1" || got[0].Role != "r" ||
		got[0].At.Before(before) || got[0].At.After(b.Now().Add(time.Second)) {
		t.Fatalf("the other replica read %+v, want the cut dated by the store's clock", got)
	}
	if all, err := b.GroupCuts(ctx, "c1", "", before); err != nil || len(all) != 1 {
		t.Fatalf("every role's cuts: %+v, %v; want the one", all, err)
	}
	for _, q := range []struct {
		what        string
		scope, role string
		since       time.Time
	}{
		{"another scope", "c2", "r", before},
		{"another role", "c1", "s", before},
		{"since after it", "c1", "r", got[0].At.Add(time.Millisecond)},
	} {
		if got, err := b.GroupCuts(ctx, q.scope, q.role, q.since); err != nil || len(got) != 0 {
			t.Errorf("%s: read %+v, %v; want none", q.what, got, err)
		}
	}
	if own, err := a.GroupCuts(ctx, "c1", "", before); err != nil || len(own) != 0 {
		t.Errorf("the replica that made the cut read %+v, %v; want none", own, err)
	}
}
