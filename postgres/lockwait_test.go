package postgres_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// syncBuffer is a bytes.Buffer several goroutines may write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A replica whose start waits for the declared-state lock that another
// holds (a replica paused or hung while applying its config: a stopped
// process's connection stays open, so the lock is held until it resumes)
// says so, naming the holder, instead of hanging in silence.
func TestDeclaringWaitNamesTheHolder(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	db := open(t, url)
	var logs syncBuffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["application_name"] = "paused-replica"
	holder, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	const declaringLock = 0x6465636c61726564 // postgres.declaringLock
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(declaringLock)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- db.Declaring(ctx, func(context.Context) error { return nil }) }()
	waitFor(t, 5*time.Second, "the waiting replica logs that it waits and for whom", func() bool {
		s := logs.String()
		return strings.Contains(s, "waiting") && strings.Contains(s, "paused-replica")
	})
	select {
	case err := <-done:
		t.Fatalf("Declaring returned (%v) while the lock was held", err)
	default:
	}
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_unlock($1)`, int64(declaringLock)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Declaring did not go on once the lock was released")
	}
}
