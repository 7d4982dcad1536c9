package main

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// A declared user renamed and moved through the IAM API (UpdateUser) is
// the file's again after a reload of the unchanged file (a log rotation's
// SIGHUP), as a declared role's settings changed through UpdateRole are:
// the same user, its declared key signing as the declared ARN. The reload
// must not fail on the declared key the renamed user holds.
func TestAPIRenamedDeclaredUserComesBackAtReload(t *testing.T) {
	ctx := context.Background()
	f := newDeclaredPair(t)
	s, cfgPath, logs, admin, ci := f.s, f.cfgPath, f.logs, f.admin, f.ci
	signsAs := func() string {
		t.Helper()
		id, err := ci.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			t.Fatalf("ci's key: %v", err)
		}
		return aws.ToString(id.Arn)
	}
	before, err := admin.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("ci")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.UpdateUser(ctx, &iam.UpdateUserInput{UserName: aws.String("ci"), NewUserName: aws.String("ci-renamed"), NewPath: aws.String("/moved/")}); err != nil {
		t.Fatal(err)
	}
	if got := signsAs(); !strings.HasSuffix(got, ":user/moved/ci-renamed") {
		t.Fatalf("ci's key after the rename signs as %s", got)
	}
	if err := s.Reload(ctx, cfgPath); err != nil {
		t.Fatalf("reload of the unchanged file after the rename: %v", err)
	}
	if got := signsAs(); !strings.HasSuffix(got, ":user/ci") {
		t.Fatalf("ci's key after the reload signs as %s, want the declared user ci", got)
	}
	after, err := admin.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("ci")})
	if err != nil || aws.ToString(after.User.UserId) != aws.ToString(before.User.UserId) || aws.ToString(after.User.Path) != "/" {
		t.Fatalf("ci after the reload: %+v %v; want the same user (%s) at /", after, err, aws.ToString(before.User.UserId))
	}
	if _, err := admin.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("ci-renamed")}); apiCode(err) != "NoSuchEntity" {
		t.Fatalf("ci-renamed after the reload: %v, want NoSuchEntity", err)
	}
	if !strings.Contains(logs.String(), `"change":"user renamed"`) {
		t.Errorf("the reload's log does not say ci was renamed back:\n%s", logs.String())
	}
}
