package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/redshift/types"
	"github.com/aws/smithy-go"
	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey/pgserver"
)

// createTestCluster creates cluster id through d's API with master
// user/password and deletes it at the end of the test.
func createTestCluster(t *testing.T, d *Dev, id, user, password string) {
	t.Helper()
	c := apiClient(d)
	if _, err := c.CreateCluster(context.Background(), &redshift.CreateClusterInput{ClusterIdentifier: aws.String(id), NodeType: aws.String("ra3.xlplus"),
		MasterUsername: aws.String(user), MasterUserPassword: aws.String(password)}); err != nil {
		t.Fatalf("CreateCluster %s: %v", id, err)
	}
	t.Cleanup(func() {
		c.DeleteCluster(context.Background(), &redshift.DeleteClusterInput{ClusterIdentifier: aws.String(id), SkipFinalClusterSnapshot: aws.Bool(true)})
	})
}

// describeCluster is cluster id as d's DescribeClusters answers it.
func describeCluster(t *testing.T, d *Dev, id string) types.Cluster {
	t.Helper()
	out, err := apiClient(d).DescribeClusters(context.Background(), &redshift.DescribeClustersInput{ClusterIdentifier: aws.String(id)})
	if err != nil {
		t.Fatalf("DescribeClusters %s: %v", id, err)
	}
	return out.Clusters[0]
}

// clusterLogin connects to cluster id's gateway, where DescribeClusters
// says it is.
func clusterLogin(t *testing.T, d *Dev, id string, c cred) (*pgx.Conn, error) {
	t.Helper()
	cl := describeCluster(t, d, id)
	ep := &Dev{}
	ep.Gateway.Address, ep.Gateway.Port = aws.ToString(cl.Endpoint.Address), int(aws.ToInt32(cl.Endpoint.Port))
	return connect(ep, c, "dev")
}

// Found in a review of dev's API-created clusters: a cluster whose
// postmaster died (kill -9) stayed "available" in DescribeClusters and
// was never restarted, so every login through its gateway failed (08006)
// until dev itself was restarted. Dev now notices the dead postmaster and
// starts it again on the same data; until then the cluster is "rebooting".
func TestDevRestartsAClusterWhosePostmasterDied(t *testing.T) {
	ctx := context.Background()
	id := fresh("killed-cluster")
	master := cred{"killadmin", "Kill1234x"}
	createTestCluster(t, dev, id, master.user, master.password)
	conn, err := clusterLogin(t, dev, id, master)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before the kill')"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	data := filepath.Join(dev.DataDir, "backends", "cluster-"+id, "postgres")
	killed := postmasterPID(t, data)
	killPostmaster(t, data)
	// Dev may have restarted it already; what it must never do is call a
	// cluster without a postmaster available.
	if st := aws.ToString(describeCluster(t, dev, id).ClusterStatus); st == "available" {
		if pid := postmasterPID(t, data); pid == killed || syscall.Kill(pid, 0) != nil {
			t.Errorf("DescribeClusters says %s is available; its postmaster %d is dead", id, killed)
		}
	} else if st != "rebooting" {
		t.Errorf("DescribeClusters says %s is %q while its postmaster is dead, want rebooting", id, st)
	}
	loginsAgainWithData(t, dev, id, master)
}

// loginsAgainWithData waits (60 s at most) until c logs in to cluster id
// again after its postmaster's kill, then finds the table kept the test
// made before and the cluster available.
func loginsAgainWithData(t *testing.T, d *Dev, id string, c cred) {
	t.Helper()
	ctx := context.Background()
	var conn *pgx.Conn
	var err error
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if conn, err = clusterLogin(t, d, id, c); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no login to %s within 60 s of its postmaster's kill: %v (%s)", id, err, sqlState(err))
		}
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != "before the kill" {
		t.Fatalf("the restarted cluster's data: %q %v", v, err)
	}
	// The watch marks it available once its start returned, just after
	// the server took this session.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		st := aws.ToString(describeCluster(t, d, id).ClusterStatus)
		if st == "available" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("DescribeClusters says %s is %q 10 s after it took a login again, want available", id, st)
		}
	}
}

// dev-cluster runs on dev's own server: when its postmaster dies it is
// started again too (on main its logins failed until dev restarted).
func TestDevRestartsItsOwnServer(t *testing.T) {
	ctx := context.Background()
	d, _ := startOwnDev(t)
	defer d.Close()
	c := getCreds(t, d, &redshift.GetClusterCredentialsInput{DbUser: aws.String(DevMasterUser), DbName: aws.String(DevDatabase)})
	conn, err := clusterLogin(t, d, DevCluster, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before the kill')"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	killPostmaster(t, d.PG.DataDir())
	loginsAgainWithData(t, d, DevCluster, c)
}

// Found in a review of dev's API-created clusters: one cluster whose data
// dir was damaged stopped `shiftkey dev` from starting at all (Start:
// "cluster broken-…: backend of …: pg_ctl start: …"), and one whose data
// dir was removed came back "available" and empty, initialized again.
// Dev now starts with the others, logs the broken one (name, path, error),
// reports it "hardware-failure", and DeleteCluster removes it.
func TestDevStartsBesideABrokenCluster(t *testing.T) {
	ctx := context.Background()
	d, dir := startOwnDev(t)
	good, damaged, removed := cred{"goodadmin", "Good1234x"}, "damaged-cluster", "removed-cluster"
	createTestCluster(t, d, "good-cluster", good.user, good.password)
	createTestCluster(t, d, damaged, "dmgadmin", "Dmg12345x")
	createTestCluster(t, d, removed, "rmadmin", "Rmv12345x")
	conn, err := clusterLogin(t, d, "good-cluster", good)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (v int)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	backend := func(id string) string { return filepath.Join(dir, "backends", "cluster-"+id) }
	if err := os.Remove(filepath.Join(backend(damaged), "postgres", "global", "pg_control")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(backend(removed)); err != nil {
		t.Fatal(err)
	}

	logs := &lockedBuffer{}
	d2 := newTestDev(dir)
	d2.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(logs, os.Stderr), &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := d2.Start(ctx); err != nil {
		d2.Close()
		t.Fatalf("dev does not start beside a broken cluster: %v", err)
	}
	defer d2.Close()
	conn, err = clusterLogin(t, d2, "good-cluster", good)
	if err != nil {
		t.Fatalf("the good cluster beside the broken ones: %v", err)
	}
	if _, err := conn.Exec(ctx, "SELECT * FROM kept"); err != nil {
		t.Errorf("the good cluster lost its data: %v", err)
	}
	conn.Close(ctx)
	for _, id := range []string{damaged, removed} {
		if st := aws.ToString(describeCluster(t, d2, id).ClusterStatus); st != "hardware-failure" {
			t.Errorf("DescribeClusters says %s, whose data dir is broken, is %q, want hardware-failure", id, st)
		}
		var line string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "cluster="+id) {
				line = l
			}
		}
		if !strings.Contains(line, "level=ERROR") || !strings.Contains(line, "data_dir="+filepath.Join(backend(id), "postgres")) || !strings.Contains(line, "error=") {
			t.Errorf("dev's log about %s: %q, want an error naming it, its data dir and the error", id, line)
		}
		if _, err := apiClient(d2).DeleteCluster(ctx, &redshift.DeleteClusterInput{ClusterIdentifier: aws.String(id), SkipFinalClusterSnapshot: aws.Bool(true)}); err != nil {
			t.Errorf("DeleteCluster of the broken %s: %v", id, err)
		}
		if _, err := os.Stat(backend(id)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the deleted %s's data is still there: %v", id, err)
		}
		var nf *types.ClusterNotFoundFault
		if _, err := apiClient(d2).DescribeClusters(ctx, &redshift.DescribeClustersInput{ClusterIdentifier: aws.String(id)}); !errors.As(err, &nf) {
			t.Errorf("DescribeClusters of the deleted %s: %v", id, err)
		}
	}
}

// A CreateCluster whose server cannot be made answers InternalFailure
// (500) and leaves nothing behind: no cluster, no files; the identifier
// can be created once the cause is gone. Found in a review: a creation
// that a crash interrupted left its data dir, and every later
// CreateCluster of that identifier failed on it ("initdb: … exists but is
// not empty") until someone removed it by hand.
func TestFailedCreateClusterLeavesNothing(t *testing.T) {
	ctx := context.Background()
	c := apiClient(dev)
	data := func(id string) string { return filepath.Join(dev.DataDir, "backends", "cluster-"+id) }
	gone := func(t *testing.T, id string) {
		t.Helper()
		var nf *types.ClusterNotFoundFault
		if _, err := c.DescribeClusters(ctx, &redshift.DescribeClustersInput{ClusterIdentifier: aws.String(id)}); !errors.As(err, &nf) {
			t.Errorf("DescribeClusters of %s after its failed creation: %v, want ClusterNotFound", id, err)
		}
		if _, err := os.Stat(data(id)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s's failed creation left %s: %v", id, data(id), err)
		}
	}
	create := func(t *testing.T, id string) error {
		_, err := c.CreateCluster(ctx, &redshift.CreateClusterInput{ClusterIdentifier: aws.String(id), NodeType: aws.String("ra3.xlplus"),
			MasterUsername: aws.String("unwound"), MasterUserPassword: aws.String("Unwind123x")})
		if err == nil {
			t.Cleanup(func() {
				c.DeleteCluster(context.Background(), &redshift.DeleteClusterInput{ClusterIdentifier: aws.String(id), SkipFinalClusterSnapshot: aws.Bool(true)})
			})
		}
		return err
	}
	loginsAsMaster := func(t *testing.T, id string) {
		t.Helper()
		conn, err := clusterLogin(t, dev, id, cred{"unwound", "Unwind123x"})
		if err != nil {
			t.Fatalf("the master of %s, created again: %v", id, err)
		}
		var leftovers int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&leftovers); err != nil || leftovers != 0 {
			t.Errorf("%s created again has %d tables (%v), want none", id, leftovers, err)
		}
		conn.Close(ctx)
	}

	t.Run("no server binaries", func(t *testing.T) {
		id := fresh("unbuildable")
		t.Setenv("SHIFTKEY_PG_BINDIR", t.TempDir()) // initdb and postgres are not there
		err := create(t, id)
		var ae smithy.APIError
		var re *awshttp.ResponseError
		if !errors.As(err, &ae) || ae.ErrorCode() != "InternalFailure" || !errors.As(err, &re) || re.HTTPStatusCode() != 500 {
			t.Fatalf("CreateCluster without server binaries: %v, want InternalFailure 500", err)
		}
		gone(t, id)
		os.Unsetenv("SHIFTKEY_PG_BINDIR")
		if err := create(t, id); err != nil {
			t.Fatalf("CreateCluster %s again: %v", id, err)
		}
		loginsAsMaster(t, id)
	})

	t.Run("left over by an interrupted creation", func(t *testing.T) {
		id := fresh("interrupted")
		// What initdb killed midway leaves: a data dir with some files.
		if err := os.MkdirAll(filepath.Join(data(id), "postgres", "base"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(data(id), "postgres", "postgresql.conf"), []byte("# half\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := create(t, id); err != nil {
			t.Errorf("CreateCluster over an interrupted creation's leftovers: %v", err)
			gone(t, id)
			if err := create(t, id); err != nil {
				t.Fatalf("CreateCluster %s again: %v", id, err)
			}
		}
		loginsAsMaster(t, id)
	})

	// What a dev killed after the server of a creation started leaves: a
	// whole data dir, its postmaster still running. A new cluster of the
	// name adopted it (its tables), and now starts empty, the orphan gone.
	t.Run("left running by a killed dev", func(t *testing.T) {
		id := fresh("orphaned")
		orphan, err := pgserver.Start(ctx, pgserver.Config{DataDir: filepath.Join(data(id), "postgres"), Superuser: "unwound", AnyPort: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { orphan.Stop(context.Background()) })
		if err := orphan.CreateDatabase(ctx, "dev"); err != nil {
			t.Fatal(err)
		}
		conn, err := pgx.Connect(ctx, orphan.ConnString("unwound", "dev"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "CREATE TABLE leftover (secret text)"); err != nil {
			t.Fatal(err)
		}
		conn.Close(ctx)
		pid := postmasterPID(t, orphan.DataDir())
		if err := create(t, id); err != nil {
			t.Fatalf("CreateCluster over a killed dev's leftovers: %v", err)
		}
		loginsAsMaster(t, id)
		if !processGone(pid, 30*time.Second) {
			t.Errorf("the orphaned postmaster %d still runs 30 s after the cluster's creation", pid)
		}
	})
}
