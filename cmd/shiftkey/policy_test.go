package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/shiftkey/shiftkey"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicyExplain(t *testing.T) {
	allow := writeFile(t, "allow.json", `{"Version":"2012-10-17","Statement":[{"Sid":"SelfService","Effect":"Allow","Action":"redshift:GetClusterCredentials",
		"Resource":"arn:aws:redshift:us-west-2:123456789012:dbuser:examplecluster/${redshift:DbUser}",
		"Condition":{"StringEquals":{"aws:userid":"AIDIODR4TAW7CSEXAMPLE:${redshift:DbUser}@yourdomain.com"}}}]}`)
	deny := writeFile(t, "deny.json", `{"Version":"2012-10-17","Statement":[{"Sid":"NoLong","Effect":"Deny","Action":"redshift:GetClusterCredentials","Resource":"*",
		"Condition":{"StringEquals":{"redshift:DurationSeconds":"3600"}}}]}`)
	tests := []struct {
		name    string
		args    []string
		wantErr error
		want    []string
	}{
		{"allowed by the self-service statement", []string{"--policy", allow, "--policy", deny, "--action", "redshift:GetClusterCredentials",
			"--resource", "arn:aws:redshift:us-west-2:123456789012:dbuser:examplecluster/alice",
			"--context", "redshift:DbUser=alice", "--context", "aws:userid=AIDIODR4TAW7CSEXAMPLE:alice@yourdomain.com"},
			nil, []string{"decision: allow", "allow.json Statement[0] (Sid SelfService)"}},
		{"someone else's user name", []string{"--policy", allow, "--action", "redshift:GetClusterCredentials",
			"--resource", "arn:aws:redshift:us-west-2:123456789012:dbuser:examplecluster/bob",
			"--context", "redshift:DbUser=bob", "--context", "aws:userid=AIDIODR4TAW7CSEXAMPLE:alice@yourdomain.com"},
			errDenied, []string{"decision: implicitDeny", "no statement"}},
		{"explicit deny on DurationSeconds", []string{"--policy", allow, "--policy", deny, "--action", "redshift:GetClusterCredentials",
			"--resource", "arn:aws:redshift:us-west-2:123456789012:dbuser:examplecluster/alice",
			"--context", "redshift:DbUser=alice", "--context", "aws:userid=AIDIODR4TAW7CSEXAMPLE:alice@yourdomain.com", "--context", "redshift:DurationSeconds=3600"},
			errDenied, []string{"decision: explicitDeny", "deny.json Statement[0] (Sid NoLong)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), append([]string{"policy", "explain"}, tt.args...), &out, &errOut)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v (%s)", err, tt.wantErr, errOut.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Fatalf("output %q lacks %q", out.String(), w)
				}
			}
		})
	}
}

// A denied API call can be explained by its request id, and the stored
// policies of a principal can be simulated.
func TestPolicyWhyAndPrincipal(t *testing.T) {
	ctx := context.Background()
	user := fresh("wendy")
	k := dev.AccessKey
	admin := iam.New(iam.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Retryer: aws.NopRetryer{},
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret}, nil
		})})
	if _, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(user)}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(user), PolicyName: aws.String("deny-admin"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:GetClusterCredentials","Resource":"*"},
			{"Sid":"NotTheMaster","Effect":"Deny","Action":"redshift:GetClusterCredentials","Resource":"arn:aws:redshift:*:*:dbuser:*/awsuser"}]}`)}); err != nil {
		t.Fatal(err)
	}
	key, err := admin.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(user)})
	if err != nil {
		t.Fatal(err)
	}
	wendy := redshift.New(redshift.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Retryer: aws.NopRetryer{},
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: aws.ToString(key.AccessKey.AccessKeyId), SecretAccessKey: aws.ToString(key.AccessKey.SecretAccessKey)}, nil
		})})
	_, err = wendy.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String(DevCluster), DbUser: aws.String("awsuser")})
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.ServiceRequestID() == "" {
		t.Fatalf("want a denial with a request id, got %v", err)
	}
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"policy", "why", "--data-dir", dev.DataDir, re.ServiceRequestID()}, &out, &errOut); err != nil {
		t.Fatalf("policy why: %v %s", err, errOut.String())
	}
	for _, w := range []string{"user/" + user, "redshift:GetClusterCredentials", "dbuser:dev-cluster/awsuser", "explicitDeny", "Sid NotTheMaster"} {
		if !strings.Contains(out.String(), w) {
			t.Fatalf("policy why output %q lacks %q", out.String(), w)
		}
	}
	out.Reset()
	err = run(ctx, []string{"policy", "explain", "--data-dir", dev.DataDir, "--principal", "user/" + user, "--action", "redshift:GetClusterCredentials",
		"--resource", "arn:aws:redshift:us-east-1:000000000000:dbuser:dev-cluster/alice"}, &out, &errOut)
	if err != nil || !strings.Contains(out.String(), "decision: allow") {
		t.Fatalf("explain stored principal: %v %s %s", err, out.String(), errOut.String())
	}
}

// Finding 7 (issue 12): an AssumeRole refused by the role's trust policy
// was not recorded, so `policy why` could not explain it. Every denial,
// trust ones included, is now recorded with the statement that decided.
func TestPolicyWhyAssumeRoleTrustDenial(t *testing.T) {
	ctx := context.Background()
	user, role := fresh("tristan"), fresh("OnlyAdmin")
	k := dev.AccessKey
	adminCreds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret}, nil
	})
	admin := iam.New(iam.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Retryer: aws.NopRetryer{}, Credentials: adminCreds})
	if _, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(user)}); err != nil {
		t.Fatal(err)
	}
	// tristan may assume any role as far as his own policy goes…
	if _, err := admin.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(user), PolicyName: aws.String("assume"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`)}); err != nil {
		t.Fatal(err)
	}
	// …but the role trusts only another principal, and denies him by name.
	trust := `{"Version":"2012-10-17","Statement":[{"Sid":"TrustAdmin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + shiftkey.DefaultAccountID + `:user/` + DevAdminUser + `"},"Action":"sts:AssumeRole"},
		{"Sid":"NotTristan","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::` + shiftkey.DefaultAccountID + `:user/` + user + `"},"Action":"sts:AssumeRole"}]}`
	r, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(role), AssumeRolePolicyDocument: aws.String(trust)})
	if err != nil {
		t.Fatal(err)
	}
	key, err := admin.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(user)})
	if err != nil {
		t.Fatal(err)
	}
	tristan := sts.New(sts.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Retryer: aws.NopRetryer{},
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: aws.ToString(key.AccessKey.AccessKeyId), SecretAccessKey: aws.ToString(key.AccessKey.SecretAccessKey)}, nil
		})})
	_, err = tristan.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: r.Role.Arn, RoleSessionName: aws.String("s1")})
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != 403 || re.ServiceRequestID() == "" {
		t.Fatalf("want a 403 denial with a request id, got %v", err)
	}
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"policy", "why", "--data-dir", dev.DataDir, re.ServiceRequestID()}, &out, &errOut); err != nil {
		t.Fatalf("policy why: %v %s", err, errOut.String())
	}
	for _, w := range []string{"user/" + user, "sts:AssumeRole", aws.ToString(r.Role.Arn), "explicitDeny", "trust policy", "Sid NotTristan"} {
		if !strings.Contains(out.String(), w) {
			t.Fatalf("policy why output %q lacks %q", out.String(), w)
		}
	}
}

// Found in an operator's review: policy why and policy explain --principal
// read only dev's data dir, so they could not explain a denial of a serve
// (SQLite with its store key, or the replicas' PostgreSQL). --config opens
// serve's store as credentials and audit do.
func TestPolicyToolsReadServesStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	yaml := opsYAML(dir, "")
	cfgPath := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range opsEnv {
		t.Setenv(k, v)
	}
	s := startServe(t, yaml, opsEnv)
	ops := rsClient(strings.TrimPrefix(s.APIURL, "http://"), opsEnv["OPS_KEY_ID"], opsEnv["OPS_SECRET"])
	_, err := ops.DescribeClusters(ctx, &redshift.DescribeClustersInput{})
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.ServiceRequestID() == "" {
		t.Fatalf("want a denial with a request id, got %v", err)
	}
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"policy", "why", "--config", cfgPath, re.ServiceRequestID()}, &out, &errOut); err != nil {
		t.Fatalf("policy why --config: %v %s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "user/ops") || !strings.Contains(out.String(), "redshift:DescribeClusters") {
		t.Fatalf("policy why --config said:\n%s", out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"policy", "explain", "--config", cfgPath, "--principal", "user/ops", "--action", "redshift:GetClusterCredentials",
		"--resource", "arn:aws:redshift:us-east-1:000000000000:dbuser:opsc/x"}, &out, &errOut); err != nil {
		t.Fatalf("policy explain --config: %v %s %s", err, out.String(), errOut.String())
	}
}

// A tool pointed at a directory without dev's store says so, and leaves
// the directory as it was: it opened (and made) an empty store there, and
// `policy why` answered "no denial recorded".
func TestToolsRefuseADataDirWithoutAStore(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"policy", "why", "--data-dir", dir, "req-1"},
		{"credentials", "list", "--data-dir", dir},
	} {
		var out bytes.Buffer
		err := run(context.Background(), args, &out, &out)
		if err == nil || !strings.Contains(err.Error(), "no store at") {
			t.Errorf("%v: %v, want no store at …", args, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("the tools left %v in a directory without a store", entries)
	}
}
