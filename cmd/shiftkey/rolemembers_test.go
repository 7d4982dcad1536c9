package main

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
)

// A login role that belongs to a superuser role, or to the provisioning
// role, becomes it with SET ROLE: a session as it is a session as the
// role the rules never hand out. Such a role is refused at login like a
// superuser (28000), whatever the membership's path.
func TestMembersOfRolesNeverIssuedAreRefused(t *testing.T) {
	c, err := dev.Store.Cluster(context.Background(), DevCluster)
	if err != nil {
		t.Fatal(err)
	}
	provisioner := c.Backend.AdminUser
	adminExec(t, dev,
		`CREATE ROLE rm_root NOLOGIN SUPERUSER`,
		`CREATE ROLE rm_mid NOLOGIN`, `GRANT rm_root TO rm_mid`,
		`CREATE ROLE rm_direct LOGIN`, `GRANT rm_root TO rm_direct`,
		`CREATE ROLE rm_nested LOGIN`, `GRANT rm_mid TO rm_nested`,
		`CREATE ROLE rm_master LOGIN`, `GRANT `+quoteIdent(c.MasterUsername)+` TO rm_master`,
		`CREATE ROLE rm_prov LOGIN`, `GRANT `+quoteIdent(provisioner)+` TO rm_prov`,
		`CREATE ROLE rm_prov_mid NOLOGIN`, `GRANT `+quoteIdent(provisioner)+` TO rm_prov_mid`,
		`CREATE ROLE rm_prov_nested LOGIN`, `GRANT rm_prov_mid TO rm_prov_nested`)
	t.Cleanup(func() {
		adminExec(t, dev, `DROP ROLE IF EXISTS rm_direct`, `DROP ROLE IF EXISTS rm_nested`, `DROP ROLE IF EXISTS rm_master`,
			`DROP ROLE IF EXISTS rm_prov`, `DROP ROLE IF EXISTS rm_prov_nested`, `DROP ROLE IF EXISTS rm_prov_mid`,
			`DROP ROLE IF EXISTS rm_mid`, `DROP ROLE IF EXISTS rm_root`)
	})
	for _, tc := range []struct{ user, becomes string }{
		{"rm_direct", "rm_root"},
		{"rm_nested", "rm_root"},
		{"rm_master", c.MasterUsername},
		{"rm_prov", provisioner},
		{"rm_prov_nested", provisioner},
	} {
		cr := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String(tc.user), DbName: aws.String("dev")})
		conn, err := connect(dev, cr, "dev")
		if err == nil {
			what := "SET ROLE " + tc.becomes
			if _, err := conn.Exec(context.Background(), "SET ROLE "+quoteIdent(tc.becomes)); err != nil {
				what += ": " + err.Error()
			} else {
				var super string
				conn.QueryRow(context.Background(), "SELECT current_setting('is_superuser') || ' as ' || current_user").Scan(&super)
				what += " → is_superuser " + super
			}
			conn.Close(context.Background())
			t.Errorf("%s logged in (%s)", tc.user, what)
			continue
		}
		if sqlState(err) != "28000" || !strings.Contains(err.Error(), tc.becomes) {
			t.Errorf("%s: %v, want 28000 naming %s", tc.user, err, tc.becomes)
		}
	}
	// A member of a plain group logs in as before.
	adminExec(t, dev, `CREATE ROLE rm_plain_group NOLOGIN`, `CREATE ROLE rm_plain LOGIN`, `GRANT rm_plain_group TO rm_plain`)
	t.Cleanup(func() { adminExec(t, dev, `DROP ROLE IF EXISTS rm_plain`, `DROP ROLE IF EXISTS rm_plain_group`) })
	cr := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String("rm_plain"), DbName: aws.String("dev")})
	if u := currentUser(t, mustConnect(t, dev, cr, "dev")); u != "rm_plain" {
		t.Fatalf("session runs as %q", u)
	}
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
