package redshift

import (
	"context"
	"maps"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/dbname"
)

// NormalizeName checks a name by Redshift's rule and folds it (see
// dbname.Normalize), as InvalidParameterValue.
func NormalizeName(param, v string, lower bool) (string, error) {
	n, err := dbname.Normalize(param, v, lower)
	if err != nil {
		return "", invalid("%s", err.Error())
	}
	return n, nil
}

// lookupCluster finds the cluster id of the caller's region. Identifiers
// match exactly; ARNs are built from the stored one.
func (s *Service) lookupCluster(ctx context.Context, caller *shiftkey.Caller, id string) (*shiftkey.Cluster, error) {
	c, err := s.Store.Cluster(ctx, id)
	if err == nil && !shiftkey.InRegion(c.Region, caller.Region) {
		return nil, shiftkey.ClusterNotFound(id)
	}
	return c, err
}

// authorizeCluster looks up cluster id and authorizes action on it with
// keys and the cluster's tags as aws:ResourceTag/*. A cluster that does not
// exist is authorized by its ARN first, so that a caller without the
// permission learns nothing about which clusters exist.
func (s *Service) authorizeCluster(ctx context.Context, caller *shiftkey.Caller, action, id string, keys map[string][]string) (*shiftkey.Cluster, error) {
	c, err := s.lookupCluster(ctx, caller, id)
	if shiftkey.ErrorCode(err) == shiftkey.CodeClusterNotFound {
		arn := ClusterARN(caller.Region, caller.Principal.Account, id)
		if aerr := s.Authorizer.Authorize(ctx, caller, shiftkey.AuthzRequest{Action: action, Resource: arn, Context: keys}); aerr != nil {
			return nil, aerr
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	tags, err := s.ClusterTags(ctx, c.Identifier)
	if err != nil {
		return nil, err
	}
	ctxKeys := shiftkey.ResourceTagKeys(maps.Clone(keys), tags)
	arn := ClusterARN(caller.Region, caller.Principal.Account, c.Identifier)
	if err := s.Authorizer.Authorize(ctx, caller, shiftkey.AuthzRequest{Action: action, Resource: arn, Context: ctxKeys}); err != nil {
		return nil, err
	}
	return c, nil
}

// regionClusters lists the clusters of the caller's region.
func (s *Service) regionClusters(ctx context.Context, caller *shiftkey.Caller) ([]*shiftkey.Cluster, error) {
	all, err := s.Store.Clusters(ctx)
	if err != nil {
		return nil, err
	}
	var out []*shiftkey.Cluster
	for _, c := range all {
		if shiftkey.InRegion(c.Region, caller.Region) {
			out = append(out, c)
		}
	}
	return out, nil
}
