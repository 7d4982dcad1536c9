package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// Found in an operator's review: `policy explain --principal` took only
// user/NAME or role/NAME, so the ARN an operator pastes from the audit log
// or `credentials list` was refused ("want user/NAME or role/NAME"), and a
// user's name with its path (user/eng/NAME, as the ARN writes it) was "not
// found". A user's or role's ARN, and the path, are taken (the name is
// unique whatever the path); a session's ARN is refused naming the role to
// give instead, since the session's own policy is not the role's.
func TestPolicyExplainTakesARNs(t *testing.T) {
	ctx := context.Background()
	ic := iam.New(iam.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: provider(devCreds()), Retryer: aws.NopRetryer{}})
	user := fresh("explainarn")
	if _, err := ic.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(user), Path: aws.String("/eng/")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ic.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(user), PolicyName: aws.String("p"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:GetClusterCredentials","Resource":"*"}]}`)}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"arn:aws:iam::000000000000:user/eng/" + user, "user/eng/" + user, "user/" + user} {
		var out, errOut bytes.Buffer
		err := run(ctx, []string{"policy", "explain", "--data-dir", dev.DataDir, "--principal", p, "--action", "redshift:GetClusterCredentials"}, &out, &errOut)
		if err != nil || !strings.Contains(out.String(), "decision: allow") {
			t.Errorf("explain --principal %s: %v\n%s", p, err, out.String())
		}
	}
	var out bytes.Buffer
	err := run(ctx, []string{"policy", "explain", "--data-dir", dev.DataDir, "--principal", "arn:aws:sts::000000000000:assumed-role/Analyst/s1",
		"--action", "redshift:GetClusterCredentials"}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "role/Analyst") || !strings.Contains(err.Error(), "--session-policy") {
		t.Errorf("explain --principal of a session: %v\n%s", err, out.String())
	}
}
