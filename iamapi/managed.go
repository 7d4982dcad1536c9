package iamapi

import (
	"context"
	"fmt"
	"strings"

	"github.com/shiftkey/shiftkey"
)

type policyXML struct {
	PolicyName                    string
	PolicyId                      string
	Arn                           string
	Path                          string
	DefaultVersionId              string
	AttachmentCount               int
	PermissionsBoundaryUsageCount int
	IsAttachable                  bool
	Description                   string `xml:",omitempty"`
	CreateDate                    string
	UpdateDate                    string
}

func toPolicyXML(m *shiftkey.ManagedPolicy, attachments int) policyXML {
	return policyXML{m.Name, m.ID, m.ARN, m.Path, "v1", attachments, 0, true, m.Description, isoTime(m.CreatedAt), isoTime(m.UpdatedAt)}
}

func (s *Service) createManagedPolicy(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	name, err := p.name("PolicyName", 128, true)
	if err != nil {
		return nil, err
	}
	path, err := p.policyPath()
	if err != nil {
		return nil, err
	}
	doc, err := p.document("PolicyDocument", managedPolicyLimit, "PolicySize")
	if err != nil {
		return nil, err
	}
	if err := validatePolicy(doc); err != nil {
		return nil, err
	}
	desc, err := p.description(false)
	if err != nil {
		return nil, err
	}
	now := s.now()
	m := &shiftkey.ManagedPolicy{ARN: fmt.Sprintf("arn:aws:iam::%s:policy%s%s", s.AccountID, path, name), Name: name, ID: shiftkey.NewID("ANPA"),
		Path: path, Description: desc, Document: doc, CreatedAt: now, UpdatedAt: now}
	if err := s.authorize(ctx, c, "CreatePolicy", m.ARN); err != nil {
		return nil, err
	}
	if err := s.Store.CreateManagedPolicy(ctx, m); err != nil {
		return nil, err
	}
	return struct{ Policy policyXML }{toPolicyXML(m, 0)}, nil
}

// policyARN reads PolicyArn.
func (p params) policyARN() (string, error) {
	arn, err := p.required("PolicyArn")
	if err == nil && (len(arn) < 20 || !strings.HasPrefix(arn, "arn:")) {
		err = shiftkey.Errorf(CodeValidationError, "ARN %s is not valid.", arn)
	}
	return arn, err
}

func (s *Service) managedPolicy(ctx context.Context, c *shiftkey.Caller, p params, action string) (*shiftkey.ManagedPolicy, error) {
	arn, err := p.policyARN()
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, c, action, arn); err != nil {
		return nil, err
	}
	return s.Store.ManagedPolicy(ctx, arn)
}

func (s *Service) getManagedPolicy(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	m, err := s.managedPolicy(ctx, c, p, "GetPolicy")
	if err != nil {
		return nil, err
	}
	n, err := s.Store.PolicyAttachmentCount(ctx, m.ARN)
	if err != nil {
		return nil, err
	}
	return struct{ Policy policyXML }{toPolicyXML(m, n)}, nil
}

func (s *Service) deleteManagedPolicy(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	m, err := s.managedPolicy(ctx, c, p, "DeletePolicy")
	if err != nil {
		return nil, err
	}
	n, err := s.Store.PolicyAttachmentCount(ctx, m.ARN)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		return nil, shiftkey.PolicyAttached()
	}
	return nil, s.Store.DeleteManagedPolicy(ctx, m.ARN)
}

func (s *Service) attach(kind shiftkey.EntityKind, attach bool) handler {
	verb := "Detach"
	if attach {
		verb = "Attach"
	}
	return func(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
		owner, err := p.newOwner(kind)
		if err != nil {
			return nil, err
		}
		arn, err := p.policyARN()
		if err != nil {
			return nil, err
		}
		// iam:PolicyARN must be present: the delegation pattern "allow
		// attaching anything but Admin" uses negated operators, which are
		// true when the key is missing (issue 12, finding 4).
		e, err := s.entity(ctx, c, verb+kindTitle(kind)+"Policy", kind, owner, map[string][]string{"iam:PolicyARN": {arn}})
		if err != nil {
			return nil, err
		}
		if _, err := s.Store.ManagedPolicy(ctx, arn); err != nil {
			return nil, err
		}
		if attach {
			return nil, s.Store.AttachPolicy(ctx, kind, e.Name, arn)
		}
		return nil, s.Store.DetachPolicy(ctx, kind, e.Name, arn)
	}
}

func (s *Service) listAttached(kind shiftkey.EntityKind) handler {
	type attached struct {
		PolicyName string
		PolicyArn  string
	}
	return func(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
		if _, err := p.newOwner(kind); err != nil { // userNameType, as Attach's
			return nil, err
		}
		pols, pg, err := ownedPage(ctx, s, c, p, kind, "ListAttached"+kindTitle(kind)+"Policies", s.Store.AttachedPolicies,
			func(m *shiftkey.ManagedPolicy) string { return m.Name })
		if err != nil {
			return nil, err
		}
		return struct {
			AttachedPolicies []attached `xml:"AttachedPolicies>member"`
			pageXML
		}{each(pols, func(m *shiftkey.ManagedPolicy) attached { return attached{m.Name, m.ARN} }), pg}, nil
	}
}
