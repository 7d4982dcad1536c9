package sqlite

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// shmLockEnv makes the test binary a child that tells whether any process
// holds SQLite's DMS lock on the -shm file at its value (what a process
// opening the store asks: when none does, it takes itself for the file's
// only user and reinitialises the -shm).
const shmLockEnv = "SHIFTKEY_SQLITE_TEST_SHM_LOCK"

func init() {
	path := os.Getenv(shmLockEnv)
	if path == "" {
		return
	}
	fd, err := syscall.Open(path, syscall.O_RDONLY, 0)
	if err != nil {
		fmt.Print(err)
		os.Exit(1)
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart, Start: shmDMS, Len: 1}
	if err := syscall.FcntlFlock(uintptr(fd), syscall.F_GETLK, &lk); err != nil {
		fmt.Print(err)
		os.Exit(1)
	}
	if lk.Type == syscall.F_UNLCK {
		fmt.Print("unlocked")
	} else {
		fmt.Printf("held by %d", lk.Pid)
	}
	os.Exit(0)
}

func shmLock(t *testing.T, path string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), shmLockEnv+"="+path+"-shm")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the child: %v\n%s", err, out)
	}
	return string(out)
}

// A store of the file closing while another of this process opens: the
// opening one's connections hold SQLite's locks on the -shm from its
// first read, before it maps the header; the closing one, the last that
// had mapped it, closed its descriptor of the file, which dropped them.
// Another process then found the -shm in use by no one, and would
// reinitialise it under the open store.
func TestAStoreClosingWhileAnotherOpensLeavesItsLocks(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	first, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if got := shmLock(t, path); got == "unlocked" {
		t.Fatal("no DMS lock with the first store open")
	}
	reached, resume, opened := make(chan struct{}), make(chan struct{}), make(chan struct{})
	testHookMigrated = func() { close(reached); <-resume }
	var second *DB
	go func() {
		defer close(opened)
		second, err = Open(ctx, path)
	}()
	<-reached
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	close(resume)
	<-opened
	testHookMigrated = nil
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if got := shmLock(t, path); got == "unlocked" {
		t.Fatalf("with the second store open, another process finds the -shm %s", got)
	}
	addCredential(t, second, "a", time.Now())
}
