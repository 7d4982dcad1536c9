package main

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"
)

// total sums family name's series whose labels include want.
func total(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	n := 0.0
next:
	for _, m := range fams[name].GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		n += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return n
}

// After many sessions on each relay, ended every way (closed, a query
// cancelled, the client's context ended mid-query, the backend terminated,
// the client's socket reset), with and without a session group, the
// gauges are at rest: no session active, no grant held, the pool within
// its size, and every session started counted as ended and as a pool hit
// or miss.
func TestGaugesAtRestAfterChurn(t *testing.T) {
	for _, engine := range []string{"goroutine", "epoll", "io_uring"} {
		t.Run(engine, func(t *testing.T) {
			dir := t.TempDir()
			s := startServe(t, opsYAML(dir, "limits: {pool_size: 2, relay: "+engine+", relay_threads: 1}"), opsEnv)
			adminExec(t, dev, `DO $$ BEGIN CREATE ROLE ops_reader NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`)
			rs := opsClient(s, opsEnv["OPS_SECRET"])
			ctx := context.Background()
			issue := func(groups []string) (string, string) {
				out, err := rs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("opsc"),
					DbUser: aws.String(fresh("churn")), DbName: aws.String("dev"), AutoCreate: aws.Bool(true), DbGroups: groups})
				if err != nil {
					t.Fatal(err)
				}
				return aws.ToString(out.DbUser), aws.ToString(out.DbPassword)
			}
			plainUser, plainPW := issue(nil)
			groupUser, groupPW := issue([]string{"ops_reader"})
			open := func(user, pw string) *pgx.Conn {
				c, err := gatewayConn(ctx, s, user, pw)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			ends := []struct {
				name string
				end  func(c *pgx.Conn)
			}{
				{"closed", func(c *pgx.Conn) {
					var n int
					if err := c.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil {
						t.Fatal(err)
					}
					c.Close(ctx)
				}},
				{"cancelled", func(c *pgx.Conn) {
					// A statement_timeout cancels on the backend; the
					// session goes on and ends clean.
					if _, err := c.Exec(ctx, "SET statement_timeout = '50ms'; SELECT pg_sleep(5)"); sqlState(err) != "57014" {
						t.Fatalf("statement_timeout: %v", err)
					}
					c.Close(ctx)
				}},
				{"context", func(c *pgx.Conn) {
					// pgx sends a cancel request and hangs up.
					qctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
					defer cancel()
					c.Exec(qctx, "SELECT pg_sleep(5)")
					c.Close(ctx)
				}},
				{"terminated", func(c *pgx.Conn) {
					var pid int
					if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
						t.Fatal(err)
					}
					adminExec(t, dev, fmt.Sprintf("SELECT pg_terminate_backend(%d)", pid))
					c.Exec(ctx, "SELECT 1") // the FATAL
					c.Close(ctx)
				}},
				{"reset", func(c *pgx.Conn) {
					tc := c.PgConn().Conn().(*net.TCPConn)
					tc.SetLinger(0)
					tc.Close()
				}},
			}
			for range 4 {
				for _, e := range ends {
					for _, u := range [][2]string{{plainUser, plainPW}, {groupUser, groupPW}} {
						e.end(open(u[0], u[1]))
					}
				}
			}
			waitUntil(t, 20*time.Second, "every session ended and its grants revoked", func() bool {
				fams, _ := scrape(t, s.AdminURL)
				started := total(fams, "shiftkey_gateway_sessions_total", nil)
				// (The held gauge drops just after the revoke is counted:
				// both are waited for.)
				granted := total(fams, "shiftkey_session_grant_changes_total", map[string]string{"change": "granted"})
				return started == 40 && total(fams, "shiftkey_gateway_sessions_ended_total", nil) == started &&
					total(fams, "shiftkey_session_grants_held", nil) == 0 &&
					granted == total(fams, "shiftkey_session_grant_changes_total", map[string]string{"change": "revoked"})
			})
			// A scrape gathers the families concurrently: the one that saw
			// the last end may have read the gauges just before it changed
			// them. One begun after it sees them at rest.
			fams, _ := scrape(t, s.AdminURL)
			for _, c := range []struct {
				name string
				want float64
			}{
				{"shiftkey_gateway_sessions_active", 0},
				{"shiftkey_relay_sessions_active", 0},
				{"shiftkey_session_grants_held", 0},
			} {
				if got := total(fams, c.name, nil); got != c.want {
					t.Errorf("%s = %v after every session ended, want %v", c.name, got, c.want)
				}
			}
			if idle := total(fams, "shiftkey_backend_pool_idle", nil); idle < 0 || idle > 2 {
				t.Errorf("shiftkey_backend_pool_idle = %v, want 0 to 2 (pool_size)", idle)
			}
			hits, misses := total(fams, "shiftkey_backend_pool_hits_total", nil), total(fams, "shiftkey_backend_pool_misses_total", nil)
			if hits+misses != 40 || hits == 0 {
				t.Errorf("pool hits %v + misses %v, want 40 with some hits", hits, misses)
			}
			granted, revoked := total(fams, "shiftkey_session_grant_changes_total", map[string]string{"change": "granted"}),
				total(fams, "shiftkey_session_grant_changes_total", map[string]string{"change": "revoked"})
			if granted == 0 || granted != revoked {
				t.Errorf("grants granted %v, revoked %v: want as many revoked, some granted", granted, revoked)
			}
			t.Logf("ended: %v", func() map[string]float64 {
				out := map[string]float64{}
				for _, r := range []string{"closed", "backend_ended", "relay_failed"} {
					out[r] = total(fams, "shiftkey_gateway_sessions_ended_total", map[string]string{"reason": r})
				}
				return out
			}())
		})
	}
}

// serve counts a connection refused at a gateway's cap on /metrics.
func TestRefusedConnectionsOnMetrics(t *testing.T) {
	s := startServe(t, opsYAML(t.TempDir(), "limits: {max_connections: 1}"), opsEnv)
	ctx := context.Background()
	out, err := opsClient(s, opsEnv["OPS_SECRET"]).GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("opsc"),
		DbUser: aws.String(fresh("capped")), DbName: aws.String("dev"), AutoCreate: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	held, err := gatewayConn(ctx, s, aws.ToString(out.DbUser), aws.ToString(out.DbPassword))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close(ctx)
	if _, err := gatewayConn(ctx, s, aws.ToString(out.DbUser), aws.ToString(out.DbPassword)); sqlState(err) != "53300" {
		t.Fatalf("a second connection over max_connections 1: %v, want 53300", err)
	}
	waitUntil(t, 5*time.Second, "the refusal counted", func() bool {
		fams, _ := scrape(t, s.AdminURL)
		return sample(fams, "shiftkey_gateway_connections_refused_total", map[string]string{"scope": "opsc", "cap": "max_connections"}) == 1
	})
}
