package pgbackend_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgbackend"
	"github.com/shiftkey/shiftkey/pgserver"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func query(t *testing.T, c *pgbackend.Conn, sql string) string {
	t.Helper()
	fe := pgproto3.NewFrontend(c, c)
	fe.Send(&pgproto3.Query{String: sql})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var out string
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			out = string(m.Values[0])
		case *pgproto3.ErrorResponse:
			t.Fatalf("%s: %s", sql, m.Message)
		case *pgproto3.ReadyForQuery:
			return out
		}
	}
}

// Gateway-only password mode: managed roles get a password only the
// gateway knows, and the backend demands it.
func TestGatewayOnlyPassword(t *testing.T) {
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
	lease, _, err := b.Prepare(ctx, "pwuser", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release(ctx)
	c, err := b.Connect(ctx, "pwuser", "postgres", nil)
	if err != nil {
		t.Fatalf("login with the gateway-only password: %v", err)
	}
	if u := query(t, c, "SELECT current_user"); u != "pwuser" {
		t.Fatalf("current_user %q", u)
	}
	c.Close()

	// Without the password the backend refuses the managed role.
	if _, err := pgx.Connect(ctx, srv.ConnString("pwuser", "postgres")); err == nil {
		t.Fatal("a managed role logged in without its password")
	}
	// A role shiftkey does not manage is never given a password.
	admin, err := pgx.Connect(ctx, srv.ConnString(srv.Superuser(), "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE ROLE outsider LOGIN"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Prepare(ctx, "outsider", false, nil); err != nil {
		t.Fatal(err)
	}
	var pw *string
	if err := admin.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = 'outsider'").Scan(&pw); err != nil || pw != nil {
		t.Fatalf("unmanaged role altered: password %v %v", pw, err)
	}
	var managedPW string
	if err := admin.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = 'pwuser'").Scan(&managedPW); err != nil || len(managedPW) < 14 || managedPW[:14] != "SCRAM-SHA-256$" {
		t.Fatalf("managed role's stored password %q %v: want a SCRAM verifier", managedPW, err)
	}
}
