package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/redshift/types"
)

// Two CreateCluster calls for one identifier at once: one creates the
// cluster, the other answers ClusterAlreadyExists, and the loser's undoing
// leaves the winner's backend running (its master logs in, its data stays).
func TestConcurrentCreateClusterSameIdentifier(t *testing.T) {
	ctx := context.Background()
	c := apiClient(dev)
	id := fresh("twin-cluster")
	passwords := []string{"TwinOne111", "TwinTwo222"}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range passwords {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.CreateCluster(ctx, &redshift.CreateClusterInput{ClusterIdentifier: aws.String(id), NodeType: aws.String("ra3.xlplus"),
				MasterUsername: aws.String("twinadmin"), MasterUserPassword: aws.String(passwords[i])})
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		c.DeleteCluster(context.Background(), &redshift.DeleteClusterInput{ClusterIdentifier: aws.String(id), SkipFinalClusterSnapshot: aws.Bool(true)})
	})
	winner := -1
	for i, err := range errs {
		var exists *types.ClusterAlreadyExistsFault
		switch {
		case err == nil && winner < 0:
			winner = i
		case err == nil:
			t.Fatalf("both CreateCluster calls for %s succeeded", id)
		case !errors.As(err, &exists):
			t.Errorf("CreateCluster %d: %v, want success or ClusterAlreadyExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("neither CreateCluster succeeded: %v", errs)
	}
	if err := redshift.NewClusterAvailableWaiter(c).Wait(ctx, &redshift.DescribeClustersInput{ClusterIdentifier: aws.String(id)}, 30*time.Second); err != nil {
		t.Fatalf("ClusterAvailable waiter: %v", err)
	}
	desc, err := c.DescribeClusters(ctx, &redshift.DescribeClustersInput{ClusterIdentifier: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	cl := desc.Clusters[0]
	d := &Dev{}
	d.Gateway.Address, d.Gateway.Port = aws.ToString(cl.Endpoint.Address), int(aws.ToInt32(cl.Endpoint.Port))
	conn, err := connect(d, cred{"twinadmin", passwords[winner]}, "dev")
	if err != nil {
		t.Fatalf("the master of %s, created by the call that succeeded, does not log in: %v", id, err)
	}
	defer conn.Close(ctx)
	if u := currentUser(t, conn); u != "twinadmin" {
		t.Fatalf("current_user %q", u)
	}
	if _, err := os.Stat(filepath.Join(dev.DataDir, "backends", "cluster-"+id, "postgres", "PG_VERSION")); err != nil {
		t.Fatalf("data of the created cluster %s: %v", id, err)
	}
}

// An identifier at AWS's limit (63 characters, hyphens) makes a cluster
// whose master logs in, and DeleteCluster removes its data.
func TestCreateClusterLongestIdentifier(t *testing.T) {
	ctx := context.Background()
	c := apiClient(dev)
	id := "a-" + strings.Repeat("b1-", 20) + "c"
	if len(id) != 63 {
		t.Fatalf("identifier of %d characters", len(id))
	}
	if _, err := c.CreateCluster(ctx, &redshift.CreateClusterInput{ClusterIdentifier: aws.String(id), NodeType: aws.String("ra3.xlplus"),
		MasterUsername: aws.String("longadmin"), MasterUserPassword: aws.String("Long1234x")}); err != nil {
		t.Fatal(err)
	}
	desc, err := c.DescribeClusters(ctx, &redshift.DescribeClustersInput{ClusterIdentifier: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	d := &Dev{}
	d.Gateway.Address, d.Gateway.Port = aws.ToString(desc.Clusters[0].Endpoint.Address), int(aws.ToInt32(desc.Clusters[0].Endpoint.Port))
	mustConnect(t, d, cred{"longadmin", "Long1234x"}, "dev").Close(ctx)
	if _, err := c.DeleteCluster(ctx, &redshift.DeleteClusterInput{ClusterIdentifier: aws.String(id), SkipFinalClusterSnapshot: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dev.DataDir, "backends", "cluster-"+id)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("data of the deleted cluster still there: %v", err)
	}
	if _, err := c.CreateCluster(ctx, &redshift.CreateClusterInput{ClusterIdentifier: aws.String(id + "x"), NodeType: aws.String("ra3.xlplus"),
		MasterUsername: aws.String("longadmin"), MasterUserPassword: aws.String("Long1234x")}); !strings.Contains(fmt.Sprint(err), "InvalidParameterValue") {
		t.Fatalf("a 64-character identifier: %v, want InvalidParameterValue", err)
	}
}

// CreateCluster retried while DeleteCluster of that name runs (what a test
// suite's setup does after the previous run's teardown): every answer is
// ClusterAlreadyExists until one creates a new cluster, which starts
// empty and whose new master password logs in.
func TestCreateClusterRacingItsDelete(t *testing.T) {
	ctx := context.Background()
	c := apiClient(dev)
	id := fresh("again-cluster")
	in := func(pw string) *redshift.CreateClusterInput {
		return &redshift.CreateClusterInput{ClusterIdentifier: aws.String(id), NodeType: aws.String("ra3.xlplus"),
			MasterUsername: aws.String("againadmin"), MasterUserPassword: aws.String(pw)}
	}
	if _, err := c.CreateCluster(ctx, in("Before123")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.DeleteCluster(context.Background(), &redshift.DeleteClusterInput{ClusterIdentifier: aws.String(id), SkipFinalClusterSnapshot: aws.Bool(true)})
	})
	endpoint := func() *Dev {
		t.Helper()
		desc, err := c.DescribeClusters(ctx, &redshift.DescribeClustersInput{ClusterIdentifier: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		d := &Dev{}
		d.Gateway.Address, d.Gateway.Port = aws.ToString(desc.Clusters[0].Endpoint.Address), int(aws.ToInt32(desc.Clusters[0].Endpoint.Port))
		return d
	}
	if _, err := mustConnect(t, endpoint(), cred{"againadmin", "Before123"}, "dev").Exec(ctx, "CREATE TABLE leftover (secret text)"); err != nil {
		t.Fatal(err)
	}
	deleted := make(chan error, 1)
	go func() {
		_, err := c.DeleteCluster(ctx, &redshift.DeleteClusterInput{ClusterIdentifier: aws.String(id), SkipFinalClusterSnapshot: aws.Bool(true)})
		deleted <- err
	}()
	var exists *types.ClusterAlreadyExistsFault
	for {
		_, err := c.CreateCluster(ctx, in("After1234"))
		if err == nil {
			break
		}
		if !errors.As(err, &exists) {
			t.Fatalf("CreateCluster while its delete runs: %v, want success or ClusterAlreadyExists", err)
		}
	}
	if err := <-deleted; err != nil {
		t.Fatalf("DeleteCluster: %v", err)
	}
	conn, err := connect(endpoint(), cred{"againadmin", "After1234"}, "dev")
	if err != nil {
		t.Fatalf("the new master password of the cluster created again: %v", err)
	}
	defer conn.Close(ctx)
	var table *string
	if err := conn.QueryRow(ctx, "SELECT to_regclass('leftover')::text").Scan(&table); err != nil {
		t.Fatal(err)
	}
	if table != nil {
		t.Errorf("the cluster created again under %s has the deleted cluster's table %s", id, *table)
	}
	if _, err := os.Stat(filepath.Join(dev.DataDir, "backends", "cluster-"+id, "postgres", "PG_VERSION")); err != nil {
		t.Errorf("data of the cluster created again: %v", err)
	}
}
