package serverless

import (
	"context"
	"strings"
	"time"

	"github.com/shiftkey/shiftkey"
)

type domainJSON struct {
	WorkgroupName                     string `json:"workgroupName"`
	CustomDomainName                  string `json:"customDomainName"`
	CustomDomainCertificateArn        string `json:"customDomainCertificateArn"`
	CustomDomainCertificateExpiryTime string `json:"customDomainCertificateExpiryTime"`
}

func toDomainJSON(d *shiftkey.CustomDomain) domainJSON {
	return domainJSON{d.Target, d.Name, d.CertificateARN, isoTime(d.CertExpiry)}
}

// domainInput reads and checks customDomainName and, when withCert,
// customDomainCertificateArn.
func (r *request) domainInput(withCert bool) (domain, cert string, err error) {
	d, c := r.str("customDomainName"), r.str("customDomainCertificateArn")
	if r.err != nil {
		return "", "", r.err
	}
	if d == nil {
		return "", "", validation("1 validation error detected: Value null at 'customDomainName' failed to satisfy constraint: Member must not be null")
	}
	if !shiftkey.ValidDomainName(*d) {
		return "", "", validation("1 validation error detected: Value '%s' at 'customDomainName' failed to satisfy constraint: Member must be a valid domain name", *d)
	}
	if withCert {
		if c == nil {
			return "", "", validation("1 validation error detected: Value null at 'customDomainCertificateArn' failed to satisfy constraint: Member must not be null")
		}
		if !shiftkey.ValidCertificateARN(*c) {
			return "", "", validation("1 validation error detected: Value '%s' at 'customDomainCertificateArn' failed to satisfy constraint: Member must be an ACM certificate ARN", *c)
		}
		cert = *c
	}
	return strings.ToLower(*d), cert, nil
}

// workgroupDomain is the association of domain with workgroup w, or
// ResourceNotFoundException.
func (s *Service) workgroupDomain(ctx context.Context, w *shiftkey.Workgroup, domain string) (*shiftkey.CustomDomain, error) {
	d, err := s.Store.CustomDomain(ctx, domain)
	if shiftkey.ErrorCode(err) == shiftkey.CodeResourceNotFound || err == nil && (d.Kind != "workgroup" || d.Target != w.Name) {
		return nil, shiftkey.Errorf(shiftkey.CodeResourceNotFound, "Custom domain association %s for workgroup %s not found.", domain, w.Name)
	}
	return d, err
}

func (s *Service) createDomain(ctx context.Context, c *shiftkey.Caller, r *request) (any, error) {
	domain, cert, err := r.domainInput(true)
	if err != nil {
		return nil, err
	}
	w, err := s.workgroup(ctx, c, r, "CreateCustomDomainAssociation")
	if err != nil {
		return nil, err
	}
	d := &shiftkey.CustomDomain{Name: domain, CertificateARN: cert, Kind: "workgroup", Target: w.Name, CertExpiry: s.now().Add(shiftkey.CertValidity).Truncate(time.Second)}
	if err := s.Store.CreateCustomDomain(ctx, d); err != nil {
		return nil, err
	}
	return toDomainJSON(d), nil
}

func (s *Service) updateDomain(ctx context.Context, c *shiftkey.Caller, r *request) (any, error) {
	domain, cert, err := r.domainInput(true)
	if err != nil {
		return nil, err
	}
	w, err := s.workgroup(ctx, c, r, "UpdateCustomDomainAssociation")
	if err != nil {
		return nil, err
	}
	d, err := s.workgroupDomain(ctx, w, domain)
	if err != nil {
		return nil, err
	}
	d.CertificateARN, d.CertExpiry = cert, s.now().Add(shiftkey.CertValidity).Truncate(time.Second)
	return toDomainJSON(d), s.Store.UpdateCustomDomain(ctx, d)
}

func (s *Service) getDomain(ctx context.Context, c *shiftkey.Caller, r *request) (any, error) {
	domain, _, err := r.domainInput(false)
	if err != nil {
		return nil, err
	}
	w, err := s.workgroup(ctx, c, r, "GetCustomDomainAssociation")
	if err != nil {
		return nil, err
	}
	d, err := s.workgroupDomain(ctx, w, domain)
	if err != nil {
		return nil, err
	}
	return toDomainJSON(d), nil
}

func (s *Service) deleteDomain(ctx context.Context, c *shiftkey.Caller, r *request) (any, error) {
	domain, _, err := r.domainInput(false)
	if err != nil {
		return nil, err
	}
	w, err := s.workgroup(ctx, c, r, "DeleteCustomDomainAssociation")
	if err != nil {
		return nil, err
	}
	if _, err := s.workgroupDomain(ctx, w, domain); err != nil {
		return nil, err
	}
	return struct{}{}, s.Store.DeleteCustomDomain(ctx, domain)
}

func (s *Service) listDomains(ctx context.Context, c *shiftkey.Caller, r *request) (any, error) {
	domain, cert := r.str("customDomainName"), r.str("customDomainCertificateArn")
	if t := r.str("nextToken"); t != nil && (len(*t) < 8 && *t != "" && strings.Trim(*t, "0123456789") != "") {
		return nil, validation("1 validation error detected: Value at 'nextToken' failed to satisfy constraint: Member must have length between 8 and 1024")
	}
	if err := s.authorize(ctx, c, "ListCustomDomainAssociations", "*"); err != nil {
		return nil, err
	}
	all, err := s.Store.CustomDomains(ctx)
	if err != nil {
		return nil, err
	}
	wgs, err := s.Store.Workgroups(ctx)
	if err != nil {
		return nil, err
	}
	here := map[string]bool{}
	for _, w := range wgs {
		here[w.Name] = shiftkey.InRegion(w.Region, c.Region)
	}
	var kept []*shiftkey.CustomDomain
	for _, d := range all {
		if d.Kind != "workgroup" || !here[d.Target] || domain != nil && !strings.EqualFold(d.Name, *domain) || cert != nil && d.CertificateARN != *cert {
			continue
		}
		kept = append(kept, d)
	}
	start, end, next, err := r.page(len(kept))
	if err != nil {
		return nil, err
	}
	out := []domainJSON{}
	for _, d := range kept[start:end] {
		out = append(out, toDomainJSON(d))
	}
	return map[string]any{"associations": out, "nextToken": next}, nil
}
