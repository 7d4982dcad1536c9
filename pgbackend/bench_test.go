package pgbackend_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgbackend"
	"github.com/shiftkey/shiftkey/pgserver"
	"github.com/shiftkey/shiftkey/scram"
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

// BenchmarkPrepareWithGroup is a login that asks for one group, and its
// end: the group's checks (the verdict on what it owns reused for 5 s, as
// in a burst of logins), the GRANT, then the REVOKE.
func BenchmarkPrepareWithGroup(b *testing.B) {
	f := newRaceFixture(b)
	ctx := context.Background()
	be, err := pgbackend.New(ctx, pgbackend.Config{Host: f.srv.SocketDir(), Port: f.srv.Port(), AdminUser: f.srv.Superuser(), AdminDatabase: f.db})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	for b.Loop() {
		lease, notices, err := be.Prepare(ctx, f.role+"_auto", true, []string{f.group})
		if err != nil {
			b.Fatal(err)
		}
		if len(notices) > 0 {
			b.Fatalf("the group was not granted: %v", notices)
		}
		lease.Release(ctx)
	}
}

// BenchmarkPasswordLogin is a backend login in gateway-only password mode
// (pool off), with the managed role's verifier as the gateway sets it (one
// PBKDF2 iteration) and as PostgreSQL's default would have it (4096), side
// by side: the difference is the gateway's PBKDF2 per backend login.
func BenchmarkPasswordLogin(b *testing.B) {
	srv := pgtest.Start(b, func(c *pgserver.Config) {
		c.HBA = []string{"local all +" + pgbackend.ManagedRole + " scram-sha-256"}
	})
	ctx := context.Background()
	password := func(role string) string { return pgbackend.GatewayPassword([]byte("bench secret"), role) }
	be, err := pgbackend.New(ctx, pgbackend.Config{Host: srv.SocketDir(), Port: srv.Port(), AdminUser: srv.Superuser(), PasswordFor: password})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	admin, err := pgx.Connect(ctx, srv.ConnString(srv.Superuser(), "postgres"))
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close(ctx)
	for _, iter := range []int{1, 4096} {
		role := fmt.Sprintf("bench_pw_%d", iter)
		lease, _, err := be.Prepare(ctx, role, true, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer lease.Release(ctx)
		salt := []byte("0123456789abcdef")
		v := scram.Verifier{Iterations: iter, Salt: salt, Keys: scram.NewKeys(password(role), salt, iter)}
		if _, err := admin.Exec(ctx, "ALTER ROLE "+role+" PASSWORD '"+v.String()+"'"); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("iterations=%d", iter), func(b *testing.B) {
			for b.Loop() {
				c, err := be.Connect(ctx, role, "postgres", nil)
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}
