package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/audit"
	"github.com/shiftkey/shiftkey/config"
	"github.com/shiftkey/shiftkey/secretbox"
)

// replicaEnv names the config of a serve replica run as a child process of
// the test binary (so that the test can kill -9 it).
const replicaEnv = "SHIFTKEY_TEST_REPLICA_CONFIG"

// runReplicaChild runs serve from the config replicaEnv names until its
// stdin closes, after printing READY.
func runReplicaChild() (int, bool) {
	path := os.Getenv(replicaEnv)
	if path == "" {
		return 0, false
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "replica:", err)
		return 2, true
	}
	s := &Serve{Config: cfg, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	defer s.Close()
	if err := s.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "replica:", err)
		return 2, true
	}
	fmt.Println("READY")
	io.Copy(io.Discard, os.Stdin)
	return 0, true
}

var replicaKeys = map[string]string{
	"ADMIN_KEY": "AKIAREPLICAADMIN0001", "ADMIN_SECRET": "replica-admin-secret-0123456789",
	"CI_KEY": "AKIAREPLICACI0000001", "CI_SECRET": "replica-ci-secret-0123456789",
	"OPS_KEY": "AKIAREPLICAOPS000001", "OPS_SECRET": "replica-ops-secret-0123456789",
}

// newStoreDB creates an empty database on dev's PostgreSQL for a shared
// store and returns its URL.
func newStoreDB(t *testing.T, prefix string) string {
	t.Helper()
	name := prefix + strings.ToLower(shiftkey.NewID("S"))
	if err := dev.PG.CreateDatabase(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	return dev.PG.ConnString(dev.PG.Superuser(), name)
}

// replicaYAML is the config every replica shares but for its listeners.
func replicaYAML(storeURL, keyFile, api, gw string) string {
	pg := dev.PG
	return `
store: {postgres: "` + storeURL + `", grant_lease: 3s, secret_key_file: ` + keyFile + `}
api: {listen: "` + api + `"}
clusters:
  - identifier: shared
    database: dev
    gateway: {listen: "` + gw + `"}
    backend: {host: ` + pg.SocketDir() + `, port: ` + itoa(pg.Port()) + `, admin_user: ` + pg.Superuser() + `}
iam:
  users:
    - name: admin
      policies: {all: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'}
      access_keys: [{id: "${ADMIN_KEY}", secret: "${ADMIN_SECRET}"}]
    - name: ci
      policies: {creds: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["redshift:GetClusterCredentials","redshift:CreateClusterUser","redshift:JoinGroup"],"Resource":"*"}]}'}
      access_keys: [{id: "${CI_KEY}", secret: "${CI_SECRET}"}]
    - name: ops
      policies: {creds: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:GetClusterCredentials","Resource":"*"}]}'}
      access_keys: [{id: "${OPS_KEY}", secret: "${OPS_SECRET}"}]
`
}

type replica struct {
	api, gw string
	cmd     *exec.Cmd // nil: in-process
	stdin   io.Closer
}

// startReplicaProcess runs a replica as a child process.
func startReplicaProcess(t *testing.T, cfgPath string) *replica {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), replicaEnv+"="+cfgPath)
	for k, v := range replicaKeys {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := sc.Scan() && sc.Text() == "READY"
		ready <- ok
		io.Copy(io.Discard, stdout)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("replica process did not start")
		}
	case <-time.After(time.Minute):
		t.Fatal("replica process: no READY within a minute")
	}
	return &replica{cmd: cmd, stdin: stdin}
}

func (r *replica) redshift(key, secret string) *redshift.Client {
	return redshift.New(redshift.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + r.api),
		Credentials: provider(aws.Credentials{AccessKeyID: replicaKeys[key], SecretAccessKey: replicaKeys[secret]}), Retryer: aws.NopRetryer{}})
}

func (r *replica) connect(ctx context.Context, user, password string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, "host=127.0.0.1 port="+strings.Split(r.gw, ":")[1]+" dbname=dev sslmode=disable connect_timeout=5 user="+user+" password="+password)
}

// Two replicas share one PostgreSQL store and nothing else: A runs as its
// own process, B in this one. A credential issued on A logs in on B; a key
// deactivated on B is refused on A within a second; a credential revoked
// (by `shiftkey credentials revoke`, a third store client) is refused on B
// within a second and its session on B ends; and when A is killed with
// SIGKILL while its session holds a group, B revokes the group once A's
// lease has run out.
func TestReplicasShareOnlyTheStore(t *testing.T) {
	ctx := context.Background()
	storeURL := newStoreDB(t, "replicas_")
	group, victim := fresh("replica_grp"), fresh("replica_victim")
	adminExec(t, dev, "DO $$ BEGIN CREATE ROLE "+group+" NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")

	dir := t.TempDir()
	keyFile := filepath.Join(dir, "store.key")
	if _, err := secretbox.CreateKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	a := &replica{api: freePort(t), gw: freePort(t)}
	b := &replica{api: freePort(t), gw: freePort(t)}
	cfgA := filepath.Join(dir, "a.yaml")
	for path, r := range map[string]*replica{cfgA: a, filepath.Join(dir, "b.yaml"): b} {
		y := replicaYAML(storeURL, keyFile, r.api, r.gw) + "audit: {file: " + strings.TrimSuffix(path, ".yaml") + "-audit.log}\n"
		if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pa := startReplicaProcess(t, cfgA)
	a.cmd, a.stdin = pa.cmd, pa.stdin
	for k, v := range replicaKeys {
		t.Setenv(k, v)
	}
	cfgB, err := config.Load(filepath.Join(dir, "b.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sb := &Serve{Config: cfgB, Logger: dev.Logger}
	t.Cleanup(func() { sb.Close() })
	if err := sb.Start(ctx); err != nil {
		t.Fatal(err)
	}

	// Issue on A, log in on B.
	out, err := a.redshift("CI_KEY", "CI_SECRET").GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
		ClusterIdentifier: aws.String("shared"), DbUser: aws.String("ci"), AutoCreate: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	onB, err := b.connect(ctx, aws.ToString(out.DbUser), aws.ToString(out.DbPassword))
	if err != nil {
		t.Fatalf("a credential issued on A does not log in on B: %v", err)
	}
	defer onB.Close(ctx)

	// Deactivate a key on B: refused on A within a second.
	adminB := iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + b.api),
		Credentials: provider(aws.Credentials{AccessKeyID: replicaKeys["ADMIN_KEY"], SecretAccessKey: replicaKeys["ADMIN_SECRET"]}), Retryer: aws.NopRetryer{}})
	opsOnA := a.redshift("OPS_KEY", "OPS_SECRET")
	issueOps := func() error {
		_, err := opsOnA.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("shared"), DbUser: aws.String("ops")})
		return err
	}
	if err := issueOps(); err != nil {
		t.Fatalf("ops on A before deactivation: %v", err)
	}
	if _, err := adminB.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String("ops"), AccessKeyId: aws.String(replicaKeys["OPS_KEY"]),
		Status: iamtypes.StatusTypeInactive}); err != nil {
		t.Fatal(err)
	}
	took := poll(t, time.Second, "a key deactivated on B is refused on A", func() bool {
		return strings.Contains(errString(issueOps()), "InvalidClientTokenId")
	})
	t.Logf("deactivated key refused on A after %v", took)

	// Revoke (a third client of the store, as the CLI is): refused on B
	// within a second, and the session on B ends.
	var cli bytes.Buffer
	if err := run(ctx, []string{"credentials", "revoke", "--config", filepath.Join(dir, "b.yaml"), "--cluster", "shared", "--login", aws.ToString(out.DbUser), "--terminate"}, &cli, &cli); err != nil {
		t.Fatalf("%v\n%s", err, cli.String())
	}
	took = poll(t, time.Second, "a revoked credential is refused on B", func() bool {
		c, err := b.connect(ctx, aws.ToString(out.DbUser), aws.ToString(out.DbPassword))
		if err == nil {
			c.Close(ctx)
		}
		return sqlState(err) == "28P01"
	})
	t.Logf("revoked credential refused on B after %v", took)
	poll(t, time.Second, "the revoked credential's session on B ended", func() bool {
		_, err := onB.Exec(ctx, "SELECT 1")
		return err != nil
	})
	if c, err := a.connect(ctx, aws.ToString(out.DbUser), aws.ToString(out.DbPassword)); err == nil {
		c.Close(ctx)
		t.Fatal("the revoked credential still logs in on A")
	}

	// kill -9 A while its session holds a group: B revokes it after the lease.
	vc, err := a.redshift("CI_KEY", "CI_SECRET").GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
		ClusterIdentifier: aws.String("shared"), DbUser: aws.String(victim), AutoCreate: aws.Bool(true), DbGroups: []string{group}})
	if err != nil {
		t.Fatal(err)
	}
	login := func(r *replica) *pgx.Conn {
		t.Helper()
		c, err := r.connect(ctx, aws.ToString(vc.DbUser), aws.ToString(vc.DbPassword))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(ctx) })
		return c
	}
	inGroup := func(c *pgx.Conn) bool { return sessionInGroup(t, c, group) }
	// The same login on A and B: B shares the membership A granted, and
	// when A's session ends B's still has it; when B's ends, it goes.
	first, second := login(a), login(b)
	if !inGroup(first) || !inGroup(second) {
		t.Fatalf("%s is not in %s in its sessions on A and B", victim, group)
	}
	first.Close(ctx)
	poll(t, 5*time.Second, "A's session of "+victim+" ended on the backend", func() bool { return !active(t, victim, 2) })
	if !inGroup(second) {
		t.Fatal("the end of A's session revoked the group B's session holds")
	}
	second.Close(ctx)
	poll(t, 5*time.Second, "the group went with the last session", func() bool { return !member(t, victim, group) })

	onA := login(a)
	if !member(t, victim, group) || !inGroup(onA) {
		t.Fatalf("%s is not in %s during its session on A", victim, group)
	}
	// B leaves a live replica's grant alone, over more than a lease.
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		if !member(t, victim, group) {
			t.Fatal("B revoked the grant of a live replica's session")
		}
	}
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	took = poll(t, 20*time.Second, "B revoked the dead replica's grant", func() bool { return !member(t, victim, group) })
	t.Logf("grant of the killed replica revoked by B %v after SIGKILL (lease 3s)", took)
	// A renewed its lease to 3s ahead every second until it died.
	if took < 2*time.Second {
		t.Fatalf("revoked %v after the kill, before A's lease (3s from its last renewal) can have run out", took)
	}
	// B's audit record of that revoke names the dead replica (host/pid/id).
	deadA := fmt.Sprintf("/%d/", a.cmd.Process.Pid)
	var leftBy any
	poll(t, 5*time.Second, "B's audit log records the reconciled revoke", func() bool {
		records, _ := auditRecords(t, filepath.Join(dir, "b-audit.log"))
		for _, r := range records {
			if r.EventName == audit.EventRevokeGroup && r.RequestParameters["dbUser"] == victim && r.AdditionalEventData["reconciled"] == true {
				leftBy = r.AdditionalEventData["leftBy"]
				return true
			}
		}
		return false
	})
	if s, _ := leftBy.(string); !strings.Contains(s, deadA) {
		t.Fatalf("B's reconciled revoke says leftBy %v, want the killed replica (pid %d)", leftBy, a.cmd.Process.Pid)
	}
}

// active reports whether role has at least n sessions on dev's backend.
func active(t *testing.T, role string, n int) bool {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dev.PG.ConnString(dev.PG.Superuser(), DevDatabase))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var count int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE usename = $1`, role).Scan(&count); err != nil {
		t.Fatal(err)
	}
	return count >= n
}

// Replicas started at the same moment on an empty store all start, and
// agree: each applies the config's declared state (identities, clusters)
// in turn. Before, they applied it at once: two found the cluster or a
// user missing and created it, and one failed to start
// ("ClusterAlreadyExists: Cluster already exists"), as two replicas
// started together by the deployment guide's walkthrough did.
func TestReplicasStartTogether(t *testing.T) {
	ctx := context.Background()
	for k, v := range replicaKeys {
		t.Setenv(k, v)
	}
	const rounds, n = 3, 3
	for round := range rounds {
		storeURL := newStoreDB(t, "together_")
		dir := t.TempDir()
		keyFile := filepath.Join(dir, "store.key")
		if _, err := secretbox.CreateKeyFile(keyFile); err != nil {
			t.Fatal(err)
		}
		serves := make([]*Serve, n)
		for i := range serves {
			path := filepath.Join(dir, fmt.Sprintf("r%d.yaml", i))
			if err := os.WriteFile(path, []byte(replicaYAML(storeURL, keyFile, freePort(t), freePort(t))), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			serves[i] = &Serve{Config: cfg, Logger: dev.Logger}
			t.Cleanup(func() { serves[i].Close() })
		}
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i, s := range serves {
			wg.Go(func() { errs[i] = s.Start(ctx) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: replica %d of %d started together did not start: %v", round, i, n, err)
			}
		}
		st := serves[0].Store
		if users, err := st.Entities(ctx, shiftkey.KindUser, "/"); err != nil || len(users) != 3 {
			t.Fatalf("round %d: %d users (%v), want the 3 declared once", round, len(users), err)
		}
		if _, err := st.Cluster(ctx, "shared"); err != nil {
			t.Fatalf("round %d: cluster: %v", round, err)
		}
	}
}

// A client cancels on a new connection, which the balancer in front of the
// gateways may send to any replica: a cancel request for a session on B
// that reaches A cancels the query on B. Before, A found no session of that
// key and dropped it, and the query ran on.
func TestCancelReachesTheReplicaOfTheSession(t *testing.T) {
	ctx := context.Background()
	reps, serves, _ := servedReplicas(t, "a", "b")
	a, b := reps[0], reps[1]
	onB, done := sleepOn(t, a, b)
	defer onB.Close(ctx)
	// What libpq and pgx send, to the port the balancer picked: A's.
	sendCancel(t, a.gw, onB.PgConn().PID(), onB.PgConn().SecretKey())
	select {
	case err := <-done:
		if sqlState(err) != "57014" {
			t.Fatalf("the query on B ended with %v, want 57014 (canceled)", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("a cancel request for B's session sent to A did not cancel it")
	}
	// The session lives on after its query's cancel.
	if err := selectOneAfterCancel(ctx, onB); err != nil {
		t.Fatalf("B's session after the cancel: %v", err)
	}
	// Each replica counts its part: A forwarded it, B cancelled it. A
	// counts once its forward is over (B took the packet), which may be
	// just after B cancelled the query.
	for i, want := range []string{"forwarded", "peer_cancelled"} {
		poll(t, 5*time.Second, fmt.Sprintf("replica %d: shiftkey_gateway_cancel_requests_total{outcome=%q} = 1", i, want), func() bool {
			fams, _ := scrape(t, serves[i].AdminURL)
			return sample(fams, "shiftkey_gateway_cancel_requests_total", map[string]string{"scope": "shared", "outcome": want}) == 1
		})
	}
}

// servedReplicas starts a serve replica per name, in this process, on one
// new PostgreSQL store, and returns them with the store's URL.
func servedReplicas(t *testing.T, names ...string) ([]*replica, []*Serve, string) {
	t.Helper()
	return servedReplicasWith(t, nil, names...)
}

// servedReplicasWith is servedReplicas with extra(name)'s lines added to
// each replica's configuration (nil: none).
func servedReplicasWith(t *testing.T, extra func(name string) string, names ...string) ([]*replica, []*Serve, string) {
	t.Helper()
	ctx := context.Background()
	storeURL := newStoreDB(t, "replicas_")
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "store.key")
	if _, err := secretbox.CreateKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	for k, v := range replicaKeys {
		t.Setenv(k, v)
	}
	var reps []*replica
	var serves []*Serve
	for _, name := range names {
		r := &replica{api: freePort(t), gw: freePort(t)}
		path := filepath.Join(dir, name+".yaml")
		y := replicaYAML(storeURL, keyFile, r.api, r.gw)
		if extra != nil {
			y += extra(name)
		}
		if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		s := &Serve{Config: cfg, Logger: dev.Logger}
		t.Cleanup(func() { s.Close() })
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		reps = append(reps, r)
		serves = append(serves, s)
	}
	return reps, serves, storeURL
}

// sleepOn issues a credential on a, logs in with it on b and runs
// pg_sleep(60) there; done receives the query's end.
func sleepOn(t *testing.T, a, b *replica) (onB *pgx.Conn, done chan error) {
	t.Helper()
	ctx := context.Background()
	out, err := a.redshift("CI_KEY", "CI_SECRET").GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
		ClusterIdentifier: aws.String("shared"), DbUser: aws.String("ci"), AutoCreate: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	onB, err = b.connect(ctx, aws.ToString(out.DbUser), aws.ToString(out.DbPassword))
	if err != nil {
		t.Fatal(err)
	}
	done = make(chan error, 1)
	go func() {
		_, err := onB.PgConn().Exec(ctx, "SELECT pg_sleep(60)").ReadAll()
		done <- err
	}()
	poll(t, 10*time.Second, "pg_sleep(60) runs on B's backend", func() bool {
		return sleepingOn(t, onB.PgConn().PID())
	})
	return onB, done
}

// sendCancel sends a CancelRequest to addr, as libpq and pgx do.
func sendCancel(t *testing.T, addr string, pid uint32, secret []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf, _ := (&pgproto3.CancelRequest{ProcessID: pid, SecretKey: secret}).Encode(nil)
	if _, err := c.Write(buf); err != nil {
		t.Fatal(err)
	}
}

// A replica that drains (SIGTERM) closes its gateway's listener, so that
// the balancer sends clients elsewhere, but its sessions run on through
// the grace period: a cancel for one, sent through the balancer to
// another replica, still reaches it, on a port the draining replica
// listens on for its peers alone, even when the other replica's list of
// peers predates the drain.
func TestCancelReachesADrainingReplica(t *testing.T) {
	ctx := context.Background()
	reps, serves, storeURL := servedReplicas(t, "a", "b")
	a, b := reps[0], reps[1]
	// A forwards a cancel that names no session, and so lists its peers:
	// B at its gateway's port.
	sendCancel(t, a.gw, 1, []byte{0, 0, 0, 1})
	peers := func() []string {
		t.Helper()
		conn, err := pgx.Connect(ctx, storeURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		rows, _ := conn.Query(ctx, `SELECT address FROM gateway_peers ORDER BY address`)
		addrs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return addrs
	}
	poll(t, 10*time.Second, "B counts the forwarded cancel that named none of its sessions", func() bool {
		fams, _ := scrape(t, serves[1].AdminURL)
		return sample(fams, "shiftkey_gateway_cancel_requests_total", map[string]string{"scope": "shared", "outcome": "peer_no_session"}) == 1
	})
	onB, done := sleepOn(t, a, b)
	drained := make(chan error, 1)
	go func() { drained <- serves[1].Close() }()
	poll(t, 10*time.Second, "B's gateway stops accepting clients", func() bool {
		c, err := net.DialTimeout("tcp", b.gw, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	poll(t, 10*time.Second, "B advertises another address to its peers", func() bool {
		return !slices.Contains(peers(), b.gw) && len(peers()) == 2
	})
	// A refused forward makes A read its peers again, at most every
	// 100 ms; its list is from before the drain.
	time.Sleep(200 * time.Millisecond)
	sendCancel(t, a.gw, onB.PgConn().PID(), onB.PgConn().SecretKey())
	select {
	case err := <-done:
		if sqlState(err) != "57014" {
			t.Fatalf("the query on draining B ended with %v, want 57014 (canceled)", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("a cancel request for draining B's session sent to A did not cancel it")
	}
	if err := selectOneAfterCancel(ctx, onB); err != nil {
		t.Fatalf("B's session after the cancel, still within the grace period: %v", err)
	}
	onB.Close(ctx)
	select {
	case err := <-drained:
		if err != nil {
			t.Fatalf("B's drain: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("B did not finish draining once its last session ended")
	}
	if got := peers(); len(got) != 1 || got[0] != a.gw {
		t.Fatalf("peers after B's drain: %v, want A's alone (%s)", got, a.gw)
	}
}

// selectOneAfterCancel runs SELECT 1 on a session whose query was just
// cancelled. PostgreSQL signals a cancelled backend twice (the process,
// then its group): under load the second can cancel this query too, so a
// 57014 is tried once more.
func selectOneAfterCancel(ctx context.Context, c *pgx.Conn) error {
	_, err := c.Exec(ctx, "SELECT 1")
	if sqlState(err) == "57014" {
		_, err = c.Exec(ctx, "SELECT 1")
	}
	return err
}

// sleepingOn reports whether backend process pid on dev's PostgreSQL runs
// pg_sleep.
func sleepingOn(t *testing.T, pid uint32) bool {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dev.PG.ConnString(dev.PG.Superuser(), DevDatabase))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query LIKE 'SELECT pg_sleep(%'`, int64(pid)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// newStoreKey is a new store key file, in a directory of the test's.
func newStoreKey(t *testing.T) string {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "store.key")
	if _, err := secretbox.CreateKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	return keyFile
}

// replicaConfig writes the config of a replica of replicaYAML (with the
// extra lines) on free ports, and returns the replica and the file.
func replicaConfig(t *testing.T, storeURL, keyFile, extra string) (*replica, string) {
	t.Helper()
	r := &replica{api: freePort(t), gw: freePort(t)}
	cfgPath := filepath.Join(t.TempDir(), "replica.yaml")
	if err := os.WriteFile(cfgPath, []byte(replicaYAML(storeURL, keyFile, r.api, r.gw)+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	return r, cfgPath
}

// serveInProcess starts serve with cfgPath in this process, closed at the
// test's end.
func serveInProcess(t *testing.T, cfgPath string) *Serve {
	t.Helper()
	for k, v := range replicaKeys {
		t.Setenv(k, v)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	s := &Serve{Config: cfg, Logger: dev.Logger}
	t.Cleanup(func() { s.Close() })
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}
