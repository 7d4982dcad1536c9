package pgwire

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey/devca"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgserver"
)

// A backend that speaks TLS (certificate login) stays one pooled backend
// as its sessions cross relays: a plaintext client on a loop
// (which keeps it as a bare socket with its record state), a TLS 1.2
// client on the goroutine relay (which takes it through shiftkey's record
// layer in Go, the reset's answer opened by the taker), a TLS 1.3 client
// on the loop again (which takes it back from Go), and a plaintext one.
// Each session finds it reset, and PostgreSQL reports it as TLS.
func TestTLSBackendPooledAcrossRelays(t *testing.T) {
	engines(t, testTLSBackendPooledAcrossRelays)
}

func testTLSBackendPooledAcrossRelays(t *testing.T, engine string) {
	r := eventRelay(t, 1, engine)
	cfg, _ := testTLS(t)
	g, addr := newGateway(t, func(g *Gateway) { useTLSBackend(t, g); g.Relay, g.TLS, g.PoolSize = r, cfg, 1 })
	host, port, _ := net.SplitHostPort(addr)
	ctx := context.Background()
	session := func(mode string) string {
		t.Helper()
		max := uint16(0)
		if m, ok := strings.CutSuffix(mode, " tls12"); ok {
			mode, max = m, tls.VersionTLS12
		}
		c, err := connectMax(ctx, fmt.Sprintf("host=%s port=%s user=IAM:u password=pw %s", host, port, mode), max)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		defer c.Close(ctx)
		if got := simple(t, c, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"); got != "t" {
			t.Fatalf("%s: the backend connection is not TLS: %q", mode, got)
		}
		if got := simple(t, c, "SELECT current_setting('work_mem')"); got != "4MB" {
			t.Fatalf("%s: work_mem %s left by the previous session", mode, got)
		}
		simple(t, c, "SET work_mem = '9MB'")
		return simple(t, c, "SELECT pg_backend_pid()")
	}
	pooled := func() {
		t.Helper()
		if !waitUntil(10*time.Second, func() bool { return g.pooledCount() == 1 }) {
			t.Fatal("the backend was not pooled")
		}
	}
	var pids []string
	for _, mode := range []string{"sslmode=disable", "sslmode=require tls12", "sslmode=require", "sslmode=disable"} {
		pids = append(pids, session(mode))
		pooled()
	}
	for _, p := range pids[1:] {
		if p != pids[0] {
			t.Fatalf("backend pids %v: want one backend throughout", pids)
		}
	}
	if st := r.Stats(); st.Started != 3 || st.StartedTLS != 1 || st.StartedBackendTLS != 3 {
		t.Fatalf("%d sessions on the event relay, %d with a TLS client, %d with a TLS backend; want 3, 1, 3", st.Started, st.StartedTLS, st.StartedBackendTLS)
	}
}

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
