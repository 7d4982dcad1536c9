// Package shiftkey holds the domain of shiftkey: clusters, issued database
// credentials, IAM identities and the error contract shared by the API and
// the gateway. Adapters (sqlite, http, pgwire, …) depend on this package;
// it depends on none of them.
package shiftkey

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DefaultAccountID is the AWS account every identity and resource belongs to
// unless configured otherwise.
const DefaultAccountID = "000000000000"

// DefaultRegion is the region served when none is configured, and the
// region of resources stored before regions were recorded.
const DefaultRegion = "us-east-1"

// InRegion reports whether a resource stored with region r is visible to a
// caller signing for region caller; rows without a region belong to the
// default region.
func InRegion(r, caller string) bool {
	if r == "" {
		r = DefaultRegion
	}
	return r == caller
}

// Now reads clock, the injectable clock of a service (tests fix one), or
// the system's when it is nil.
func Now(clock func() time.Time) time.Time {
	if clock != nil {
		return clock()
	}
	return time.Now()
}

// How long an issued credential lives: Redshift's limits and default,
// shared by every operation that issues one.
const (
	MinCredentialDuration     = 900 * time.Second
	MaxCredentialDuration     = 3600 * time.Second
	DefaultCredentialDuration = MinCredentialDuration
)

// CredentialDuration is the lifetime asked for in seconds (nil: the
// default). The range is checked before any arithmetic, so a number that
// would overflow a time.Duration cannot wrap into it; ok is false outside it.
func CredentialDuration(seconds *int) (d time.Duration, ok bool) {
	if seconds == nil {
		return DefaultCredentialDuration, true
	}
	if *seconds < int(MinCredentialDuration/time.Second) || *seconds > int(MaxCredentialDuration/time.Second) {
		return 0, false
	}
	return time.Duration(*seconds) * time.Second, true
}

// IssuedCredential is what an issue returns to the caller, once.
type IssuedCredential struct {
	DBUser          string
	DBPassword      string
	Expiration      time.Time
	NextRefreshTime time.Time
}

// Error is an error whose Code and Message are safe to send to a client.
// Codes are AWS error codes; the HTTP layer maps them to a status.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err if it is (or wraps) an *Error, else "".
func ErrorCode(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return ""
}

// AWS error codes used across services.
const (
	CodeAccessDenied                = "AccessDenied"
	CodeClusterNotFound             = "ClusterNotFound"
	CodeClusterAlreadyExists        = "ClusterAlreadyExists"
	CodeInvalidClusterState         = "InvalidClusterState"
	CodeInvalidParameterValue       = "InvalidParameterValue"
	CodeInvalidParameterCombination = "InvalidParameterCombination"
	CodeMissingParameter            = "MissingParameter"
	CodeMissingAction               = "MissingAction"
	CodeInvalidAction               = "InvalidAction"
	CodeMalformedQueryString        = "MalformedQueryString"
	CodeInvalidClientTokenID        = "InvalidClientTokenId"
	CodeSignatureDoesNotMatch       = "SignatureDoesNotMatch"
	CodeIncompleteSignature         = "IncompleteSignature"
	CodeMissingAuthenticationToken  = "MissingAuthenticationToken"
	CodeRequestExpired              = "RequestExpired"
	CodeInternalFailure             = "InternalFailure"
	CodeServiceUnavailable          = "ServiceUnavailable"
	CodeUnsupportedOperation        = "UnsupportedOperation"
	CodeNoSuchEntity                = "NoSuchEntity"
	CodeEntityAlreadyExists         = "EntityAlreadyExists"
	CodeConcurrentModification      = "ConcurrentModification"
)

// Cluster is a provisioned Redshift cluster as shiftkey presents it: an AWS
// resource backed by one PostgreSQL server and reached through one gateway
// endpoint.
type Cluster struct {
	Identifier     string
	Region         string // the AWS region it lives in; callers signing for another do not see it
	NamespaceID    string // UUID, used in the namespace ARN
	NodeType       string
	DBName         string // default database
	MasterUsername string
	Status         string // "available", "creating", "deleting", …
	Endpoint       Endpoint
	Backend        Backend
	CreatedAt      time.Time
}

// Endpoint is where clients connect: the gateway listener of a cluster.
type Endpoint struct {
	Address string
	Port    int
}

// Backend says how the gateway reaches the PostgreSQL server behind a cluster.
type Backend struct {
	Host      string // host name or unix socket directory
	Port      int
	AdminUser string // role used for provisioning (CREATE ROLE, GRANT); never used for client sessions
	Managed   bool   // the server is run by shiftkey itself (dev mode)
	// Login is how the gateway logs in as the mapped role: BackendLoginCert
	// (TLS client certificate from the gateway's CA) or BackendLoginTrust
	// ("" — trust over a private unix socket).
	Login string
}

// Server names the PostgreSQL server b reaches, to tell gateways on one
// server apart from others: a socket directory cleaned, a TCP host
// lower-cased, the port (5432 when unset). One server reached by two
// addresses has two names.
func (b Backend) Server() string {
	host := b.Host
	if strings.HasPrefix(host, "/") {
		host = filepath.Clean(host)
	} else {
		host = strings.ToLower(host)
	}
	return net.JoinHostPort(host, strconv.Itoa(cmp.Or(b.Port, 5432)))
}

// Backend login modes.
const (
	BackendLoginTrust    = ""
	BackendLoginCert     = "cert"
	BackendLoginPassword = "password"
)

// Credential is one issued temporary database credential. Only verifiers
// of its password are kept (the SCRAM keys, and the digests Redshift's own
// drivers prove knowledge of); the password itself is returned once and
// never stored.
type Credential struct {
	ID           string
	Cluster      string
	LoginName    string   // what the client logs in as, e.g. "IAMA:alice"
	DBUser       string   // backend role the session runs as, e.g. "alice"
	DBName       string   // "" means any database
	DBGroups     []string // groups joined for the session
	AutoCreate   bool
	StoredKey    []byte // SCRAM-SHA-256 StoredKey
	ServerKey    []byte // SCRAM-SHA-256 ServerKey
	DigestSHA256 []byte // SHA256(password ‖ salt), Redshift's extensible digest (code 13)
	DigestMD5    []byte // md5(password ‖ login name), PostgreSQL's MD5 exchange (code 5)
	PrincipalARN string // the IAM principal that asked for it
	// AccessKeyID signed the call that issued it (an IAM user's AKIA… or
	// a session's ASIA…): what `credentials revoke --access-key` finds. ""
	// for one issued before it was recorded.
	AccessKeyID string
	// IssuedTo is the rest of what the audit log says of PrincipalARN, as
	// it was at the issue; zero for one issued before it was recorded.
	IssuedTo  IssuedTo
	RequestID string
	CreatedAt time.Time
	ExpiresAt time.Time
	// ScopeID is the unique id of what Cluster names as the issue found
	// it: the cluster's NamespaceID, or the workgroup's ID for a
	// "workgroup/<id>" scope. It is not stored: the store writes the
	// credential only while that cluster or workgroup exists, in a
	// transaction ordered with DeleteCluster's, and fails it with
	// ScopeNotFound otherwise, so that an issue racing a DeleteCluster
	// (and a CreateCluster of the same identifier, another backend)
	// leaves no credential that logs in to the new cluster. "" writes
	// without the check.
	ScopeID string
}

// IssuedTo is who a credential was issued to, beyond the principal's ARN,
// as the issue saw them: what the gateway's audit records need to name
// the principal as the API's record of the issue does (CloudTrail's
// userIdentity and sessionContext). Kept with the credential because it
// may change after: a role deleted and created again under its name is
// another role, with another id and perhaps another path.
type IssuedTo struct {
	// PrincipalID is the principal's aws:userid: an IAM user's AIDA…, a
	// session's AROA…:<session name> (its role's id, a colon, its name).
	PrincipalID string
	// RoleARN is a session's role's ARN, path included; "" for a user.
	RoleARN string
	// SessionCreatedAt is when a session's credentials were issued
	// (aws:TokenIssueTime); zero for a user.
	SessionCreatedAt time.Time
}

// IssuedToPrincipal is what a credential issued to p keeps of it.
func IssuedToPrincipal(p *Principal) IssuedTo {
	t := IssuedTo{PrincipalID: p.UserID}
	if p.Type == PrincipalAssumedRole {
		t.RoleARN, t.SessionCreatedAt = p.RoleARN, p.TokenIssueTime
	}
	return t
}

// WorkgroupScopePrefix begins the Cluster of a workgroup's credentials
// (Workgroup.CredentialScope).
const WorkgroupScopePrefix = "workgroup/"

// ScopeNotFound is the stores' answer for a credential whose cluster or
// workgroup (Credential.ScopeID) no longer exists when it is written.
func ScopeNotFound(c *Credential) error {
	if strings.HasPrefix(c.Cluster, WorkgroupScopePrefix) {
		return Errorf(CodeResourceNotFound, "Serverless workgroup %s not found.", c.ScopeID)
	}
	return ClusterNotFound(c.Cluster)
}

// LoginSalt is the SCRAM salt and iteration count shared by every credential
// of one login name on one cluster. SCRAM's server-first message carries one
// salt before the server knows which password the client holds, so all live
// credentials of a login must be derived with the same one.
type LoginSalt struct {
	Salt       []byte
	Iterations int
}

// IssueWrite is one write of the issue path. Both stores queue these to
// one writer (package groupcommit) that commits every pending write in one
// transaction: exactly one of Credential and Salt is set.
type IssueWrite struct {
	Credential *Credential
	Salt       *SaltWrite
}

// SaltWrite stores Fresh as the salt of (Cluster, Login) unless that login
// has one already. With a ScopeID it is written, like a credential, only
// while the cluster or workgroup of that unique id exists (else
// ScopeNotFound): a salt written after its cluster's delete would stay.
type SaltWrite struct {
	Cluster, Login string
	ScopeID        string
	Fresh          LoginSalt
}

// IssueWriteResult is an IssueWrite's outcome once its transaction ended.
type IssueWriteResult struct {
	Salt LoginSalt // salt writes: the login's salt after the commit
	Err  error
}

// ClusterStore keeps clusters.
type ClusterStore interface {
	CreateCluster(ctx context.Context, c *Cluster) error
	UpdateCluster(ctx context.Context, c *Cluster) error
	Cluster(ctx context.Context, id string) (*Cluster, error) // CodeClusterNotFound when absent
	Clusters(ctx context.Context) ([]*Cluster, error)         // ordered by identifier
	// DeleteCluster removes a cluster with its credentials and tags.
	DeleteCluster(ctx context.Context, id string) error
}

// KindCluster keys a cluster's tags in the store's tag table.
const KindCluster EntityKind = "cluster"

// ClusterProvisioner runs the backends of clusters created through the API
// (dev mode); serve has none.
type ClusterProvisioner interface {
	// StartCluster brings up c's backend with its master user, database
	// and gateway (port c.Endpoint.Port), setting c.Backend and c.Endpoint.
	StartCluster(ctx context.Context, c *Cluster) error
	// MoveCluster reopens c's gateway on another port.
	MoveCluster(ctx context.Context, c *Cluster, port int) error
	// StopCluster closes c's gateway and removes its backend and data.
	StopCluster(ctx context.Context, c *Cluster) error
}

// ClusterHealth is a ClusterProvisioner that knows more of a cluster's
// state than its stored row: a backend that died, or one that could not be
// started again. DescribeClusters reports it.
type ClusterHealth interface {
	// ClusterStatus is c's ClusterStatus when it differs from the stored
	// one ("rebooting", "hardware-failure"), or "".
	ClusterStatus(c *Cluster) string
}

// CredentialStore keeps issued credentials.
type CredentialStore interface {
	// LoginSalt returns the salt of (cluster, login), creating it from
	// fresh when there is none yet. A new salt is written only while the
	// cluster or workgroup of unique id scopeID (Credential.ScopeID) exists,
	// else the answer is ScopeNotFound's error and nothing is written;
	// scopeID "" writes it unchecked.
	LoginSalt(ctx context.Context, cluster, login, scopeID string, fresh LoginSalt) (LoginSalt, error)
	// CreateCredential commits c durably before returning.
	CreateCredential(ctx context.Context, c *Credential) error
	// LiveCredentials returns the credentials of (cluster, login) that
	// have not expired at now, oldest first, and the login's salt (ok false
	// when the login has none). The slice and the credentials may be the
	// store's own, shared between calls: callers only read them.
	LiveCredentials(ctx context.Context, cluster, login string, now time.Time) (creds []*Credential, salt LoginSalt, ok bool, err error)
	// MissedCredentials returns the credentials of (cluster, login) live
	// at now that known (a LiveCredentials answer) lacks, read past any
	// cache, oldest first. A gateway asks when a client's proof matched
	// none of known: a store shared by replicas answers LiveCredentials
	// from memory, which can lack a credential another replica has just
	// issued. A store whose answers are never behind returns nil.
	MissedCredentials(ctx context.Context, cluster, login string, known []*Credential, now time.Time) ([]*Credential, error)
	// DeleteCredentials removes every credential of (cluster, login).
	DeleteCredentials(ctx context.Context, cluster, login string) error
	// DeleteExpiredCredentials removes credentials that expired before t.
	DeleteExpiredCredentials(ctx context.Context, t time.Time) (int, error)
}

// SaltIterations is implemented by the stores that can tell which SCRAM
// iteration counts a cluster's logins were salted with. A login keeps the
// count of its salt when scram_iterations changes, so a gateway shows
// unknown names those counts too (pgwire.Gateway.SaltIterations), or the
// old counts would single out the names that exist.
type SaltIterations interface {
	// LoginIterations returns the distinct iteration counts of the
	// cluster's login salts, ascending.
	LoginIterations(ctx context.Context, cluster string) ([]int, error)
}

// Store is everything shiftkey persists.
type Store interface {
	ClusterStore
	CredentialStore
	CredentialAdmin
	SessionAdmin
	IdentityStore
	AuditStore
	ServerlessStore
	CustomDomainStore
	GrantStore
	Close() error
}

// WriteHealth is implemented by stores whose issue writes go through one
// writer (both): WriteErr is the failure of its last write while none has
// committed since (a full disk, a store file deleted, a store that does
// not answer), which /readyz reports; reads may still succeed meanwhile.
type WriteHealth interface {
	WriteErr() error
}

// Caller is an authenticated API call: who made it, where and how.
type Caller struct {
	Principal       *Principal
	Region          string // from the SigV4 credential scope
	SourceIP        string
	SecureTransport bool
	RequestID       string
	Time            time.Time
}

// AuthzRequest is one permission check: an action on a resource with the
// request-specific condition keys.
type AuthzRequest struct {
	Action   string
	Resource string
	Context  map[string][]string
}

// Authorizer decides whether a caller may perform every one of reqs. A
// denial is an *Error with CodeAccessDenied whose message names the caller,
// the action and the resource, as AWS's does.
type Authorizer interface {
	Authorize(ctx context.Context, caller *Caller, reqs ...AuthzRequest) error
}
