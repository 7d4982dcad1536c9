package iamapi

import (
	"context"
	"encoding/xml"
	"strings"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/iam"
)

// Inline policies.

// IAM's policy size quotas, in non-white-space characters (iam.Size): the
// inline limit is the aggregate of all inline policies of one entity. The
// config's declared policies are held to them too.
var InlineLimit = map[shiftkey.EntityKind]int{shiftkey.KindUser: 2048, shiftkey.KindGroup: 5120, shiftkey.KindRole: 10240}

const (
	ManagedPolicyLimit = 6144
	TrustPolicyLimit   = 2048
)

func kindTitle(k shiftkey.EntityKind) string { return strings.ToUpper(string(k[:1])) + string(k[1:]) }

// owner reads the name of the user, group or role a call is about. A
// user's is IAM's existingUserNameType (1-128 characters): a longer name
// than CreateUser takes names no user, which is NoSuchEntity, not a
// ValidationError. newOwner is for the calls whose model says
// userNameType (64), as a role's and a new user's.
func (p params) owner(kind shiftkey.EntityKind) (string, error) {
	max := 64
	if kind == shiftkey.KindGroup || kind == shiftkey.KindUser {
		max = 128
	}
	return p.name(kindTitle(kind)+"Name", max, true)
}

// newOwner reads the name of a user, group or role as CreateUser,
// CreateGroup, CreateRole and the Attach/Detach/ListAttached*Policies
// calls take it: a user's or role's of 1-64 characters (userNameType,
// roleNameType), a group's of 1-128.
func (p params) newOwner(kind shiftkey.EntityKind) (string, error) {
	max := 64
	if kind == shiftkey.KindGroup {
		max = 128
	}
	return p.name(kindTitle(kind)+"Name", max, true)
}

// validatePolicy parses an identity policy document on write.
func validatePolicy(doc string) error {
	if _, err := iam.ParsePolicy("document", []byte(doc)); err != nil {
		msg := err.Error()
		if me, ok := err.(*iam.MalformedPolicyError); ok {
			msg = me.Message
		}
		return shiftkey.Errorf(CodeMalformedPolicyDocument, "%s", msg)
	}
	return nil
}

// inlineCall reads the owner and PolicyName of an inline-policy call
// (and its PolicyDocument, withDoc), then resolves the owner for
// verb+Kind+"Policy".
func (s *Service) inlineCall(ctx context.Context, c *shiftkey.Caller, p params, kind shiftkey.EntityKind, verb string, withDoc bool) (e *shiftkey.Entity, name, doc string, err error) {
	owner, err := p.owner(kind)
	if err != nil {
		return nil, "", "", err
	}
	if name, err = p.name("PolicyName", 128, true); err != nil {
		return nil, "", "", err
	}
	if withDoc {
		if doc, err = p.policyDocument("PolicyDocument"); err != nil {
			return nil, "", "", err
		}
	}
	e, err = s.entity(ctx, c, verb+kindTitle(kind)+"Policy", kind, owner)
	return e, name, doc, err
}

func (s *Service) putPolicy(kind shiftkey.EntityKind) handler {
	return func(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
		e, name, doc, err := s.inlineCall(ctx, c, p, kind, "Put", true)
		if err != nil {
			return nil, err
		}
		if err := validatePolicy(doc); err != nil {
			return nil, err
		}
		// The store hands the quota check the policies its write sees, so
		// that concurrent puts under different names cannot pass it
		// together.
		return nil, s.Store.PutInlinePolicyAdmitted(ctx, kind, e.Name, shiftkey.PolicyDocument{Name: name, Document: doc},
			func(pols []shiftkey.PolicyDocument) error { return checkInlineSize(e, name, doc, pols) })
	}
}

// checkInlineSize applies IAM's inline quota: the aggregate size of all of
// an entity's inline policies (pols), counted without white space, with
// doc replacing any policy of the same name.
func checkInlineSize(e *shiftkey.Entity, name, doc string, pols []shiftkey.PolicyDocument) error {
	total := iam.Size(doc)
	for _, p := range pols {
		if !strings.EqualFold(p.Name, name) {
			total += iam.Size(p.Document)
		}
	}
	if limit := InlineLimit[e.Kind]; total > limit {
		return shiftkey.Errorf(CodeLimitExceeded, "Maximum policy size of %d bytes exceeded for %s %s", limit, e.Kind, e.Name)
	}
	return nil
}

func (s *Service) getPolicy(kind shiftkey.EntityKind) handler {
	return func(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
		e, name, _, err := s.inlineCall(ctx, c, p, kind, "Get", false)
		if err != nil {
			return nil, err
		}
		pols, err := s.Store.InlinePolicies(ctx, kind, e.Name)
		if err != nil {
			return nil, err
		}
		for _, pol := range pols {
			if strings.EqualFold(pol.Name, name) {
				return inlinePolicyResult(kind, e.Name, pol), nil
			}
		}
		return nil, shiftkey.NoSuchInlinePolicy(kind, name)
	}
}

// inlinePolicyResult is Get{User,Group,Role}PolicyResult: the owner element
// is named after its kind.
func inlinePolicyResult(kind shiftkey.EntityKind, owner string, pol shiftkey.PolicyDocument) any {
	type field struct {
		XMLName xml.Name
		Value   string `xml:",chardata"`
	}
	return struct {
		Owner          field
		PolicyName     string
		PolicyDocument string
	}{field{xml.Name{Local: kindTitle(kind) + "Name"}, owner}, pol.Name, encodeDocument(pol.Document)}
}

func (s *Service) deletePolicy(kind shiftkey.EntityKind) handler {
	return func(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
		e, name, _, err := s.inlineCall(ctx, c, p, kind, "Delete", false)
		if err != nil {
			return nil, err
		}
		return nil, s.Store.DeleteInlinePolicy(ctx, kind, e.Name, name)
	}
}

func (s *Service) listPolicies(kind shiftkey.EntityKind) handler {
	return func(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
		pols, pg, err := ownedPage(ctx, s, c, p, kind, "List"+kindTitle(kind)+"Policies", s.Store.InlinePolicies,
			func(d shiftkey.PolicyDocument) string { return d.Name })
		if err != nil {
			return nil, err
		}
		return struct {
			PolicyNames []string `xml:"PolicyNames>member"`
			pageXML
		}{each(pols, func(pol shiftkey.PolicyDocument) string { return pol.Name }), pg}, nil
	}
}
