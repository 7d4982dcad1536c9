package redshift

import (
	"context"
	"strings"
	"time"

	"github.com/shiftkey/shiftkey"
)

func domainFault(format string, args ...any) error {
	return shiftkey.Errorf("CustomCnameAssociationFault", format, args...)
}

func (s *Service) checkDomainInput(domain, cert *string) error {
	switch {
	case domain == nil:
		return shiftkey.Errorf(shiftkey.CodeMissingParameter, "The request must contain the parameter CustomDomainName.")
	case cert == nil:
		return shiftkey.Errorf(shiftkey.CodeMissingParameter, "The request must contain the parameter CustomDomainCertificateArn.")
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
	if err := s.checkDomainInput(domain, cert); err != nil {
		return nil, err
	}
	if cluster == nil {
		return nil, shiftkey.Errorf(shiftkey.CodeMissingParameter, "The request must contain the parameter ClusterIdentifier.")
	}
	action := "redshift:CreateCustomDomainAssociation"
	if modify {
		action = "redshift:ModifyCustomDomainAssociation"
	}
	c, err := s.authorizeCluster(ctx, caller, action, *cluster, nil)
	if err != nil {
		return nil, err
	}
	d := &shiftkey.CustomDomain{Name: strings.ToLower(*domain), CertificateARN: *cert, Kind: "cluster", Target: c.Identifier, CertExpiry: s.now().Add(shiftkey.CertValidity).Truncate(time.Second)}
	if !modify {
		if err := s.Store.CreateCustomDomain(ctx, d); shiftkey.ErrorCode(err) == shiftkey.CodeConflict {
			return nil, domainFault("Custom domain name %s is already associated.", *domain)
		} else if err != nil {
			return nil, err
		}
		return d, nil
	}
	old, err := s.Store.CustomDomain(ctx, d.Name)
	if shiftkey.ErrorCode(err) == shiftkey.CodeResourceNotFound || err == nil && old.Kind != "cluster" {
		return nil, shiftkey.Errorf("CustomDomainAssociationNotFoundFault", "An association for custom domain %s was not found.", *domain)
	}
	if err != nil {
		return nil, err
	}
	return d, s.Store.UpdateCustomDomain(ctx, d)
}

// DeleteDomain removes the association of a domain with a cluster.
func (s *Service) DeleteDomain(ctx context.Context, caller *shiftkey.Caller, cluster, domain *string) error {
	switch {
	case cluster == nil:
		return shiftkey.Errorf(shiftkey.CodeMissingParameter, "The request must contain the parameter ClusterIdentifier.")
	case domain == nil:
		return shiftkey.Errorf(shiftkey.CodeMissingParameter, "The request must contain the parameter CustomDomainName.")
	}
	c, err := s.authorizeCluster(ctx, caller, "redshift:DeleteCustomDomainAssociation", *cluster, nil)
	if err != nil {
		return err
	}
	d, err := s.Store.CustomDomain(ctx, strings.ToLower(*domain))
	if shiftkey.ErrorCode(err) == shiftkey.CodeResourceNotFound || err == nil && (d.Kind != "cluster" || d.Target != c.Identifier) {
		return shiftkey.Errorf("CustomDomainAssociationNotFoundFault", "An association for custom domain %s on cluster %s was not found.", *domain, *cluster)
	}
	if err != nil {
		return err
	}
	return s.Store.DeleteCustomDomain(ctx, d.Name)
}

// DescribeDomains lists cluster associations, filtered by name and/or
// certificate ARN; a filter that matches nothing is
// CustomDomainAssociationNotFoundFault.
func (s *Service) DescribeDomains(ctx context.Context, caller *shiftkey.Caller, domain, cert *string) ([]*shiftkey.CustomDomain, error) {
	if err := s.Authorizer.Authorize(ctx, caller, shiftkey.AuthzRequest{Action: "redshift:DescribeCustomDomainAssociations", Resource: "*"}); err != nil {
		return nil, err
	}
	all, err := s.Store.CustomDomains(ctx)
	if err != nil {
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
	var out []*shiftkey.CustomDomain
	for _, d := range all {
		if d.Kind != "cluster" || !here[d.Target] || domain != nil && !strings.EqualFold(d.Name, *domain) || cert != nil && d.CertificateARN != *cert {
			continue
		}
		out = append(out, d)
	}
	if len(out) == 0 && (domain != nil || cert != nil) {
		return nil, shiftkey.Errorf("CustomDomainAssociationNotFoundFault", "No custom domain association matches.")
	}
	return out, nil
}
