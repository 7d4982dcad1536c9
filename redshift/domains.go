package redshift

import (
	"context"

	"github.com/shiftkey/shiftkey"
)

// Custom domains of clusters: the shared logic is shiftkey.Domains; this
// file keeps Redshift's parameters and error codes.

func (s *Service) domains() shiftkey.Domains {
	return shiftkey.Domains{Store: s.Store, Kind: shiftkey.DomainCluster, Now: s.now}
}

// ClusterDomains are the clusters' custom domain associations, by cluster
// identifier, for the Cluster shape's CustomDomain* members, which name
// one: of a cluster with several, the first by name.
func (s *Service) ClusterDomains(ctx context.Context) (map[string]*shiftkey.CustomDomain, error) {
	all, err := s.domains().List(ctx, func(string) bool { return true }, nil, nil)
	if err != nil {
		return nil, err
	}
	out := map[string]*shiftkey.CustomDomain{}
	for _, d := range all {
		if cur, ok := out[d.Target]; !ok || d.Name < cur.Name {
			out[d.Target] = d
		}
	}
	return out, nil
}

func associationNotFound(format string, args ...any) error {
	return shiftkey.Errorf("CustomDomainAssociationNotFoundFault", format, args...)
}

func checkDomainInput(domain, cert *string) error {
	switch {
	case domain == nil:
		return missing("CustomDomainName")
	case cert == nil:
		return missing("CustomDomainCertificateArn")
	case !shiftkey.ValidDomainName(*domain):
		return invalid("CustomDomainName %q is not a valid domain name.", *domain)
	case !shiftkey.ValidCertificateARN(*cert):
		return invalid("CustomDomainCertificateArn %q is not a valid ACM certificate ARN.", *cert)
	}
	return nil
}

// AssociateDomain creates (or, with modify, changes) the association of a
// domain with a cluster.
func (s *Service) AssociateDomain(ctx context.Context, caller *shiftkey.Caller, domain, cert, cluster *string, modify bool) (*shiftkey.CustomDomain, error) {
	if err := checkDomainInput(domain, cert); err != nil {
		return nil, err
	}
	if cluster == nil {
		return nil, missing("ClusterIdentifier")
	}
	action := "redshift:CreateCustomDomainAssociation"
	if modify {
		action = "redshift:ModifyCustomDomainAssociation"
	}
	c, err := s.authorizeCluster(ctx, caller, action, *cluster, nil)
	if err != nil {
		return nil, err
	}
	if !modify {
		d, err := s.domains().Associate(ctx, *domain, *cert, c.Identifier)
		if shiftkey.ErrorCode(err) == shiftkey.CodeConflict {
			return nil, shiftkey.Errorf("CustomCnameAssociationFault", "Custom domain name %s is already associated.", *domain)
		}
		return d, err
	}
	// The association must be the named cluster's: the caller is
	// authorized on that cluster only.
	d, ok, err := s.domains().Of(ctx, *domain, c.Identifier)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, associationNotFound("An association for custom domain %s on cluster %s was not found.", *domain, c.Identifier)
	}
	return d, s.domains().Reassociate(ctx, d, *cert, c.Identifier)
}

// DeleteDomain removes the association of a domain with a cluster.
func (s *Service) DeleteDomain(ctx context.Context, caller *shiftkey.Caller, cluster, domain *string) error {
	switch {
	case cluster == nil:
		return missing("ClusterIdentifier")
	case domain == nil:
		return missing("CustomDomainName")
	}
	c, err := s.authorizeCluster(ctx, caller, "redshift:DeleteCustomDomainAssociation", *cluster, nil)
	if err != nil {
		return err
	}
	ok, err := s.domains().Dissociate(ctx, *domain, c.Identifier)
	if err == nil && !ok {
		return associationNotFound("An association for custom domain %s on cluster %s was not found.", *domain, *cluster)
	}
	return err
}

// DescribeDomains lists the associations of the caller's region's
// clusters, filtered by name and/or certificate ARN; a filter that
// matches nothing is CustomDomainAssociationNotFoundFault.
func (s *Service) DescribeDomains(ctx context.Context, caller *shiftkey.Caller, domain, cert *string) ([]*shiftkey.CustomDomain, error) {
	if err := s.Authorizer.Authorize(ctx, caller, shiftkey.AuthzRequest{Action: "redshift:DescribeCustomDomainAssociations", Resource: "*"}); err != nil {
		return nil, err
	}
	clusters, err := s.regionClusters(ctx, caller)
	if err != nil {
		return nil, err
	}
	here := map[string]bool{}
	for _, c := range clusters {
		here[c.Identifier] = true
	}
	out, err := s.domains().List(ctx, func(id string) bool { return here[id] }, domain, cert)
	if err == nil && len(out) == 0 && (domain != nil || cert != nil) {
		return nil, associationNotFound("No custom domain association matches.")
	}
	return out, err
}
