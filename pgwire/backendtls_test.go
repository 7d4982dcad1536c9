package pgwire

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey/devca"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgserver"
)

// A backend whose TLS a loop cannot carry on (here TLS 1.2, PostgreSQL's
// ssl_max_protocol_version) stays with crypto/tls: its sessions run on the
// goroutine relay, saying why at debug level, and its pooled connection
// serves again.
func TestTLS12BackendFallsBack(t *testing.T) {
	ca, err := devca.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, key, caPEM, err := ca.ServerFiles("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	srv := pgtest.Start(t, func(c *pgserver.Config) {
		c.AnyPort, c.TLS = true, &pgserver.TLSFiles{Cert: cert, Key: key, CA: caPEM}
		c.Settings = map[string]string{"ssl_max_protocol_version": "'TLSv1.2'"}
	})
	engines(t, func(t *testing.T, engine string) {
		r := eventRelay(t, 1, engine)
		var logs lockedBuffer
		g, addr := newGateway(t, func(g *Gateway) {
			g.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			useTLSBackendOn(t, g, srv, ca)
			g.Relay, g.PoolSize = r, 1
		})
		ctx := context.Background()
		var pids []string
		for range 2 {
			c := mustLogin(t, addr)
			if v := simple(t, c, "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"); v != "TLSv1.2" {
				t.Fatalf("backend TLS version %q, want TLSv1.2", v)
			}
			pids = append(pids, simple(t, c, "SELECT pg_backend_pid()"))
			c.Close(ctx)
			if !waitUntil(10*time.Second, func() bool { return g.pooledCount() == 1 }) {
				t.Fatal("the backend was not pooled")
			}
		}
		if pids[0] != pids[1] {
			t.Fatalf("backend pids %v: want the pooled one reused", pids)
		}
		if st := r.Stats(); st.Started != 0 {
			t.Fatalf("%d sessions on the loops with a TLS 1.2 backend", st.Started)
		}
		if recs := logs.records(t, "backend TLS stays with crypto/tls"); len(recs) != 1 || recs[0]["why"] != "not TLS 1.3" {
			t.Fatalf("fallback log records %v, want one saying not TLS 1.3", recs)
		}
		if recs := logs.records(t, "backend TLS stays on the goroutine relay"); len(recs) != 2 {
			t.Fatalf("%d records of sessions kept off the loops, want 2", len(recs))
		}
	})
}
