package pgbackend_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgbackend"
	"github.com/shiftkey/shiftkey/pgserver"
)

// In gateway-only password mode a session may set its role's password
// itself (ALTER ROLE … PASSWORD needs no privilege for one's own role).
// That must not lock the role's other sessions out of the gateway (an
// IAMR: role is shared by every session of the IAM role), and the
// password it chose must not outlive the role's next gateway login.
func TestPasswordSetBySessionIsReplacedAtNextLogin(t *testing.T) {
	srv := pgtest.Start(t, func(c *pgserver.Config) {
		c.HBA = []string{"local all +" + pgbackend.ManagedRole + " scram-sha-256"}
	})
	ctx := context.Background()
	b, err := pgbackend.New(ctx, pgbackend.Config{Host: srv.SocketDir(), Port: srv.Port(), AdminUser: srv.Superuser(),
		PasswordFor: func(role string) string { return "gateway-secret-for-" + role }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	session := func() *pgbackend.Conn {
		t.Helper()
		lease, _, err := b.Prepare(ctx, "pwself", true, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { lease.Release(ctx) })
		c, err := b.Connect(ctx, "pwself", "postgres", nil)
		if err != nil {
			t.Fatalf("gateway login after a session set its own password: %v", err)
		}
		return c
	}
	c := session()
	query(t, c, "ALTER ROLE pwself PASSWORD 'chosen-by-the-session'")
	c.Close()

	c = session()
	if u := query(t, c, "SELECT current_user"); u != "pwself" {
		t.Fatalf("current_user %q", u)
	}
	c.Close()
	if direct, err := pgx.Connect(ctx, srv.ConnString("pwself", "postgres")+" password=chosen-by-the-session"); err == nil {
		direct.Close(ctx)
		t.Fatal("the password a session chose still logs in after the role's next gateway login")
	}
}
