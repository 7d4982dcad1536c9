package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
)

// Finding 13.4: the provisioning role is never issued.
func TestFinding4ProvisioningRoleIsNotIssued(t *testing.T) {
	c, err := dev.Store.Cluster(context.Background(), DevCluster)
	if err != nil {
		t.Fatal(err)
	}
	admin := c.Backend.AdminUser
	for _, autoCreate := range []bool{false, true} {
		_, err := apiClient(dev).GetClusterCredentials(context.Background(), &redshift.GetClusterCredentialsInput{
			ClusterIdentifier: aws.String(DevCluster), DbUser: aws.String(admin), AutoCreate: aws.Bool(autoCreate)})
		if apiErrorCode(err) != "InvalidParameterValue" || !strings.Contains(err.Error(), "provisioning role") {
			t.Fatalf("credential for the provisioning role %s (AutoCreate %v): %v", admin, autoCreate, err)
		}
	}
	if admin == c.MasterUsername {
		t.Fatalf("dev's provisioning role is its master user %s: the master user could not be issued", admin)
	}
}

// Finding 13.4: a superuser other than the master user is refused at login
// with the reason; the master user (a superuser in dev, as in Redshift)
// logs in.
func TestFinding4SuperuserRefusedUnlessMaster(t *testing.T) {
	adminExec(t, dev, `CREATE ROLE rootish LOGIN SUPERUSER`)
	t.Cleanup(func() { adminExec(t, dev, `DROP ROLE rootish`) })
	c := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String("rootish"), DbName: aws.String("dev")})
	conn, err := connect(dev, c, "dev")
	if err == nil {
		conn.Close(context.Background())
		t.Fatal("logged in as a superuser that is not the master user")
	}
	if sqlState(err) != "28000" || !strings.Contains(err.Error(), "superuser") {
		t.Fatalf("got %v, want 28000 naming the superuser rule", err)
	}
	cl, err := dev.Store.Cluster(context.Background(), DevCluster)
	if err != nil {
		t.Fatal(err)
	}
	m := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String(cl.MasterUsername), DbName: aws.String("dev")})
	if u := currentUser(t, mustConnect(t, dev, m, "dev")); u != cl.MasterUsername {
		t.Fatalf("master user session runs as %q", u)
	}
}

// Finding 13.4: only plain group roles are granted for DbGroups.
func TestFinding4PrivilegedGroupsAreNotGranted(t *testing.T) {
	privileged := map[string]string{
		"g_login":       "CREATE ROLE g_login LOGIN",
		"g_super":       "CREATE ROLE g_super SUPERUSER NOLOGIN",
		"g_createrole":  "CREATE ROLE g_createrole CREATEROLE NOLOGIN",
		"g_createdb":    "CREATE ROLE g_createdb CREATEDB NOLOGIN",
		"g_bypassrls":   "CREATE ROLE g_bypassrls BYPASSRLS NOLOGIN",
		"g_replication": "CREATE ROLE g_replication REPLICATION NOLOGIN",
		"g_exec":        "CREATE ROLE g_exec NOLOGIN; GRANT pg_execute_server_program TO g_exec",
		"g_nested":      "CREATE ROLE g_nested NOLOGIN; GRANT g_exec TO g_nested",
	}
	var groups []string
	for _, name := range []string{"g_login", "g_super", "g_createrole", "g_createdb", "g_bypassrls", "g_replication", "g_exec", "g_nested"} {
		for _, stmt := range strings.Split(privileged[name], "; ") {
			adminExec(t, dev, stmt)
		}
		groups = append(groups, name)
	}
	adminExec(t, dev, "CREATE ROLE g_plain NOLOGIN")
	t.Cleanup(func() {
		adminExec(t, dev, "DROP ROLE IF EXISTS g_nested", "DROP ROLE IF EXISTS g_exec", "DROP ROLE IF EXISTS g_login", "DROP ROLE IF EXISTS g_super",
			"DROP ROLE IF EXISTS g_createrole", "DROP ROLE IF EXISTS g_createdb", "DROP ROLE IF EXISTS g_bypassrls", "DROP ROLE IF EXISTS g_replication",
			"DROP ROLE IF EXISTS g_plain")
	})
	c := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String("grouper"), DbName: aws.String("dev"),
		AutoCreate: aws.Bool(true), DbGroups: append(groups, "g_plain")})
	conn := mustConnect(t, dev, c, "dev")
	for _, g := range append(groups, "g_plain") {
		if member, want := sessionInGroup(t, conn, g), g == "g_plain"; member != want {
			t.Errorf("member of %s: %v, want %v", g, member, want)
		}
	}
}

func apiErrorCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}
