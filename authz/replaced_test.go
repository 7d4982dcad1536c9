package authz_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/authz"
)

// racingStore is a real store in which, the first time the authorizer
// reads the policies of an entity of kind named name, an administrator's
// writes (then) land just before that read: the moment between
// authentication, which resolved the caller's key to its user by id, and
// the reads by name that follow.
type racingStore struct {
	authz.Store
	kind shiftkey.EntityKind
	name string
	then func()
	once sync.Once
}

func (s *racingStore) InlinePolicies(ctx context.Context, kind shiftkey.EntityKind, owner string) ([]shiftkey.PolicyDocument, error) {
	if kind == s.kind && owner == s.name {
		s.once.Do(s.then)
	}
	return s.Store.InlinePolicies(ctx, kind, owner)
}

const allowAll = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`

// Policies, groups and tags are the caller's by name; authentication found
// the caller by id. A user or group renamed, or a session's role deleted,
// and a new entity given the old name, between the two, must not lend its
// policies to the request: the authorizer checks that the names it read by
// still name the caller's entities, and answers a retryable error instead
// of deciding.
func TestPoliciesOfAnEntityReplacedDuringTheRequestAreNotTheCallers(t *testing.T) {
	now := time.Now()
	entity := func(kind shiftkey.EntityKind, name, id string) *shiftkey.Entity {
		return &shiftkey.Entity{Kind: kind, Name: name, ID: id, Path: "/", ARN: "arn:aws:iam::" + acct + ":" + string(kind) + "/" + name, CreatedAt: now}
	}
	bob, team, etl := entity(shiftkey.KindUser, "bob", "AIDABOBORIGINAL"), entity(shiftkey.KindGroup, "team", "AGPATEAMORIGINAL"), entity(shiftkey.KindRole, "etl", "AROAETLORIGINAL")
	asBob := &shiftkey.Principal{ARN: bob.ARN, Account: acct, Type: shiftkey.PrincipalUser, UserName: "bob", UserID: bob.ID}
	asEtl := &shiftkey.Principal{ARN: "arn:aws:sts::" + acct + ":assumed-role/etl/s1", Account: acct, Type: shiftkey.PrincipalAssumedRole,
		RoleName: "etl", RoleARN: etl.ARN, SessionName: "s1", UserID: etl.ID + ":s1"}
	for _, tc := range []struct {
		name     string
		old      *shiftkey.Entity // whose policies are read as the writes land
		caller   *shiftkey.Principal
		newcomer string // its id
		replace  func(ctx context.Context, st authz.Store, old, newcomer *shiftkey.Entity) error
	}{
		{"user renamed, another of its name", bob, asBob, "AIDANEWCOMER", rename},
		{"group renamed, another of its name", team, asBob, "AGPANEWCOMER", func(ctx context.Context, st authz.Store, old, newcomer *shiftkey.Entity) error {
			if err := rename(ctx, st, old, newcomer); err != nil {
				return err
			}
			// The caller joins the new group of the old name: it is the
			// original group whose policies are the caller's.
			return st.AddUserToGroup(ctx, old.Name, "bob")
		}},
		{"session's role deleted, another of its name", etl, asEtl, "AROANEWCOMER", func(ctx context.Context, st authz.Store, old, newcomer *shiftkey.Entity) error {
			if err := st.DeleteEntity(ctx, old.Kind, old.Name); err != nil {
				return err
			}
			return create(ctx, st, newcomer)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st := newStore(t)
			for _, e := range []*shiftkey.Entity{bob, team, etl} {
				mustDo(t, st.CreateEntity(ctx, e))
			}
			mustDo(t, st.AddUserToGroup(ctx, "team", "bob"))
			newcomer := entity(tc.old.Kind, tc.old.Name, tc.newcomer)
			a := &authz.Authorizer{Store: &racingStore{Store: st, kind: tc.old.Kind, name: tc.old.Name, then: func() {
				// The administrator's writes: the newcomer, of the old name,
				// may do anything.
				mustDo(t, tc.replace(ctx, st, tc.old, newcomer))
			}}}
			caller := &shiftkey.Caller{Principal: tc.caller, Region: "us-east-1", RequestID: "req-replaced", Time: now}
			err := a.Authorize(ctx, caller, shiftkey.AuthzRequest{Action: "redshift:GetClusterCredentials", Resource: "*"})
			if shiftkey.ErrorCode(err) != shiftkey.CodeServiceUnavailable {
				t.Fatalf("Authorize of the original %s's caller after the writes: %v; want ServiceUnavailable, not the newcomer's policies", tc.old.Kind, err)
			}
		})
	}
}

// rename gives old's name to newcomer: old is renamed, newcomer created.
func rename(ctx context.Context, st authz.Store, old, newcomer *shiftkey.Entity) error {
	renamed := *old
	renamed.Name += "-renamed"
	if err := st.RenameEntity(ctx, old.Kind, old, &renamed); err != nil {
		return err
	}
	return create(ctx, st, newcomer)
}

// create makes e with an inline policy that allows everything.
func create(ctx context.Context, st authz.Store, e *shiftkey.Entity) error {
	if err := st.CreateEntity(ctx, e); err != nil {
		return err
	}
	return st.PutInlinePolicy(ctx, e.Kind, e.Name, shiftkey.PolicyDocument{Name: "all", Document: allowAll})
}
