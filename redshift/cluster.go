package redshift

import (
	"context"
	"strings"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/dbname"
	"github.com/shiftkey/shiftkey/scram"
)

// CreateClusterInput is the request of CreateCluster.
type CreateClusterInput struct {
	ClusterIdentifier  *string
	NodeType           *string
	MasterUsername     *string
	MasterUserPassword *string
	DBName             *string
	Port               *int
	NumberOfNodes      *int
	Tags               []shiftkey.Tag
}

// ValidClusterIdentifier is Redshift's rule: 1-63 lowercase letters, digits
// or hyphens, starting with a letter, no trailing or double hyphen.
func ValidClusterIdentifier(id string) bool {
	if id == "" || len(id) > 63 || id[0] < 'a' || id[0] > 'z' || strings.HasSuffix(id, "-") || strings.Contains(id, "--") {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func validMasterPassword(p string) error {
	if len(p) < 8 || len(p) > 64 {
		return invalid("MasterUserPassword must be between 8 and 64 characters long.")
	}
	var upper, lower, digit bool
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c < 33 || c > 126 || strings.IndexByte(`'"\/@`, c) >= 0:
			return invalid("MasterUserPassword must contain only printable ASCII characters except ' \" \\ / @ and spaces.")
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= '0' && c <= '9':
			digit = true
		}
	}
	if !upper || !lower || !digit {
		return invalid("MasterUserPassword must contain at least one uppercase letter, one lowercase letter and one number.")
	}
	return nil
}

func validMasterUsername(u string) error {
	if u == "" || len(u) > 128 || u[0] < 'a' || u[0] > 'z' {
		return invalid("MasterUsername must be 1-128 characters and start with a lowercase letter.")
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("_+.@-", c) >= 0) {
			return invalid("MasterUsername must contain only lowercase letters, numbers, underscore, plus sign, period, at symbol or hyphen.")
		}
	}
	if u == "public" || dbname.IsReserved(u) {
		return invalid("MasterUsername must not be PUBLIC or a reserved word.")
	}
	if len(u) > dbname.MaxIdentifier {
		return invalid("MasterUsername is longer than %d bytes, the limit of the backend.", dbname.MaxIdentifier)
	}
	return nil
}

// masterExpiry is when a master password stops working: never, until it is
// changed with ModifyCluster.
var masterExpiry = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// setMasterPassword stores the master user's password as a non-expiring
// credential, replacing any earlier one.
func (s *Service) setMasterPassword(ctx context.Context, c *shiftkey.Cluster, password, requestID string) error {
	if err := s.Store.DeleteCredentials(ctx, c.Identifier, c.MasterUsername); err != nil {
		return err
	}
	fresh := shiftkey.LoginSalt{Salt: make([]byte, 16), Iterations: scram.DefaultIterations}
	if _, err := s.rand().Read(fresh.Salt); err != nil {
		return err
	}
	salt, err := s.Store.LoginSalt(ctx, c.Identifier, c.MasterUsername, c.NamespaceID, fresh)
	if err != nil {
		return err
	}
	cred := &shiftkey.Credential{
		ID: "master-" + shiftkey.NewUUID(), Cluster: c.Identifier, LoginName: c.MasterUsername, DBUser: c.MasterUsername,
		PrincipalARN: "master", RequestID: requestID, CreatedAt: s.now(), ExpiresAt: masterExpiry, ScopeID: c.NamespaceID,
	}
	setVerifiers(cred, password, salt)
	if err := s.Store.CreateCredential(ctx, cred); err != nil {
		return err
	}
	shiftkey.NoteIssued(ctx, cred.ID)
	return nil
}

func (s *Service) provisioner() (shiftkey.ClusterProvisioner, error) {
	if s.Provisioner == nil {
		return nil, shiftkey.Errorf(shiftkey.CodeUnsupportedOperation, "This shiftkey has no provisioner (shiftkey serve): declare clusters in its configuration instead.")
	}
	return s.Provisioner, nil
}

// CreateCluster creates a cluster with a backend of its own.
func (s *Service) CreateCluster(ctx context.Context, caller *shiftkey.Caller, in *CreateClusterInput) (*shiftkey.Cluster, error) {
	switch {
	case in.ClusterIdentifier == nil:
		return nil, missing("ClusterIdentifier")
	case in.NodeType == nil:
		return nil, missing("NodeType")
	case in.MasterUsername == nil:
		return nil, missing("MasterUsername")
	case in.MasterUserPassword == nil:
		return nil, shiftkey.Errorf(shiftkey.CodeMissingParameter, "The request must contain the parameter MasterUserPassword (ManageMasterPassword is not supported).")
	}
	if !ValidClusterIdentifier(*in.ClusterIdentifier) {
		return nil, invalid("ClusterIdentifier must be 1-63 lowercase letters, numbers or hyphens, start with a letter, and contain no two consecutive hyphens or end with a hyphen.")
	}
	if !strings.Contains(*in.NodeType, ".") || len(*in.NodeType) > 32 {
		return nil, invalid("Invalid node type: %s", *in.NodeType)
	}
	if err := validMasterUsername(*in.MasterUsername); err != nil {
		return nil, err
	}
	if err := validMasterPassword(*in.MasterUserPassword); err != nil {
		return nil, err
	}
	c := &shiftkey.Cluster{Identifier: *in.ClusterIdentifier, Region: caller.Region, NamespaceID: shiftkey.NewUUID(), NodeType: *in.NodeType, DBName: "dev",
		MasterUsername: *in.MasterUsername, Status: "available", Endpoint: shiftkey.Endpoint{Port: 5439}, CreatedAt: s.now().Truncate(time.Millisecond)}
	if in.DBName != nil {
		if len(*in.DBName) < 1 || len(*in.DBName) > 64 || !validDBName(*in.DBName) || dbname.IsReserved(*in.DBName) {
			return nil, invalid("DBName must be 1-64 lowercase letters, numbers or underscores, start with a letter, and not be a reserved word.")
		}
		c.DBName = *in.DBName
	}
	if in.Port != nil {
		if *in.Port < 1150 || *in.Port > 65535 {
			return nil, invalid("Port must be between 1150 and 65535: %d.", *in.Port)
		}
		c.Endpoint.Port = *in.Port
	}
	if in.NumberOfNodes != nil && (*in.NumberOfNodes < 1 || *in.NumberOfNodes > 128) {
		return nil, invalid("NumberOfNodes must be between 1 and 128.")
	}
	if len(in.Tags) > 50 {
		return nil, shiftkey.Errorf("TagLimitExceededFault", "You have exceeded the number of tags allowed (50).")
	}
	if err := s.Authorizer.Authorize(ctx, caller, shiftkey.AuthzRequest{Action: "redshift:CreateCluster",
		Resource: ClusterARN(caller.Region, caller.Principal.Account, c.Identifier), Context: shiftkey.RequestTagKeys(nil, in.Tags)}); err != nil {
		return nil, err
	}
	p, err := s.provisioner()
	if err != nil {
		return nil, err
	}
	if _, err := s.Store.Cluster(ctx, c.Identifier); err == nil {
		return nil, shiftkey.ClusterExists()
	}
	if err := p.StartCluster(ctx, c); err != nil {
		return nil, err
	}
	if err := s.Store.CreateCluster(ctx, c); err != nil {
		p.StopCluster(context.WithoutCancel(ctx), c)
		return nil, err
	}
	if err := s.setMasterPassword(ctx, c, *in.MasterUserPassword, caller.RequestID); err != nil {
		return nil, err
	}
	if len(in.Tags) > 0 {
		if err := s.Store.TagEntity(ctx, shiftkey.KindCluster, c.Identifier, in.Tags); err != nil {
			return nil, err
		}
	}
	created := *c
	created.Status = "creating" // what AWS answers; DescribeClusters then says available
	return &created, nil
}

func validDBName(v string) bool {
	if v[0] < 'a' || v[0] > 'z' {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// ModifyClusterInput is the request of ModifyCluster.
type ModifyClusterInput struct {
	ClusterIdentifier  *string
	MasterUserPassword *string
	Port               *int
}

// ModifyCluster changes the master password and/or the port.
func (s *Service) ModifyCluster(ctx context.Context, caller *shiftkey.Caller, in *ModifyClusterInput) (*shiftkey.Cluster, error) {
	if in.ClusterIdentifier == nil {
		return nil, missing("ClusterIdentifier")
	}
	if in.MasterUserPassword != nil {
		if err := validMasterPassword(*in.MasterUserPassword); err != nil {
			return nil, err
		}
	}
	if in.Port != nil && (*in.Port < 1150 || *in.Port > 65535) {
		return nil, invalid("Port must be between 1150 and 65535: %d.", *in.Port)
	}
	c, err := s.authorizeCluster(ctx, caller, "redshift:ModifyCluster", *in.ClusterIdentifier, nil)
	if err != nil {
		return nil, err
	}
	if in.Port != nil && *in.Port != c.Endpoint.Port {
		p, err := s.provisioner()
		if err != nil {
			return nil, err
		}
		if err := p.MoveCluster(ctx, c, *in.Port); err != nil {
			return nil, err
		}
		if err := s.Store.UpdateCluster(ctx, c); err != nil {
			return nil, err
		}
	}
	if in.MasterUserPassword != nil {
		if err := s.setMasterPassword(ctx, c, *in.MasterUserPassword, caller.RequestID); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// DeleteCluster stops a cluster's backend and removes it with its data.
func (s *Service) DeleteCluster(ctx context.Context, caller *shiftkey.Caller, id *string, skipSnapshot *bool, finalSnapshot *string) (*shiftkey.Cluster, error) {
	if id == nil {
		return nil, missing("ClusterIdentifier")
	}
	skip := skipSnapshot != nil && *skipSnapshot
	switch {
	case skip && finalSnapshot != nil:
		return nil, shiftkey.Errorf(shiftkey.CodeInvalidParameterCombination, "FinalClusterSnapshotIdentifier cannot be given with SkipFinalClusterSnapshot.")
	case !skip && finalSnapshot == nil:
		return nil, shiftkey.Errorf(shiftkey.CodeInvalidParameterCombination, "FinalClusterSnapshotIdentifier is required unless SkipFinalClusterSnapshot is true.")
	case !skip:
		return nil, shiftkey.Errorf(shiftkey.CodeUnsupportedOperation, "shiftkey keeps no snapshots: delete with SkipFinalClusterSnapshot.")
	}
	c, err := s.authorizeCluster(ctx, caller, "redshift:DeleteCluster", *id, nil)
	if err != nil {
		return nil, err
	}
	if !c.Backend.Managed {
		return nil, shiftkey.Errorf(shiftkey.CodeUnsupportedOperation, "Cluster %s is declared in the configuration; remove it there.", c.Identifier)
	}
	p, err := s.provisioner()
	if err != nil {
		return nil, err
	}
	if err := s.Store.DeleteCluster(ctx, c.Identifier); err != nil {
		return nil, err
	}
	if err := p.StopCluster(ctx, c); err != nil {
		return nil, err
	}
	c.Status = "deleting"
	return c, nil
}

// ClusterTags returns a cluster's tags.
func (s *Service) ClusterTags(ctx context.Context, id string) ([]shiftkey.Tag, error) {
	return s.Store.Tags(ctx, shiftkey.KindCluster, id)
}

// clusterFromARN resolves a cluster ARN (the ResourceName of tag calls) of
// the caller's account and region, authorizing action on it with keys.
func (s *Service) clusterFromARN(ctx context.Context, caller *shiftkey.Caller, arn, action string, keys map[string][]string) (*shiftkey.Cluster, error) {
	parts := strings.SplitN(arn, ":", 7)
	if len(parts) != 7 || parts[0] != "arn" || parts[1] != "aws" || parts[2] != "redshift" || parts[5] != "cluster" {
		// InvalidTagFault: the one 400 the model gives the tag operations.
		return nil, shiftkey.Errorf("InvalidTagFault", "ResourceName %s is not a cluster ARN.", arn)
	}
	if parts[3] != caller.Region || parts[4] != caller.Principal.Account {
		return nil, shiftkey.Errorf("ResourceNotFoundFault", "The specified resource %s could not be found.", arn)
	}
	c, err := s.authorizeCluster(ctx, caller, action, parts[6], keys)
	if shiftkey.ErrorCode(err) == shiftkey.CodeClusterNotFound {
		return nil, shiftkey.Errorf("ResourceNotFoundFault", "The specified resource %s could not be found.", arn)
	}
	return c, err
}

// CreateTags tags a cluster.
func (s *Service) CreateTags(ctx context.Context, caller *shiftkey.Caller, arn string, tags []shiftkey.Tag) error {
	c, err := s.clusterFromARN(ctx, caller, arn, "redshift:CreateTags", shiftkey.RequestTagKeys(nil, tags))
	if err != nil {
		return err
	}
	existing, err := s.ClusterTags(ctx, c.Identifier)
	if err != nil {
		return err
	}
	keys := map[string]bool{}
	for _, t := range append(existing, tags...) {
		keys[strings.ToLower(t.Key)] = true
	}
	if len(keys) > 50 {
		return shiftkey.Errorf("TagLimitExceededFault", "You have exceeded the number of tags allowed (50).")
	}
	return s.Store.TagEntity(ctx, shiftkey.KindCluster, c.Identifier, tags)
}

// DeleteTags removes tags from a cluster.
func (s *Service) DeleteTags(ctx context.Context, caller *shiftkey.Caller, arn string, keys []string) error {
	c, err := s.clusterFromARN(ctx, caller, arn, "redshift:DeleteTags", shiftkey.RequestTagKeys(nil, nil, keys...))
	if err != nil {
		return err
	}
	return s.Store.UntagEntity(ctx, shiftkey.KindCluster, c.Identifier, keys)
}

// TaggedCluster is a cluster with its tags, as DescribeTags lists them.
type TaggedCluster struct {
	Cluster *shiftkey.Cluster
	Tags    []shiftkey.Tag
}

// DescribeTags lists cluster tags, optionally for one resource and
// filtered by keys and values.
func (s *Service) DescribeTags(ctx context.Context, caller *shiftkey.Caller, arn *string, keys, values []string) ([]TaggedCluster, error) {
	if err := s.Authorizer.Authorize(ctx, caller, shiftkey.AuthzRequest{Action: "redshift:DescribeTags", Resource: "*"}); err != nil {
		return nil, err
	}
	var clusters []*shiftkey.Cluster
	if arn != nil {
		c, err := s.clusterFromARN(ctx, caller, *arn, "redshift:DescribeTags", nil)
		if err != nil {
			return nil, err
		}
		clusters = []*shiftkey.Cluster{c}
	} else {
		all, err := s.regionClusters(ctx, caller)
		if err != nil {
			return nil, err
		}
		clusters = all
	}
	var out []TaggedCluster
	for _, c := range clusters {
		tags, err := s.ClusterTags(ctx, c.Identifier)
		if err != nil {
			return nil, err
		}
		var kept []shiftkey.Tag
		for _, t := range tags {
			if tagMatches(t, keys, values) {
				kept = append(kept, t)
			}
		}
		if len(kept) > 0 {
			out = append(out, TaggedCluster{c, kept})
		}
	}
	return out, nil
}

// tagMatches reports whether t's key is among keys and its value among
// values (an empty filter matches everything).
func tagMatches(t shiftkey.Tag, keys, values []string) bool {
	in := func(v string, set []string) bool {
		if len(set) == 0 {
			return true
		}
		for _, s := range set {
			if s == v {
				return true
			}
		}
		return false
	}
	return in(t.Key, keys) && in(t.Value, values)
}

// EnsureCluster creates c when no cluster of its identifier exists, and
// otherwise gives the stored one c's endpoint and backend (addresses may
// change between runs of a declared or dev cluster), returning it.
func EnsureCluster(ctx context.Context, st shiftkey.ClusterStore, c *shiftkey.Cluster) (*shiftkey.Cluster, error) {
	old, err := st.Cluster(ctx, c.Identifier)
	if shiftkey.ErrorCode(err) == shiftkey.CodeClusterNotFound {
		return c, st.CreateCluster(ctx, c)
	}
	if err != nil {
		return nil, err
	}
	old.Endpoint, old.Backend = c.Endpoint, c.Backend
	return old, st.UpdateCluster(ctx, old)
}
