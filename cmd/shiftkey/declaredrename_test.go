package main

import (
	"context"
	"os"
	"path/filepath"
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
	dir := t.TempDir()
	env := map[string]string{
		"ADMIN_KEY": "AKIADECLAREDADMIN001", "ADMIN_SECRET": "declared-admin-secret-01",
		"CI_KEY": "AKIADECLAREDCI000001", "CI_SECRET": "declared-ci-secret-0001",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	yaml := declaredYAML(filepath.Join(dir, "serve.db"), `
  users:
    - name: admin
      access_keys: [{id: "${ADMIN_KEY}", secret: "${ADMIN_SECRET}"}]
      policies: {all: `+declaredAdminPolicy+`}
    - name: ci
      access_keys: [{id: "${CI_KEY}", secret: "${CI_SECRET}"}]
`)
	cfgPath := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	s := startLoggedServe(t, yaml, env, logs)
	defer s.Close()
	admin := iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.APIURL), Retryer: aws.NopRetryer{},
		Credentials: provider(aws.Credentials{AccessKeyID: env["ADMIN_KEY"], SecretAccessKey: env["ADMIN_SECRET"]})})
	ci := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.APIURL), Retryer: aws.NopRetryer{},
		Credentials: provider(aws.Credentials{AccessKeyID: env["CI_KEY"], SecretAccessKey: env["CI_SECRET"]})})
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
