// Package pgtest starts throwaway PostgreSQL servers for tests.
//
// Use Main from TestMain to share one server per test binary, then
// NewDatabase for a fresh database per test. Without the PostgreSQL
// binaries tests are skipped locally and fail when CI=true.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shiftkey/shiftkey/devca"
	"github.com/shiftkey/shiftkey/pgserver"
)

var (
	shared     *pgserver.Server
	sharedErr  error
	dbCounter  atomic.Int64
	inCI       = os.Getenv("CI") == "true"
	startLimit = 2 * time.Minute
)

// tempDir makes a directory the postgres OS user can traverse when running
// as root (MkdirTemp creates 0700).
func tempDir() (string, error) {
	d, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return "", err
	}
	return d, os.Chmod(d, 0o755)
}

func startIn(dir string, configure ...func(*pgserver.Config)) (*pgserver.Server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), startLimit)
	defer cancel()
	cfg := pgserver.Config{DataDir: dir + "/data", SocketDir: dir + "/run"}
	for _, f := range configure {
		f(&cfg)
	}
	return pgserver.Start(ctx, cfg)
}

// Main starts the shared server, runs the tests and stops it.
func Main(m *testing.M) {
	if _, err := pgserver.FindBinDir(); err != nil {
		if inCI {
			fmt.Fprintln(os.Stderr, "FAIL:", err)
			os.Exit(1)
		}
		sharedErr = err
		os.Exit(m.Run())
	}
	dir, err := tempDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
	shared, err = startIn(dir)
	if err != nil {
		os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, "FAIL: start PostgreSQL:", err)
		os.Exit(1)
	}
	code := m.Run()
	shared.Stop(context.Background())
	os.RemoveAll(dir)
	tlsShared.mu.Lock()
	if tlsShared.srv != nil {
		tlsShared.srv.Stop(context.Background())
		os.RemoveAll(tlsShared.dir)
	}
	tlsShared.mu.Unlock()
	os.Exit(code)
}

// tlsShared is the shared server with TLS, started by the first TLSServer.
var tlsShared struct {
	mu  sync.Mutex
	srv *pgserver.Server
	ca  *devca.CA
	dir string
	err error
}

// TLSServer returns a shared server with TLS that logs in loopback
// connections by client certificate (hostssl … cert, the CN naming the
// role), as shiftkey's provisioned backends do, and the CA that signs its
// certificate and the clients'. It starts with the first test that asks,
// and stops with the shared server (Main).
func TLSServer(tb testing.TB) (*pgserver.Server, *devca.CA) {
	tb.Helper()
	Server(tb) // skips where there is no PostgreSQL
	tlsShared.mu.Lock()
	defer tlsShared.mu.Unlock()
	if tlsShared.srv == nil && tlsShared.err == nil {
		tlsShared.err = func() error {
			dir, err := tempDir()
			if err != nil {
				return err
			}
			tlsShared.dir = dir
			ca, err := devca.LoadOrCreate(dir + "/ca")
			if err != nil {
				return err
			}
			cert, key, caPEM, err := ca.ServerFiles("127.0.0.1", "localhost")
			if err != nil {
				return err
			}
			srv, err := startIn(dir, func(c *pgserver.Config) {
				c.AnyPort = true
				c.TLS = &pgserver.TLSFiles{Cert: cert, Key: key, CA: caPEM}
			})
			if err != nil {
				return err
			}
			tlsShared.srv, tlsShared.ca = srv, ca
			return nil
		}()
	}
	if tlsShared.err != nil {
		tb.Fatal("start PostgreSQL with TLS:", tlsShared.err)
	}
	return tlsShared.srv, tlsShared.ca
}

func unavailable(tb testing.TB, err error) {
	tb.Helper()
	if inCI {
		tb.Fatal(err)
	}
	tb.Skip(err)
}

// Server returns the shared server.
func Server(tb testing.TB) *pgserver.Server {
	tb.Helper()
	if shared == nil {
		if sharedErr == nil {
			sharedErr = fmt.Errorf("pgtest.Main was not called from TestMain")
		}
		unavailable(tb, sharedErr)
	}
	return shared
}

// NewDatabase creates a fresh database on the shared server, dropped at cleanup.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	s := Server(tb)
	name := fmt.Sprintf("t%d_%s", dbCounter.Add(1), strings.ToLower(sanitize(tb.Name())))
	if len(name) > 60 {
		name = name[:60]
	}
	ctx := context.Background()
	if err := s.CreateDatabase(ctx, name); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		conn, err := pgx.Connect(ctx, s.ConnString(s.Superuser(), "postgres"))
		if err != nil {
			tb.Error(err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			tb.Error(err)
		}
	})
	return name
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// Start starts a dedicated server for one test, stopped at cleanup;
// configure may adjust its configuration (pg_hba lines, TLS, …).
func Start(tb testing.TB, configure ...func(*pgserver.Config)) *pgserver.Server {
	tb.Helper()
	if _, err := pgserver.FindBinDir(); err != nil {
		unavailable(tb, err)
	}
	dir, err := tempDir()
	if err != nil {
		tb.Fatal(err)
	}
	s, err := startIn(dir, configure...)
	if err != nil {
		os.RemoveAll(dir)
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		s.Stop(context.Background())
		os.RemoveAll(dir)
	})
	return s
}

// PgCtl runs pg_ctl -D (srv's data dir) args, as the server's OS user:
// for a test that stops or starts a server of its own (Start) under it.
// Stop it with pg_ctl, not srv.Stop, so that the cleanup still stops it.
func PgCtl(tb testing.TB, srv *pgserver.Server, args ...string) {
	tb.Helper()
	bin, err := pgserver.FindBinDir()
	if err != nil {
		tb.Fatal(err)
	}
	argv := append([]string{filepath.Join(bin, "pg_ctl"), "-D", srv.DataDir()}, args...)
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--"}, argv...)...)
	} else {
		cmd = exec.Command(argv[0], argv[1:]...)
	}
	cmd.Dir = "/"
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("pg_ctl %v: %v\n%s", args, err, out)
	}
}

// StartInRecovery starts srv, stopped (PgCtl stop), held in recovery
// until PgCtl(tb, srv, "promote", "-w"): a standby without hot standby,
// which refuses every connection with SQLSTATE 57P03 ("the database
// system is starting up", then "... is not accepting connections"), as a
// server starting up does, for as long as the test needs. It returns
// once a connection gets 57P03.
func StartInRecovery(tb testing.TB, srv *pgserver.Server) {
	tb.Helper()
	if err := os.WriteFile(filepath.Join(srv.DataDir(), "standby.signal"), nil, 0o644); err != nil {
		tb.Fatal(err)
	}
	PgCtl(tb, srv, "start", "-W", "-s", "-l", filepath.Join(srv.DataDir(), "recovery.log"), "-o", "-c hot_standby=off")
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := pgx.Connect(ctx, srv.ConnString(srv.Superuser(), "postgres"))
		if err == nil {
			c.Close(ctx)
			tb.Fatal("a standby with hot_standby=off accepted a connection")
		}
		if pe, ok := errors.AsType[*pgconn.PgError](err); ok && pe.Code == "57P03" {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the server in recovery did not answer 57P03 within 30 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
