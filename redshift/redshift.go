// Package redshift implements the semantics of Amazon Redshift's
// credential operations: input validation exactly as AWS documents it, the
// IAM checks the documentation requires, and issuing credentials whose SCRAM
// keys are stored and whose password is returned once.
package redshift

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/scram"
)

// Duration limits of GetClusterCredentials.
const (
	MinDuration     = 900 * time.Second
	MaxDuration     = 3600 * time.Second
	DefaultDuration = MinDuration
)

// Service runs Redshift operations for authenticated callers.
type Service struct {
	Store      shiftkey.Store
	Authorizer shiftkey.Authorizer
	Now        func() time.Time // nil → time.Now
	Rand       io.Reader        // nil → crypto/rand
	Iterations int              // SCRAM iterations for new logins; 0 → scram.DefaultIterations
	// Provisioner runs the backends of API-created clusters; nil in serve.
	Provisioner shiftkey.ClusterProvisioner
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) rand() io.Reader {
	if s.Rand != nil {
		return s.Rand
	}
	return rand.Reader
}

// GetClusterCredentialsInput is the request of GetClusterCredentials. Nil
// pointers are parameters that were not given.
type GetClusterCredentialsInput struct {
	DBUser            *string
	DBName            *string
	ClusterIdentifier *string
	CustomDomainName  *string
	DurationSeconds   *int
	AutoCreate        *bool
	DBGroups          []string
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

// validName checks Redshift's rule for DbUser, DbName and DbGroups: 1–64
// characters from letters, digits, _ + . @ -, starting with a letter, not a
// reserved word. lower restricts letters to lowercase (DbGroups).
func validName(param, v string, lower bool) error {
	if v == "" || len(v) > 64 {
		return invalid("%s must be between 1 and 64 characters long.", param)
	}
	first := v[0]
	if !(first >= 'a' && first <= 'z' || !lower && first >= 'A' && first <= 'Z') {
		if lower {
			return invalid("%s must begin with a lowercase letter.", param)
		}
		return invalid("%s must begin with a letter.", param)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '+', c == '.', c == '@', c == '-':
		case c >= 'A' && c <= 'Z' && !lower:
		default:
			if lower {
				return invalid("%s must contain only lowercase letters, numbers, underscore, plus sign, period (dot), at symbol (@), or hyphen.", param)
			}
			return invalid("%s must contain only letters, numbers, underscore, plus sign, period (dot), at symbol (@), or hyphen.", param)
		}
	}
	if strings.EqualFold(v, "public") {
		return invalid("%s must not be PUBLIC.", param)
	}
	if IsReserved(v) {
		return invalid("%s must not be a reserved word: %s.", param, v)
	}
	return nil
}

// resolveCluster finds the cluster named by ClusterIdentifier or
// CustomDomainName.
func (s *Service) resolveCluster(ctx context.Context, id, domain *string) (*shiftkey.Cluster, error) {
	if id != nil && *id == "" {
		id = nil
	}
	if id == nil && domain == nil {
		return nil, shiftkey.Errorf(shiftkey.CodeMissingParameter, "The request must contain the parameter ClusterIdentifier or CustomDomainName.")
	}
	if domain == nil {
		return s.Store.Cluster(ctx, *id)
	}
	d, err := s.Store.CustomDomain(ctx, *domain)
	if shiftkey.ErrorCode(err) == shiftkey.CodeResourceNotFound || err == nil && d.Kind != "cluster" {
		return nil, shiftkey.Errorf(shiftkey.CodeClusterNotFound, "Cluster with custom domain name %s not found.", *domain)
	}
	if err != nil {
		return nil, err
	}
	if id != nil && *id != d.Target {
		return nil, shiftkey.Errorf(shiftkey.CodeInvalidParameterCombination, "CustomDomainName %s is not associated with cluster %s.", *domain, *id)
	}
	return s.Store.Cluster(ctx, d.Target)
}

func (in *GetClusterCredentialsInput) validate() (time.Duration, error) {
	if in.DBUser == nil {
		return 0, shiftkey.Errorf(shiftkey.CodeMissingParameter, "The request must contain the parameter DbUser.")
	}
	if err := validName("DbUser", *in.DBUser, false); err != nil {
		return 0, err
	}
	if in.DBName != nil {
		if err := validName("DbName", *in.DBName, false); err != nil {
			return 0, err
		}
	}
	for _, g := range in.DBGroups {
		if err := validName("DbGroups", g, true); err != nil {
			return 0, err
		}
	}
	d := DefaultDuration
	if in.DurationSeconds != nil {
		d = time.Duration(*in.DurationSeconds) * time.Second
		if d < MinDuration || d > MaxDuration {
			return 0, invalid("DurationSeconds must be between 900 and 3600 seconds, inclusive: %d.", *in.DurationSeconds)
		}
	}
	return d, nil
}

// GetClusterCredentials validates in, checks the caller's permissions and
// issues a credential for the cluster.
func (s *Service) GetClusterCredentials(ctx context.Context, caller *shiftkey.Caller, in *GetClusterCredentialsInput) (*ClusterCredentials, error) {
	duration, err := in.validate()
	if err != nil {
		return nil, err
	}
	cluster, err := s.resolveCluster(ctx, in.ClusterIdentifier, in.CustomDomainName)
	if err != nil {
		return nil, err
	}
	region, account := caller.Region, caller.Principal.Account
	user := *in.DBUser
	keys := map[string][]string{"redshift:DbUser": {user}}
	if in.DBName != nil {
		keys["redshift:DbName"] = []string{*in.DBName}
	}
	if in.DurationSeconds != nil {
		keys["redshift:DurationSeconds"] = []string{fmt.Sprint(*in.DurationSeconds)}
	}
	userARN := DBUserARN(region, account, cluster.Identifier, user)
	reqs := []shiftkey.AuthzRequest{{Action: "redshift:GetClusterCredentials", Resource: userARN, Context: keys}}
	if in.DBName != nil {
		reqs = append(reqs, shiftkey.AuthzRequest{Action: "redshift:GetClusterCredentials", Resource: DBNameARN(region, account, cluster.Identifier, *in.DBName), Context: keys})
	}
	groups := dedupe(in.DBGroups)
	for _, g := range groups {
		reqs = append(reqs, shiftkey.AuthzRequest{Action: "redshift:JoinGroup", Resource: DBGroupARN(region, account, cluster.Identifier, g), Context: keys})
	}
	autoCreate := in.AutoCreate != nil && *in.AutoCreate
	if autoCreate {
		reqs = append(reqs, shiftkey.AuthzRequest{Action: "redshift:CreateClusterUser", Resource: userARN, Context: keys})
	}
	if err := s.Authorizer.Authorize(ctx, caller, reqs...); err != nil {
		return nil, err
	}

	login := "IAM:" + user
	if autoCreate {
		login = "IAMA:" + user
	}
	db := ""
	if in.DBName != nil {
		// Redshift folds unquoted names to lowercase; so does the backend role.
		db = strings.ToLower(*in.DBName)
	}
	now := s.now()
	cred := &shiftkey.Credential{
		Cluster:      cluster.Identifier,
		LoginName:    login,
		DBUser:       strings.ToLower(user),
		DBName:       db,
		DBGroups:     groups,
		AutoCreate:   autoCreate,
		PrincipalARN: caller.Principal.ARN,
		RequestID:    caller.RequestID,
		CreatedAt:    now,
		ExpiresAt:    now.Add(duration).Truncate(time.Millisecond),
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
		fresh.Iterations = scram.DefaultIterations
	}
	for _, b := range [][]byte{secret, id, fresh.Salt} {
		if _, err := io.ReadFull(s.rand(), b); err != nil {
			return "", fmt.Errorf("random: %w", err)
		}
	}
	salt, err := s.Store.LoginSalt(ctx, cred.Cluster, cred.LoginName, fresh)
	if err != nil {
		return "", fmt.Errorf("login salt: %w", err)
	}
	password := base64.RawURLEncoding.EncodeToString(secret)
	keys := scram.NewKeys(password, salt.Salt, salt.Iterations)
	cred.ID = hex.EncodeToString(id)
	cred.StoredKey = keys.StoredKey[:]
	cred.ServerKey = keys.ServerKey[:]
	if err := s.Store.CreateCredential(ctx, cred); err != nil {
		return "", fmt.Errorf("store credential: %w", err)
	}
	return password, nil
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
	region, account := caller.Region, caller.Principal.Account
	if in.ClusterIdentifier != nil {
		if err := s.Authorizer.Authorize(ctx, caller, shiftkey.AuthzRequest{Action: "redshift:DescribeClusters", Resource: ClusterARN(region, account, *in.ClusterIdentifier)}); err != nil {
			return nil, err
		}
		c, err := s.Store.Cluster(ctx, *in.ClusterIdentifier)
		if err != nil {
			return nil, err
		}
		return &DescribeClustersOutput{Clusters: []*shiftkey.Cluster{c}}, nil
	}
	if err := s.Authorizer.Authorize(ctx, caller, shiftkey.AuthzRequest{Action: "redshift:DescribeClusters", Resource: ClusterARN(region, account, "*")}); err != nil {
		return nil, err
	}
	all, err := s.Store.Clusters(ctx)
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
	out.Clusters = all[start:end]
	if end < len(all) {
		out.Marker = all[end].Identifier
	}
	return out, nil
}

// GetClusterCredentialsWithIAMInput is the request of
// GetClusterCredentialsWithIAM.
type GetClusterCredentialsWithIAMInput struct {
	DBName            *string
	ClusterIdentifier *string
	CustomDomainName  *string
	DurationSeconds   *int
}

// ClusterExtendedCredentials is the result of GetClusterCredentialsWithIAM.
type ClusterExtendedCredentials struct {
	DBUser          string
	DBPassword      string
	Expiration      time.Time
	NextRefreshTime time.Time
}

// maxIdentifier is PostgreSQL's identifier limit (NAMEDATALEN-1 bytes);
// longer role names would be silently truncated by the backend.
const maxIdentifier = 63

// GetClusterCredentialsWithIAM issues a credential for the caller's own IAM
// identity: IAM:<user> or IAMR:<role>, created at first login, joining the
// roles of its RedshiftDbRoles tag for the session.
func (s *Service) GetClusterCredentialsWithIAM(ctx context.Context, caller *shiftkey.Caller, in *GetClusterCredentialsWithIAMInput) (*ClusterExtendedCredentials, error) {
	if in.DBName != nil && (len(*in.DBName) < 1 || len(*in.DBName) > 64) {
		return nil, invalid("DbName must be between 1 and 64 characters long.")
	}
	if in.ClusterIdentifier != nil && len(*in.ClusterIdentifier) > 63 {
		return nil, invalid("ClusterIdentifier must be between 1 and 63 characters long.")
	}
	duration := DefaultDuration
	if in.DurationSeconds != nil {
		duration = time.Duration(*in.DurationSeconds) * time.Second
		if duration < MinDuration || duration > MaxDuration {
			return nil, invalid("DurationSeconds must be between 900 and 3600 seconds, inclusive: %d.", *in.DurationSeconds)
		}
	}
	cluster, err := s.resolveCluster(ctx, in.ClusterIdentifier, in.CustomDomainName)
	if err != nil {
		return nil, err
	}
	p := caller.Principal
	keys := map[string][]string{}
	resource := DBNameARN(caller.Region, p.Account, cluster.Identifier, "*")
	if in.DBName != nil {
		keys["redshift:DbName"] = []string{*in.DBName}
		resource = DBNameARN(caller.Region, p.Account, cluster.Identifier, *in.DBName)
	}
	if in.DurationSeconds != nil {
		keys["redshift:DurationSeconds"] = []string{fmt.Sprint(*in.DurationSeconds)}
	}
	if err := s.Authorizer.Authorize(ctx, caller, shiftkey.AuthzRequest{Action: "redshift:GetClusterCredentialsWithIAM", Resource: resource, Context: keys}); err != nil {
		return nil, err
	}
	return s.IssueForPrincipal(ctx, caller, cluster.Identifier, in.DBName, duration)
}

// IssueForPrincipal issues a credential under scope (a cluster identifier
// or a workgroup's credential scope) for the caller's own IAM identity:
// IAM:<user> or IAMR:<role>, created at first login, joining the roles of
// its RedshiftDbRoles tag for the session. The caller has been authorized.
func (s *Service) IssueForPrincipal(ctx context.Context, caller *shiftkey.Caller, scope string, dbName *string, duration time.Duration) (*ClusterExtendedCredentials, error) {
	p := caller.Principal
	login := p.DBUserName()
	if len(login) > maxIdentifier {
		return nil, invalid("The database user name %s is longer than %d bytes, the limit of the backend.", login, maxIdentifier)
	}
	db := ""
	if dbName != nil {
		db = strings.ToLower(*dbName)
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
		RequestID:    caller.RequestID,
		CreatedAt:    now,
		ExpiresAt:    now.Add(duration).Truncate(time.Millisecond),
	}
	password, err := s.issue(ctx, cred)
	if err != nil {
		return nil, err
	}
	return &ClusterExtendedCredentials{DBUser: login, DBPassword: password, Expiration: cred.ExpiresAt, NextRefreshTime: cred.ExpiresAt}, nil
}
