package pgserver_test

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgserver"
)

// Found in an operator-surface review: run as root, pgserver writes its
// configuration into the data dir, which the postgres OS user owns, with
// os.WriteFile and os.Chown, and creates the server log so: both follow a
// symbolic link. Whoever runs as postgres (the server itself; in dev, any
// holder of the superuser awsuser's credentials, through COPY ... TO
// PROGRAM) could link pg_hba.conf, shiftkey.conf or postgresql.log to a
// root file (/etc/shadow): at the next start root wrote over it and gave
// it to postgres; a linked postgresql.conf was read and written back the
// same way. Files are now written under a fresh name and renamed into
// place, owned through their descriptor, and nothing is read or opened
// through a link.
func TestRestartWritesNoFileThroughALinkThePostgresUserPlanted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the data dir is then the postgres OS user's")
	}
	pg, err := user.Lookup("postgres")
	if err != nil {
		t.Skip(err)
	}
	pgUID, _ := strconv.Atoi(pg.Uid)
	pgGID, _ := strconv.Atoi(pg.Gid)
	ctx := context.Background()
	s := pgtest.Start(t)
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	rootOnly := t.TempDir() // root's, open to all as /etc is; its files root's alone
	if err := os.Chmod(rootOnly, 0o755); err != nil {
		t.Fatal(err)
	}
	victims := map[string]string{}
	plant := func(name string) string {
		victim := filepath.Join(rootOnly, name)
		if err := os.WriteFile(victim, []byte("root's "+name), 0o600); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(s.DataDir(), name)
		os.Remove(link)
		if err := os.Symlink(victim, link); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(link, pgUID, pgGID); err != nil {
			t.Fatal(err)
		}
		victims[victim] = "root's " + name
		return victim
	}
	for _, name := range []string{"pg_hba.conf", "shiftkey.conf", "postgresql.log"} {
		plant(name)
	}
	check := func() {
		t.Helper()
		for victim, want := range victims {
			fi, err := os.Stat(victim)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(victim)
			if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != 0 || string(b) != want {
				t.Errorf("%s: owner uid %d, holds %q; want root's, unchanged", filepath.Base(victim), uid, b)
			}
		}
	}
	s2, err := pgserver.Start(ctx, pgserver.Config{DataDir: s.DataDir(), SocketDir: s.SocketDir()})
	check()
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	if err := s2.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	// postgresql.conf is read, then written back: a link there is refused.
	secret := plant("postgresql.conf")
	s3, err := pgserver.Start(ctx, pgserver.Config{DataDir: s.DataDir(), SocketDir: s.SocketDir()})
	if err == nil {
		s3.Stop(ctx)
	}
	check()
	conf := filepath.Join(s.DataDir(), "postgresql.conf")
	if fi, err := os.Lstat(conf); err == nil && fi.Mode().IsRegular() {
		if b, _ := os.ReadFile(conf); strings.Contains(string(b), victims[secret]) {
			t.Errorf("root's file was copied into the data dir's postgresql.conf")
		}
	}
	if err == nil {
		t.Errorf("a start with postgresql.conf linked to a root file succeeded")
	}
}
