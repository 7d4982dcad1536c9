package shiftkey

import (
	"context"
	"regexp"
	"time"
)

// Namespace is a Redshift Serverless namespace: the database objects and
// users a workgroup serves.
type Namespace struct {
	Name          string
	Region        string
	ID            string // UUID
	DBName        string
	AdminUsername string
	Status        string // "AVAILABLE", "DELETING"
	CreatedAt     time.Time
}

// Workgroup is a Redshift Serverless workgroup: like a cluster, one backend
// PostgreSQL reached through one gateway endpoint.
type Workgroup struct {
	Name         string
	Region       string // the AWS region it lives in (as for a Cluster)
	ID           string // UUID; the workgroup ARN uses it
	Namespace    string
	Status       string // "AVAILABLE", "CREATING", "MODIFYING", "DELETING"
	BaseCapacity int
	Endpoint     Endpoint
	Backend      Backend
	CreatedAt    time.Time
}

// CredentialScope is the key credentials of a workgroup are stored under,
// distinct from every cluster identifier (those never contain "/").
func (w *Workgroup) CredentialScope() string { return "workgroup/" + w.ID }

// ServerlessStore keeps namespaces and workgroups.
type ServerlessStore interface {
	CreateNamespace(ctx context.Context, n *Namespace) error        // CodeConflict when it exists
	Namespace(ctx context.Context, name string) (*Namespace, error) // CodeResourceNotFound
	Namespaces(ctx context.Context) ([]*Namespace, error)
	DeleteNamespace(ctx context.Context, name string) error
	CreateWorkgroup(ctx context.Context, w *Workgroup) error // CodeConflict when it exists
	UpdateWorkgroup(ctx context.Context, w *Workgroup) error
	Workgroup(ctx context.Context, name string) (*Workgroup, error) // CodeResourceNotFound
	Workgroups(ctx context.Context) ([]*Workgroup, error)
	DeleteWorkgroup(ctx context.Context, name string) error
}

// Redshift Serverless error codes.
const (
	CodeResourceNotFound = "ResourceNotFoundException"
	CodeConflict         = "ConflictException"
	CodeValidation       = "ValidationException"
)

// Provisioner runs the backends of workgroups created through the API: in
// dev mode a PostgreSQL server of their own and a gateway endpoint. Serve
// has none: its backends are declared in the config.
type Provisioner interface {
	// StartWorkgroup brings up w's backend and gateway, setting w.Backend
	// and w.Endpoint (port w.Endpoint.Port as requested).
	StartWorkgroup(ctx context.Context, w *Workgroup, ns *Namespace) error
	// MoveWorkgroup reopens w's gateway on another port.
	MoveWorkgroup(ctx context.Context, w *Workgroup, port int) error
	// StopWorkgroup closes w's gateway and removes its backend and data.
	StopWorkgroup(ctx context.Context, w *Workgroup) error
}

// CustomDomain associates a DNS name with a cluster or a workgroup, so
// credential calls (and TLS clients, by SNI) can name it instead.
type CustomDomain struct {
	Name           string // lower-case DNS name
	CertificateARN string
	Kind           string // "cluster" or "workgroup"
	Target         string // cluster identifier or workgroup name
	CertExpiry     time.Time
}

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

// SessionGrant is a group membership the gateway granted for live sessions;
// it is recorded before the GRANT so that a crash cannot leave it behind
// unnoticed.
type SessionGrant struct {
	Scope string // cluster identifier or workgroup credential scope
	Role  string
	Group string
}

// GrantStore records session-scoped grants.
type GrantStore interface {
	RecordGrant(ctx context.Context, g SessionGrant) error
	ForgetGrant(ctx context.Context, g SessionGrant) error
	Grants(ctx context.Context, scope string) ([]SessionGrant, error)
}

var certARN = regexp.MustCompile(`^arn:[\w+=/,.@-]+:acm:[\w+=/,.@-]*:[0-9]+:[\w+=,.@-]+(/[\w+=,.@-]+)*$`)

// ValidCertificateARN checks an ACM certificate ARN as the models do.
func ValidCertificateARN(s string) bool {
	return len(s) >= 20 && len(s) <= 2048 && certARN.MatchString(s)
}

// CertValidity is how long an association's certificate is reported valid:
// shiftkey's own CA issues it, there is no ACM certificate to read.
const CertValidity = 365 * 24 * time.Hour
