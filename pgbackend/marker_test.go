package pgbackend_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgbackend"
)

// A backend that starts where the marker role exists already (every start
// after the first, every replica but one) must not leave an ERROR in the
// database's log: operators read "role already exists" at each restart as
// something gone wrong. Counted in the shared server's log, where no start
// of this package may add one.
func TestStartLeavesNoErrorWhenTheMarkerRoleExists(t *testing.T) {
	srv := pgtest.Server(t)
	ctx := context.Background()
	cfg := pgbackend.Config{Host: srv.SocketDir(), Port: srv.Port(), AdminUser: srv.Superuser()}
	logPath := filepath.Join(srv.DataDir(), "postgresql.log")
	count := func() int {
		t.Helper()
		b, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(string(b), `role "`+pgbackend.ManagedRole+`" already exists`)
	}
	first, err := pgbackend.New(ctx, cfg) // makes the marker, if no test has
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	before := count()
	for range 3 {
		b, err := pgbackend.New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	if after := count(); after != before {
		t.Fatalf("3 starts beside an existing %s left %d ERROR lines in the database's log (role already exists), want none",
			pgbackend.ManagedRole, after-before)
	}
}
