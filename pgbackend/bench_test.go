package pgbackend_test

import (
	"context"
	"testing"

	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgbackend"
)

// BenchmarkPrepare is the per-login provisioning of an existing role that
// asks for no groups, the common case of a new connection per transaction.
func BenchmarkPrepare(b *testing.B) {
	srv := pgtest.Server(b)
	ctx := context.Background()
	be, err := pgbackend.New(ctx, pgbackend.Config{Host: srv.SocketDir(), Port: srv.Port(), AdminUser: srv.Superuser()})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	for b.Loop() {
		lease, _, err := be.Prepare(ctx, "bench_prepare_user", true, nil)
		if err != nil {
			b.Fatal(err)
		}
		lease.Release(ctx)
	}
}
