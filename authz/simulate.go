package authz

import (
	"context"
	"strings"

	"github.com/shiftkey/shiftkey"
)

// Simulate is what a policy simulation evaluates for the stored user or
// role kind/name (`shiftkey policy explain --principal`): the policies the
// store holds for it, and its global condition keys but the time ones (the
// simulated request's time is the caller's to give). A role is evaluated
// as a session of it.
func (a *Authorizer) Simulate(ctx context.Context, kind shiftkey.EntityKind, name string) (*PolicySet, map[string][]string, error) {
	e, err := a.Store.Entity(ctx, kind, name)
	if err != nil {
		return nil, nil, err
	}
	tags, err := a.Store.Tags(ctx, e.Kind, e.Name)
	if err != nil {
		return nil, nil, err
	}
	p := &shiftkey.Principal{ARN: e.ARN, Account: shiftkey.DefaultAccountID, Type: shiftkey.PrincipalUser, UserName: e.Name, UserID: e.ID, Tags: tags}
	if kind == shiftkey.KindRole {
		p = &shiftkey.Principal{ARN: e.ARN, Account: shiftkey.DefaultAccountID, Type: shiftkey.PrincipalAssumedRole, RoleName: e.Name, RoleARN: e.ARN, UserID: e.ID + ":explain", Tags: tags}
	}
	keys := map[string][]string{}
	for k, v := range GlobalContext(&shiftkey.Caller{Principal: p}) {
		if !strings.HasPrefix(k, "aws:CurrentTime") && !strings.HasPrefix(k, "aws:EpochTime") {
			keys[k] = v
		}
	}
	set, err := a.Policies(ctx, p)
	return set, keys, err
}
