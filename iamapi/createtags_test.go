package iamapi_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/authz"
	"github.com/shiftkey/shiftkey/iamapi"
	"github.com/shiftkey/shiftkey/sqlite"
)

// tagsDown is the SQLite store with its TagEntity failing, as a store
// that goes away (or a caller that leaves) between two writes would.
type tagsDown struct{ *sqlite.DB }

func (tagsDown) TagEntity(context.Context, shiftkey.EntityKind, string, []shiftkey.Tag) error {
	return fmt.Errorf("tag write: %w", shiftkey.ErrStoreUnavailable)
}

// TestCreateWithTagsIsOneWrite: a user or role created with Tags is
// stored with them in one write: no failure can leave it without the tags
// that a tag-keyed Deny or a RedshiftDbRoles mapping depend on (IAM: "If
// any one of the tags is invalid ... the resource is not created").
func TestCreateWithTagsIsOneWrite(t *testing.T) {
	ctx := context.Background()
	db := newStore(t)
	if _, err := iamapi.EnsureAdmin(ctx, db, "000000000000", "admin", time.Now()); err != nil {
		t.Fatal(err)
	}
	st := tagsDown{db}
	svc := &iamapi.Service{Store: st, Authorizer: &authz.Authorizer{Store: db}, AccountID: "000000000000"}
	admin, err := db.Entity(ctx, shiftkey.KindUser, "admin")
	if err != nil {
		t.Fatal(err)
	}
	caller := &shiftkey.Caller{Principal: &shiftkey.Principal{ARN: admin.ARN, Account: "000000000000", Type: shiftkey.PrincipalUser,
		UserName: admin.Name, UserID: admin.ID}, Region: "us-east-1", RequestID: "r1", Time: time.Now()}
	for _, c := range []struct {
		action string
		kind   shiftkey.EntityKind
		params url.Values
	}{
		{"CreateUser", shiftkey.KindUser, url.Values{"UserName": {"tagged"}}},
		{"CreateRole", shiftkey.KindRole, url.Values{"RoleName": {"Tagged"},
			"AssumeRolePolicyDocument": {`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}]}`}}},
	} {
		t.Run(c.action, func(t *testing.T) {
			c.params.Set("Tags.member.1.Key", "RedshiftDbRoles")
			c.params.Set("Tags.member.1.Value", "reader")
			_, err := svc.Handle(ctx, caller, c.action, c.params)
			name := c.params.Get(kindName(c.kind))
			e, gerr := db.Entity(ctx, c.kind, name)
			if gerr != nil {
				if err == nil {
					t.Fatalf("%s succeeded but %v", c.action, gerr)
				}
				return // refused whole: nothing stored
			}
			tags, terr := db.Tags(ctx, c.kind, e.Name)
			if terr != nil || len(tags) != 1 || tags[0] != (shiftkey.Tag{Key: "RedshiftDbRoles", Value: "reader"}) {
				t.Fatalf("%s answered %v and left %s %s with tags %v (%v), want it with its tag or not at all", c.action, err, c.kind, name, tags, terr)
			}
			if err != nil {
				t.Fatalf("%s stored the %s with its tags but answered %v", c.action, c.kind, err)
			}
		})
	}
}

func kindName(k shiftkey.EntityKind) string {
	if k == shiftkey.KindUser {
		return "UserName"
	}
	return "RoleName"
}
