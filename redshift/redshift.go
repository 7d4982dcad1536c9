// Package redshift implements the semantics of Amazon Redshift's
// credential operations: input validation exactly as AWS documents it, the
// IAM checks the documentation requires, and issuing credentials whose SCRAM
// keys are stored and whose password is returned once.
package redshift

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/dbname"
	"github.com/shiftkey/shiftkey/scram"
)

// Duration limits of GetClusterCredentials.
const (
	MinDuration     = shiftkey.MinCredentialDuration
	MaxDuration     = shiftkey.MaxCredentialDuration
	DefaultDuration = shiftkey.DefaultCredentialDuration
)

// Service runs Redshift operations for authenticated callers.
type Service struct {
	Store      shiftkey.Store
	Authorizer shiftkey.Authorizer
	Now        func() time.Time // nil → time.Now
	Rand       io.Reader        // nil → crypto/rand
	Iterations int              // SCRAM iterations for new logins; 0 → scram.IssuedIterations
	// Provisioner runs the backends of API-created clusters; nil in serve.
	Provisioner shiftkey.ClusterProvisioner
}

func (s *Service) now() time.Time { return shiftkey.Now(s.Now) }

func (s *Service) rand() io.Reader {
	if s.Rand != nil {
		return s.Rand
	}
	return rand.Reader
}

// CredentialTarget is what both credential operations name: the cluster
// (by identifier or custom domain), the database and the lifetime. Nil
// pointers are parameters that were not given.
type CredentialTarget struct {
	DBName            *string
	ClusterIdentifier *string
	CustomDomainName  *string
	DurationSeconds   *int
}

// GetClusterCredentialsInput is the request of GetClusterCredentials.
type GetClusterCredentialsInput struct {
	CredentialTarget
	DBUser     *string
	AutoCreate *bool
	DBGroups   []string
}

// ClusterCredentials is the result of GetClusterCredentials.
type ClusterCredentials struct {
	DBUser     string
	DBPassword string
	Expiration time.Time
}

// ClusterARN and friends build the ARNs Redshift's IAM checks use.
func ClusterARN(region, account, cluster string) string {
	return fmt.Sprintf("arn:aws:redshift:%s:%s:cluster:%s", region, account, cluster)
}

// DBUserARN is the dbuser ARN; user is the requested DbUser, without prefix.
func DBUserARN(region, account, cluster, user string) string {
	return fmt.Sprintf("arn:aws:redshift:%s:%s:dbuser:%s/%s", region, account, cluster, user)
}

// DBNameARN is the dbname ARN.
func DBNameARN(region, account, cluster, db string) string {
	return fmt.Sprintf("arn:aws:redshift:%s:%s:dbname:%s/%s", region, account, cluster, db)
}

// DBGroupARN is the dbgroup ARN.
func DBGroupARN(region, account, cluster, group string) string {
	return fmt.Sprintf("arn:aws:redshift:%s:%s:dbgroup:%s/%s", region, account, cluster, group)
}

func invalid(format string, args ...any) error {
	return shiftkey.Errorf(shiftkey.CodeInvalidParameterValue, format, args...)
}

func missing(param string) error {
	return shiftkey.Errorf(shiftkey.CodeMissingParameter, "The request must contain the parameter %s.", param)
}

// resolveCluster finds the cluster of the caller's region named by
// ClusterIdentifier or CustomDomainName.
func (s *Service) resolveCluster(ctx context.Context, caller *shiftkey.Caller, id, domain *string) (*shiftkey.Cluster, error) {
	if id != nil && *id == "" {
		id = nil
	}
	if id == nil && domain == nil {
		return nil, missing("ClusterIdentifier or CustomDomainName")
	}
	if domain == nil {
		return s.lookupCluster(ctx, caller, *id)
	}
	d, ok, err := s.domains().Of(ctx, *domain, "")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, shiftkey.Errorf(shiftkey.CodeClusterNotFound, "Cluster with custom domain name %s not found.", *domain)
	}
	if id != nil && *id != d.Target {
		return nil, shiftkey.Errorf(shiftkey.CodeInvalidParameterCombination, "CustomDomainName %s is not associated with cluster %s.", *domain, *id)
	}
	c, err := s.lookupCluster(ctx, caller, d.Target)
	if shiftkey.ErrorCode(err) == shiftkey.CodeClusterNotFound {
		return nil, shiftkey.Errorf(shiftkey.CodeClusterNotFound, "Cluster with custom domain name %s not found.", *domain)
	}
	return c, err
}

// duration is DurationSeconds checked by shiftkey.CredentialDuration, as
// InvalidParameterValue.
func duration(in *int) (time.Duration, error) {
	d, ok := shiftkey.CredentialDuration(in)
	if !ok {
		return 0, invalid("DurationSeconds must be between 900 and 3600 seconds, inclusive: %d.", *in)
	}
	return d, nil
}

// credentialRequest is a GetClusterCredentials request after normalize:
// names folded and checked, the cluster resolved. Every ARN and condition
// key is built from it, and it is what gets issued.
type credentialRequest struct {
	cluster    *shiftkey.Cluster
	user       string // folded DbUser
	db         string // folded DbName; "" when not given
	groups     []string
	duration   time.Duration
	durationIn *int
	autoCreate bool
}

func (s *Service) normalizeCredentials(ctx context.Context, caller *shiftkey.Caller, in *GetClusterCredentialsInput) (*credentialRequest, error) {
	if in.DBUser == nil {
		return nil, missing("DbUser")
	}
	r := &credentialRequest{durationIn: in.DurationSeconds, autoCreate: in.AutoCreate != nil && *in.AutoCreate}
	var err error
	if r.user, err = NormalizeName("DbUser", *in.DBUser, false); err != nil {
		return nil, err
	}
	if in.DBName != nil {
		if r.db, err = NormalizeName("DbName", *in.DBName, false); err != nil {
			return nil, err
		}
	}
	for _, g := range in.DBGroups {
		if _, err := NormalizeName("DbGroups", g, true); err != nil {
			return nil, err
		}
	}
	r.groups = dedupe(in.DBGroups)
	if r.duration, err = duration(in.DurationSeconds); err != nil {
		return nil, err
	}
	if r.cluster, err = s.resolveCluster(ctx, caller, in.ClusterIdentifier, in.CustomDomainName); err != nil {
		return nil, err
	}
	if err := issuable(r.user, r.cluster); err != nil {
		return nil, err
	}
	return r, nil
}

// issuable refuses the roles shiftkey never issues credentials for: the
// backend's provisioning role, and names PostgreSQL reserves. Superusers
// are refused at login, where the backend says who is one.
func issuable(user string, c *shiftkey.Cluster) error {
	switch {
	case user == c.Backend.AdminUser:
		return invalid("DbUser %s is the provisioning role of cluster %s: shiftkey never issues credentials for it.", user, c.Identifier)
	case strings.HasPrefix(user, "pg_"):
		return invalid("DbUser must not begin with pg_: PostgreSQL reserves those role names.")
	}
	return nil
}

// authorize checks what the documentation requires: GetClusterCredentials
// on the dbuser (and dbname), JoinGroup on each group, CreateClusterUser
// when AutoCreate is true.
func (s *Service) authorizeCredentials(ctx context.Context, caller *shiftkey.Caller, r *credentialRequest) error {
	region, account, cluster := caller.Region, caller.Principal.Account, r.cluster.Identifier
	keys := map[string][]string{"redshift:DbUser": {r.user}}
	if r.db != "" {
		keys["redshift:DbName"] = []string{r.db}
	}
	if r.durationIn != nil {
		keys["redshift:DurationSeconds"] = []string{fmt.Sprint(*r.durationIn)}
	}
	userARN := DBUserARN(region, account, cluster, r.user)
	reqs := []shiftkey.AuthzRequest{{Action: "redshift:GetClusterCredentials", Resource: userARN, Context: keys}}
	if r.db != "" {
		reqs = append(reqs, shiftkey.AuthzRequest{Action: "redshift:GetClusterCredentials", Resource: DBNameARN(region, account, cluster, r.db), Context: keys})
	}
	for _, g := range r.groups {
		reqs = append(reqs, shiftkey.AuthzRequest{Action: "redshift:JoinGroup", Resource: DBGroupARN(region, account, cluster, g), Context: keys})
	}
	if r.autoCreate {
		reqs = append(reqs, shiftkey.AuthzRequest{Action: "redshift:CreateClusterUser", Resource: userARN, Context: keys})
	}
	return s.Authorizer.Authorize(ctx, caller, reqs...)
}

// GetClusterCredentials issues a credential for a database user of a
// cluster: normalize, authorize, issue.
func (s *Service) GetClusterCredentials(ctx context.Context, caller *shiftkey.Caller, in *GetClusterCredentialsInput) (*ClusterCredentials, error) {
	r, err := s.normalizeCredentials(ctx, caller, in)
	if err != nil {
		return nil, err
	}
	if err := s.authorizeCredentials(ctx, caller, r); err != nil {
		return nil, err
	}
	if err := s.available(r.cluster); err != nil {
		return nil, err
	}
	login := "IAM:" + r.user
	if r.autoCreate {
		login = "IAMA:" + r.user
	}
	now := s.now()
	cred := &shiftkey.Credential{
		Cluster:      r.cluster.Identifier,
		LoginName:    login,
		DBUser:       r.user,
		DBName:       r.db,
		DBGroups:     r.groups,
		AutoCreate:   r.autoCreate,
		PrincipalARN: caller.Principal.ARN,
		AccessKeyID:  caller.Principal.AccessKey,
		IssuedTo:     shiftkey.IssuedToPrincipal(caller.Principal),
		RequestID:    caller.RequestID,
		CreatedAt:    now,
		ExpiresAt:    now.Add(r.duration).Truncate(time.Millisecond),
		ScopeID:      r.cluster.NamespaceID,
	}
	password, err := s.issue(ctx, cred)
	if err != nil {
		return nil, err
	}
	return &ClusterCredentials{DBUser: login, DBPassword: password, Expiration: cred.ExpiresAt}, nil
}

// issue mints a password for cred, derives its SCRAM keys with the login's
// shared salt, stores the credential and returns the password.
func (s *Service) issue(ctx context.Context, cred *shiftkey.Credential) (string, error) {
	secret := make([]byte, 36)
	id := make([]byte, 16)
	fresh := shiftkey.LoginSalt{Salt: make([]byte, 16), Iterations: s.Iterations}
	if fresh.Iterations == 0 {
		fresh.Iterations = scram.IssuedIterations
	}
	for _, b := range [][]byte{secret, id, fresh.Salt} {
		if _, err := io.ReadFull(s.rand(), b); err != nil {
			return "", fmt.Errorf("random: %w", err)
		}
	}
	salt, err := s.Store.LoginSalt(ctx, cred.Cluster, cred.LoginName, cred.ScopeID, fresh)
	if err != nil {
		return "", fmt.Errorf("login salt: %w", err)
	}
	password := base64.RawURLEncoding.EncodeToString(secret)
	// The id begins with its creation time in milliseconds (80 random bits
	// follow), so that ids grow: each insert extends the store's index of
	// ids at its end instead of touching a random page of it, which with a
	// million live credentials made every batch write and checkpoint a
	// page per credential.
	binary.BigEndian.PutUint64(id[:8], uint64(cred.CreatedAt.UnixMilli())<<16|uint64(binary.BigEndian.Uint16(id[6:8])))
	cred.ID = hex.EncodeToString(id)
	setVerifiers(cred, password, salt)
	if err := s.Store.CreateCredential(ctx, cred); err != nil {
		return "", fmt.Errorf("store credential: %w", err)
	}
	shiftkey.NoteIssued(ctx, cred.ID)
	return password, nil
}

// setVerifiers derives what the gateway checks logins against from
// password, never keeping the password: the SCRAM-SHA-256 keys with the
// login's salt, and for AWS's Redshift drivers SHA256(password ‖ salt)
// (Redshift's extensible digest, code 13, with the same salt, so that one
// salt per login serves both) and md5(password ‖ login name) (PostgreSQL's
// MD5 exchange).
func setVerifiers(cred *shiftkey.Credential, password string, salt shiftkey.LoginSalt) {
	keys := scram.NewKeys(password, salt.Salt, salt.Iterations)
	cred.StoredKey = keys.StoredKey[:]
	cred.ServerKey = keys.ServerKey[:]
	d := sha256.Sum256(append([]byte(password), salt.Salt...))
	cred.DigestSHA256 = d[:]
	m := md5.Sum([]byte(password + cred.LoginName))
	cred.DigestMD5 = m[:]
}

func dedupe(in []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range in {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// DescribeClustersInput is the request of DescribeClusters.
type DescribeClustersInput struct {
	ClusterIdentifier *string
	MaxRecords        *int
	Marker            *string
	TagKeys           []string
	TagValues         []string
}

// DescribeClustersOutput is one page of clusters.
type DescribeClustersOutput struct {
	Clusters []*shiftkey.Cluster
	Marker   string
}

// DescribeClusters returns one cluster, or a page of all of them.
func (s *Service) DescribeClusters(ctx context.Context, caller *shiftkey.Caller, in *DescribeClustersInput) (*DescribeClustersOutput, error) {
	max := 100
	if in.MaxRecords != nil {
		max = *in.MaxRecords
		if max < 20 || max > 100 {
			return nil, invalid("MaxRecords must be between 20 and 100: %d.", max)
		}
	}
	if in.ClusterIdentifier != nil {
		c, err := s.authorizeCluster(ctx, caller, "redshift:DescribeClusters", *in.ClusterIdentifier, nil)
		if err != nil {
			return nil, err
		}
		return &DescribeClustersOutput{Clusters: []*shiftkey.Cluster{s.withHealth(c)}}, nil
	}
	if err := s.Authorizer.Authorize(ctx, caller, shiftkey.AuthzRequest{Action: "redshift:DescribeClusters", Resource: ClusterARN(caller.Region, caller.Principal.Account, "*")}); err != nil {
		return nil, err
	}
	all, err := s.regionClusters(ctx, caller)
	if err != nil {
		return nil, err
	}
	if len(in.TagKeys) > 0 || len(in.TagValues) > 0 {
		var kept []*shiftkey.Cluster
		for _, c := range all {
			tags, err := s.ClusterTags(ctx, c.Identifier)
			if err != nil {
				return nil, err
			}
			for _, t := range tags {
				if tagMatches(t, in.TagKeys, in.TagValues) {
					kept = append(kept, c)
					break
				}
			}
		}
		all = kept
	}
	start := 0
	if in.Marker != nil && *in.Marker != "" {
		// The marker is the identifier of the first cluster of the page.
		start = len(all)
		for i, c := range all {
			if c.Identifier >= *in.Marker {
				start = i
				break
			}
		}
	}
	out := &DescribeClustersOutput{}
	end := min(start+max, len(all))
	out.Clusters = make([]*shiftkey.Cluster, 0, end-start)
	for _, c := range all[start:end] {
		out.Clusters = append(out.Clusters, s.withHealth(c))
	}
	if end < len(all) {
		out.Marker = all[end].Identifier
	}
	return out, nil
}

// withHealth is c with the status its provisioner knows, when that differs
// from the stored one (a dev cluster whose server died): a copy, for c may
// be a cache's.
func (s *Service) withHealth(c *shiftkey.Cluster) *shiftkey.Cluster {
	h, ok := s.Provisioner.(shiftkey.ClusterHealth)
	if !ok {
		return c
	}
	st := h.ClusterStatus(c)
	if st == "" || st == c.Status {
		return c
	}
	cc := *c
	cc.Status = st
	return &cc
}

// available refuses a credential for a cluster that is not available as
// DescribeClusters reports it (a dev cluster whose server died and is
// being started again, or could not be resumed): its logins would fail
// (08006), and Redshift answers InvalidClusterState. Checked after the
// policy, so that a caller who may not have a credential learns nothing
// of the cluster's state.
func (s *Service) available(c *shiftkey.Cluster) error {
	if st := s.withHealth(c).Status; st != "available" {
		return shiftkey.Errorf(shiftkey.CodeInvalidClusterState, "The cluster %s is not in the available state: its status is %s. Try again once DescribeClusters says available.", c.Identifier, st)
	}
	return nil
}

// GetClusterCredentialsWithIAMInput is the request of
// GetClusterCredentialsWithIAM.
type GetClusterCredentialsWithIAMInput struct {
	CredentialTarget
}

// ClusterExtendedCredentials is the result of GetClusterCredentialsWithIAM.
type ClusterExtendedCredentials = shiftkey.IssuedCredential

// GetClusterCredentialsWithIAM issues a credential for the caller's own IAM
// identity: IAM:<user> or IAMR:<role>, created at first login, joining the
// roles of its RedshiftDbRoles tag for the session.
func (s *Service) GetClusterCredentialsWithIAM(ctx context.Context, caller *shiftkey.Caller, in *GetClusterCredentialsWithIAMInput) (*ClusterExtendedCredentials, error) {
	var db string
	if in.DBName != nil {
		var err error
		if db, err = NormalizeName("DbName", *in.DBName, false); err != nil {
			return nil, err
		}
	}
	if in.ClusterIdentifier != nil && len(*in.ClusterIdentifier) > 63 {
		return nil, invalid("ClusterIdentifier must be between 1 and 63 characters long.")
	}
	d, err := duration(in.DurationSeconds)
	if err != nil {
		return nil, err
	}
	cluster, err := s.resolveCluster(ctx, caller, in.ClusterIdentifier, in.CustomDomainName)
	if err != nil {
		return nil, err
	}
	p := caller.Principal
	keys := map[string][]string{}
	resource := DBNameARN(caller.Region, p.Account, cluster.Identifier, "*")
	if db != "" {
		keys["redshift:DbName"] = []string{db}
		resource = DBNameARN(caller.Region, p.Account, cluster.Identifier, db)
	}
	if in.DurationSeconds != nil {
		keys["redshift:DurationSeconds"] = []string{fmt.Sprint(*in.DurationSeconds)}
	}
	if err := s.Authorizer.Authorize(ctx, caller, shiftkey.AuthzRequest{Action: "redshift:GetClusterCredentialsWithIAM", Resource: resource, Context: keys}); err != nil {
		return nil, err
	}
	if err := s.available(cluster); err != nil {
		return nil, err
	}
	return s.IssueForPrincipal(ctx, caller, cluster.Identifier, cluster.NamespaceID, db, d)
}

// IssueForPrincipal issues a credential under scope (a cluster identifier
// or a workgroup's credential scope), written only while the cluster or
// workgroup of unique id scopeID (Credential.ScopeID) exists, for the
// caller's own IAM identity:
// IAM:<user> or IAMR:<role>, created at first login, joining the roles of
// its RedshiftDbRoles tag for the session. The caller has been authorized.
func (s *Service) IssueForPrincipal(ctx context.Context, caller *shiftkey.Caller, scope, scopeID string, db string, duration time.Duration) (*ClusterExtendedCredentials, error) {
	p := caller.Principal
	login := p.DBUserName()
	if len(login) > dbname.MaxIdentifier {
		return nil, invalid("The database user name %s is longer than %d bytes, the limit of the backend.", login, dbname.MaxIdentifier)
	}
	now := s.now()
	cred := &shiftkey.Credential{
		Cluster:      scope,
		LoginName:    login,
		DBUser:       login,
		DBName:       db,
		DBGroups:     dedupe(p.DBRoles()),
		AutoCreate:   true,
		PrincipalARN: p.ARN,
		AccessKeyID:  p.AccessKey,
		IssuedTo:     shiftkey.IssuedToPrincipal(p),
		RequestID:    caller.RequestID,
		CreatedAt:    now,
		ExpiresAt:    now.Add(duration).Truncate(time.Millisecond),
		ScopeID:      scopeID,
	}
	password, err := s.issue(ctx, cred)
	if err != nil {
		return nil, err
	}
	return &ClusterExtendedCredentials{DBUser: login, DBPassword: password, Expiration: cred.ExpiresAt, NextRefreshTime: cred.ExpiresAt}, nil
}
