package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
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
