package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/jackc/pgx/v5"
)

// Two declared clusters on one backend server (as a cluster and a
// workgroup are in the example config): one role's sessions through both
// ask for the same group. The membership is the server's: the first
// session's end leaves it to the second's, and the last one's revokes it.
func TestGatewaysOnOneServerShareASessionGroup(t *testing.T) {
	ctx := context.Background()
	group := "sib_readers_" + fresh("g")
	adminExec(t, dev, "CREATE ROLE "+group+" NOLOGIN")
	t.Cleanup(func() {
		for deadline := time.Now().Add(10 * time.Second); member(t, "sibuser", group) && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		adminExec(t, dev, "DROP ROLE "+group)
	})
	backend := `{host: ` + dev.PG.SocketDir() + `, port: ` + itoa(dev.PG.Port()) + `, admin_user: ` + dev.PG.Superuser() + `}`
	yaml := `
store: {sqlite: ` + filepath.Join(t.TempDir(), "serve.db") + `}
api: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0"}
clusters:
  - {identifier: sib-a, database: dev, gateway: {listen: "127.0.0.1:0"}, backend: ` + backend + `}
  - {identifier: sib-b, database: dev, gateway: {listen: "127.0.0.1:0"}, backend: ` + backend + `}
iam:
  users:
    - name: ops
      access_keys: [{id: "${OPS_KEY_ID}", secret: "${OPS_SECRET}"}]
      policies:
        creds: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["redshift:GetClusterCredentials","redshift:CreateClusterUser","redshift:JoinGroup"],"Resource":"*"}]}'
`
	s := startServe(t, yaml, opsEnv)
	login := func(cluster string) *pgx.Conn {
		t.Helper()
		out, err := opsClient(s, opsEnv["OPS_SECRET"]).GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String(cluster),
			DbUser: aws.String("sibuser"), AutoCreate: aws.Bool(true), DbGroups: []string{group}})
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.Store.Cluster(ctx, cluster)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := pgx.Connect(ctx, "host="+c.Endpoint.Address+" port="+itoa(c.Endpoint.Port)+" dbname=dev sslmode=disable user="+
			aws.ToString(out.DbUser)+" password="+aws.ToString(out.DbPassword))
		if err != nil {
			t.Fatalf("login through %s: %v", cluster, err)
		}
		return conn
	}
	// held is the gateway's count of session group memberships it holds:
	// 0 once a session's end has released its group (revoked or left).
	held := func(scope string) float64 {
		fams, _ := scrape(t, s.AdminURL)
		return sample(fams, "shiftkey_session_grants_held", map[string]string{"scope": scope})
	}
	inGroup := func(c *pgx.Conn) bool { return sessionInGroup(t, c, group) }

	a := login("sib-a")
	b := login("sib-b")
	if !inGroup(a) || !inGroup(b) {
		t.Fatalf("both sessions asked for %s: a %v, b %v", group, inGroup(a), inGroup(b))
	}
	a.Close(ctx)
	waitUntil(t, 10*time.Second, "sib-a's session released its group", func() bool { return held("sib-a") == 0 })
	if !inGroup(b) {
		t.Fatal("sib-a's session end revoked the group from sib-b's live session")
	}
	b.Close(ctx)
	waitUntil(t, 10*time.Second, "the last session's end revokes the group", func() bool { return !member(t, "sibuser", group) })
}

// sessionInGroup reports whether conn's session role is a member of group.
func sessionInGroup(t *testing.T, conn *pgx.Conn, group string) bool {
	t.Helper()
	var ok bool
	if err := conn.QueryRow(context.Background(), "SELECT pg_has_role(current_user, $1, 'MEMBER')", group).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}
