package http_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/redshift/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/shiftkey/shiftkey"
)

// Finding 12.2: the DbUser and DbName authorized are the ones used. A Deny
// written for the lowercase names (the names the backend uses) holds
// whatever case the caller types, and names PostgreSQL would truncate are
// refused rather than folded onto another role.
func TestFinding2DenyHoldsForEveryLetterCase(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.addUser(t, "cased", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"redshift:*","Resource":"*"},
		{"Effect":"Deny","Action":"redshift:GetClusterCredentials","Resource":[
			"arn:aws:redshift:us-east-1:`+account+`:dbuser:dev-cluster/awsuser",
			"arn:aws:redshift:us-east-1:`+account+`:dbname:dev-cluster/secret"]},
		{"Effect":"Deny","Action":"redshift:GetClusterCredentials","Resource":"*",
			"Condition":{"StringEquals":{"redshift:DbUser":"mallory"}}}]}`)
	rs := f.client("cased")
	for _, in := range []*redshift.GetClusterCredentialsInput{
		{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("AWSUSER")},
		{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("AwsUser"), DbName: aws.String("dev")},
		{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("alice"), DbName: aws.String("SECRET")},
		{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("alice"), DbName: aws.String("Secret")},
		{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("MALLORY")},
	} {
		_, err := rs.GetClusterCredentials(ctx, in)
		wantAPIError(t, err, "AccessDenied")
	}
	// What is issued names the folded user and database.
	out, err := rs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
		ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("Alice"), DbName: aws.String("DEV")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.DbUser) != "IAM:alice" {
		t.Fatalf("DbUser %q, want IAM:alice", aws.ToString(out.DbUser))
	}
	creds, _, _, err := f.store.LiveCredentials(ctx, "dev-cluster", "IAM:alice", time.Now())
	if err != nil || len(creds) != 1 || creds[0].DBUser != "alice" || creds[0].DBName != "dev" {
		t.Fatalf("stored %+v, %v", creds, err)
	}

	// 64 bytes is Redshift's limit but PostgreSQL keeps 63: two names that
	// share 63 bytes would be one role.
	long := "a" + strings.Repeat("b", 63)
	_, err = rs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String(long)})
	wantAPIError(t, err, "InvalidParameterValue")
	_, err = rs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("alice"), DbName: aws.String(long)})
	wantAPIError(t, err, "InvalidParameterValue")
	if _, err := rs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String(long[:63])}); err != nil {
		t.Fatalf("63-byte DbUser: %v", err)
	}
}

// Finding 12.3: the region of the credential scope is checked and scopes
// what the caller sees.
func TestFinding3RegionScopesResources(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	in := &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("alice")}
	in2 := &redshift.DescribeClustersInput{ClusterIdentifier: aws.String("dev-cluster")}
	for _, region := range []string{"xx-nowhere-9", "us-west-2"} {
		rs := redshift.New(f.client("admin").Options(), func(o *redshift.Options) { o.Region = region })
		_, err := rs.GetClusterCredentials(ctx, in)
		wantAPIError(t, err, "SignatureDoesNotMatch")
		_, err = rs.DescribeClusters(ctx, in2)
		wantAPIError(t, err, "SignatureDoesNotMatch")
	}
	if _, err := f.client("admin").GetClusterCredentials(ctx, in); err != nil {
		t.Fatalf("us-east-1: %v", err)
	}

	// Serving two regions: each sees its own clusters only.
	f.api.Regions = []string{"us-east-1", "us-west-2"}
	if err := f.store.CreateCluster(ctx, &shiftkey.Cluster{Identifier: "west", Region: "us-west-2", NamespaceID: shiftkey.NewUUID(),
		NodeType: "dc2.large", DBName: "dev", MasterUsername: "awsuser", Status: "available", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	west := redshift.New(f.client("admin").Options(), func(o *redshift.Options) { o.Region = "us-west-2" })
	_, err := west.GetClusterCredentials(ctx, in)
	wantAPIError(t, err, "ClusterNotFound")
	_, err = west.DescribeClusters(ctx, in2)
	wantAPIError(t, err, "ClusterNotFound")
	all, err := west.DescribeClusters(ctx, &redshift.DescribeClustersInput{})
	if err != nil || len(all.Clusters) != 1 || aws.ToString(all.Clusters[0].ClusterIdentifier) != "west" {
		t.Fatalf("us-west-2 lists %+v, %v", all, err)
	}
	out, err := west.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("west"), DbUser: aws.String("alice")})
	if err != nil || aws.ToString(out.DbUser) != "IAM:alice" {
		t.Fatalf("us-west-2 credential: %v", err)
	}
	_, err = f.client("admin").GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("west"), DbUser: aws.String("alice")})
	wantAPIError(t, err, "ClusterNotFound")
	_, err = f.client("admin").CreateTags(ctx, &redshift.CreateTagsInput{ResourceName: aws.String("arn:aws:redshift:us-west-2:" + account + ":cluster:west"),
		Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
	wantAPIError(t, err, "ResourceNotFoundFault")
	// Signing for a region the API does not serve is still refused.
	other := redshift.New(f.client("admin").Options(), func(o *redshift.Options) { o.Region = "eu-west-1" })
	_, err = other.DescribeClusters(ctx, &redshift.DescribeClustersInput{})
	wantAPIError(t, err, "SignatureDoesNotMatch")
}

// A region-scoped Deny holds: the ARN carries the region the resource is in.
func TestFinding3RegionScopedDeny(t *testing.T) {
	f := newFixture(t)
	f.api.Regions = []string{"us-east-1", "us-west-2"}
	f.addUser(t, "eastless", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"redshift:*","Resource":"*"},
		{"Effect":"Deny","Action":"redshift:GetClusterCredentials","Resource":"arn:aws:redshift:us-east-1:*:dbuser:*"}]}`)
	in := &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("alice")}
	// Each region is refused for its own reason: the Deny where the
	// cluster is, not found elsewhere, unserved for a made-up region.
	for region, code := range map[string]string{"us-east-1": "AccessDenied", "us-west-2": "ClusterNotFound", "xx-nowhere-9": "SignatureDoesNotMatch"} {
		rs := redshift.New(f.client("eastless").Options(), func(o *redshift.Options) { o.Region = region })
		_, err := rs.GetClusterCredentials(context.Background(), in)
		wantAPIError(t, err, code)
	}
	// The Deny is what refuses us-east-1: another user without it is issued.
	f.addUser(t, "everywhere", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:*","Resource":"*"}]}`)
	if _, err := f.client("everywhere").GetClusterCredentials(context.Background(), in); err != nil {
		t.Fatalf("without the Deny: %v", err)
	}
}

// IAM and STS are global: with only eu-west-1 served, a caller that signs
// IAM and STS for us-east-1 (as the SDKs sign IAM) is answered, while a
// Redshift call signed for us-east-1 is refused.
func TestFinding3IAMAndSTSStayGlobal(t *testing.T) {
	f := newFixture(t)
	f.api.Regions = []string{"eu-west-1"}
	ctx := context.Background()
	if _, err := f.iamClient(f.keys["admin"]).ListUsers(ctx, &iam.ListUsersInput{}); err != nil {
		t.Fatalf("IAM signed for us-east-1: %v", err)
	}
	if _, err := f.stsClient(f.keys["admin"]).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatalf("STS signed for us-east-1: %v", err)
	}
	west := sts.New(f.stsClient(f.keys["admin"]).Options(), func(o *sts.Options) { o.Region = "eu-west-1" })
	if _, err := west.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatalf("STS signed for the served eu-west-1: %v", err)
	}
	other := sts.New(f.stsClient(f.keys["admin"]).Options(), func(o *sts.Options) { o.Region = "ap-south-1" })
	_, err := other.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	wantAPIError(t, err, "SignatureDoesNotMatch")
	_, err = f.client("admin").DescribeClusters(ctx, &redshift.DescribeClustersInput{})
	wantAPIError(t, err, "SignatureDoesNotMatch")
}

// Redshift's cluster actions carry aws:ResourceTag/* (the cluster's tags)
// and the tagging actions aws:RequestTag/* and aws:TagKeys.
func TestRedshiftTagConditionKeys(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	arn := aws.String("arn:aws:redshift:us-east-1:" + account + ":cluster:dev-cluster")
	f.addUser(t, "tagwise", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"redshift:*","Resource":"*"},
		{"Effect":"Deny","Action":"redshift:DescribeClusters","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/env":"prod"}}},
		{"Effect":"Deny","Action":"redshift:CreateTags","Resource":"*","Condition":{"StringEquals":{"aws:RequestTag/env":"prod"}}},
		{"Effect":"Deny","Action":"redshift:DeleteTags","Resource":"*","Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":"owner"}}}]}`)
	rs := f.client("tagwise")
	one := &redshift.DescribeClustersInput{ClusterIdentifier: aws.String("dev-cluster")}
	if _, err := rs.DescribeClusters(ctx, one); err != nil {
		t.Fatalf("untagged cluster: %v", err)
	}
	_, err := rs.CreateTags(ctx, &redshift.CreateTagsInput{ResourceName: arn, Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("prod")}}})
	wantAPIError(t, err, "AccessDenied")
	for _, k := range []string{"env", "owner"} {
		if _, err := f.client("admin").CreateTags(ctx, &redshift.CreateTagsInput{ResourceName: arn, Tags: []types.Tag{{Key: aws.String(k), Value: aws.String("prod")}}}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = rs.DescribeClusters(ctx, one)
	wantAPIError(t, err, "AccessDenied")
	_, err = rs.DeleteTags(ctx, &redshift.DeleteTagsInput{ResourceName: arn, TagKeys: []string{"owner"}})
	wantAPIError(t, err, "AccessDenied")
	if _, err := rs.DeleteTags(ctx, &redshift.DeleteTagsInput{ResourceName: arn, TagKeys: []string{"env"}}); err != nil {
		t.Fatalf("removing env: %v", err)
	}
	if _, err := rs.DescribeClusters(ctx, one); err != nil {
		t.Fatalf("after env was removed: %v", err)
	}
}
