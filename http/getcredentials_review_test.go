package http_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	rss "github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/shiftkey/shiftkey"
)

// TestGetCredentialsInputConstraints sends each documented GetCredentials
// constraint violation through the real SDK and checks AWS's answer:
// ValidationException, HTTP 400 (aws-contract.md §3.3, §4.1).
func TestGetCredentialsInputConstraints(t *testing.T) {
	f := newFixture(t)
	f.workgroup(t)
	ctx := context.Background()
	sc := f.serverlessClient(f.keys["admin"])
	_, err := sc.CreateCustomDomainAssociation(ctx, &rss.CreateCustomDomainAssociationInput{WorkgroupName: aws.String("edge-wg"),
		CustomDomainName: aws.String("lake.example.com"), CustomDomainCertificateArn: aws.String(certA)})
	mustOK(t, "CreateCustomDomainAssociation", err)
	for _, tc := range []struct {
		name string
		in   rss.GetCredentialsInput
	}{
		{"neither workgroup nor domain", rss.GetCredentialsInput{}},
		{"workgroupName too short", rss.GetCredentialsInput{WorkgroupName: aws.String("ab")}},
		{"workgroupName too long", rss.GetCredentialsInput{WorkgroupName: aws.String(strings.Repeat("a", 65))}},
		{"workgroupName upper case", rss.GetCredentialsInput{WorkgroupName: aws.String("Edge-WG")}},
		{"workgroupName underscore", rss.GetCredentialsInput{WorkgroupName: aws.String("edge_wg")}},
		{"workgroupName empty", rss.GetCredentialsInput{WorkgroupName: aws.String("")}},
		{"durationSeconds 899", rss.GetCredentialsInput{WorkgroupName: aws.String("edge-wg"), DurationSeconds: aws.Int32(899)}},
		{"durationSeconds 3601", rss.GetCredentialsInput{WorkgroupName: aws.String("edge-wg"), DurationSeconds: aws.Int32(3601)}},
		{"durationSeconds 0", rss.GetCredentialsInput{WorkgroupName: aws.String("edge-wg"), DurationSeconds: aws.Int32(0)}},
		{"dbName empty", rss.GetCredentialsInput{WorkgroupName: aws.String("edge-wg"), DbName: aws.String("")}},
		{"dbName digit first", rss.GetCredentialsInput{WorkgroupName: aws.String("edge-wg"), DbName: aws.String("1dev")}},
		{"dbName colon", rss.GetCredentialsInput{WorkgroupName: aws.String("edge-wg"), DbName: aws.String("de:v")}},
		{"dbName slash", rss.GetCredentialsInput{WorkgroupName: aws.String("edge-wg"), DbName: aws.String("de/v")}},
		{"dbName 65", rss.GetCredentialsInput{WorkgroupName: aws.String("edge-wg"), DbName: aws.String(strings.Repeat("d", 65))}},
		{"dbName reserved", rss.GetCredentialsInput{WorkgroupName: aws.String("edge-wg"), DbName: aws.String("select")}},
		{"customDomainName empty", rss.GetCredentialsInput{CustomDomainName: aws.String("")}},
		{"customDomainName trailing dot", rss.GetCredentialsInput{CustomDomainName: aws.String("lake.example.com.")}},
		{"customDomainName 254", rss.GetCredentialsInput{CustomDomainName: aws.String(strings.Repeat("a.", 126) + "aa")}},
		{"customDomainName hyphen label", rss.GetCredentialsInput{CustomDomainName: aws.String("-lake.example.com")}},
		{"customDomainName underscore", rss.GetCredentialsInput{CustomDomainName: aws.String("la_ke.example.com")}},
		{"both, disagreeing", rss.GetCredentialsInput{WorkgroupName: aws.String("other-wg"), CustomDomainName: aws.String("lake.example.com")}},
	} {
		_, err := sc.GetCredentials(ctx, &tc.in)
		if apiCode(err) != "ValidationException" || httpStatus(err) != 400 {
			t.Errorf("%s: got %v (status %d), want ValidationException 400", tc.name, err, httpStatus(err))
		}
	}
	// The accepted forms: default 900 s, the bounds, both names agreeing,
	// the domain in another case.
	for _, tc := range []struct {
		name string
		in   rss.GetCredentialsInput
		want time.Duration
	}{
		{"default", rss.GetCredentialsInput{WorkgroupName: aws.String("edge-wg")}, 900 * time.Second},
		{"900", rss.GetCredentialsInput{WorkgroupName: aws.String("edge-wg"), DurationSeconds: aws.Int32(900)}, 900 * time.Second},
		{"3600", rss.GetCredentialsInput{WorkgroupName: aws.String("edge-wg"), DurationSeconds: aws.Int32(3600)}, 3600 * time.Second},
		{"both agreeing", rss.GetCredentialsInput{WorkgroupName: aws.String("edge-wg"), CustomDomainName: aws.String("lake.example.com")}, 900 * time.Second},
		{"domain upper case", rss.GetCredentialsInput{CustomDomainName: aws.String("LAKE.Example.COM")}, 900 * time.Second},
	} {
		before := time.Now()
		out, err := sc.GetCredentials(ctx, &tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := aws.ToTime(out.Expiration).Sub(before); got < tc.want-time.Second || got > tc.want+5*time.Second {
			t.Errorf("%s: expires in %v, want %v", tc.name, got, tc.want)
		}
		if aws.ToString(out.DbUser) != "IAM:admin" {
			t.Errorf("%s: dbUser %q, want IAM:admin", tc.name, aws.ToString(out.DbUser))
		}
	}
	_, err = sc.GetCredentials(ctx, &rss.GetCredentialsInput{WorkgroupName: aws.String("nope-wg")})
	wantAPIError(t, err, "ResourceNotFoundException")
	_, err = sc.GetCredentials(ctx, &rss.GetCredentialsInput{CustomDomainName: aws.String("nope.example.com")})
	wantAPIError(t, err, "ResourceNotFoundException")
}

// secondWorkgroup adds another workgroup and returns the ids of edge-wg
// and of it.
func (f *fixture) secondWorkgroup(t *testing.T, name string) (edge, other string) {
	t.Helper()
	ctx := context.Background()
	ns := &shiftkey.Namespace{Name: name + "-ns", ID: shiftkey.NewUUID(), DBName: "dev", AdminUsername: "admin", Status: "AVAILABLE", CreatedAt: time.Now()}
	mustOK(t, "CreateNamespace", f.store.CreateNamespace(ctx, ns))
	wg := &shiftkey.Workgroup{Name: name, ID: shiftkey.NewUUID(), Namespace: ns.Name, Status: "AVAILABLE", BaseCapacity: 128,
		Endpoint: shiftkey.Endpoint{Address: "127.0.0.1", Port: 5441}, CreatedAt: time.Now()}
	mustOK(t, "CreateWorkgroup", f.store.CreateWorkgroup(ctx, wg))
	e, err := f.store.Workgroup(ctx, "edge-wg")
	mustOK(t, "Workgroup", err)
	return e.ID, wg.ID
}

// TestGetCredentialsByDomainAuthorizesWorkgroup: a call naming a custom
// domain is authorized on the ARN of the workgroup the domain resolves to
// (by id), not on the domain, and an association on one workgroup gives
// no way to act on another's.
func TestGetCredentialsByDomainAuthorizesWorkgroup(t *testing.T) {
	f := newFixture(t)
	f.workgroup(t)
	edgeID, otherID := f.secondWorkgroup(t, "other-wg")
	ctx := context.Background()
	admin := f.serverlessClient(f.keys["admin"])
	for wg, d := range map[string]string{"edge-wg": "lake.example.com", "other-wg": "pond.example.com"} {
		_, err := admin.CreateCustomDomainAssociation(ctx, &rss.CreateCustomDomainAssociationInput{WorkgroupName: aws.String(wg),
			CustomDomainName: aws.String(d), CustomDomainCertificateArn: aws.String(certA)})
		mustOK(t, "CreateCustomDomainAssociation "+d, err)
	}
	arn := func(id string) string { return "arn:aws:redshift-serverless:us-east-1:" + account + ":workgroup/" + id }
	// owner may do everything on other-wg only.
	owner := f.serverlessClient(f.addUser(t, "owner", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift-serverless:*","Resource":"`+arn(otherID)+`"}]}`))
	out, err := owner.GetCredentials(ctx, &rss.GetCredentialsInput{CustomDomainName: aws.String("pond.example.com")})
	mustOK(t, "GetCredentials by own domain", err)
	if aws.ToString(out.DbUser) != "IAM:owner" {
		t.Errorf("dbUser %q, want IAM:owner", aws.ToString(out.DbUser))
	}
	_, err = owner.GetCredentials(ctx, &rss.GetCredentialsInput{CustomDomainName: aws.String("lake.example.com")})
	wantAPIError(t, err, "AccessDeniedException")
	_, err = owner.GetCredentials(ctx, &rss.GetCredentialsInput{CustomDomainName: aws.String("Lake.Example.Com")})
	wantAPIError(t, err, "AccessDeniedException")
	_, err = owner.GetCredentials(ctx, &rss.GetCredentialsInput{WorkgroupName: aws.String("other-wg"), CustomDomainName: aws.String("lake.example.com")})
	wantAPIError(t, err, "ValidationException")
	// Hijack attempts on edge-wg's domain through other-wg.
	_, err = owner.CreateCustomDomainAssociation(ctx, &rss.CreateCustomDomainAssociationInput{WorkgroupName: aws.String("other-wg"),
		CustomDomainName: aws.String("LAKE.example.com"), CustomDomainCertificateArn: aws.String(certB)})
	wantAPIError(t, err, "ConflictException")
	_, err = owner.UpdateCustomDomainAssociation(ctx, &rss.UpdateCustomDomainAssociationInput{WorkgroupName: aws.String("other-wg"),
		CustomDomainName: aws.String("lake.example.com"), CustomDomainCertificateArn: aws.String(certB)})
	wantAPIError(t, err, "ResourceNotFoundException")
	_, err = owner.DeleteCustomDomainAssociation(ctx, &rss.DeleteCustomDomainAssociationInput{WorkgroupName: aws.String("other-wg"), CustomDomainName: aws.String("lake.example.com")})
	wantAPIError(t, err, "ResourceNotFoundException")
	for _, call := range []func() error{
		func() error {
			_, err := owner.UpdateCustomDomainAssociation(ctx, &rss.UpdateCustomDomainAssociationInput{WorkgroupName: aws.String("edge-wg"),
				CustomDomainName: aws.String("lake.example.com"), CustomDomainCertificateArn: aws.String(certB)})
			return err
		},
		func() error {
			_, err := owner.DeleteCustomDomainAssociation(ctx, &rss.DeleteCustomDomainAssociationInput{WorkgroupName: aws.String("edge-wg"), CustomDomainName: aws.String("lake.example.com")})
			return err
		},
		func() error {
			_, err := owner.CreateCustomDomainAssociation(ctx, &rss.CreateCustomDomainAssociationInput{WorkgroupName: aws.String("edge-wg"),
				CustomDomainName: aws.String("new.example.com"), CustomDomainCertificateArn: aws.String(certB)})
			return err
		},
	} {
		if err := call(); apiCode(err) != "AccessDeniedException" || httpStatus(err) != 403 {
			t.Errorf("on edge-wg: %v, want AccessDeniedException 403", err)
		}
	}
	d, err := admin.GetCustomDomainAssociation(ctx, &rss.GetCustomDomainAssociationInput{WorkgroupName: aws.String("edge-wg"), CustomDomainName: aws.String("lake.example.com")})
	mustOK(t, "GetCustomDomainAssociation", err)
	if aws.ToString(d.CustomDomainCertificateArn) != certA {
		t.Errorf("lake.example.com's certificate changed to %q", aws.ToString(d.CustomDomainCertificateArn))
	}

	// An assumed role (with a path) is IAMR:<role name>, by domain too, and
	// is authorized on the resolved workgroup's ARN like a user.
	iamc := f.iamClient(f.keys["admin"])
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:user/admin"},"Action":"sts:AssumeRole"}]}`
	_, err = iamc.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("Lake"), Path: aws.String("/teams/"), AssumeRolePolicyDocument: aws.String(trust)})
	mustOK(t, "CreateRole", err)
	_, err = iamc.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("Lake"), PolicyName: aws.String("p"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift-serverless:GetCredentials","Resource":"` + arn(edgeID) + `"}]}`)})
	mustOK(t, "PutRolePolicy", err)
	ar, err := f.stsClient(f.keys["admin"]).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::" + account + ":role/teams/Lake"), RoleSessionName: aws.String("s1")})
	mustOK(t, "AssumeRole", err)
	role := f.serverlessClient(aws.Credentials{AccessKeyID: aws.ToString(ar.Credentials.AccessKeyId), SecretAccessKey: aws.ToString(ar.Credentials.SecretAccessKey), SessionToken: aws.ToString(ar.Credentials.SessionToken)})
	out, err = role.GetCredentials(ctx, &rss.GetCredentialsInput{CustomDomainName: aws.String("lake.example.com")})
	mustOK(t, "role GetCredentials by domain", err)
	if aws.ToString(out.DbUser) != "IAMR:Lake" {
		t.Errorf("role dbUser %q, want IAMR:Lake", aws.ToString(out.DbUser))
	}
	_, err = role.GetCredentials(ctx, &rss.GetCredentialsInput{CustomDomainName: aws.String("pond.example.com")})
	wantAPIError(t, err, "AccessDeniedException")
}

// TestClusterDomainAuthorizesResolvedCluster: GetClusterCredentials naming
// a custom domain is authorized on the dbuser/dbname ARNs of the cluster
// the domain resolves to; and a principal allowed on one cluster can
// neither take over nor change nor remove another cluster's domain.
func TestClusterDomainAuthorizesResolvedCluster(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	err := f.store.CreateCluster(ctx, &shiftkey.Cluster{Identifier: "other-cluster", NamespaceID: shiftkey.NewUUID(),
		NodeType: "dc2.large", DBName: "dev", MasterUsername: "awsuser", Status: "available",
		Endpoint: shiftkey.Endpoint{Address: "127.0.0.1", Port: 5442}, CreatedAt: time.Now()})
	mustOK(t, "CreateCluster", err)
	admin := f.client("admin")
	for cl, d := range map[string]string{"dev-cluster": "warehouse.example.com", "other-cluster": "annex.example.com"} {
		_, err := admin.CreateCustomDomainAssociation(ctx, &redshift.CreateCustomDomainAssociationInput{ClusterIdentifier: aws.String(cl),
			CustomDomainName: aws.String(d), CustomDomainCertificateArn: aws.String(certA)})
		mustOK(t, "CreateCustomDomainAssociation "+d, err)
	}
	// limited may get alice on dev-cluster only.
	limited := f.client("limited")
	out, err := limited.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{CustomDomainName: aws.String("Warehouse.Example.com"), DbUser: aws.String("alice"), DbName: aws.String("dev")})
	mustOK(t, "GetClusterCredentials by dev-cluster's domain", err)
	if aws.ToString(out.DbUser) != "IAM:alice" {
		t.Errorf("DbUser %q, want IAM:alice", aws.ToString(out.DbUser))
	}
	_, err = limited.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{CustomDomainName: aws.String("annex.example.com"), DbUser: aws.String("alice"), DbName: aws.String("dev")})
	if apiCode(err) != "AccessDenied" || httpStatus(err) != 403 {
		t.Errorf("by other-cluster's domain: %v, want AccessDenied 403", err)
	}
	rs := "arn:aws:redshift:us-east-1:" + account + ":"
	owner := f.redshiftClient(f.addUser(t, "owner", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:*","Resource":["`+rs+`cluster:other-cluster","`+rs+`dbuser:other-cluster/*","`+rs+`dbname:other-cluster/*"]}]}`))
	_, err = owner.GetClusterCredentialsWithIAM(ctx, &redshift.GetClusterCredentialsWithIAMInput{CustomDomainName: aws.String("annex.example.com"), DbName: aws.String("dev")})
	mustOK(t, "WithIAM by own domain", err)
	_, err = owner.GetClusterCredentialsWithIAM(ctx, &redshift.GetClusterCredentialsWithIAMInput{CustomDomainName: aws.String("warehouse.example.com"), DbName: aws.String("dev")})
	wantAPIError(t, err, "AccessDenied")
	_, err = owner.CreateCustomDomainAssociation(ctx, &redshift.CreateCustomDomainAssociationInput{ClusterIdentifier: aws.String("other-cluster"),
		CustomDomainName: aws.String("WAREHOUSE.example.com"), CustomDomainCertificateArn: aws.String(certB)})
	wantAPIError(t, err, "CustomCnameAssociationFault")
	_, err = owner.ModifyCustomDomainAssociation(ctx, &redshift.ModifyCustomDomainAssociationInput{ClusterIdentifier: aws.String("other-cluster"),
		CustomDomainName: aws.String("warehouse.example.com"), CustomDomainCertificateArn: aws.String(certB)})
	wantAPIError(t, err, "CustomDomainAssociationNotFoundFault")
	_, err = owner.DeleteCustomDomainAssociation(ctx, &redshift.DeleteCustomDomainAssociationInput{ClusterIdentifier: aws.String("other-cluster"), CustomDomainName: aws.String("warehouse.example.com")})
	wantAPIError(t, err, "CustomDomainAssociationNotFoundFault")
	_, err = owner.ModifyCustomDomainAssociation(ctx, &redshift.ModifyCustomDomainAssociationInput{ClusterIdentifier: aws.String("dev-cluster"),
		CustomDomainName: aws.String("warehouse.example.com"), CustomDomainCertificateArn: aws.String(certB)})
	wantAPIError(t, err, "AccessDenied")
	_, err = owner.DeleteCustomDomainAssociation(ctx, &redshift.DeleteCustomDomainAssociationInput{ClusterIdentifier: aws.String("dev-cluster"), CustomDomainName: aws.String("warehouse.example.com")})
	wantAPIError(t, err, "AccessDenied")
	_, err = owner.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("other-cluster"), CustomDomainName: aws.String("warehouse.example.com"), DbUser: aws.String("bob")})
	wantAPIError(t, err, "InvalidParameterCombination")
	// Trailing dot: not a name the pattern allows.
	_, err = admin.CreateCustomDomainAssociation(ctx, &redshift.CreateCustomDomainAssociationInput{ClusterIdentifier: aws.String("other-cluster"),
		CustomDomainName: aws.String("warehouse.example.com."), CustomDomainCertificateArn: aws.String(certB)})
	wantAPIError(t, err, "InvalidParameterValue")
	desc, err := admin.DescribeCustomDomainAssociations(ctx, &redshift.DescribeCustomDomainAssociationsInput{CustomDomainName: aws.String("warehouse.example.com")})
	mustOK(t, "DescribeCustomDomainAssociations", err)
	if len(desc.Associations) != 1 || aws.ToString(desc.Associations[0].CustomDomainCertificateArn) != certA {
		t.Errorf("warehouse.example.com now %+v", desc.Associations)
	}
}

// TestGetCredentialsDomainOfAnotherRegion: a custom domain whose workgroup
// lives in another region is, for the caller's region, a domain with no
// workgroup: ResourceNotFoundException naming what the caller sent (the
// domain), as Redshift answers for a cluster's domain, not the name of a
// workgroup the caller never gave.
func TestGetCredentialsDomainOfAnotherRegion(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ns := &shiftkey.Namespace{Name: "west-ns", ID: shiftkey.NewUUID(), Region: "us-west-2", DBName: "dev", AdminUsername: "admin", Status: "AVAILABLE", CreatedAt: time.Now()}
	mustOK(t, "CreateNamespace", f.store.CreateNamespace(ctx, ns))
	wg := &shiftkey.Workgroup{Name: "secret-west-wg", ID: shiftkey.NewUUID(), Region: "us-west-2", Namespace: "west-ns", Status: "AVAILABLE", BaseCapacity: 128,
		Endpoint: shiftkey.Endpoint{Address: "127.0.0.1", Port: 5443}, CreatedAt: time.Now()}
	mustOK(t, "CreateWorkgroup", f.store.CreateWorkgroup(ctx, wg))
	mustOK(t, "CreateCustomDomain", f.store.CreateCustomDomain(ctx, &shiftkey.CustomDomain{Name: "west.example.com", CertificateARN: certA,
		Kind: shiftkey.DomainWorkgroup, Target: wg.Name, CertExpiry: time.Now().Add(time.Hour)}))
	_, err := f.serverlessClient(f.keys["admin"]).GetCredentials(ctx, &rss.GetCredentialsInput{CustomDomainName: aws.String("west.example.com")})
	wantAPIError(t, err, "ResourceNotFoundException")
	if strings.Contains(err.Error(), wg.Name) || !strings.Contains(err.Error(), "west.example.com") {
		t.Errorf("got %v, want the domain named and not the workgroup", err)
	}
}
