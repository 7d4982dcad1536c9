package serverless

import (
	"context"
	"strings"

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

func (s *Service) domains() shiftkey.Domains {
	return shiftkey.Domains{Store: s.Store, Kind: shiftkey.DomainWorkgroup, Now: s.now}
}

// workgroupDomain is the association of domain with workgroup w, or
// ResourceNotFoundException.
func (s *Service) workgroupDomain(ctx context.Context, w *shiftkey.Workgroup, domain string) (*shiftkey.CustomDomain, error) {
	d, ok, err := s.domains().Of(ctx, domain, w.Name)
	if err == nil && !ok {
		return nil, domainNotFound(w, domain)
	}
	return d, err
}

func domainNotFound(w *shiftkey.Workgroup, domain string) error {
	return shiftkey.Errorf(shiftkey.CodeResourceNotFound, "Custom domain association %s for workgroup %s not found.", domain, w.Name)
}

// domainCall reads the domain (with its certificate when withCert) and
// the workgroup of a call, authorizing action on the workgroup.
func (s *Service) domainCall(ctx context.Context, c *shiftkey.Caller, r *request, action string, withCert bool) (w *shiftkey.Workgroup, domain, cert string, err error) {
	if domain, cert, err = r.domainInput(withCert); err != nil {
		return nil, "", "", err
	}
	w, err = s.workgroup(ctx, c, r, action)
	return w, domain, cert, err
}

func (s *Service) createDomain(ctx context.Context, c *shiftkey.Caller, r *request) (any, error) {
	w, domain, cert, err := s.domainCall(ctx, c, r, "CreateCustomDomainAssociation", true)
	if err != nil {
		return nil, err
	}
	d, err := s.domains().Associate(ctx, domain, cert, w.Name)
	if err != nil {
		return nil, err
	}
	return toDomainJSON(d), nil
}

func (s *Service) updateDomain(ctx context.Context, c *shiftkey.Caller, r *request) (any, error) {
	w, domain, cert, err := s.domainCall(ctx, c, r, "UpdateCustomDomainAssociation", true)
	if err != nil {
		return nil, err
	}
	d, err := s.workgroupDomain(ctx, w, domain)
	if err != nil {
		return nil, err
	}
	if err := s.domains().Reassociate(ctx, d, cert, w.Name); err != nil {
		return nil, err
	}
	return toDomainJSON(d), nil
}

func (s *Service) getDomain(ctx context.Context, c *shiftkey.Caller, r *request) (any, error) {
	w, domain, _, err := s.domainCall(ctx, c, r, "GetCustomDomainAssociation", false)
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
	w, domain, _, err := s.domainCall(ctx, c, r, "DeleteCustomDomainAssociation", false)
	if err != nil {
		return nil, err
	}
	ok, err := s.domains().Dissociate(ctx, domain, w.Name)
	if err == nil && !ok {
		return nil, domainNotFound(w, domain)
	}
	return struct{}{}, err
}

func (s *Service) listDomains(ctx context.Context, c *shiftkey.Caller, r *request) (any, error) {
	domain, cert := r.str("customDomainName"), r.str("customDomainCertificateArn")
	if t := r.str("nextToken"); t != nil && (len(*t) < 8 && *t != "" && strings.Trim(*t, "0123456789") != "") {
		return nil, validation("1 validation error detected: Value at 'nextToken' failed to satisfy constraint: Member must have length between 8 and 1024")
	}
	if err := s.authorize(ctx, c, "ListCustomDomainAssociations", "*"); err != nil {
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
	kept, err := s.domains().List(ctx, func(name string) bool { return here[name] }, domain, cert)
	if err != nil {
		return nil, err
	}
	kept, next, err := page(r, kept, func(d *shiftkey.CustomDomain) string { return d.Name })
	if err != nil {
		return nil, err
	}
	out := []domainJSON{}
	for _, d := range kept {
		out = append(out, toDomainJSON(d))
	}
	return map[string]any{"associations": out, "nextToken": next}, nil
}
