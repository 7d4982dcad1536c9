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
)

// A cluster created through the API comes back with dev (its server
// restarted, a credential issued before still logging in), and its delete
// afterwards stops the restarted server and removes its data.
func TestAPIClusterAcrossDevRestart(t *testing.T) {
	ctx := context.Background()
	d, dir := startOwnDev(t)
	closed := false
	defer func() {
		if !closed {
			d.Close()
		}
	}()
	c := apiClient(d)
	id := "kept-cluster"
	if _, err := c.CreateCluster(ctx, &redshift.CreateClusterInput{ClusterIdentifier: aws.String(id), NodeType: aws.String("ra3.xlplus"),
		MasterUsername: aws.String("keptadmin"), MasterUserPassword: aws.String("Kept1234x")}); err != nil {
		t.Fatal(err)
	}
	cr, err := c.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String(id), DbUser: aws.String("kim"), AutoCreate: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	d2 := newTestDev(dir)
	if err := d2.Start(ctx); err != nil {
		d2.Close()
		t.Fatal(err)
	}
	defer d2.Close()
	c = apiClient(d2)
	desc, err := c.DescribeClusters(ctx, &redshift.DescribeClustersInput{ClusterIdentifier: aws.String(id)})
	if err != nil {
		t.Fatalf("the cluster after dev's restart: %v", err)
	}
	ep := &Dev{}
	ep.Gateway.Address, ep.Gateway.Port = aws.ToString(desc.Clusters[0].Endpoint.Address), int(aws.ToInt32(desc.Clusters[0].Endpoint.Port))
	if u := currentUser(t, mustConnect(t, ep, cred{aws.ToString(cr.DbUser), aws.ToString(cr.DbPassword)}, "dev")); u != "kim" {
		t.Fatalf("current_user %q", u)
	}
	mustConnect(t, ep, cred{"keptadmin", "Kept1234x"}, "dev")
	data := filepath.Join(dir, "backends", "cluster-"+id)
	pid := postmasterPID(t, filepath.Join(data, "postgres"))
	if _, err := c.DeleteCluster(ctx, &redshift.DeleteClusterInput{ClusterIdentifier: aws.String(id), SkipFinalClusterSnapshot: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	// pg_ctl stop -w returns once the postmaster removed its pid file, just
	// before it exits: wait for the exit itself.
	if !processGone(pid, 30*time.Second) {
		t.Fatalf("postmaster %d of the deleted cluster still runs 30 s after DeleteCluster returned", pid)
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data of the deleted cluster still there: %v", err)
	}
	if _, err := connect(ep, cred{"keptadmin", "Kept1234x"}, "dev"); err == nil {
		t.Errorf("the deleted cluster's master still logs in")
	}
}
