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

// lockEnv makes the test binary a child that tells whether any process
// holds a lock on the bytes "start len" of the file "path" in its value:
// SQLite's on the -shm's DMS byte (a process opening the store that finds
// none takes itself for the file's only user and reinitialises the -shm),
// or on the database file's shared range (one that finds none may take
// the file for itself: leave WAL mode, delete the WAL).
const lockEnv = "SHIFTKEY_SQLITE_TEST_LOCK"

// sqliteSharedFirst and sqliteSharedSize are the database file's bytes
// every SQLite connection holds a read lock on while open in WAL mode
// (SHARED_FIRST and SHARED_SIZE in SQLite's os_unix.c).
const sqliteSharedFirst, sqliteSharedSize = 0x40000002, 510

func init() {
	v := os.Getenv(lockEnv)
	if v == "" {
		return
	}
	var start, n int64
	var path string
	if _, err := fmt.Sscan(v, &start, &n, &path); err != nil {
		fmt.Print(err)
		os.Exit(1)
	}
	fd, err := syscall.Open(path, syscall.O_RDONLY, 0)
	if err != nil {
		fmt.Print(err)
		os.Exit(1)
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart, Start: start, Len: n}
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
	return fileLock(t, fmt.Sprint(shmDMS, 1, path+"-shm"))
}

func fileLock(t *testing.T, which string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), lockEnv+"="+which)
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

// Opening another store of the file in this process must leave the
// locks of the one open too: its preparation of the files opened and
// closed the database file, which dropped the lock every connection of
// the process holds on it. Another process then finds the file in use by
// no one: SQLite 3.40's sqlite3 takes it out of WAL mode, deleting the WAL
// under the open store, whose writes then fail ("-wal was deleted or
// replaced").
func TestOtherStoresOpeningLeaveTheLocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	server := openTest(t, path)
	addCredential(t, server, "a", time.Now())
	shared := fmt.Sprint(sqliteSharedFirst, sqliteSharedSize, path)
	if got := fileLock(t, shared); got == "unlocked" {
		t.Fatal("no shared lock on the database file with a store open")
	}
	openTest(t, path)
	if got := fileLock(t, shared); got == "unlocked" {
		t.Fatalf("with two stores open, another process finds the database file %s", got)
	}
}
