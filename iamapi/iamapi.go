// Package iamapi implements the subset of the IAM API (Query protocol,
// version 2010-05-08) that lets users set up identities for shiftkey with
// the tools they already use: users, access keys, groups, roles, inline and
// customer-managed policies, and tags.
package iamapi

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/awsquery"
)

// Namespace is the XML namespace of IAM responses.
const Namespace = "https://iam.amazonaws.com/doc/2010-05-08/"

// IAM error codes.
const (
	CodeDeleteConflict          = "DeleteConflict"
	CodeMalformedPolicyDocument = "MalformedPolicyDocument"
	CodeLimitExceeded           = "LimitExceeded"
	CodeValidationError         = "ValidationError"
	CodeInvalidInput            = "InvalidInput"
)

// Service runs IAM operations.
type Service struct {
	Store      shiftkey.IdentityStore
	Authorizer shiftkey.Authorizer
	AccountID  string
	Now        func() time.Time
}

func (s *Service) now() time.Time { return shiftkey.Now(s.Now).UTC() }

type handler func(ctx context.Context, c *shiftkey.Caller, p params) (any, error)

// Handle runs the Query action with parameters v. The result is marshalled
// as the children of <ActionResult>.
func (s *Service) Handle(ctx context.Context, c *shiftkey.Caller, action string, v url.Values) (any, error) {
	h, ok := s.handlers()[action]
	if !ok {
		// AWS's answer for an unknown action, and a word on why: the
		// action may well be IAM's, only not among shiftkey's.
		return nil, shiftkey.Errorf(shiftkey.CodeInvalidAction, "Could not find operation %s for version 2010-05-08. shiftkey does not serve the IAM action %s; docs/semantics.md lists those it serves.", action, action)
	}
	p := params{v}
	// Checked before any handler looks its owner up or authorizes, as
	// AWS checks parameters first: a bad MaxItems is ValidationError for
	// a missing owner and for a caller without the permission alike.
	if _, err := p.maxItems(); err != nil {
		return nil, err
	}
	return h(ctx, c, p)
}

func (s *Service) handlers() map[string]handler {
	return map[string]handler{
		"CreateUser": s.createUser, "GetUser": s.getUser, "ListUsers": s.listUsers, "DeleteUser": s.deleteUser,
		"CreateAccessKey": s.createAccessKey, "ListAccessKeys": s.listAccessKeys, "UpdateAccessKey": s.updateAccessKey, "DeleteAccessKey": s.deleteAccessKey,
		"GetAccessKeyLastUsed": s.getAccessKeyLastUsed,
		"CreateGroup":          s.createGroup, "GetGroup": s.getGroup, "DeleteGroup": s.deleteGroup,
		"AddUserToGroup": s.addUserToGroup, "RemoveUserFromGroup": s.removeUserFromGroup, "ListGroupsForUser": s.listGroupsForUser,
		"CreateRole": s.createRole, "GetRole": s.getRole, "DeleteRole": s.deleteRole, "ListRoles": s.listRoles, "UpdateAssumeRolePolicy": s.updateAssumeRolePolicy,
		"PutUserPolicy": s.putPolicy(shiftkey.KindUser), "GetUserPolicy": s.getPolicy(shiftkey.KindUser),
		"DeleteUserPolicy": s.deletePolicy(shiftkey.KindUser), "ListUserPolicies": s.listPolicies(shiftkey.KindUser),
		"PutGroupPolicy": s.putPolicy(shiftkey.KindGroup), "GetGroupPolicy": s.getPolicy(shiftkey.KindGroup),
		"DeleteGroupPolicy": s.deletePolicy(shiftkey.KindGroup), "ListGroupPolicies": s.listPolicies(shiftkey.KindGroup),
		"PutRolePolicy": s.putPolicy(shiftkey.KindRole), "GetRolePolicy": s.getPolicy(shiftkey.KindRole),
		"DeleteRolePolicy": s.deletePolicy(shiftkey.KindRole), "ListRolePolicies": s.listPolicies(shiftkey.KindRole),
		"CreatePolicy": s.createManagedPolicy, "GetPolicy": s.getManagedPolicy, "DeletePolicy": s.deleteManagedPolicy,
		"ListPolicies": s.listManagedPolicies, "GetPolicyVersion": s.getPolicyVersion, "ListPolicyVersions": s.listPolicyVersions,
		"CreatePolicyVersion": s.createPolicyVersion, "SetDefaultPolicyVersion": s.setDefaultPolicyVersion, "DeletePolicyVersion": s.deletePolicyVersion,
		"AttachUserPolicy": s.attach(shiftkey.KindUser, true), "DetachUserPolicy": s.attach(shiftkey.KindUser, false),
		"AttachGroupPolicy": s.attach(shiftkey.KindGroup, true), "DetachGroupPolicy": s.attach(shiftkey.KindGroup, false),
		"AttachRolePolicy": s.attach(shiftkey.KindRole, true), "DetachRolePolicy": s.attach(shiftkey.KindRole, false),
		"ListAttachedUserPolicies": s.listAttached(shiftkey.KindUser), "ListAttachedGroupPolicies": s.listAttached(shiftkey.KindGroup),
		"ListAttachedRolePolicies": s.listAttached(shiftkey.KindRole),
		"TagUser":                  s.tag(shiftkey.KindUser, true), "UntagUser": s.tag(shiftkey.KindUser, false), "ListUserTags": s.listTags(shiftkey.KindUser),
		"TagRole": s.tag(shiftkey.KindRole, true), "UntagRole": s.tag(shiftkey.KindRole, false), "ListRoleTags": s.listTags(shiftkey.KindRole),
		"TagPolicy": s.tagPolicy(true), "UntagPolicy": s.tagPolicy(false), "ListPolicyTags": s.listPolicyTags,
		"UpdateRole": s.updateRole, "UpdateRoleDescription": s.updateRoleDescription, "ListInstanceProfilesForRole": s.listInstanceProfilesForRole,
		"ListEntitiesForPolicy": s.listEntitiesForPolicy,
		// NewUserName is userNameType (64), NewGroupName groupNameType (128).
		"UpdateUser": s.rename(shiftkey.KindUser, "NewUserName", 64), "UpdateGroup": s.rename(shiftkey.KindGroup, "NewGroupName", 128),
		"PutUserPermissionsBoundary": s.putBoundary(shiftkey.KindUser), "DeleteUserPermissionsBoundary": s.deleteBoundary(shiftkey.KindUser),
		"PutRolePermissionsBoundary": s.putBoundary(shiftkey.KindRole), "DeleteRolePermissionsBoundary": s.deleteBoundary(shiftkey.KindRole),
	}
}

// params reads Query parameters with IAM's validation.
type params struct{ v url.Values }

func (p params) opt(name string) (string, bool) {
	vals, ok := p.v[name]
	if !ok {
		return "", false
	}
	return vals[0], true
}

func (p params) required(name string) (string, error) {
	v, ok := p.opt(name)
	if !ok || v == "" {
		return "", shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", lowerFirst(name))
	}
	return v, nil
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

var namePattern = regexp.MustCompile(`^[\w+=,.@-]+$`)

// name reads and checks an IAM name parameter (user, group, role, policy).
func (p params) name(param string, max int, required bool) (string, error) {
	v, ok := p.opt(param)
	if !ok && !required {
		return "", nil
	}
	if !ok || v == "" {
		return "", shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", lowerFirst(param))
	}
	if len(v) > max {
		return "", shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", v, lowerFirst(param), max)
	}
	if !namePattern.MatchString(v) {
		return "", shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+", v, lowerFirst(param))
	}
	return v, nil
}

// path reads a Path or PathPrefix parameter: "/" or "/…/" of printable ASCII.
func (p params) path(param string) (string, error) {
	v, ok := p.opt(param)
	if !ok {
		return "/", nil
	}
	if len(v) < 1 || len(v) > 512 || v[0] != '/' || v[len(v)-1] != '/' || v == "//" {
		return "", shiftkey.Errorf(CodeValidationError, "The specified value for %s is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.", lowerFirst(param))
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x21 || v[i] > 0x7e {
			return "", shiftkey.Errorf(CodeValidationError, "The specified value for %s is invalid. It must contain only printable ASCII characters.", lowerFirst(param))
		}
	}
	return v, nil
}

// policyPathPattern is IAM's policyPathType: a managed policy's path has
// letters, digits and .,+@=_- between its slashes.
var policyPathPattern = regexp.MustCompile(`^(/[A-Za-z0-9.,+@=_-]+)*/$`)

// policyPath reads CreatePolicy's Path.
func (p params) policyPath() (string, error) {
	v, ok := p.opt("Path")
	if !ok {
		return "/", nil
	}
	if !ValidPolicyPath(v) {
		return "", shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value '%s' at 'path' failed to satisfy constraint: Member must satisfy regular expression pattern: ((/[A-Za-z0-9\\.,\\+@=_-]+)*)/", v)
	}
	return v, nil
}

// maxPolicyDocument is IAM's policyDocumentType's length, white space
// included (the quotas in iam.Size characters are checked after it).
const maxPolicyDocument = 131072

// policyDocument reads a required policy document parameter as IAM's
// policyDocumentType allows it: at most 131,072 characters of tab, LF, CR
// and U+0020-U+00FF. White space is not counted by the size quotas, so
// without this a document padded with it could be as large as a request.
func (p params) policyDocument(param string) (string, error) {
	doc, err := p.required(param)
	if err != nil {
		return "", err
	}
	if utf8.RuneCountInString(doc) > maxPolicyDocument {
		return "", shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", lowerFirst(param), maxPolicyDocument)
	}
	if !DocumentChars(doc) {
		return "", shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+", lowerFirst(param))
	}
	return doc, nil
}

// CheckDocument is IAM's policyDocumentType as the config is held to it:
// nil, or why doc is not one.
func CheckDocument(doc string) error {
	if n := utf8.RuneCountInString(doc); n > maxPolicyDocument {
		return fmt.Errorf("%d characters, over IAM's %d for a policy document", n, maxPolicyDocument)
	}
	if !DocumentChars(doc) {
		return errors.New("IAM takes only tab, LF, CR and U+0020-U+00FF in a policy document")
	}
	return nil
}

// DocumentChars reports whether doc holds only policyDocumentType's
// characters: tab, LF, CR and U+0020-U+00FF.
func DocumentChars(doc string) bool {
	for _, r := range doc {
		if r != '\t' && r != '\n' && r != '\r' && (r < 0x20 || r > 0xFF) {
			return false
		}
	}
	return true
}

// ValidPath reports whether path is IAM's pathType (a user's, group's or
// role's Path): "/", or 3-512 printable ASCII characters beginning and
// ending with "/".
func ValidPath(path string) bool {
	if path == "/" {
		return true
	}
	if len(path) < 3 || len(path) > 512 || path[0] != '/' || path[len(path)-1] != '/' {
		return false
	}
	for i := 0; i < len(path); i++ {
		if path[i] < 0x21 || path[i] > 0x7e {
			return false
		}
	}
	return true
}

// ValidPolicyPath reports whether path is IAM's policyPathType (a managed
// policy's Path).
func ValidPolicyPath(path string) bool {
	return len(path) <= 512 && policyPathPattern.MatchString(path)
}

// description reads an optional Description of at most 1,000 characters;
// a role's (roleDescriptionType) also only of tab, LF, CR, U+0020-U+007E
// and U+00A1-U+00FF.
func (p params) description(role bool) (string, error) {
	v, _ := p.opt("Description")
	if utf8.RuneCountInString(v) > 1000 {
		return "", shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 1000")
	}
	for _, r := range v {
		if role && r != '\t' && r != '\n' && r != '\r' && (r < 0x20 || r > 0xFF || r > 0x7E && r < 0xA1) {
			return "", shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u007E\\u00A1-\\u00FF]*")
		}
	}
	return v, nil
}

func (p params) pathPrefix() (string, error) {
	v, ok := p.opt("PathPrefix")
	if !ok {
		return "/", nil
	}
	if len(v) < 1 || len(v) > 512 || v[0] != '/' {
		return "", shiftkey.Errorf(CodeValidationError, "The specified value for pathPrefix is invalid. It must begin with /.")
	}
	return v, nil
}

// pageXML is the paging part of every list result.
type pageXML struct {
	IsTruncated bool
	Marker      string `xml:",omitempty"` // where the next page starts
}

// page applies Marker/MaxItems to all and returns one page of it. With a
// key, all is taken in the order of key and the Marker names the last key
// of the page before, not an offset, so that an item deleted or created
// before it between two pages makes the client neither miss nor repeat
// one; the offsets given out before are still taken. Without one (access
// keys, in the order they were made) the Marker is an offset.
func page[T any](p params, all []T, key func(T) string) ([]T, pageXML, error) {
	max, err := p.maxItems()
	if err != nil {
		return nil, pageXML{}, err
	}
	if key != nil {
		all = shiftkey.SortedByKey(all, key)
	}
	start := 0
	if m, ok := p.opt("Marker"); ok && m != "" {
		after, byKey := shiftkey.PageTokenKey(m)
		switch {
		case byKey && key != nil:
			start = shiftkey.PageStart(all, key, after)
		default:
			start, err = strconv.Atoi(m)
			if err != nil || start < 0 || start > len(all) {
				return nil, pageXML{}, shiftkey.Errorf(CodeInvalidInput, "Invalid Marker.")
			}
		}
	}
	end := min(start+max, len(all))
	var pg pageXML
	if end < len(all) {
		pg = pageXML{IsTruncated: true, Marker: strconv.Itoa(end)}
		if key != nil {
			pg.Marker = shiftkey.PageToken(key(all[end-1]))
		}
	}
	return all[start:end], pg, nil
}

// maxItems reads MaxItems: 1 to 1000, 100 when absent.
func (p params) maxItems() (int, error) {
	v, ok := p.opt("MaxItems")
	if !ok {
		return 100, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value '%s' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000", v)
	}
	return n, nil
}

// each maps a page of items to their XML form; an empty page is an empty
// list, not an absent one.
func each[T, X any](items []T, f func(T) X) []X {
	out := make([]X, 0, len(items))
	for _, it := range items {
		out = append(out, f(it))
	}
	return out
}

func (p params) tags() ([]shiftkey.Tag, error) {
	items, _, err := awsquery.Structs(p.v, "Tags", "member")
	if err != nil {
		e := err.(*awsquery.Error)
		return nil, shiftkey.Errorf(e.Code, "%s", e.Message)
	}
	if len(items) > 50 {
		return nil, shiftkey.Errorf(CodeLimitExceeded, "The number of tags has reached the maximum limit of 50.")
	}
	out := make([]shiftkey.Tag, 0, len(items))
	seen := map[string]bool{}
	for _, it := range items {
		k, v := it["Key"], it["Value"]
		if err := CheckTag(k, v); err != nil {
			return nil, err
		}
		if seen[strings.ToLower(k)] {
			return nil, shiftkey.Errorf(CodeInvalidInput, "Duplicate tag keys found. Please note that Tag keys are case insensitive.")
		}
		seen[strings.ToLower(k)] = true
		out = append(out, shiftkey.Tag{Key: k, Value: v})
	}
	return out, nil
}

// IAM's tagKeyType and tagValueType: letters, spaces, digits and
// _.:/=+-@ (no control character, quote or semicolon), counted in
// characters.
var (
	tagKeyPattern   = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]+$`)
	tagValuePattern = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
)

// CheckTag is IAM's rule for a tag a caller sets (and the config
// declares): a key of 1-128 characters not starting with aws:, a value of
// at most 256, both of IAM's characters; else ValidationError.
func CheckTag(key, value string) error {
	if key == "" || utf8.RuneCountInString(key) > 128 || utf8.RuneCountInString(value) > 256 || strings.HasPrefix(strings.ToLower(key), "aws:") {
		return shiftkey.Errorf(CodeValidationError, "Tag keys must be 1-128 characters and not start with aws:, values at most 256 characters: %q.", key)
	}
	if !tagKeyPattern.MatchString(key) || !tagValuePattern.MatchString(value) {
		return shiftkey.Errorf(CodeValidationError, "Tag keys and values may hold only letters, spaces, digits and _.:/=+-@: %q.", key)
	}
	return nil
}

// Authorization.

func (s *Service) arn(kind shiftkey.EntityKind, path, name string) string {
	return fmt.Sprintf("arn:aws:iam::%s:%s%s%s", s.AccountID, kind, path, name)
}

func (s *Service) authorize(ctx context.Context, c *shiftkey.Caller, action, resource string) error {
	return s.authorizeWith(ctx, c, action, resource, nil)
}

// authorizeWith authorizes iam:action on resource with the request's
// condition keys (see the Service Authorization Reference for IAM:
// iam:PolicyARN on Attach/Detach*Policy, aws:RequestTag/* and aws:TagKeys
// where tags are set, aws:ResourceTag/* and iam:ResourceTag/* for a user or
// role acted on). IAM is a global service: AWS reports its requests in
// us-east-1 whatever region the client signed for.
func (s *Service) authorizeWith(ctx context.Context, c *shiftkey.Caller, action, resource string, keys map[string][]string) error {
	ctx2 := map[string][]string{"aws:RequestedRegion": {"us-east-1"}}
	for k, v := range keys {
		ctx2[k] = v
	}
	return s.Authorizer.Authorize(ctx, c, shiftkey.AuthzRequest{Action: "iam:" + action, Resource: resource, Context: ctx2})
}

// Results.

type tagXML struct {
	Key   string
	Value string
}

type userXML struct {
	Path       string
	UserName   string
	UserId     string
	Arn        string
	CreateDate string
	// GetUser's and CreateUser's; lists leave it out, as IAM's do.
	PermissionsBoundary *boundaryXML `xml:",omitempty"`
	Tags                []tagXML     `xml:"Tags>member,omitempty"`
}

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func tagsXML(tags []shiftkey.Tag) []tagXML {
	return each(tags, func(t shiftkey.Tag) tagXML { return tagXML{t.Key, t.Value} })
}

func toUserXML(e *shiftkey.Entity, tags []shiftkey.Tag) userXML {
	return userXML{Path: e.Path, UserName: e.Name, UserId: e.ID, Arn: e.ARN, CreateDate: isoTime(e.CreatedAt), PermissionsBoundary: toBoundaryXML(e),
		Tags: tagsXML(tags)}
}

// untaggedUserXML is a user as lists show it: without its tags or its
// permissions boundary.
func untaggedUserXML(e *shiftkey.Entity) userXML {
	x := toUserXML(e, nil)
	x.PermissionsBoundary = nil
	return x
}
