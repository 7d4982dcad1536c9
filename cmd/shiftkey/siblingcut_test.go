package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/jackc/pgx/v5"
)

// serve with two clusters on one PostgreSQL server (dev's): a role's
// membership is the server's, so a session through the second cluster's
// gateway may SET ROLE to the group a session through the first one's was
// granted. When the first gateway finds the group unsafe and revokes it,
// the second gateway's session of the role is ended too, with the same
// FATAL: it would keep acting as the group.
func TestAGroupThatTurnedUnsafeEndsTheRolesSessionsThroughSiblingGateways(t *testing.T) {
	ctx := context.Background()
	group, user := fresh("xsib_grp"), fresh("xsib_user")
	groupToTurnUnsafe(t, group)
	dir := t.TempDir()
	backend := `backend: {host: ` + dev.PG.SocketDir() + `, port: ` + itoa(dev.PG.Port()) + `, admin_user: ` + dev.PG.Superuser() + `}`
	s := startServe(t, `
store: {sqlite: `+filepath.Join(dir, "serve.db")+`}
api: {listen: "127.0.0.1:0"}
admin: {listen: "off"}
clusters:
  - identifier: sib-one
    database: dev
    gateway: {listen: "127.0.0.1:0"}
    `+backend+`
  - identifier: sib-two
    database: dev
    gateway: {listen: "127.0.0.1:0"}
    `+backend+`
iam:
  users:
    - name: ops
      access_keys: [{id: "${TEST_KEY_ID}", secret: "${TEST_SECRET}"}]
      policies:
        all: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:*","Resource":"*"}]}'
`, map[string]string{"TEST_KEY_ID": "AKIASIBLINGCUT000001", "TEST_SECRET": "sibling-secret-0123456789"})
	rs := redshift.New(redshift.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.APIURL), Retryer: aws.NopRetryer{},
		Credentials: provider(aws.Credentials{AccessKeyID: "AKIASIBLINGCUT000001", SecretAccessKey: "sibling-secret-0123456789"})})
	issue := func(cluster string, groups ...string) *redshift.GetClusterCredentialsOutput {
		t.Helper()
		out, err := rs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
			ClusterIdentifier: aws.String(cluster), DbUser: aws.String(user), AutoCreate: aws.Bool(true), DbGroups: groups})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	connect := func(cluster string, c *redshift.GetClusterCredentialsOutput) (*pgx.Conn, error) {
		cl, err := s.Store.Cluster(ctx, cluster)
		if err != nil {
			t.Fatal(err)
		}
		return pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d dbname=dev sslmode=disable user=%s password=%s",
			cl.Endpoint.Address, cl.Endpoint.Port, aws.ToString(c.DbUser), aws.ToString(c.DbPassword)))
	}
	login := func(cluster string, c *redshift.GetClusterCredentialsOutput) *pgx.Conn {
		t.Helper()
		conn, err := connect(cluster, c)
		if err != nil {
			t.Fatalf("login through %s: %v", cluster, err)
		}
		t.Cleanup(func() { conn.Close(ctx) })
		return conn
	}

	withGroup := issue("sib-one", group)
	login("sib-one", withGroup)
	if !member(t, user, group) {
		t.Fatalf("%s was not granted %s for its session through sib-one", user, group)
	}
	// Through the other cluster's gateway the role never asked for the
	// group, but the membership is the server's.
	onTwo := login("sib-two", issue("sib-two"))
	if _, err := onTwo.Exec(ctx, "SET ROLE "+group); err != nil {
		t.Fatalf("SET ROLE %s in the role's session through sib-two: %v", group, err)
	}

	revokedAt := revokedAsUnsafe(t, user, group, "a new session through sib-one", func() (*pgx.Conn, error) {
		return connect("sib-one", withGroup)
	})
	endedAsUnsafe(t, onTwo, user, group, revokedAt, "the role's session through sib-two that ran SET ROLE "+group)
}
