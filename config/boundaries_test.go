package config

import (
	"strings"
	"testing"
)

// A user's or role's permissions_boundary names a policy under
// iam.policies, as managed_policies do, and reaches Reconcile.
func TestConfigPermissionsBoundary(t *testing.T) {
	const base = "store: {sqlite: /tmp/x.db}\n"
	const policy = `{name: b, document: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:*","Resource":"*"}]}'}`
	const trust = `'{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}]}'`
	noEnv := func(string) (string, bool) { return "", false }
	for _, tt := range []struct{ yaml, want string }{
		{base + `iam: {users: [{name: u, permissions_boundary: missing}]}`, "iam.users[0].permissions_boundary: no policy \"missing\" under iam.policies"},
		{base + `iam: {roles: [{name: r, trust_policy: ` + trust + `, permissions_boundary: missing}]}`, "iam.roles[0].permissions_boundary: no policy \"missing\" under iam.policies"},
	} {
		if _, err := Parse(strings.NewReader(tt.yaml), noEnv); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("config %q: error %v, want %s", tt.yaml, err, tt.want)
		}
	}
	cfg, err := Parse(strings.NewReader(base+`iam: {policies: [`+policy+`], users: [{name: u, permissions_boundary: B}], roles: [{name: r, trust_policy: `+trust+`, permissions_boundary: b}]}`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.IAM.Declared("000000000000")
	if d.Users[0].PermissionsBoundary != "B" || d.Roles[0].PermissionsBoundary != "b" {
		t.Fatalf("declared: user %q, role %q", d.Users[0].PermissionsBoundary, d.Roles[0].PermissionsBoundary)
	}
}
