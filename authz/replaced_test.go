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
// the caller by id. A user renamed, and a new user (or group) given the old
// name, between the two, must not lend its policies to the request: the
// authorizer checks that the names it read by still name the caller's
// entities, and answers a retryable error instead of deciding.
func TestPoliciesOfAnEntityReplacedDuringTheRequestAreNotTheCallers(t *testing.T) {
	for _, tc := range []struct {
		name string
		kind shiftkey.EntityKind // whose policies are read as the writes land
	}{
		{"user renamed, another of its name", shiftkey.KindUser},
		{"group renamed, another of its name", shiftkey.KindGroup},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st := newStore(t)
			now := time.Now()
			entity := func(kind shiftkey.EntityKind, name, id string) *shiftkey.Entity {
				return &shiftkey.Entity{Kind: kind, Name: name, ID: id, Path: "/", ARN: "arn:aws:iam::" + acct + ":" + string(kind) + "/" + name, CreatedAt: now}
			}
			bob, team := entity(shiftkey.KindUser, "bob", "AIDABOBORIGINAL"), entity(shiftkey.KindGroup, "team", "AGPATEAMORIGINAL")
			mustDo(t, st.CreateEntity(ctx, bob))
			mustDo(t, st.CreateEntity(ctx, team))
			mustDo(t, st.AddUserToGroup(ctx, "team", "bob"))
			replace := func() {
				// The administrator renames the entity and gives its old name
				// to a new one that may do anything.
				old := map[shiftkey.EntityKind]*shiftkey.Entity{shiftkey.KindUser: bob, shiftkey.KindGroup: team}[tc.kind]
				renamed := entity(tc.kind, old.Name+"-renamed", old.ID)
				mustDo(t, st.RenameEntity(ctx, tc.kind, old, renamed))
				newcomer := entity(tc.kind, old.Name, "AIDANEWCOMER")
				if tc.kind == shiftkey.KindGroup {
					newcomer.ID = "AGPANEWCOMER"
				}
				mustDo(t, st.CreateEntity(ctx, newcomer))
				mustDo(t, st.PutInlinePolicy(ctx, tc.kind, old.Name, shiftkey.PolicyDocument{Name: "all", Document: allowAll}))
				if tc.kind == shiftkey.KindGroup {
					// The caller joins the new group of the old name: it is
					// the original group whose policies are the caller's.
					mustDo(t, st.AddUserToGroup(ctx, old.Name, "bob"))
				}
			}
			a := &authz.Authorizer{Store: &racingStore{Store: st, kind: tc.kind, name: map[shiftkey.EntityKind]string{shiftkey.KindUser: "bob", shiftkey.KindGroup: "team"}[tc.kind], then: replace}}
			caller := &shiftkey.Caller{Principal: &shiftkey.Principal{ARN: bob.ARN, Account: acct, Type: shiftkey.PrincipalUser, UserName: "bob", UserID: bob.ID},
				Region: "us-east-1", RequestID: "req-replaced", Time: now}
			err := a.Authorize(ctx, caller, shiftkey.AuthzRequest{Action: "redshift:GetClusterCredentials", Resource: "*"})
			if err == nil || shiftkey.ErrorCode(err) != shiftkey.CodeServiceUnavailable {
				t.Fatalf("Authorize of the original %s's caller after the writes: %v; want ServiceUnavailable, not the newcomer's policies", tc.kind, err)
			}
		})
	}
}
