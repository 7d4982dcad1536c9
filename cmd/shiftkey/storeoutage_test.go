package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/shiftkey/shiftkey/internal/pgtest"
)

// Found in review: a PostgreSQL store that was down (refusing
// connections) or starting up (57P03) made every API answer
// InternalFailure (500), as a bug in shiftkey would. A store that cannot
// be reached is transient: every API (Redshift's Query protocol,
// Serverless' JSON 1.1, IAM, STS) answers ServiceUnavailable (503), and
// once the store is back the same calls work, without restarting
// shiftkey.
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

	pgtest.PgCtl(t, srv, "stop", "-m", "fast", "-w", "-t", "60", "-s")
	unavailable("store stopped")

	// Held in recovery, as a server starting up: 57P03 until promoted.
	pgtest.StartInRecovery(t, srv)
	unavailable("store starting up (57P03)")

	pgtest.PgCtl(t, srv, "promote", "-w", "-t", "60", "-s")
	work("after the store is back")
}
