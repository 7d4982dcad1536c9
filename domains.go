package shiftkey

import (
	"context"
	"regexp"
	"strings"
	"time"
)

// CustomDomain associates a DNS name with a cluster or a workgroup, so
// credential calls (and TLS clients, by SNI) can name it instead.
type CustomDomain struct {
	Name           string // lower-case DNS name
	CertificateARN string
	Kind           string // DomainCluster or DomainWorkgroup
	Target         string // cluster identifier or workgroup name
	CertExpiry     time.Time
}

// What a custom domain names.
const (
	DomainCluster   = "cluster"
	DomainWorkgroup = "workgroup"
)

// CustomDomainStore keeps custom domain associations.
type CustomDomainStore interface {
	CreateCustomDomain(ctx context.Context, d *CustomDomain) error        // CodeConflict when the name is taken
	CustomDomain(ctx context.Context, name string) (*CustomDomain, error) // CodeResourceNotFound
	CustomDomains(ctx context.Context) ([]*CustomDomain, error)
	UpdateCustomDomain(ctx context.Context, d *CustomDomain) error
	DeleteCustomDomain(ctx context.Context, name string) error
}

// ValidDomainName checks a custom domain name: 1-253 characters, labels of
// 1-63 letters, digits and hyphens not starting or ending with a hyphen, at
// least two labels. (The model's pattern uses look-ahead, which Go's regexp
// lacks, hence the hand-written check.)
func ValidDomainName(s string) bool {
	if len(s) < 1 || len(s) > 253 {
		return false
	}
	labels := 0
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			c := s[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
			continue
		}
		l := s[start:i]
		if len(l) < 1 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		labels++
		start = i + 1
	}
	return labels >= 2
}

var certARN = regexp.MustCompile(`^arn:[\w+=/,.@-]+:acm:[\w+=/,.@-]*:[0-9]+:[\w+=,.@-]+(/[\w+=,.@-]+)*$`)

// ValidCertificateARN checks an ACM certificate ARN as the models do.
func ValidCertificateARN(s string) bool {
	return len(s) >= 20 && len(s) <= 2048 && certARN.MatchString(s)
}

// CertValidity is how long an association's certificate is reported valid:
// shiftkey's own CA issues it, there is no ACM certificate to read.
const CertValidity = 365 * 24 * time.Hour

// Domains is the custom domain logic Redshift (clusters) and Redshift
// Serverless (workgroups) share: the associations of one kind of target.
// It reports "no such association" as ok false, so that each API answers
// with its own error codes and shapes; a name already taken is the store's
// CodeConflict.
type Domains struct {
	Store CustomDomainStore
	Kind  string           // DomainCluster or DomainWorkgroup
	Now   func() time.Time // nil → time.Now
}

func (a Domains) certExpiry() time.Time {
	return Now(a.Now).Add(CertValidity).Truncate(time.Second)
}

// Of returns the association of name (any case) when it is of a's kind
// and, unless target is "", names that target.
func (a Domains) Of(ctx context.Context, name, target string) (d *CustomDomain, ok bool, err error) {
	d, err = a.Store.CustomDomain(ctx, strings.ToLower(name))
	switch {
	case ErrorCode(err) == CodeResourceNotFound:
		return nil, false, nil
	case err != nil:
		return nil, false, err
	case d.Kind != a.Kind || target != "" && d.Target != target:
		return nil, false, nil
	}
	return d, true, nil
}

// Associate stores name → target with the certificate cert.
func (a Domains) Associate(ctx context.Context, name, cert, target string) (*CustomDomain, error) {
	d := &CustomDomain{Name: strings.ToLower(name), CertificateARN: cert, Kind: a.Kind, Target: target, CertExpiry: a.certExpiry()}
	if err := a.Store.CreateCustomDomain(ctx, d); err != nil {
		return nil, err
	}
	return d, nil
}

// Reassociate points the existing association d at target with the
// certificate cert, whose validity starts again.
func (a Domains) Reassociate(ctx context.Context, d *CustomDomain, cert, target string) error {
	d.CertificateARN, d.Target, d.CertExpiry = cert, target, a.certExpiry()
	return a.Store.UpdateCustomDomain(ctx, d)
}

// Dissociate removes the association of name with target; ok is false
// when there is none.
func (a Domains) Dissociate(ctx context.Context, name, target string) (ok bool, err error) {
	d, ok, err := a.Of(ctx, name, target)
	if !ok || err != nil {
		return false, err
	}
	return true, a.Store.DeleteCustomDomain(ctx, d.Name)
}

// List returns the associations of a's kind whose target here reports
// (the caller's region), filtered by name (any case) and certificate ARN
// when they are given.
func (a Domains) List(ctx context.Context, here func(target string) bool, name, cert *string) ([]*CustomDomain, error) {
	all, err := a.Store.CustomDomains(ctx)
	if err != nil {
		return nil, err
	}
	var out []*CustomDomain
	for _, d := range all {
		if d.Kind != a.Kind || !here(d.Target) || name != nil && !strings.EqualFold(d.Name, *name) || cert != nil && d.CertificateARN != *cert {
			continue
		}
		out = append(out, d)
	}
	return out, nil
}
