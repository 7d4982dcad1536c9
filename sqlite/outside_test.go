package sqlite

import (
	"context"
	"path/filepath"
	"runtime"
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
