package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
)

func devCreds() aws.Credentials {
	return aws.Credentials{AccessKeyID: dev.AccessKey.ID, SecretAccessKey: dev.AccessKey.Secret}
}

// An assumed role's WithIAM credential logs in as IAMR:<role> with the
// roles of its RedshiftDbRoles session tag; an IAM user's as IAM:<user>.
func TestWithIAMLogin(t *testing.T) {
	ctx := context.Background()
	role := fresh("Reporting")
	adminIAM := iam.New(iam.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: provider(devCreds()), Retryer: aws.NopRetryer{}})
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/admin"},"Action":["sts:AssumeRole","sts:TagSession"]}]}`
	if _, err := adminIAM.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(role), AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
		t.Fatal(err)
	}
	if _, err := adminIAM.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String("withiam"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:GetClusterCredentialsWithIAM","Resource":"arn:aws:redshift:*:*:dbname:dev-cluster/dev"}]}`)}); err != nil {
		t.Fatal(err)
	}
	adminExec(t, dev,
		"CREATE ROLE finance_reader NOLOGIN",
		"CREATE TABLE ledger (amount int)",
		"INSERT INTO ledger VALUES (42)",
		"REVOKE ALL ON ledger FROM PUBLIC",
		"GRANT SELECT ON ledger TO finance_reader",
	)
	t.Cleanup(func() {
		// The connection below, closed first (cleanups run last in, first
		// out), ends a session whose grant of finance_reader the gateway
		// then revokes: dropping the role meanwhile can fail with "tuple
		// concurrently deleted" (seen in CI).
		for deadline := time.Now().Add(10 * time.Second); member(t, "IAMR:"+role, "finance_reader") && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		adminExec(t, dev, "DROP TABLE ledger", "DROP ROLE finance_reader")
	})

	st := sts.New(sts.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: provider(devCreds()), Retryer: aws.NopRetryer{}})
	ar, err := st.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::000000000000:role/" + role), RoleSessionName: aws.String("q4"),
		Tags: []ststypes.Tag{{Key: aws.String("RedshiftDbRoles"), Value: aws.String("finance_reader:no_such_role")}}})
	if err != nil {
		t.Fatal(err)
	}
	sess := aws.Credentials{AccessKeyID: aws.ToString(ar.Credentials.AccessKeyId), SecretAccessKey: aws.ToString(ar.Credentials.SecretAccessKey), SessionToken: aws.ToString(ar.Credentials.SessionToken)}
	rs := redshift.New(redshift.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: provider(sess), Retryer: aws.NopRetryer{}})
	out, err := rs.GetClusterCredentialsWithIAM(ctx, &redshift.GetClusterCredentialsWithIAMInput{ClusterIdentifier: aws.String(DevCluster), DbName: aws.String("dev")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.DbUser) != "IAMR:"+role || out.NextRefreshTime == nil {
		t.Fatalf("DbUser %q NextRefreshTime %v", aws.ToString(out.DbUser), out.NextRefreshTime)
	}
	conn := mustConnect(t, dev, cred{aws.ToString(out.DbUser), aws.ToString(out.DbPassword)}, "dev")
	if u := currentUser(t, conn); u != "IAMR:"+role {
		t.Fatalf("current_user %q", u)
	}
	var amount int
	if err := conn.QueryRow(ctx, "SELECT amount FROM ledger").Scan(&amount); err != nil || amount != 42 {
		t.Fatalf("RedshiftDbRoles role not joined: %d %v", amount, err)
	}
	// Other databases are not in the role's policy.
	_, err = rs.GetClusterCredentialsWithIAM(ctx, &redshift.GetClusterCredentialsWithIAMInput{ClusterIdentifier: aws.String(DevCluster), DbName: aws.String("other")})
	if err == nil || !strings.Contains(err.Error(), "AccessDenied") || !strings.Contains(err.Error(), "assumed-role/"+role+"/q4") {
		t.Fatalf("WithIAM for another database: %v", err)
	}

	// The admin IAM user maps to IAM:admin.
	out, err = apiClient(dev).GetClusterCredentialsWithIAM(ctx, &redshift.GetClusterCredentialsWithIAMInput{ClusterIdentifier: aws.String(DevCluster)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.DbUser) != "IAM:admin" {
		t.Fatalf("DbUser %q", aws.ToString(out.DbUser))
	}
	conn2 := mustConnect(t, dev, cred{aws.ToString(out.DbUser), aws.ToString(out.DbPassword)}, "dev")
	if u := currentUser(t, conn2); u != "IAM:admin" {
		t.Fatalf("current_user %q", u)
	}
}
