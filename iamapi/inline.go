package iamapi

import (
	"context"
	"encoding/xml"
	"strings"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/iam"
)

var inlineLimit = map[shiftkey.EntityKind]int{shiftkey.KindUser: 2048, shiftkey.KindGroup: 5120, shiftkey.KindRole: 10240}

const (
	managedPolicyLimit = 6144
	trustPolicyLimit   = 2048
)

func kindTitle(k shiftkey.EntityKind) string { return strings.ToUpper(string(k[:1])) + string(k[1:]) }

func (p params) owner(kind shiftkey.EntityKind) (string, error) {
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

func (s *Service) putPolicy(kind shiftkey.EntityKind) handler {
	return func(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
		owner, err := p.owner(kind)
		if err != nil {
			return nil, err
		}
		name, err := p.name("PolicyName", 128, true)
		if err != nil {
			return nil, err
		}
		doc, err := p.required("PolicyDocument")
		if err != nil {
			return nil, err
		}
		e, err := s.entity(ctx, c, "Put"+kindTitle(kind)+"Policy", kind, owner)
		if err != nil {
			return nil, err
		}
		if err := s.checkInlineSize(ctx, e, name, doc); err != nil {
			return nil, err
		}
		if err := validatePolicy(doc); err != nil {
			return nil, err
		}
		return nil, s.Store.PutInlinePolicy(ctx, kind, e.Name, shiftkey.PolicyDocument{Name: name, Document: doc})
	}
}

// checkInlineSize applies IAM's inline quota: the aggregate size of all of
// an entity's inline policies, counted without white space, with doc
// replacing any policy of the same name.
func (s *Service) checkInlineSize(ctx context.Context, e *shiftkey.Entity, name, doc string) error {
	pols, err := s.Store.InlinePolicies(ctx, e.Kind, e.Name)
	if err != nil {
		return err
	}
	total := iam.Size(doc)
	for _, p := range pols {
		if !strings.EqualFold(p.Name, name) {
			total += iam.Size(p.Document)
		}
	}
	if limit := inlineLimit[e.Kind]; total > limit {
		return shiftkey.Errorf(CodeLimitExceeded, "Maximum policy size of %d bytes exceeded for %s %s", limit, e.Kind, e.Name)
	}
	return nil
}

func (s *Service) getPolicy(kind shiftkey.EntityKind) handler {
	return func(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
		owner, err := p.owner(kind)
		if err != nil {
			return nil, err
		}
		name, err := p.name("PolicyName", 128, true)
		if err != nil {
			return nil, err
		}
		e, err := s.entity(ctx, c, "Get"+kindTitle(kind)+"Policy", kind, owner)
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
		return nil, shiftkey.Errorf(shiftkey.CodeNoSuchEntity, "The %s policy with name %s cannot be found.", kind, name)
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
		owner, err := p.owner(kind)
		if err != nil {
			return nil, err
		}
		name, err := p.name("PolicyName", 128, true)
		if err != nil {
			return nil, err
		}
		e, err := s.entity(ctx, c, "Delete"+kindTitle(kind)+"Policy", kind, owner)
		if err != nil {
			return nil, err
		}
		return nil, s.Store.DeleteInlinePolicy(ctx, kind, e.Name, name)
	}
}

func (s *Service) listPolicies(kind shiftkey.EntityKind) handler {
	return func(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
		owner, err := p.owner(kind)
		if err != nil {
			return nil, err
		}
		e, err := s.entity(ctx, c, "List"+kindTitle(kind)+"Policies", kind, owner)
		if err != nil {
			return nil, err
		}
		pols, err := s.Store.InlinePolicies(ctx, kind, e.Name)
		if err != nil {
			return nil, err
		}
		start, end, next, err := p.page(len(pols))
		if err != nil {
			return nil, err
		}
		res := struct {
			PolicyNames []string `xml:"PolicyNames>member"`
			IsTruncated bool
			Marker      string `xml:",omitempty"`
		}{PolicyNames: []string{}, IsTruncated: next != "", Marker: next}
		for _, pol := range pols[start:end] {
			res.PolicyNames = append(res.PolicyNames, pol.Name)
		}
		return res, nil
	}
}

// Managed policies.
