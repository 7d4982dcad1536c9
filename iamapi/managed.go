package iamapi

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
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
	// GetPolicy's and CreatePolicy's, not ListPolicies'. A pointer:
	// encoding/xml writes an empty <Tags> for an empty "Tags>member"
	// even with omitempty, and IAM writes none.
	Tags *policyTagsXML `xml:",omitempty"`
}

type policyTagsXML struct {
	Member []tagXML `xml:"member"`
}

// withTags is x with tags: none is no Tags element, as IAM answers.
func (x policyXML) withTags(tags []shiftkey.Tag) policyXML {
	if len(tags) > 0 {
		x.Tags = &policyTagsXML{tagsXML(tags)}
	}
	return x
}

// toPolicyXML is m as IAM shows a policy: its UpdateDate is its newest
// version's CreateDate (with one version, when its document was set).
func toPolicyXML(m *shiftkey.ManagedPolicy, attachments int) policyXML {
	def, updated := m.DefaultVersion, m.NewestVersionAt
	if def == "" { // made here, not read from a store
		def = shiftkey.PolicyVersionID(1)
	}
	if updated.Before(m.UpdatedAt) {
		updated = m.UpdatedAt
	}
	return policyXML{PolicyName: m.Name, PolicyId: m.ID, Arn: m.ARN, Path: m.Path, DefaultVersionId: def, AttachmentCount: attachments,
		IsAttachable: true, Description: m.Description, CreateDate: isoTime(m.CreatedAt), UpdateDate: isoTime(updated)}
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
	doc, err := p.managedDocument()
	if err != nil {
		return nil, err
	}
	desc, err := p.description(false)
	if err != nil {
		return nil, err
	}
	tags, err := p.tags()
	if err != nil {
		return nil, err
	}
	now := s.now()
	m := &shiftkey.ManagedPolicy{ARN: fmt.Sprintf("arn:aws:iam::%s:policy%s%s", s.AccountID, path, name), Name: name, ID: shiftkey.NewID("ANPA"),
		Path: path, Description: desc, Document: doc, CreatedAt: now, UpdatedAt: now, Tags: tags}
	// As CreateUser: the request's tags are in the context, and setting
	// them needs iam:TagPolicy too, so that a caller who may create
	// policies but not tag them cannot tag by creating.
	keys := shiftkey.RequestTagKeys(nil, tags)
	if err := s.authorizeWith(ctx, c, "CreatePolicy", m.ARN, keys); err != nil {
		return nil, err
	}
	if len(tags) > 0 {
		if err := s.authorizeWith(ctx, c, "TagPolicy", m.ARN, keys); err != nil {
			return nil, err
		}
	}
	// The policy and its tags in one write: a failure leaves neither.
	if err := s.Store.CreateManagedPolicy(ctx, m); err != nil {
		return nil, err
	}
	return struct{ Policy policyXML }{toPolicyXML(m, 0).withTags(tags)}, nil
}

// managedDocument reads the PolicyDocument of CreatePolicy and
// CreatePolicyVersion: a managed policy's size limit, IAM's grammar.
func (p params) managedDocument() (string, error) {
	doc, err := p.document("PolicyDocument", ManagedPolicyLimit, "PolicySize")
	if err != nil {
		return "", err
	}
	return doc, validatePolicy(doc)
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
	if err := s.authorizePolicy(ctx, c, action, arn, nil); err != nil {
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
	tags, err := s.Store.Tags(ctx, shiftkey.KindPolicy, m.ARN)
	if err != nil {
		return nil, err
	}
	bounded, err := s.Store.BoundaryEntities(ctx, m.ARN)
	if err != nil {
		return nil, err
	}
	x := toPolicyXML(m, n).withTags(tags)
	x.PermissionsBoundaryUsageCount = len(bounded)
	return struct{ Policy policyXML }{x}, nil
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

// policyVersionIDPattern is IAM's policyVersionIdType.
var policyVersionIDPattern = regexp.MustCompile(`^v[1-9][0-9]*(\.[A-Za-z0-9-]*)?$`)

// versionID reads VersionId.
func (p params) versionID() (string, error) {
	id, err := p.required("VersionId")
	if err == nil && !policyVersionIDPattern.MatchString(id) {
		err = shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value '%s' at 'versionId' failed to satisfy constraint: Member must satisfy regular expression pattern: v[1-9][0-9]*(\\.[A-Za-z0-9-]*)?", id)
	}
	return id, err
}

type policyVersionXML struct {
	Document         string `xml:",omitempty"`
	VersionId        string
	IsDefaultVersion bool
	CreateDate       string
}

func toVersionXML(v *shiftkey.PolicyVersion, withDocument bool) policyVersionXML {
	x := policyVersionXML{VersionId: v.ID, IsDefaultVersion: v.IsDefault, CreateDate: isoTime(v.CreatedAt)}
	if withDocument {
		x.Document = encodeDocument(v.Document)
	}
	return x
}

// createPolicyVersion is CreatePolicyVersion: the document is held to
// CreatePolicy's rules; the store numbers the version and counts the
// policy's versions in one write (IAM's 5). A policy the config file
// declares takes the version too, as it takes other API writes, until the
// next reload makes the file's document its only version again.
func (s *Service) createPolicyVersion(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	arn, err := p.policyARN()
	if err != nil {
		return nil, err
	}
	doc, err := p.managedDocument()
	if err != nil {
		return nil, err
	}
	setDefault := false
	if v, ok := p.opt("SetAsDefault"); ok {
		if setDefault, err = strconv.ParseBool(v); err != nil {
			return nil, shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value '%s' at 'setAsDefault' failed to satisfy constraint: Member must be a boolean", v)
		}
	}
	if err := s.authorizePolicy(ctx, c, "CreatePolicyVersion", arn, nil); err != nil {
		return nil, err
	}
	v := &shiftkey.PolicyVersion{Document: doc, IsDefault: setDefault, CreatedAt: s.now()}
	if err := s.Store.CreatePolicyVersion(ctx, arn, v); err != nil {
		return nil, err
	}
	return struct{ PolicyVersion policyVersionXML }{toVersionXML(v, false)}, nil
}

// versionCall reads PolicyArn and VersionId and authorizes action on the
// policy.
func (s *Service) versionCall(ctx context.Context, c *shiftkey.Caller, p params, action string) (arn, id string, err error) {
	if arn, err = p.policyARN(); err != nil {
		return "", "", err
	}
	if id, err = p.versionID(); err != nil {
		return "", "", err
	}
	return arn, id, s.authorizePolicy(ctx, c, action, arn, nil)
}

func (s *Service) setDefaultPolicyVersion(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	arn, id, err := s.versionCall(ctx, c, p, "SetDefaultPolicyVersion")
	if err != nil {
		return nil, err
	}
	return nil, s.Store.SetDefaultPolicyVersion(ctx, arn, id)
}

func (s *Service) deletePolicyVersion(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	arn, id, err := s.versionCall(ctx, c, p, "DeletePolicyVersion")
	if err != nil {
		return nil, err
	}
	return nil, s.Store.DeletePolicyVersion(ctx, arn, id)
}

func (s *Service) getPolicyVersion(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	arn, id, err := s.versionCall(ctx, c, p, "GetPolicyVersion")
	if err != nil {
		return nil, err
	}
	vs, err := s.Store.PolicyVersions(ctx, arn)
	if err != nil {
		return nil, err
	}
	for _, v := range vs {
		if v.ID == id {
			return struct{ PolicyVersion policyVersionXML }{toVersionXML(v, true)}, nil
		}
	}
	return nil, shiftkey.NoSuchPolicyVersion(arn, id)
}

// listPolicyVersions lists the versions newest first, as IAM does; the
// Marker is an offset (a policy has 5 versions at most).
func (s *Service) listPolicyVersions(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	arn, err := p.policyARN()
	if err != nil {
		return nil, err
	}
	if err := s.authorizePolicy(ctx, c, "ListPolicyVersions", arn, nil); err != nil {
		return nil, err
	}
	all, err := s.Store.PolicyVersions(ctx, arn)
	if err != nil {
		return nil, err
	}
	versions, pg, err := page(p, all, nil)
	if err != nil {
		return nil, err
	}
	return struct {
		Versions []policyVersionXML `xml:"Versions>member"`
		pageXML
	}{each(versions, func(v *shiftkey.PolicyVersion) policyVersionXML { return toVersionXML(v, false) }), pg}, nil
}

// listManagedPolicies is ListPolicies: the account's customer-managed
// policies (shiftkey has no AWS managed ones: Scope AWS lists none), under
// PathPrefix, only the attached ones with OnlyAttached; PolicyUsageFilter
// PermissionsPolicy lists the policies attached to an entity,
// PermissionsBoundary those that are a user's or role's boundary.
func (s *Service) listManagedPolicies(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	scope, _ := p.opt("Scope")
	switch scope {
	case "", "All", "AWS", "Local":
	default:
		return nil, shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value '%s' at 'scope' failed to satisfy constraint: Member must satisfy enum value set: [All, AWS, Local]", scope)
	}
	usage, _ := p.opt("PolicyUsageFilter")
	switch usage {
	case "", "PermissionsPolicy", "PermissionsBoundary":
	default:
		return nil, shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value '%s' at 'policyUsageFilter' failed to satisfy constraint: Member must satisfy enum value set: [PermissionsPolicy, PermissionsBoundary]", usage)
	}
	onlyAttached := false
	if v, ok := p.opt("OnlyAttached"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value '%s' at 'onlyAttached' failed to satisfy constraint: Member must be a boolean", v)
		}
		onlyAttached = b
	}
	prefix := "/"
	if v, ok := p.opt("PathPrefix"); ok {
		if !ValidPolicyPath(v) {
			return nil, shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value '%s' at 'pathPrefix' failed to satisfy constraint: Member must satisfy regular expression pattern: ((/[A-Za-z0-9\\.,\\+@=_-]+)*)/", v)
		}
		prefix = v
	}
	if err := s.authorize(ctx, c, "ListPolicies", "*"); err != nil {
		return nil, err
	}
	var all []*shiftkey.ManagedPolicy
	var bounds map[string]int
	if scope != "AWS" {
		pols, err := s.Store.ManagedPolicies(ctx, prefix)
		if err != nil {
			return nil, err
		}
		if bounds, err = s.boundaryUsage(ctx); err != nil {
			return nil, err
		}
		for _, m := range pols {
			switch {
			case onlyAttached && m.AttachmentCount == 0:
			case usage == "PermissionsBoundary" && bounds[m.ARN] == 0:
			default:
				all = append(all, m)
			}
		}
	}
	pols, pg, err := page(p, all, func(m *shiftkey.ManagedPolicy) string { return m.Name })
	if err != nil {
		return nil, err
	}
	return struct {
		Policies []policyXML `xml:"Policies>member"`
		pageXML
	}{each(pols, func(m *shiftkey.ManagedPolicy) policyXML {
		x := toPolicyXML(m, m.AttachmentCount)
		x.PermissionsBoundaryUsageCount = bounds[m.ARN]
		x.Description = "" // ListPolicies returns a subset of a policy's attributes
		return x
	}), pg}, nil
}

// listEntitiesForPolicy is ListEntitiesForPolicy, by which Terraform's
// aws_iam_policy_attachment reads: the users, groups and roles the policy
// is attached to (PolicyUsageFilter PermissionsPolicy), the users and
// roles whose permissions boundary it is (PermissionsBoundary), or both
// (no filter: an entity both attached and bounded is listed once),
// filtered by EntityFilter and PathPrefix. The filters for policies list
// none (no policy is attached to a policy).
func (s *Service) listEntitiesForPolicy(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	filter, _ := p.opt("EntityFilter")
	switch filter {
	case "", "User", "Role", "Group", "LocalManagedPolicy", "AWSManagedPolicy":
	default:
		return nil, shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value '%s' at 'entityFilter' failed to satisfy constraint: Member must satisfy enum value set: [User, Role, Group, LocalManagedPolicy, AWSManagedPolicy]", filter)
	}
	usage, _ := p.opt("PolicyUsageFilter")
	switch usage {
	case "", "PermissionsPolicy", "PermissionsBoundary":
	default:
		return nil, shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value '%s' at 'policyUsageFilter' failed to satisfy constraint: Member must satisfy enum value set: [PermissionsPolicy, PermissionsBoundary]", usage)
	}
	prefix, err := p.pathPrefix()
	if err != nil {
		return nil, err
	}
	m, err := s.managedPolicy(ctx, c, p, "ListEntitiesForPolicy")
	if err != nil {
		return nil, err
	}
	var found []*shiftkey.Entity
	if usage != "PermissionsBoundary" {
		es, err := s.Store.PolicyEntities(ctx, m.ARN)
		if err != nil {
			return nil, err
		}
		found = es
	}
	if usage != "PermissionsPolicy" {
		es, err := s.Store.BoundaryEntities(ctx, m.ARN)
		if err != nil {
			return nil, err
		}
		found = append(found, es...)
	}
	var all []*shiftkey.Entity
	seen := map[string]bool{}
	for _, e := range found {
		if (filter == "" || strings.EqualFold(filter, string(e.Kind))) && strings.HasPrefix(e.Path, prefix) && !seen[e.ID] {
			seen[e.ID] = true
			all = append(all, e)
		}
	}
	// One list across the kinds, paged by kind and name.
	es, pg, err := page(p, all, func(e *shiftkey.Entity) string { return string(e.Kind) + "/" + e.Name })
	if err != nil {
		return nil, err
	}
	type user struct{ UserName, UserId string }
	type group struct{ GroupName, GroupId string }
	type role struct{ RoleName, RoleId string }
	res := struct {
		PolicyGroups []group `xml:"PolicyGroups>member"`
		PolicyUsers  []user  `xml:"PolicyUsers>member"`
		PolicyRoles  []role  `xml:"PolicyRoles>member"`
		pageXML
	}{pageXML: pg}
	for _, e := range es {
		switch e.Kind {
		case shiftkey.KindUser:
			res.PolicyUsers = append(res.PolicyUsers, user{e.Name, e.ID})
		case shiftkey.KindGroup:
			res.PolicyGroups = append(res.PolicyGroups, group{e.Name, e.ID})
		case shiftkey.KindRole:
			res.PolicyRoles = append(res.PolicyRoles, role{e.Name, e.ID})
		}
	}
	return res, nil
}
