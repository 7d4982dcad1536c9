package iamapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// ShownTrustPolicy is role r's trust policy as IAM shows it: saved, its
// IAM user and role principals were bound to unique ids
// (TrustPrincipalIDs), and each is shown by what its id is now, as AWS
// maps the id back to an ARN. A user renamed or moved since is shown by
// its new ARN (IAM updates the role policies that name a user when it is
// renamed; a name written in another case than the user's is shown in
// the user's); a user or role deleted since, by its unique id (AIDA…,
// AROA…), which no longer maps to an ARN. The rest is shown as written,
// and so is a policy saved before principals were bound.
func ShownTrustPolicy(ctx context.Context, st shiftkey.IdentityStore, r *shiftkey.Entity) (string, error) {
	if r.TrustPrincipalIDs == "" {
		return r.AssumeRolePolicy, nil
	}
	var ids map[string]string
	if err := json.Unmarshal([]byte(r.TrustPrincipalIDs), &ids); err != nil {
		return "", fmt.Errorf("role %s: trust principal ids: %w", r.Name, err)
	}
	var failed error
	doc, err := iam.ReplaceAWSPrincipals(r.AssumeRolePolicy, func(p string) (string, bool) {
		id, ok := ids[strings.ToLower(p)]
		if !ok || failed != nil {
			return "", false
		}
		kind := shiftkey.KindUser
		if strings.HasPrefix(p[strings.LastIndexByte(p, ':')+1:], "role/") {
			kind = shiftkey.KindRole
		}
		e, err := st.EntityByID(ctx, kind, id)
		switch {
		case shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity:
			return id, true
		case err != nil:
			failed = err
			return "", false
		case e.ARN == p:
			// As written. Compared exactly: a rename that changes only the
			// name's case is shown too, as AWS shows the ARN the id has now.
			return "", false
		}
		return e.ARN, true
	})
	if failed != nil {
		return "", failed
	}
	if err != nil {
		return "", fmt.Errorf("role %s: trust policy: %w", r.Name, err)
	}
	return doc, nil
}
