package shiftkey

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
)

// EntityKind is the kind of an IAM identity that policies attach to.
type EntityKind string

// IAM entity kinds.
const (
	KindUser  EntityKind = "user"
	KindGroup EntityKind = "group"
	KindRole  EntityKind = "role"
)

// Entity is an IAM user, group or role.
type Entity struct {
	Kind      EntityKind
	Name      string
	ID        string // "AIDA…" user, "AGPA…" group, "AROA…" role
	Path      string
	ARN       string
	CreatedAt time.Time
	// Roles only.
	AssumeRolePolicy string
	// TrustPrincipalIDs binds the IAM users and roles that
	// AssumeRolePolicy names to the entities they were when it was saved,
	// as AWS does, so that one deleted and created again under its name is
	// not trusted: a JSON object of lower-case ARN → unique id (see
	// iam.TrustPolicy.Bind). "" for a role saved before these were kept,
	// whose principals match by name.
	TrustPrincipalIDs  string
	Description        string
	MaxSessionDuration int // seconds
	// PermissionsBoundary is the ARN of the managed policy that is the
	// user's or role's permissions boundary, "" when it has none: what
	// its policies allow, the boundary must allow too. Set on an entity
	// being created, CreateEntity writes it (checking the policy exists).
	PermissionsBoundary string
	// Tags are set on an entity being created (users and roles): the
	// store writes them in CreateEntity's own write, so that no failure
	// leaves the entity without them. An entity read from a store has
	// none here (Tags reads them).
	Tags []Tag
}

// User is an IAM user.
type User = Entity

// Tag is an IAM tag.
type Tag struct{ Key, Value string }

// AccessKey is an IAM access key pair. The secret is needed in the clear to
// verify SigV4 signatures; a store keeps it sealed (see package secretbox).
type AccessKey struct {
	ID     string // "AKIA…"
	Secret string
	// UserID is the unique id (AIDA…) of the user the key belongs to,
	// whatever that user is called: a store records it, and resolves it to
	// the user's name as it reads the key. A rename keeps it, and a user
	// created again under the old name is another id.
	UserID string
	// UserName is the user's name as the store read it with the key (by
	// UserID); CreateAccessKey takes the user by it.
	UserName  string
	Status    string // "Active" or "Inactive"
	CreatedAt time.Time
	// LastUsed is when the key last signed a request that authenticated
	// (zero: not since it was made), to the hour (KeyUseInterval); with
	// the service (SigV4 signing name) and region it signed for.
	LastUsed                        time.Time
	LastUsedService, LastUsedRegion string
}

// KeyUseInterval is how often a key's use is recorded at most: the API
// writes LastUsed when the one stored is older, so that a key signing many
// requests costs one write an hour. AWS too reports it late.
const KeyUseInterval = time.Hour

// PolicyDocument is a named policy attached to an identity, kept as JSON.
type PolicyDocument struct {
	Name     string
	Document string
}

// ManagedPolicy is a customer-managed IAM policy.
type ManagedPolicy struct {
	ARN         string
	Name        string
	ID          string // "ANPA…"
	Path        string
	Description string
	Document    string
	CreatedAt   time.Time
	// UpdatedAt is when the default version's document was set: the
	// default version's CreateDate.
	UpdatedAt time.Time
	// DefaultVersion is the default version's id ("v1", "v2", …), as a
	// store reads it; Document is that version's document.
	DefaultVersion string
	// NewestVersionAt is the CreateDate of the policy's newest version,
	// as a store reads it (GetPolicy's UpdateDate).
	NewestVersionAt time.Time
	// AttachmentCount is the users, groups and roles it is attached to,
	// as ManagedPolicies counted them; other reads leave it 0
	// (PolicyAttachmentCount counts one policy's).
	AttachmentCount int
	// Tags are set on a policy being created: the store writes them in
	// CreateManagedPolicy's own write, as CreateEntity writes
	// Entity.Tags. A policy read from a store has none here (Tags, of
	// kind KindPolicy and the policy's ARN, reads them).
	Tags []Tag
}

// PolicyVersion is one version of a customer-managed policy. A version's
// document never changes (but see UpdateManagedPolicy); its id is "v"
// and a number a policy never gives twice.
type PolicyVersion struct {
	ID        string
	Document  string
	IsDefault bool
	CreatedAt time.Time
}

// MaxPolicyVersions is IAM's quota of versions of one managed policy,
// enforced by the stores in CreatePolicyVersion, counting in the write.
const MaxPolicyVersions = 5

// PolicyVersionID is the id of a policy's version n.
func PolicyVersionID(n int64) string { return "v" + strconv.FormatInt(n, 10) }

// PolicyVersionNumber is the n of a version id "vN"; false for an id that
// is not one (IAM's pattern also takes "v1.x", which no version has).
func PolicyVersionNumber(id string) (int64, bool) {
	if len(id) < 2 || id[0] != 'v' || id[1] == '0' || id[1] == '+' || id[1] == '-' {
		return 0, false
	}
	n, err := strconv.ParseInt(id[1:], 10, 64)
	return n, err == nil && n > 0
}

// NewestVersionFirst sorts vs by version number, highest first, and
// returns it.
func NewestVersionFirst(vs []*PolicyVersion) []*PolicyVersion {
	slices.SortFunc(vs, func(a, b *PolicyVersion) int {
		x, _ := PolicyVersionNumber(a.ID)
		y, _ := PolicyVersionNumber(b.ID)
		return cmp.Compare(y, x)
	})
	return vs
}

// Session is a set of temporary credentials from sts:AssumeRole. The
// secret is kept sealed like an access key's; of the token a store keeps
// only its hash: a token is only ever compared.
type Session struct {
	AccessKeyID string // "ASIA…"
	Secret      string
	// Token is set on a session being created, for the caller; a session
	// read from a store has only TokenHash (HashSessionToken of Token).
	Token     string
	TokenHash []byte
	RoleName  string
	// RoleID is the role's unique id: a role deleted and created again
	// under RoleName is another role, and the session is not its.
	RoleID      string
	SessionName string
	SourceARN   string // who assumed the role
	// SourceAccessKeyID signed the AssumeRole call: the sessions a leaked
	// key started are found by it, not by SourceARN, which two callers
	// can share. "" for a session from before it was recorded.
	SourceAccessKeyID string
	SessionPolicy     string // "" when none; see SessionPolicies
	Tags              []Tag
	CreatedAt         time.Time
	ExpiresAt         time.Time
}

// JoinSessionPolicies is what a session keeps of its session policies
// (AssumeRole's inline Policy and the documents of its PolicyArns, each a
// JSON policy document): one as it is, several as a JSON array of them.
func JoinSessionPolicies(docs []string) string {
	if len(docs) == 1 {
		return docs[0]
	}
	return "[" + strings.Join(docs, ",") + "]"
}

// SessionPolicies splits what JoinSessionPolicies made into documents.
func SessionPolicies(s string) ([]string, error) {
	if !strings.HasPrefix(strings.TrimSpace(s), "[") {
		return []string{s}, nil
	}
	var docs []json.RawMessage
	if err := json.Unmarshal([]byte(s), &docs); err != nil {
		return nil, err
	}
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = string(d)
	}
	return out, nil
}

// HashSessionToken is what a store keeps of a session token. Tokens carry
// 768 random bits, so a plain SHA-256 cannot be searched backwards.
func HashSessionToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// TokenMatches reports, in constant time, whether token is the session's.
func (s *Session) TokenMatches(token string) bool {
	return len(s.TokenHash) == sha256.Size && subtle.ConstantTimeCompare(HashSessionToken(token), s.TokenHash) == 1
}

// Principal types as aws:PrincipalType reports them.
const (
	PrincipalUser        = "User"
	PrincipalAssumedRole = "AssumedRole"
)

// Principal is an authenticated caller.
type Principal struct {
	ARN       string
	Account   string
	Type      string // PrincipalUser or PrincipalAssumedRole
	UserName  string // IAM user name (users)
	UserID    string // aws:userid: "AIDA…" for users, "AROA…:session" for sessions
	AccessKey string
	// Assumed-role sessions.
	RoleName      string
	RoleARN       string
	SessionName   string
	SessionPolicy string
	// TokenIssueTime is when the session's credentials were issued
	// (aws:TokenIssueTime); zero for a user's long-term key.
	TokenIssueTime time.Time
	// Tags are the principal's tags: a user's tags, or a role's tags with
	// the session's tags taking precedence.
	Tags []Tag
}

// Tag returns the value of the principal tag key (case-insensitive key).
func (p *Principal) Tag(key string) (string, bool) {
	for _, t := range p.Tags {
		if strings.EqualFold(t.Key, key) {
			return t.Value, true
		}
	}
	return "", false
}

// DBUserName is the Redshift database user an IAM identity maps to for
// GetClusterCredentialsWithIAM and Serverless GetCredentials: "IAM:<user>"
// for an IAM user, "IAMR:<role>" for any session of a role.
func (p *Principal) DBUserName() string {
	if p.Type == PrincipalAssumedRole {
		return "IAMR:" + p.RoleName
	}
	return "IAM:" + p.UserName
}

// DBRoles are the database roles named by the principal's RedshiftDbRoles
// tag (colon-separated), nil when it has none.
func (p *Principal) DBRoles() []string {
	v, ok := p.Tag("RedshiftDbRoles")
	if !ok {
		return nil
	}
	var out []string
	for _, r := range strings.Split(v, ":") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}

// MaxAccessKeysPerUser is IAM's quota of access keys per user; the store
// enforces it in CreateAccessKey so that concurrent calls cannot exceed it.
const MaxAccessKeysPerUser = 2

// AdmitAccessKey is IAM's rule for a new access key, which a store applies
// in the transaction that inserts the key: its user exists (lookUp reads
// it, locking it against concurrent creations where the store can, and
// fails with NoSuchEntity when there is none) and holds fewer than
// MaxAccessKeysPerUser keys (count counts those of the user as stored).
func AdmitAccessKey(lookUp func() (user string, err error), count func(user string) (int, error)) error {
	user, err := lookUp()
	if err != nil {
		return err
	}
	n, err := count(user)
	if err != nil {
		return err
	}
	if n >= MaxAccessKeysPerUser {
		return AccessKeyQuota()
	}
	return nil
}

// MaxAttachedPolicies is IAM's quota of managed policies attached to one
// user, group or role, MaxGroupsPerUser that of the groups one user is in.
// As MaxAccessKeysPerUser, the stores enforce them in the write
// (AttachPolicy, AddUserToGroup), so that concurrent calls cannot pass them
// together; attaching or joining again what is already there stays a no-op.
const (
	MaxAttachedPolicies = 10
	MaxGroupsPerUser    = 10
)

// RoleFields names the settings of a role an UpdateRole writes. IAM's
// UpdateAssumeRolePolicy, UpdateRole and UpdateRoleDescription each change
// their own: writing only those, calls made at the same moment keep each
// other's changes (a trust policy tightened meanwhile is not written back
// in its old form).
type RoleFields uint8

const (
	RoleTrust       RoleFields = 1 << iota // AssumeRolePolicy, with its TrustPrincipalIDs
	RoleDescription                        // Description
	RoleMaxSession                         // MaxSessionDuration

	AllRoleFields = RoleTrust | RoleDescription | RoleMaxSession
)

// MaxEntities are IAM's account quotas of users, groups and roles (the
// roles' is AWS's default), MaxManagedPolicies that of customer managed
// policies. The stores enforce them in CreateEntity and
// CreateManagedPolicy, counting in the write as for MaxAccessKeysPerUser.
var MaxEntities = map[EntityKind]int{KindUser: 5000, KindGroup: 300, KindRole: 1000}

const MaxManagedPolicies = 1500

// MaxTags is the tags one user, role, managed policy or cluster may hold, in IAM and
// Redshift alike; the stores enforce it in TagEntity (TagQuota), counting
// in the write.
const MaxTags = 50

// CodeLimitExceeded is IAM's error for a quota reached (HTTP 409).
const CodeLimitExceeded = "LimitExceeded"

// IdentityStore keeps IAM identities and STS sessions. Entity names are
// unique per kind regardless of case, as IAM's are.
type IdentityStore interface {
	BoundaryStore

	CreateEntity(ctx context.Context, e *Entity) error                         // with e.Tags, in one write; CodeEntityAlreadyExists
	Entity(ctx context.Context, kind EntityKind, name string) (*Entity, error) // CodeNoSuchEntity
	// EntityByID returns the entity of kind whose unique id is id, under
	// whatever name it has now. CodeNoSuchEntity.
	EntityByID(ctx context.Context, kind EntityKind, id string) (*Entity, error)
	Entities(ctx context.Context, kind EntityKind, pathPrefix string) ([]*Entity, error)
	// DeleteEntity removes an entity with its access keys, tags and group
	// memberships; the caller checks for conflicts first.
	DeleteEntity(ctx context.Context, kind EntityKind, name string) error
	// UpdateRole sets the fields of the role named r.Name that fields
	// names to r's, in one write: its other settings stay as stored (not
	// as the caller read them), as do its id, policies, tags and
	// sessions. CodeNoSuchEntity.
	UpdateRole(ctx context.Context, r *Entity, fields RoleFields) error
	// RenameEntity gives the user or group of kind called from.Name (any
	// case) the name to.Name, path to.Path and ARN to.ARN, in one write,
	// with everything kept under its name: a user's access keys, group
	// memberships, inline and attached policies and tags, a group's
	// members and policies. Its id and creation date stay, and nothing is
	// left under the old name. to.Name may be from.Name in another case
	// (the same entity, as names are unique regardless of case).
	// CodeNoSuchEntity; CodeEntityAlreadyExists when another entity of
	// kind has to.Name in any case; CodeConcurrentModification when
	// from.ARN or from.ID is set and the entity no longer has it (the
	// caller authorized the rename on the entity as it read it: one
	// moved or created again meanwhile is not that one). What the
	// config file declares is recorded by id and left as it is (the next
	// reconcile sees the rename).
	RenameEntity(ctx context.Context, kind EntityKind, from, to *Entity) error

	CreateAccessKey(ctx context.Context, k *AccessKey) error      // CodeNoSuchEntity; CodeLimitExceeded at MaxAccessKeysPerUser keys
	AccessKey(ctx context.Context, id string) (*AccessKey, error) // CodeNoSuchEntity
	AccessKeys(ctx context.Context, userName string) ([]*AccessKey, error)
	UpdateAccessKey(ctx context.Context, id, status string) error
	// RecordAccessKeyUse sets the key's LastUsed (and its service and
	// region) to at, unless the stored one is within KeyUseInterval of it
	// or later: concurrent first uses write it once. An unknown key is
	// not an error.
	RecordAccessKeyUse(ctx context.Context, id string, at time.Time, service, region string) error
	DeleteAccessKey(ctx context.Context, id string) error

	PutInlinePolicy(ctx context.Context, kind EntityKind, owner string, p PolicyDocument) error
	// PutInlinePolicyAdmitted is PutInlinePolicy once admit, given the
	// owner's inline policies as the write sees them (the owner locked
	// against concurrent puts), returns nil; admit's error otherwise, and
	// nothing written. IAM's aggregate size quota is checked so, by the
	// caller that knows how IAM counts, so that concurrent puts under
	// different names cannot pass it together. CodeNoSuchEntity.
	PutInlinePolicyAdmitted(ctx context.Context, kind EntityKind, owner string, p PolicyDocument, admit func([]PolicyDocument) error) error
	InlinePolicies(ctx context.Context, kind EntityKind, owner string) ([]PolicyDocument, error)
	DeleteInlinePolicy(ctx context.Context, kind EntityKind, owner, name string) error // CodeNoSuchEntity

	CreateManagedPolicy(ctx context.Context, p *ManagedPolicy) error // with one version, v1, the default
	// UpdateManagedPolicy sets the description and the default version's
	// document and CreateDate (UpdatedAt) of the policy p.ARN, and drops
	// its other versions, in one write: a config edit, after which the
	// policy is what the file says. CodeNoSuchEntity.
	UpdateManagedPolicy(ctx context.Context, p *ManagedPolicy) error
	ManagedPolicy(ctx context.Context, arn string) (*ManagedPolicy, error) // CodeNoSuchEntity
	// CreatePolicyVersion adds v (Document, CreatedAt) to the policy arn
	// under the policy's next version id, which it sets in v.ID, and
	// makes it the default when v.IsDefault. It is one write, counted in
	// it: LimitExceeded (PolicyVersionQuota) when the policy has
	// MaxPolicyVersions already, so that concurrent calls neither pass
	// the quota nor get one id. CodeNoSuchEntity.
	CreatePolicyVersion(ctx context.Context, arn string, v *PolicyVersion) error
	// PolicyVersions are the policy's versions, newest (highest id)
	// first. A policy stored before versions were has one, v1.
	// CodeNoSuchEntity.
	PolicyVersions(ctx context.Context, arn string) ([]*PolicyVersion, error)
	// SetDefaultPolicyVersion makes version id the policy's default (a
	// no-op when it is). CodeNoSuchEntity for a version it does not have.
	SetDefaultPolicyVersion(ctx context.Context, arn, id string) error
	// DeletePolicyVersion deletes a version other than the default
	// (DefaultPolicyVersion). CodeNoSuchEntity.
	DeletePolicyVersion(ctx context.Context, arn, id string) error
	// ManagedPolicies lists the customer-managed policies whose path
	// starts with pathPrefix, by name, each with its AttachmentCount.
	ManagedPolicies(ctx context.Context, pathPrefix string) ([]*ManagedPolicy, error)
	// DeleteManagedPolicy deletes a policy with its default version:
	// DeleteConflict while it is attached (PolicyAttached) or has other
	// versions (PolicyHasVersions), checked in the write.
	DeleteManagedPolicy(ctx context.Context, arn string) error
	AttachPolicy(ctx context.Context, kind EntityKind, owner, arn string) error
	DetachPolicy(ctx context.Context, kind EntityKind, owner, arn string) error // CodeNoSuchEntity when not attached
	AttachedPolicies(ctx context.Context, kind EntityKind, owner string) ([]*ManagedPolicy, error)
	PolicyAttachmentCount(ctx context.Context, arn string) (int, error)
	// PolicyEntities lists the users, groups and roles a policy is
	// attached to, by kind then name.
	PolicyEntities(ctx context.Context, arn string) ([]*Entity, error)

	AddUserToGroup(ctx context.Context, group, user string) error
	RemoveUserFromGroup(ctx context.Context, group, user string) error // CodeNoSuchEntity when not a member
	GroupsForUser(ctx context.Context, user string) ([]*Entity, error)
	GroupMembers(ctx context.Context, group string) ([]string, error)

	// Tags of users, roles and clusters by name, and of customer-managed
	// policies (KindPolicy) by ARN, kept under the policy's id: deleting
	// the policy deletes them, and one created again under the ARN has
	// none. TagEntity answers NoSuchEntity for an owner that is not there.
	TagEntity(ctx context.Context, kind EntityKind, name string, tags []Tag) error // TagQuota past MaxTags
	UntagEntity(ctx context.Context, kind EntityKind, name string, keys []string) error
	Tags(ctx context.Context, kind EntityKind, name string) ([]Tag, error)

	CreateSession(ctx context.Context, s *Session) error
	Session(ctx context.Context, accessKeyID string) (*Session, error) // CodeNoSuchEntity
	DeleteExpiredSessions(ctx context.Context, before time.Time) (int, error)
}

// DecisionRecord is the audit record of one authorization decision.
type DecisionRecord struct {
	RequestID   string
	At          time.Time
	Principal   string
	Action      string
	Resource    string
	Outcome     string // "allow", "explicitDeny", "implicitDeny"
	Explanation string // which statements decided, in words
}

// AuditStore keeps authorization decisions.
type AuditStore interface {
	RecordDecision(ctx context.Context, d *DecisionRecord) error
	Decisions(ctx context.Context, requestID string) ([]*DecisionRecord, error)
}

// KindPolicy names a customer-managed policy where the store records what
// the config declares.
const KindPolicy EntityKind = "policy"

// DeclaredRef is an identity the config file declares: a user, group, role
// (by its unique id, "AIDA…") or customer-managed policy ("ANPA…"); Name is
// the entity's name or the policy's ARN.
type DeclaredRef struct {
	Kind EntityKind
	ID   string
	Name string
}

// DeclaredStore records which identities the config declares, so that
// reconciling at start can remove what the file no longer declares and
// leave alone what was created through the IAM API. Marks are by id: an
// identity deleted and recreated through the API under the same name is not
// taken for the declared one.
type DeclaredStore interface {
	MarkDeclared(ctx context.Context, ref DeclaredRef) error // adding twice is a no-op
	UnmarkDeclared(ctx context.Context, kind EntityKind, id string) error
	DeclaredRefs(ctx context.Context, kind EntityKind) ([]DeclaredRef, error) // ordered by name
	// Declaring runs fn, which applies a config's declared state, while no
	// other process sharing the store runs its own: replicas started or
	// reloaded together would otherwise both find a declared user or
	// cluster missing and both create it. The store calls fn makes with
	// the context it gets form one transaction, committed when fn returns
	// nil and rolled back otherwise (a write that fails in it fails only
	// itself): a config is applied whole or not at all.
	Declaring(ctx context.Context, fn func(context.Context) error) error
}
