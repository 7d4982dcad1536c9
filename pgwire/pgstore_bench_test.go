package pgwire

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/internal/benchcpu"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/postgres"
)

// BenchmarkLoginPostgresStore is BenchmarkLoginManyCredentials on the
// PostgreSQL store (a real one, the test server): a login name with 1 or
// 10,000 live credentials, the client holding the newest. cpu-ms/op is
// this process's CPU per login: the gateway, its store reads and the pgx
// client, not PostgreSQL's.
func BenchmarkLoginPostgresStore(b *testing.B) {
	for _, n := range []int{1, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ctx := context.Background()
			srv := pgtest.Server(b)
			st, err := postgres.Open(ctx, srv.ConnString(srv.Superuser(), pgtest.NewDatabase(b)))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			g, addr := newGateway(b, func(g *Gateway) {
				g.PoolSize = 4
				c := *g.Credentials.(memCreds).cred
				c.Cluster, c.CreatedAt, c.ExpiresAt = g.Cluster, time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
				if _, err := st.LoginSalt(ctx, c.Cluster, c.LoginName, "", shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: 1}); err != nil {
					b.Fatal(err)
				}
				creds := benchCandidates(&c, n)
				// Concurrent writers, so that the group writer fills its batches.
				var wg sync.WaitGroup
				errs := make(chan error, len(creds))
				for w := range 64 {
					wg.Go(func() {
						for i := w; i < len(creds); i += 64 {
							cr := *creds[i]
							cr.CreatedAt = cr.CreatedAt.Add(time.Duration(i) * time.Microsecond) // the client's is the newest
							if err := st.CreateCredential(ctx, &cr); err != nil {
								errs <- err
								return
							}
						}
					})
				}
				wg.Wait()
				close(errs)
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
				g.Credentials = st
			})
			host, port, _ := net.SplitHostPort(addr)
			cfg, err := pgconn.ParseConfig(fmt.Sprintf("host=%s port=%s user=IAM:u password=pw sslmode=disable database=%s", host, port, g.DefaultDB))
			if err != nil {
				b.Fatal(err)
			}
			login := func() {
				c, err := pgconn.ConnectConfig(ctx, cfg)
				if err != nil {
					b.Fatal(err)
				}
				c.Close(ctx)
			}
			login() // the pooled backend made once
			b.ReportAllocs()
			cpu := benchcpu.Start(b)
			for b.Loop() {
				login()
			}
			cpu.Report()
		})
	}
}
