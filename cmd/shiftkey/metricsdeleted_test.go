package main

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
)

// A cluster deleted through DeleteCluster in dev leaves no metric series:
// each scope-labelled family loses its series for the cluster (they stayed
// for the life of the process, one set per cluster ever created).
func TestDeletedClusterLeavesNoMetricSeries(t *testing.T) {
	ctx := context.Background()
	c := apiClient(dev)
	id := fresh("metrics-gone")
	if _, err := c.CreateCluster(ctx, &redshift.CreateClusterInput{ClusterIdentifier: aws.String(id), NodeType: aws.String("ra3.xlplus"),
		MasterUsername: aws.String("mgadmin"), MasterUserPassword: aws.String("Secret123"), DBName: aws.String("mg")}); err != nil {
		t.Fatal(err)
	}
	defer c.DeleteCluster(context.Background(), &redshift.DeleteClusterInput{ClusterIdentifier: aws.String(id), SkipFinalClusterSnapshot: aws.Bool(true)})
	if err := redshift.NewClusterAvailableWaiter(c).Wait(ctx, &redshift.DescribeClustersInput{ClusterIdentifier: aws.String(id)}, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	desc, err := c.DescribeClusters(ctx, &redshift.DescribeClustersInput{ClusterIdentifier: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	ep := &Dev{}
	ep.Gateway.Address, ep.Gateway.Port = aws.ToString(desc.Clusters[0].Endpoint.Address), int(aws.ToInt32(desc.Clusters[0].Endpoint.Port))
	conn := mustConnect(t, ep, cred{"mgadmin", "Secret123"}, "mg")
	if _, err := connect(ep, cred{"mgadmin", "wrong"}, "mg"); sqlState(err) != "28P01" {
		t.Fatalf("wrong password: %v", err)
	}
	conn.Close(ctx)
	series := func() []string {
		fams, _ := scrape(t, dev.AdminURL)
		var out []string
		for name, f := range fams {
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "scope" && l.GetValue() == id {
						out = append(out, name)
					}
				}
			}
		}
		return out
	}
	if len(series()) == 0 {
		t.Fatalf("no series of cluster %s after its logins", id)
	}
	if _, err := c.DeleteCluster(ctx, &redshift.DeleteClusterInput{ClusterIdentifier: aws.String(id), SkipFinalClusterSnapshot: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if err := redshift.NewClusterDeletedWaiter(c).Wait(ctx, &redshift.DescribeClustersInput{ClusterIdentifier: aws.String(id)}, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	if left := series(); len(left) > 0 {
		t.Errorf("series of the deleted cluster %s left: %v", id, left)
	}
}
