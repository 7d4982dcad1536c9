// Package storetest is the contract every shiftkey.Store adapter must meet.
// Adapters run it from their own tests: storetest.Run(t, newStore).
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
)

// Run runs the contract against stores made by newStore; each subtest gets
// a fresh, empty store.
func Run(t *testing.T, newStore func(t *testing.T) shiftkey.Store) {
	t.Run("Clusters", func(t *testing.T) { testClusters(t, newStore(t)) })
	t.Run("Credentials", func(t *testing.T) { testCredentials(t, newStore(t)) })
	t.Run("LoginSaltConcurrent", func(t *testing.T) { testLoginSaltConcurrent(t, newStore(t)) })
	t.Run("LoginIterations", func(t *testing.T) { testLoginIterations(t, newStore(t)) })
	t.Run("CredentialWritesVisible", func(t *testing.T) { testCredentialWritesVisible(t, newStore(t)) })
	t.Run("CredentialExpiryAtEachCall", func(t *testing.T) { testCredentialExpiryAtEachCall(t, newStore(t)) })
	t.Run("Identities", func(t *testing.T) { testIdentities(t, newStore(t)) })
	t.Run("CreateEntityWithTags", func(t *testing.T) { testCreateEntityWithTags(t, newStore(t)) })
	t.Run("ManagedPolicies", func(t *testing.T) { testManagedPolicies(t, newStore(t)) })
	t.Run("PolicyVersions", func(t *testing.T) { testPolicyVersions(t, newStore(t)) })
	t.Run("PolicyVersionsConcurrent", func(t *testing.T) { testPolicyVersionsConcurrent(t, newStore(t)) })
	t.Run("AccessKeyQuotaConcurrent", func(t *testing.T) { testAccessKeyQuotaConcurrent(t, newStore(t)) })
	t.Run("AttachmentQuotasConcurrent", func(t *testing.T) { testAttachmentQuotasConcurrent(t, newStore(t)) })
	t.Run("InlinePolicyAdmittedConcurrent", func(t *testing.T) { testInlinePolicyAdmittedConcurrent(t, newStore(t)) })
	t.Run("AccountQuotaConcurrent", func(t *testing.T) { testAccountQuotaConcurrent(t, newStore(t)) })
	t.Run("TagQuotaConcurrent", func(t *testing.T) { testTagQuotaConcurrent(t, newStore(t)) })
	t.Run("PolicyTags", func(t *testing.T) { testPolicyTags(t, newStore(t)) })
	t.Run("PolicyTagQuotaConcurrent", func(t *testing.T) { testPolicyTagQuotaConcurrent(t, newStore(t)) })
	t.Run("AccessKeyUse", func(t *testing.T) { testAccessKeyUse(t, newStore(t)) })
	t.Run("Serverless", func(t *testing.T) { testServerless(t, newStore(t)) })
	t.Run("Revocation", func(t *testing.T) { testRevocation(t, newStore(t)) })
	t.Run("RevocationByAccessKey", func(t *testing.T) { testRevocationByAccessKey(t, newStore(t)) })
	t.Run("TerminateRevoked", func(t *testing.T) { testTerminateRevoked(t, newStore(t)) })
	t.Run("EndSessions", func(t *testing.T) { testEndSessions(t, newStore(t)) })
	t.Run("DeleteClusterDomains", func(t *testing.T) { testDeleteClusterDomains(t, newStore(t)) })
	t.Run("TagKeysFoldOnlyCase", func(t *testing.T) { testTagKeysFoldOnlyCase(t, newStore(t)) })
	t.Run("NoWritesForAGoneEntity", func(t *testing.T) { testNoWritesForAGoneEntity(t, newStore(t)) })
	t.Run("NoWritesRacingADelete", func(t *testing.T) { testNoWritesRacingADelete(t, newStore(t)) })
	t.Run("NoSaltForADeletedScope", func(t *testing.T) { testNoSaltForADeletedScope(t, newStore(t)) })
	t.Run("DeclaringAllOrNothing", func(t *testing.T) { testDeclaringAllOrNothing(t, newStore(t)) })
	t.Run("Renames", func(t *testing.T) { testRenames(t, newStore(t)) })
	t.Run("RenameRacingWrites", func(t *testing.T) { testRenameRacingWrites(t, newStore(t)) })
	t.Run("RenameDeclaring", func(t *testing.T) { testRenameDeclaring(t, newStore(t)) })
	t.Run("PermissionsBoundaries", func(t *testing.T) { testPermissionsBoundaries(t, newStore(t)) })
	t.Run("BoundaryRacingDelete", func(t *testing.T) { testBoundaryRacingDelete(t, newStore(t)) })
}

// testTagKeysFoldOnlyCase: tag keys are one key when they differ only in
// the case of ASCII letters (IAM: "tag keys are case insensitive"), and
// otherwise distinct. The authorizer sees the keys a request names
// (aws:TagKeys); a store that matched more (Postgres's ICU collation at
// level 2 also ignores width, ligatures and ignorable characters) let
// UntagUser "ｑｕａｒａｎｔｉｎｅｄ" remove "quarantined" past a Deny on
// that key, and TagUser "ｔｅａｍ" replace "team" (found by review-authz).
func testTagKeysFoldOnlyCase(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	u := &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "kai", ID: "AIDAKAI", Path: "/", ARN: "arn:aws:iam::1:user/kai", CreatedAt: t0}
	if err := s.CreateEntity(ctx, u); err != nil {
		t.Fatal(err)
	}
	tags := func() map[string]string {
		t.Helper()
		got, err := s.Tags(ctx, shiftkey.KindUser, "kai")
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, tg := range got {
			m[tg.Key] = tg.Value
		}
		return m
	}
	if err := s.TagEntity(ctx, shiftkey.KindUser, "kai", []shiftkey.Tag{{Key: "quarantined", Value: "true"}, {Key: "team", Value: "data"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.TagEntity(ctx, shiftkey.KindUser, "kai", []shiftkey.Tag{{Key: "ｔｅａｍ", Value: "admins"}, {Key: "ﬁx", Value: "1"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.UntagEntity(ctx, shiftkey.KindUser, "kai", []string{"ｑｕａｒａｎｔｉｎｅｄ", "quarantin\u00aded", "QUARANTINED\u200d"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"quarantined": "true", "team": "data", "ｔｅａｍ": "admins", "ﬁx": "1"}
	if got := tags(); !maps.Equal(got, want) {
		t.Fatalf("tags = %q, want %q: keys that differ in more than ASCII case must be distinct", got, want)
	}
	// Case alone is one key.
	if err := s.UntagEntity(ctx, shiftkey.KindUser, "kai", []string{"QUARANTINED", "fix"}); err != nil {
		t.Fatal(err)
	}
	delete(want, "quarantined")
	if got := tags(); !maps.Equal(got, want) {
		t.Fatalf("after untagging QUARANTINED: tags = %q, want %q", got, want)
	}
}

// A policy, attachment, membership or tag written for an entity that is
// gone (a write racing DeleteEntity: the API checked the entity, then it
// was deleted) is refused as NoSuchEntity and leaves no row: owners are
// names, and a user or group created later under the name would inherit
// it.
func testNoWritesForAGoneEntity(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	mk := func(kind shiftkey.EntityKind, name, id string) {
		t.Helper()
		if err := s.CreateEntity(ctx, &shiftkey.Entity{Kind: kind, Name: name, ID: id, Path: "/", ARN: "arn:aws:iam::1:" + string(kind) + "/" + name, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	pol := &shiftkey.ManagedPolicy{ARN: "arn:aws:iam::1:policy/admin", Name: "admin", ID: "ANPAADMIN", Path: "/", Document: `{"x":1}`, CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateManagedPolicy(ctx, pol); err != nil {
		t.Fatal(err)
	}
	mk(shiftkey.KindUser, "ghost", "AIDAGHOST1")
	mk(shiftkey.KindGroup, "crew", "AGPACREW1")
	mk(shiftkey.KindUser, "live", "AIDALIVE1")
	for _, e := range []struct {
		kind shiftkey.EntityKind
		name string
	}{{shiftkey.KindUser, "ghost"}, {shiftkey.KindGroup, "crew"}} {
		if err := s.DeleteEntity(ctx, e.kind, e.name); err != nil {
			t.Fatal(err)
		}
	}
	gone := func(what string, err error) {
		t.Helper()
		if shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
			t.Errorf("%s of a deleted entity: %v, want NoSuchEntity", what, err)
		}
	}
	gone("PutInlinePolicy", s.PutInlinePolicy(ctx, shiftkey.KindUser, "ghost", shiftkey.PolicyDocument{Name: "p", Document: `{"x":1}`}))
	gone("AttachPolicy", s.AttachPolicy(ctx, shiftkey.KindUser, "ghost", pol.ARN))
	gone("TagEntity", s.TagEntity(ctx, shiftkey.KindUser, "ghost", []shiftkey.Tag{{Key: "role", Value: "admin"}}))
	gone("AddUserToGroup (user gone)", s.AddUserToGroup(ctx, "crew", "ghost"))
	gone("AddUserToGroup (group gone)", s.AddUserToGroup(ctx, "crew", "live"))
	gone("PutInlinePolicy of a group", s.PutInlinePolicy(ctx, shiftkey.KindGroup, "crew", shiftkey.PolicyDocument{Name: "p", Document: `{"x":1}`}))
	// Twice is still a no-op for an entity that exists.
	if err := s.AttachPolicy(ctx, shiftkey.KindUser, "live", pol.ARN); err != nil {
		t.Fatal(err)
	}
	if err := s.AttachPolicy(ctx, shiftkey.KindUser, "live", pol.ARN); err != nil {
		t.Fatalf("attaching twice: %v", err)
	}
	// DeletePolicy checks the attachments, then deletes: an AttachPolicy
	// between the two leaves the delete with an attached policy, and one
	// after it an attachment to a policy gone. Each is IAM's error, not
	// the store's constraint (a 500).
	if err := s.DeleteManagedPolicy(ctx, pol.ARN); shiftkey.ErrorCode(err) != "DeleteConflict" {
		t.Errorf("deleting an attached policy: %v (code %q), want DeleteConflict", err, shiftkey.ErrorCode(err))
	}
	gone("AttachPolicy of a deleted policy", s.AttachPolicy(ctx, shiftkey.KindUser, "live", "arn:aws:iam::1:policy/deleted"))
	mk(shiftkey.KindUser, "ghost", "AIDAGHOST2")
	mk(shiftkey.KindGroup, "crew", "AGPACREW2")
	if err := s.AddUserToGroup(ctx, "crew", "live"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUserToGroup(ctx, "crew", "live"); err != nil {
		t.Fatalf("adding twice: %v", err)
	}
	inline, err1 := s.InlinePolicies(ctx, shiftkey.KindUser, "ghost")
	attached, err2 := s.AttachedPolicies(ctx, shiftkey.KindUser, "ghost")
	tags, err3 := s.Tags(ctx, shiftkey.KindUser, "ghost")
	groups, err4 := s.GroupsForUser(ctx, "ghost")
	ginline, err5 := s.InlinePolicies(ctx, shiftkey.KindGroup, "crew")
	members, err6 := s.GroupMembers(ctx, "crew")
	if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
		t.Fatal(err)
	}
	if len(inline)+len(attached)+len(tags)+len(groups)+len(ginline) != 0 || len(members) != 1 {
		t.Fatalf("the re-created ghost inherited: inline %v, attached %d, tags %v, groups %d; crew: inline %v, members %v (want only live)",
			inline, len(attached), tags, len(groups), ginline, members)
	}
}

// Writes racing DeleteEntity either land before it (and go with it) or
// find no entity: nothing is left for the name once the delete is done.
func testNoWritesRacingADelete(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	pol := racedPolicyAndGroup(t, s)
	for round := range 30 {
		id := fmt.Sprintf("AIDARACER%d", round)
		if err := s.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "racer", ID: id, Path: "/", ARN: "arn:aws:iam::1:user/racer", CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		errs := Concurrently(5, func(i int) error {
			var err error
			switch i {
			case 0:
				return s.DeleteEntity(ctx, shiftkey.KindUser, "racer")
			case 1:
				err = s.PutInlinePolicy(ctx, shiftkey.KindUser, "racer", shiftkey.PolicyDocument{Name: "p", Document: `{"x":1}`})
			case 2:
				err = s.AttachPolicy(ctx, shiftkey.KindUser, "racer", pol.ARN)
			case 3:
				err = s.TagEntity(ctx, shiftkey.KindUser, "racer", []shiftkey.Tag{{Key: "role", Value: "admin"}})
			case 4:
				err = s.AddUserToGroup(ctx, "crew", "racer")
			}
			if err != nil && shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
				return err
			}
			return nil
		})
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		inline, _ := s.InlinePolicies(ctx, shiftkey.KindUser, "racer")
		attached, _ := s.AttachedPolicies(ctx, shiftkey.KindUser, "racer")
		tags, _ := s.Tags(ctx, shiftkey.KindUser, "racer")
		members, _ := s.GroupMembers(ctx, "crew")
		if len(inline)+len(attached)+len(tags)+len(members) != 0 {
			t.Fatalf("round %d: left for the deleted racer: inline %v, attached %d, tags %v, crew members %v", round, inline, len(attached), tags, members)
		}
	}
}

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// testNoSaltForADeletedScope: found in the last stop note, a login salt
// written after its cluster's delete (an issue that found the cluster,
// then wrote the salt once the delete had committed, or raced it) stayed
// in the store for good: the delete left something of the cluster. A
// salt is written, like a credential, only while the cluster (the same
// one: its ScopeID) or workgroup it is for exists; else the write fails
// with the scope's not-found error and writes nothing.
func testNoSaltForADeletedScope(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	fresh := shiftkey.LoginSalt{Salt: []byte("salt-one-16bytes"), Iterations: 4096}
	mkCluster := func(id, ns string) {
		t.Helper()
		if err := s.CreateCluster(ctx, &shiftkey.Cluster{Identifier: id, NamespaceID: ns, DBName: "dev", Status: "available", CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	noSalt := func(what, scope, login string) {
		t.Helper()
		creds, _, ok, err := s.LiveCredentials(ctx, scope, login, t0)
		if err != nil {
			t.Fatal(err)
		}
		if ok || len(creds) != 0 {
			t.Errorf("%s: %s of %s has a salt (%v) and %d credentials, want nothing", what, login, scope, ok, len(creds))
		}
	}

	// Answered after the delete.
	mkCluster("gone", "ns-gone")
	if err := s.DeleteCluster(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoginSalt(ctx, "gone", "IAM:late", "ns-gone", fresh); shiftkey.ErrorCode(err) != shiftkey.CodeClusterNotFound {
		t.Errorf("LoginSalt of a deleted cluster: %v, want ClusterNotFound", err)
	}
	noSalt("a salt written after the delete", "gone", "IAM:late")

	// Racing the delete: written before it (and deleted with it) or not at all.
	for round := range 20 {
		ns := fmt.Sprintf("ns-racing-%d", round)
		mkCluster("racing", ns)
		errs := Concurrently(5, func(i int) error {
			if i == 0 {
				return s.DeleteCluster(ctx, "racing")
			}
			_, err := s.LoginSalt(ctx, "racing", fmt.Sprintf("IAM:racer%d", i), ns, fresh)
			if err != nil && shiftkey.ErrorCode(err) != shiftkey.CodeClusterNotFound {
				return err
			}
			return nil
		})
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		for i := 1; i < 5; i++ {
			noSalt(fmt.Sprintf("round %d, racing the delete", round), "racing", fmt.Sprintf("IAM:racer%d", i))
		}
	}

	// Another cluster of the same identifier is not the deleted one's.
	mkCluster("gone", "ns-gone-again")
	if _, err := s.LoginSalt(ctx, "gone", "IAM:late", "ns-gone", fresh); shiftkey.ErrorCode(err) != shiftkey.CodeClusterNotFound {
		t.Errorf("LoginSalt of a deleted cluster whose identifier was created again: %v, want ClusterNotFound", err)
	}
	noSalt("a salt of the deleted cluster, another of its name there", "gone", "IAM:late")
	if got, err := s.LoginSalt(ctx, "gone", "IAM:late", "ns-gone-again", fresh); err != nil || !bytes.Equal(got.Salt, fresh.Salt) {
		t.Errorf("LoginSalt of the cluster created again: %v %v", got, err)
	}

	// A workgroup's, after its delete.
	if err := s.CreateNamespace(ctx, &shiftkey.Namespace{Name: "salt-ns", ID: "id-salt-ns", DBName: "dev", AdminUsername: "admin", Status: "AVAILABLE", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	w := &shiftkey.Workgroup{Name: "salt-wg", ID: "id-salt-wg", Namespace: "salt-ns", Status: "AVAILABLE", BaseCapacity: 128, CreatedAt: t0}
	if err := s.CreateWorkgroup(ctx, w); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoginSalt(ctx, w.CredentialScope(), "IAM:early", w.ID, fresh); err != nil {
		t.Fatalf("LoginSalt of a workgroup: %v", err)
	}
	if err := s.DeleteWorkgroup(ctx, w.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoginSalt(ctx, w.CredentialScope(), "IAM:late", w.ID, fresh); shiftkey.ErrorCode(err) != shiftkey.CodeResourceNotFound {
		t.Errorf("LoginSalt of a deleted workgroup: %v, want ResourceNotFoundException", err)
	}
	noSalt("a salt written after the workgroup's delete", w.CredentialScope(), "IAM:late")

	// What a workgroup's delete finds is deleted with it, as a cluster's:
	// its logins' salts and credentials.
	w2 := &shiftkey.Workgroup{Name: "salt-wg", ID: "id-salt-wg2", Namespace: "salt-ns", Status: "AVAILABLE", BaseCapacity: 128, CreatedAt: t0}
	if err := s.CreateWorkgroup(ctx, w2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoginSalt(ctx, w2.CredentialScope(), "IAM:kept", w2.ID, fresh); err != nil {
		t.Fatal(err)
	}
	c := credential("wg-cred", w2.CredentialScope(), "IAM:kept", t0.Add(time.Hour))
	c.ScopeID = w2.ID
	if err := s.CreateCredential(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteWorkgroup(ctx, w2.Name); err != nil {
		t.Fatal(err)
	}
	noSalt("after the workgroup's delete", w2.CredentialScope(), "IAM:kept")
	noSalt("before the workgroup's delete", w.CredentialScope(), "IAM:early")
}

func testClusters(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	if _, err := s.Cluster(ctx, "nope"); shiftkey.ErrorCode(err) != shiftkey.CodeClusterNotFound {
		t.Fatalf("Cluster(nope) = %v, want ClusterNotFound", err)
	}
	for _, id := range []string{"b-cluster", "a-cluster"} {
		c := &shiftkey.Cluster{Identifier: id, NamespaceID: "ns-" + id, NodeType: "dc2.large", DBName: "dev", MasterUsername: "awsuser",
			Status: "available", Endpoint: shiftkey.Endpoint{Address: "127.0.0.1", Port: 5439},
			Backend: shiftkey.Backend{Host: "/tmp/x", Port: 5432, AdminUser: "awsuser", Managed: true, Login: shiftkey.BackendLoginCert}, CreatedAt: t0}
		if err := s.CreateCluster(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	dup := &shiftkey.Cluster{Identifier: "a-cluster", CreatedAt: t0}
	if err := s.CreateCluster(ctx, dup); shiftkey.ErrorCode(err) != shiftkey.CodeClusterAlreadyExists {
		t.Fatalf("duplicate CreateCluster = %v, want ClusterAlreadyExists", err)
	}
	got, err := s.Cluster(ctx, "a-cluster")
	if err != nil {
		t.Fatal(err)
	}
	if got.Backend.Host != "/tmp/x" || !got.Backend.Managed || got.Backend.Login != shiftkey.BackendLoginCert || got.Endpoint.Port != 5439 || !got.CreatedAt.Equal(t0) || got.NamespaceID != "ns-a-cluster" {
		t.Fatalf("round trip lost fields: %+v", got)
	}
	if got.Region != shiftkey.DefaultRegion {
		t.Fatalf("a cluster stored without a region is in %q, want the default region", got.Region)
	}
	if _, err := s.Cluster(ctx, "A-CLUSTER"); shiftkey.ErrorCode(err) != shiftkey.CodeClusterNotFound {
		t.Fatalf("cluster identifiers are case-sensitive; got %v", err)
	}
	got.Endpoint.Port = 5440
	got.Region = "eu-west-1"
	if err := s.UpdateCluster(ctx, got); err != nil {
		t.Fatal(err)
	}
	again, _ := s.Cluster(ctx, "a-cluster")
	if again.Endpoint.Port != 5440 || again.Region != "eu-west-1" {
		t.Fatalf("update lost: port %d, region %q", again.Endpoint.Port, again.Region)
	}
	all, err := s.Clusters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Identifier != "a-cluster" || all[1].Identifier != "b-cluster" {
		t.Fatalf("Clusters order: %v", all)
	}
}

// A deleted cluster's or workgroup's custom domains go with it, read
// before or not: the name is free again, and a new cluster of the same
// identifier does not inherit it. Another cluster's domain, and a
// workgroup's of the same name as the cluster, stay.
func testDeleteClusterDomains(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	for _, id := range []string{"c", "d"} {
		if err := s.CreateCluster(ctx, &shiftkey.Cluster{Identifier: id, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []*shiftkey.CustomDomain{
		{Name: "c.example.com", Kind: shiftkey.DomainCluster, Target: "c"},
		{Name: "d.example.com", Kind: shiftkey.DomainCluster, Target: "d"},
		{Name: "w.example.com", Kind: shiftkey.DomainWorkgroup, Target: "c"},
	} {
		d.CertificateARN, d.CertExpiry = "arn:aws:acm:us-east-1:000000000000:certificate/x", t0.Add(time.Hour)
		if err := s.CreateCustomDomain(ctx, d); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CustomDomain(ctx, d.Name); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteCluster(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if d, err := s.CustomDomain(ctx, "c.example.com"); shiftkey.ErrorCode(err) != shiftkey.CodeResourceNotFound {
		t.Fatalf("the deleted cluster's domain after DeleteCluster: %+v, %v", d, err)
	}
	for _, name := range []string{"d.example.com", "w.example.com"} {
		if _, err := s.CustomDomain(ctx, name); err != nil {
			t.Fatalf("%s after DeleteCluster of c: %v", name, err)
		}
	}
	if err := s.CreateCustomDomain(ctx, &shiftkey.CustomDomain{Name: "c.example.com", Kind: shiftkey.DomainCluster, Target: "d",
		CertificateARN: "arn:aws:acm:us-east-1:000000000000:certificate/x", CertExpiry: t0.Add(time.Hour)}); err != nil {
		t.Fatalf("the freed name cannot be associated again: %v", err)
	}

	// The same for a workgroup (named as cluster d is): its domains go,
	// d's stays.
	if err := s.CreateNamespace(ctx, &shiftkey.Namespace{Name: "ns", ID: "id-ns", DBName: "dev", AdminUsername: "admin", Status: "AVAILABLE", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateWorkgroup(ctx, &shiftkey.Workgroup{Name: "c", ID: "id-c", Namespace: "ns", Status: "AVAILABLE", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteWorkgroup(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if d, err := s.CustomDomain(ctx, "w.example.com"); shiftkey.ErrorCode(err) != shiftkey.CodeResourceNotFound {
		t.Fatalf("the deleted workgroup's domain after DeleteWorkgroup: %+v, %v", d, err)
	}
	if _, err := s.CustomDomain(ctx, "d.example.com"); err != nil {
		t.Fatalf("cluster d's domain after DeleteWorkgroup of c: %v", err)
	}
}

func testCredentials(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	if creds, _, ok, err := s.LiveCredentials(ctx, "c", "IAM:alice", t0); err != nil || ok || len(creds) != 0 {
		t.Fatalf("unknown login: %v %v %v", creds, ok, err)
	}
	salt, err := s.LoginSalt(ctx, "c", "IAM:alice", "", shiftkey.LoginSalt{Salt: []byte("salt-one-16bytes"), Iterations: 4096})
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.LoginSalt(ctx, "c", "IAM:alice", "", shiftkey.LoginSalt{Salt: []byte("salt-two-16bytes"), Iterations: 8192})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(salt.Salt, again.Salt) || again.Iterations != 4096 {
		t.Fatalf("second LoginSalt replaced the first: %q/%d", again.Salt, again.Iterations)
	}
	mk := func(id string, expires time.Time, db string, groups []string) *shiftkey.Credential {
		c := &shiftkey.Credential{ID: id, Cluster: "c", LoginName: "IAM:alice", DBUser: "alice", DBName: db, DBGroups: groups,
			StoredKey: []byte("stored-" + id), ServerKey: []byte("server-" + id), PrincipalARN: "arn:aws:iam::1:user/x",
			RequestID: "req-" + id, CreatedAt: t0, ExpiresAt: expires}
		if id == "one" { // "two" was issued before the keys were recorded
			c.AccessKeyID = "AKIAISSUER"
		}
		if id == "one" { // nor was what "two" was issued to kept
			c.PrincipalARN, c.IssuedTo = "arn:aws:sts::1:assumed-role/Reader/s1", issuedToSession
		}
		if id != "two" { // "two" stands for a credential issued before the digests existed
			c.DigestSHA256, c.DigestMD5 = []byte("sha256-"+id), []byte("md5-"+id)
		}
		return c
	}
	for _, c := range []*shiftkey.Credential{
		mk("one", t0.Add(15*time.Minute), "dev", []string{"g1", "g2"}),
		mk("two", t0.Add(60*time.Minute), "", nil),
		mk("old", t0.Add(-time.Second), "", nil),
	} {
		if err := s.CreateCredential(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	creds, gotSalt, ok, err := s.LiveCredentials(ctx, "c", "IAM:alice", t0)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if !bytes.Equal(gotSalt.Salt, salt.Salt) {
		t.Fatalf("salt %q, want %q", gotSalt.Salt, salt.Salt)
	}
	if len(creds) != 2 {
		t.Fatalf("live credentials: %d, want 2 (expired one excluded)", len(creds))
	}
	byID := map[string]*shiftkey.Credential{}
	for _, c := range creds {
		byID[c.ID] = c
	}
	one := byID["one"]
	if one == nil || one.DBName != "dev" || fmt.Sprint(one.DBGroups) != "[g1 g2]" || string(one.StoredKey) != "stored-one" ||
		string(one.ServerKey) != "server-one" || string(one.DigestSHA256) != "sha256-one" || string(one.DigestMD5) != "md5-one" || !one.ExpiresAt.Equal(t0.Add(15*time.Minute)) || one.DBUser != "alice" ||
		// The gateway's login records name the key that got it, and the
		// principal as it was then.
		one.AccessKeyID != "AKIAISSUER" || !sameIssuedTo(one.IssuedTo, issuedToSession) {
		t.Fatalf("credential round trip: %+v", one)
	}
	if two := byID["two"]; two == nil || len(two.DigestSHA256) != 0 || len(two.DigestMD5) != 0 || two.AccessKeyID != "" || two.IssuedTo != (shiftkey.IssuedTo{}) {
		t.Fatalf("a credential without digests read back with some: %+v", two)
	}
	if creds, _, _, _ := s.LiveCredentials(ctx, "c", "IAM:alice", t0.Add(30*time.Minute)); len(creds) != 1 || creds[0].ID != "two" {
		t.Fatalf("after 30 min: %v", creds)
	}
	if creds, later, ok, err := s.LiveCredentials(ctx, "c", "IAM:alice", t0.Add(2*time.Hour)); err != nil || !ok || len(creds) != 0 || !bytes.Equal(later.Salt, salt.Salt) {
		t.Fatalf("all expired: creds %v ok %v salt %q err %v; want none, the login still known with its salt", creds, ok, later.Salt, err)
	}
	if creds, _, _, _ := s.LiveCredentials(ctx, "other", "IAM:alice", t0); len(creds) != 0 {
		t.Fatalf("credentials leak across clusters: %v", creds)
	}
	n, err := s.DeleteExpiredCredentials(ctx, t0)
	if err != nil || n != 1 {
		t.Fatalf("DeleteExpiredCredentials = %d, %v; want 1", n, err)
	}
}

// liveIDs returns the IDs LiveCredentials answers, sorted, and ok.
func liveIDs(t *testing.T, s shiftkey.Store, cluster, login string, now time.Time) ([]string, bool) {
	t.Helper()
	creds, _, ok, err := s.LiveCredentials(context.Background(), cluster, login, now)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, c := range creds {
		ids = append(ids, c.ID)
	}
	sort.Strings(ids)
	return ids, ok
}

// issuedToSession is what a credential issued to an STS session keeps of
// it: the role's path and id, when the session began.
var issuedToSession = shiftkey.IssuedTo{PrincipalID: "AROAREADER:s1", RoleARN: "arn:aws:iam::1:role/team/Reader", SessionCreatedAt: t0.Add(-time.Minute)}

func sameIssuedTo(a, b shiftkey.IssuedTo) bool {
	return a.PrincipalID == b.PrincipalID && a.RoleARN == b.RoleARN && a.SessionCreatedAt.Equal(b.SessionCreatedAt)
}

func credential(id, cluster, login string, expires time.Time) *shiftkey.Credential {
	return &shiftkey.Credential{ID: id, Cluster: cluster, LoginName: login, DBUser: "u", StoredKey: []byte("k-" + id),
		ServerKey: []byte("s-" + id), CreatedAt: t0, ExpiresAt: expires}
}

// Every write that changes what LiveCredentials answers is seen by the very
// next LiveCredentials, even right after a read of the same login (a store
// may cache reads, never past a write).
func testCredentialWritesVisible(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	check := func(what, cluster, login string, wantOK bool, want ...string) {
		t.Helper()
		ids, ok := liveIDs(t, s, cluster, login, t0)
		if ok != wantOK || fmt.Sprint(ids) != fmt.Sprint(append([]string{}, want...)) {
			t.Fatalf("%s: LiveCredentials(%s, %s) = %v ok %v; want %v ok %v", what, cluster, login, ids, ok, want, wantOK)
		}
	}
	for _, id := range []string{"c", "d"} {
		if err := s.CreateCluster(ctx, &shiftkey.Cluster{Identifier: id, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	salt := shiftkey.LoginSalt{Salt: []byte("salt-one-16bytes"), Iterations: 4096}

	check("unknown login", "c", "IAM:alice", false)
	if _, err := s.LoginSalt(ctx, "c", "IAM:alice", "", salt); err != nil {
		t.Fatal(err)
	}
	check("after LoginSalt", "c", "IAM:alice", true)
	if err := s.CreateCredential(ctx, credential("a1", "c", "IAM:alice", t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	check("after CreateCredential", "c", "IAM:alice", true, "a1")
	if err := s.CreateCredential(ctx, credential("a2", "c", "IAM:alice", t0.Add(2*time.Hour))); err != nil {
		t.Fatal(err)
	}
	check("after a second CreateCredential", "c", "IAM:alice", true, "a1", "a2")
	if err := s.DeleteCredentials(ctx, "c", "IAM:alice"); err != nil {
		t.Fatal(err)
	}
	check("after DeleteCredentials", "c", "IAM:alice", true)

	// A bulk delete of expired credentials, with t after the read's now.
	if err := s.CreateCredential(ctx, credential("a3", "c", "IAM:alice", t0.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	check("before DeleteExpiredCredentials", "c", "IAM:alice", true, "a3")
	if n, err := s.DeleteExpiredCredentials(ctx, t0.Add(2*time.Minute)); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredCredentials = %d, %v; want 1", n, err)
	}
	check("after DeleteExpiredCredentials", "c", "IAM:alice", true)

	// DeleteCluster forgets every login of that cluster, and only of it.
	for _, c := range []*shiftkey.Credential{credential("a4", "c", "IAM:alice", t0.Add(time.Hour)), credential("b1", "d", "IAM:alice", t0.Add(time.Hour))} {
		if _, err := s.LoginSalt(ctx, c.Cluster, c.LoginName, "", salt); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateCredential(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	check("before DeleteCluster", "c", "IAM:alice", true, "a4")
	check("other cluster before DeleteCluster", "d", "IAM:alice", true, "b1")
	if err := s.DeleteCluster(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	check("after DeleteCluster", "c", "IAM:alice", false)
	check("other cluster after DeleteCluster", "d", "IAM:alice", true, "b1")
}

// Expiry is judged at each call's now, whatever was read before.
func testCredentialExpiryAtEachCall(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	if _, err := s.LoginSalt(ctx, "c", "IAM:alice", "", shiftkey.LoginSalt{Salt: []byte("salt-one-16bytes"), Iterations: 4096}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*shiftkey.Credential{credential("short", "c", "IAM:alice", t0.Add(10*time.Minute)), credential("long", "c", "IAM:alice", t0.Add(time.Hour))} {
		if err := s.CreateCredential(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []struct {
		now  time.Time
		want string
	}{
		{t0.Add(30 * time.Minute), "[long]"},
		{t0, "[long short]"}, // an earlier now after a later one
		{t0.Add(10*time.Minute - time.Millisecond), "[long short]"},
		{t0.Add(10 * time.Minute), "[long]"}, // expired at its ExpiresAt
		{t0.Add(2 * time.Hour), "[]"},
		{t0.Add(9 * time.Minute), "[long short]"},
	} {
		if ids, ok := liveIDs(t, s, "c", "IAM:alice", step.now); !ok || fmt.Sprint(ids) != step.want {
			t.Fatalf("at t0+%v: %v ok %v; want %s", step.now.Sub(t0), ids, ok, step.want)
		}
	}
}

func testLoginSaltConcurrent(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	salts := make([][]byte, 8)
	for i := range salts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := s.LoginSalt(ctx, "c", "IAMA:bob", "", shiftkey.LoginSalt{Salt: []byte(fmt.Sprintf("salt-%02d-16bytes", i)), Iterations: 4096})
			if err != nil {
				t.Error(err)
				return
			}
			salts[i] = got.Salt
		}()
	}
	wg.Wait()
	for i := range salts {
		if !bytes.Equal(salts[i], salts[0]) {
			t.Fatalf("concurrent issuers got different salts: %q vs %q", salts[i], salts[0])
		}
	}
}

// testLoginIterations: the distinct iteration counts of one cluster's
// login salts, ascending, whatever count the salts of other clusters have
// (shiftkey.SaltIterations, optional: a decorator such as storecache's
// leaves it to the store beneath, which the server asks).
func testLoginIterations(t *testing.T, s shiftkey.Store) {
	si, ok := s.(shiftkey.SaltIterations)
	if !ok {
		return
	}
	ctx := context.Background()
	if got, err := si.LoginIterations(ctx, "c"); err != nil || len(got) != 0 {
		t.Fatalf("no salts: %v, %v", got, err)
	}
	for i, n := range []int{8192, 4096, 8192, 1} {
		cluster := "c"
		if n == 1 {
			cluster = "other"
		}
		if _, err := s.LoginSalt(ctx, cluster, fmt.Sprintf("IAM:u%d", i), "", shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: n}); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := si.LoginIterations(ctx, "c"); err != nil || fmt.Sprint(got) != "[4096 8192]" {
		t.Fatalf("LoginIterations: %v, %v; want [4096 8192]", got, err)
	}
}

// Succeeded counts the calls of what that succeeded (nil in errs) and
// reports every error refused does not accept: the answer a quota gives
// the calls past it, which a race must not turn into anything else.
func Succeeded(t testing.TB, what string, errs []error, refused func(error) bool) int {
	t.Helper()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !refused(err):
			t.Errorf("%s: %v, want success or its refusal", what, err)
		}
	}
	return ok
}

// LimitExceeded reports whether err is a store's quota refusal.
func LimitExceeded(err error) bool { return shiftkey.ErrorCode(err) == shiftkey.CodeLimitExceeded }

// Concurrently runs f(0) … f(n-1) at once and returns their errors by
// index: the race a quota enforced by the write itself must survive, at
// any layer (the store here, the API in package http's tests).
func Concurrently(n int, f func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = f(i) })
	}
	wg.Wait()
	return errs
}

// testAccessKeyQuotaConcurrent: the per-user key quota is enforced by the
// write itself, so concurrent creations cannot exceed it (issue 12,
// finding 7).
func testAccessKeyQuotaConcurrent(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	u := &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "kim", ID: "AIDAEXAMPLE000000009", Path: "/", ARN: "arn:aws:iam::1:user/kim", CreatedAt: t0}
	if err := s.CreateEntity(ctx, u); err != nil {
		t.Fatal(err)
	}
	errs := Concurrently(20, func(i int) error {
		return s.CreateAccessKey(ctx, &shiftkey.AccessKey{ID: fmt.Sprintf("AKIAQUOTA%02d", i), Secret: "s", UserName: "KIM", Status: "Active", CreatedAt: t0})
	})
	created := Succeeded(t, "CreateAccessKey", errs, LimitExceeded)
	keys, err := s.AccessKeys(ctx, "kim")
	if err != nil {
		t.Fatal(err)
	}
	if created != shiftkey.MaxAccessKeysPerUser || len(keys) != shiftkey.MaxAccessKeysPerUser {
		t.Fatalf("%d concurrent creations succeeded and %d keys are stored, want %d", created, len(keys), shiftkey.MaxAccessKeysPerUser)
	}
	// Deleting one frees a slot.
	if err := s.DeleteAccessKey(ctx, keys[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccessKey(ctx, &shiftkey.AccessKey{ID: "AKIAQUOTAZZ", Secret: "s", UserName: "kim", Status: "Active", CreatedAt: t0}); err != nil {
		t.Fatalf("after a delete: %v", err)
	}
}

// testAttachmentQuotasConcurrent: the quotas of managed policies attached
// to one entity and of groups per user are enforced by the write itself;
// what is already there may be attached or joined again.
func testAttachmentQuotasConcurrent(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	for _, e := range []*shiftkey.Entity{
		{Kind: shiftkey.KindRole, Name: "Quota", ID: "AROAEXAMPLEQUOTA0001", Path: "/", ARN: "arn:aws:iam::1:role/Quota", CreatedAt: t0},
		{Kind: shiftkey.KindUser, Name: "joiner", ID: "AIDAEXAMPLEQUOTA0001", Path: "/", ARN: "arn:aws:iam::1:user/joiner", CreatedAt: t0},
	} {
		if err := s.CreateEntity(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	const n = 20
	for i := range n {
		name := fmt.Sprintf("q%02d", i)
		if err := s.CreateManagedPolicy(ctx, &shiftkey.ManagedPolicy{ARN: "arn:aws:iam::1:policy/" + name, Name: name, ID: fmt.Sprintf("ANPAEXAMPLEQUOTA%04d", i),
			Path: "/", Document: `{}`, CreatedAt: t0, UpdatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindGroup, Name: name, ID: fmt.Sprintf("AGPAEXAMPLEQUOTA%04d", i), Path: "/",
			ARN: "arn:aws:iam::1:group/" + name, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	admitted := func(what string, max int, errs []error) {
		t.Helper()
		if ok := Succeeded(t, what, errs, LimitExceeded); ok != max {
			t.Errorf("%d of %d concurrent %s succeeded, want %d", ok, len(errs), what, max)
		}
	}
	admitted("attachments", shiftkey.MaxAttachedPolicies, Concurrently(n, func(i int) error {
		return s.AttachPolicy(ctx, shiftkey.KindRole, "QUOTA", fmt.Sprintf("arn:aws:iam::1:policy/q%02d", i))
	}))
	admitted("joins", shiftkey.MaxGroupsPerUser, Concurrently(n, func(i int) error {
		return s.AddUserToGroup(ctx, fmt.Sprintf("Q%02d", i), "Joiner")
	}))
	attached, err := s.AttachedPolicies(ctx, shiftkey.KindRole, "quota")
	if err != nil || len(attached) != shiftkey.MaxAttachedPolicies {
		t.Fatalf("attached: %d, %v", len(attached), err)
	}
	groups, err := s.GroupsForUser(ctx, "joiner")
	if err != nil || len(groups) != shiftkey.MaxGroupsPerUser {
		t.Fatalf("groups: %d, %v", len(groups), err)
	}
	if err := s.AttachPolicy(ctx, shiftkey.KindRole, "Quota", attached[0].ARN); err != nil {
		t.Fatalf("attaching again at the quota: %v", err)
	}
	if err := s.AddUserToGroup(ctx, groups[0].Name, "joiner"); err != nil {
		t.Fatalf("joining again at the quota: %v", err)
	}
	if err := s.AttachPolicy(ctx, shiftkey.KindRole, "nobody", attached[0].ARN); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("attaching to a missing role: %v", err)
	}
	if err := s.AddUserToGroup(ctx, groups[0].Name, "nobody"); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("a missing user joining: %v", err)
	}
	// A detachment or a departure frees a slot.
	if err := s.DetachPolicy(ctx, shiftkey.KindRole, "Quota", attached[0].ARN); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveUserFromGroup(ctx, groups[0].Name, "joiner"); err != nil {
		t.Fatal(err)
	}
	var freeP, freeG string
	for i := range n {
		name := fmt.Sprintf("q%02d", i)
		if !slices.ContainsFunc(attached, func(p *shiftkey.ManagedPolicy) bool { return p.Name == name }) && freeP == "" {
			freeP = "arn:aws:iam::1:policy/" + name
		}
		if !slices.ContainsFunc(groups, func(g *shiftkey.Entity) bool { return g.Name == name }) && freeG == "" {
			freeG = name
		}
	}
	if err := s.AttachPolicy(ctx, shiftkey.KindRole, "Quota", freeP); err != nil {
		t.Fatalf("after a detachment: %v", err)
	}
	if err := s.AddUserToGroup(ctx, freeG, "joiner"); err != nil {
		t.Fatalf("after a departure: %v", err)
	}
}

// testInlinePolicyAdmittedConcurrent: PutInlinePolicyAdmitted shows admit
// the owner's policies as its write sees them, so concurrent puts under
// different names cannot pass an aggregate bound together; a refused put
// writes nothing, and a missing owner is NoSuchEntity.
func testInlinePolicyAdmittedConcurrent(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	if err := s.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "packed", ID: "AIDAEXAMPLEPACKED001", Path: "/", ARN: "arn:aws:iam::1:user/packed", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	full := errors.New("full")
	const doc = `{"size":"ten"}`
	atMostThree := func(name string) func([]shiftkey.PolicyDocument) error {
		return func(have []shiftkey.PolicyDocument) error {
			if len(have) >= 3 && !slices.ContainsFunc(have, func(p shiftkey.PolicyDocument) bool { return strings.EqualFold(p.Name, name) }) {
				return full
			}
			return nil
		}
	}
	errs := Concurrently(20, func(i int) error {
		name := fmt.Sprintf("p%02d", i)
		return s.PutInlinePolicyAdmitted(ctx, shiftkey.KindUser, "PACKED", shiftkey.PolicyDocument{Name: name, Document: doc}, atMostThree(name))
	})
	ok := Succeeded(t, "PutInlinePolicyAdmitted", errs, func(err error) bool { return errors.Is(err, full) })
	have, err := s.InlinePolicies(ctx, shiftkey.KindUser, "packed")
	if err != nil || ok != 3 || len(have) != 3 {
		t.Fatalf("%d of 20 concurrent puts admitted, %d stored (%v); want 3", ok, len(have), err)
	}
	// Replacing one of them is admitted at the bound.
	if err := s.PutInlinePolicyAdmitted(ctx, shiftkey.KindUser, "packed", shiftkey.PolicyDocument{Name: have[0].Name, Document: `{"v":2}`}, atMostThree(have[0].Name)); err != nil {
		t.Fatalf("replacing at the bound: %v", err)
	}
	if err := s.PutInlinePolicyAdmitted(ctx, shiftkey.KindUser, "nobody", shiftkey.PolicyDocument{Name: "p", Document: doc}, atMostThree("p")); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("a missing owner: %v", err)
	}
}

// testAccountQuotaConcurrent: the account's quota of groups is counted in
// the write, so concurrent creations cannot pass it together; a duplicate
// name is still EntityAlreadyExists.
func testAccountQuotaConcurrent(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	max := shiftkey.MaxEntities[shiftkey.KindGroup]
	group := func(name string) *shiftkey.Entity {
		return &shiftkey.Entity{Kind: shiftkey.KindGroup, Name: name, ID: "AGPA" + strings.ToUpper(name), Path: "/", ARN: "arn:aws:iam::1:group/" + name, CreatedAt: t0}
	}
	for i := range max - 5 {
		if err := s.CreateEntity(ctx, group(fmt.Sprintf("held%04d", i))); err != nil {
			t.Fatal(err)
		}
	}
	errs := Concurrently(20, func(i int) error { return s.CreateEntity(ctx, group(fmt.Sprintf("race%02d", i))) })
	ok := Succeeded(t, "CreateEntity", errs, LimitExceeded)
	all, err := s.Entities(ctx, shiftkey.KindGroup, "/")
	if err != nil || ok != 5 || len(all) != max {
		t.Fatalf("%d of 20 concurrent creations at %d of %d succeeded, %d stored (%v); want 5", ok, max-5, max, len(all), err)
	}
	if err := s.CreateEntity(ctx, group("held0000")); shiftkey.ErrorCode(err) != shiftkey.CodeEntityAlreadyExists {
		t.Fatalf("a duplicate at the quota: %v", err)
	}
	// Users are counted apart from groups.
	if err := s.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "free", ID: "AIDAFREE", Path: "/", ARN: "arn:aws:iam::1:user/free", CreatedAt: t0}); err != nil {
		t.Fatalf("a user with the groups at their quota: %v", err)
	}
}

// testTagQuotaConcurrent: TagEntity counts the owner's tags in its write,
// so concurrent taggers adding different keys cannot pass MaxTags
// together; replacing a value at the quota is allowed.
func testTagQuotaConcurrent(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	if err := s.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindRole, Name: "labelled", ID: "AROAEXAMPLELABELLED1", Path: "/", ARN: "arn:aws:iam::1:role/labelled", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	errs := Concurrently(25, func(i int) error {
		tags := make([]shiftkey.Tag, 5)
		for j := range tags {
			tags[j] = shiftkey.Tag{Key: fmt.Sprintf("k%02d-%d", i, j), Value: "v"}
		}
		return s.TagEntity(ctx, shiftkey.KindRole, "LABELLED", tags)
	})
	ok := Succeeded(t, "TagEntity", errs, LimitExceeded)
	tags, err := s.Tags(ctx, shiftkey.KindRole, "labelled")
	if err != nil || ok != shiftkey.MaxTags/5 || len(tags) != shiftkey.MaxTags {
		t.Fatalf("%d of 25 concurrent taggings of 5 keys succeeded, %d tags stored (%v); want %d and %d", ok, len(tags), err, shiftkey.MaxTags/5, shiftkey.MaxTags)
	}
	if err := s.TagEntity(ctx, shiftkey.KindRole, "labelled", []shiftkey.Tag{{Key: strings.ToUpper(tags[0].Key), Value: "new"}}); err != nil {
		t.Fatalf("replacing a tag at the quota: %v", err)
	}
}

// testAccessKeyUse: a key's last use is recorded with its service and
// region, moves on only once a KeyUseInterval has passed, and an unknown
// key is no error.
func testAccessKeyUse(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	if err := s.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "user", ID: "AIDAEXAMPLEUSE000001", Path: "/", ARN: "arn:aws:iam::1:user/user", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccessKey(ctx, &shiftkey.AccessKey{ID: "AKIAUSE", Secret: "s", UserName: "user", Status: "Active", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	last := func() *shiftkey.AccessKey {
		t.Helper()
		k, err := s.AccessKey(ctx, "AKIAUSE")
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	if k := last(); !k.LastUsed.IsZero() || k.LastUsedService != "" || k.LastUsedRegion != "" {
		t.Fatalf("a new key: %+v, want no use", k)
	}
	used := t0.Add(time.Minute)
	for _, u := range []struct {
		at              time.Time
		service, region string
	}{{used, "redshift", "eu-west-1"}, {used.Add(shiftkey.KeyUseInterval - time.Second), "sts", "us-east-1"}} {
		if err := s.RecordAccessKeyUse(ctx, "AKIAUSE", u.at, u.service, u.region); err != nil {
			t.Fatal(err)
		}
	}
	if k := last(); !k.LastUsed.Equal(used) || k.LastUsedService != "redshift" || k.LastUsedRegion != "eu-west-1" {
		t.Fatalf("after two uses within the interval: %+v, want the first", k)
	}
	later := used.Add(shiftkey.KeyUseInterval)
	if err := s.RecordAccessKeyUse(ctx, "AKIAUSE", later, "iam", "us-east-1"); err != nil {
		t.Fatal(err)
	}
	if k := last(); !k.LastUsed.Equal(later) || k.LastUsedService != "iam" {
		t.Fatalf("a use an interval later: %+v", k)
	}
	if keys, err := s.AccessKeys(ctx, "user"); err != nil || len(keys) != 1 || !keys[0].LastUsed.Equal(later) {
		t.Fatalf("AccessKeys: %+v %v", keys, err)
	}
	if err := s.RecordAccessKeyUse(ctx, "AKIAGONE", later, "iam", "us-east-1"); err != nil {
		t.Fatalf("an unknown key: %v", err)
	}
}

// testCreateEntityWithTags: CreateEntity writes the entity and its tags
// (Entity.Tags) together; past MaxTags, or named twice, it writes neither.
func testCreateEntityWithTags(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	tags := []shiftkey.Tag{{Key: "RedshiftDbRoles", Value: "reader"}, {Key: "team", Value: "data"}}
	r := &shiftkey.Entity{Kind: shiftkey.KindRole, Name: "Tagged", ID: "AROATAGGED0000000001", Path: "/", ARN: "arn:aws:iam::1:role/Tagged",
		AssumeRolePolicy: `{"x":1}`, MaxSessionDuration: 3600, CreatedAt: t0, Tags: tags}
	if err := s.CreateEntity(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Tags(ctx, shiftkey.KindRole, "tagged"); err != nil || !slices.Equal(got, tags) {
		t.Fatalf("Tags after CreateEntity with tags: %v %v, want %v", got, err, tags)
	}
	if got, _ := s.Entity(ctx, shiftkey.KindRole, "Tagged"); got == nil || got.Tags != nil {
		t.Fatalf("Entity read back: %+v (its tags are read by Tags)", got)
	}
	// The same name again: refused, and its tags are not written over
	// the existing role's.
	dup := *r
	dup.ID, dup.Tags = "AROATAGGED0000000002", []shiftkey.Tag{{Key: "team", Value: "ops"}}
	if err := s.CreateEntity(ctx, &dup); shiftkey.ErrorCode(err) != shiftkey.CodeEntityAlreadyExists {
		t.Fatalf("CreateEntity of a taken name: %v", err)
	}
	if got, _ := s.Tags(ctx, shiftkey.KindRole, "Tagged"); !slices.Equal(got, tags) {
		t.Fatalf("tags after the refused duplicate: %v, want %v", got, tags)
	}
	many := make([]shiftkey.Tag, shiftkey.MaxTags+1)
	for i := range many {
		many[i] = shiftkey.Tag{Key: fmt.Sprintf("k%d", i)}
	}
	u := &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "over", ID: "AIDAOVER000000000001", Path: "/", ARN: "arn:aws:iam::1:user/over", CreatedAt: t0, Tags: many}
	if err := s.CreateEntity(ctx, u); shiftkey.ErrorCode(err) != shiftkey.CodeLimitExceeded {
		t.Fatalf("CreateEntity with %d tags: %v, want LimitExceeded", len(many), err)
	}
	if _, err := s.Entity(ctx, shiftkey.KindUser, "over"); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("the refused user exists: %v", err)
	}
}

// testManagedPolicies: ManagedPolicies lists the policies under a path
// prefix, by name, each with the count of entities it is attached to.
func testManagedPolicies(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	for i, p := range []struct{ name, path string }{{"zeta", "/"}, {"alpha", "/a/"}, {"beta", "/a/b/"}, {"gamma", "/ab/"}} {
		m := &shiftkey.ManagedPolicy{ARN: "arn:aws:iam::1:policy" + p.path + p.name, Name: p.name, ID: fmt.Sprintf("ANPALIST%012d", i), Path: p.path,
			Document: `{"x":1}`, CreatedAt: t0, UpdatedAt: t0}
		if err := s.CreateManagedPolicy(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, kind := range []shiftkey.EntityKind{shiftkey.KindUser, shiftkey.KindRole} {
		e := &shiftkey.Entity{Kind: kind, Name: "owner", ID: "AIDALIST" + string(kind), Path: "/", ARN: "arn:aws:iam::1:" + string(kind) + "/owner", CreatedAt: t0}
		if err := s.CreateEntity(ctx, e); err != nil {
			t.Fatal(err)
		}
		if err := s.AttachPolicy(ctx, kind, "owner", "arn:aws:iam::1:policy/a/b/beta"); err != nil {
			t.Fatal(err)
		}
	}
	list := func(prefix string) string {
		t.Helper()
		pols, err := s.ManagedPolicies(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, p := range pols {
			out = append(out, fmt.Sprintf("%s:%d", p.Name, p.AttachmentCount))
			if p.Document != `{"x":1}` || !p.CreatedAt.Equal(t0) {
				t.Fatalf("ManagedPolicies read %+v", p)
			}
		}
		return strings.Join(out, ",")
	}
	if got := list("/"); got != "alpha:0,beta:2,gamma:0,zeta:0" {
		t.Fatalf("ManagedPolicies(/) = %s", got)
	}
	if got := list("/a/"); got != "alpha:0,beta:2" {
		t.Fatalf("ManagedPolicies(/a/) = %s", got)
	}
	if got := list("/none/"); got != "" {
		t.Fatalf("ManagedPolicies(/none/) = %s", got)
	}
	// PolicyEntities: who a policy is attached to, by kind then name.
	for arn, want := range map[string]string{"arn:aws:iam::1:policy/a/b/beta": "role/AIDALISTrole,user/AIDALISTuser", "arn:aws:iam::1:policy/zeta": ""} {
		es, err := s.PolicyEntities(ctx, arn)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range es {
			got = append(got, string(e.Kind)+"/"+e.ID)
		}
		if strings.Join(got, ",") != want {
			t.Fatalf("PolicyEntities(%s) = %q, want %s", arn, got, want)
		}
	}
}

func testIdentities(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	if _, err := s.Entity(ctx, shiftkey.KindUser, "bob"); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("Entity(bob) = %v, want NoSuchEntity", err)
	}
	u := &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "Bob", ID: "AIDAEXAMPLE000000001", Path: "/eng/", ARN: "arn:aws:iam::1:user/eng/Bob", CreatedAt: t0}
	if err := s.CreateEntity(ctx, u); err != nil {
		t.Fatal(err)
	}
	dup := *u
	dup.Name, dup.ID = "BOB", "AIDAEXAMPLE000000002"
	if err := s.CreateEntity(ctx, &dup); shiftkey.ErrorCode(err) != shiftkey.CodeEntityAlreadyExists {
		t.Fatalf("user names must be unique regardless of case: %v", err)
	}
	role := &shiftkey.Entity{Kind: shiftkey.KindRole, Name: "bob", ID: "AROAEXAMPLE000000001", Path: "/", ARN: "arn:aws:iam::1:role/bob",
		AssumeRolePolicy: `{"x":1}`, MaxSessionDuration: 7200, CreatedAt: t0}
	if err := s.CreateEntity(ctx, role); err != nil {
		t.Fatalf("a role may share a user's name: %v", err)
	}
	got, err := s.Entity(ctx, shiftkey.KindUser, "bob")
	if err != nil || got.Name != "Bob" || got.Path != "/eng/" {
		t.Fatalf("case-insensitive lookup: %+v %v", got, err)
	}
	if r, _ := s.Entity(ctx, shiftkey.KindRole, "bob"); r == nil || r.AssumeRolePolicy != `{"x":1}` || r.MaxSessionDuration != 7200 {
		t.Fatalf("role round trip: %+v", r)
	}
	// UpdateRole: the trust policy, its bindings, the description and the
	// session limit change; the id and the rest stay. A read before it is not served
	// after it.
	if err := s.PutInlinePolicy(ctx, shiftkey.KindRole, "bob", shiftkey.PolicyDocument{Name: "p", Document: `{"y":2}`}); err != nil {
		t.Fatal(err)
	}
	upd := *role
	upd.Name, upd.AssumeRolePolicy, upd.MaxSessionDuration, upd.TrustPrincipalIDs, upd.Description = "BOB", `{"x":2}`, 3600, `{"arn":"AIDA"}`, "changed"
	if err := s.UpdateRole(ctx, &upd, shiftkey.AllRoleFields); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Entity(ctx, shiftkey.KindRole, "bob"); r == nil || r.ID != role.ID || r.Name != "bob" || r.AssumeRolePolicy != `{"x":2}` || r.MaxSessionDuration != 3600 ||
		r.TrustPrincipalIDs != `{"arn":"AIDA"}` || r.ARN != role.ARN || r.Description != "changed" {
		t.Fatalf("role after UpdateRole: %+v", r)
	}
	// Only the fields named are written; the others stay as stored, not as
	// the caller's copy has them.
	for _, c := range []struct {
		fields shiftkey.RoleFields
		want   func(r *shiftkey.Entity) bool
	}{
		{shiftkey.RoleTrust, func(r *shiftkey.Entity) bool {
			return r.AssumeRolePolicy == `{"x":3}` && r.TrustPrincipalIDs == `{"arn":"AROA"}` && r.Description == "changed" && r.MaxSessionDuration == 3600
		}},
		{shiftkey.RoleDescription, func(r *shiftkey.Entity) bool {
			return r.Description == "third" && r.AssumeRolePolicy == `{"x":3}` && r.MaxSessionDuration == 3600
		}},
		{shiftkey.RoleMaxSession, func(r *shiftkey.Entity) bool {
			return r.MaxSessionDuration == 10800 && r.Description == "third" && r.AssumeRolePolicy == `{"x":3}`
		}},
		{0, func(r *shiftkey.Entity) bool { return r.MaxSessionDuration == 10800 && r.Description == "third" }},
	} {
		stale := *role // the copy a caller read before: every other field differs
		stale.AssumeRolePolicy, stale.TrustPrincipalIDs, stale.Description, stale.MaxSessionDuration = `{"x":3}`, `{"arn":"AROA"}`, "third", 10800
		switch c.fields {
		case shiftkey.RoleTrust:
			stale.Description, stale.MaxSessionDuration = "stale", 43200
		case shiftkey.RoleDescription:
			stale.AssumeRolePolicy, stale.MaxSessionDuration = `{"stale":1}`, 43200
		case shiftkey.RoleMaxSession:
			stale.AssumeRolePolicy, stale.Description = `{"stale":1}`, "stale"
		default:
			stale.AssumeRolePolicy, stale.Description, stale.MaxSessionDuration = `{"stale":1}`, "stale", 43200
		}
		if err := s.UpdateRole(ctx, &stale, c.fields); err != nil {
			t.Fatalf("UpdateRole of fields %b: %v", c.fields, err)
		}
		if r, _ := s.Entity(ctx, shiftkey.KindRole, "bob"); r == nil || !c.want(r) {
			t.Fatalf("role after UpdateRole of fields %b: %+v", c.fields, r)
		}
	}
	if ps, _ := s.InlinePolicies(ctx, shiftkey.KindRole, "bob"); len(ps) != 1 {
		t.Fatalf("inline policies after UpdateRole: %v", ps)
	}
	if err := s.DeleteInlinePolicy(ctx, shiftkey.KindRole, "bob", "p"); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.Entity(ctx, shiftkey.KindUser, "bob"); u == nil || u.AssumeRolePolicy != "" {
		t.Fatalf("UpdateRole changed the user of the name: %+v", u)
	}
	missing := upd
	missing.Name = "nobody"
	if err := s.UpdateRole(ctx, &missing, shiftkey.AllRoleFields); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("UpdateRole of a missing role: %v", err)
	}
	if err := s.UpdateRole(ctx, &missing, 0); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("UpdateRole of a missing role: %v", err)
	}
	if es, _ := s.Entities(ctx, shiftkey.KindUser, "/eng/"); len(es) != 1 {
		t.Fatalf("path prefix /eng/: %d", len(es))
	}
	if es, _ := s.Entities(ctx, shiftkey.KindUser, "/ops/"); len(es) != 0 {
		t.Fatalf("path prefix /ops/: %d", len(es))
	}

	if err := s.CreateAccessKey(ctx, &shiftkey.AccessKey{ID: "AKIAX", Secret: "s", UserName: "nobody", Status: "Active", CreatedAt: t0}); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("key for missing user = %v", err)
	}
	if err := s.CreateAccessKey(ctx, &shiftkey.AccessKey{ID: "AKIA1", Secret: "secret1", UserName: "Bob", Status: "Active", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	k, err := s.AccessKey(ctx, "AKIA1")
	if err != nil || k.Secret != "secret1" || k.UserName != "Bob" || k.Status != "Active" {
		t.Fatalf("AccessKey = %+v, %v", k, err)
	}
	if err := s.UpdateAccessKey(ctx, "AKIA1", "Inactive"); err != nil {
		t.Fatal(err)
	}
	if k, _ := s.AccessKey(ctx, "AKIA1"); k.Status != "Inactive" {
		t.Fatalf("status %s", k.Status)
	}
	if _, err := s.AccessKey(ctx, "AKIA2"); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("unknown key = %v", err)
	}

	if err := s.PutInlinePolicy(ctx, shiftkey.KindUser, "Bob", shiftkey.PolicyDocument{Name: "p", Document: `{"v":1}`}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutInlinePolicy(ctx, shiftkey.KindUser, "bob", shiftkey.PolicyDocument{Name: "p", Document: `{"v":2}`}); err != nil {
		t.Fatal(err)
	}
	pols, err := s.InlinePolicies(ctx, shiftkey.KindUser, "Bob")
	if err != nil || len(pols) != 1 || pols[0].Document != `{"v":2}` {
		t.Fatalf("InlinePolicies = %v, %v", pols, err)
	}
	if pols, _ := s.InlinePolicies(ctx, shiftkey.KindRole, "bob"); len(pols) != 0 {
		t.Fatalf("a user's policy leaked to a role of the same name: %v", pols)
	}

	mp := &shiftkey.ManagedPolicy{ARN: "arn:aws:iam::1:policy/read", Name: "read", ID: "ANPA1", Path: "/", Document: `{"m":1}`, CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateManagedPolicy(ctx, mp); err != nil {
		t.Fatal(err)
	}
	group := &shiftkey.Entity{Kind: shiftkey.KindGroup, Name: "devs", ID: "AGPA1", Path: "/", ARN: "arn:aws:iam::1:group/devs", CreatedAt: t0}
	if err := s.CreateEntity(ctx, group); err != nil {
		t.Fatal(err)
	}
	if err := s.AttachPolicy(ctx, shiftkey.KindGroup, "devs", mp.ARN); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUserToGroup(ctx, "devs", "Bob"); err != nil {
		t.Fatal(err)
	}
	if gs, _ := s.GroupsForUser(ctx, "bob"); len(gs) != 1 || gs[0].Name != "devs" {
		t.Fatalf("GroupsForUser: %v", gs)
	}
	if ap, _ := s.AttachedPolicies(ctx, shiftkey.KindGroup, "devs"); len(ap) != 1 || ap[0].Document != `{"m":1}` {
		t.Fatalf("AttachedPolicies: %v", ap)
	}
	if n, _ := s.PolicyAttachmentCount(ctx, mp.ARN); n != 1 {
		t.Fatalf("attachment count %d", n)
	}
	if err := s.DetachPolicy(ctx, shiftkey.KindGroup, "devs", mp.ARN); err != nil {
		t.Fatal(err)
	}
	if err := s.DetachPolicy(ctx, shiftkey.KindGroup, "devs", mp.ARN); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("detach twice: %v", err)
	}

	if err := s.TagEntity(ctx, shiftkey.KindUser, "Bob", []shiftkey.Tag{{Key: "team", Value: "data"}, {Key: "RedshiftDbRoles", Value: "a:b"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.TagEntity(ctx, shiftkey.KindUser, "Bob", []shiftkey.Tag{{Key: "TEAM", Value: "ops"}}); err != nil {
		t.Fatal(err)
	}
	tags, _ := s.Tags(ctx, shiftkey.KindUser, "bob")
	if len(tags) != 2 || tags[0].Value != "ops" || tags[1].Key != "RedshiftDbRoles" {
		t.Fatalf("tags: %v", tags)
	}
	if err := s.UntagEntity(ctx, shiftkey.KindUser, "Bob", []string{"team"}); err != nil {
		t.Fatal(err)
	}
	if tags, _ := s.Tags(ctx, shiftkey.KindUser, "bob"); len(tags) != 1 {
		t.Fatalf("after untag: %v", tags)
	}

	sess := &shiftkey.Session{AccessKeyID: "ASIA1", Secret: "sec", Token: "tok", RoleName: "bob", RoleID: "AROABOB", SessionName: "s1",
		SourceARN: u.ARN, SessionPolicy: `{"s":1}`, Tags: []shiftkey.Tag{{Key: "k", Value: "v"}}, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	gotS, err := s.Session(ctx, "ASIA1")
	if err != nil || !gotS.TokenMatches("tok") || gotS.TokenMatches("tok2") || gotS.SessionPolicy != `{"s":1}` || gotS.RoleID != "AROABOB" || len(gotS.Tags) != 1 || !gotS.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("session round trip: %+v %v", gotS, err)
	}
	if n, _ := s.DeleteExpiredSessions(ctx, t0.Add(2*time.Hour)); n != 1 {
		t.Fatalf("expired sessions deleted: %d", n)
	}

	if err := s.DeleteEntity(ctx, shiftkey.KindUser, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AccessKey(ctx, "AKIA1"); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("keys survive user deletion: %v", err)
	}
	if gs, _ := s.GroupsForUser(ctx, "bob"); len(gs) != 0 {
		t.Fatalf("membership survives user deletion: %v", gs)
	}

	rec := &shiftkey.DecisionRecord{RequestID: "r1", At: t0, Principal: u.ARN, Action: "a:b", Resource: "*", Outcome: "implicitDeny", Explanation: "why"}
	if err := s.RecordDecision(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if ds, _ := s.Decisions(ctx, "r1"); len(ds) != 1 || ds[0].Explanation != "why" {
		t.Fatalf("decisions: %v", ds)
	}
}

func testServerless(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	if _, err := s.Namespace(ctx, "ns"); shiftkey.ErrorCode(err) != shiftkey.CodeResourceNotFound {
		t.Fatalf("missing namespace: %v", err)
	}
	ns := &shiftkey.Namespace{Name: "ns", ID: "id-ns", Region: "eu-west-1", DBName: "dev", AdminUsername: "admin", Status: "AVAILABLE", CreatedAt: t0}
	if err := s.CreateNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Namespace(ctx, "ns"); err != nil || got.Region != "eu-west-1" {
		t.Fatalf("namespace round trip: %+v %v", got, err)
	}
	if err := s.CreateNamespace(ctx, ns); shiftkey.ErrorCode(err) != shiftkey.CodeConflict {
		t.Fatalf("duplicate namespace: %v", err)
	}
	w := &shiftkey.Workgroup{Name: "wg", ID: "id-wg", Namespace: "ns", Status: "AVAILABLE", BaseCapacity: 128,
		Endpoint: shiftkey.Endpoint{Address: "127.0.0.1", Port: 5440}, Backend: shiftkey.Backend{Host: "/tmp/s", Port: 5432, AdminUser: "admin", Managed: true, Login: shiftkey.BackendLoginCert}, CreatedAt: t0}
	if err := s.CreateWorkgroup(ctx, w); err != nil {
		t.Fatal(err)
	}
	second := *w
	second.Name, second.ID = "wg2", "id-wg2"
	if err := s.CreateWorkgroup(ctx, &second); shiftkey.ErrorCode(err) != shiftkey.CodeConflict {
		t.Fatalf("second workgroup in one namespace: %v", err)
	}
	if got, err := s.Workgroup(ctx, "wg"); err != nil || got.Region != shiftkey.DefaultRegion {
		t.Fatalf("a workgroup stored without a region: %+v %v", got, err)
	}
	w.Endpoint.Port = 5441
	w.Region = "eu-west-1"
	if err := s.UpdateWorkgroup(ctx, w); err != nil {
		t.Fatal(err)
	}
	got, err := s.Workgroup(ctx, "wg")
	if err != nil || got.Endpoint.Port != 5441 || got.Region != "eu-west-1" || got.Backend.Host != "/tmp/s" || got.Backend.Login != shiftkey.BackendLoginCert || got.CredentialScope() != "workgroup/id-wg" {
		t.Fatalf("workgroup round trip: %+v %v", got, err)
	}
	if all, _ := s.Workgroups(ctx); len(all) != 1 {
		t.Fatalf("workgroups: %d", len(all))
	}
	if err := s.DeleteWorkgroup(ctx, "wg"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteWorkgroup(ctx, "wg"); shiftkey.ErrorCode(err) != shiftkey.CodeResourceNotFound {
		t.Fatalf("delete twice: %v", err)
	}
	if err := s.DeleteNamespace(ctx, "ns"); err != nil {
		t.Fatal(err)
	}
}

// testRevocationByAccessKey: found in a review, revoking what a leaked
// key obtained went by principal ARN, and two callers that assumed one
// role under one session name share the session's ARN, so revoking one
// caller's leak revoked the other's credentials too. A credential now
// records the key that signed its issuing call, a session the key that
// started it, and a filter by key follows the sessions it started,
// chains included, and nothing else.
func testRevocationByAccessKey(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	alice, bob := "arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:user/bob"
	shared := shiftkey.AssumedRoleARN(alice, "etl", "run") // bob's session has this ARN too
	chainedARN := shiftkey.AssumedRoleARN(shared, "audit", "deep")
	for _, sess := range []*shiftkey.Session{
		{AccessKeyID: "ASIAALICE", RoleName: "etl", SessionName: "run", SourceARN: alice, SourceAccessKeyID: "AKIAALICE1"},
		{AccessKeyID: "ASIABOB", RoleName: "etl", SessionName: "run", SourceARN: bob, SourceAccessKeyID: "AKIABOB"},
		{AccessKeyID: "ASIAALICECHAIN", RoleName: "audit", SessionName: "deep", SourceARN: shared, SourceAccessKeyID: "ASIAALICE"},
		{AccessKeyID: "ASIABOBCHAIN", RoleName: "audit", SessionName: "deep", SourceARN: shared, SourceAccessKeyID: "ASIABOB"},
		{AccessKeyID: "ASIAOLD", RoleName: "etl", SessionName: "run", SourceARN: alice}, // from before keys were recorded
	} {
		sess.Secret, sess.Token, sess.CreatedAt, sess.ExpiresAt = "s", "t", t0, t0.Add(time.Hour)
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.Session(ctx, "ASIAALICECHAIN"); err != nil {
		t.Fatal(err)
	} else if got.SourceAccessKeyID != "ASIAALICE" {
		t.Errorf("session round trip: SourceAccessKeyID %q; want ASIAALICE", got.SourceAccessKeyID)
	}
	for _, c := range []struct{ id, scope, login, principal, key string }{
		{"a1", "c", "IAM:alice", alice, "AKIAALICE1"}, {"a2", "c", "IAM:alice", alice, "AKIAALICE2"},
		{"b1", "c", "IAM:bob", bob, "AKIABOB"},
		{"s1", "workgroup/w1", "IAMR:etl", shared, "ASIAALICE"}, {"s2", "workgroup/w1", "IAMR:etl", shared, "ASIABOB"},
		{"c1", "c", "IAMR:audit", chainedARN, "ASIAALICECHAIN"}, {"c2", "c", "IAMR:audit", chainedARN, "ASIABOBCHAIN"},
		{"o1", "c", "IAM:alice", alice, ""}, {"o2", "workgroup/w1", "IAMR:etl", shared, ""},
	} {
		if _, err := s.LoginSalt(ctx, c.scope, c.login, "", shiftkey.LoginSalt{Salt: []byte("salt-one-16bytes"), Iterations: 4096}); err != nil {
			t.Fatal(err)
		}
		cred := credential(c.id, c.scope, c.login, t0.Add(time.Hour))
		cred.PrincipalARN, cred.AccessKeyID = c.principal, c.key
		if err := s.CreateCredential(ctx, cred); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(cs []*shiftkey.Credential) string {
		out := []string{}
		for _, c := range cs {
			out = append(out, c.ID+"/"+c.AccessKeyID)
		}
		sort.Strings(out)
		return fmt.Sprint(out)
	}
	for _, tt := range []struct {
		f    shiftkey.CredentialFilter
		want string
	}{
		{shiftkey.CredentialFilter{AccessKeyID: "AKIAALICE1"}, "[a1/AKIAALICE1 c1/ASIAALICECHAIN s1/ASIAALICE]"},
		{shiftkey.CredentialFilter{AccessKeyID: "AKIAALICE2"}, "[a2/AKIAALICE2]"},
		{shiftkey.CredentialFilter{AccessKeyID: "ASIABOB"}, "[c2/ASIABOBCHAIN s2/ASIABOB]"},
		{shiftkey.CredentialFilter{AccessKeyID: "AKIABOB", Scope: "c"}, "[b1/AKIABOB c2/ASIABOBCHAIN]"},
		{shiftkey.CredentialFilter{AccessKeyID: "AKIAALICE1", PrincipalARN: shared}, "[s1/ASIAALICE]"},
		{shiftkey.CredentialFilter{AccessKeyID: "AKIANEVER"}, "[]"},
		{shiftkey.CredentialFilter{LoginName: "IAM:alice"}, "[a1/AKIAALICE1 a2/AKIAALICE2 o1/]"},
	} {
		got, err := s.ListCredentials(ctx, tt.f, t0)
		if err != nil || ids(got) != tt.want {
			t.Errorf("ListCredentials(%+v) = %s, %v; want %s", tt.f, ids(got), err, tt.want)
		}
	}
	got, err := s.RevokeCredentials(ctx, shiftkey.CredentialFilter{AccessKeyID: "AKIAALICE1"}, t0.Add(time.Minute), false)
	if want := "[a1/AKIAALICE1 c1/ASIAALICECHAIN s1/ASIAALICE]"; err != nil || ids(got) != want {
		t.Fatalf("revoke --access-key AKIAALICE1 = %s, %v; want %s", ids(got), err, want)
	}
	if left, _ := s.ListCredentials(ctx, shiftkey.CredentialFilter{}, t0); ids(left) != "[a2/AKIAALICE2 b1/AKIABOB c2/ASIABOBCHAIN o1/ o2/ s2/ASIABOB]" {
		t.Fatalf("left after revoking AKIAALICE1's: %s; bob's session credentials (same ARN) must stay", ids(left))
	}
}

// testEndSessions: the STS sessions a key started, chains included, are
// listed and ended by key (a leaked key's AssumeRole results); an ended
// session is gone for authentication, even one read (and cached) before,
// and a walk by key or principal still follows it to what it issued and
// to a session it started as it was being ended.
func testEndSessions(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	alice, bob := "arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:user/bob"
	shared := shiftkey.AssumedRoleARN(alice, "etl", "run") // bob's session has this ARN too
	chainedARN := shiftkey.AssumedRoleARN(shared, "audit", "deep")
	deepARN := shiftkey.AssumedRoleARN(chainedARN, "etl", "deeper")
	newSession := func(key, role, name, source, sourceKey string, expires time.Time) {
		t.Helper()
		if err := s.CreateSession(ctx, &shiftkey.Session{AccessKeyID: key, Secret: "secret-" + key, Token: "token-" + key, RoleName: role, RoleID: "AROA" + role,
			SessionName: name, SourceARN: source, SourceAccessKeyID: sourceKey, CreatedAt: t0.Add(-time.Minute), ExpiresAt: expires}); err != nil {
			t.Fatal(err)
		}
	}
	newSession("ASIAALICE", "etl", "run", alice, "AKIAALICE1", t0.Add(time.Hour))
	newSession("ASIAALICECHAIN", "audit", "deep", shared, "ASIAALICE", t0.Add(time.Hour))
	newSession("ASIADEEP", "etl", "deeper", chainedARN, "ASIAALICECHAIN", t0.Add(time.Hour))
	newSession("ASIAEXPIRED", "etl", "run", alice, "AKIAALICE1", t0)
	newSession("ASIABOB", "etl", "run", bob, "AKIABOB", t0.Add(time.Hour))
	for _, c := range []struct{ id, login, principal, key string }{
		{"s1", "IAMR:etl", shared, "ASIAALICE"}, {"d1", "IAMR:etl", deepARN, "ASIADEEP"}, {"b1", "IAMR:etl", shared, "ASIABOB"},
	} {
		if _, err := s.LoginSalt(ctx, "c", c.login, "", shiftkey.LoginSalt{Salt: []byte("salt-one-16bytes"), Iterations: 4096}); err != nil {
			t.Fatal(err)
		}
		cred := credential(c.id, "c", c.login, t0.Add(time.Hour))
		cred.PrincipalARN, cred.AccessKeyID = c.principal, c.key
		if err := s.CreateCredential(ctx, cred); err != nil {
			t.Fatal(err)
		}
	}
	keys := func(ss []*shiftkey.Session) string {
		out := []string{}
		for _, x := range ss {
			out = append(out, x.AccessKeyID)
		}
		sort.Strings(out)
		return fmt.Sprint(out)
	}
	credIDs := func(f shiftkey.CredentialFilter) string {
		t.Helper()
		cs, err := s.ListCredentials(ctx, f, t0)
		if err != nil {
			t.Fatal(err)
		}
		out := []string{}
		for _, c := range cs {
			out = append(out, c.ID)
		}
		sort.Strings(out)
		return fmt.Sprint(out)
	}
	for _, tt := range []struct{ key, want string }{
		{"AKIAALICE1", "[ASIAALICE ASIAALICECHAIN ASIADEEP]"}, // not the expired one
		{"ASIAALICECHAIN", "[ASIAALICECHAIN ASIADEEP]"},
		{"AKIABOB", "[ASIABOB]"},
		{"AKIANEVER", "[]"},
	} {
		got, err := s.SessionsStartedWith(ctx, tt.key, t0)
		if err != nil || keys(got) != tt.want {
			t.Errorf("SessionsStartedWith(%s) = %s, %v; want %s", tt.key, keys(got), err, tt.want)
		}
		for _, x := range got {
			if x.Secret != "" || x.TokenHash != nil {
				t.Errorf("SessionsStartedWith returned the secret or token hash of %s", x.AccessKeyID)
			}
		}
	}
	if got, _ := s.SessionsStartedWith(ctx, "ASIADEEP", t0); len(got) != 1 || got[0].SourceAccessKeyID != "ASIAALICECHAIN" || got[0].SourceARN != chainedARN ||
		got[0].RoleName != "etl" || got[0].SessionName != "deeper" || !got[0].ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("SessionsStartedWith(ASIADEEP) = %+v", got)
	}
	// Read before the end, so that a cache holds them.
	for _, k := range []string{"ASIAALICE", "ASIAALICECHAIN", "ASIADEEP", "ASIABOB"} {
		if _, err := s.Session(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	gone := func(k string) bool {
		_, err := s.Session(ctx, k)
		return shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity
	}
	// A leaked session key ends that session and the ones it started.
	got, err := s.EndSessions(ctx, "ASIAALICECHAIN", t0)
	if err != nil || keys(got) != "[ASIAALICECHAIN ASIADEEP]" {
		t.Fatalf("EndSessions(ASIAALICECHAIN) = %s, %v", keys(got), err)
	}
	if !gone("ASIAALICECHAIN") || !gone("ASIADEEP") || gone("ASIAALICE") {
		t.Fatal("after EndSessions(ASIAALICECHAIN): want it and ASIADEEP gone, ASIAALICE there")
	}
	got, err = s.EndSessions(ctx, "AKIAALICE1", t0.Add(time.Minute))
	if err != nil || keys(got) != "[ASIAALICE ASIAEXPIRED]" {
		t.Fatalf("EndSessions(AKIAALICE1) = %s, %v; want [ASIAALICE ASIAEXPIRED] (expired or not, not the ended ones again)", keys(got), err)
	}
	if !gone("ASIAALICE") || gone("ASIABOB") {
		t.Fatal("after EndSessions(AKIAALICE1): want ASIAALICE gone, bob's session of the same ARN there")
	}
	if got, err := s.SessionsStartedWith(ctx, "AKIAALICE1", t0); err != nil || len(got) != 0 {
		t.Fatalf("SessionsStartedWith after the end = %s, %v", keys(got), err)
	}
	if got, err := s.EndSessions(ctx, "AKIAALICE1", t0.Add(time.Minute)); err != nil || len(got) != 0 {
		t.Fatalf("EndSessions twice = %s, %v; want none", keys(got), err)
	}
	// The walks by key and by principal still follow the ended sessions.
	if got := credIDs(shiftkey.CredentialFilter{AccessKeyID: "AKIAALICE1"}); got != "[d1 s1]" {
		t.Errorf("credentials of AKIAALICE1 after its sessions ended: %s, want [d1 s1]", got)
	}
	if got := credIDs(shiftkey.CredentialFilter{PrincipalARN: alice, SessionsOf: true}); got != "[b1 d1 s1]" {
		t.Errorf("credentials of alice and her sessions after they ended: %s, want [b1 d1 s1] (bob's shares the ARN)", got)
	}
	// A session an ended one started as it was being ended is ended by
	// the next EndSessions of the key.
	newSession("ASIALATE", "audit", "late", shared, "ASIAALICE", t0.Add(time.Hour))
	if got, err := s.EndSessions(ctx, "AKIAALICE1", t0.Add(2*time.Minute)); err != nil || keys(got) != "[ASIALATE]" {
		t.Fatalf("EndSessions after a late AssumeRole = %s, %v; want [ASIALATE]", keys(got), err)
	}
	// The records of ended sessions go when they would have expired.
	if _, err := s.DeleteExpiredSessions(ctx, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := credIDs(shiftkey.CredentialFilter{AccessKeyID: "AKIAALICE1"}); got != "[]" {
		t.Errorf("credentials of AKIAALICE1 after its ended sessions expired: %s, want [] (the records are swept)", got)
	}
}

// testTerminateRevoked: found in a review, `credentials revoke
// --terminate` run after a revoke without it matched nothing, and the
// revoked credentials' sessions could not be ended. TerminateRevoked marks
// terminate the revocations the filter matches (by scope, login, id,
// principal with the sessions it started, a role's sessions, the issuing
// key and those of its sessions), those made without it only, and keeps
// the issuing key with each revocation.
func testTerminateRevoked(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	alice, bob := "arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:user/bob"
	viaRole := shiftkey.AssumedRoleARN(alice, "etl", "run")
	if err := s.CreateSession(ctx, &shiftkey.Session{AccessKeyID: "ASIATERM", Secret: "s", Token: "t", RoleName: "etl", SessionName: "run",
		SourceARN: alice, SourceAccessKeyID: "AKIAALICE", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ id, scope, login, principal, key string }{
		{"a1", "c", "IAM:alice", alice, "AKIAALICE"}, {"a2", "d", "IAM:alice", alice, "AKIAALICE"}, {"b1", "c", "IAM:bob", bob, "AKIABOB"},
		{"r1", "workgroup/w1", "IAMR:etl", viaRole, "ASIATERM"}, {"o1", "c", "IAM:bob", bob, ""}, {"t1", "c", "IAM:bob", bob, "AKIABOB"},
		{"x1", "c", "IAM:alice", alice, "AKIAALICE"},
	} {
		if _, err := s.LoginSalt(ctx, c.scope, c.login, "", shiftkey.LoginSalt{Salt: []byte("salt-one-16bytes"), Iterations: 4096}); err != nil {
			t.Fatal(err)
		}
		cred := credential(c.id, c.scope, c.login, t0.Add(time.Hour))
		cred.PrincipalARN, cred.AccessKeyID = c.principal, c.key
		if c.id == "x1" { // expired, not yet swept: its sessions may still be open
			cred.CreatedAt, cred.ExpiresAt = t0.Add(-2*time.Hour), t0.Add(-time.Hour)
		}
		if err := s.CreateCredential(ctx, cred); err != nil {
			t.Fatal(err)
		}
	}
	// Revoked without terminate, t1 with it.
	if _, err := s.RevokeCredentials(ctx, shiftkey.CredentialFilter{ID: "t1"}, t0, true); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a1", "a2", "b1", "r1", "o1", "x1"} {
		if _, err := s.RevokeCredentials(ctx, shiftkey.CredentialFilter{ID: id}, t0.Add(time.Minute), false); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(rs []shiftkey.Revocation) string {
		out := []string{}
		for _, r := range rs {
			out = append(out, r.ID)
		}
		sort.Strings(out)
		return fmt.Sprint(out)
	}
	if _, err := s.TerminateRevoked(ctx, shiftkey.CredentialFilter{SessionsOf: true}); shiftkey.ErrorCode(err) != shiftkey.CodeInvalidParameterValue {
		t.Fatalf("terminating every revocation: %v, want InvalidParameterValue", err)
	}
	for _, tt := range []struct {
		f    shiftkey.CredentialFilter
		want string
	}{
		{shiftkey.CredentialFilter{ID: "nope"}, "[]"},
		{shiftkey.CredentialFilter{Scope: "d", LoginName: "IAM:alice"}, "[a2]"},
		{shiftkey.CredentialFilter{PrincipalARN: "arn:aws:iam::123456789012:role/etl"}, "[r1]"},
		{shiftkey.CredentialFilter{AccessKeyID: "AKIAALICE", Scope: "c"}, "[a1 x1]"}, // the expired one too
		{shiftkey.CredentialFilter{ID: "a1"}, "[]"},                                  // already marked
		{shiftkey.CredentialFilter{AccessKeyID: "AKIABOB"}, "[b1]"},                  // t1 was revoked with terminate
		{shiftkey.CredentialFilter{PrincipalARN: bob}, "[o1]"},                       // no recorded key: selected otherwise
	} {
		got, err := s.TerminateRevoked(ctx, tt.f)
		if err != nil || ids(got) != tt.want {
			t.Errorf("TerminateRevoked(%+v) = %s, %v; want %s", tt.f, ids(got), err, tt.want)
		}
		for _, r := range got {
			if !r.Terminate || !r.RevokedAt.Equal(t0.Add(time.Minute)) {
				t.Errorf("TerminateRevoked returned %+v: want it terminate, revoked when it was", r)
			}
		}
	}
	recs, err := s.Revocations(ctx, []string{"a1", "a2", "b1", "o1", "r1", "t1", "x1"})
	if err != nil || len(recs) != 7 {
		t.Fatalf("Revocations = %+v, %v", recs, err)
	}
	for _, r := range recs {
		if !r.Terminate {
			t.Errorf("revocation of %s not terminate after TerminateRevoked", r.ID)
		}
		if want, ok := map[string]string{"a1": "AKIAALICE", "r1": "ASIATERM", "o1": ""}[r.ID]; ok && r.AccessKeyID != want {
			t.Errorf("revocation of %s: access key %q, want %q", r.ID, r.AccessKeyID, want)
		}
	}
	if left, _ := s.ListCredentials(ctx, shiftkey.CredentialFilter{}, t0.Add(-3*time.Hour)); len(left) != 0 {
		t.Errorf("credentials left: %d", len(left))
	}
}

// testRevocation: credentials listed and revoked by scope, login,
// principal (with the sessions it started) and id; a revoked credential is
// gone from the next LiveCredentials, and its revocation is recorded.
func testRevocation(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	alice, bob := "arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:user/bob"
	sess := &shiftkey.Session{AccessKeyID: "ASIAREVOKE", Secret: "s", Token: "t", RoleName: "etl", SessionName: "run1", SourceARN: alice,
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	viaRole := shiftkey.AssumedRoleARN(alice, "etl", "run1")
	if viaRole != "arn:aws:sts::123456789012:assumed-role/etl/run1" {
		t.Fatalf("AssumedRoleARN = %s", viaRole)
	}
	// Role chaining: the etl session assumed another role; a leaked key
	// of alice's reaches that session's credentials too.
	chained := &shiftkey.Session{AccessKeyID: "ASIACHAINED", Secret: "s", Token: "t", RoleName: "audit", SessionName: "run2", SourceARN: viaRole,
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := s.CreateSession(ctx, chained); err != nil {
		t.Fatal(err)
	}
	viaChain := shiftkey.AssumedRoleARN(viaRole, "audit", "run2")
	for _, c := range []struct{ id, scope, login, principal string }{
		{"a1", "c", "IAM:alice", alice}, {"a2", "d", "IAM:alice", alice}, {"b1", "c", "IAM:bob", bob},
		{"r1", "workgroup/w1", "IAMR:etl", viaRole}, {"r2", "workgroup/w1", "IAMR:audit", viaChain}, {"m1", "c", "awsuser", "master"},
	} {
		if _, err := s.LoginSalt(ctx, c.scope, c.login, "", shiftkey.LoginSalt{Salt: []byte("salt-one-16bytes"), Iterations: 4096}); err != nil {
			t.Fatal(err)
		}
		cred := credential(c.id, c.scope, c.login, t0.Add(time.Hour))
		cred.PrincipalARN = cred.PrincipalARN + c.principal
		if c.id == "a1" {
			cred.DigestSHA256, cred.DigestMD5 = []byte("sha256-a1"), []byte("md5-a1")
			cred.IssuedTo = issuedToSession // kept as given, whatever the ARN
		}
		if err := s.CreateCredential(ctx, cred); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateCredential(ctx, &shiftkey.Credential{ID: "a0", Cluster: "c", LoginName: "IAM:alice", PrincipalARN: alice, StoredKey: []byte{1}, ServerKey: []byte{2},
		CreatedAt: t0.Add(-2 * time.Hour), ExpiresAt: t0.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	ids := func(cs []*shiftkey.Credential) string {
		out := []string{}
		for _, c := range cs {
			out = append(out, c.ID)
		}
		sort.Strings(out)
		return fmt.Sprint(out)
	}
	for _, tt := range []struct {
		f    shiftkey.CredentialFilter
		want string
	}{
		{shiftkey.CredentialFilter{Scope: "c"}, "[a1 b1 m1]"},
		{shiftkey.CredentialFilter{LoginName: "IAM:alice"}, "[a1 a2]"}, // a0 expired
		{shiftkey.CredentialFilter{PrincipalARN: alice}, "[a1 a2]"},
		{shiftkey.CredentialFilter{PrincipalARN: alice, SessionsOf: true}, "[a1 a2 r1 r2]"},
		{shiftkey.CredentialFilter{PrincipalARN: viaRole, SessionsOf: true}, "[r1 r2]"},
		// A role's ARN, with its path or without, stands for its
		// sessions; a name another starts with, or one with a LIKE
		// wildcard, selects nothing.
		{shiftkey.CredentialFilter{PrincipalARN: "arn:aws:iam::123456789012:role/etl"}, "[r1]"},
		// With the sessions it started, a role's ARN reaches what its
		// sessions started in turn (the audit session run1 of etl began).
		{shiftkey.CredentialFilter{PrincipalARN: "arn:aws:iam::123456789012:role/etl", SessionsOf: true}, "[r1 r2]"},
		{shiftkey.CredentialFilter{PrincipalARN: "arn:aws:iam::123456789012:role/ops/etl", SessionsOf: true}, "[r1 r2]"},
		{shiftkey.CredentialFilter{PrincipalARN: "arn:aws:iam::123456789012:role/et", SessionsOf: true}, "[]"},
		{shiftkey.CredentialFilter{PrincipalARN: "arn:aws:iam::123456789012:role/ops/etl", Scope: "workgroup/w1"}, "[r1]"},
		{shiftkey.CredentialFilter{PrincipalARN: "arn:aws:iam::123456789012:role/et"}, "[]"},
		{shiftkey.CredentialFilter{PrincipalARN: "arn:aws:iam::123456789012:role/e_l"}, "[]"},
		{shiftkey.CredentialFilter{PrincipalARN: alice, Scope: "d"}, "[a2]"},
		{shiftkey.CredentialFilter{ID: "b1"}, "[b1]"},
		{shiftkey.CredentialFilter{Scope: "workgroup/w1"}, "[r1 r2]"},
		{shiftkey.CredentialFilter{}, "[a1 a2 b1 m1 r1 r2]"},
	} {
		got, err := s.ListCredentials(ctx, tt.f, t0)
		if err != nil || ids(got) != tt.want {
			t.Errorf("ListCredentials(%+v) = %s, %v; want %s", tt.f, ids(got), err, tt.want)
		}
		for _, c := range got {
			if len(c.StoredKey)+len(c.ServerKey) > 0 {
				t.Errorf("ListCredentials returned the keys of %s", c.ID)
			}
		}
	}
	if _, err := s.RevokeCredentials(ctx, shiftkey.CredentialFilter{SessionsOf: true}, t0, true); shiftkey.ErrorCode(err) != shiftkey.CodeInvalidParameterValue {
		t.Fatalf("revoking everything: %v, want InvalidParameterValue", err)
	}
	// A read before the revoke must not be served after it.
	if got, _ := liveIDs(t, s, "c", "IAM:alice", t0); fmt.Sprint(got) != "[a1]" {
		t.Fatalf("before revoke: %v", got)
	}
	got, err := s.RevokeCredentials(ctx, shiftkey.CredentialFilter{PrincipalARN: alice, SessionsOf: true}, t0.Add(time.Minute), true)
	if err != nil || ids(got) != "[a0 a1 a2 r1 r2]" {
		t.Fatalf("revoke all for alice = %s, %v; want [a0 a1 a2 r1 r2] (expired ones too, and the chained session's)", ids(got), err)
	}
	for _, l := range []struct{ scope, login string }{{"c", "IAM:alice"}, {"d", "IAM:alice"}, {"workgroup/w1", "IAMR:etl"}, {"workgroup/w1", "IAMR:audit"}} {
		if got, ok := liveIDs(t, s, l.scope, l.login, t0); len(got) != 0 || !ok {
			t.Errorf("after revoke, %s/%s logs in with %v (known %v)", l.scope, l.login, got, ok)
		}
	}
	if got, _ := liveIDs(t, s, "c", "IAM:bob", t0); fmt.Sprint(got) != "[b1]" {
		t.Fatalf("bob's credential went with alice's: %v", got)
	}
	if _, err := s.RevokeCredentials(ctx, shiftkey.CredentialFilter{ID: "b1"}, t0.Add(2*time.Minute), false); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Revocations(ctx, []string{"a1", "b1", "m1", "nope"})
	if err != nil || len(recs) != 2 {
		t.Fatalf("Revocations = %+v, %v; want a1 and b1", recs, err)
	}
	if r := recs[0]; r.ID != "a1" || !r.Terminate || r.Scope != "c" || r.LoginName != "IAM:alice" || r.PrincipalARN != alice || !r.RevokedAt.Equal(t0.Add(time.Minute)) || !r.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("revocation of a1: %+v", r)
	}
	if r := recs[1]; r.ID != "b1" || r.Terminate {
		t.Fatalf("revocation of b1: %+v", r)
	}
	if got, _ := s.ListCredentials(ctx, shiftkey.CredentialFilter{}, t0); ids(got) != "[m1]" {
		t.Fatalf("left: %s", ids(got))
	}
	// A revoked credential's keys stay with its revocation until it would
	// have expired, so a gateway can tell a login with it (RevokedKeys).
	if rk, ok := s.(shiftkey.RevokedKeys); ok {
		revoked, err := rk.RevokedCredentials(ctx, "c", "IAM:alice", t0.Add(2*time.Minute))
		want := credential("a1", "c", "IAM:alice", t0.Add(time.Hour))
		if err != nil || len(revoked) != 1 {
			t.Fatalf("RevokedCredentials(c, IAM:alice) = %v, %v; want a1 (a0 had expired)", revoked, err)
		}
		if r := revoked[0]; r.ID != "a1" || r.Cluster != "c" || r.LoginName != "IAM:alice" || r.PrincipalARN != want.PrincipalARN+alice || r.DBUser != want.DBUser ||
			!r.ExpiresAt.Equal(want.ExpiresAt) || !bytes.Equal(r.StoredKey, want.StoredKey) || !bytes.Equal(r.ServerKey, want.ServerKey) ||
			string(r.DigestSHA256) != "sha256-a1" || string(r.DigestMD5) != "md5-a1" ||
			// The refused login's record names the principal as the issue saw it.
			!sameIssuedTo(r.IssuedTo, issuedToSession) {
			t.Fatalf("revoked a1 = %+v, want its principal (as issued to), role, expiry, keys and Redshift verifiers", r)
		}
		if revoked, err := rk.RevokedCredentials(ctx, "c", "IAM:bob", t0.Add(2*time.Minute)); err != nil || len(revoked) != 1 ||
			revoked[0].DigestSHA256 != nil || revoked[0].DigestMD5 != nil || revoked[0].IssuedTo != (shiftkey.IssuedTo{}) {
			t.Fatalf("RevokedCredentials(c, IAM:bob) = %+v, %v; want b1 without verifiers", revoked, err)
		}
		if revoked, _ := rk.RevokedCredentials(ctx, "c", "IAM:alice", t0.Add(time.Hour)); len(revoked) != 0 {
			t.Fatalf("a revoked credential past its expiry: %v", revoked)
		}
		if revoked, _ := rk.RevokedCredentials(ctx, "c", "awsuser", t0); len(revoked) != 0 {
			t.Fatalf("a live credential read as revoked: %v", revoked)
		}
		// A name with many revoked credentials: the last revoked are read,
		// RevokedLookupLimit of them.
		if _, err := s.LoginSalt(ctx, "c", "IAM:many", "", shiftkey.LoginSalt{Salt: []byte("salt-one-16bytes"), Iterations: 4096}); err != nil {
			t.Fatal(err)
		}
		n := shiftkey.RevokedLookupLimit
		for i := range 2 * n {
			if err := s.CreateCredential(ctx, credential(fmt.Sprintf("many%03d", i), "c", "IAM:many", t0.Add(time.Hour))); err != nil {
				t.Fatal(err)
			}
			if i == n-1 { // the first half revoked a minute before the rest
				if _, err := s.RevokeCredentials(ctx, shiftkey.CredentialFilter{LoginName: "IAM:many"}, t0.Add(time.Minute), false); err != nil {
					t.Fatal(err)
				}
			}
		}
		if _, err := s.RevokeCredentials(ctx, shiftkey.CredentialFilter{LoginName: "IAM:many"}, t0.Add(2*time.Minute), false); err != nil {
			t.Fatal(err)
		}
		revoked, err = rk.RevokedCredentials(ctx, "c", "IAM:many", t0.Add(3*time.Minute))
		if err != nil || len(revoked) != n {
			t.Fatalf("RevokedCredentials of a name with %d revoked: %d, %v; want %d", 2*n, len(revoked), err, n)
		}
		for _, r := range revoked {
			if r.ID < fmt.Sprintf("many%03d", n) {
				t.Fatalf("read %s, revoked before the last %d", r.ID, n)
			}
		}
	}
	// Records go with the expired credentials they outlive.
	if _, err := s.DeleteExpiredCredentials(ctx, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if recs, _ := s.Revocations(ctx, []string{"a1", "b1"}); len(recs) != 0 {
		t.Fatalf("revocations outlived their credentials' expiry: %+v", recs)
	}
}

// A Declaring run applies its writes together or not at all (a config
// applied at start or reload): in it, a write that fails (a duplicate)
// fails only itself and the run's reads see its writes; a run that fails
// leaves nothing of itself, one that succeeds all of it.
func testDeclaringAllOrNothing(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	ds, ok := s.(shiftkey.DeclaredStore)
	if !ok {
		t.Skip("not a DeclaredStore")
	}
	if err := s.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "old", ID: "AIDADECLARED00000000", Path: "/", ARN: "arn:aws:iam::1:user/old", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccessKey(ctx, &shiftkey.AccessKey{ID: "AKIADECLAREDOLD00000", Secret: "s", UserName: "old", Status: "Active", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	failed := errors.New("the run's own failure")
	apply := func(ctx context.Context) error {
		u := &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "new", ID: "AIDADECLARED00000001", Path: "/", ARN: "arn:aws:iam::1:user/new", CreatedAt: t0}
		if err := s.CreateEntity(ctx, u); err != nil {
			return err
		}
		dup := *u
		dup.ID = "AIDADECLARED00000002"
		if err := s.CreateEntity(ctx, &dup); shiftkey.ErrorCode(err) != shiftkey.CodeEntityAlreadyExists {
			return fmt.Errorf("a duplicate in the run: %v, want EntityAlreadyExists", err)
		}
		if err := s.CreateAccessKey(ctx, &shiftkey.AccessKey{ID: "AKIADECLAREDNEW00000", Secret: "s", UserName: "new", Status: "Active", CreatedAt: t0}); err != nil {
			return err
		}
		if err := s.PutInlinePolicy(ctx, shiftkey.KindUser, "new", shiftkey.PolicyDocument{Name: "p", Document: `{"a":1}`}); err != nil {
			return err
		}
		if err := s.UpdateAccessKey(ctx, "AKIADECLAREDOLD00000", "Inactive"); err != nil {
			return err
		}
		if k, err := s.AccessKey(ctx, "AKIADECLAREDOLD00000"); err != nil || k.Status != "Inactive" {
			return fmt.Errorf("the run does not read its own write: %v", err)
		}
		return nil
	}
	err := ds.Declaring(ctx, func(ctx context.Context) error {
		if err := apply(ctx); err != nil {
			return err
		}
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatalf("the failing run: %v", err)
	}
	if _, err := s.Entity(ctx, shiftkey.KindUser, "new"); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Errorf("user new after the failed run: %v, want NoSuchEntity", err)
	}
	if _, err := s.AccessKey(ctx, "AKIADECLAREDNEW00000"); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Errorf("new's key after the failed run: %v, want NoSuchEntity", err)
	}
	if k, err := s.AccessKey(ctx, "AKIADECLAREDOLD00000"); err != nil || k.Status != "Active" {
		t.Errorf("old's key after the failed run: status %v, %v; want Active", k != nil && k.Status == "Active", err)
	}
	if err := ds.Declaring(ctx, apply); err != nil {
		t.Fatalf("the run that succeeds: %v", err)
	}
	if _, err := s.Entity(ctx, shiftkey.KindUser, "new"); err != nil {
		t.Errorf("user new after the run: %v", err)
	}
	if p, err := s.InlinePolicies(ctx, shiftkey.KindUser, "new"); err != nil || len(p) != 1 {
		t.Errorf("new's policies after the run: %d, %v", len(p), err)
	}
	if k, err := s.AccessKey(ctx, "AKIADECLAREDOLD00000"); err != nil || k.Status != "Inactive" {
		t.Errorf("old's key after the run: %v, want Inactive", err)
	}
}

// racedPolicyAndGroup makes the managed policy "admin" and the group "crew"
// that the racing-writes tests attach and join while they rename or
// delete a user.
func racedPolicyAndGroup(t *testing.T, s shiftkey.Store) *shiftkey.ManagedPolicy {
	t.Helper()
	ctx := context.Background()
	pol := &shiftkey.ManagedPolicy{ARN: "arn:aws:iam::1:policy/admin", Name: "admin", ID: "ANPAADMIN", Path: "/", Document: `{"x":1}`, CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateManagedPolicy(ctx, pol); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindGroup, Name: "crew", ID: "AGPACREW", Path: "/", ARN: "arn:aws:iam::1:group/crew", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	return pol
}
