package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	rss "github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
	"github.com/aws/smithy-go"
	"github.com/shiftkey/shiftkey/doctor"
)

// apiErr is err's AWS error code and HTTP status as aws-sdk-go-v2 sees them.
func apiErr(err error) (string, int) {
	var ae smithy.APIError
	var re *awshttp.ResponseError
	code, status := "", 0
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, status
}

// envOf is d's dev.env as doctor reads it.
func envOf(d *Dev) doctor.Env {
	return doctor.Env{EndpointURL: d.APIHTTPSURL, AccessKeyID: d.AccessKey.ID, SecretAccessKey: d.AccessKey.Secret, Region: DevRegion, CABundle: d.CAPath}
}

// notAvailable checks doctor's diagnosis of a cluster or workgroup that is
// not available: the code the credential call answered, and a hint with
// each of hint. It found them as any other error, with the server's
// message alone.
func notAvailable(t *testing.T, opts doctor.Options, step, code string, hint ...string) {
	t.Helper()
	r := doctor.Run(context.Background(), opts)
	p := r.Problem
	if p == nil {
		t.Errorf("doctor: no problem, %d results; want %s at %s (%s)", len(r.Results), doctor.KindNotAvailable, step, code)
		return
	}
	if p.Kind != doctor.KindNotAvailable || p.Step != step || p.Code != code || len(r.Results) != 0 {
		t.Errorf("doctor: %s at %s (%s) %q, hint %q, %d results; want %s at %s (%s)", p.Kind, p.Step, p.Code, p.Message, p.Hint, len(r.Results), doctor.KindNotAvailable, step, code)
		return
	}
	for _, h := range hint {
		if !strings.Contains(p.Hint, h) {
			t.Errorf("doctor: hint %q lacks %q", p.Hint, h)
		}
	}
}

// Found in the last stop note: GetClusterCredentials and
// GetClusterCredentialsWithIAM issued a credential for a cluster that
// DescribeClusters reports hardware-failure (its server could not be
// resumed), whose logins then failed with 08006. A cluster that is not
// available answers InvalidClusterState (400), as the contract's table
// says; the credential calls work again once it is.
func TestCredentialsRefusedForAClusterNotAvailable(t *testing.T) {
	ctx := context.Background()
	d, dir := startOwnDev(t)
	broken := "broken-cluster"
	createTestCluster(t, d, broken, "brkadmin", "Brk12345x")
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "backends", "cluster-"+broken, "postgres", "global", "pg_control")); err != nil {
		t.Fatal(err)
	}
	d2 := newTestDev(dir)
	if err := d2.Start(ctx); err != nil {
		d2.Close()
		t.Fatal(err)
	}
	defer d2.Close()
	if st := aws.ToString(describeCluster(t, d2, broken).ClusterStatus); st != "hardware-failure" {
		t.Fatalf("DescribeClusters says %s is %q, want hardware-failure", broken, st)
	}
	c := apiClient(d2)
	_, err := c.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String(broken), DbUser: aws.String("brkadmin"), DbName: aws.String("dev")})
	if code, status := apiErr(err); code != "InvalidClusterState" || status != 400 {
		t.Errorf("GetClusterCredentials for a hardware-failure cluster: %v, want InvalidClusterState 400", err)
	}
	_, err = c.GetClusterCredentialsWithIAM(ctx, &redshift.GetClusterCredentialsWithIAMInput{ClusterIdentifier: aws.String(broken), DbName: aws.String("dev")})
	if code, status := apiErr(err); code != "InvalidClusterState" || status != 400 {
		t.Errorf("GetClusterCredentialsWithIAM for a hardware-failure cluster: %v, want InvalidClusterState 400", err)
	}
	notAvailable(t, doctor.Options{Cluster: broken, DBUser: "brkadmin", Env: envOf(d2)}, "redshift:GetClusterCredentials", "InvalidClusterState",
		"hardware-failure", "DeleteCluster", "CreateCluster")
	// A caller who may not have the credential learns nothing of the
	// cluster's state: the policy is checked first, so it is AccessDenied,
	// as for an available cluster.
	outsider := redshift.New(redshift.Options{Region: DevRegion, BaseEndpoint: aws.String(d2.APIURL), Retryer: aws.NopRetryer{},
		Credentials: provider(userKey(t, d2, "outsider", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:DescribeClusters","Resource":"*"}]}`))})
	_, err = outsider.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String(broken), DbUser: aws.String("brkadmin"), DbName: aws.String("dev")})
	if code, status := apiErr(err); code != "AccessDenied" || status != 403 {
		t.Errorf("GetClusterCredentials for a hardware-failure cluster by a caller without the permission: %v, want AccessDenied 403", err)
	}
	_, err = outsider.GetClusterCredentialsWithIAM(ctx, &redshift.GetClusterCredentialsWithIAMInput{ClusterIdentifier: aws.String(broken), DbName: aws.String("dev")})
	if code, status := apiErr(err); code != "AccessDenied" || status != 403 {
		t.Errorf("GetClusterCredentialsWithIAM for a hardware-failure cluster by a caller without the permission: %v, want AccessDenied 403", err)
	}
	// The others are available and issue as before.
	if _, err := c.GetClusterCredentialsWithIAM(ctx, &redshift.GetClusterCredentialsWithIAMInput{ClusterIdentifier: aws.String(DevCluster), DbName: aws.String("dev")}); err != nil {
		t.Errorf("GetClusterCredentialsWithIAM for %s beside the broken cluster: %v", DevCluster, err)
	}

	// A cluster whose postmaster died is rebooting until dev has started
	// it again: no credential meanwhile, and one again once it is back.
	cl := fresh("rebooting-cluster")
	createTestCluster(t, d2, cl, "rbtadmin", "Rbt12345x")
	killPostmaster(t, filepath.Join(dir, "backends", "cluster-"+cl, "postgres"))
	before := aws.ToString(describeCluster(t, d2, cl).ClusterStatus)
	_, err = c.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String(cl), DbUser: aws.String("rbtadmin"), DbName: aws.String("dev")})
	doctored := doctor.Run(ctx, doctor.Options{Cluster: cl, DBUser: "rbtadmin", Env: envOf(d2)})
	after := aws.ToString(describeCluster(t, d2, cl).ClusterStatus)
	// Checked only when the revive did not end between the two
	// DescribeClusters (it is 2 s away at most).
	if before == "rebooting" && after == "rebooting" {
		if code, status := apiErr(err); code != "InvalidClusterState" || status != 400 {
			t.Errorf("GetClusterCredentials for a rebooting cluster: %v, want InvalidClusterState 400", err)
		}
		if p := doctored.Problem; p == nil || p.Kind != doctor.KindNotAvailable || p.Code != "InvalidClusterState" ||
			!strings.Contains(p.Hint, "rebooting") || !strings.Contains(p.Hint, "available") || !strings.Contains(p.Hint, "2 s") {
			t.Errorf("doctor on a rebooting cluster: %s (%s), hint %q; want %s with a hint to wait until available (dev: 2 s)", p.Kind, p.Code, p.Hint, doctor.KindNotAvailable)
		}
	} else {
		t.Logf("the revive ended within the check (%s, then %s): the rebooting answer was not seen", before, after)
	}
	loginsAgainAsMaster(t, d2, cl, cred{"rbtadmin", "Rbt12345x"})
	if _, err := c.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String(cl), DbUser: aws.String("rbtadmin"), DbName: aws.String("dev")}); err != nil {
		t.Errorf("GetClusterCredentials once %s is back: %v", cl, err)
	}
}

// loginsAgainAsMaster waits (60 s at most) until c logs in to cluster id
// again and DescribeClusters says it is available.
func loginsAgainAsMaster(t *testing.T, d *Dev, id string, c cred) {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(60 * time.Second); ; {
		conn, err := clusterLogin(t, d, id, c)
		if err == nil && aws.ToString(describeCluster(t, d, id).ClusterStatus) == "available" {
			conn.Close(ctx)
			return
		}
		if err == nil {
			conn.Close(ctx)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not back within 60 s: %v", id, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// devServerless is a Redshift Serverless client of d's API as its admin.
func devServerless(d *Dev) *rss.Client {
	k := d.AccessKey
	return rss.New(rss.Options{Region: DevRegion, BaseEndpoint: aws.String(d.APIURL), Retryer: aws.NopRetryer{},
		Credentials: provider(aws.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret})})
}

// Found in the last stop note: one API-created workgroup whose server
// cannot be resumed (its data damaged) stopped `shiftkey dev` from
// starting at all ("workgroup broken-wg: backend of workgroup/…: pg_ctl
// start: …"). Dev now starts with the others, logs the broken one (name,
// data dir, error), reports it MODIFYING (Serverless has no failed status),
// refuses its credentials with ConflictException (409), and
// DeleteWorkgroup removes it.
func TestDevStartsBesideABrokenWorkgroup(t *testing.T) {
	ctx := context.Background()
	d, dir := startOwnDev(t)
	s := devServerless(d)
	if _, err := s.CreateNamespace(ctx, &rss.CreateNamespaceInput{NamespaceName: aws.String("broken-ns")}); err != nil {
		t.Fatal(err)
	}
	cw, err := s.CreateWorkgroup(ctx, &rss.CreateWorkgroupInput{WorkgroupName: aws.String("broken-wg"), NamespaceName: aws.String("broken-ns")})
	if err != nil {
		t.Fatal(err)
	}
	backend := filepath.Join(dir, "backends", aws.ToString(cw.Workgroup.WorkgroupId))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(backend, "postgres", "global", "pg_control")); err != nil {
		t.Fatal(err)
	}

	logs := &lockedBuffer{}
	d2 := newTestDev(dir)
	d2.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(logs, os.Stderr), &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := d2.Start(ctx); err != nil {
		d2.Close()
		t.Fatalf("dev does not start beside a broken workgroup: %v", err)
	}
	defer d2.Close()
	s = devServerless(d2)
	if _, err := s.GetCredentials(ctx, &rss.GetCredentialsInput{WorkgroupName: aws.String(DevWorkgroup), DbName: aws.String("dev")}); err != nil {
		t.Errorf("GetCredentials for %s beside the broken workgroup: %v", DevWorkgroup, err)
	}
	wg, err := s.GetWorkgroup(ctx, &rss.GetWorkgroupInput{WorkgroupName: aws.String("broken-wg")})
	if err != nil {
		t.Fatal(err)
	}
	if st := wg.Workgroup.Status; st != "MODIFYING" {
		t.Errorf("GetWorkgroup says the broken workgroup is %q, want MODIFYING", st)
	}
	_, err = s.GetCredentials(ctx, &rss.GetCredentialsInput{WorkgroupName: aws.String("broken-wg"), DbName: aws.String("dev")})
	if code, status := apiErr(err); code != "ConflictException" || status != 409 {
		t.Errorf("GetCredentials for the broken workgroup: %v, want ConflictException 409", err)
	}
	notAvailable(t, doctor.Options{Workgroup: "broken-wg", Env: envOf(d2)}, "redshift-serverless:GetCredentials", "ConflictException",
		"MODIFYING", "AVAILABLE", "2 s", "DeleteWorkgroup")
	// A caller who may not have the credential learns nothing of the
	// workgroup's state: the policy comes first.
	outsider := rss.New(rss.Options{Region: DevRegion, BaseEndpoint: aws.String(d2.APIURL), Retryer: aws.NopRetryer{},
		Credentials: provider(userKey(t, d2, "outsider", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift-serverless:GetWorkgroup","Resource":"*"}]}`))})
	_, err = outsider.GetCredentials(ctx, &rss.GetCredentialsInput{WorkgroupName: aws.String("broken-wg"), DbName: aws.String("dev")})
	if code, status := apiErr(err); code != "AccessDeniedException" || status != 403 {
		t.Errorf("GetCredentials for the broken workgroup by a caller without the permission: %v, want AccessDeniedException 403", err)
	}
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "workgroup=broken-wg") {
			line = l
		}
	}
	if !strings.Contains(line, "level=ERROR") || !strings.Contains(line, "data_dir="+filepath.Join(backend, "postgres")) || !strings.Contains(line, "error=") {
		t.Errorf("dev's log about the broken workgroup: %q, want an error naming it, its data dir and the error", line)
	}
	if _, err := s.DeleteWorkgroup(ctx, &rss.DeleteWorkgroupInput{WorkgroupName: aws.String("broken-wg")}); err != nil {
		t.Errorf("DeleteWorkgroup of the broken workgroup: %v", err)
	}
	if _, err := os.Stat(backend); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the deleted workgroup's data is still there: %v", err)
	}

	// A workgroup whose postmaster died is MODIFYING until dev has started
	// it again: no credential meanwhile, and one again once it is back.
	def, err := s.GetWorkgroup(ctx, &rss.GetWorkgroupInput{WorkgroupName: aws.String(DevWorkgroup)})
	if err != nil {
		t.Fatal(err)
	}
	status := func() string {
		t.Helper()
		wg, err := s.GetWorkgroup(ctx, &rss.GetWorkgroupInput{WorkgroupName: aws.String(DevWorkgroup)})
		if err != nil {
			t.Fatal(err)
		}
		return string(wg.Workgroup.Status)
	}
	killPostmaster(t, filepath.Join(dir, "backends", aws.ToString(def.Workgroup.WorkgroupId), "postgres"))
	before := status()
	_, err = s.GetCredentials(ctx, &rss.GetCredentialsInput{WorkgroupName: aws.String(DevWorkgroup), DbName: aws.String("dev")})
	if after := status(); before == "MODIFYING" && after == "MODIFYING" {
		if code, status := apiErr(err); code != "ConflictException" || status != 409 {
			t.Errorf("GetCredentials for a workgroup whose server is being started again: %v, want ConflictException 409", err)
		}
	} else {
		t.Logf("the revive ended within the check (%s, then %s): the MODIFYING answer was not seen", before, after)
	}
	for deadline := time.Now().Add(60 * time.Second); status() != "AVAILABLE"; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s not AVAILABLE within 60 s of its postmaster's kill", DevWorkgroup)
		}
	}
	if _, err := s.GetCredentials(ctx, &rss.GetCredentialsInput{WorkgroupName: aws.String(DevWorkgroup), DbName: aws.String("dev")}); err != nil {
		t.Errorf("GetCredentials once %s is back: %v", DevWorkgroup, err)
	}
}

// Found in the last stop note: a server whose postmaster died keeps its
// port when dev starts it again (the gateway reaches it there), and when
// another process took that port meanwhile dev tried every 2 s, logging
// the same error with PostgreSQL's log tail at each attempt. Keeping the
// port is right (restarting dev gives the server another); the cause is
// now logged once at ERROR, naming the port, the attempts after it at
// DEBUG, the cluster is rebooting meanwhile, and it comes back once the
// port is free.
func TestDevRevivalOnATakenPortIsLoggedOnce(t *testing.T) {
	ctx := context.Background()
	dir, err := tempDataDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	logs := &lockedBuffer{}
	d := newTestDev(dir)
	d.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if err := d.Start(ctx); err != nil {
		d.Close()
		t.Fatal(err)
	}
	defer d.Close()
	id := "squatted-cluster"
	master := cred{"sqtadmin", "Sqt12345x"}
	createTestCluster(t, d, id, master.user, master.password)
	data := filepath.Join(dir, "backends", "cluster-"+id, "postgres")
	pidFile, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	port := strings.Split(string(pidFile), "\n")[3] // postmaster.pid's fourth line
	// The port is taken between the kill and dev's next check (every 2 s);
	// should dev's check come first and start the server again there,
	// the kill is tried again once the server is back.
	var ln net.Listener
	for try := 1; ; try++ {
		killPostmaster(t, data)
		if ln, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", port)); err == nil {
			break
		}
		if try == 3 {
			t.Fatalf("the dead server's port %s, taken by dev's revive before the test thrice: %v", port, err)
		}
		loginsAgainAsMaster(t, d, id, master)
	}
	defer ln.Close()

	// Attempts at starting it again, as the log says: at least three.
	attempts := func(level string) int {
		n := 0
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "scope="+id) && strings.Contains(l, "level="+level) && strings.Contains(l, "start again") {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(60 * time.Second); attempts("ERROR")+attempts("DEBUG") < 3; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 3 attempts to start %s again logged within 60 s:\n%s", id, logs.String())
		}
	}
	if n := attempts("ERROR"); n != 1 {
		t.Errorf("%d ERROR lines for %d attempts to start %s again on its taken port, want 1", n, n+attempts("DEBUG"), id)
	}
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "scope="+id) && strings.Contains(l, "level=ERROR") {
			line = l
			break
		}
	}
	if !strings.Contains(line, "port="+port) || !strings.Contains(line, "another process holds its port") {
		t.Errorf("dev's log of the taken port: %q, want the cause and port=%s", line, port)
	}
	if st := aws.ToString(describeCluster(t, d, id).ClusterStatus); st != "rebooting" {
		t.Errorf("DescribeClusters says %s is %q while its port is taken, want rebooting", id, st)
	}
	ln.Close()
	loginsAgainAsMaster(t, d, id, master)
	// The cluster is available (and logs in) once the revive is done, and
	// the revive logs it just after (pgserver reviveDead): waited for.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "failed_attempts="); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("dev's log does not say the server started again after failed attempts:\n%s", logs.String())
			break
		}
	}
}

// userKey is the access key of a new IAM user of d, name, whose only
// policy is policy.
func userKey(t *testing.T, d *Dev, name, policy string) aws.Credentials {
	t.Helper()
	ctx := context.Background()
	admin := iam.New(iam.Options{Region: DevRegion, BaseEndpoint: aws.String(d.APIURL), Retryer: aws.NopRetryer{},
		Credentials: provider(aws.Credentials{AccessKeyID: d.AccessKey.ID, SecretAccessKey: d.AccessKey.Secret})})
	if _, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String("p"), PolicyDocument: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}
	out, err := admin.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.Credentials{AccessKeyID: aws.ToString(out.AccessKey.AccessKeyId), SecretAccessKey: aws.ToString(out.AccessKey.SecretAccessKey)}
}
