package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgserver"
)

// A serve replica's PostgreSQL store restarts with pg_ctl restart -m
// immediate (a crash and recovery, as in a failover) in the middle of a
// burst of 16 concurrent issuers: the calls that fail get ServiceUnavailable
// (503, which the SDKs retry), issuing succeeds again without restarting
// shiftkey, and every credential the API acknowledged, before, around and
// after the restart, logs in through the gateway.
func TestPostgresStoreRestartMidBurstKeepsEveryAcknowledgedCredential(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a PostgreSQL server")
	}
	ctx := context.Background()
	// fsync on, as a production store runs; its default synchronous_commit
	// is left off (the store's sessions turn it on).
	srv := pgtest.Start(t, func(c *pgserver.Config) {
		c.Fsync, c.Settings = true, map[string]string{"synchronous_commit": "off"}
	})
	if err := srv.CreateDatabase(ctx, "store"); err != nil {
		t.Fatal(err)
	}
	r, cfgPath := replicaConfig(t, srv.ConnString(srv.Superuser(), "store"), newStoreKey(t), "")
	serveInProcess(t, cfgPath)
	rs := r.redshift("CI_KEY", "CI_SECRET")

	var (
		mu     sync.Mutex
		got    []acked
		codes  = map[string]int{}
		status = map[int]int{}
		stop   atomic.Bool
		wg     sync.WaitGroup
	)
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
	for w := range 16 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				out, err := rs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("shared"),
					DbUser: aws.String(fmt.Sprintf("restart%d", (w+i)%4)), AutoCreate: aws.Bool(true), DurationSeconds: aws.Int32(3600)})
				mu.Lock()
				if err != nil {
					codes[apiCode(err)]++
					var re interface{ HTTPStatusCode() int }
					if errors.As(err, &re) {
						status[re.HTTPStatusCode()]++
					}
				} else {
					got = append(got, acked{aws.ToString(out.DbUser), aws.ToString(out.DbPassword)})
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	poll(t, 30*time.Second, "200 credentials issued", func() bool { return count() >= 200 })
	start := time.Now()
	restartServer(t, srv, "immediate")
	t.Logf("pg_ctl restart -m immediate took %v", time.Since(start).Round(time.Millisecond))
	n := count()
	poll(t, 30*time.Second, "200 more credentials issued after the restart", func() bool { return count() >= n+200 })
	stop.Store(true)
	wg.Wait()
	t.Logf("%d acknowledged; failures by code %v, by status %v", len(got), codes, status)
	for code := range codes {
		if code != "ServiceUnavailable" {
			t.Errorf("an issue during the store's restart failed with %q, want ServiceUnavailable (the store is unavailable, not broken)", code)
		}
	}
	for st := range status {
		if st != 503 {
			t.Errorf("an issue during the store's restart failed with HTTP %d, want 503", st)
		}
	}
	for i, c := range got {
		conn, err := r.connect(ctx, c.user, c.password)
		if err != nil {
			t.Fatalf("acknowledged credential %d of %d (%s) does not log in after the store's restart: %v", i+1, len(got), c.user, err)
		}
		conn.Close(ctx)
	}
}

// restartServer runs pg_ctl restart -m mode on srv, as its OS user.
func restartServer(t *testing.T, srv *pgserver.Server, mode string) {
	t.Helper()
	pgtest.PgCtl(t, srv, "restart", "-m", mode, "-w", "-t", "60", "-s", "-l", filepath.Join(srv.DataDir(), "restart.log"))
}
