package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/postgres"
	rs "github.com/shiftkey/shiftkey/redshift"
)

// allowAll authorizes every request: the authorization of issues is not
// what these tests are about.
type allowAll struct{}

func (allowAll) Authorize(context.Context, *shiftkey.Caller, ...shiftkey.AuthzRequest) error {
	return nil
}

// An issue whose cluster is deleted while it runs (its lookup saw the
// cluster, its write comes while DeleteCluster's transaction is open) must
// not leave a credential behind that a cluster created again under the
// same identifier accepts. The interleaving is held by a test connection
// locking the cluster's tag row, which DeleteCluster deletes last: the
// deletion is open (cluster and credentials deleted, not committed) while
// the issue resolves the cluster and writes.
func TestIssueRacingDeleteClusterLeavesNoCredential(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	db := open(t, url)
	old := &shiftkey.Cluster{Identifier: "racy", Region: "us-east-1", NamespaceID: shiftkey.NewUUID(), NodeType: "dc2.large", DBName: "dev",
		MasterUsername: "awsuser", Status: "available", Endpoint: shiftkey.Endpoint{Address: "127.0.0.1", Port: 5439},
		Backend: shiftkey.Backend{Host: "/run/old", Port: 5432, AdminUser: "admin"}, CreatedAt: time.Now()}
	mustDo(t, "CreateCluster", db.CreateCluster(ctx, old))
	mustDo(t, "TagEntity", db.TagEntity(ctx, shiftkey.KindCluster, "racy", []shiftkey.Tag{{Key: "team", Value: "a"}}))

	holder, err := pgx.Connect(ctx, url)
	mustDo(t, "connect", err)
	defer holder.Close(ctx)
	tx, err := holder.Begin(ctx)
	mustDo(t, "begin", err)
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, `SELECT 1 FROM tags WHERE kind = 'cluster' AND owner = 'racy' FOR UPDATE`)
	mustDo(t, "lock the tag row", err)

	// Watched from a connection of its own: in the holder's transaction
	// pg_stat_activity would stay as its first read found it.
	watch, err := pgx.Connect(ctx, url)
	mustDo(t, "connect", err)
	defer watch.Close(ctx)
	deleted := make(chan error, 1)
	go func() { deleted <- db.DeleteCluster(ctx, "racy") }()
	waitForLockWait(t, watch, `wait_event IN ('transactionid', 'tuple')`, nil)

	svc := &rs.Service{Store: db, Authorizer: allowAll{}, Now: time.Now}
	caller := &shiftkey.Caller{Region: "us-east-1", RequestID: shiftkey.NewUUID(), Principal: &shiftkey.Principal{
		ARN: "arn:aws:iam::000000000000:user/admin", Account: "000000000000", Type: shiftkey.PrincipalUser, UserName: "admin"}}
	type answer struct {
		out *rs.ClusterCredentials
		err error
	}
	issued := make(chan answer, 1)
	go func() {
		out, err := svc.GetClusterCredentials(ctx, caller, &rs.GetClusterCredentialsInput{CredentialTarget: rs.CredentialTarget{ClusterIdentifier: ptr("racy")}, DBUser: ptr("alice")})
		issued <- answer{out, err}
	}()
	// The issue's write waits for the deletion, or (without an order
	// between them) it has answered already.
	var early *answer
	waitForLockWait(t, watch, `wait_event = 'advisory'`, func() bool {
		select {
		case a := <-issued:
			early = &a
			return true
		default:
			return false
		}
	})
	mustDo(t, "release the tag row", tx.Rollback(ctx))
	mustDo(t, "DeleteCluster", <-deleted)
	a := early
	if a == nil {
		got := <-issued
		a = &got
	}
	renewed := *old
	renewed.NamespaceID, renewed.Backend.Host, renewed.CreatedAt = shiftkey.NewUUID(), "/run/new", time.Now()
	mustDo(t, "CreateCluster again", db.CreateCluster(ctx, &renewed))

	live, _, _, err := db.LiveCredentials(ctx, "racy", "IAM:alice", time.Now())
	mustDo(t, "LiveCredentials", err)
	if a.err == nil {
		t.Fatalf("the issue racing DeleteCluster succeeded; %d credentials of IAM:alice are live on the cluster created again", len(live))
	}
	if code := shiftkey.ErrorCode(a.err); code != shiftkey.CodeClusterNotFound {
		t.Fatalf("the issue racing DeleteCluster failed with %v (code %q), want %s", a.err, code, shiftkey.CodeClusterNotFound)
	}
	if len(live) != 0 {
		t.Fatalf("%d credentials of IAM:alice live on the cluster created again, want none", len(live))
	}
}

// waitForLockWait returns once another session of the database waits for
// a lock as cond says, or done reports true.
func waitForLockWait(t *testing.T, c *pgx.Conn, cond string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		err := c.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND `+cond).Scan(&n)
		mustDo(t, "pg_stat_activity", err)
		if n > 0 || (done != nil && done()) {
			return
		}
		if time.Now().After(deadline) {
			rows, _ := c.Query(context.Background(), `SELECT coalesce(wait_event_type,'')||'/'||coalesce(wait_event,'')||' '||left(query,80) FROM pg_stat_activity WHERE datname = current_database()`)
			all, _ := pgx.CollectRows(rows, pgx.RowTo[string])
			t.Logf("sessions: %q", all)
			t.Fatalf("no session waits for a lock (%s) after 30 s", cond)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ptr(s string) *string { return &s }

func mustDo(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// The PostgreSQL writer's check of a workgroup's credentials, in a store
// whose credentials are sealed (the other insert): issued while the
// workgroup exists, refused (ResourceNotFoundException) once it is
// deleted, nothing written (and nothing of the workgroup left).
func TestIssueForDeletedWorkgroupIsRefused(t *testing.T) {
	ctx := context.Background()
	key, keyFile, _, _ := twoKeys(t)
	db := open(t, newURL(t), postgres.WithKey(key, keyFile))
	ns := &shiftkey.Namespace{Name: "ns", Region: "us-east-1", ID: shiftkey.NewUUID(), DBName: "dev", AdminUsername: "admin", Status: "AVAILABLE", CreatedAt: time.Now()}
	wg := &shiftkey.Workgroup{Name: "wg", Region: "us-east-1", ID: shiftkey.NewUUID(), Namespace: "ns", Status: "AVAILABLE", BaseCapacity: 128,
		Endpoint: shiftkey.Endpoint{Address: "127.0.0.1", Port: 5440}, CreatedAt: time.Now()}
	mustDo(t, "CreateNamespace", db.CreateNamespace(ctx, ns))
	mustDo(t, "CreateWorkgroup", db.CreateWorkgroup(ctx, wg))
	svc := &rs.Service{Store: db, Authorizer: allowAll{}, Now: time.Now}
	caller := &shiftkey.Caller{Region: "us-east-1", RequestID: shiftkey.NewUUID(), Principal: &shiftkey.Principal{
		ARN: "arn:aws:iam::000000000000:user/bob", Account: "000000000000", Type: shiftkey.PrincipalUser, UserName: "bob"}}
	_, err := svc.IssueForPrincipal(ctx, caller, wg.CredentialScope(), wg.ID, "", time.Hour)
	mustDo(t, "issue while the workgroup exists", err)
	mustDo(t, "DeleteWorkgroup", db.DeleteWorkgroup(ctx, "wg"))
	_, err = svc.IssueForPrincipal(ctx, caller, wg.CredentialScope(), wg.ID, "", time.Hour)
	if code := shiftkey.ErrorCode(err); code != shiftkey.CodeResourceNotFound {
		t.Fatalf("issue for the deleted workgroup: %v (code %q), want %s", err, code, shiftkey.CodeResourceNotFound)
	}
	// The delete took the credential issued before it, and its login's
	// salt; the refused issue wrote neither again.
	live, _, ok, err := db.LiveCredentials(ctx, wg.CredentialScope(), "IAM:bob", time.Now())
	mustDo(t, "LiveCredentials", err)
	if len(live) != 0 || ok {
		t.Fatalf("%d live credentials of IAM:bob in the deleted workgroup's scope, salt %v; want none", len(live), ok)
	}
}
