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

// A RedshiftDbRoles name longer than PostgreSQL's 63 bytes names no role
// (the backend would truncate it, to another role's name): it is not
// joined, like any unknown role, rather than the role its first 63 bytes
// name. Otherwise "<group>x" reaches <group>, past a policy that names
// <group> (here a trust policy that denies tagging a session with it).
func TestLongDbRoleNameIsNotTruncatedToAnother(t *testing.T) {
	ctx := context.Background()
	group := "trunc_payroll_" + strings.Repeat("x", 63-len("trunc_payroll_"))
	role := fresh("LongTags")
	adminIAM := iam.New(iam.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: provider(devCreds()), Retryer: aws.NopRetryer{}})
	trust := `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/admin"},"Action":["sts:AssumeRole","sts:TagSession"]},
		{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/admin"},"Action":"sts:TagSession",
		 "Condition":{"StringEquals":{"aws:RequestTag/RedshiftDbRoles":"` + group + `"}}}]}`
	if _, err := adminIAM.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(role), AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
		t.Fatal(err)
	}
	if _, err := adminIAM.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String("withiam"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:GetClusterCredentialsWithIAM","Resource":"arn:aws:redshift:*:*:dbname:dev-cluster/dev"}]}`)}); err != nil {
		t.Fatal(err)
	}
	adminExec(t, dev, "CREATE ROLE "+group+" NOLOGIN", "CREATE TABLE payroll (amount int)", "INSERT INTO payroll VALUES (7)",
		"REVOKE ALL ON payroll FROM PUBLIC", "GRANT SELECT ON payroll TO "+group)
	t.Cleanup(func() {
		for deadline := time.Now().Add(10 * time.Second); member(t, "IAMR:"+role, group) && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		adminExec(t, dev, "DROP TABLE payroll", "DROP ROLE "+group)
	})

	st := sts.New(sts.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: provider(devCreds()), Retryer: aws.NopRetryer{}})
	assume := func(tag string) (*sts.AssumeRoleOutput, error) {
		return st.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::000000000000:role/" + role), RoleSessionName: aws.String("s1"),
			Tags: []ststypes.Tag{{Key: aws.String("RedshiftDbRoles"), Value: aws.String(tag)}}})
	}
	if _, err := assume(group); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("tagging a session with %s: %v, want AccessDenied", group, err)
	}
	ar, err := assume(group + "_x")
	if err != nil {
		t.Fatal(err)
	}
	sess := aws.Credentials{AccessKeyID: aws.ToString(ar.Credentials.AccessKeyId), SecretAccessKey: aws.ToString(ar.Credentials.SecretAccessKey), SessionToken: aws.ToString(ar.Credentials.SessionToken)}
	rs := redshift.New(redshift.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: provider(sess), Retryer: aws.NopRetryer{}})
	out, err := rs.GetClusterCredentialsWithIAM(ctx, &redshift.GetClusterCredentialsWithIAMInput{ClusterIdentifier: aws.String(DevCluster), DbName: aws.String("dev")})
	if err != nil {
		t.Fatal(err)
	}
	conn := mustConnect(t, dev, cred{aws.ToString(out.DbUser), aws.ToString(out.DbPassword)}, "dev")
	var amount int
	if err := conn.QueryRow(ctx, "SELECT amount FROM payroll").Scan(&amount); err == nil {
		t.Fatalf("the session tagged %s_x reads payroll (%d) as a member of %s", group, amount, group)
	}
	if member(t, "IAMR:"+role, group) {
		t.Fatalf("IAMR:%s was granted %s for a tag naming %s_x", role, group, group)
	}
}
