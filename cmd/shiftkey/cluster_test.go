package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/redshift/types"
)

func TestClusterLifecycle(t *testing.T) {
	ctx := context.Background()
	c := apiClient(dev)
	out, err := c.CreateCluster(ctx, &redshift.CreateClusterInput{ClusterIdentifier: aws.String("etl-cluster"), NodeType: aws.String("ra3.xlplus"),
		MasterUsername: aws.String("etladmin"), MasterUserPassword: aws.String("Secret123"), DBName: aws.String("etl"), Port: aws.Int32(5439),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("data")}}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Cluster.ClusterStatus) != "creating" {
		t.Fatalf("status %q", aws.ToString(out.Cluster.ClusterStatus))
	}
	// AWS has no endpoint while creating: no Endpoint element, not an
	// empty one an SDK decodes as address "" port 0.
	if e := out.Cluster.Endpoint; e != nil {
		t.Errorf("CreateCluster answered Endpoint %q:%d while creating, want none", aws.ToString(e.Address), aws.ToInt32(e.Port))
	}
	if err := redshift.NewClusterAvailableWaiter(c).Wait(ctx, &redshift.DescribeClustersInput{ClusterIdentifier: aws.String("etl-cluster")}, 30*time.Second); err != nil {
		t.Fatalf("ClusterAvailable waiter: %v", err)
	}
	desc, err := c.DescribeClusters(ctx, &redshift.DescribeClustersInput{ClusterIdentifier: aws.String("etl-cluster")})
	if err != nil {
		t.Fatal(err)
	}
	cl := desc.Clusters[0]
	endpoint := func(cl types.Cluster) *Dev {
		d := &Dev{}
		d.Gateway.Address, d.Gateway.Port = aws.ToString(cl.Endpoint.Address), int(aws.ToInt32(cl.Endpoint.Port))
		return d
	}
	if aws.ToString(cl.MasterUsername) != "etladmin" || aws.ToString(cl.DBName) != "etl" || len(cl.Tags) != 1 || cl.Endpoint == nil {
		t.Fatalf("described %+v", cl)
	}

	// The master user logs in with its password; issued credentials work too.
	conn := mustConnect(t, endpoint(cl), cred{"etladmin", "Secret123"}, "etl")
	if u := currentUser(t, conn); u != "etladmin" {
		t.Fatalf("master current_user %q", u)
	}
	cr, err := c.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("etl-cluster"), DbUser: aws.String("alice"), AutoCreate: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	conn2 := mustConnect(t, endpoint(cl), cred{aws.ToString(cr.DbUser), aws.ToString(cr.DbPassword)}, "etl")
	if u := currentUser(t, conn2); u != "alice" {
		t.Fatalf("issued current_user %q", u)
	}

	// Paginator and tag filters.
	pages := redshift.NewDescribeClustersPaginator(c, &redshift.DescribeClustersInput{MaxRecords: aws.Int32(20)})
	n := 0
	for pages.HasMorePages() {
		p, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(p.Clusters)
	}
	if n < 2 {
		t.Fatalf("paginator saw %d clusters", n)
	}
	tagged, err := c.DescribeClusters(ctx, &redshift.DescribeClustersInput{TagKeys: []string{"team"}, TagValues: []string{"data"}})
	if err != nil || len(tagged.Clusters) != 1 || aws.ToString(tagged.Clusters[0].ClusterIdentifier) != "etl-cluster" {
		t.Fatalf("tag filter: %v %v", tagged, err)
	}
	arn := "arn:aws:redshift:us-east-1:000000000000:cluster:etl-cluster"
	if _, err := c.CreateTags(ctx, &redshift.CreateTagsInput{ResourceName: aws.String(arn), Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("test")}}}); err != nil {
		t.Fatal(err)
	}
	dt, err := c.DescribeTags(ctx, &redshift.DescribeTagsInput{ResourceName: aws.String(arn)})
	if err != nil || len(dt.TaggedResources) != 2 {
		t.Fatalf("DescribeTags %v %v", dt, err)
	}
	if _, err := c.DeleteTags(ctx, &redshift.DeleteTagsInput{ResourceName: aws.String(arn), TagKeys: []string{"env"}}); err != nil {
		t.Fatal(err)
	}

	// ModifyCluster: a new master password replaces the old one.
	if _, err := c.ModifyCluster(ctx, &redshift.ModifyClusterInput{ClusterIdentifier: aws.String("etl-cluster"), MasterUserPassword: aws.String("Changed456")}); err != nil {
		t.Fatal(err)
	}
	if _, err := connect(endpoint(cl), cred{"etladmin", "Secret123"}, "etl"); sqlState(err) != "28P01" {
		t.Fatalf("old master password: %v", err)
	}
	mustConnect(t, endpoint(cl), cred{"etladmin", "Changed456"}, "etl")

	// Deletion needs SkipFinalClusterSnapshot, then removes everything.
	_, err = c.DeleteCluster(ctx, &redshift.DeleteClusterInput{ClusterIdentifier: aws.String("etl-cluster")})
	if apiErr := (interface{ ErrorCode() string })(nil); !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidParameterCombination" {
		t.Fatalf("delete without SkipFinalClusterSnapshot: %v", err)
	}
	del, err := c.DeleteCluster(ctx, &redshift.DeleteClusterInput{ClusterIdentifier: aws.String("etl-cluster"), SkipFinalClusterSnapshot: aws.Bool(true)})
	if err != nil || aws.ToString(del.Cluster.ClusterStatus) != "deleting" {
		t.Fatalf("delete: %v %v", del, err)
	}
	if err := redshift.NewClusterDeletedWaiter(c).Wait(ctx, &redshift.DescribeClustersInput{ClusterIdentifier: aws.String("etl-cluster")}, 30*time.Second); err != nil {
		t.Fatalf("ClusterDeleted waiter: %v", err)
	}
	var nf *types.ClusterNotFoundFault
	if _, err := c.DescribeClusters(ctx, &redshift.DescribeClustersInput{ClusterIdentifier: aws.String("etl-cluster")}); !errors.As(err, &nf) {
		t.Fatalf("deleted cluster: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dev.DataDir, "backends", "cluster-etl-cluster")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("data of the deleted cluster still there: %v", err)
	}
}

func TestCreateClusterValidation(t *testing.T) {
	ctx := context.Background()
	c := apiClient(dev)
	base := func() *redshift.CreateClusterInput {
		return &redshift.CreateClusterInput{ClusterIdentifier: aws.String("v-cluster"), NodeType: aws.String("dc2.large"),
			MasterUsername: aws.String("admin1"), MasterUserPassword: aws.String("Passw0rdX")}
	}
	for name, mutate := range map[string]func(*redshift.CreateClusterInput){
		"identifier uppercase":   func(in *redshift.CreateClusterInput) { in.ClusterIdentifier = aws.String("Bad") },
		"identifier double dash": func(in *redshift.CreateClusterInput) { in.ClusterIdentifier = aws.String("a--b") },
		"password no digit":      func(in *redshift.CreateClusterInput) { in.MasterUserPassword = aws.String("Password") },
		"password with quote":    func(in *redshift.CreateClusterInput) { in.MasterUserPassword = aws.String("Pass'w0rd") },
		"master user reserved":   func(in *redshift.CreateClusterInput) { in.MasterUsername = aws.String("user") },
		"port too low":           func(in *redshift.CreateClusterInput) { in.Port = aws.Int32(80) },
		"db name uppercase":      func(in *redshift.CreateClusterInput) { in.DBName = aws.String("Etl") },
	} {
		in := base()
		mutate(in)
		_, err := c.CreateCluster(ctx, in)
		if apiErr := (interface{ ErrorCode() string })(nil); !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidParameterValue" {
			t.Errorf("%s: %v", name, err)
		}
	}
	in := base()
	in.ClusterIdentifier = aws.String(DevCluster)
	var exists *types.ClusterAlreadyExistsFault
	if _, err := c.CreateCluster(ctx, in); !errors.As(err, &exists) {
		t.Fatalf("existing identifier: %v", err)
	}
}
