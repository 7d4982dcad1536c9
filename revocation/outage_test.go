package revocation_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/postgres"
	"github.com/shiftkey/shiftkey/revocation"
)

// records is a slog handler that keeps every record's level and message,
// at every level.
type records struct {
	mu   sync.Mutex
	list []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, rec.Clone())
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// count is how many records have a message starting with prefix, at
// level (all levels when level is nil).
func (r *records) count(prefix string, level *slog.Level) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rec := range r.list {
		if strings.HasPrefix(rec.Message, prefix) && (level == nil || rec.Level == *level) {
			n++
		}
	}
	return n
}

// oneSession is a gateway with one session open with credential id.
type oneSession struct {
	id         string
	terminated chan string
}

func (g oneSession) CredentialsInUse(login string) []string { return []string{g.id} }
func (g oneSession) Sessions() int                          { return 1 }
func (g oneSession) Terminate(ids map[string]bool) int {
	if ids[g.id] {
		select {
		case g.terminated <- g.id:
		default:
		}
		return 1
	}
	return 0
}

// Found as a known gap: while the shared store is down, the revocation
// watch checks the open sessions' credentials every poll (200 ms in serve,
// the feed being behind), and each failed check was a warning, five a
// second for as long as the outage lasted. It is a warning once per
// outage and a note once the checks work again (as the group-cut feed
// does); the failures between are debug lines.
func TestFailingRevocationChecksAreToldOncePerOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("stops and restarts a PostgreSQL server")
	}
	ctx := context.Background()
	srv := pgtest.Start(t)
	if err := srv.CreateDatabase(ctx, "store"); err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(ctx, srv.ConnString(srv.Superuser(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Now()
	if err := db.CreateCredential(ctx, &shiftkey.Credential{ID: "outage-cred", Cluster: "c", LoginName: "IAM:u", DBUser: "u",
		StoredKey: []byte{1}, ServerKey: []byte{2}, DigestSHA256: []byte{3}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	// Wired as serve wires it (server.watchRevocations), polling faster.
	var logs records
	gw := oneSession{id: "outage-cred", terminated: make(chan string, 1)}
	term := &revocation.Terminator{Store: db, Gateways: func() []revocation.Gateway { return []revocation.Gateway{gw} }, Logger: slog.New(&logs)}
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() { term.Run(runCtx) })
	db.Subscribe(term.Changed)
	wg.Go(func() { term.WhileBehind(runCtx, db.Current, 20*time.Millisecond) })

	const failed, again = "revoked-session check failed", "revoked-session check works again"
	warn, info := slog.LevelWarn, slog.LevelInfo
	waitFor := func(what string, done func() bool) {
		t.Helper()
		for end := time.Now().Add(60 * time.Second); !done(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("waited 60 s for %s; failed checks: %d (%d warnings), notes it works again: %d",
					what, logs.count(failed, nil), logs.count(failed, &warn), logs.count(again, &info))
			}
		}
	}
	outage := func(n int) {
		t.Helper()
		before := logs.count(failed, nil)
		pgtest.PgCtl(t, srv, "stop", "-m", "fast", "-w", "-t", "60", "-s")
		waitFor("ten failed checks", func() bool { return logs.count(failed, nil) >= before+10 })
		if got := logs.count(failed, &warn); got != n {
			t.Errorf("%d warnings of failed checks after %d outages (%d failed checks), want %d", got, n, logs.count(failed, nil), n)
		}
		pgtest.PgCtl(t, srv, "start", "-w", "-t", "60", "-s", "-l", srv.DataDir()+"/restart.log")
		waitFor("the checks to work again", func() bool { return logs.count(again, &info) >= n })
	}
	outage(1)
	outage(2)
	if got := logs.count(failed, &warn); got != 2 {
		t.Errorf("%d warnings of failed checks for two outages, want 2", got)
	}
	if got := logs.count(again, &info); got != 2 {
		t.Errorf("%d notes that the checks work again for two outages, want 2", got)
	}

	// And the watch still does its work: a revocation with terminate
	// ends the session.
	if _, err := revocation.Revoke(ctx, db, shiftkey.CredentialFilter{ID: "outage-cred"}, time.Now(), true, io.Discard); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gw.terminated:
	case <-time.After(60 * time.Second):
		t.Fatal("the revoked credential's session was not ended within 60 s of the revocation")
	}
}
