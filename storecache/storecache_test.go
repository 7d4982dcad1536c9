package storecache_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/smithy-go"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/authz"
	shttp "github.com/shiftkey/shiftkey/http"
	"github.com/shiftkey/shiftkey/iamapi"
	"github.com/shiftkey/shiftkey/internal/storetest"
	rs "github.com/shiftkey/shiftkey/redshift"
	"github.com/shiftkey/shiftkey/serverless"
	"github.com/shiftkey/shiftkey/sqlite"
	"github.com/shiftkey/shiftkey/storecache"
	sksts "github.com/shiftkey/shiftkey/sts"
)

const account = shiftkey.DefaultAccountID

func openSQLite(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// The cache keeps the store contract: every read after a write through it
// sees the write.
func TestStoreContractThroughCache(t *testing.T) {
	storetest.Run(t, func(t *testing.T) shiftkey.Store { return storecache.New(openSQLite(t)) })
}

// changeFeed is a store whose changes by "other replicas" the test
// delivers by hand, as a PostgreSQL store's notifications would.
type changeFeed struct {
	*sqlite.DB
	subscribers []func(shiftkey.Change)
}

func (f *changeFeed) Subscribe(fn func(shiftkey.Change)) { f.subscribers = append(f.subscribers, fn) }

func (f *changeFeed) deliver(ch shiftkey.Change) {
	for _, fn := range f.subscribers {
		fn(ch)
	}
}

// api is the AWS API over a cached SQLite store, with an admin and a user
// bob whose one permission comes from a managed policy.
type api struct {
	inner   *changeFeed
	cache   *storecache.Store
	url     string
	admin   aws.Credentials
	bob     aws.Credentials
	bobKey  string
	policy  string
	cluster string
	server  *shttp.Server
}

func newAPI(t *testing.T) *api {
	t.Helper()
	ctx := context.Background()
	inner := &changeFeed{DB: openSQLite(t)}
	cache := storecache.New(inner)
	if len(inner.subscribers) != 1 {
		t.Fatal("the cache did not subscribe to its ChangeSource")
	}
	a := &api{inner: inner, cache: cache, cluster: "dev-cluster"}
	if err := cache.CreateCluster(ctx, &shiftkey.Cluster{Identifier: a.cluster, NamespaceID: "5ca9e12f-eaa3-4255-9a16-97a9c100d60e",
		NodeType: "dc2.large", DBName: "dev", MasterUsername: "awsuser", Status: "available", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	a.admin, _ = addUser(t, cache, "admin", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)
	a.bob, a.bobKey = addUser(t, cache, "bob", "")
	a.policy = "arn:aws:iam::" + account + ":policy/issue"
	now := time.Now()
	if err := cache.CreateManagedPolicy(ctx, &shiftkey.ManagedPolicy{ARN: a.policy, Name: "issue", ID: shiftkey.NewID("ANPA"), Path: "/",
		Document:  `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:GetClusterCredentials","Resource":"*"}]}`,
		CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := cache.AttachPolicy(ctx, shiftkey.KindUser, "bob", a.policy); err != nil {
		t.Fatal(err)
	}
	authorizer := &authz.Authorizer{Store: cache}
	issuer := &rs.Service{Store: cache, Authorizer: authorizer, Iterations: 16}
	api := &shttp.Server{
		Identities: cache,
		Redshift:   issuer,
		Serverless: &serverless.Service{Store: cache, Authorizer: authorizer, Issuer: issuer},
		IAM:        &iamapi.Service{Store: cache, Authorizer: authorizer, AccountID: account},
		STS:        &sksts.Service{Store: cache, Authorizer: authorizer, AccountID: account},
		AccountID:  account,
	}
	t.Cleanup(api.WaitBackground) // before the store closes
	a.server = api
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	a.url = srv.URL
	return a
}

func addUser(t *testing.T, st shiftkey.Store, name, policy string) (aws.Credentials, string) {
	t.Helper()
	ctx := context.Background()
	u := &shiftkey.Entity{Kind: shiftkey.KindUser, Name: name, ID: shiftkey.NewID("AIDA"), Path: "/", ARN: "arn:aws:iam::" + account + ":user/" + name, CreatedAt: time.Now()}
	k := &shiftkey.AccessKey{ID: shiftkey.NewID("AKIA"), Secret: shiftkey.NewSecretKey(), UserName: name, Status: "Active", CreatedAt: time.Now()}
	if err := st.CreateEntity(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAccessKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if policy != "" {
		if err := st.PutInlinePolicy(ctx, shiftkey.KindUser, name, shiftkey.PolicyDocument{Name: "p", Document: policy}); err != nil {
			t.Fatal(err)
		}
	}
	return aws.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret}, k.ID
}

func (a *api) cfg(c aws.Credentials) aws.Config {
	return aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(a.url), Retryer: func() aws.Retryer { return aws.NopRetryer{} },
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return c, nil })}
}

// issue asks for bob's credential; it returns the API error code ("" on
// success).
func (a *api) issue(t *testing.T) string {
	t.Helper()
	_, err := redshift.NewFromConfig(a.cfg(a.bob)).GetClusterCredentials(context.Background(), &redshift.GetClusterCredentialsInput{
		ClusterIdentifier: aws.String(a.cluster), DbUser: aws.String("alice")})
	if err == nil {
		return ""
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("issue: %v", err)
	}
	return apiErr.ErrorCode()
}

func (a *api) iam() *iam.Client { return iam.NewFromConfig(a.cfg(a.admin)) }

// Each change made through the API (or the store behind the cache) takes
// effect on the very next request, after requests that filled the cache.
func TestNextRequestSeesChange(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, a *api)
		want   string
	}{
		{"deleted key", func(t *testing.T, a *api) {
			if _, err := a.iam().DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("bob"), AccessKeyId: aws.String(a.bobKey)}); err != nil {
				t.Fatal(err)
			}
		}, "InvalidClientTokenId"},
		{"deactivated key", func(t *testing.T, a *api) {
			if _, err := a.iam().UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String("bob"), AccessKeyId: aws.String(a.bobKey),
				Status: "Inactive"}); err != nil {
				t.Fatal(err)
			}
		}, "InvalidClientTokenId"},
		{"detached policy", func(t *testing.T, a *api) {
			if _, err := a.iam().DetachUserPolicy(ctx, &iam.DetachUserPolicyInput{UserName: aws.String("bob"), PolicyArn: aws.String(a.policy)}); err != nil {
				t.Fatal(err)
			}
		}, "AccessDenied"},
		{"new default policy version without the permission", func(t *testing.T, a *api) {
			if _, err := a.iam().CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: aws.String(a.policy), SetAsDefault: true,
				PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:DescribeClusters","Resource":"*"}]}`)}); err != nil {
				t.Fatal(err)
			}
		}, "AccessDenied"},
		{"default policy version set to one without the permission", func(t *testing.T, a *api) {
			if _, err := a.iam().CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: aws.String(a.policy),
				PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"redshift:*","Resource":"*"}]}`)}); err != nil {
				t.Fatal(err)
			}
			if _, err := a.iam().SetDefaultPolicyVersion(ctx, &iam.SetDefaultPolicyVersionInput{PolicyArn: aws.String(a.policy), VersionId: aws.String("v2")}); err != nil {
				t.Fatal(err)
			}
		}, "AccessDenied"},
		{"managed policy updated without the permission", func(t *testing.T, a *api) {
			// As reconciling the config file does.
			p, err := a.cache.ManagedPolicy(ctx, a.policy)
			if err != nil {
				t.Fatal(err)
			}
			p.Document = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:DescribeClusters","Resource":"*"}]}`
			if err := a.cache.UpdateManagedPolicy(ctx, p); err != nil {
				t.Fatal(err)
			}
		}, "AccessDenied"},
		{"deleted cluster", func(t *testing.T, a *api) {
			if err := a.cache.DeleteCluster(ctx, a.cluster); err != nil {
				t.Fatal(err)
			}
		}, "ClusterNotFound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAPI(t)
			for range 3 {
				if code := a.issue(t); code != "" {
					t.Fatalf("before the change: %s", code)
				}
			}
			tc.change(t, a)
			if code := a.issue(t); code != tc.want {
				t.Fatalf("next request after %s: %q, want %s", tc.name, code, tc.want)
			}
		})
	}
}

// A write another replica made (here: straight into the store behind the
// cache) is served stale until its Change arrives, then not any more; the
// zero Change drops everything.
func TestChangeSourceInvalidates(t *testing.T) {
	ctx := context.Background()
	a := newAPI(t)
	// Twice: the first use of the key records it (GetAccessKeyLastUsed)
	// beside the call, which drops the cached key once written; the
	// second caches it again.
	for range 2 {
		if code := a.issue(t); code != "" {
			t.Fatal(code)
		}
		a.server.WaitBackground()
	}
	// Behind the cache's back: the cache cannot know.
	if err := a.inner.UpdateAccessKey(ctx, a.bobKey, "Inactive"); err != nil {
		t.Fatal(err)
	}
	if code := a.issue(t); code != "" {
		t.Fatalf("premise: the cached key should still answer, got %s", code)
	}
	a.inner.deliver(shiftkey.Change{Kind: shiftkey.KindAccessKey, Name: a.bobKey})
	if code := a.issue(t); code != "InvalidClientTokenId" {
		t.Fatalf("after the key's Change: %q, want InvalidClientTokenId", code)
	}

	if err := a.inner.UpdateAccessKey(ctx, a.bobKey, "Active"); err != nil {
		t.Fatal(err)
	}
	a.inner.deliver(shiftkey.Change{Kind: shiftkey.KindAccessKey, Name: a.bobKey})
	if code := a.issue(t); code != "" {
		t.Fatal(code)
	}
	if err := a.inner.DetachPolicy(ctx, shiftkey.KindUser, "bob", a.policy); err != nil {
		t.Fatal(err)
	}
	if err := a.inner.DeleteCluster(ctx, a.cluster); err != nil {
		t.Fatal(err)
	}
	// The cached cluster still answers a read, but no credential is
	// written for it: the store's writer checks that the cluster it was
	// issued for exists (Credential.ScopeID).
	if _, err := a.cache.Cluster(ctx, a.cluster); err != nil {
		t.Fatalf("premise: the cached cluster should still answer, got %v", err)
	}
	if code := a.issue(t); code != "ClusterNotFound" {
		t.Fatalf("an issue for the cluster deleted behind the cache: %q, want ClusterNotFound", code)
	}
	a.inner.deliver(shiftkey.Change{Kind: shiftkey.KindCluster, Name: a.cluster})
	if _, err := a.cache.Cluster(ctx, a.cluster); shiftkey.ErrorCode(err) != shiftkey.CodeClusterNotFound {
		t.Fatalf("after the cluster's Change: %v, want ClusterNotFound", err)
	}
	if code := a.issue(t); code != "ClusterNotFound" {
		t.Fatalf("after the cluster's Change: %q", code)
	}
	// A lost feed: everything may have changed.
	if err := a.cache.CreateCluster(ctx, &shiftkey.Cluster{Identifier: a.cluster, NamespaceID: "5ca9e12f-eaa3-4255-9a16-97a9c100d60e",
		NodeType: "dc2.large", DBName: "dev", MasterUsername: "awsuser", Status: "available", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if code := a.issue(t); code != "" {
		t.Fatalf("premise: the detached policy should still be cached, got %s", code)
	}
	a.inner.deliver(shiftkey.Change{})
	if code := a.issue(t); code != "AccessDenied" {
		t.Fatalf("after the zero Change: %q, want AccessDenied", code)
	}
}

// A read that races with a write is not cached: the write lands between
// the read of the store and the caching of its result.
func TestReadRacingWriteIsNotCached(t *testing.T) {
	ctx := context.Background()
	inner := openSQLite(t)
	c := storecache.New(inner)
	_, id := addUser(t, c, "carol", "")
	storecache.SetAfterRead(c, func() {
		storecache.SetAfterRead(c, nil)
		if err := c.UpdateAccessKey(ctx, id, "Inactive"); err != nil {
			t.Error(err)
		}
	})
	k, err := c.AccessKey(ctx, id)
	if err != nil || k.Status != "Active" {
		t.Fatalf("the racing read: %+v %v (it read before the write)", k, err)
	}
	if k, err = c.AccessKey(ctx, id); err != nil || k.Status != "Inactive" {
		t.Fatalf("after the write: %+v %v, want Inactive (the racing read was cached)", k, err)
	}
}

// Callers get copies: changing what one call returned changes nothing for
// the next.
func TestCallersGetCopies(t *testing.T) {
	ctx := context.Background()
	c := storecache.New(openSQLite(t))
	_, id := addUser(t, c, "dave", "")
	k, err := c.AccessKey(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	k.Status = "Inactive"
	if k, _ = c.AccessKey(ctx, id); k.Status != "Active" {
		t.Fatal("a caller's change reached the cache")
	}
}

// A custom domain looked up in other case than stored (a TLS client's
// server name, as typed) is the same association to the store, which
// compares names without case: its delete, through this cache or in
// another replica's Change, is seen by that lookup too.
func TestDomainOfAnyCaseSeesChange(t *testing.T) {
	ctx := context.Background()
	inner := &changeFeed{DB: openSQLite(t)}
	cache := storecache.New(inner)
	associate := func() {
		t.Helper()
		if err := cache.CreateCustomDomain(ctx, &shiftkey.CustomDomain{Name: "stale.example.com", CertificateARN: "arn:aws:acm:us-east-1:000000000000:certificate/x",
			Kind: shiftkey.DomainWorkgroup, Target: "wg-a", CertExpiry: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if d, err := cache.CustomDomain(ctx, "Stale.Example.COM"); err != nil || d.Target != "wg-a" {
			t.Fatalf("premise: lookup in other case: %+v %v", d, err)
		}
	}
	gone := func(after string) {
		t.Helper()
		if d, err := cache.CustomDomain(ctx, "Stale.Example.COM"); shiftkey.ErrorCode(err) != shiftkey.CodeResourceNotFound {
			t.Fatalf("after %s, lookup in other case: %+v %v, want ResourceNotFoundException", after, d, err)
		}
	}
	associate()
	if err := cache.DeleteCustomDomain(ctx, "stale.example.com"); err != nil {
		t.Fatal(err)
	}
	gone("the delete through the cache")

	associate()
	if err := inner.DeleteCustomDomain(ctx, "stale.example.com"); err != nil { // another replica's
		t.Fatal(err)
	}
	inner.deliver(shiftkey.Change{Kind: shiftkey.KindDomain, Name: "stale.example.com"})
	gone("another replica's delete and its Change")
}

// A custom domain is looked up by the TLS server name a client sends, in
// whatever case it sends it, and the stores match it in any case: a
// dissociation or a reassociation (which names the domain in lower case,
// as does another replica's change) must reach the entry cached under
// the client's spelling too.
func TestDomainChangeReachesEveryCase(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		write func(t *testing.T, c *storecache.Store, inner *changeFeed)
		check func(d *shiftkey.CustomDomain, err error) bool
	}{
		{"dissociated", func(t *testing.T, c *storecache.Store, _ *changeFeed) {
			if err := c.DeleteCustomDomain(ctx, "db.example.com"); err != nil {
				t.Fatal(err)
			}
		}, func(_ *shiftkey.CustomDomain, err error) bool {
			return shiftkey.ErrorCode(err) == shiftkey.CodeResourceNotFound
		}},
		{"reassociated", func(t *testing.T, c *storecache.Store, _ *changeFeed) {
			if err := c.UpdateCustomDomain(ctx, &shiftkey.CustomDomain{Name: "db.example.com", CertificateARN: "arn:aws:acm:us-east-1:123456789012:certificate/new",
				Kind: shiftkey.DomainCluster, Target: "other", CertExpiry: time.Now().Add(time.Hour).Truncate(time.Second)}); err != nil {
				t.Fatal(err)
			}
		}, func(d *shiftkey.CustomDomain, err error) bool { return err == nil && d.Target == "other" }},
		{"dissociated on another replica", func(t *testing.T, _ *storecache.Store, inner *changeFeed) {
			if err := inner.DeleteCustomDomain(ctx, "db.example.com"); err != nil {
				t.Fatal(err)
			}
			inner.deliver(shiftkey.Change{Kind: shiftkey.KindDomain, Name: "db.example.com"})
		}, func(_ *shiftkey.CustomDomain, err error) bool {
			return shiftkey.ErrorCode(err) == shiftkey.CodeResourceNotFound
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inner := &changeFeed{DB: openSQLite(t)}
			c := storecache.New(inner)
			if err := c.CreateCustomDomain(ctx, &shiftkey.CustomDomain{Name: "db.example.com", CertificateARN: "arn:aws:acm:us-east-1:123456789012:certificate/old",
				Kind: shiftkey.DomainCluster, Target: "dev-cluster", CertExpiry: time.Now().Add(time.Hour).Truncate(time.Second)}); err != nil {
				t.Fatal(err)
			}
			for _, sni := range []string{"db.example.com", "DB.Example.COM"} {
				if d, err := c.CustomDomain(ctx, sni); err != nil || d.Target != "dev-cluster" {
					t.Fatalf("premise: %s → %+v, %v", sni, d, err)
				}
			}
			tc.write(t, c, inner)
			for _, sni := range []string{"db.example.com", "DB.Example.COM"} {
				if d, err := c.CustomDomain(ctx, sni); !tc.check(d, err) {
					t.Errorf("%s after the domain was %s: %+v, %v", sni, tc.name, d, err)
				}
			}
		})
	}
}
