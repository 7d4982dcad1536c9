package http_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/authz"
	shttp "github.com/shiftkey/shiftkey/http"
	"github.com/shiftkey/shiftkey/iamapi"
	rs "github.com/shiftkey/shiftkey/redshift"
	"github.com/shiftkey/shiftkey/serverless"
	"github.com/shiftkey/shiftkey/sqlite"
	"github.com/shiftkey/shiftkey/storecache"
	sksts "github.com/shiftkey/shiftkey/sts"
)

// The fixture every test of this package starts from, and the helpers
// they share: users, SDK clients, error checks.

const account = shiftkey.DefaultAccountID

type fixture struct {
	srv   *httptest.Server
	api   *shttp.Server
	store *sqlite.DB
	path  string                     // the store's file
	keys  map[string]aws.Credentials // by user name
}

// newFixture runs the API over a fresh SQLite store with one cluster and
// three users: admin (everything), limited (only alice on dev-cluster, no
// groups, no auto-create) and denied (everything but an explicit deny).
func newFixture(t *testing.T) *fixture { t.Helper(); return newFixtureOver(t, false) }

// newCachedFixture is newFixture with the services reading the store
// through storecache, as serve and dev do.
func newCachedFixture(t *testing.T) *fixture { t.Helper(); return newFixtureOver(t, true) }

func newFixtureOver(t *testing.T, cached bool) *fixture {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "api.db")
	store, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	err = store.CreateCluster(ctx, &shiftkey.Cluster{Identifier: "dev-cluster", NamespaceID: "5ca9e12f-eaa3-4255-9a16-97a9c100d60e",
		NodeType: "dc2.large", DBName: "dev", MasterUsername: "awsuser", Status: "available",
		Endpoint: shiftkey.Endpoint{Address: "127.0.0.1", Port: 5439}, CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: store, path: path, keys: map[string]aws.Credentials{}}
	for name, policy := range map[string]string{
		"admin": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`,
		"limited": `{"Version":"2012-10-17","Statement":[{"Sid":"AliceOnly","Effect":"Allow","Action":"redshift:GetClusterCredentials",
			"Resource":["arn:aws:redshift:us-east-1:` + account + `:dbuser:dev-cluster/alice","arn:aws:redshift:us-east-1:` + account + `:dbname:dev-cluster/dev"]}]}`,
		"denied": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},
			{"Sid":"NoCredentials","Effect":"Deny","Action":"redshift:GetClusterCredentials","Resource":"*"}]}`,
	} {
		f.addUser(t, name, policy)
	}
	var st shiftkey.Store = store
	if cached {
		st = storecache.New(store)
	}
	authorizer := &authz.Authorizer{Store: st}
	now := time.Now
	issuer := &rs.Service{Store: st, Authorizer: authorizer, Now: now}
	api := &shttp.Server{
		Identities: st,
		Redshift:   issuer,
		Serverless: &serverless.Service{Store: st, Authorizer: authorizer, Issuer: issuer, Now: now},
		IAM:        &iamapi.Service{Store: st, Authorizer: authorizer, AccountID: account, Now: now},
		STS:        &sksts.Service{Store: st, Authorizer: authorizer, AccountID: account, Now: now},
		AccountID:  account,
		Now:        now,
	}
	f.api = api
	// After the server closes, before the store does: the writes calls
	// started beside them (their keys' use) land first.
	t.Cleanup(api.WaitBackground)
	f.srv = httptest.NewServer(api.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

// client is a Redshift client signed with the key of user.
func (f *fixture) client(user string) *redshift.Client { return f.redshiftClient(f.keys[user]) }

// addUser creates a user with one inline policy and returns its key.
func (f *fixture) addUser(t *testing.T, name, policy string) aws.Credentials {
	t.Helper()
	ctx := context.Background()
	u := &shiftkey.Entity{Kind: shiftkey.KindUser, Name: name, ID: shiftkey.NewID("AIDA"), Path: "/", ARN: "arn:aws:iam::" + account + ":user/" + name, CreatedAt: time.Now()}
	k := &shiftkey.AccessKey{ID: shiftkey.NewID("AKIA"), Secret: shiftkey.NewSecretKey(), UserName: name, Status: "Active", CreatedAt: time.Now()}
	if err := f.store.CreateEntity(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := f.store.CreateAccessKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := f.store.PutInlinePolicy(ctx, shiftkey.KindUser, name, shiftkey.PolicyDocument{Name: "p", Document: policy}); err != nil {
		t.Fatal(err)
	}
	c := aws.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret}
	f.keys[name] = c
	return c
}

func wantAPIError(t *testing.T, err error, code string) {
	t.Helper()
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != code {
		t.Fatalf("got %v, want %s", err, code)
	}
}

// sdk is the configuration of every SDK client of these tests: the
// fixture's endpoint, us-east-1, c's key and no retries.
func (f *fixture) sdk(c aws.Credentials) aws.Config {
	return aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(f.srv.URL), Credentials: provider(c),
		Retryer: func() aws.Retryer { return aws.NopRetryer{} }}
}

// recordedSDK is admin's configuration with every request kept by rec.
func (f *fixture) recordedSDK(rec *recorder) aws.Config {
	cfg := f.sdk(f.keys["admin"])
	cfg.HTTPClient = rec
	return cfg
}

func (f *fixture) serverlessClient(c aws.Credentials) *redshiftserverless.Client {
	return redshiftserverless.NewFromConfig(f.sdk(c))
}

func provider(c aws.Credentials) aws.CredentialsProviderFunc {
	return func(context.Context) (aws.Credentials, error) { return c, nil }
}

func (f *fixture) iamClient(c aws.Credentials) *iam.Client { return iam.NewFromConfig(f.sdk(c)) }

func (f *fixture) stsClient(c aws.Credentials) *sts.Client { return sts.NewFromConfig(f.sdk(c)) }

func (f *fixture) redshiftClient(c aws.Credentials) *redshift.Client {
	return redshift.NewFromConfig(f.sdk(c))
}

func apiCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

func mustOK(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// httpStatus is the HTTP status of an SDK error, 0 when there is none.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// newIAMUser is newIAMUserKey's IAM client.
func (f *fixture) newIAMUser(t *testing.T, name, policy string) *iam.Client {
	t.Helper()
	return f.iamClient(f.newIAMUserKey(t, name, policy))
}

// newIAMUserKey creates a user with an inline policy and an access key
// through the IAM API and returns the key.
func (f *fixture) newIAMUserKey(t *testing.T, name, policy string) aws.Credentials {
	t.Helper()
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	_, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)})
	mustOK(t, "CreateUser "+name, err)
	if policy != "" {
		_, err = admin.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String("p"), PolicyDocument: aws.String(policy)})
		mustOK(t, "PutUserPolicy "+name, err)
	}
	k, err := admin.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(name)})
	mustOK(t, "CreateAccessKey "+name, err)
	return aws.Credentials{AccessKeyID: aws.ToString(k.AccessKey.AccessKeyId), SecretAccessKey: aws.ToString(k.AccessKey.SecretAccessKey)}
}

func (f *fixture) workgroup(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	ns := &shiftkey.Namespace{Name: "edge-ns", ID: shiftkey.NewUUID(), DBName: "dev", AdminUsername: "admin", Status: "AVAILABLE", CreatedAt: time.Now()}
	wg := &shiftkey.Workgroup{Name: "edge-wg", ID: shiftkey.NewUUID(), Namespace: "edge-ns", Status: "AVAILABLE", BaseCapacity: 128,
		Endpoint: shiftkey.Endpoint{Address: "127.0.0.1", Port: 5440}, CreatedAt: time.Now()}
	mustOK(t, "CreateNamespace", f.store.CreateNamespace(ctx, ns))
	mustOK(t, "CreateWorkgroup", f.store.CreateWorkgroup(ctx, wg))
}
