package iamapi

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/iam"
)

// ParseTrustPolicy validates a role trust policy as CreateRole does: the
// iam package parses it, and a malformed document is IAM's
// MalformedPolicyDocument error.
func ParseTrustPolicy(doc string) (*iam.TrustPolicy, error) {
	t, err := iam.ParseTrustPolicy("trust policy", []byte(doc))
	if me, ok := errors.AsType[*iam.MalformedPolicyError](err); ok {
		return nil, shiftkey.Errorf(CodeMalformedPolicyDocument, "%s", me.Message)
	}
	return t, err
}

// BindTrustPrincipals resolves the IAM users and roles that trust policy t
// names to the unique ids they have now, for Entity.TrustPrincipalIDs. self
// is the role being saved: a policy that names it resolves to the stored
// role of its name or, when there is none yet, to self (about to be
// created with its id). A principal that names no entity is left out: an
// Allow naming it matches no one and a Deny everyone of its ARN
// (iam.TrustPolicy.Bind), as AWS refuses such a policy.
func BindTrustPrincipals(ctx context.Context, st shiftkey.IdentityStore, t *iam.TrustPolicy, self *shiftkey.Entity) (string, error) {
	ids, err := trustBindings(ctx, st, t, self)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(ids)
	return string(b), err
}

// trustBindings is BindTrustPrincipals' lower-case ARN → unique id map.
func trustBindings(ctx context.Context, st shiftkey.IdentityStore, t *iam.TrustPolicy, self *shiftkey.Entity) (map[string]string, error) {
	ids := map[string]string{}
	for _, p := range t.BindablePrincipals() {
		res := p[strings.LastIndexByte(p, ':')+1:]
		kind := shiftkey.KindUser
		if strings.HasPrefix(res, "role/") {
			kind = shiftkey.KindRole
		}
		name := res[strings.LastIndexByte(res, '/')+1:]
		e, err := st.Entity(ctx, kind, name)
		switch {
		case shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity && kind == shiftkey.KindRole && strings.EqualFold(self.Name, name):
			e = self
		case shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity:
			continue
		case err != nil:
			return nil, err
		}
		if strings.EqualFold(e.ARN, p) {
			ids[strings.ToLower(p)] = e.ID
		}
	}
	return ids, nil
}
