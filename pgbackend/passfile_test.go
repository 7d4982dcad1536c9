package pgbackend_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgbackend"
	"github.com/shiftkey/shiftkey/pgserver"
)

// A backend that asks the provisioning role for a password (password login
// mode: admin_user is not a managed role) is reached with the password a
// passfile line for that backend, role and database gives, as libpq reads
// one: the line names the backend's own host, port and user.
func TestAdminPasswordFromPassfile(t *testing.T) {
	srv := pgtest.Start(t, func(c *pgserver.Config) {
		c.HBA = []string{"local all pwadmin scram-sha-256"}
	})
	ctx := context.Background()
	su, err := pgx.Connect(ctx, srv.ConnString(srv.Superuser(), "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer su.Close(ctx)
	if _, err := su.Exec(ctx, "CREATE ROLE pwadmin LOGIN CREATEROLE PASSWORD 'admin-pw'"); err != nil {
		t.Fatal(err)
	}
	passfile := filepath.Join(t.TempDir(), "pgpass")
	// libpq and pgconn match a socket directory's connections as localhost.
	line := fmt.Sprintf("localhost:%d:postgres:pwadmin:admin-pw\n", srv.Port())
	if err := os.WriteFile(passfile, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGPASSFILE", passfile)
	t.Setenv("PGPASSWORD", "")
	b, err := pgbackend.New(ctx, pgbackend.Config{Host: srv.SocketDir(), Port: srv.Port(), AdminUser: "pwadmin", AdminDatabase: "postgres",
		PasswordFor: func(role string) string { return "gateway-secret-for-" + role }})
	if err != nil {
		t.Fatalf("admin login with the passfile's password: %v", err)
	}
	b.Close()
}

// The string the admin's settings are parsed from reads back as them, quotes
// and spaces included, and leaves unset ones to the defaults.
func TestAdminConnStringQuoting(t *testing.T) {
	cfg, err := pgconn.ParseConfig(pgbackend.ConnString(`/run/my pg`, 6543, `o'neil\x`, "my db"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != `/run/my pg` || cfg.Port != 6543 || cfg.User != `o'neil\x` || cfg.Database != "my db" {
		t.Fatalf("parsed back as host %q port %d user %q database %q", cfg.Host, cfg.Port, cfg.User, cfg.Database)
	}
	if got := pgbackend.ConnString("", 0, "", ""); got != "" {
		t.Fatalf("nothing given: %q", got)
	}
}
