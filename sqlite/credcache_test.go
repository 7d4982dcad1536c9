package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/gencache"
)

func openTest(t *testing.T, path string) *DB {
	t.Helper()
	d, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func addCredential(t *testing.T, d *DB, id string, now time.Time) {
	t.Helper()
	ctx := context.Background()
	if _, err := d.LoginSalt(ctx, "c", "IAM:u", "", shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: 4096}); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateCredential(ctx, &shiftkey.Credential{ID: id, Cluster: "c", LoginName: "IAM:u", DBUser: "u",
		StoredKey: []byte{1}, ServerKey: []byte{2}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

func live(t *testing.T, d *DB, now time.Time) string {
	t.Helper()
	creds, _, _, err := d.LiveCredentials(context.Background(), "c", "IAM:u", now)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range creds {
		ids = append(ids, c.ID)
	}
	return fmt.Sprint(ids)
}

// A read that raced with a write is not cached: the write's invalidation
// came before the reader stored what it read before the write.
func TestCredCacheReadRacingWrite(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	now := time.Now()
	addCredential(t, d, "a", now)
	d.cache.AfterRead = func() {
		d.cache.AfterRead = nil
		addCredential(t, d, "b", now.Add(time.Millisecond))
	}
	if got := live(t, d, now); got != "[a]" {
		t.Fatalf("racing read = %s, want [a] (read before the write)", got)
	}
	if got := live(t, d, now); got != "[a b]" {
		t.Fatalf("next read = %s, want [a b]: the racing read was cached stale", got)
	}
}

// Entries live at most gencache.TTL of wall-clock time; a write by another
// process (which the single-writer design does not expect) shows after it.
func TestCredCacheTTL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	d, other := openTest(t, path), openTest(t, path)
	wall := time.Now()
	d.cache.Clock = func() time.Time { return wall }
	now := time.Now()
	addCredential(t, d, "a", now)
	if got := live(t, d, now); got != "[a]" {
		t.Fatal(got)
	}
	addCredential(t, other, "b", now.Add(time.Millisecond))
	wall = wall.Add(gencache.TTL - time.Millisecond)
	if got := live(t, d, now); got != "[a]" {
		t.Fatalf("within the TTL: %s, want the cached [a]", got)
	}
	wall = wall.Add(time.Millisecond)
	if got := live(t, d, now); got != "[a b]" {
		t.Fatalf("after the TTL: %s, want [a b]", got)
	}
}

// A flood of distinct (decoy) login names does not grow the cache past
// gencache.MaxLogins.
func TestCredCacheBounded(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	ctx := context.Background()
	now := time.Now()
	for i := range gencache.MaxLogins + 1 {
		if _, _, ok, err := d.LiveCredentials(ctx, "c", fmt.Sprintf("IAM:decoy%d", i), now); err != nil || ok {
			t.Fatal(ok, err)
		}
		if n := d.cache.Len(); n > gencache.MaxLogins {
			t.Fatalf("%d entries after %d logins", n, i+1)
		}
	}
}

// Callers share the cached slice, without a copy per call however many
// credentials the login has; appending to it does not change the cache.
// (Before, every call copied the slice: one allocation of 8 bytes per
// live credential.)
func TestCredCacheSharesSlice(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	now := time.Now()
	for i := range 100 {
		addCredential(t, d, fmt.Sprintf("c%03d", i), now.Add(time.Duration(i)*time.Millisecond))
	}
	ctx := context.Background()
	creds, _, _, _ := d.LiveCredentials(ctx, "c", "IAM:u", now)
	_ = append(creds, &shiftkey.Credential{ID: "forged"})
	addCredential(t, d, "new", now.Add(time.Second)) // the cache appends to the entry's array
	if got, _, _, _ := d.LiveCredentials(ctx, "c", "IAM:u", now); len(got) != 101 || got[100].ID != "new" {
		t.Fatalf("after the caller appended to its slice: %d credentials, last %s", len(got), got[len(got)-1].ID)
	}
	if allocs := testing.AllocsPerRun(100, func() { d.LiveCredentials(ctx, "c", "IAM:u", now) }); allocs != 0 {
		t.Fatalf("a cached lookup of 101 credentials allocates %v times, want 0", allocs)
	}
}

// A credential that expires leaves the answers at its expiry, and the
// entry is filtered once, not at every call after.
func TestCredCacheExpiresLazily(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	addCredential(t, d, "a", now) // expires at now + 1 h
	if err := d.CreateCredential(ctx, &shiftkey.Credential{ID: "b", Cluster: "c", LoginName: "IAM:u", DBUser: "u",
		StoredKey: []byte{1}, ServerKey: []byte{2}, CreatedAt: now, ExpiresAt: now.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	reads := 0
	d.cache.AfterRead = func() { reads++ }
	for _, tc := range []struct {
		at   time.Duration
		want string
	}{{0, "[a b]"}, {time.Hour - time.Millisecond, "[a b]"}, {time.Hour, "[b]"}, {time.Hour + time.Minute, "[b]"}, {2 * time.Hour, "[]"}} {
		if got := live(t, d, now.Add(tc.at)); got != tc.want {
			t.Fatalf("at +%v: %s, want %s", tc.at, got, tc.want)
		}
	}
	if reads != 1 {
		t.Fatalf("%d reads, want 1", reads)
	}
	at := now.Add(time.Hour + time.Minute)
	if allocs := testing.AllocsPerRun(10, func() { d.LiveCredentials(ctx, "c", "IAM:u", at) }); allocs != 0 {
		t.Fatalf("a lookup after an expiry allocates %v times, want 0 (the entry was not replaced by its filtered copy)", allocs)
	}
}

// A refresh of an entry that aged past the TTL or that a write dropped
// takes the credentials it held from it, still live ones only, and reads
// just those it lacks: a login with thousands of credentials is not
// decoded again. (Before, every refresh decoded every credential.)
func TestCredCacheRefreshReusesCredentials(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	d, other := openTest(t, path), openTest(t, path)
	wall := time.Now()
	d.cache.Clock = func() time.Time { return wall }
	ctx := context.Background()
	now := time.Now()
	for _, id := range []string{"a", "b", "c"} {
		addCredential(t, d, id, now)
		now = now.Add(time.Millisecond)
	}
	first, _, _, err := d.LiveCredentials(ctx, "c", "IAM:u", now)
	if err != nil || len(first) != 3 {
		t.Fatal(len(first), err)
	}
	// Another process deletes b and adds d: seen after the TTL.
	if _, err := other.db.Exec(`DELETE FROM credentials WHERE id = 'b'`); err != nil {
		t.Fatal(err)
	}
	addCredential(t, other, "d", now)
	wall = wall.Add(gencache.TTL)
	got, _, _, err := d.LiveCredentials(ctx, "c", "IAM:u", now)
	if err != nil {
		t.Fatal(err)
	}
	if ids := fmt.Sprint(idsOf(got)); ids != "[a c d]" {
		t.Fatalf("after the TTL: %s, want [a c d]", ids)
	}
	if got[0] != first[0] || got[1] != first[2] {
		t.Fatal("the refresh decoded a and c again instead of reusing them")
	}
	read, _, _, err := other.LiveCredentials(ctx, "c", "IAM:u", now)
	if err != nil || !reflect.DeepEqual(got, read) {
		t.Fatalf("refreshed entry differs from a read (%v):\n%+v\n%+v", err, got, read)
	}
	// A write through d drops the entry; the next read reuses it too.
	if _, err := d.DeleteExpiredCredentials(ctx, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	again, _, _, err := d.LiveCredentials(ctx, "c", "IAM:u", now)
	if err != nil || len(again) != 3 || again[0] != got[0] || again[2] != got[2] {
		t.Fatalf("after a write: %v (%v), want the same a, c, d", idsOf(again), err)
	}
	if err := d.DeleteCredentials(ctx, "c", "IAM:u"); err != nil {
		t.Fatal(err)
	}
	if got := live(t, d, now); got != "[]" {
		t.Fatalf("after DeleteCredentials: %s", got)
	}
}

func idsOf(creds []*shiftkey.Credential) []string {
	var ids []string
	for _, c := range creds {
		ids = append(ids, c.ID)
	}
	return ids
}

// Readers and a writer at once (run with -race): once the writer is done,
// every credential it wrote is visible.
func TestCredCacheConcurrent(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	now := time.Now()
	done := make(chan struct{})
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				if _, _, _, err := d.LiveCredentials(context.Background(), "c", "IAM:u", now); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range 20 {
		addCredential(t, d, fmt.Sprint(i), now)
	}
	close(done)
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if creds, _, _, _ := d.LiveCredentials(context.Background(), "c", "IAM:u", now); len(creds) != 20 {
		t.Fatalf("%d credentials visible after the writer finished, want 20", len(creds))
	}
}

// A committed credential joins its login's cached entry, so the login
// that follows an issue needs no read, and the entry then equals what a
// read returns: order by creation, times to the millisecond, digests. A
// credential whose insert failed does not show.
func TestCredCacheAddsCommitted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	d, other := openTest(t, path), openTest(t, path)
	ctx := context.Background()
	now := time.Now()
	addCredential(t, d, "a", now)
	reads := 0
	d.cache.AfterRead = func() { reads++ }
	if got := live(t, d, now); got != "[a]" || reads != 1 {
		t.Fatalf("first read = %s after %d reads", got, reads)
	}
	add := func(id string, created time.Time) error {
		return d.CreateCredential(ctx, &shiftkey.Credential{ID: id, Cluster: "c", LoginName: "IAM:u", DBUser: "u", DBGroups: []string{"g"},
			StoredKey: []byte{1}, ServerKey: []byte{2}, DigestSHA256: []byte{3}, DigestMD5: []byte{4}, PrincipalARN: "arn",
			RequestID: "r-" + id, CreatedAt: created, ExpiresAt: created.Add(time.Hour)})
	}
	if err := add("c", now.Add(2*time.Millisecond+300*time.Microsecond)); err != nil {
		t.Fatal(err)
	}
	if err := add("b", now.Add(time.Millisecond)); err != nil { // older than c: inserted before it
		t.Fatal(err)
	}
	if got := live(t, d, now); got != "[a b c]" || reads != 1 {
		t.Fatalf("after issues = %s after %d reads, want [a b c] from the cache", got, reads)
	}
	if err := add("a", now.Add(3*time.Millisecond)); err == nil {
		t.Fatal("a duplicate id was stored")
	}
	if got := live(t, d, now); got != "[a b c]" {
		t.Fatalf("after a failed insert = %s", got)
	}
	cached, _, _, err := d.LiveCredentials(ctx, "c", "IAM:u", now)
	if err != nil {
		t.Fatal(err)
	}
	read, _, _, err := other.LiveCredentials(ctx, "c", "IAM:u", now)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cached, read) {
		t.Fatalf("cached entry differs from a read:\n%+v\n%+v", cached[1:], read[1:])
	}
}

// A read that began after a commit can store its entry before the writer
// adds the committed credential to it: the credential is then not added
// twice. (TestCredCacheConcurrent saw 21 of 20 before the check.)
func TestCredCacheAddedAfterReadSawIt(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "s.db"))
	now := time.Now()
	addCredential(t, d, "a", now)
	if got := live(t, d, now); got != "[a]" {
		t.Fatal(got)
	}
	added(d.cache, &shiftkey.Credential{ID: "a", Cluster: "c", LoginName: "IAM:u", CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
	if got := live(t, d, now); got != "[a]" {
		t.Fatalf("after a late add = %s, want [a]", got)
	}
}
