package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/jackc/pgx/v5"
)

// killPostmaster kills (SIGKILL) the postmaster of the server in dataDir
// and waits until it is gone.
func killPostmaster(t *testing.T, dataDir string) {
	t.Helper()
	pid := postmasterPID(t, dataDir)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !processGone(pid, 30*time.Second) {
		t.Fatalf("postmaster %d still there 30 s after SIGKILL", pid)
	}
}

// postmasterPID is the pid in the postmaster.pid file of the server in
// dataDir.
func postmasterPID(t *testing.T, dataDir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// processGone waits until process pid no longer exists, at most timeout,
// and says whether it went.
func processGone(pid int, timeout time.Duration) bool {
	for deadline := time.Now().Add(timeout); syscall.Kill(pid, 0) == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// A cluster whose server was killed is deleted like any other: its data
// goes, and a cluster created again under its name starts empty.
func TestDeleteClusterWhoseServerDied(t *testing.T) {
	ctx := context.Background()
	c := apiClient(dev)
	id := fresh("dead-cluster")
	create := func() {
		t.Helper()
		if _, err := c.CreateCluster(ctx, &redshift.CreateClusterInput{ClusterIdentifier: aws.String(id), NodeType: aws.String("ra3.xlplus"),
			MasterUsername: aws.String("deadadmin"), MasterUserPassword: aws.String("Dead1234x")}); err != nil {
			t.Fatal(err)
		}
	}
	create()
	t.Cleanup(func() {
		c.DeleteCluster(context.Background(), &redshift.DeleteClusterInput{ClusterIdentifier: aws.String(id), SkipFinalClusterSnapshot: aws.Bool(true)})
	})
	login := func() *pgx.Conn {
		t.Helper()
		desc, err := c.DescribeClusters(ctx, &redshift.DescribeClustersInput{ClusterIdentifier: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		d := &Dev{}
		d.Gateway.Address, d.Gateway.Port = aws.ToString(desc.Clusters[0].Endpoint.Address), int(aws.ToInt32(desc.Clusters[0].Endpoint.Port))
		return mustConnect(t, d, cred{"deadadmin", "Dead1234x"}, "dev")
	}
	if _, err := login().Exec(ctx, "CREATE TABLE leftover (secret text)"); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(dev.DataDir, "backends", "cluster-"+id)
	killPostmaster(t, filepath.Join(dir, "postgres"))
	if _, err := c.DeleteCluster(ctx, &redshift.DeleteClusterInput{ClusterIdentifier: aws.String(id), SkipFinalClusterSnapshot: aws.Bool(true)}); err != nil {
		t.Errorf("DeleteCluster of a cluster whose server died: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data of the deleted cluster still there: %v", err)
	}
	create()
	var table *string
	if err := login().QueryRow(ctx, "SELECT to_regclass('leftover')::text").Scan(&table); err != nil {
		t.Fatal(err)
	}
	if table != nil {
		t.Errorf("the cluster created again under %s has the deleted cluster's table %s", id, *table)
	}
}
