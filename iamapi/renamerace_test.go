package iamapi_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/authz"
	"github.com/shiftkey/shiftkey/iamapi"
	"github.com/shiftkey/shiftkey/sqlite"
)

// renameInterleaved is the SQLite store with one write run just before
// the first RenameEntity it is asked for: another call that changed the
// entity between this call's read (and authorization) of it and its write.
type renameInterleaved struct {
	*sqlite.DB
	before func()
}

func (s *renameInterleaved) RenameEntity(ctx context.Context, kind shiftkey.EntityKind, from, to *shiftkey.Entity) error {
	if f := s.before; f != nil {
		s.before = nil
		f()
	}
	return s.DB.RenameEntity(ctx, kind, from, to)
}

// UpdateUser is authorized on the user's ARN as it read it and on the ARN
// it will have; a user moved by another call between that read and the
// write is not the one authorized. A caller allowed only on
// user/team-a/* renamed a user an administrator had just moved to
// /team-b/, and moved it back into /team-a/ (the path it had read): it
// acted on user/team-b/… without any permission there, and the other
// call's move was lost, though answered OK. The rename now fails
// (ConcurrentModification, as IAM answers) and the move stays.
func TestRenameOfAUserMovedMeanwhile(t *testing.T) {
	ctx := context.Background()
	db := newStore(t)
	if _, err := iamapi.EnsureAdmin(ctx, db, "000000000000", "admin", time.Now()); err != nil {
		t.Fatal(err)
	}
	st := &renameInterleaved{DB: db}
	svc := &iamapi.Service{Store: st, Authorizer: &authz.Authorizer{Store: db}, AccountID: "000000000000"}
	as := func(name string) *shiftkey.Caller {
		u, err := db.Entity(ctx, shiftkey.KindUser, name)
		if err != nil {
			t.Fatal(err)
		}
		return &shiftkey.Caller{Principal: &shiftkey.Principal{ARN: u.ARN, Account: "000000000000", Type: shiftkey.PrincipalUser,
			UserName: u.Name, UserID: u.ID}, Region: "us-east-1", RequestID: "r1", Time: time.Now()}
	}
	admin := as("admin")
	call := func(c *shiftkey.Caller, action string, v url.Values) error {
		_, err := svc.Handle(ctx, c, action, v)
		return err
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(call(admin, "CreateUser", url.Values{"UserName": {"ann"}, "Path": {"/team-a/"}}))
	must(call(admin, "CreateUser", url.Values{"UserName": {"lead"}}))
	must(call(admin, "PutUserPolicy", url.Values{"UserName": {"lead"}, "PolicyName": {"team-a"}, "PolicyDocument": {
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:UpdateUser","Resource":"arn:aws:iam::000000000000:user/team-a/*"}]}`}}))
	lead := as("lead")

	// The administrator moves ann to /team-b/ between lead's read of ann
	// (at /team-a/, where lead may rename) and lead's write.
	st.before = func() {
		must(call(admin, "UpdateUser", url.Values{"UserName": {"ann"}, "NewPath": {"/team-b/"}}))
	}
	err := call(lead, "UpdateUser", url.Values{"UserName": {"ann"}, "NewUserName": {"anna"}})
	u, gerr := db.Entity(ctx, shiftkey.KindUser, "ann")
	if gerr != nil {
		moved, _ := db.Entity(ctx, shiftkey.KindUser, "anna")
		t.Fatalf("lead's rename of ann, moved to /team-b/ meanwhile: %v; ann is now %+v (%v), want ann kept at /team-b/ and the rename refused", err, moved, gerr)
	}
	if u.Path != "/team-b/" || shiftkey.ErrorCode(err) != shiftkey.CodeConcurrentModification {
		t.Fatalf("lead's rename of ann, moved to /team-b/ meanwhile: %v; ann at %s, want ConcurrentModification and ann kept at /team-b/", err, u.Path)
	}
}
