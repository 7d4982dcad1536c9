package sqlite

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
)

// Another *DB on the file stands for `shiftkey credentials revoke`, the
// other process: what it revokes or ends is seen by the next login (and
// CatchUp's callbacks hear of it) with no poll between; what is not a
// revocation, its own or this process's, drops nothing. Both ways of
// telling that something was committed: the WAL-index header (Linux) and
// PRAGMA data_version.
func TestCatchUpSeesAnotherWritersRevocation(t *testing.T) {
	for _, how := range []string{"wal-index header", "data_version"} {
		t.Run(how, func(t *testing.T) { testCatchUp(t, how == "data_version") })
	}
}

func testCatchUp(t *testing.T, dataVersion bool) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	server, tool := openTest(t, path), openTest(t, path)
	if dataVersion {
		server.outside.useShm = false
	} else if !server.outside.useShm && runtime.GOOS == "linux" {
		t.Fatal("the WAL-index header is not mapped on Linux")
	}
	revoked := 0
	server.OnRevoked(func() { revoked++ })
	now := time.Now()
	addCredential(t, server, "a", now)
	addCredential(t, server, "b", now.Add(time.Millisecond))
	if got := live(t, server, now); got != "[a b]" {
		t.Fatalf("live = %s, want [a b]", got)
	}
	// Commits that revoke nothing: an issue by the server, a cluster by
	// the other writer.
	addCredential(t, server, "c", now.Add(2*time.Millisecond))
	if err := tool.CreateCluster(ctx, &shiftkey.Cluster{Identifier: "other", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	server.CatchUp()
	if revoked != 0 {
		t.Fatalf("CatchUp after commits that revoke nothing told of %d revocations", revoked)
	}
	if _, err := tool.RevokeCredentials(ctx, shiftkey.CredentialFilter{ID: "a"}, now, false); err != nil {
		t.Fatal(err)
	}
	if got := live(t, server, now); got != "[b c]" {
		t.Fatalf("live right after another writer revoked a = %s, want [b c]", got)
	}
	if revoked != 1 {
		t.Fatalf("the revocation was told %d times, want once", revoked)
	}
	server.CatchUp()
	if revoked != 1 {
		t.Fatalf("CatchUp with nothing new told of a revocation again (%d)", revoked)
	}
	if err := server.CreateSession(ctx, &shiftkey.Session{AccessKeyID: "ASIATEST", Secret: "s", Token: "t", RoleName: "r", RoleID: "AROA",
		SessionName: "n", SourceARN: "arn:aws:iam::000000000000:user/u", SourceAccessKeyID: "AKIATEST", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	server.CatchUp()
	if ended, err := tool.EndSessions(ctx, "AKIATEST", now); err != nil || len(ended) != 1 {
		t.Fatalf("EndSessions = %v, %v", ended, err)
	}
	server.CatchUp()
	if revoked != 2 {
		t.Fatalf("after another writer ended a session, %d revocations told, want 2", revoked)
	}
}

// openCloseEnv makes the test binary a child that opens the store at its
// value and closes it, as a `shiftkey credentials` command does.
const openCloseEnv = "SHIFTKEY_SQLITE_TEST_OPEN_CLOSE"

// revokeEachEnv makes the test binary a child that, as `shiftkey
// credentials revoke` run again and again, revokes the credentials r0,
// r1, ... of the store at its value one by one, and writes each one's id
// on a line once its revocation has returned.
const revokeEachEnv = "SHIFTKEY_SQLITE_TEST_REVOKE_EACH"

func revokeEach(path string) error {
	d, err := Open(context.Background(), path)
	if err != nil {
		return err
	}
	defer d.Close()
	for i := range revokeEachCount {
		id := fmt.Sprint("r", i)
		if _, err := d.RevokeCredentials(context.Background(), shiftkey.CredentialFilter{ID: id}, time.Now(), false); err != nil {
			return err
		}
		fmt.Println(id)
	}
	return nil
}

const revokeEachCount = 150

func TestMain(m *testing.M) {
	if path := os.Getenv(revokeEachEnv); path != "" {
		if err := revokeEach(path); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	if path := os.Getenv(openCloseEnv); path != "" {
		d, err := Open(context.Background(), path)
		if err == nil {
			err = d.Close()
		}
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Found on the way: the first mapping of the WAL-index header closed its
// own descriptor of the -shm file, which drops every POSIX lock this
// process held on it, SQLite's too; the next process to open and close
// the store (a `credentials` command) took itself for the file's last
// user and deleted the WAL under the server, whose writes then failed
// ("-wal was deleted or replaced"). Another store of this process on the
// file closing must not do it either.
func TestOtherStoresClosingLeaveTheLocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	server := openTest(t, path)
	now := time.Now()
	addCredential(t, server, "a", now)
	other, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), openCloseEnv+"="+path)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("a child's open and close: %v\n%s", err, out)
		}
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Fatalf("the WAL after other processes opened and closed the store: %v", err)
	}
	addCredential(t, server, "b", now.Add(time.Millisecond))
	if got := live(t, server, now); got != "[a b]" {
		t.Fatalf("live = %s, want [a b]", got)
	}
}

// What a check costs once something was committed (every batch of the
// server's own issues is such a commit, so the login after it pays this):
// the revocation tables' summary, with as many revocations and ended
// sessions live as a mass revocation leaves for up to an hour.
func BenchmarkCatchUpSummary(b *testing.B) {
	for _, n := range []int{10, 10_000, 100_000} {
		b.Run(fmt.Sprintf("revocations=%d", n), func(b *testing.B) {
			ctx := context.Background()
			d, err := Open(ctx, filepath.Join(b.TempDir(), "s.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			exp := time.Now().Add(time.Hour).UnixMilli()
			for _, q := range []struct {
				sql  string
				args []any
			}{{
				`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < ?)
				INSERT INTO credential_revocations (id, cluster, login_name, principal_arn, expires_at, revoked_at, terminate, stored_key, server_key, db_user)
				SELECT 'CRED' || i, 'c', 'IAM:u' || i, 'arn:aws:iam::000000000000:user/u', ?, ? + i, 0, randomblob(32), randomblob(32), 'u' || i FROM n`,
				[]any{n, exp, exp - 3_600_000},
			}, {
				`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < ?)
				INSERT INTO ended_sessions (access_key_id, source_access_key_id, source_arn, role_name, role_id, session_name, created_at, expires_at, ended_at)
				SELECT 'ASIA' || i, 'AKIA', 'arn:aws:iam::000000000000:user/u', 'r', 'AROA', 's', ?, ?, ? + i FROM n`,
				[]any{n, exp - 3_600_000, exp, exp - 3_600_000},
			}} {
				if _, err := d.db.ExecContext(ctx, q.sql, q.args...); err != nil {
					b.Fatal(err)
				}
			}
			o := d.outside
			b.ResetTimer()
			for b.Loop() {
				o.mu.Lock()
				o.ok = false // as after a commit: the summary is read
				o.check()
				o.mu.Unlock()
			}
		})
	}
}

// The summary compares the newest rows, not counts: a revocation that
// lands after the newest one was swept (expired) takes the rowid it had,
// and is still told apart by its key.
func TestCatchUpSeesARevocationAfterTheNewestWasSwept(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	server, tool := openTest(t, path), openTest(t, path)
	revoked := 0
	server.OnRevoked(func() { revoked++ })
	now := time.Now()
	addCredential(t, server, "a", now)
	addCredential(t, server, "b", now.Add(time.Millisecond))
	if _, err := tool.RevokeCredentials(ctx, shiftkey.CredentialFilter{ID: "a"}, now, false); err != nil {
		t.Fatal(err)
	}
	server.CatchUp()
	if revoked != 1 {
		t.Fatalf("the first revocation was told %d times, want once", revoked)
	}
	// The sweep's delete of an expired revocation, then another revocation
	// in the same millisecond, before the server looks again.
	if _, err := tool.db.ExecContext(ctx, `DELETE FROM credential_revocations WHERE id = 'a'`); err != nil {
		t.Fatal(err)
	}
	if _, err := tool.RevokeCredentials(ctx, shiftkey.CredentialFilter{ID: "b"}, now, false); err != nil {
		t.Fatal(err)
	}
	if got := live(t, server, now); got != "[]" {
		t.Fatalf("live after another writer swept a and revoked b = %s, want []", got)
	}
	if revoked != 2 {
		t.Fatalf("the second revocation was told %d times in all, want 2", revoked)
	}
}

// SQLite puts the -shm beside the file the store's path resolves to; a
// -shm beside a symlinked path is no one's (left by a store that crashed
// there before its files were moved behind the link). Its header never
// changes: read as the store's, it hid every commit of another process,
// and the login after a revocation was answered from memory.
func TestCatchUpThroughASymlinkIgnoresAStaleShm(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "s.db")
	// The leftover: the -shm of a store open at path (copied: a crash
	// leaves it with a valid header), then the files moved away.
	crashed := openTest(t, filepath.Join(dir, "old.db"))
	addCredential(t, crashed, "x", time.Now())
	shm, err := os.ReadFile(filepath.Join(dir, "old.db-shm"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+"-shm", shm, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "data", "s.db"), path); err != nil {
		t.Fatal(err)
	}
	server, tool := openTest(t, path), openTest(t, path)
	if !server.outside.useShm && runtime.GOOS == "linux" {
		t.Fatal("the WAL-index header the store uses, beside the link's target, is not mapped")
	}
	now := time.Now()
	addCredential(t, server, "a", now)
	if got := live(t, server, now); got != "[a]" {
		t.Fatalf("live = %s, want [a]", got)
	}
	if _, err := tool.RevokeCredentials(context.Background(), shiftkey.CredentialFilter{ID: "a"}, now, false); err != nil {
		t.Fatal(err)
	}
	if got := live(t, server, now); got != "[]" {
		t.Fatalf("live right after another writer revoked a = %s, want []", got)
	}
}

// A checkpoint that restarts the WAL (RESTART, TRUNCATE, or a passive one
// the next writer restarts after) sets the header's frame count back to 0:
// after as many frames again the count is what the last check saw, and a
// revocation among them must still be seen. The header's change counter
// (and the new salts) tell the two apart.
func TestCatchUpSeesARevocationAfterTheWALRestarts(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the WAL-index header is read on Linux only")
	}
	path := filepath.Join(t.TempDir(), "s.db")
	server := openTest(t, path)
	// The other process: a connection of its own, no store around it.
	tool, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer tool.Close()
	tool.SetMaxOpenConns(1)
	if _, err := tool.Exec(`CREATE TABLE filler (v INTEGER); INSERT INTO filler VALUES (0)`); err != nil {
		t.Fatal(err)
	}
	const mxFrame = 4 // the header's word of the frame count
	now := time.Now()
	for attempt := 0; ; attempt++ {
		if attempt == 10 {
			t.Fatal("the server's checkpointer restarted the WAL under every attempt")
		}
		id := fmt.Sprint("a", attempt)
		addCredential(t, server, id, now)
		for range 20 { // frames for the revocation's to fit in
			if _, err := tool.Exec(`UPDATE filler SET v = v + 1`); err != nil {
				t.Fatal(err)
			}
		}
		if got := live(t, server, now); got != "["+id+"]" {
			t.Fatalf("live = %s, want [%s]", got, id)
		}
		before := server.outside.lastMark
		if _, err := tool.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			t.Fatal(err)
		}
		if _, err := tool.Exec(`INSERT INTO credential_revocations (id, cluster, login_name, principal_arn, expires_at, revoked_at, terminate)
			SELECT id, cluster, login_name, principal_arn, expires_at, 0, 0 FROM credentials WHERE id = ?;
			DELETE FROM credentials WHERE id = ?`, id, id); err != nil {
			t.Fatal(err)
		}
		for server.outside.shm.read()[mxFrame] < before[mxFrame] {
			if _, err := tool.Exec(`UPDATE filler SET v = v + 1`); err != nil {
				t.Fatal(err)
			}
		}
		if server.outside.shm.read()[mxFrame] != before[mxFrame] {
			continue // the checkpointer restarted the WAL meanwhile
		}
		if got := live(t, server, now); got != "[]" {
			t.Fatalf("live after a WAL restart and a revocation in as many frames = %s, want []", got)
		}
		return
	}
}

// Every revocation another process has returned from is refused by the
// next login, while this process checks again and again meanwhile (its
// reads of the WAL-index header racing the other's writes of it: a torn
// read must not hide a commit) and commits of its own (the mark changing
// without a revocation).
func TestCatchUpSeesEachRevocationAnotherProcessReturnedFrom(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	server := openTest(t, path)
	now := time.Now()
	for i := range revokeEachCount {
		addCredential(t, server, fmt.Sprint("r", i), now.Add(time.Duration(i)*time.Millisecond))
	}
	creds, _, _, err := server.LiveCredentials(context.Background(), "c", "IAM:u", now)
	if err != nil || len(creds) != revokeEachCount {
		t.Fatalf("live = %d credentials, %v", len(creds), err)
	}
	stop := make(chan struct{})
	var ownErr atomic.Value
	var busy sync.WaitGroup
	busy.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			server.CatchUp()
			if i%50 == 0 { // what the server issues meanwhile, on a login of its own
				if err := server.CreateCredential(context.Background(), &shiftkey.Credential{ID: fmt.Sprint("own", i), Cluster: "c",
					LoginName: "IAM:own", DBUser: "own", StoredKey: []byte{1}, ServerKey: []byte{2}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
					ownErr.Store(err)
				}
			}
		}
	})
	defer busy.Wait()
	defer close(stop)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), revokeEachEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	n := 0
	for lines.Scan() {
		id := lines.Text()
		creds, _, _, err := server.LiveCredentials(context.Background(), "c", "IAM:u", now)
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(creds, func(c *shiftkey.Credential) bool { return c.ID == id }) {
			t.Fatalf("the login after another process returned from revoking %s still has it", id)
		}
		n++
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the child: %v\n%s", err, stderr.String())
	}
	if n != revokeEachCount {
		t.Fatalf("the child revoked %d, want %d", n, revokeEachCount)
	}
	if err := ownErr.Load(); err != nil {
		t.Fatalf("an issue of the server's own meanwhile: %v", err)
	}
}

// Found in a review: `credentials revoke --terminate` of a credential
// already revoked without it updates its revocation row, and CatchUp's
// summary read only the newest row's rowid and id, so the server never
// heard of it and the credential's sessions stayed open. An updated row,
// the newest or an older one, is heard as a new one is.
func TestCatchUpHearsARevocationMarkedTerminateLater(t *testing.T) {
	for _, how := range []string{"wal-index header", "data_version"} {
		t.Run(how, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "s.db")
			server, tool := openTest(t, path), openTest(t, path)
			if how == "data_version" {
				server.outside.useShm = false
			}
			revoked := 0
			server.OnRevoked(func() { revoked++ })
			now := time.Now()
			addCredential(t, server, "a", now)
			addCredential(t, server, "b", now.Add(time.Millisecond))
			for _, id := range []string{"a", "b"} {
				if _, err := tool.RevokeCredentials(ctx, shiftkey.CredentialFilter{ID: id}, now, false); err != nil {
					t.Fatal(err)
				}
			}
			server.CatchUp()
			if revoked != 1 {
				t.Fatalf("the revocations were told %d times, want once", revoked)
			}
			for i, id := range []string{"a", "b"} { // an older row, then the newest
				got, err := tool.TerminateRevoked(ctx, shiftkey.CredentialFilter{ID: id})
				if err != nil || len(got) != 1 || got[0].ID != id || !got[0].Terminate {
					t.Fatalf("TerminateRevoked(%s) = %+v, %v", id, got, err)
				}
				server.CatchUp()
				if revoked != 2+i {
					t.Fatalf("after another writer marked %s's revocation terminate, %d revocations told, want %d", id, revoked, 2+i)
				}
				if recs, err := server.Revocations(ctx, []string{id}); err != nil || len(recs) != 1 || !recs[0].Terminate {
					t.Fatalf("Revocations(%s) as the server reads it: %+v, %v", id, recs, err)
				}
			}
		})
	}
}
