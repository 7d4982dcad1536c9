package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shiftkey/shiftkey/config"
	"github.com/shiftkey/shiftkey/pgserver"
)

var (
	dev        *Dev
	clockShift atomic.Int64 // nanoseconds added to the wall clock of dev
)

// TestMain runs one `shiftkey dev` for the package, on random ports and a
// throwaway data dir, with a clock the tests can move.
func TestMain(m *testing.M) {
	// Many serves run at once: their admin listeners take any free port.
	config.DefaultAdminAddr = "127.0.0.1:0"
	runMainChild()
	if code, ok := runTestChild(); ok {
		os.Exit(code)
	}
	if code, ok := runReplicaChild(); ok {
		os.Exit(code)
	}
	if _, err := pgserver.FindBinDir(); err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintln(os.Stderr, "FAIL:", err)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "skipping cmd/shiftkey tests:", err)
		os.Exit(0)
	}
	code, err := runWithDev(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

var (
	freshMu    sync.Mutex
	freshNames = map[string]int{}
)

// fresh returns name the first time a test asks for it and name2, name3…
// after: the package shares one dev instance, so a test that creates a
// named IAM entity would otherwise meet its own under -count=2.
func fresh(name string) string {
	freshMu.Lock()
	defer freshMu.Unlock()
	freshNames[name]++
	if n := freshNames[name]; n > 1 {
		return fmt.Sprintf("%s%d", name, n)
	}
	return name
}

func newTestDev(dir string) *Dev {
	level := slog.LevelWarn
	if os.Getenv("SHIFTKEY_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	return &Dev{
		DataDir:       dir,
		APIAddr:       "127.0.0.1:0",
		GatewayAddr:   "127.0.0.1:0",
		WorkgroupAddr: "127.0.0.1:0",
		Logger:        slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
		Now:           func() time.Time { return time.Now().Add(time.Duration(clockShift.Load())) },
	}
}

func tempDataDir() (string, error) {
	dir, err := os.MkdirTemp("", "shiftkey-dev-")
	if err != nil {
		return "", err
	}
	// When running as root the postgres OS user must reach the data dir.
	return dir, os.Chmod(dir, 0o755)
}

func runWithDev(m *testing.M) (int, error) {
	dir, err := tempDataDir()
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	dev = newTestDev(dir)
	// The operator's view, as `shiftkey dev` has it by default, on a free port.
	dev.AdminAddr, dev.AuditFile = "127.0.0.1:0", "audit.log"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := dev.Start(ctx); err != nil {
		dev.Close()
		return 0, err
	}
	code := m.Run()
	if err := dev.Close(); err != nil {
		return 0, fmt.Errorf("close: %w", err)
	}
	return code, nil
}

func apiClient(d *Dev) *redshift.Client {
	k := d.AccessKey
	return redshift.New(redshift.Options{
		Region:       DevRegion,
		BaseEndpoint: aws.String(d.APIURL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret}, nil
		}),
		Retryer: aws.NopRetryer{},
	})
}

type cred struct{ user, password string }

func getCreds(t *testing.T, d *Dev, in *redshift.GetClusterCredentialsInput) cred {
	t.Helper()
	if in.ClusterIdentifier == nil {
		in.ClusterIdentifier = aws.String(DevCluster)
	}
	out, err := apiClient(d).GetClusterCredentials(context.Background(), in)
	if err != nil {
		t.Fatalf("GetClusterCredentials: %v", err)
	}
	return cred{aws.ToString(out.DbUser), aws.ToString(out.DbPassword)}
}

func connect(d *Dev, c cred, db string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d dbname=%s sslmode=disable connect_timeout=10", d.Gateway.Address, d.Gateway.Port, db))
	if err != nil {
		return nil, err
	}
	cfg.User, cfg.Password = c.user, c.password
	return pgx.ConnectConfig(context.Background(), cfg)
}

func mustConnect(t *testing.T, d *Dev, c cred, db string) *pgx.Conn {
	t.Helper()
	conn, err := connect(d, c, db)
	if err != nil {
		t.Fatalf("connect as %s: %v", c.user, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func currentUser(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	var u string
	if err := conn.QueryRow(context.Background(), "SELECT current_user").Scan(&u); err != nil {
		t.Fatal(err)
	}
	return u
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// adminExec runs SQL on the backend directly as the master user.
func adminExec(t *testing.T, d *Dev, sqls ...string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), d.PG.ConnString(d.PG.Superuser(), DevDatabase))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, s := range sqls {
		if _, err := conn.Exec(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func TestLoginAsMappedRole(t *testing.T) {
	first := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String("alice"), DbName: aws.String("dev"), AutoCreate: aws.Bool(true)})
	if first.user != "IAMA:alice" {
		t.Fatalf("DbUser %q", first.user)
	}
	c1 := mustConnect(t, dev, first, "dev")
	if u := currentUser(t, c1); u != "alice" {
		t.Fatalf("current_user = %q, want alice", u)
	}
	// The session is the role itself: RESET ROLE / SET ROLE cannot escape it.
	if _, err := c1.Exec(context.Background(), "RESET ROLE"); err != nil {
		t.Fatal(err)
	}
	if u := currentUser(t, c1); u != "alice" {
		t.Fatalf("after RESET ROLE current_user = %q", u)
	}
	if _, err := c1.Exec(context.Background(), "SET ROLE "+DevMasterUser); sqlState(err) != "42501" {
		t.Fatalf("SET ROLE to the master user: %v, want 42501", err)
	}

	second := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String("alice"), DbName: aws.String("dev"), AutoCreate: aws.Bool(true)})
	if second.password == first.password {
		t.Fatal("two calls returned the same password")
	}
	c2 := mustConnect(t, dev, second, "dev")
	if u := currentUser(t, c2); u != "alice" {
		t.Fatalf("second credential: current_user = %q", u)
	}
	// The first credential still logs in while the second is live.
	c3 := mustConnect(t, dev, first, "dev")
	if u := currentUser(t, c3); u != "alice" {
		t.Fatalf("first credential again: current_user = %q", u)
	}
}

func TestPsqlLogin(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("psql not installed")
		}
		t.Skip("psql not installed")
	}
	c := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String("paul"), AutoCreate: aws.Bool(true)})
	cmd := exec.Command(psql, "-XAtc", "SELECT current_user")
	cmd.Env = append(os.Environ(), "PGHOST="+dev.Gateway.Address, "PGPORT="+strconv.Itoa(dev.Gateway.Port),
		"PGUSER="+c.user, "PGPASSWORD="+c.password, "PGDATABASE=dev", "PGCONNECT_TIMEOUT=10")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql: %v: %s", err, out)
	}
	if strings.TrimSpace(string(out)) != "paul" {
		t.Fatalf("psql printed %q, want paul", out)
	}
}

func TestLoginFailures(t *testing.T) {
	good := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String("bruno"), DbName: aws.String("dev"), AutoCreate: aws.Bool(true)})
	mustConnect(t, dev, good, "dev")

	t.Run("wrong password", func(t *testing.T) {
		_, err := connect(dev, cred{good.user, good.password + "x"}, "dev")
		if sqlState(err) != "28P01" {
			t.Fatalf("got %v, want 28P01", err)
		}
	})
	t.Run("unknown login", func(t *testing.T) {
		_, err := connect(dev, cred{"IAM:nobody", good.password}, "dev")
		if sqlState(err) != "28P01" {
			t.Fatalf("got %v, want 28P01", err)
		}
	})
	t.Run("other database than DbName", func(t *testing.T) {
		adminExec(t, dev, "CREATE DATABASE other")
		t.Cleanup(func() { adminExec(t, dev, "DROP DATABASE other WITH (FORCE)") })
		_, err := connect(dev, good, "other")
		if sqlState(err) != "28000" {
			t.Fatalf("got %v, want 28000", err)
		}
	})
	t.Run("IAM login for a role that does not exist", func(t *testing.T) {
		c := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String("ghost")})
		if c.user != "IAM:ghost" {
			t.Fatalf("DbUser %q", c.user)
		}
		_, err := connect(dev, c, "dev")
		if sqlState(err) != "28000" || !strings.Contains(err.Error(), `role "ghost" does not exist`) {
			t.Fatalf("got %v, want 28000 role does not exist", err)
		}
	})
	t.Run("expired credential", func(t *testing.T) {
		short := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String("bruno"), DbName: aws.String("dev"),
			AutoCreate: aws.Bool(true), DurationSeconds: aws.Int32(900)})
		long := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String("bruno"), DbName: aws.String("dev"),
			AutoCreate: aws.Bool(true), DurationSeconds: aws.Int32(3600)})
		clockShift.Store(int64(901 * time.Second))
		defer clockShift.Store(0)
		if _, err := connect(dev, short, "dev"); sqlState(err) != "28P01" {
			t.Fatalf("expired credential: %v, want 28P01", err)
		}
		// Each credential has its own expiry: the longer one still works.
		conn, err := connect(dev, long, "dev")
		if err != nil {
			t.Fatalf("live credential after the other expired: %v", err)
		}
		conn.Close(context.Background())
	})
}

func TestDbGroupsAreSessionScoped(t *testing.T) {
	ctx := context.Background()
	adminExec(t, dev,
		"CREATE ROLE reporting NOLOGIN",
		"CREATE TABLE report_secret (v text)",
		"INSERT INTO report_secret VALUES ('only for reporting')",
		"REVOKE ALL ON report_secret FROM PUBLIC",
		"GRANT SELECT ON report_secret TO reporting",
	)
	t.Cleanup(func() { adminExec(t, dev, "DROP TABLE report_secret", "DROP ROLE reporting") })

	withGroup := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String("carol"), AutoCreate: aws.Bool(true), DbGroups: []string{"reporting"}})
	without := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String("carol"), AutoCreate: aws.Bool(true)})

	c1, err := connect(dev, withGroup, "dev")
	if err != nil {
		t.Fatal(err)
	}
	var v string
	if err := c1.QueryRow(ctx, "SELECT v FROM report_secret").Scan(&v); err != nil || v != "only for reporting" {
		t.Fatalf("session with group: %q, %v", v, err)
	}
	c1.Close(ctx)

	// The grant goes when the last session that asked for it ends.
	deadline := time.Now().Add(5 * time.Second)
	for member(t, "carol", "reporting") {
		if time.Now().After(deadline) {
			t.Fatal("carol is still a member of reporting after the session ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c2 := mustConnect(t, dev, without, "dev")
	if err := c2.QueryRow(ctx, "SELECT v FROM report_secret").Scan(&v); sqlState(err) != "42501" {
		t.Fatalf("session without group read the table: %v", err)
	}
}

// member reports whether role is directly a member of group in the backend.
func member(t *testing.T, role, group string) bool {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dev.PG.ConnString(dev.PG.Superuser(), DevDatabase))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var ok bool
	err = conn.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_auth_members m
		JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles r ON r.oid = m.member WHERE g.rolname = $1 AND r.rolname = $2)`, group, role).Scan(&ok)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestDescribeClustersReportsGateway(t *testing.T) {
	out, err := apiClient(dev).DescribeClusters(context.Background(), &redshift.DescribeClustersInput{ClusterIdentifier: aws.String(DevCluster)})
	if err != nil {
		t.Fatal(err)
	}
	ep := out.Clusters[0].Endpoint
	if aws.ToString(ep.Address) != dev.Gateway.Address || int(aws.ToInt32(ep.Port)) != dev.Gateway.Port {
		t.Fatalf("endpoint %s:%d, gateway %s:%d", aws.ToString(ep.Address), aws.ToInt32(ep.Port), dev.Gateway.Address, dev.Gateway.Port)
	}
}

// devEnvFile is what `source dev.env` exports.
func devEnvFile(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(dev.EnvPath())
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		kv, ok := strings.CutPrefix(line, "export ")
		k, v, ok2 := strings.Cut(kv, "=")
		if !ok || !ok2 {
			t.Fatalf("bad line %q", line)
		}
		env[k] = strings.Trim(v, "'")
	}
	return env
}

func TestDevEnvFile(t *testing.T) {
	env := devEnvFile(t)
	want := map[string]string{
		"AWS_ACCESS_KEY_ID": dev.AccessKey.ID, "AWS_SECRET_ACCESS_KEY": dev.AccessKey.Secret,
		"AWS_REGION": DevRegion, "AWS_DEFAULT_REGION": DevRegion, "AWS_ENDPOINT_URL": dev.APIHTTPSURL, "AWS_CA_BUNDLE": dev.CAPath,
		"NODE_EXTRA_CA_CERTS": dev.CAPath, "PGHOST": dev.Gateway.Address, "PGPORT": strconv.Itoa(dev.Gateway.Port),
	}
	if !strings.HasPrefix(dev.APIHTTPSURL, "https://") {
		t.Errorf("AWS_ENDPOINT_URL %q is not HTTPS", dev.APIHTTPSURL)
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if fi, err := os.Stat(dev.EnvPath()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("dev.env mode %v, want 0600 (it holds a secret key)", fi.Mode().Perm())
	}
}

// startOwnDev starts a dev of the test's own on a fresh data dir, which is
// removed when the test ends; the caller closes the dev.
func startOwnDev(t *testing.T) (*Dev, string) {
	t.Helper()
	dir, err := tempDataDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := newTestDev(dir)
	if err := d.Start(context.Background()); err != nil {
		d.Close()
		t.Fatal(err)
	}
	return d, dir
}

// A restart on the same data dir keeps the cluster, the admin key and live
// credentials.
func TestRestartKeepsState(t *testing.T) {
	d, dir := startOwnDev(t)
	ctx := context.Background()
	c := getCreds(t, d, &redshift.GetClusterCredentialsInput{DbUser: aws.String("dana"), AutoCreate: aws.Bool(true)})
	key := d.AccessKey.ID
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d2 := newTestDev(dir)
	if err := d2.Start(ctx); err != nil {
		d2.Close()
		t.Fatal(err)
	}
	defer d2.Close()
	if d2.AccessKey.ID != key {
		t.Fatalf("admin key changed across restart: %s → %s", key, d2.AccessKey.ID)
	}
	conn, err := connect(d2, c, "dev")
	if err != nil {
		t.Fatalf("credential issued before the restart: %v", err)
	}
	defer conn.Close(ctx)
	if u := currentUser(t, conn); u != "dana" {
		t.Fatalf("current_user %q", u)
	}
}

// Startup parameters that could change the session's identity or search
// path never reach the backend; harmless ones do.
func TestStartupParametersFiltered(t *testing.T) {
	c := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String("frank"), AutoCreate: aws.Bool(true)})
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d dbname=dev sslmode=disable", dev.Gateway.Address, dev.Gateway.Port))
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Password = c.user, c.password
	cfg.RuntimeParams = map[string]string{
		"options":                 "-c role=" + DevMasterUser + " -c search_path=evil",
		"search_path":             "evil",
		"application_name":        "shiftkey-test",
		"client_protocol_version": "2", // sent by Redshift drivers, unknown to PostgreSQL
	}
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var user, path, app string
	if err := conn.QueryRow(context.Background(), "SELECT current_user, current_setting('search_path'), current_setting('application_name')").Scan(&user, &path, &app); err != nil {
		t.Fatal(err)
	}
	if user != "frank" || path == "evil" || app != "shiftkey-test" {
		t.Fatalf("current_user=%q search_path=%q application_name=%q", user, path, app)
	}
}

// Sessions reach dev's PostgreSQL over TLS with a client certificate whose
// CN is the role; without a certificate the backend refuses TCP logins.
func TestBackendLoginByCertificate(t *testing.T) {
	c := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String("certuser"), AutoCreate: aws.Bool(true)})
	conn := mustConnect(t, dev, c, "dev")
	var ssl bool
	var dn string
	if err := conn.QueryRow(context.Background(), "SELECT ssl, coalesce(client_dn, '') FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl, &dn); err != nil {
		t.Fatal(err)
	}
	if !ssl || dn != "/CN=certuser" {
		t.Fatalf("backend session ssl=%v client_dn=%q, want TLS with /CN=certuser", ssl, dn)
	}
	_, err := pgx.Connect(context.Background(), fmt.Sprintf("host=127.0.0.1 port=%d user=certuser dbname=dev sslmode=require", dev.PG.Port()))
	if sqlState(err) != "28000" {
		t.Fatalf("TCP login without a certificate: %v, want 28000", err)
	}
}
