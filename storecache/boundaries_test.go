package storecache_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/authz"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/storecache"
)

const (
	boundaryAllows = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:*","Resource":"*"}]}`
	boundaryLacks  = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:DescribeClusters","Resource":"*"}]}`
	boundaryDenies = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"redshift:GetClusterCredentials","Resource":"*"}]}`
)

// boundaryPolicy creates a managed policy to be a boundary through the
// API and returns its ARN.
func (a *api) boundaryPolicy(t *testing.T, name, doc string) string {
	t.Helper()
	p, err := a.iam().CreatePolicy(context.Background(), &iam.CreatePolicyInput{PolicyName: aws.String(name), PolicyDocument: aws.String(doc)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(p.Policy.Arn)
}

func (a *api) putBoundary(t *testing.T, arn string) {
	t.Helper()
	if _, err := a.iam().PutUserPermissionsBoundary(context.Background(), &iam.PutUserPermissionsBoundaryInput{UserName: aws.String("bob"),
		PermissionsBoundary: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
}

// A change of bob's permissions boundary, or of its policy's default
// version, decides the very next request after requests that cached
// bob, his policies and his boundary.
func TestNextRequestSeesBoundaryChange(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name          string
		setup, change func(t *testing.T, a *api)
		before, after string
	}{
		{"boundary put without the permission", nil, func(t *testing.T, a *api) {
			a.putBoundary(t, a.boundaryPolicy(t, "lacks", boundaryLacks))
		}, "", "AccessDenied"},
		{"boundary's new default version without the permission", func(t *testing.T, a *api) {
			a.putBoundary(t, a.boundaryPolicy(t, "b", boundaryAllows))
		}, func(t *testing.T, a *api) {
			if _, err := a.iam().CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: aws.String("arn:aws:iam::" + account + ":policy/b"),
				PolicyDocument: aws.String(boundaryLacks), SetAsDefault: true}); err != nil {
				t.Fatal(err)
			}
		}, "", "AccessDenied"},
		{"boundary's default version set to a deny", func(t *testing.T, a *api) {
			arn := a.boundaryPolicy(t, "b", boundaryAllows)
			a.putBoundary(t, arn)
			if _, err := a.iam().CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: aws.String(arn), PolicyDocument: aws.String(boundaryDenies)}); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, a *api) {
			if _, err := a.iam().SetDefaultPolicyVersion(ctx, &iam.SetDefaultPolicyVersionInput{PolicyArn: aws.String("arn:aws:iam::" + account + ":policy/b"),
				VersionId: aws.String("v2")}); err != nil {
				t.Fatal(err)
			}
		}, "", "AccessDenied"},
		{"boundary's default version set to one that allows", func(t *testing.T, a *api) {
			arn := a.boundaryPolicy(t, "b", boundaryLacks)
			a.putBoundary(t, arn)
			if _, err := a.iam().CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: aws.String(arn), PolicyDocument: aws.String(boundaryAllows)}); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, a *api) {
			if _, err := a.iam().SetDefaultPolicyVersion(ctx, &iam.SetDefaultPolicyVersionInput{PolicyArn: aws.String("arn:aws:iam::" + account + ":policy/b"),
				VersionId: aws.String("v2")}); err != nil {
				t.Fatal(err)
			}
		}, "AccessDenied", ""},
		{"boundary deleted", func(t *testing.T, a *api) {
			a.putBoundary(t, a.boundaryPolicy(t, "lacks", boundaryLacks))
		}, func(t *testing.T, a *api) {
			if _, err := a.iam().DeleteUserPermissionsBoundary(ctx, &iam.DeleteUserPermissionsBoundaryInput{UserName: aws.String("bob")}); err != nil {
				t.Fatal(err)
			}
		}, "AccessDenied", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAPI(t)
			if tc.setup != nil {
				tc.setup(t, a)
			}
			for range 3 {
				if code := a.issue(t); code != tc.before {
					t.Fatalf("before the change: %q, want %q", code, tc.before)
				}
			}
			tc.change(t, a)
			if code := a.issue(t); code != tc.after {
				t.Fatalf("next request after %s: %q, want %q", tc.name, code, tc.after)
			}
		})
	}
}

// Replicas A and B share a PostgreSQL store, B serving through its cache:
// once B's feed has delivered A's change of bob's boundary (the entity)
// or of the boundary policy's default version, B's next decision follows
// it.
func TestReplicaSeesBoundaryChange(t *testing.T) {
	ctx := context.Background()
	s := pgtest.Server(t)
	url := s.ConnString(s.Superuser(), pgtest.NewDatabase(t))
	dbA, dbB := openReplica(t, url), openReplica(t, url)
	a, b := storecache.New(dbA), storecache.New(dbB)
	heard := make(chan shiftkey.Change, 64)
	dbB.Subscribe(func(ch shiftkey.Change) { heard <- ch }) // after b's cache: it has dropped what ch changed when we hear it
	for deadline := time.Now().Add(10 * time.Second); !dbB.Current(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("B's change feed is not current after 10 s")
		}
	}
	// Each write's change, in commit order: a wait consumes what came before.
	wait := func(kind shiftkey.EntityKind, name string) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case ch := <-heard:
				if ch.Kind == kind && ch.Name == name {
					return
				}
			case <-timeout:
				t.Fatalf("B did not hear of %s %s within 10 s", kind, name)
			}
		}
	}
	const arn = "arn:aws:iam::" + account + ":policy/boundary"
	if err := a.CreateManagedPolicy(ctx, &shiftkey.ManagedPolicy{ARN: arn, Name: "boundary", ID: shiftkey.NewID("ANPA"), Path: "/", Document: boundaryAllows,
		CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	wait(shiftkey.KindPolicy, arn)
	bob := &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "bob", ID: shiftkey.NewID("AIDA"), Path: "/", ARN: "arn:aws:iam::" + account + ":user/bob", CreatedAt: time.Now()}
	if err := a.CreateEntity(ctx, bob); err != nil {
		t.Fatal(err)
	}
	wait(shiftkey.KindUser, "bob")
	if err := a.PutInlinePolicy(ctx, shiftkey.KindUser, "bob", shiftkey.PolicyDocument{Name: "p", Document: boundaryAllows}); err != nil {
		t.Fatal(err)
	}
	wait(shiftkey.KindUser, "bob")
	authorizer := &authz.Authorizer{Store: b}
	decide := func() error {
		caller := &shiftkey.Caller{Principal: &shiftkey.Principal{ARN: bob.ARN, Account: account, Type: shiftkey.PrincipalUser, UserName: "bob", UserID: bob.ID},
			Region: "us-east-1", RequestID: "r", Time: time.Now()}
		return authorizer.Authorize(ctx, caller, shiftkey.AuthzRequest{Action: "redshift:GetClusterCredentials", Resource: "*"})
	}
	for range 3 { // cached on B
		if err := decide(); err != nil {
			t.Fatalf("bob without a boundary: %v", err)
		}
	}
	if err := a.SetPermissionsBoundary(ctx, shiftkey.KindUser, "bob", arn); err != nil {
		t.Fatal(err)
	}
	wait(shiftkey.KindUser, "bob")
	for range 3 {
		if err := decide(); err != nil {
			t.Fatalf("bob under a boundary that allows the action: %v", err)
		}
	}
	if err := a.CreatePolicyVersion(ctx, arn, &shiftkey.PolicyVersion{Document: boundaryDenies, IsDefault: true, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	wait(shiftkey.KindPolicy, arn)
	if err := decide(); shiftkey.ErrorCode(err) != shiftkey.CodeAccessDenied {
		t.Fatalf("B's next decision after A made a deny the boundary's default version: %v, want AccessDenied", err)
	}
	if err := a.SetDefaultPolicyVersion(ctx, arn, "v1"); err != nil {
		t.Fatal(err)
	}
	wait(shiftkey.KindPolicy, arn)
	if err := decide(); err != nil {
		t.Fatalf("B's next decision after A set v1 again: %v", err)
	}
	if err := a.SetPermissionsBoundary(ctx, shiftkey.KindUser, "bob", ""); err != nil {
		t.Fatal(err)
	}
	wait(shiftkey.KindUser, "bob")
	if err := a.CreatePolicyVersion(ctx, arn, &shiftkey.PolicyVersion{Document: boundaryDenies, IsDefault: true, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	wait(shiftkey.KindPolicy, arn)
	if err := decide(); err != nil {
		t.Fatalf("B's next decision once bob's boundary is removed (the policy denies, but bounds nobody): %v", err)
	}
}
