package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey/postgres"
	"github.com/shiftkey/shiftkey/secretbox"
)

// The store's connections are cut again and again (pg_terminate_backend of
// every one of this database's sessions: the group writer's mid-batch, the
// LISTEN connection, the pool's) while credentials are issued: every
// credential acknowledged is stored, the writer and the feed come back, and
// the feed is current again afterwards.
func TestConnectionsCutUnderIssueLoad(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	key, _, err := secretbox.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	db := open(t, url, postgres.WithKey(key, ""))
	killer, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close(ctx)
	var (
		mu    sync.Mutex
		acked []string
		fails atomic.Int64
		next  atomic.Int64
		wg    sync.WaitGroup
	)
	stop := time.Now().Add(3 * time.Second)
	for range 8 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				id := fmt.Sprint("cut", next.Add(1))
				if err := db.CreateCredential(ctx, testCredential(id, "u")); err != nil {
					fails.Add(1)
					continue
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		})
	}
	cuts := 0
	for time.Now().Before(stop) {
		time.Sleep(150 * time.Millisecond)
		if _, err := killer.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
			t.Fatal(err)
		}
		cuts++
	}
	wg.Wait()
	t.Logf("%d acknowledged, %d failed, %d cuts", len(acked), fails.Load(), cuts)
	if fails.Load() == 0 {
		t.Log("no write failed: the cuts missed every batch")
	}
	var stored []string
	if err := killer.QueryRow(ctx, `SELECT coalesce(array_agg(id), '{}') FROM credentials WHERE id LIKE 'cut%'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, id := range stored {
		have[id] = true
	}
	for _, id := range acked {
		if !have[id] {
			t.Fatalf("credential %s was acknowledged but is not stored", id)
		}
	}
	// Back to normal: a write succeeds and the feed is current again.
	waitFor(t, 10*time.Second, "a credential issues after the cuts", func() bool {
		return db.CreateCredential(ctx, testCredential(fmt.Sprint("after", time.Now().UnixNano()), "u")) == nil
	})
	waitFor(t, 10*time.Second, "the feed is current after the cuts", db.Current)
}
