package pgserver_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey/devca"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgserver"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestSharedServer(t *testing.T) {
	s := pgtest.Server(t)
	db := pgtest.NewDatabase(t)
	conn, err := pgx.Connect(context.Background(), s.ConnString(s.Superuser(), db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var user, gotDB string
	if err := conn.QueryRow(context.Background(), "SELECT current_user, current_database()").Scan(&user, &gotDB); err != nil {
		t.Fatal(err)
	}
	if user != s.Superuser() || gotDB != db {
		t.Fatalf("current_user=%s db=%s", user, gotDB)
	}
	var listen string
	conn.QueryRow(context.Background(), "SHOW listen_addresses").Scan(&listen)
	if listen != "" {
		t.Fatalf("listen_addresses = %q, want no TCP", listen)
	}
	fi, err := os.Stat(s.SocketDir())
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("socket dir mode %v, want 0700", fi.Mode().Perm())
	}
}

// Stop then Start on the same data dir keeps what was written.
func TestRestartKeepsData(t *testing.T) {
	s := pgtest.Start(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.ConnString(s.Superuser(), "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	s2, err := pgserver.Start(ctx, pgserver.Config{DataDir: s.DataDir(), SocketDir: s.SocketDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Stop(ctx)
	conn, err = pgx.Connect(ctx, s2.ConnString(s2.Superuser(), "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v int
	if err := conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != 42 {
		t.Fatalf("after restart: %d %v", v, err)
	}
}

func TestFindBinDir(t *testing.T) {
	t.Setenv("SHIFTKEY_PG_BINDIR", "/nonexistent")
	_, err := pgserver.FindBinDir()
	if !errors.Is(err, pgserver.ErrNotInstalled) || !strings.Contains(err.Error(), "apt-get install -y postgresql") {
		t.Fatalf("bogus SHIFTKEY_PG_BINDIR: %v", err)
	}
	t.Setenv("SHIFTKEY_PG_BINDIR", "")
	d, err := pgserver.FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SHIFTKEY_PG_BINDIR", d)
	if got, err := pgserver.FindBinDir(); err != nil || got != d {
		t.Fatalf("SHIFTKEY_PG_BINDIR=%s: %s %v", d, got, err)
	}
}

// A long data dir path still gets a socket path within the unix limit.
func TestLongDataDir(t *testing.T) {
	pgtest.Server(t) // skip/fail like the others without binaries
	base, err := os.MkdirTemp("", "pgserver-long-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	os.Chmod(base, 0o755)
	long := base + "/" + strings.Repeat("d", 60) + "/" + strings.Repeat("e", 60)
	if err := os.MkdirAll(long, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(base+"/"+strings.Repeat("d", 60), 0o755)
	ctx := context.Background()
	s, err := pgserver.Start(ctx, pgserver.Config{DataDir: long + "/data"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(ctx)
	if len(s.SocketDir()) > 90 {
		t.Fatalf("socket dir %d bytes long", len(s.SocketDir()))
	}
	conn, err := pgx.Connect(ctx, s.ConnString(s.Superuser(), "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	// Found in the last stop note: the short socket dir made under /tmp
	// (skpg-*) stayed there when the server stopped, one more at every
	// start of dev or of a test. It goes with the server now.
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.SocketDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stopped server's socket dir %s is still there: %v", s.SocketDir(), err)
		os.RemoveAll(s.SocketDir())
	}
}

// A start that fails leaves no socket dir under /tmp either.
func TestFailedStartLeavesNoSocketDir(t *testing.T) {
	pgtest.Server(t)
	base := t.TempDir()
	os.Chmod(filepath.Dir(base), 0o755) // the postgres OS user's way in, as root
	os.Chmod(base, 0o755)
	// The short socket dir is made in $TMPDIR: this test's own.
	tmp := filepath.Join(base, "tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", tmp)
	// Binaries that fail: initdb exits 1.
	bin := filepath.Join(base, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
		if err := os.WriteFile(filepath.Join(bin, b), []byte("#!/bin/sh\necho broken >&2\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	long := filepath.Join(base, strings.Repeat("d", 60), strings.Repeat("e", 60))
	_, err := pgserver.Start(context.Background(), pgserver.Config{BinDir: bin, DataDir: filepath.Join(long, "data")})
	if err == nil {
		t.Fatal("a start with an initdb that fails succeeded")
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "skpg-*")); len(left) != 0 {
		t.Errorf("a failed start (%v) left the socket dirs %v", err, left)
	}
}

// A server started on any port picks again when the port it picked is
// taken before PostgreSQL binds it (another process's listener got there
// first), instead of failing its start.
func TestAnyPortPicksAgainWhenTaken(t *testing.T) {
	if _, err := pgserver.FindBinDir(); err != nil {
		t.Skip(err)
	}
	ctx := context.Background()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port
	picks := 0
	defer pgserver.SetFreePort(func() (int, error) {
		picks++
		if picks == 1 {
			return takenPort, nil
		}
		return pgserver.FreePort()
	})()
	base, err := os.MkdirTemp("", "shiftkey-anyport-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755) // as root, the postgres OS user passes through
	ca, err := devca.LoadOrCreate(filepath.Join(base, "tls"))
	if err != nil {
		t.Fatal(err)
	}
	cert, key, caPEM, err := ca.ServerFiles("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	s, err := pgserver.Start(ctx, pgserver.Config{DataDir: filepath.Join(base, "pg"), AnyPort: true,
		TLS: &pgserver.TLSFiles{Cert: cert, Key: key, CA: caPEM}})
	if err != nil {
		t.Fatalf("start with its first port taken: %v", err)
	}
	defer s.Stop(ctx)
	if picks != 2 || s.Port() == takenPort {
		t.Fatalf("picks %d, port %d (taken %d): want a second pick", picks, s.Port(), takenPort)
	}
	conn, err := pgx.Connect(ctx, s.ConnString(s.Superuser(), "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var port string
	if err := conn.QueryRow(ctx, "SHOW port").Scan(&port); err != nil || port != strconv.Itoa(s.Port()) {
		t.Fatalf("server port %q %v, want %d", port, err, s.Port())
	}
}

// A server whose postmaster was killed is not Running, and Revive starts
// it again on its data; a stopped one is never started again.
func TestReviveAfterKill(t *testing.T) {
	s := pgtest.Start(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.ConnString(s.Superuser(), "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	// The test servers commit asynchronously; this commit is in the WAL
	// before it returns, as every commit is in dev's servers.
	if _, err := conn.Exec(ctx, "SET synchronous_commit = on; CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if !s.Running() {
		t.Fatal("a started server is not Running")
	}
	if started, err := s.Revive(ctx); started || err != nil {
		t.Fatalf("Revive of a running server: started %v, %v", started, err)
	}
	pid, err := s.PostmasterPID()
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("postmaster %d still there 30 s after SIGKILL", pid)
		}
	}
	if s.Running() {
		t.Fatal("Running with its postmaster killed")
	}
	// Its children notice the postmaster's death and exit; until then a
	// start fails on their shared memory, as PostgreSQL documents.
	var started bool
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if started, err = s.Revive(ctx); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if !started || err != nil || !s.Running() {
		t.Fatalf("Revive: started %v, %v, running %v", started, err, s.Running())
	}
	conn, err = pgx.Connect(ctx, s.ConnString(s.Superuser(), "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	var v int
	if err := conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != 7 {
		t.Fatalf("after Revive: %d %v", v, err)
	}
	conn.Close(ctx)
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if started, err := s.Revive(ctx); started || !errors.Is(err, pgserver.ErrStopped) {
		t.Fatalf("Revive after Stop: started %v, %v, want ErrStopped", started, err)
	}
}
