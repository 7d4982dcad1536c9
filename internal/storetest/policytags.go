package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/shiftkey/shiftkey"
)

// testPolicyTags: a customer-managed policy's tags (kind KindPolicy, named
// by its ARN) are written with the policy (ManagedPolicy.Tags) in its
// create, or by TagEntity, which counts them against MaxTags in its write;
// a policy that does not exist takes none; DeletePolicy takes them away,
// and a policy created again under the ARN has none.
func testPolicyTags(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	const arn = "arn:aws:iam::1:policy/tagged"
	tags := []shiftkey.Tag{{Key: "ManagedBy", Value: "terraform"}, {Key: "team", Value: "data"}}
	newPolicy := func(id string, tags []shiftkey.Tag) *shiftkey.ManagedPolicy {
		return &shiftkey.ManagedPolicy{ARN: arn, Name: "tagged", ID: id, Path: "/", Document: `{"x":1}`, CreatedAt: t0, UpdatedAt: t0, Tags: tags}
	}
	read := func() []shiftkey.Tag {
		t.Helper()
		got, err := s.Tags(ctx, shiftkey.KindPolicy, arn)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if err := s.TagEntity(ctx, shiftkey.KindPolicy, arn, tags); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("TagEntity of a policy that does not exist: %v, want NoSuchEntity", err)
	}
	many := make([]shiftkey.Tag, shiftkey.MaxTags+1)
	for i := range many {
		many[i] = shiftkey.Tag{Key: fmt.Sprintf("k%02d", i), Value: "v"}
	}
	if err := s.CreateManagedPolicy(ctx, newPolicy("ANPATAGGED0000000000", many)); shiftkey.ErrorCode(err) != shiftkey.CodeLimitExceeded {
		t.Fatalf("CreateManagedPolicy with %d tags: %v, want LimitExceeded", len(many), err)
	}
	if _, err := s.ManagedPolicy(ctx, arn); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("the refused policy exists: %v", err)
	}

	if err := s.CreateManagedPolicy(ctx, newPolicy("ANPATAGGED0000000001", tags)); err != nil {
		t.Fatal(err)
	}
	if got := read(); !slices.Equal(got, tags) {
		t.Fatalf("Tags after CreateManagedPolicy with tags: %v, want %v", got, tags)
	}
	if got, err := s.ManagedPolicy(ctx, arn); err != nil || got.Tags != nil {
		t.Fatalf("ManagedPolicy read back: %+v %v (its tags are read by Tags)", got, err)
	}
	// A policy of another name is another owner.
	other := &shiftkey.ManagedPolicy{ARN: "arn:aws:iam::1:policy/other", Name: "other", ID: "ANPATAGGED0000000009", Path: "/", Document: `{"x":1}`, CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateManagedPolicy(ctx, other); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Tags(ctx, shiftkey.KindPolicy, other.ARN); err != nil || len(got) != 0 {
		t.Fatalf("Tags of an untagged policy: %v %v", got, err)
	}

	// TagEntity replaces a value (a key differing in case is the key),
	// adds the new at the end, and counts against MaxTags in its write.
	if err := s.TagEntity(ctx, shiftkey.KindPolicy, arn, []shiftkey.Tag{{Key: "TEAM", Value: "ops"}, {Key: "owner", Value: "platform"}}); err != nil {
		t.Fatal(err)
	}
	want := []shiftkey.Tag{{Key: "ManagedBy", Value: "terraform"}, {Key: "TEAM", Value: "ops"}, {Key: "owner", Value: "platform"}}
	if got := read(); !slices.Equal(got, want) {
		t.Fatalf("Tags after TagEntity: %v, want %v", got, want)
	}
	if err := s.UntagEntity(ctx, shiftkey.KindPolicy, arn, []string{"team", "absent"}); err != nil {
		t.Fatal(err)
	}
	want = []shiftkey.Tag{{Key: "ManagedBy", Value: "terraform"}, {Key: "owner", Value: "platform"}}
	if got := read(); !slices.Equal(got, want) {
		t.Fatalf("Tags after UntagEntity: %v, want %v", got, want)
	}
	if err := s.TagEntity(ctx, shiftkey.KindPolicy, arn, many[:shiftkey.MaxTags-1]); shiftkey.ErrorCode(err) != shiftkey.CodeLimitExceeded {
		t.Fatalf("TagEntity past MaxTags: %v, want LimitExceeded", err)
	}
	if got := read(); !slices.Equal(got, want) {
		t.Fatalf("Tags after a refused TagEntity: %v, want %v", got, want)
	}

	// Deleted, then created again under the ARN: the tags are gone.
	if err := s.DeleteManagedPolicy(ctx, arn); err != nil {
		t.Fatal(err)
	}
	if got := read(); len(got) != 0 {
		t.Fatalf("Tags of a deleted policy: %v", got)
	}
	if err := s.CreateManagedPolicy(ctx, newPolicy("ANPATAGGED0000000002", nil)); err != nil {
		t.Fatal(err)
	}
	if got := read(); len(got) != 0 {
		t.Fatalf("a policy created again under the ARN has the old one's tags: %v", got)
	}
}

// testPolicyTagQuotaConcurrent: concurrent taggers of one policy adding
// different keys cannot pass MaxTags together.
func testPolicyTagQuotaConcurrent(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	const arn = "arn:aws:iam::1:policy/labelled"
	if err := s.CreateManagedPolicy(ctx, &shiftkey.ManagedPolicy{ARN: arn, Name: "labelled", ID: "ANPALABELLED00000001", Path: "/", Document: `{"x":1}`, CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	errs := Concurrently(25, func(i int) error {
		tags := make([]shiftkey.Tag, 5)
		for j := range tags {
			tags[j] = shiftkey.Tag{Key: fmt.Sprintf("k%02d-%d", i, j), Value: "v"}
		}
		return s.TagEntity(ctx, shiftkey.KindPolicy, arn, tags)
	})
	ok := Succeeded(t, "TagEntity", errs, LimitExceeded)
	tags, err := s.Tags(ctx, shiftkey.KindPolicy, arn)
	if err != nil || ok != shiftkey.MaxTags/5 || len(tags) != shiftkey.MaxTags {
		t.Fatalf("%d of 25 concurrent taggings of 5 keys succeeded, %d tags stored (%v); want %d and %d", ok, len(tags), err, shiftkey.MaxTags/5, shiftkey.MaxTags)
	}
}
