package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Found in an operator-surface review: shiftkey dev run as root (as the
// README's `--data-dir /tmp/shiftkey` invites) took a data dir another
// local user had created. Root may chmod it to 0710, but its owner keeps
// every right in it: a dev.env.tmp planted there, the owner's and readable
// by all, was written with the admin's secret key and renamed to dev.env
// (so too a planted shiftkey.db or store.key would be used). Dev now
// refuses a data dir it does not own, as PostgreSQL refuses a data
// directory of the wrong owner.
func TestDevRefusesADataDirAnotherUserOwns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only root can be handed a directory another user owns")
	}
	const nobody = 65534
	dir, err := tempDataDir()
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	planted := filepath.Join(dir, "dev.env.tmp")
	if err := os.WriteFile(planted, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, planted} {
		if err := os.Chown(p, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(planted, 0o666); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := newTestDev(dir)
	err = d.Start(ctx)
	d.Close()
	if err == nil {
		env := filepath.Join(dir, "dev.env")
		fi, serr := os.Stat(env)
		if serr == nil {
			st := fi.Sys().(*syscall.Stat_t)
			b, _ := os.ReadFile(env)
			t.Fatalf("dev started in a data dir uid %d owns; dev.env is mode %04o, owner uid %d, and holds the secret key: %v",
				nobody, fi.Mode().Perm(), st.Uid, strings.Contains(string(b), "AWS_SECRET_ACCESS_KEY="))
		}
		t.Fatalf("dev started in a data dir uid %d owns", nobody)
	}
	if !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Fatalf("dev on a data dir another user owns: %v, want it refused naming the owner", err)
	}
}
