package sqlite

import (
	"context"
	"strings"

	"github.com/shiftkey/shiftkey"
)

// CreateCustomDomain stores an association.
func (d *DB) CreateCustomDomain(ctx context.Context, c *shiftkey.CustomDomain) error {
	return d.insert(ctx, shiftkey.DomainAssociated(c.Name),
		`INSERT INTO custom_domains (name, cert_arn, kind, target, cert_expiry) VALUES (?,?,?,?,?)`,
		strings.ToLower(c.Name), c.CertificateARN, c.Kind, c.Target, millis(c.CertExpiry))
}

const domainColumns = `name, cert_arn, kind, target, cert_expiry`

var customDomains = byName[*shiftkey.CustomDomain]{"custom_domains", domainColumns, scanDomain, shiftkey.DomainNotAssociated}

func scanDomain(row scanner) (*shiftkey.CustomDomain, error) {
	var c shiftkey.CustomDomain
	var exp int64
	if err := row.Scan(&c.Name, &c.CertificateARN, &c.Kind, &c.Target, &exp); err != nil {
		return nil, err
	}
	c.CertExpiry = fromMillis(exp)
	return &c, nil
}

// CustomDomain returns the association of a name (any case).
func (d *DB) CustomDomain(ctx context.Context, name string) (*shiftkey.CustomDomain, error) {
	return customDomains.get(ctx, d.db, name)
}

// CustomDomains lists associations by name.
func (d *DB) CustomDomains(ctx context.Context) ([]*shiftkey.CustomDomain, error) {
	return customDomains.list(ctx, d.db)
}

// UpdateCustomDomain replaces an association's certificate and target.
func (d *DB) UpdateCustomDomain(ctx context.Context, c *shiftkey.CustomDomain) error {
	return d.execOne(ctx, shiftkey.DomainNotAssociated(c.Name), `UPDATE custom_domains SET cert_arn = ?, kind = ?, target = ?, cert_expiry = ? WHERE name = ?`,
		c.CertificateARN, c.Kind, c.Target, millis(c.CertExpiry), c.Name)
}

// DeleteCustomDomain removes an association.
func (d *DB) DeleteCustomDomain(ctx context.Context, name string) error {
	return customDomains.delete(ctx, d, name)
}
