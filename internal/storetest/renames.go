package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/shiftkey/shiftkey"
)

// testRenames: RenameEntity moves a user or group to a new name and path
// with everything kept under its name (IAM's UpdateUser / UpdateGroup):
// the user's keys (which then name the new user), memberships, inline and
// attached policies and tags; the group's members and policies. The id
// and creation date stay, and nothing is left under the old name, for an
// entity created again under it to find. A name another entity has (in any
// case) is EntityAlreadyExists, an unknown one NoSuchEntity; the name in
// another case is the same entity.
func testRenames(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	pol := &shiftkey.ManagedPolicy{ARN: "arn:aws:iam::1:policy/p", Name: "p", ID: "ANPAP", Path: "/", Document: `{"x":1}`, CreatedAt: t0, UpdatedAt: t0}
	must("CreateManagedPolicy", s.CreateManagedPolicy(ctx, pol))
	user := &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "bob", ID: "AIDABOB", Path: "/", ARN: "arn:aws:iam::1:user/bob", CreatedAt: t0,
		Tags: []shiftkey.Tag{{Key: "team", Value: "data"}}}
	must("CreateEntity bob", s.CreateEntity(ctx, user))
	must("CreateEntity alice", s.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "alice", ID: "AIDAALICE", Path: "/", ARN: "arn:aws:iam::1:user/alice", CreatedAt: t0}))
	must("CreateEntity devs", s.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindGroup, Name: "devs", ID: "AGPADEVS", Path: "/", ARN: "arn:aws:iam::1:group/devs", CreatedAt: t0}))
	must("CreateEntity ops", s.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindGroup, Name: "ops", ID: "AGPAOPS", Path: "/", ARN: "arn:aws:iam::1:group/ops", CreatedAt: t0}))
	must("CreateAccessKey", s.CreateAccessKey(ctx, &shiftkey.AccessKey{ID: "AKIABOB", Secret: "s3cret", UserName: "bob", Status: "Active", CreatedAt: t0}))
	must("PutInlinePolicy bob", s.PutInlinePolicy(ctx, shiftkey.KindUser, "bob", shiftkey.PolicyDocument{Name: "mine", Document: `{"u":1}`}))
	must("AttachPolicy bob", s.AttachPolicy(ctx, shiftkey.KindUser, "bob", pol.ARN))
	must("AddUserToGroup", s.AddUserToGroup(ctx, "devs", "bob"))
	must("PutInlinePolicy devs", s.PutInlinePolicy(ctx, shiftkey.KindGroup, "devs", shiftkey.PolicyDocument{Name: "ours", Document: `{"g":1}`}))
	must("AttachPolicy devs", s.AttachPolicy(ctx, shiftkey.KindGroup, "devs", pol.ARN))

	// Reads first, so that a caching store has entries under the old names.
	for _, kind := range []shiftkey.EntityKind{shiftkey.KindUser, shiftkey.KindGroup} {
		name := map[shiftkey.EntityKind]string{shiftkey.KindUser: "bob", shiftkey.KindGroup: "devs"}[kind]
		s.Entity(ctx, kind, name)
		s.InlinePolicies(ctx, kind, name)
		s.AttachedPolicies(ctx, kind, name)
	}
	s.AccessKey(ctx, "AKIABOB")
	s.Tags(ctx, shiftkey.KindUser, "bob")
	s.GroupsForUser(ctx, "bob")

	must("RenameEntity bob → robert", s.RenameEntity(ctx, shiftkey.KindUser, &shiftkey.Entity{Name: "BOB"},
		&shiftkey.Entity{Name: "robert", Path: "/eng/", ARN: "arn:aws:iam::1:user/eng/robert"}))
	must("RenameEntity devs → builders", s.RenameEntity(ctx, shiftkey.KindGroup, &shiftkey.Entity{Name: "devs"},
		&shiftkey.Entity{Name: "builders", Path: "/org/", ARN: "arn:aws:iam::1:group/org/builders"}))

	u, err := s.Entity(ctx, shiftkey.KindUser, "robert")
	must("Entity robert", err)
	if u.Name != "robert" || u.ID != "AIDABOB" || u.Path != "/eng/" || u.ARN != "arn:aws:iam::1:user/eng/robert" || !u.CreatedAt.Equal(t0) {
		t.Fatalf("robert: %+v; want bob's id and creation under the new name, path and ARN", u)
	}
	g, err := s.Entity(ctx, shiftkey.KindGroup, "builders")
	must("Entity builders", err)
	if g.ID != "AGPADEVS" || g.ARN != "arn:aws:iam::1:group/org/builders" || !g.CreatedAt.Equal(t0) {
		t.Fatalf("builders: %+v", g)
	}
	k, err := s.AccessKey(ctx, "AKIABOB")
	must("AccessKey", err)
	if k.UserName != "robert" || k.UserID != "AIDABOB" || k.Secret != "s3cret" || k.Status != "Active" {
		t.Fatalf("bob's key after the rename: user %q (id %s) status %s; want robert's (AIDABOB), as it was", k.UserName, k.UserID, k.Status)
	}
	if e, err := s.EntityByID(ctx, shiftkey.KindUser, k.UserID); err != nil || e.Name != "robert" || e.ARN != "arn:aws:iam::1:user/eng/robert" {
		t.Fatalf("EntityByID(%s) after the rename = %+v, %v; want robert", k.UserID, e, err)
	}
	keys, _ := s.AccessKeys(ctx, "robert")
	tags, _ := s.Tags(ctx, shiftkey.KindUser, "robert")
	inline, _ := s.InlinePolicies(ctx, shiftkey.KindUser, "robert")
	attached, _ := s.AttachedPolicies(ctx, shiftkey.KindUser, "robert")
	groups, _ := s.GroupsForUser(ctx, "robert")
	if len(keys) != 1 || len(tags) != 1 || tags[0] != (shiftkey.Tag{Key: "team", Value: "data"}) || len(inline) != 1 || inline[0].Name != "mine" ||
		len(attached) != 1 || len(groups) != 1 || groups[0].Name != "builders" || groups[0].ARN != g.ARN {
		t.Fatalf("robert has keys %d, tags %v, inline %v, attached %d, groups %+v; want bob's", len(keys), tags, inline, len(attached), groups)
	}
	members, _ := s.GroupMembers(ctx, "builders")
	ginline, _ := s.InlinePolicies(ctx, shiftkey.KindGroup, "builders")
	gattached, _ := s.AttachedPolicies(ctx, shiftkey.KindGroup, "builders")
	if !slices.Equal(members, []string{"robert"}) || len(ginline) != 1 || ginline[0].Name != "ours" || len(gattached) != 1 {
		t.Fatalf("builders has members %v, inline %v, attached %d; want devs'", members, ginline, len(gattached))
	}
	ents, err := s.PolicyEntities(ctx, pol.ARN)
	must("PolicyEntities", err)
	var names []string
	for _, e := range ents {
		names = append(names, string(e.Kind)+"/"+e.Name)
	}
	if !slices.Equal(names, []string{"group/builders", "user/robert"}) && !slices.Equal(names, []string{"user/robert", "group/builders"}) {
		t.Fatalf("the policy's entities: %v", names)
	}

	// Nothing is left under the old names: a user and a group created
	// again under them start with nothing.
	if _, err := s.Entity(ctx, shiftkey.KindUser, "bob"); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("Entity(bob) after the rename: %v", err)
	}
	must("CreateEntity bob again", s.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "bob", ID: "AIDABOB2", Path: "/", ARN: "arn:aws:iam::1:user/bob", CreatedAt: t0}))
	must("CreateEntity devs again", s.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindGroup, Name: "devs", ID: "AGPADEVS2", Path: "/", ARN: "arn:aws:iam::1:group/devs", CreatedAt: t0}))
	// The key follows its user by id: still robert's, never the new
	// bob's, whose id is another.
	if k, err := s.AccessKey(ctx, "AKIABOB"); err != nil || k.UserName != "robert" || k.UserID != "AIDABOB" {
		t.Fatalf("bob's key with a new bob: %+v, %v; want robert's (AIDABOB)", k, err)
	}
	if e, err := s.EntityByID(ctx, shiftkey.KindUser, "AIDABOB2"); err != nil || e.Name != "bob" {
		t.Fatalf("EntityByID(AIDABOB2) = %+v, %v; want the new bob", e, err)
	}
	if _, err := s.EntityByID(ctx, shiftkey.KindGroup, "AIDABOB"); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("EntityByID(group, a user's id) = %v, want NoSuchEntity", err)
	}
	keys, _ = s.AccessKeys(ctx, "bob")
	tags, _ = s.Tags(ctx, shiftkey.KindUser, "bob")
	inline, _ = s.InlinePolicies(ctx, shiftkey.KindUser, "bob")
	attached, _ = s.AttachedPolicies(ctx, shiftkey.KindUser, "bob")
	groups, _ = s.GroupsForUser(ctx, "bob")
	members, _ = s.GroupMembers(ctx, "devs")
	ginline, _ = s.InlinePolicies(ctx, shiftkey.KindGroup, "devs")
	if len(keys)+len(tags)+len(inline)+len(attached)+len(groups)+len(members)+len(ginline) != 0 {
		t.Fatalf("the new bob and devs got the old ones': keys %d tags %v inline %v attached %d groups %d; devs' members %v inline %v",
			len(keys), tags, inline, len(attached), len(groups), members, ginline)
	}

	// Collisions, in any case, and unknown names; nothing changes.
	for _, c := range []struct {
		kind       shiftkey.EntityKind
		name, to   string
		wantCode   string
		whatItTook string
	}{
		{shiftkey.KindUser, "robert", "ALICE", shiftkey.CodeEntityAlreadyExists, "another user's name in another case"},
		{shiftkey.KindUser, "robert", "bob", shiftkey.CodeEntityAlreadyExists, "the name created again"},
		{shiftkey.KindUser, "nobody", "somebody", shiftkey.CodeNoSuchEntity, "an unknown user"},
		{shiftkey.KindGroup, "builders", "Ops", shiftkey.CodeEntityAlreadyExists, "another group's name"},
		{shiftkey.KindGroup, "nobody", "somebody", shiftkey.CodeNoSuchEntity, "an unknown group"},
	} {
		err := s.RenameEntity(ctx, c.kind, &shiftkey.Entity{Name: c.name}, &shiftkey.Entity{Name: c.to, Path: "/x/", ARN: fmt.Sprintf("arn:aws:iam::1:%s/x/%s", c.kind, c.to)})
		if shiftkey.ErrorCode(err) != c.wantCode {
			t.Fatalf("RenameEntity to %s: %v, want %s", c.whatItTook, err, c.wantCode)
		}
	}
	// The entity as the caller read it (and authorized the rename on
	// it) is the one renamed: one moved since (another ARN) or created
	// again under the name (another id) is ConcurrentModification, and
	// nothing changes.
	for _, c := range []struct {
		kind shiftkey.EntityKind
		from shiftkey.Entity
		what string
	}{
		{shiftkey.KindUser, shiftkey.Entity{Name: "robert", ID: "AIDABOB", ARN: "arn:aws:iam::1:user/robert"}, "robert as read before its move to /eng/"},
		{shiftkey.KindUser, shiftkey.Entity{Name: "bob", ID: "AIDABOB", ARN: "arn:aws:iam::1:user/bob"}, "bob read before it was renamed and created again"},
		{shiftkey.KindGroup, shiftkey.Entity{Name: "builders", ID: "AGPADEVS", ARN: "arn:aws:iam::1:group/builders"}, "builders as read before its move to /org/"},
	} {
		err := s.RenameEntity(ctx, c.kind, &c.from, &shiftkey.Entity{Name: "stale", Path: "/", ARN: fmt.Sprintf("arn:aws:iam::1:%s/stale", c.kind)})
		if shiftkey.ErrorCode(err) != shiftkey.CodeConcurrentModification {
			t.Fatalf("RenameEntity of %s: %v, want %s", c.what, err, shiftkey.CodeConcurrentModification)
		}
		if _, err := s.Entity(ctx, c.kind, "stale"); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
			t.Fatalf("RenameEntity of %s, refused, renamed it: %v", c.what, err)
		}
	}
	if g, _ := s.Entity(ctx, shiftkey.KindGroup, "builders"); g == nil || g.Path != "/org/" || g.ID != "AGPADEVS" {
		t.Fatalf("builders after the refused renames: %+v", g)
	}
	if u, _ := s.Entity(ctx, shiftkey.KindUser, "robert"); u == nil || u.Path != "/eng/" || u.ID != "AIDABOB" {
		t.Fatalf("robert after the refused renames: %+v", u)
	}
	if k, _ := s.AccessKey(ctx, "AKIABOB"); k == nil || k.UserName != "robert" {
		t.Fatalf("robert's key after the refused renames: %+v", k)
	}

	// The name in another case is the same user.
	must("RenameEntity robert → Robert", s.RenameEntity(ctx, shiftkey.KindUser, &shiftkey.Entity{Name: "robert"},
		&shiftkey.Entity{Name: "Robert", Path: "/eng/", ARN: "arn:aws:iam::1:user/eng/Robert"}))
	if u, _ := s.Entity(ctx, shiftkey.KindUser, "robert"); u == nil || u.Name != "Robert" || u.ID != "AIDABOB" {
		t.Fatalf("after the case change: %+v", u)
	}
	if k, _ := s.AccessKey(ctx, "AKIABOB"); k == nil || k.UserName != "Robert" {
		t.Fatalf("the key after the case change: %+v", k)
	}
}

// testRenameRacingWrites: writes that hang rows off a user's name (an
// inline policy, an attachment, a tag, a membership, a key), made while
// the user is renamed, either land before the rename and move with it or
// find no user under the old name: none is left under the old name,
// where a user created again under it would get it.
func testRenameRacingWrites(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	pol := racedPolicyAndGroup(t, s)
	for round := range 20 {
		old, to := fmt.Sprintf("racer%d", round), fmt.Sprintf("renamed%d", round)
		if err := s.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: old, ID: "AIDA" + old, Path: "/", ARN: "arn:aws:iam::1:user/" + old, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		errs := Concurrently(6, func(i int) error {
			var err error
			switch i {
			case 0:
				return s.RenameEntity(ctx, shiftkey.KindUser, &shiftkey.Entity{Name: old}, &shiftkey.Entity{Name: to, Path: "/", ARN: "arn:aws:iam::1:user/" + to})
			case 1:
				err = s.PutInlinePolicy(ctx, shiftkey.KindUser, old, shiftkey.PolicyDocument{Name: "p", Document: `{"x":1}`})
			case 2:
				err = s.AttachPolicy(ctx, shiftkey.KindUser, old, pol.ARN)
			case 3:
				err = s.TagEntity(ctx, shiftkey.KindUser, old, []shiftkey.Tag{{Key: "role", Value: "admin"}})
			case 4:
				err = s.AddUserToGroup(ctx, "crew", old)
			case 5:
				err = s.CreateAccessKey(ctx, &shiftkey.AccessKey{ID: "AKIA" + old, Secret: "s", UserName: old, Status: "Active", CreatedAt: t0})
			}
			if err != nil && shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
				return err
			}
			return nil
		})
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		inline, _ := s.InlinePolicies(ctx, shiftkey.KindUser, old)
		attached, _ := s.AttachedPolicies(ctx, shiftkey.KindUser, old)
		tags, _ := s.Tags(ctx, shiftkey.KindUser, old)
		keys, _ := s.AccessKeys(ctx, old)
		members, _ := s.GroupMembers(ctx, "crew")
		if len(inline)+len(attached)+len(tags)+len(keys) != 0 || slices.Contains(members, old) {
			t.Fatalf("round %d: left under the old name %s: inline %v, attached %d, tags %v, keys %d, crew members %v", round, old, inline, len(attached), tags, len(keys), members)
		}
	}
}

// testRenameDeclaring: a rename inside a Declaring run (the reconcile
// giving a declared user its name back) is part of the run: a refused one
// (the name taken) fails only itself, the run reads the renamed user, and
// a run that fails leaves the old name, one that succeeds the new.
func testRenameDeclaring(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	ds, ok := s.(shiftkey.DeclaredStore)
	if !ok {
		t.Skip("not a DeclaredStore")
	}
	for _, name := range []string{"moved", "taken"} {
		if err := s.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: name, ID: "AIDA" + name, Path: "/", ARN: "arn:aws:iam::1:user/" + name, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateAccessKey(ctx, &shiftkey.AccessKey{ID: "AKIAMOVED", Secret: "s", UserName: "moved", Status: "Active", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	failed := errors.New("the run fails")
	apply := func(ctx context.Context) error {
		if err := s.RenameEntity(ctx, shiftkey.KindUser, &shiftkey.Entity{Name: "moved"}, &shiftkey.Entity{Name: "Taken", Path: "/", ARN: "arn:aws:iam::1:user/Taken"}); shiftkey.ErrorCode(err) != shiftkey.CodeEntityAlreadyExists {
			return fmt.Errorf("a rename to a taken name in the run: %v, want EntityAlreadyExists", err)
		}
		if err := s.RenameEntity(ctx, shiftkey.KindUser, &shiftkey.Entity{Name: "moved"}, &shiftkey.Entity{Name: "declared", Path: "/d/", ARN: "arn:aws:iam::1:user/d/declared"}); err != nil {
			return err
		}
		if k, err := s.AccessKey(ctx, "AKIAMOVED"); err != nil || k.UserName != "declared" {
			return fmt.Errorf("the run does not read its rename: %+v %v", k, err)
		}
		return nil
	}
	err := ds.Declaring(ctx, func(ctx context.Context) error {
		if err := apply(ctx); err != nil {
			return err
		}
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatalf("the failing run: %v", err)
	}
	if k, err := s.AccessKey(ctx, "AKIAMOVED"); err != nil || k.UserName != "moved" {
		t.Fatalf("the key after the failed run: %+v %v; want moved's", k, err)
	}
	if _, err := s.Entity(ctx, shiftkey.KindUser, "declared"); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("user declared after the failed run: %v, want NoSuchEntity", err)
	}
	if err := ds.Declaring(ctx, apply); err != nil {
		t.Fatalf("the run that succeeds: %v", err)
	}
	if u, err := s.Entity(ctx, shiftkey.KindUser, "declared"); err != nil || u.ID != "AIDAmoved" || u.Path != "/d/" {
		t.Fatalf("user declared after the run: %+v %v", u, err)
	}
	if k, err := s.AccessKey(ctx, "AKIAMOVED"); err != nil || k.UserName != "declared" {
		t.Fatalf("the key after the run: %+v %v", k, err)
	}
}
