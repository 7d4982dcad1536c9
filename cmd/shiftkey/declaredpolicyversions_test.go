package main

import (
	"context"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// A declared managed policy takes versions through the IAM API, as its
// other API changes are taken, and the next start makes the file's
// document its one version again (logged as "policy updated"), under the
// default's id.
func TestServeRestartDropsAPIVersionsOfADeclaredPolicy(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "serve.db")
	env := map[string]string{"ADMIN_KEY": "AKIADECLAREDADMIN001", "ADMIN_SECRET": "declared-admin-secret-01"}
	const fileDoc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}]}`
	yaml := declaredYAML(db, `
  policies:
    - {name: mp, document: '`+fileDoc+`'}
  users:
    - name: admin
      access_keys: [{id: "${ADMIN_KEY}", secret: "${ADMIN_SECRET}"}]
      policies: {all: `+declaredAdminPolicy+`}
      managed_policies: [mp]
`)
	s := startLoggedServe(t, yaml, env, &lockedBuffer{})
	client := func(s *Serve) *iam.Client {
		return iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.APIURL), Retryer: aws.NopRetryer{},
			Credentials: provider(aws.Credentials{AccessKeyID: env["ADMIN_KEY"], SecretAccessKey: env["ADMIN_SECRET"]})})
	}
	arn := aws.String("arn:aws:iam::" + s.Config.AccountID + ":policy/mp")
	if _, err := client(s).CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: arn, SetAsDefault: true,
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetUser","Resource":"*"}]}`)}); err != nil {
		t.Fatalf("CreatePolicyVersion on a declared policy: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	logs := &lockedBuffer{}
	s = startLoggedServe(t, yaml, env, logs)
	defer s.Close()
	vs, err := client(s).ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: arn})
	if err != nil || len(vs.Versions) != 1 || aws.ToString(vs.Versions[0].VersionId) != "v2" || !vs.Versions[0].IsDefaultVersion {
		t.Fatalf("versions after the restart: %+v, %v; want v2 alone, default", vs, err)
	}
	v, err := client(s).GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: arn, VersionId: aws.String("v2")})
	if err != nil {
		t.Fatal(err)
	}
	if doc, _ := url.QueryUnescape(aws.ToString(v.PolicyVersion.Document)); doc != fileDoc {
		t.Fatalf("default version's document after the restart: %s, want the file's", doc)
	}
	updated := false
	for _, r := range logs.records(t) {
		if r["msg"] == "declared state applied" && r["change"] == "policy updated" && r["policy"] == "mp" {
			updated = true
		}
	}
	if !updated {
		t.Fatalf("no \"policy updated\" line for mp in the start's log:\n%s", logs)
	}
}
