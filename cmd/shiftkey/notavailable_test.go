package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/smithy-go"
)

// apiErr is err's AWS error code and HTTP status as aws-sdk-go-v2 sees them.
func apiErr(err error) (string, int) {
	var ae smithy.APIError
	var re *awshttp.ResponseError
	code, status := "", 0
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, status
}

// Found in the last stop note: GetClusterCredentials and
// GetClusterCredentialsWithIAM issued a credential for a cluster that
// DescribeClusters reports hardware-failure (its server could not be
// resumed), whose logins then failed with 08006. A cluster that is not
// available answers InvalidClusterState (400), as the contract's table
// says; the credential calls work again once it is.
func TestCredentialsRefusedForAClusterNotAvailable(t *testing.T) {
	ctx := context.Background()
	d, dir := startOwnDev(t)
	broken := "broken-cluster"
	createTestCluster(t, d, broken, "brkadmin", "Brk12345x")
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "backends", "cluster-"+broken, "postgres", "global", "pg_control")); err != nil {
		t.Fatal(err)
	}
	d2 := newTestDev(dir)
	if err := d2.Start(ctx); err != nil {
		d2.Close()
		t.Fatal(err)
	}
	defer d2.Close()
	if st := aws.ToString(describeCluster(t, d2, broken).ClusterStatus); st != "hardware-failure" {
		t.Fatalf("DescribeClusters says %s is %q, want hardware-failure", broken, st)
	}
	c := apiClient(d2)
	_, err := c.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String(broken), DbUser: aws.String("brkadmin"), DbName: aws.String("dev")})
	if code, status := apiErr(err); code != "InvalidClusterState" || status != 400 {
		t.Errorf("GetClusterCredentials for a hardware-failure cluster: %v, want InvalidClusterState 400", err)
	}
	_, err = c.GetClusterCredentialsWithIAM(ctx, &redshift.GetClusterCredentialsWithIAMInput{ClusterIdentifier: aws.String(broken), DbName: aws.String("dev")})
	if code, status := apiErr(err); code != "InvalidClusterState" || status != 400 {
		t.Errorf("GetClusterCredentialsWithIAM for a hardware-failure cluster: %v, want InvalidClusterState 400", err)
	}
	// The others are available and issue as before.
	if _, err := c.GetClusterCredentialsWithIAM(ctx, &redshift.GetClusterCredentialsWithIAMInput{ClusterIdentifier: aws.String(DevCluster), DbName: aws.String("dev")}); err != nil {
		t.Errorf("GetClusterCredentialsWithIAM for %s beside the broken cluster: %v", DevCluster, err)
	}

	// A cluster whose postmaster died is rebooting until dev has started
	// it again: no credential meanwhile, and one again once it is back.
	cl := fresh("rebooting-cluster")
	createTestCluster(t, d2, cl, "rbtadmin", "Rbt12345x")
	killPostmaster(t, filepath.Join(dir, "backends", "cluster-"+cl, "postgres"))
	before := aws.ToString(describeCluster(t, d2, cl).ClusterStatus)
	_, err = c.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String(cl), DbUser: aws.String("rbtadmin"), DbName: aws.String("dev")})
	after := aws.ToString(describeCluster(t, d2, cl).ClusterStatus)
	// Checked only when the revive did not end between the two
	// DescribeClusters (it is 2 s away at most).
	if before == "rebooting" && after == "rebooting" {
		if code, status := apiErr(err); code != "InvalidClusterState" || status != 400 {
			t.Errorf("GetClusterCredentials for a rebooting cluster: %v, want InvalidClusterState 400", err)
		}
	} else {
		t.Logf("the revive ended within the check (%s, then %s): the rebooting answer was not seen", before, after)
	}
	loginsAgainAsMaster(t, d2, cl, cred{"rbtadmin", "Rbt12345x"})
	if _, err := c.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String(cl), DbUser: aws.String("rbtadmin"), DbName: aws.String("dev")}); err != nil {
		t.Errorf("GetClusterCredentials once %s is back: %v", cl, err)
	}
}

// loginsAgainAsMaster waits (60 s at most) until c logs in to cluster id
// again and DescribeClusters says it is available.
func loginsAgainAsMaster(t *testing.T, d *Dev, id string, c cred) {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(60 * time.Second); ; {
		conn, err := clusterLogin(t, d, id, c)
		if err == nil && aws.ToString(describeCluster(t, d, id).ClusterStatus) == "available" {
			conn.Close(ctx)
			return
		}
		if err == nil {
			conn.Close(ctx)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not back within 60 s: %v", id, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
