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

// A declared key that an operator deletes through the IAM API, the usual
// way to stop a leaked key, stays stopped across a reload of the unchanged
// file (a log rotation's SIGHUP): it is recreated, as the file declares it,
// but Inactive, as a declared key deactivated through the API stays
// Inactive. It came back Active, its leaked secret signing again.
func TestAPIDeletedDeclaredKeyStaysStoppedAcrossAReload(t *testing.T) {
	ctx := context.Background()
	f := newDeclaredPair(t)
	s, cfgPath, logs, admin, leaked, env := f.s, f.cfgPath, f.logs, f.admin, f.ci, f.env
	signs := func() error {
		_, err := leaked.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		return err
	}
	if err := signs(); err != nil {
		t.Fatalf("ci's key before: %v", err)
	}
	if _, err := admin.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("ci"), AccessKeyId: aws.String(env["CI_KEY"])}); err != nil {
		t.Fatal(err)
	}
	if err := signs(); apiCode(err) != "InvalidClientTokenId" {
		t.Fatalf("ci's deleted key: %v", err)
	}
	if err := s.Reload(ctx, cfgPath); err != nil {
		t.Fatal(err)
	}
	if err := signs(); apiCode(err) != "InvalidClientTokenId" {
		t.Fatalf("ci's key deleted through the API, after a reload of the unchanged file: %v, want InvalidClientTokenId", err)
	}
	keys, err := admin.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("ci")})
	if err != nil || len(keys.AccessKeyMetadata) != 1 || keys.AccessKeyMetadata[0].Status != "Inactive" {
		t.Fatalf("ci's keys after the reload: %+v %v, want the declared key, Inactive", keys, err)
	}
	if !strings.Contains(logs.String(), "key recreated Inactive: deleted through the IAM API") {
		t.Errorf("the reload's log does not say the key came back Inactive:\n%s", logs.String())
	}
}

// declaredPair is a serve whose config file declares an admin user and
// user ci, each with a key: the config's path, serve's log, IAM as admin
// and STS as ci's key.
type declaredPair struct {
	s       *Serve
	cfgPath string
	logs    *lockedBuffer
	admin   *iam.Client
	ci      *sts.Client
	env     map[string]string
}

func newDeclaredPair(t *testing.T) declaredPair {
	t.Helper()
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
	f := declaredPair{cfgPath: filepath.Join(dir, "serve.yaml"), logs: &lockedBuffer{}, env: env}
	if err := os.WriteFile(f.cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	f.s = startLoggedServe(t, yaml, env, f.logs)
	t.Cleanup(func() { f.s.Close() })
	f.admin = iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.s.APIURL), Retryer: aws.NopRetryer{},
		Credentials: provider(aws.Credentials{AccessKeyID: env["ADMIN_KEY"], SecretAccessKey: env["ADMIN_SECRET"]})})
	f.ci = sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.s.APIURL), Retryer: aws.NopRetryer{},
		Credentials: provider(aws.Credentials{AccessKeyID: env["CI_KEY"], SecretAccessKey: env["CI_SECRET"]})})
	return f
}
