// Package sts implements the STS operations shiftkey needs (Query
// protocol, version 2011-06-15): GetCallerIdentity and AssumeRole, whose
// session credentials then authenticate SigV4 requests until they expire.
package sts

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/awsquery"
	"github.com/shiftkey/shiftkey/iam"
)

// Namespace is the XML namespace of STS responses.
const Namespace = "https://sts.amazonaws.com/doc/2011-06-15/"

// STS error codes.
const (
	CodePackedPolicyTooLarge    = "PackedPolicyTooLarge"
	CodeExpiredToken            = "ExpiredToken"
	CodeValidationError         = "ValidationError"
	CodeMalformedPolicyDocument = "MalformedPolicyDocument"
)

// Authorizer decides AssumeRole: the caller's own policies together with
// the role's trust policy, recording every denial. role is nil when no
// such role exists; each request names the role's ARN and carries the
// call's condition keys. authz.Authorizer implements it.
type Authorizer interface {
	AuthorizeAssumeRole(ctx context.Context, caller *shiftkey.Caller, role *shiftkey.Entity, reqs ...shiftkey.AuthzRequest) error
}

// Service runs STS operations.
type Service struct {
	Store      shiftkey.IdentityStore
	Authorizer Authorizer
	AccountID  string
	Now        func() time.Time
}

func (s *Service) now() time.Time { return shiftkey.Now(s.Now).UTC() }

// Handle runs the Query action with parameters v.
func (s *Service) Handle(ctx context.Context, c *shiftkey.Caller, action string, v url.Values) (any, error) {
	switch action {
	case "GetCallerIdentity":
		return struct {
			UserId  string
			Account string
			Arn     string
		}{c.Principal.UserID, c.Principal.Account, c.Principal.ARN}, nil
	case "AssumeRole":
		return s.assumeRole(ctx, c, v)
	}
	return nil, shiftkey.Errorf(shiftkey.CodeInvalidAction, "Could not find operation %s for version 2011-06-15.", action)
}

func validation(format string, args ...any) error {
	return shiftkey.Errorf(CodeValidationError, format, args...)
}

var (
	sessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]*$`)
	externalIDPattern  = regexp.MustCompile(`^[\w+=,.@:/-]*$`)
	// The STS Tag shape's key and value patterns.
	tagKeyPattern   = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]+$`)
	tagValuePattern = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
)

// role resolves a role ARN of this account: nil when there is none (or the
// ARN's path or account does not match the stored role).
func (s *Service) role(ctx context.Context, roleARN string) (*shiftkey.Entity, error) {
	parts := strings.SplitN(roleARN, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" || !strings.HasPrefix(parts[5], "role/") {
		return nil, validation("%s is invalid", roleARN)
	}
	name := parts[5][strings.LastIndex(parts[5], "/")+1:]
	role, err := s.Store.Entity(ctx, shiftkey.KindRole, name)
	switch {
	case shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity:
		return nil, nil
	case err != nil:
		return nil, err
	case parts[4] != s.AccountID || role.ARN != roleARN:
		return nil, nil
	}
	return role, nil
}

type assumedRoleUserXML struct {
	AssumedRoleId string
	Arn           string
}

type credentialsXML struct {
	AccessKeyId     string
	SecretAccessKey string
	SessionToken    string
	Expiration      string
}

// maxSessionPolicyPlaintext is AWS's limit on the inline session policy
// and the managed policies' ARNs together.
const maxSessionPolicyPlaintext = 2048

// policyArns reads PolicyArns.member.N.arn: at most 10 ARNs of 20 to
// 2,048 characters.
func policyArns(v url.Values) ([]string, error) {
	items, _, err := awsquery.Structs(v, "PolicyArns", "member")
	if err != nil {
		return nil, validation("%s", err.(*awsquery.Error).Message)
	}
	if len(items) > 10 {
		return nil, validation("1 validation error detected: Value at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to 10")
	}
	arns := make([]string, 0, len(items))
	for _, it := range items {
		a := it["arn"]
		if len(a) < 20 || len(a) > 2048 {
			return nil, validation("1 validation error detected: Value '%s' at 'policyArns.member.arn' failed to satisfy constraint: Member must have length between 20 and 2048", a)
		}
		arns = append(arns, a)
	}
	return arns, nil
}

// sessionPolicyChars reports whether an inline session policy holds only
// the characters AssumeRole's Policy allows: tab, line feed, carriage
// return and U+0020 through U+00FF.
func sessionPolicyChars(p string) bool {
	for _, r := range p {
		if r != '\t' && r != '\n' && r != '\r' && (r < 0x20 || r > 0xFF) {
			return false
		}
	}
	return true
}

// chainedMaxSeconds bounds a session that a role session assumes (role
// chaining), whatever the role's MaxSessionDuration.
const chainedMaxSeconds = 3600

func (s *Service) assumeRole(ctx context.Context, c *shiftkey.Caller, v url.Values) (any, error) {
	get := func(k string) (string, bool) {
		if vals, ok := v[k]; ok {
			return vals[0], true
		}
		return "", false
	}
	roleARN, ok := get("RoleArn")
	if !ok || roleARN == "" {
		return nil, validation("1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null")
	}
	sessionName, ok := get("RoleSessionName")
	if !ok {
		return nil, validation("1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null")
	}
	if len(sessionName) < 2 || len(sessionName) > 64 || !sessionNamePattern.MatchString(sessionName) {
		return nil, validation("1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must have length between 2 and 64 and satisfy regular expression pattern: [\\w+=,.@-]*", sessionName)
	}
	// What AWS would carry into every request of the session and of the
	// sessions chained from it, where a Deny can test it; shiftkey keeps
	// neither, and ignoring them would lift such a Deny.
	if _, ok := get("SourceIdentity"); ok {
		return nil, validation("SourceIdentity is not supported: shiftkey does not keep a source identity, so aws:SourceIdentity could never be tested.")
	}
	if keys, _, err := awsquery.List(v, "TransitiveTagKeys", "member"); err != nil || len(keys) > 0 {
		return nil, validation("TransitiveTagKeys is not supported: shiftkey does not carry session tags into chained sessions.")
	}
	// Session policies: the inline Policy and the managed policies of
	// PolicyArns. Any of them may allow; the role's policies bound them all.
	var sessionPolicies []string
	plaintext := 0 // what AWS's 2,048-character limit counts
	p, hasPolicy := get("Policy")
	if hasPolicy {
		if !sessionPolicyChars(p) {
			return nil, validation("1 validation error detected: Value '%s' at 'policy' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+", p)
		}
		plaintext += utf8.RuneCountInString(p) // characters, not UTF-8 bytes
	}
	arns, err := policyArns(v)
	if err != nil {
		return nil, err
	}
	for _, a := range arns {
		plaintext += utf8.RuneCountInString(a)
	}
	if plaintext > maxSessionPolicyPlaintext {
		return nil, shiftkey.Errorf(CodePackedPolicyTooLarge, "Packed policy consumes %d%% of allotted space, please use smaller policy.", plaintext*100/maxSessionPolicyPlaintext)
	}
	if hasPolicy {
		if _, err := iam.ParsePolicy("session policy", []byte(p)); err != nil {
			msg := err.Error()
			if me, ok := err.(*iam.MalformedPolicyError); ok {
				msg = me.Message
			}
			return nil, shiftkey.Errorf(CodeMalformedPolicyDocument, "%s", msg)
		}
		sessionPolicies = append(sessionPolicies, p)
	}
	for _, a := range arns {
		// The document as it is now: the session keeps it, as it keeps an
		// inline policy.
		m, err := s.Store.ManagedPolicy(ctx, a)
		if shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity {
			return nil, shiftkey.Errorf(CodeMalformedPolicyDocument, "The policy %s does not exist or is not attachable.", a)
		}
		if err != nil {
			return nil, err
		}
		sessionPolicies = append(sessionPolicies, m.Document)
	}
	var sessionPolicy string
	if len(sessionPolicies) > 0 {
		sessionPolicy = shiftkey.JoinSessionPolicies(sessionPolicies)
	}
	items, _, err := awsquery.Structs(v, "Tags", "member")
	if err != nil {
		return nil, validation("%s", err.(*awsquery.Error).Message)
	}
	if len(items) > 50 {
		return nil, validation("1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50")
	}
	var tags []shiftkey.Tag
	seen := map[string]bool{}
	for i, it := range items {
		k, val := it["Key"], it["Value"]
		// AWS counts characters, not bytes.
		if n := utf8.RuneCountInString(k); n < 1 || n > 128 || !tagKeyPattern.MatchString(k) {
			return nil, validation("1 validation error detected: Value '%s' at 'tags.%d.member.key' failed to satisfy constraint: Member must have length between 1 and 128 and satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+", k, i+1)
		}
		if utf8.RuneCountInString(val) > 256 || !tagValuePattern.MatchString(val) {
			return nil, validation("1 validation error detected: Value '%s' at 'tags.%d.member.value' failed to satisfy constraint: Member must have length less than or equal to 256 and satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*", val, i+1)
		}
		if seen[strings.ToLower(k)] {
			return nil, validation("Duplicate tag keys found. Please note that Tag keys are case insensitive.")
		}
		seen[strings.ToLower(k)] = true
		tags = append(tags, shiftkey.Tag{Key: k, Value: val})
	}

	externalID, hasExternalID := get("ExternalId")
	if hasExternalID && (len(externalID) < 2 || len(externalID) > 1224 || !externalIDPattern.MatchString(externalID)) {
		return nil, validation("1 validation error detected: Value '%s' at 'externalId' failed to satisfy constraint: Member must have length between 2 and 1224 and satisfy regular expression pattern: [\\w+=,.@:\\/-]*", externalID)
	}

	// The role, from its ARN in this account; an unknown role is refused
	// (and recorded) like a trust policy that does not allow the caller.
	role, err := s.role(ctx, roleARN)
	if err != nil {
		return nil, err
	}
	duration := time.Hour
	if d, ok := get("DurationSeconds"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 900 || n > 43200 {
			return nil, validation("1 validation error detected: Value '%s' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200", d)
		}
		if role != nil && n > role.MaxSessionDuration {
			return nil, validation("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
		}
		if c.Principal.Type == shiftkey.PrincipalAssumedRole && n > chainedMaxSeconds {
			return nil, validation("The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
		}
		duration = time.Duration(n) * time.Second
	}

	// Request context as the Service Authorization Reference lists it:
	// sts:AssumeRole takes the session name, external id, request tags and
	// the role's tags; sts:TagSession the request tags and the role's tags.
	resourceKeys := map[string][]string{}
	if role != nil {
		roleTags, err := s.Store.Tags(ctx, shiftkey.KindRole, role.Name)
		if err != nil {
			return nil, err
		}
		resourceKeys = shiftkey.ResourceTagKeys(resourceKeys, roleTags, "iam:ResourceTag/")
	}
	resourceKeys = shiftkey.RequestTagKeys(resourceKeys, tags)
	assume := map[string][]string{"sts:RoleSessionName": {sessionName}}
	if hasExternalID {
		assume["sts:ExternalId"] = []string{externalID}
	}
	for k, v := range resourceKeys {
		assume[k] = v
	}
	reqs := []shiftkey.AuthzRequest{{Action: "sts:AssumeRole", Resource: roleARN, Context: assume}}
	if len(tags) > 0 {
		reqs = append(reqs, shiftkey.AuthzRequest{Action: "sts:TagSession", Resource: roleARN, Context: resourceKeys})
	}
	if err := s.Authorizer.AuthorizeAssumeRole(ctx, c, role, reqs...); err != nil {
		return nil, err
	}
	if role == nil { // an Authorizer must refuse it; never issue for no role
		return nil, shiftkey.Errorf(shiftkey.CodeAccessDenied, "User: %s is not authorized to perform: sts:AssumeRole on resource: %s", c.Principal.ARN, roleARN)
	}

	now := s.now()
	sess := &shiftkey.Session{
		AccessKeyID: shiftkey.NewID("ASIA"), Secret: shiftkey.NewSecretKey(), Token: newToken(),
		RoleName: role.Name, RoleID: role.ID, SessionName: sessionName, SourceARN: c.Principal.ARN, SessionPolicy: sessionPolicy,
		Tags: tags, CreatedAt: now, ExpiresAt: now.Add(duration).Truncate(time.Second),
		// What `credentials revoke --access-key` follows: the ARN can be
		// another caller's too.
		SourceAccessKeyID: c.Principal.AccessKey,
	}
	if err := s.Store.CreateSession(ctx, sess); err != nil {
		return nil, err
	}
	res := struct {
		Credentials      credentialsXML
		AssumedRoleUser  assumedRoleUserXML
		PackedPolicySize *int `xml:",omitempty"`
	}{
		Credentials:     credentialsXML{sess.AccessKeyID, sess.Secret, sess.Token, sess.ExpiresAt.Format("2006-01-02T15:04:05Z")},
		AssumedRoleUser: assumedRoleUserXML{role.ID + ":" + sessionName, SessionARN(s.AccountID, role.Name, sessionName)},
	}
	if sessionPolicy != "" || len(tags) > 0 {
		size := (len(sessionPolicy) + 64*len(tags)) * 100 / 2048
		res.PackedPolicySize = &size
	}
	return res, nil
}

// SessionARN is the ARN of an assumed-role session.
func SessionARN(account, role, session string) string {
	return fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", account, role, session)
}

func newToken() string {
	b := make([]byte, 96)
	rand.Read(b)
	return "SK" + base64.StdEncoding.EncodeToString(b)
}
