package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgserver"
)

// Found in review: a PostgreSQL store that was down (refusing
// connections) or starting up (57P03) made every API answer
// InternalFailure (500), which the SDKs do not retry as an outage, as if
// shiftkey had a bug. A store that cannot be reached is transient: every
// API (Redshift's Query protocol, Serverless' JSON 1.1, IAM, STS) answers
// ServiceUnavailable (503), and once the store is back the same calls
// work, without restarting shiftkey.
func TestPostgresStoreOutageAnswersServiceUnavailable(t *testing.T) {
	if testing.Short() {
		t.Skip("stops and restarts a PostgreSQL server")
	}
	ctx := context.Background()
	srv := pgtest.Start(t)
	if err := srv.CreateDatabase(ctx, "store"); err != nil {
		t.Fatal(err)
	}
	r, cfgPath := replicaConfig(t, srv.ConnString(srv.Superuser(), "store"), newStoreKey(t), "")
	serveInProcess(t, cfgPath)
	endpoint := aws.String("http://" + r.api)
	admin := provider(aws.Credentials{AccessKeyID: replicaKeys["ADMIN_KEY"], SecretAccessKey: replicaKeys["ADMIN_SECRET"]})
	rs := r.redshift("CI_KEY", "CI_SECRET")
	im := iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: endpoint, Credentials: admin, Retryer: aws.NopRetryer{}})
	st := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: endpoint, Credentials: admin, Retryer: aws.NopRetryer{}})
	sl := redshiftserverless.New(redshiftserverless.Options{Region: "us-east-1", BaseEndpoint: endpoint, Credentials: admin, Retryer: aws.NopRetryer{}})
	n := 0
	calls := []struct {
		api string
		do  func() error
	}{
		{"redshift GetClusterCredentials", func() error {
			_, err := rs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("shared"),
				DbUser: aws.String("outage"), AutoCreate: aws.Bool(true)})
			return err
		}},
		{"iam CreateUser", func() error {
			n++
			_, err := im.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(fmt.Sprint("outage", n))})
			return err
		}},
		{"iam ListUsers", func() error {
			_, err := im.ListUsers(ctx, &iam.ListUsersInput{})
			return err
		}},
		{"sts GetCallerIdentity", func() error {
			_, err := st.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			return err
		}},
		{"redshift-serverless ListWorkgroups", func() error {
			_, err := sl.ListWorkgroups(ctx, &redshiftserverless.ListWorkgroupsInput{})
			return err
		}},
	}
	work := func(phase string) {
		t.Helper()
		for _, c := range calls {
			if err := c.do(); err != nil {
				t.Errorf("%s: %s failed: %v", phase, c.api, err)
			}
		}
	}
	unavailable := func(phase string) {
		t.Helper()
		for _, c := range calls {
			err := c.do()
			var re interface{ HTTPStatusCode() int }
			switch {
			case err == nil:
				t.Errorf("%s: %s succeeded", phase, c.api)
			case apiCode(err) != "ServiceUnavailable" || !errors.As(err, &re) || re.HTTPStatusCode() != 503:
				t.Errorf("%s: %s failed with %v, want ServiceUnavailable (HTTP 503)", phase, c.api, err)
			}
		}
	}
	work("before the outage")

	pgCtl(t, srv, "stop", "-m", "fast", "-w", "-t", "60", "-s")
	unavailable("store stopped")

	// A standby without hot standby is a server in recovery that refuses
	// every connection with 57P03 ("the database system is starting up",
	// then "... is not accepting connections") until it is promoted: a
	// startup held as long as the test needs.
	if err := os.WriteFile(filepath.Join(srv.DataDir(), "standby.signal"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	pgCtl(t, srv, "start", "-W", "-s", "-l", filepath.Join(srv.DataDir(), "outage.log"), "-o", "-c hot_standby=off")
	var last error
	poll(t, 30*time.Second, "the store refusing connections with 57P03", func() bool {
		c, err := pgx.Connect(ctx, srv.ConnString(srv.Superuser(), "store"))
		if err == nil {
			c.Close(ctx)
			t.Fatal("a standby with hot_standby=off accepted a connection")
		}
		last = err
		var pe *pgconn.PgError
		return errors.As(err, &pe) && pe.Code == "57P03"
	})
	t.Logf("store starting up: %v", last)
	unavailable("store starting up (57P03)")

	pgCtl(t, srv, "promote", "-w", "-t", "60", "-s")
	work("after the store is back")
}

// pgCtl runs pg_ctl -D srv's data dir with args, as its OS user.
func pgCtl(t *testing.T, srv *pgserver.Server, args ...string) {
	t.Helper()
	bin, err := pgserver.FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	args = append([]string{filepath.Join(bin, "pg_ctl"), "-D", srv.DataDir()}, args...)
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
	} else {
		cmd = exec.Command(args[0], args[1:]...)
	}
	cmd.Dir = "/"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl %v: %v\n%s", args[3:], err, out)
	}
}
