package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Found in an operator's review: `audit tail --principal ROLE_ARN` shows
// what every session of the role did, but `credentials list|revoke
// --principal ROLE_ARN` (the ARN an operator pastes from the console or a
// trust policy) matched nothing, "nothing revoked", exit 1: the
// credentials of a role's sessions carry the session's ARN
// (arn:aws:sts::ACCT:assumed-role/ROLE/SESSION), so a compromised role's
// credentials could only be revoked one session name at a time. A role's
// ARN, with its path or without, now selects the credentials of each of its
// sessions, and no other role's whose name starts the same.
func TestCredentialsRevokeByRoleARN(t *testing.T) {
	ctx := context.Background()
	ic := iam.New(iam.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: provider(devCreds()), Retryer: aws.NopRetryer{}})
	const may = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["redshift:GetClusterCredentials","redshift:CreateClusterUser"],"Resource":"*"}]}`
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/admin"},"Action":"sts:AssumeRole"}]}`
	name := fresh("RoleRevokee")
	// role is the role's ARN; the credential its session obtained is
	// for DbUser login.
	issue := func(role, path, session, dbUser string) string {
		r, err := ic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(role), Path: aws.String(path), AssumeRolePolicyDocument: aws.String(trust)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ic.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String("p"), PolicyDocument: aws.String(may)}); err != nil {
			t.Fatal(err)
		}
		ar, err := sts.New(sts.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: provider(devCreds()), Retryer: aws.NopRetryer{}}).
			AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: r.Role.Arn, RoleSessionName: aws.String(session)})
		if err != nil {
			t.Fatal(err)
		}
		sc := aws.Credentials{AccessKeyID: aws.ToString(ar.Credentials.AccessKeyId), SecretAccessKey: aws.ToString(ar.Credentials.SecretAccessKey),
			SessionToken: aws.ToString(ar.Credentials.SessionToken)}
		if _, err := redshift.New(redshift.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: provider(sc), Retryer: aws.NopRetryer{}}).
			GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String(DevCluster), DbUser: aws.String(dbUser), AutoCreate: aws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
		return aws.ToString(r.Role.Arn)
	}
	victim, other := strings.ToLower(fresh("rolevictim")), strings.ToLower(fresh("roleother"))
	arn := issue(name, "/team/", "s1", victim)
	issue(name+"Other", "/", "s1", other) // a name the first one's starts
	if arn != "arn:aws:iam::000000000000:role/team/"+name {
		t.Fatalf("role ARN %s", arn)
	}

	var out bytes.Buffer
	for _, p := range []string{arn, "arn:aws:iam::000000000000:role/" + name} {
		out.Reset()
		if err := run(ctx, []string{"credentials", "list", "--data-dir", dev.DataDir, "--principal", p}, &out, &out); err != nil ||
			!strings.Contains(out.String(), "IAMA:"+victim) || strings.Contains(out.String(), "IAMA:"+other) {
			t.Errorf("list --principal %s: %v\n%s", p, err, out.String())
		}
	}
	out.Reset()
	err := run(ctx, []string{"credentials", "revoke", "--data-dir", dev.DataDir, "--principal", arn}, &out, &out)
	if err != nil || !strings.HasPrefix(out.String(), "1 credentials revoked") || !strings.Contains(out.String(), "IAMA:"+victim) {
		t.Fatalf("revoke --principal %s: %v\n%s", arn, err, out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"credentials", "list", "--data-dir", dev.DataDir, "--login", "IAMA:" + other}, &out, &out); err != nil || !strings.Contains(out.String(), "IAMA:"+other) {
		t.Fatalf("the other role's credential after the revoke: %v\n%s", err, out.String())
	}
}
