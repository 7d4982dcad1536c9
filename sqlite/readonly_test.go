package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
)

// ext4FS mounts a 32 MB ext4 image (loop device, errors=remount-ro) for the
// test and returns its mount point and a function that makes the file
// system turn read-only as after an I/O error (ext4's trigger_fs_error).
// It needs root and loop devices: the test is skipped only where mounting
// is impossible; CI runs as root.
func ext4FS(t *testing.T) (dir string, fail func(), remount func()) {
	t.Helper()
	base := t.TempDir()
	img, dir := filepath.Join(base, "img"), filepath.Join(base, "m")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) error {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := run("truncate", "-s", "32M", img); err != nil {
		t.Fatal(err)
	}
	if err := run("mkfs.ext4", "-q", img); err != nil {
		t.Skipf("cannot make an ext4 file system here: %v", err)
	}
	mount := func() error { return run("mount", "-o", "loop,errors=remount-ro", img, dir) }
	if err := mount(); err != nil {
		t.Skipf("cannot mount a loop file system here (needs root and loop devices): %v", err)
	}
	mounted := true
	t.Cleanup(func() {
		if mounted {
			if err := run("umount", dir); err != nil {
				t.Error(err)
			}
		}
	})
	fail = func() {
		out, err := exec.Command("findmnt", "-n", "-o", "SOURCE", dir).Output()
		if err != nil {
			t.Fatal(err)
		}
		dev := filepath.Base(strings.TrimSpace(string(out)))
		if err := os.WriteFile("/sys/fs/ext4/"+dev+"/trigger_fs_error", []byte("1"), 0); err != nil {
			t.Skipf("cannot make ext4 fail here: %v", err)
		}
	}
	remount = func() {
		if err := run("umount", dir); err != nil {
			t.Fatal(err)
		}
		mounted = false
		if err := mount(); err != nil {
			t.Fatal(err)
		}
		mounted = true
	}
	return dir, fail, remount
}

// The store's file system turns read-only (an I/O error, ext4's
// errors=remount-ro) while 16 issuers write: issues fail from then on with
// an error, nothing panics, and every credential acknowledged is in the
// store once the file system is mounted again.
//
// Found in a failure-injecting review: about one run in five lost the 2
// to 14 credentials of the batch committing as the file system failed.
// ext4 aborted its journal and dropped the transaction holding the WAL's
// new blocks and size, and the COMMIT's fsync, finding that transaction
// no longer running, returned 0 (fsprobe_linux.go); the writer now asks
// the file system after each commit whether it has failed.
func TestReadOnlyFileSystemLosesNothingAcknowledged(t *testing.T) {
	ctx := context.Background()
	dir, fail, remount := ext4FS(t)
	path := filepath.Join(dir, "s.db")
	db := mustOpen(t, path)
	now := time.Now()
	var (
		mu    sync.Mutex
		acked []string
		errs  = map[string]int{}
		next  atomic.Int64
		stop  atomic.Bool
		wg    sync.WaitGroup
	)
	for w := range 16 {
		wg.Go(func() {
			for !stop.Load() {
				id := fmt.Sprint("ro", next.Add(1))
				err := db.CreateCredential(ctx, testCred(id, fmt.Sprint("IAM:u", w%4), now))
				mu.Lock()
				if err != nil {
					errs[err.Error()]++
				} else {
					acked = append(acked, id)
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	n0 := len(acked)
	mu.Unlock()
	fail()
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	time.Sleep(500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	t.Logf("%d acknowledged (%d by the time the file system had failed for 0.5 s), errors %v", len(acked), n, errs)
	if len(acked) != n {
		t.Errorf("%d issues acknowledged more than 0.5 s after the file system turned read-only", len(acked)-n)
	}
	if len(errs) == 0 {
		t.Fatal("no issue failed on a read-only file system")
	}
	if err := db.WriteErr(); err == nil {
		t.Error("WriteErr is nil while every issue fails")
	}
	db.Close()
	remount()
	db = mustOpen(t, path)
	defer db.Close()
	have := map[string]bool{}
	rows, err := db.SQL().QueryContext(ctx, `SELECT id FROM credentials`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		have[id] = true
	}
	rows.Close()
	lost := 0
	for i, id := range acked {
		if !have[id] {
			lost++
			t.Errorf("credential %s (acknowledged %d of %d, %d before the failure began) is not in the store after the file system failed", id, i+1, len(acked), n0)
		}
	}
	if lost > 0 {
		t.Fatalf("%d acknowledged credentials lost", lost)
	}
}

// A checkpoint's fsync of the database can return 0 for pages a failing
// file system dropped, as a commit's can, and the checkpoint then marks
// the WAL copied: the transaction that begins with all of it copied
// writes its frames over the WAL from the start, and what the WAL held is
// nowhere. So a batch begun after a checkpoint asks whether the file
// system has failed before it writes anything; a batch's own commit is
// asked about after its COMMIT.
func TestBatchAfterCheckpointWritesNothingOnFailedFileSystem(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, filepath.Join(t.TempDir(), "s.db"))
	defer db.Close()
	now := time.Now()
	if err := db.CreateCredential(ctx, testCred("before", "IAM:a", now)); err != nil {
		t.Fatal(err)
	}
	db.Checkpoint()
	if frames, copied, _ := db.Checkpoints(); frames == 0 || copied != frames {
		t.Fatalf("the checkpoint copied %d of the WAL's %d frames; the test needs all", copied, frames)
	}
	asked := db.FailFileSystem(syscall.EROFS)
	err := db.CreateCredential(ctx, testCred("after", "IAM:a", now))
	if err == nil {
		t.Fatal("an issue was acknowledged on a file system that had failed")
	}
	if !errors.Is(err, syscall.EROFS) {
		t.Errorf("issue on a failed file system: %v, want the file system's error (EROFS)", err)
	}
	var n int
	if err := db.SQL().QueryRowContext(ctx, `SELECT count(*) FROM credentials WHERE id = 'after'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Error("a batch begun after a checkpoint was written although the file system had failed: it may have restarted the WAL over frames the checkpoint's fsync did not make durable")
	}
	if a := asked(); a != 1 {
		t.Errorf("the file system was asked %d times for one batch begun after a checkpoint, want once, before it wrote", a)
	}
	// Later batches keep failing until it answers again.
	if err := db.CreateCredential(ctx, testCred("later", "IAM:a", now)); err == nil {
		t.Error("an issue was acknowledged on a file system that had failed")
	}
	db.FailFileSystem(nil)
	if err := db.CreateCredential(ctx, testCred("repaired", "IAM:a", now)); err != nil {
		t.Errorf("issue once the file system answers again: %v", err)
	}
}

// A key deactivated, or a credential revoked, on a file system that failed
// under the commit may be lost as an issue may (fsprobe_linux.go): the
// store's other writes ask the file system too before they report
// success.
func TestWritesOtherThanIssuesFailOnAFailedFileSystem(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, filepath.Join(t.TempDir(), "s.db"))
	defer db.Close()
	now := time.Now()
	alice := &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "alice", ID: shiftkey.NewID("AIDA"), Path: "/",
		ARN: "arn:aws:iam::123456789012:user/alice", CreatedAt: now}
	if err := db.CreateEntity(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAccessKey(ctx, &shiftkey.AccessKey{ID: "AKIAKEPT", Secret: "secret", UserName: "alice", Status: "Active", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateCredential(ctx, testCred("leaked", "IAM:a", now)); err != nil {
		t.Fatal(err)
	}
	asked := db.FailFileSystem(syscall.EROFS)
	if err := db.UpdateAccessKey(ctx, "AKIAKEPT", "Inactive"); !errors.Is(err, syscall.EROFS) {
		t.Errorf("UpdateAccessKey on a failed file system: %v, want the file system's error (EROFS)", err)
	}
	if _, err := db.RevokeCredentials(ctx, shiftkey.CredentialFilter{ID: "leaked"}, now, true); !errors.Is(err, syscall.EROFS) {
		t.Errorf("RevokeCredentials on a failed file system: %v, want the file system's error (EROFS)", err)
	}
	if asked() < 2 {
		t.Errorf("the file system was asked %d times for two writes", asked())
	}
	db.FailFileSystem(nil)
	if err := db.UpdateAccessKey(ctx, "AKIAKEPT", "Inactive"); err != nil {
		t.Errorf("UpdateAccessKey once the file system answers again: %v", err)
	}
}

// As above for a failed file system: WriteErr reports it without waiting
// for an issue to fail, and clears once it answers again.
func TestWriteErrReportsAFailedFileSystem(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "s.db"))
	defer db.Close()
	if err := db.CreateCredential(context.Background(), testCred("before", "IAM:a", time.Now())); err != nil {
		t.Fatal(err)
	}
	db.FailFileSystem(syscall.EROFS)
	if err := db.WriteErr(); !errors.Is(err, syscall.EROFS) {
		t.Errorf("WriteErr on a failed file system with no write since: %v, want the file system's error (EROFS)", err)
	}
	db.FailFileSystem(nil)
	if err := db.WriteErr(); err != nil {
		t.Errorf("WriteErr once the file system answers again: %v", err)
	}
}
