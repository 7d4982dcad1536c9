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

// interleaved is the SQLite store with one write run just before the
// first UpdateRole it is asked for: another call that changed the role
// between this call's read of it and its write.
type interleaved struct {
	*sqlite.DB
	before func()
}

func (s *interleaved) UpdateRole(ctx context.Context, r *shiftkey.Entity, fields shiftkey.RoleFields) error {
	if f := s.before; f != nil {
		s.before = nil
		f()
	}
	return s.DB.UpdateRole(ctx, r, fields)
}

// Each of UpdateRole, UpdateRoleDescription and UpdateAssumeRolePolicy
// changes its own settings of a role, and a call changing another setting
// at the same moment must not undo it. A trust policy tightened while a
// MaxSessionDuration or description changed came back in its old, looser
// form, and the other way round: each call wrote every setting of the
// role as it had read them.
func TestRoleUpdatesKeepEachOthersChanges(t *testing.T) {
	ctx := context.Background()
	db := newStore(t)
	if _, err := iamapi.EnsureAdmin(ctx, db, "000000000000", "admin", time.Now()); err != nil {
		t.Fatal(err)
	}
	st := &interleaved{DB: db}
	svc := &iamapi.Service{Store: st, Authorizer: &authz.Authorizer{Store: db}, AccountID: "000000000000"}
	admin, err := db.Entity(ctx, shiftkey.KindUser, "admin")
	if err != nil {
		t.Fatal(err)
	}
	caller := &shiftkey.Caller{Principal: &shiftkey.Principal{ARN: admin.ARN, Account: "000000000000", Type: shiftkey.PrincipalUser,
		UserName: admin.Name, UserID: admin.ID}, Region: "us-east-1", RequestID: "r1", Time: time.Now()}
	call := func(action string, v url.Values) {
		t.Helper()
		if _, err := svc.Handle(ctx, caller, action, v); err != nil {
			t.Fatalf("%s: %v", action, err)
		}
	}
	const loose = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}]}`
	const tight = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/admin"},"Action":"sts:AssumeRole"}]}`
	call("CreateRole", url.Values{"RoleName": {"Shared"}, "AssumeRolePolicyDocument": {loose}, "Description": {"first"}})
	role := func() *shiftkey.Entity {
		t.Helper()
		r, err := db.Entity(ctx, shiftkey.KindRole, "Shared")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	// The trust policy tightened between UpdateRole's read and its write.
	st.before = func() { call("UpdateAssumeRolePolicy", url.Values{"RoleName": {"Shared"}, "PolicyDocument": {tight}}) }
	call("UpdateRole", url.Values{"RoleName": {"Shared"}, "MaxSessionDuration": {"7200"}})
	if r := role(); r.AssumeRolePolicy != tight || r.MaxSessionDuration != 7200 {
		t.Fatalf("UpdateRole beside UpdateAssumeRolePolicy: trust %s, max session %d; want the tightened trust policy and 7200", r.AssumeRolePolicy, r.MaxSessionDuration)
	}

	// The description changed between UpdateAssumeRolePolicy's read and its write.
	st.before = func() { call("UpdateRoleDescription", url.Values{"RoleName": {"Shared"}, "Description": {"second"}}) }
	call("UpdateAssumeRolePolicy", url.Values{"RoleName": {"Shared"}, "PolicyDocument": {loose}})
	if r := role(); r.Description != "second" || r.AssumeRolePolicy != loose || r.MaxSessionDuration != 7200 {
		t.Fatalf("UpdateAssumeRolePolicy beside UpdateRoleDescription: description %q, trust %s, max session %d; want second, the new trust policy, 7200",
			r.Description, r.AssumeRolePolicy, r.MaxSessionDuration)
	}

	// MaxSessionDuration changed between UpdateRoleDescription's read and its write.
	st.before = func() { call("UpdateRole", url.Values{"RoleName": {"Shared"}, "MaxSessionDuration": {"10800"}}) }
	call("UpdateRoleDescription", url.Values{"RoleName": {"Shared"}, "Description": {"third"}})
	if r := role(); r.Description != "third" || r.MaxSessionDuration != 10800 {
		t.Fatalf("UpdateRoleDescription beside UpdateRole: description %q, max session %d; want third and 10800", r.Description, r.MaxSessionDuration)
	}
}
