// Package iamapi implements the subset of the IAM API (Query protocol,
// version 2010-05-08) that lets users set up identities for shiftkey with
// the tools they already use: users, access keys, groups, roles, inline and
// customer-managed policies, and tags.
package iamapi

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/awsquery"
	"github.com/shiftkey/shiftkey/iam"
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

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

type handler func(ctx context.Context, c *shiftkey.Caller, p params) (any, error)

// Handle runs the Query action with parameters v. The result is marshalled
// as the children of <ActionResult>.
func (s *Service) Handle(ctx context.Context, c *shiftkey.Caller, action string, v url.Values) (any, error) {
	h, ok := s.handlers()[action]
	if !ok {
		return nil, shiftkey.Errorf(shiftkey.CodeInvalidAction, "Could not find operation %s for version 2010-05-08.", action)
	}
	return h(ctx, c, params{v})
}

func (s *Service) handlers() map[string]handler {
	return map[string]handler{
		"CreateUser": s.createUser, "GetUser": s.getUser, "ListUsers": s.listUsers, "DeleteUser": s.deleteUser,
		"CreateAccessKey": s.createAccessKey, "ListAccessKeys": s.listAccessKeys, "UpdateAccessKey": s.updateAccessKey, "DeleteAccessKey": s.deleteAccessKey,
		"CreateGroup": s.createGroup, "GetGroup": s.getGroup, "DeleteGroup": s.deleteGroup,
		"AddUserToGroup": s.addUserToGroup, "RemoveUserFromGroup": s.removeUserFromGroup, "ListGroupsForUser": s.listGroupsForUser,
		"CreateRole": s.createRole, "GetRole": s.getRole, "DeleteRole": s.deleteRole, "ListRoles": s.listRoles,
		"PutUserPolicy": s.putPolicy(shiftkey.KindUser), "GetUserPolicy": s.getPolicy(shiftkey.KindUser),
		"DeleteUserPolicy": s.deletePolicy(shiftkey.KindUser), "ListUserPolicies": s.listPolicies(shiftkey.KindUser),
		"PutGroupPolicy": s.putPolicy(shiftkey.KindGroup), "GetGroupPolicy": s.getPolicy(shiftkey.KindGroup),
		"DeleteGroupPolicy": s.deletePolicy(shiftkey.KindGroup), "ListGroupPolicies": s.listPolicies(shiftkey.KindGroup),
		"PutRolePolicy": s.putPolicy(shiftkey.KindRole), "GetRolePolicy": s.getPolicy(shiftkey.KindRole),
		"DeleteRolePolicy": s.deletePolicy(shiftkey.KindRole), "ListRolePolicies": s.listPolicies(shiftkey.KindRole),
		"CreatePolicy": s.createManagedPolicy, "GetPolicy": s.getManagedPolicy, "DeletePolicy": s.deleteManagedPolicy,
		"AttachUserPolicy": s.attach(shiftkey.KindUser, true), "DetachUserPolicy": s.attach(shiftkey.KindUser, false),
		"AttachGroupPolicy": s.attach(shiftkey.KindGroup, true), "DetachGroupPolicy": s.attach(shiftkey.KindGroup, false),
		"AttachRolePolicy": s.attach(shiftkey.KindRole, true), "DetachRolePolicy": s.attach(shiftkey.KindRole, false),
		"ListAttachedUserPolicies": s.listAttached(shiftkey.KindUser), "ListAttachedGroupPolicies": s.listAttached(shiftkey.KindGroup),
		"ListAttachedRolePolicies": s.listAttached(shiftkey.KindRole),
		"TagUser":                  s.tag(shiftkey.KindUser, true), "UntagUser": s.tag(shiftkey.KindUser, false), "ListUserTags": s.listTags(shiftkey.KindUser),
		"TagRole": s.tag(shiftkey.KindRole, true), "UntagRole": s.tag(shiftkey.KindRole, false), "ListRoleTags": s.listTags(shiftkey.KindRole),
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
	if len(v) < 1 || len(v) > 512 || v[0] != '/' || v[len(v)-1] != '/' {
		return "", shiftkey.Errorf(CodeValidationError, "The specified value for %s is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.", lowerFirst(param))
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x21 || v[i] > 0x7e {
			return "", shiftkey.Errorf(CodeValidationError, "The specified value for %s is invalid. It must contain only printable ASCII characters.", lowerFirst(param))
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

// page applies Marker/MaxItems to n items and returns [start, end) and the
// next marker ("" when this is the last page).
func (p params) page(n int) (start, end int, next string, err error) {
	max := 100
	if v, ok := p.opt("MaxItems"); ok {
		max, err = strconv.Atoi(v)
		if err != nil || max < 1 || max > 1000 {
			return 0, 0, "", shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value '%s' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000", v)
		}
	}
	if m, ok := p.opt("Marker"); ok && m != "" {
		start, err = strconv.Atoi(m)
		if err != nil || start < 0 || start > n {
			return 0, 0, "", shiftkey.Errorf(CodeInvalidInput, "Invalid Marker.")
		}
	}
	end = min(start+max, n)
	if end < n {
		next = strconv.Itoa(end)
	}
	return start, end, next, nil
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
		if k == "" || len(k) > 128 || len(v) > 256 || strings.HasPrefix(strings.ToLower(k), "aws:") {
			return nil, shiftkey.Errorf(CodeValidationError, "Tag keys must be 1-128 characters and not start with aws:, values at most 256 characters: %q.", k)
		}
		if seen[strings.ToLower(k)] {
			return nil, shiftkey.Errorf(CodeInvalidInput, "Duplicate tag keys found. Please note that Tag keys are case insensitive.")
		}
		seen[strings.ToLower(k)] = true
		out = append(out, shiftkey.Tag{Key: k, Value: v})
	}
	return out, nil
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

// requestTagKeys are aws:RequestTag/* and aws:TagKeys for calls that set tags.
func requestTagKeys(tags []shiftkey.Tag, keys map[string][]string) map[string][]string {
	if len(tags) == 0 {
		return keys
	}
	if keys == nil {
		keys = map[string][]string{}
	}
	var names []string
	for _, t := range tags {
		keys["aws:RequestTag/"+t.Key] = []string{t.Value}
		names = append(names, t.Key)
	}
	keys["aws:TagKeys"] = names
	return keys
}

// entity resolves name, authorizing action on it first (so a caller
// without permission cannot probe which names exist). The entity's tags
// are its aws:ResourceTag/* keys; extra adds request keys.
func (s *Service) entity(ctx context.Context, c *shiftkey.Caller, action string, kind shiftkey.EntityKind, name string, extra ...map[string][]string) (*shiftkey.Entity, error) {
	var keys map[string][]string
	if len(extra) > 0 {
		keys = extra[0]
	}
	e, err := s.Store.Entity(ctx, kind, name)
	if shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity {
		if aerr := s.authorizeWith(ctx, c, action, s.arn(kind, "/", name), keys); aerr != nil {
			return nil, aerr
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	if kind != shiftkey.KindGroup {
		tags, err := s.Store.Tags(ctx, kind, e.Name)
		if err != nil {
			return nil, err
		}
		if len(tags) > 0 && keys == nil {
			keys = map[string][]string{}
		}
		// Users and roles are IAM resources: their tags are both
		// aws:ResourceTag/* and iam:ResourceTag/*.
		for _, t := range tags {
			keys["aws:ResourceTag/"+t.Key] = []string{t.Value}
			keys["iam:ResourceTag/"+t.Key] = []string{t.Value}
		}
	}
	return e, s.authorizeWith(ctx, c, action, e.ARN, keys)
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
	Tags       []tagXML `xml:"Tags>member,omitempty"`
}

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func tagsXML(tags []shiftkey.Tag) []tagXML {
	out := make([]tagXML, 0, len(tags))
	for _, t := range tags {
		out = append(out, tagXML{t.Key, t.Value})
	}
	return out
}

func toUserXML(e *shiftkey.Entity, tags []shiftkey.Tag) userXML {
	return userXML{Path: e.Path, UserName: e.Name, UserId: e.ID, Arn: e.ARN, CreateDate: isoTime(e.CreatedAt), Tags: tagsXML(tags)}
}

// Users.

func (s *Service) createUser(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	name, err := p.name("UserName", 64, true)
	if err != nil {
		return nil, err
	}
	path, err := p.path("Path")
	if err != nil {
		return nil, err
	}
	tags, err := p.tags()
	if err != nil {
		return nil, err
	}
	e := &shiftkey.Entity{Kind: shiftkey.KindUser, Name: name, ID: shiftkey.NewID("AIDA"), Path: path, ARN: s.arn(shiftkey.KindUser, path, name), CreatedAt: s.now()}
	if err := s.authorizeWith(ctx, c, "CreateUser", e.ARN, requestTagKeys(tags, nil)); err != nil {
		return nil, err
	}
	if err := s.Store.CreateEntity(ctx, e); err != nil {
		return nil, err
	}
	if len(tags) > 0 {
		if err := s.Store.TagEntity(ctx, shiftkey.KindUser, name, tags); err != nil {
			return nil, err
		}
	}
	return struct {
		User userXML
	}{toUserXML(e, tags)}, nil
}

func (s *Service) getUser(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	name, err := p.name("UserName", 64, false)
	if err != nil {
		return nil, err
	}
	if name == "" {
		if c.Principal.Type != shiftkey.PrincipalUser {
			return nil, shiftkey.Errorf(CodeValidationError, "Must specify userName when calling with non-User credentials")
		}
		name = c.Principal.UserName
	}
	e, err := s.entity(ctx, c, "GetUser", shiftkey.KindUser, name)
	if err != nil {
		return nil, err
	}
	tags, err := s.Store.Tags(ctx, shiftkey.KindUser, e.Name)
	if err != nil {
		return nil, err
	}
	return struct{ User userXML }{toUserXML(e, tags)}, nil
}

func (s *Service) listUsers(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	prefix, err := p.pathPrefix()
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, c, "ListUsers", s.arn(shiftkey.KindUser, "/", "*")); err != nil {
		return nil, err
	}
	all, err := s.Store.Entities(ctx, shiftkey.KindUser, prefix)
	if err != nil {
		return nil, err
	}
	start, end, next, err := p.page(len(all))
	if err != nil {
		return nil, err
	}
	res := struct {
		Users       []userXML `xml:"Users>member"`
		IsTruncated bool
		Marker      string `xml:",omitempty"`
	}{Users: []userXML{}, IsTruncated: next != "", Marker: next}
	for _, e := range all[start:end] {
		res.Users = append(res.Users, toUserXML(e, nil))
	}
	return res, nil
}

func (s *Service) deleteUser(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	name, err := p.name("UserName", 64, true)
	if err != nil {
		return nil, err
	}
	e, err := s.entity(ctx, c, "DeleteUser", shiftkey.KindUser, name)
	if err != nil {
		return nil, err
	}
	keys, err := s.Store.AccessKeys(ctx, e.Name)
	if err != nil {
		return nil, err
	}
	groups, err := s.Store.GroupsForUser(ctx, e.Name)
	if err != nil {
		return nil, err
	}
	if err := s.checkNoPolicies(ctx, e); err != nil {
		return nil, err
	}
	if len(keys) > 0 || len(groups) > 0 {
		return nil, shiftkey.Errorf(CodeDeleteConflict, "Cannot delete entity, must delete access keys and remove the user from groups first.")
	}
	return nil, s.Store.DeleteEntity(ctx, shiftkey.KindUser, e.Name)
}

func (s *Service) checkNoPolicies(ctx context.Context, e *shiftkey.Entity) error {
	inline, err := s.Store.InlinePolicies(ctx, e.Kind, e.Name)
	if err != nil {
		return err
	}
	attached, err := s.Store.AttachedPolicies(ctx, e.Kind, e.Name)
	if err != nil {
		return err
	}
	if len(inline) > 0 {
		return shiftkey.Errorf(CodeDeleteConflict, "Cannot delete entity, must delete policies first.")
	}
	if len(attached) > 0 {
		return shiftkey.Errorf(CodeDeleteConflict, "Cannot delete entity, must detach all policies first.")
	}
	return nil
}

// Access keys.

type accessKeyXML struct {
	UserName        string
	AccessKeyId     string
	Status          string
	SecretAccessKey string `xml:",omitempty"`
	CreateDate      string
}

// keyUser is the user an access-key call is about: UserName, or the caller.
func (s *Service) keyUser(ctx context.Context, c *shiftkey.Caller, p params, action string) (*shiftkey.Entity, error) {
	name, err := p.name("UserName", 64, false)
	if err != nil {
		return nil, err
	}
	if name == "" {
		if c.Principal.Type != shiftkey.PrincipalUser {
			return nil, shiftkey.Errorf(CodeValidationError, "Must specify userName when calling with non-User credentials")
		}
		name = c.Principal.UserName
	}
	return s.entity(ctx, c, action, shiftkey.KindUser, name)
}

func (s *Service) createAccessKey(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	u, err := s.keyUser(ctx, c, p, "CreateAccessKey")
	if err != nil {
		return nil, err
	}
	// The store enforces the per-user quota in the same write.
	k := &shiftkey.AccessKey{ID: shiftkey.NewID("AKIA"), Secret: shiftkey.NewSecretKey(), UserName: u.Name, Status: "Active", CreatedAt: s.now()}
	if err := s.Store.CreateAccessKey(ctx, k); err != nil {
		return nil, err
	}
	return struct{ AccessKey accessKeyXML }{accessKeyXML{u.Name, k.ID, k.Status, k.Secret, isoTime(k.CreatedAt)}}, nil
}

func (s *Service) listAccessKeys(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	u, err := s.keyUser(ctx, c, p, "ListAccessKeys")
	if err != nil {
		return nil, err
	}
	keys, err := s.Store.AccessKeys(ctx, u.Name)
	if err != nil {
		return nil, err
	}
	start, end, next, err := p.page(len(keys))
	if err != nil {
		return nil, err
	}
	res := struct {
		UserName          string
		AccessKeyMetadata []accessKeyXML `xml:"AccessKeyMetadata>member"`
		IsTruncated       bool
		Marker            string `xml:",omitempty"`
	}{UserName: u.Name, AccessKeyMetadata: []accessKeyXML{}, IsTruncated: next != "", Marker: next}
	for _, k := range keys[start:end] {
		res.AccessKeyMetadata = append(res.AccessKeyMetadata, accessKeyXML{UserName: u.Name, AccessKeyId: k.ID, Status: k.Status, CreateDate: isoTime(k.CreatedAt)})
	}
	return res, nil
}

// ownedKey checks that the key exists and belongs to the user.
func (s *Service) ownedKey(ctx context.Context, u *shiftkey.Entity, id string) error {
	k, err := s.Store.AccessKey(ctx, id)
	if err != nil {
		return err
	}
	if !strings.EqualFold(k.UserName, u.Name) {
		return shiftkey.Errorf(shiftkey.CodeNoSuchEntity, "The Access Key with id %s cannot be found.", id)
	}
	return nil
}

func (s *Service) updateAccessKey(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	id, err := p.required("AccessKeyId")
	if err != nil {
		return nil, err
	}
	status, err := p.required("Status")
	if err != nil {
		return nil, err
	}
	if status != "Active" && status != "Inactive" {
		return nil, shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value '%s' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]", status)
	}
	u, err := s.keyUser(ctx, c, p, "UpdateAccessKey")
	if err != nil {
		return nil, err
	}
	if err := s.ownedKey(ctx, u, id); err != nil {
		return nil, err
	}
	return nil, s.Store.UpdateAccessKey(ctx, id, status)
}

func (s *Service) deleteAccessKey(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	id, err := p.required("AccessKeyId")
	if err != nil {
		return nil, err
	}
	u, err := s.keyUser(ctx, c, p, "DeleteAccessKey")
	if err != nil {
		return nil, err
	}
	if err := s.ownedKey(ctx, u, id); err != nil {
		return nil, err
	}
	return nil, s.Store.DeleteAccessKey(ctx, id)
}

// Groups.

type groupXML struct {
	Path       string
	GroupName  string
	GroupId    string
	Arn        string
	CreateDate string
}

func toGroupXML(e *shiftkey.Entity) groupXML {
	return groupXML{e.Path, e.Name, e.ID, e.ARN, isoTime(e.CreatedAt)}
}

func (s *Service) createGroup(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	name, err := p.name("GroupName", 128, true)
	if err != nil {
		return nil, err
	}
	path, err := p.path("Path")
	if err != nil {
		return nil, err
	}
	e := &shiftkey.Entity{Kind: shiftkey.KindGroup, Name: name, ID: shiftkey.NewID("AGPA"), Path: path, ARN: s.arn(shiftkey.KindGroup, path, name), CreatedAt: s.now()}
	if err := s.authorize(ctx, c, "CreateGroup", e.ARN); err != nil {
		return nil, err
	}
	if err := s.Store.CreateEntity(ctx, e); err != nil {
		return nil, err
	}
	return struct{ Group groupXML }{toGroupXML(e)}, nil
}

func (s *Service) getGroup(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	name, err := p.name("GroupName", 128, true)
	if err != nil {
		return nil, err
	}
	g, err := s.entity(ctx, c, "GetGroup", shiftkey.KindGroup, name)
	if err != nil {
		return nil, err
	}
	members, err := s.Store.GroupMembers(ctx, g.Name)
	if err != nil {
		return nil, err
	}
	res := struct {
		Group       groupXML
		Users       []userXML `xml:"Users>member"`
		IsTruncated bool
	}{Group: toGroupXML(g), Users: []userXML{}}
	for _, m := range members {
		u, err := s.Store.Entity(ctx, shiftkey.KindUser, m)
		if err != nil {
			continue
		}
		res.Users = append(res.Users, toUserXML(u, nil))
	}
	return res, nil
}

func (s *Service) deleteGroup(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	name, err := p.name("GroupName", 128, true)
	if err != nil {
		return nil, err
	}
	g, err := s.entity(ctx, c, "DeleteGroup", shiftkey.KindGroup, name)
	if err != nil {
		return nil, err
	}
	members, err := s.Store.GroupMembers(ctx, g.Name)
	if err != nil {
		return nil, err
	}
	if len(members) > 0 {
		return nil, shiftkey.Errorf(CodeDeleteConflict, "Cannot delete entity, must remove users from group first.")
	}
	if err := s.checkNoPolicies(ctx, g); err != nil {
		return nil, err
	}
	return nil, s.Store.DeleteEntity(ctx, shiftkey.KindGroup, g.Name)
}

func (s *Service) membership(ctx context.Context, c *shiftkey.Caller, p params, action string) (*shiftkey.Entity, *shiftkey.Entity, error) {
	gname, err := p.name("GroupName", 128, true)
	if err != nil {
		return nil, nil, err
	}
	uname, err := p.name("UserName", 64, true)
	if err != nil {
		return nil, nil, err
	}
	g, err := s.entity(ctx, c, action, shiftkey.KindGroup, gname)
	if err != nil {
		return nil, nil, err
	}
	u, err := s.Store.Entity(ctx, shiftkey.KindUser, uname)
	if err != nil {
		return nil, nil, err
	}
	return g, u, nil
}

func (s *Service) addUserToGroup(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	g, u, err := s.membership(ctx, c, p, "AddUserToGroup")
	if err != nil {
		return nil, err
	}
	return nil, s.Store.AddUserToGroup(ctx, g.Name, u.Name)
}

func (s *Service) removeUserFromGroup(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	g, u, err := s.membership(ctx, c, p, "RemoveUserFromGroup")
	if err != nil {
		return nil, err
	}
	return nil, s.Store.RemoveUserFromGroup(ctx, g.Name, u.Name)
}

func (s *Service) listGroupsForUser(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	name, err := p.name("UserName", 64, true)
	if err != nil {
		return nil, err
	}
	u, err := s.entity(ctx, c, "ListGroupsForUser", shiftkey.KindUser, name)
	if err != nil {
		return nil, err
	}
	groups, err := s.Store.GroupsForUser(ctx, u.Name)
	if err != nil {
		return nil, err
	}
	start, end, next, err := p.page(len(groups))
	if err != nil {
		return nil, err
	}
	res := struct {
		Groups      []groupXML `xml:"Groups>member"`
		IsTruncated bool
		Marker      string `xml:",omitempty"`
	}{Groups: []groupXML{}, IsTruncated: next != "", Marker: next}
	for _, g := range groups[start:end] {
		res.Groups = append(res.Groups, toGroupXML(g))
	}
	return res, nil
}

// Roles.

type roleXML struct {
	Path                     string
	RoleName                 string
	RoleId                   string
	Arn                      string
	CreateDate               string
	AssumeRolePolicyDocument string
	Description              string `xml:",omitempty"`
	MaxSessionDuration       int
	Tags                     []tagXML `xml:"Tags>member,omitempty"`
}

// encodeDocument is how IAM returns policy documents: URL-encoded.
func encodeDocument(doc string) string { return url.QueryEscape(doc) }

func toRoleXML(e *shiftkey.Entity, tags []shiftkey.Tag) roleXML {
	return roleXML{e.Path, e.Name, e.ID, e.ARN, isoTime(e.CreatedAt), encodeDocument(e.AssumeRolePolicy), e.Description, e.MaxSessionDuration, tagsXML(tags)}
}

func (s *Service) createRole(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	name, err := p.name("RoleName", 64, true)
	if err != nil {
		return nil, err
	}
	path, err := p.path("Path")
	if err != nil {
		return nil, err
	}
	trust, err := p.required("AssumeRolePolicyDocument")
	if err != nil {
		return nil, err
	}
	if iam.Size(trust) > trustPolicyLimit {
		return nil, shiftkey.Errorf(CodeLimitExceeded, "Cannot exceed quota for ACLSizePerRole: %d", trustPolicyLimit)
	}
	if _, err := ParseTrustPolicy(trust); err != nil {
		return nil, err
	}
	desc, _ := p.opt("Description")
	if len(desc) > 1000 {
		return nil, shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 1000")
	}
	maxSession := 3600
	if v, ok := p.opt("MaxSessionDuration"); ok {
		maxSession, err = strconv.Atoi(v)
		if err != nil || maxSession < 3600 || maxSession > 43200 {
			return nil, shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value '%s' at 'maxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200", v)
		}
	}
	tags, err := p.tags()
	if err != nil {
		return nil, err
	}
	e := &shiftkey.Entity{Kind: shiftkey.KindRole, Name: name, ID: shiftkey.NewID("AROA"), Path: path, ARN: s.arn(shiftkey.KindRole, path, name),
		CreatedAt: s.now(), AssumeRolePolicy: trust, Description: desc, MaxSessionDuration: maxSession}
	if err := s.authorizeWith(ctx, c, "CreateRole", e.ARN, requestTagKeys(tags, nil)); err != nil {
		return nil, err
	}
	if err := s.Store.CreateEntity(ctx, e); err != nil {
		return nil, err
	}
	if len(tags) > 0 {
		if err := s.Store.TagEntity(ctx, shiftkey.KindRole, name, tags); err != nil {
			return nil, err
		}
	}
	return struct{ Role roleXML }{toRoleXML(e, tags)}, nil
}

func (s *Service) getRole(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	name, err := p.name("RoleName", 64, true)
	if err != nil {
		return nil, err
	}
	r, err := s.entity(ctx, c, "GetRole", shiftkey.KindRole, name)
	if err != nil {
		return nil, err
	}
	tags, err := s.Store.Tags(ctx, shiftkey.KindRole, r.Name)
	if err != nil {
		return nil, err
	}
	return struct{ Role roleXML }{toRoleXML(r, tags)}, nil
}

func (s *Service) listRoles(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	prefix, err := p.pathPrefix()
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, c, "ListRoles", s.arn(shiftkey.KindRole, "/", "*")); err != nil {
		return nil, err
	}
	all, err := s.Store.Entities(ctx, shiftkey.KindRole, prefix)
	if err != nil {
		return nil, err
	}
	start, end, next, err := p.page(len(all))
	if err != nil {
		return nil, err
	}
	res := struct {
		Roles       []roleXML `xml:"Roles>member"`
		IsTruncated bool
		Marker      string `xml:",omitempty"`
	}{Roles: []roleXML{}, IsTruncated: next != "", Marker: next}
	for _, e := range all[start:end] {
		res.Roles = append(res.Roles, toRoleXML(e, nil))
	}
	return res, nil
}

func (s *Service) deleteRole(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	name, err := p.name("RoleName", 64, true)
	if err != nil {
		return nil, err
	}
	r, err := s.entity(ctx, c, "DeleteRole", shiftkey.KindRole, name)
	if err != nil {
		return nil, err
	}
	if err := s.checkNoPolicies(ctx, r); err != nil {
		return nil, err
	}
	return nil, s.Store.DeleteEntity(ctx, shiftkey.KindRole, r.Name)
}

// Inline policies.

// IAM's policy size quotas, in non-white-space characters (iam.Size): the
// inline limit is the aggregate of all inline policies of one entity.
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
	path, err := p.path("Path")
	if err != nil {
		return nil, err
	}
	doc, err := p.required("PolicyDocument")
	if err != nil {
		return nil, err
	}
	if iam.Size(doc) > managedPolicyLimit {
		return nil, shiftkey.Errorf(CodeLimitExceeded, "Cannot exceed quota for PolicySize: %d", managedPolicyLimit)
	}
	if err := validatePolicy(doc); err != nil {
		return nil, err
	}
	desc, _ := p.opt("Description")
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

func (s *Service) managedPolicy(ctx context.Context, c *shiftkey.Caller, p params, action string) (*shiftkey.ManagedPolicy, error) {
	arn, err := p.required("PolicyArn")
	if err != nil {
		return nil, err
	}
	if len(arn) < 20 || !strings.HasPrefix(arn, "arn:") {
		return nil, shiftkey.Errorf(CodeValidationError, "ARN %s is not valid.", arn)
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
		return nil, shiftkey.Errorf(CodeDeleteConflict, "Cannot delete a policy attached to entities.")
	}
	return nil, s.Store.DeleteManagedPolicy(ctx, m.ARN)
}

func (s *Service) attach(kind shiftkey.EntityKind, attach bool) handler {
	verb := "Detach"
	if attach {
		verb = "Attach"
	}
	return func(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
		owner, err := p.owner(kind)
		if err != nil {
			return nil, err
		}
		arn, err := p.required("PolicyArn")
		if err != nil {
			return nil, err
		}
		if len(arn) < 20 || !strings.HasPrefix(arn, "arn:") {
			return nil, shiftkey.Errorf(CodeValidationError, "ARN %s is not valid.", arn)
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
	return func(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
		owner, err := p.owner(kind)
		if err != nil {
			return nil, err
		}
		e, err := s.entity(ctx, c, "ListAttached"+kindTitle(kind)+"Policies", kind, owner)
		if err != nil {
			return nil, err
		}
		pols, err := s.Store.AttachedPolicies(ctx, kind, e.Name)
		if err != nil {
			return nil, err
		}
		start, end, next, err := p.page(len(pols))
		if err != nil {
			return nil, err
		}
		type attached struct {
			PolicyName string
			PolicyArn  string
		}
		res := struct {
			AttachedPolicies []attached `xml:"AttachedPolicies>member"`
			IsTruncated      bool
			Marker           string `xml:",omitempty"`
		}{AttachedPolicies: []attached{}, IsTruncated: next != "", Marker: next}
		for _, m := range pols[start:end] {
			res.AttachedPolicies = append(res.AttachedPolicies, attached{m.Name, m.ARN})
		}
		return res, nil
	}
}

// Tags.

func (s *Service) tag(kind shiftkey.EntityKind, add bool) handler {
	verb := "Untag"
	if add {
		verb = "Tag"
	}
	return func(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
		owner, err := p.owner(kind)
		if err != nil {
			return nil, err
		}
		if !add {
			keys, _, err := awsquery.List(p.v, "TagKeys", "member")
			if err != nil {
				return nil, shiftkey.Errorf(CodeValidationError, "%s", err.(*awsquery.Error).Message)
			}
			if len(keys) == 0 {
				return nil, shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null")
			}
			e, err := s.entity(ctx, c, verb+kindTitle(kind), kind, owner, map[string][]string{"aws:TagKeys": keys})
			if err != nil {
				return nil, err
			}
			return nil, s.Store.UntagEntity(ctx, kind, e.Name, keys)
		}
		tags, err := p.tags()
		if err != nil {
			return nil, err
		}
		if len(tags) == 0 {
			return nil, shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null")
		}
		e, err := s.entity(ctx, c, verb+kindTitle(kind), kind, owner, requestTagKeys(tags, nil))
		if err != nil {
			return nil, err
		}
		existing, err := s.Store.Tags(ctx, kind, e.Name)
		if err != nil {
			return nil, err
		}
		keys := map[string]bool{}
		for _, t := range existing {
			keys[strings.ToLower(t.Key)] = true
		}
		for _, t := range tags {
			keys[strings.ToLower(t.Key)] = true
		}
		if len(keys) > 50 {
			return nil, shiftkey.Errorf(CodeLimitExceeded, "The number of tags has reached the maximum limit of 50.")
		}
		return nil, s.Store.TagEntity(ctx, kind, e.Name, tags)
	}
}

func (s *Service) listTags(kind shiftkey.EntityKind) handler {
	return func(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
		owner, err := p.owner(kind)
		if err != nil {
			return nil, err
		}
		e, err := s.entity(ctx, c, "List"+kindTitle(kind)+"Tags", kind, owner)
		if err != nil {
			return nil, err
		}
		tags, err := s.Store.Tags(ctx, kind, e.Name)
		if err != nil {
			return nil, err
		}
		return struct {
			Tags        []tagXML `xml:"Tags>member"`
			IsTruncated bool
		}{Tags: tagsXML(tags)}, nil
	}
}
