package pgbackend_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

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
	// One PBKDF2 iteration: the gateway derives the password again at every
	// backend login, and 256 random bits need no stretching.
	if err := admin.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = 'pwuser'").Scan(&managedPW); err != nil || !strings.HasPrefix(managedPW, "SCRAM-SHA-256$1:") {
		t.Fatalf("managed role's stored password %q %v: want a SCRAM verifier of 1 iteration", managedPW, err)
	}

	// Dropped out-of-band: within the role-exists window Prepare trusts its
	// cache and the login fails; the next Prepare creates the role again,
	// and gives the new role its password.
	if _, err := admin.Exec(ctx, "DROP ROLE pwuser"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Prepare(ctx, "pwuser", true, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Connect(ctx, "pwuser", "postgres", nil); err == nil {
		t.Fatal("login as a dropped role succeeded")
	}
	if _, _, err := b.Prepare(ctx, "pwuser", true, nil); err != nil {
		t.Fatal(err)
	}
	c, err = b.Connect(ctx, "pwuser", "postgres", nil)
	if err != nil {
		t.Fatalf("login after the role was created again: %v", err)
	}
	c.Close()
}

// A role seen to exist is not looked up again for RoleExistsTTL: Prepare
// makes no admin query then. Shown by dropping the role out-of-band: with
// AutoCreate, a lookup would create it again at once.
func TestRoleExistsCached(t *testing.T) {
	srv := pgtest.Server(t)
	ctx := context.Background()
	b, err := pgbackend.New(ctx, pgbackend.Config{Host: srv.SocketDir(), Port: srv.Port(), AdminUser: srv.Superuser()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	clock := time.Now()
	pgbackend.SetClock(b, func() time.Time { return clock })
	admin, err := pgx.Connect(ctx, srv.ConnString(srv.Superuser(), "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	const role = "exists_cache_user"
	// A defer, not t.Cleanup: that would run after admin is closed, and a
	// second -count would meet the roles.
	defer admin.Exec(ctx, "DROP ROLE IF EXISTS "+role+", exists_cache_group")
	exists := func() bool {
		t.Helper()
		var n int
		if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname = $1", role).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	drop := func() {
		t.Helper()
		if _, err := admin.Exec(ctx, "DROP ROLE "+role); err != nil {
			t.Fatal(err)
		}
	}
	prepare := func(groups ...string) error {
		t.Helper()
		lease, _, err := b.Prepare(ctx, role, true, groups)
		if err == nil {
			lease.Release(ctx)
		}
		return err
	}

	if err := prepare(); err != nil || !exists() {
		t.Fatalf("first Prepare: %v, role exists %v", err, exists())
	}
	drop()
	clock = clock.Add(pgbackend.RoleExistsTTL - time.Second)
	if err := prepare(); err != nil {
		t.Fatal(err)
	}
	if exists() {
		t.Fatal("Prepare within the window looked the role up (and created it again)")
	}
	// What a role dropped within the window costs: the backend login fails.
	var se *pgbackend.StartupError
	if _, err := b.Connect(ctx, role, "postgres", nil); !errors.As(err, &se) || !strings.Contains(se.Response.Message, "does not exist") {
		t.Fatalf("login as the dropped role: %v; want role does not exist", err)
	}
	// That failure makes the next Prepare look again.
	if err := prepare(); err != nil || !exists() {
		t.Fatalf("Prepare after a failed login: %v, role exists %v", err, exists())
	}
	c, err := b.Connect(ctx, role, "postgres", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	// After the window, Prepare looks again.
	drop()
	clock = clock.Add(pgbackend.RoleExistsTTL)
	if err := prepare(); err != nil || !exists() {
		t.Fatalf("Prepare after the window: %v, role exists %v", err, exists())
	}

	// A GRANT that fails because the role is gone makes the next Prepare look again.
	if _, err := admin.Exec(ctx, "CREATE ROLE exists_cache_group NOLOGIN"); err != nil {
		t.Fatal(err)
	}
	drop()
	if err := prepare("exists_cache_group"); err == nil {
		t.Fatal("GRANT to a dropped role succeeded")
	}
	if err := prepare("exists_cache_group"); err != nil || !exists() {
		t.Fatalf("Prepare after a failed GRANT: %v, role exists %v", err, exists())
	}
}
