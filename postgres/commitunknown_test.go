package postgres_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/postgres"
	"github.com/shiftkey/shiftkey/secretbox"
)

// commitCutter is a TCP proxy in front of the test server's socket that,
// when armed, lets the group writer's next transaction commit on the
// server and then cuts the connection before the client reads the commit's
// ReadyForQuery: the commit-unknown case of a connection lost after COMMIT
// was sent.
type commitCutter struct {
	l     net.Listener
	dst   string
	armed atomic.Bool
	// armedQuery, when set, cuts the answer to the next simple-query
	// COMMIT instead (an explicit transaction's, as pgx.Tx sends it);
	// dropQuery drops that COMMIT before the server sees it, then cuts.
	armedQuery, dropQuery atomic.Bool
	// closedAfterCut, when set, makes the proxy refuse every connection
	// once it has cut a commit (the server unreachable after).
	closedAfterCut, refusing atomic.Bool
	cuts                     atomic.Int64
}

func newCommitCutter(t *testing.T, socket string) *commitCutter {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &commitCutter{l: l, dst: socket}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			if c.refusing.Load() {
				conn.Close()
				continue
			}
			go c.serve(conn)
		}
	}()
	return c
}

// cutDatabase is a new database of the test server, the URL that reaches
// it through a commitCutter, and its direct URL.
func cutDatabase(t *testing.T) (cut *commitCutter, url, direct string) {
	srv := pgtest.Server(t)
	dbName := pgtest.NewDatabase(t)
	direct = srv.ConnString(srv.Superuser(), dbName)
	cut = newCommitCutter(t, filepath.Join(srv.SocketDir(), ".s.PGSQL."+strconv.Itoa(srv.Port())))
	_, port, _ := net.SplitHostPort(cut.l.Addr().String())
	url = fmt.Sprintf("host=127.0.0.1 port=%s user=%s dbname=%s sslmode=disable", port, srv.Superuser(), dbName)
	return cut, url, direct
}

// readMsg reads one typed message (or, with typed false, the startup
// message) whole.
func readMsg(r io.Reader, typed bool) ([]byte, error) {
	n := 4
	if typed {
		n = 5
	}
	head := make([]byte, n)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(head[n-4:])
	msg := make([]byte, n+int(size)-4)
	copy(msg, head)
	_, err := io.ReadFull(r, msg[n:])
	return msg, err
}

func (c *commitCutter) serve(client net.Conn) {
	server, err := net.Dial("unix", c.dst)
	if err != nil {
		client.Close()
		return
	}
	var writer atomic.Bool // this connection prepared the credential insert
	var cutAfterSync atomic.Bool
	stop := func() { client.Close(); server.Close() }
	go func() {
		defer stop()
		first := true
		for {
			m, err := readMsg(client, !first)
			first = false
			if err != nil {
				return
			}
			if m[0] == 'P' && bytes.Contains(m, []byte("INSERT INTO credentials")) {
				writer.Store(true)
			}
			if m[0] == 'S' && writer.Load() && c.armed.CompareAndSwap(true, false) {
				cutAfterSync.Store(true)
			}
			if m[0] == 'Q' && bytes.EqualFold(bytes.TrimRight(m[5:], "\x00; "), []byte("commit")) {
				if c.dropQuery.CompareAndSwap(true, false) {
					c.cuts.Add(1)
					return
				}
				if c.armedQuery.CompareAndSwap(true, false) {
					cutAfterSync.Store(true)
				}
			}
			if _, err := server.Write(m); err != nil {
				return
			}
		}
	}()
	defer stop()
	first := true
	for {
		m, err := readMsg(server, true)
		if err != nil {
			return
		}
		if first && m[0] == 'N' { // not expected: sslmode=disable
			return
		}
		first = false
		if m[0] == 'Z' && cutAfterSync.Load() {
			// The server committed and said so; the client never hears it.
			c.refusing.Store(c.closedAfterCut.Load())
			c.cuts.Add(1)
			return
		}
		if _, err := client.Write(m); err != nil {
			return
		}
	}
}

// A connection lost after the group writer's COMMIT went out (the server
// committed, the answer never came back): the write is reported failed
// with ServiceUnavailable, as the docs say of a lost connection; it may
// have committed (it did), and nothing is reported written that was not.
func TestCommitUnknownIsReportedUnavailable(t *testing.T) {
	ctx := context.Background()
	cut, url, direct := cutDatabase(t)
	key, _, err := secretbox.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	db := open(t, url, postgres.WithKey(key, ""))
	if err := db.CreateCredential(ctx, testCredential("warm", "u")); err != nil {
		t.Fatal(err)
	}
	check := adminConn(t, direct)
	stored := func(id string) bool {
		var n int
		if err := check.QueryRow(ctx, `SELECT count(*) FROM credentials WHERE id = $1`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}

	// One write alone in its batch.
	cut.armed.Store(true)
	err = db.CreateCredential(ctx, testCredential("alone", "u"))
	if cut.cuts.Load() != 1 {
		t.Fatalf("the proxy cut %d commits, want 1", cut.cuts.Load())
	}
	if !stored("alone") {
		t.Fatal("test premise: the cut commit should have committed")
	}
	if err == nil {
		t.Fatal("a write whose commit's answer was lost was acknowledged")
	}
	t.Logf("the write alone: %v", err)
	if code := shiftkey.ErrorCode(err); !errors.Is(err, shiftkey.ErrStoreUnavailable) && code != shiftkey.CodeServiceUnavailable {
		t.Errorf("a write whose commit's answer was lost: %v (code %q), want the store unavailable (ServiceUnavailable)", err, code)
	}

	// A batch of several: the first write is held on a lock until the
	// others queue behind it, then the proxy lets their batch commit and
	// cuts its answer. Each answer is true to the store, and the failed
	// ones say the store was unavailable.
	// A write first, so that the writer's new connection has its
	// statements prepared (a Parse would wait for the lock, before the
	// batch's Sync is sent).
	if err := db.CreateCredential(ctx, testCredential("rewarm", "u")); err != nil {
		t.Fatal(err)
	}
	taken := postgres.WriterTaken(db)
	release := holdCredentials(t, direct)
	var wg sync.WaitGroup
	errs := make([]error, 16)
	wg.Go(func() { errs[0] = db.CreateCredential(ctx, testCredential("many0", "u")) })
	waitFor(t, 5*time.Second, "the first write to be taken", func() bool { return postgres.WriterTaken(db) == taken+1 })
	waitFor(t, 5*time.Second, "the first write's batch to wait for the lock", func() bool {
		var n int
		if err := check.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	})
	for i := 1; i < len(errs); i++ {
		wg.Go(func() { errs[i] = db.CreateCredential(ctx, testCredential(fmt.Sprint("many", i), "u")) })
	}
	waitFor(t, 5*time.Second, "15 writes queued", func() bool { return postgres.WriterQueued(db) == 15 })
	cut.armed.Store(true)
	release()
	wg.Wait()
	failed := 0
	for i, err := range errs {
		id := fmt.Sprint("many", i)
		switch {
		case err == nil && !stored(id):
			t.Errorf("%s acknowledged but not stored", id)
		case err != nil:
			failed++
			t.Logf("%s: %v", id, err)
			if !stored(id) {
				t.Logf("%s failed and is not stored", id)
			}
			if !errors.Is(err, shiftkey.ErrStoreUnavailable) && shiftkey.ErrorCode(err) != shiftkey.CodeServiceUnavailable {
				t.Errorf("%s: %v (code %q), want the store unavailable (ServiceUnavailable)", id, err, shiftkey.ErrorCode(err))
			}
		}
	}
	if failed != 15 {
		t.Errorf("%d writes failed, want the 15 of the cut batch", failed)
	}
	t.Logf("16 concurrent writes, %d cuts: %d failed", cut.cuts.Load(), failed)
	if err := db.CreateCredential(ctx, testCredential("after", "u")); err != nil {
		t.Fatalf("a write after the cuts: %v", err)
	}
}

// A config apply (Declaring) whose COMMIT's answer is lost: the store asks
// the server what became of the transaction, so that a reload never says
// "none applied" of changes that are in the store, nor "applied" of ones
// that are not.
func TestDeclaringCommitLostIsSettled(t *testing.T) {
	ctx := context.Background()
	cut, url, direct := cutDatabase(t)
	db := open(t, url)
	check := adminConn(t, direct)
	marked := func(id string) bool {
		var n int
		if err := check.QueryRow(ctx, `SELECT count(*) FROM declared_entities WHERE id = $1`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	apply := func(id string) error {
		return db.Declaring(ctx, func(ctx context.Context) error {
			return db.MarkDeclared(ctx, shiftkey.DeclaredRef{Kind: shiftkey.KindUser, ID: id, Name: id})
		})
	}

	// The server committed; its answer never came.
	cut.armedQuery.Store(true)
	err := apply("AIDACOMMITTED")
	if cut.cuts.Load() != 1 {
		t.Fatalf("the proxy cut %d commits, want 1", cut.cuts.Load())
	}
	if !marked("AIDACOMMITTED") {
		t.Fatal("test premise: the cut commit should have committed")
	}
	if err != nil {
		t.Errorf("an apply that committed (its answer lost) answered %v, want success", err)
	}

	// The COMMIT never reached the server: the transaction aborted with
	// the connection, and the apply says it failed, its outcome known.
	cut.dropQuery.Store(true)
	err = apply("AIDAABORTED")
	if cut.cuts.Load() != 2 {
		t.Fatalf("the proxy cut %d commits, want 2", cut.cuts.Load())
	}
	if marked("AIDAABORTED") {
		t.Fatal("test premise: the dropped commit should not have committed")
	}
	if err == nil {
		t.Error("an apply whose COMMIT never reached the server answered success")
	} else if errors.Is(err, shiftkey.ErrCommitUnknown) {
		t.Errorf("an apply known to have aborted answered %v, want a failure whose outcome is known", err)
	}

	// And the store goes on: the next apply commits.
	if err := apply("AIDAAFTER"); err != nil || !marked("AIDAAFTER") {
		t.Fatalf("the next apply: %v, marked %v", err, marked("AIDAAFTER"))
	}
}

// A store whose pool is one connection (pool_max_conns=1) holds it for the
// config apply's lock: the lost COMMIT's outcome is still asked of the
// server, not waited for on the pool the dead connection still counts in.
func TestDeclaringCommitLostIsSettledOnAFullPool(t *testing.T) {
	ctx := context.Background()
	cut, url, direct := cutDatabase(t)
	db := open(t, url, postgres.WithMaxConns(1))
	check := adminConn(t, direct)
	cut.armedQuery.Store(true)
	err := db.Declaring(ctx, func(ctx context.Context) error {
		return db.MarkDeclared(ctx, shiftkey.DeclaredRef{Kind: shiftkey.KindUser, ID: "AIDAFULLPOOL", Name: "fullpool"})
	})
	if cut.cuts.Load() != 1 {
		t.Fatalf("the proxy cut %d commits, want 1", cut.cuts.Load())
	}
	var n int
	if err := check.QueryRow(ctx, `SELECT count(*) FROM declared_entities WHERE id = 'AIDAFULLPOOL'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("test premise: the cut commit should have committed (%d rows, %v)", n, err)
	}
	if err != nil {
		t.Errorf("an apply that committed (its answer lost) on a one-connection pool answered %v, want success", err)
	}
}

// A config apply whose COMMIT's answer is lost while the server then stays
// unreachable: the store cannot learn the outcome, and says so
// (shiftkey.ErrCommitUnknown, which serve and reload report as "may or may
// not be in the store"), neither success nor "none applied".
func TestDeclaringCommitLostAndServerUnreachableIsUnknown(t *testing.T) {
	ctx := context.Background()
	cut, url, direct := cutDatabase(t)
	db := open(t, url)
	check := adminConn(t, direct)
	cut.closedAfterCut.Store(true)
	cut.armedQuery.Store(true)
	err := db.Declaring(ctx, func(ctx context.Context) error {
		return db.MarkDeclared(ctx, shiftkey.DeclaredRef{Kind: shiftkey.KindUser, ID: "AIDAUNKNOWN", Name: "unknown"})
	})
	if cut.cuts.Load() != 1 {
		t.Fatalf("the proxy cut %d commits, want 1", cut.cuts.Load())
	}
	var n int
	if err := check.QueryRow(ctx, `SELECT count(*) FROM declared_entities WHERE id = 'AIDAUNKNOWN'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("test premise: the cut commit should have committed (%d rows, %v)", n, err)
	}
	if !errors.Is(err, shiftkey.ErrCommitUnknown) {
		t.Fatalf("an apply whose outcome the store could not learn answered %v, want ErrCommitUnknown", err)
	}
}
