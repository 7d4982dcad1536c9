package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgserver"
	"github.com/shiftkey/shiftkey/postgres"
)

// Found in review-gcommit: a store server that is a hot standby (what the
// store's address reaches for a moment during a failover: a demoted
// primary, a reader the name still points to) takes connections and reads
// but refuses writes with 25006 (read_only_sql_transaction). The group
// writer took that for its writes' fault and each issue failed with the
// raw error, answered InternalFailure (500), where the docs promise
// ServiceUnavailable while the store fails over. Now it is
// ServiceUnavailable, and issuing works again once the server is
// promoted.
func TestHotStandbyStoreFailsIssuesUnavailable(t *testing.T) {
	ctx := context.Background()
	srv := pgtest.Start(t)
	url := srv.ConnString(srv.Superuser(), "postgres")
	db := open(t, url)
	if err := db.CreateCredential(ctx, testCredential("before", "u")); err != nil {
		t.Fatal(err)
	}

	pgtest.PgCtl(t, srv, "stop", "-m", "fast", "-w", "-t", "60", "-s")
	if err := os.WriteFile(filepath.Join(srv.DataDir(), "standby.signal"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	pgtest.PgCtl(t, srv, "start", "-w", "-t", "60", "-s", "-l", filepath.Join(srv.DataDir(), "standby.log"), "-o", "-c hot_standby=on")
	waitFor(t, 30*time.Second, "the standby to take connections", func() bool {
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			return false
		}
		defer c.Close(ctx)
		var rec bool
		return c.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&rec) == nil && rec
	})

	for i := range 2 { // the first may meet the connection the restart closed
		err := db.CreateCredential(ctx, testCredential("standby"+string(rune('a'+i)), "u"))
		if err == nil {
			t.Fatal("a credential was stored on a hot standby")
		}
		if !errors.Is(err, shiftkey.ErrStoreUnavailable) && shiftkey.ErrorCode(err) != shiftkey.CodeServiceUnavailable {
			t.Fatalf("issue %d on a hot standby: %v, want the store unavailable (ServiceUnavailable)", i, err)
		}
	}

	pgtest.PgCtl(t, srv, "promote", "-w", "-t", "60", "-s")
	waitFor(t, 30*time.Second, "an issue to succeed once the standby is promoted", func() bool {
		return db.CreateCredential(ctx, testCredential("after"+time.Now().Format("150405.000000"), "u")) == nil
	})
}

// switchProxy forwards TCP connections to the socket target names at
// accept time, as a DNS name of the store does across a failover; cut
// ends the connections open through it (the old primary going away).
type switchProxy struct {
	l      net.Listener
	mu     sync.Mutex
	target string
	conns  []net.Conn
}

func newSwitchProxy(t *testing.T, target string) *switchProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{l: l, target: target}
	t.Cleanup(func() { l.Close(); p.cut() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			s, err := net.Dial("unix", p.target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	return p
}

func (p *switchProxy) point(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

func (p *switchProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func socketOf(srv *pgserver.Server) string {
	return filepath.Join(srv.SocketDir(), ".s.PGSQL."+strconv.Itoa(srv.Port()))
}

// failover opens a store through an address (a TCP proxy) that names a
// primary, then fails over: the old connections end and the address
// reaches a hot standby (with the store's schema: migrated while it was a
// primary) until the test points it back at the primary, the new one.
func failover(t *testing.T) (db *postgres.DB, p *switchProxy, primary, standby *pgserver.Server) {
	t.Helper()
	primary, standby = pgtest.Start(t), pgtest.Start(t)
	sdb := open(t, standby.ConnString(standby.Superuser(), "postgres"))
	sdb.Close()
	pgtest.PgCtl(t, standby, "stop", "-m", "fast", "-w", "-t", "60", "-s")
	if err := os.WriteFile(filepath.Join(standby.DataDir(), "standby.signal"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	pgtest.PgCtl(t, standby, "start", "-w", "-t", "60", "-s", "-l", filepath.Join(standby.DataDir(), "standby.log"), "-o", "-c hot_standby=on")

	p = newSwitchProxy(t, socketOf(primary))
	_, port, _ := net.SplitHostPort(p.l.Addr().String())
	db = open(t, "host=127.0.0.1 port="+port+" user="+primary.Superuser()+" dbname=postgres sslmode=disable")
	if err := db.CreateCredential(context.Background(), testCredential("before", "u")); err != nil {
		t.Fatal(err)
	}
	p.point(socketOf(standby))
	p.cut()
	return db, p, primary, standby
}

// refusedByStandby runs write until the standby refuses it (25006): the
// first tries may meet a connection the failover ended.
func refusedByStandby(t *testing.T, write func(i int) error) {
	t.Helper()
	for i := range 3 {
		err := write(i)
		if err == nil {
			t.Fatal("test premise: the standby accepted a write")
		}
		if pe, ok := errors.AsType[*pgconn.PgError](err); ok && pe.Code == "25006" {
			return
		}
	}
	t.Fatal("test premise: no write reached the standby")
}

// Across a failover behind one address: once the address names the new
// primary, the group writer's next batch reaches it; before, the writer
// kept the standby's connection, every issue failing until that
// connection happened to end.
func TestGroupWriterFollowsTheAddressAfterAStandbyRefusesWrites(t *testing.T) {
	ctx := context.Background()
	db, p, primary, _ := failover(t)
	refusedByStandby(t, func(i int) error { return db.CreateCredential(ctx, testCredential(fmt.Sprint("during", i), "u")) })
	p.point(socketOf(primary))
	for i := range 3 {
		if err := db.CreateCredential(ctx, testCredential(fmt.Sprint("after", i), "u")); err != nil {
			t.Fatalf("issue %d once the address names the new primary: %v", i, err)
		}
	}
}

// The same for the pool's connections (IAM changes, revocations, every
// write but issues): a connection a standby refused a write on is closed,
// so that the pool's next one reaches the new primary; before, the pool
// kept it (and pgxpool recycles a connection only after an hour).
func TestPoolFollowsTheAddressAfterAStandbyRefusesWrites(t *testing.T) {
	ctx := context.Background()
	db, p, primary, _ := failover(t)
	refusedByStandby(t, func(int) error { return db.DeleteCredentials(ctx, "gc", "nobody") })
	p.point(socketOf(primary))
	for i := range 3 {
		if err := db.DeleteCredentials(ctx, "gc", "nobody"); err != nil {
			t.Fatalf("write %d once the address names the new primary: %v", i, err)
		}
	}
}
