package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/internal/storetest"
	"github.com/shiftkey/shiftkey/secretbox"
	"github.com/shiftkey/shiftkey/sqlite"
)

func TestStoreContractSealed(t *testing.T) {
	storetest.Run(t, func(t *testing.T) shiftkey.Store {
		key, _, err := secretbox.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		return tempStore(t, sqlite.WithKey(key, ""))
	})
}

func keyFile(t *testing.T, dir, name string) (*secretbox.Key, string) {
	t.Helper()
	path := filepath.Join(dir, name)
	k, err := secretbox.CreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return k, path
}

// rawSecrets reads the stored secret columns directly: id → secret,
// "clear:"-prefixed when not sealed; credentials' verifiers under
// "cred:"+id.
func rawSecrets(t *testing.T, path string) map[string]string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]string{}
	for _, q := range []string{`SELECT id, secret, sealed FROM access_keys`, `SELECT access_key_id, secret, sealed FROM sessions`,
		`SELECT 'cred:' || id, coalesce(digests, hex(digest_sha256) || hex(digest_md5)), digests IS NOT NULL FROM credentials
		WHERE digests IS NOT NULL OR digest_sha256 IS NOT NULL OR digest_md5 IS NOT NULL`,
		`SELECT 'revoked:' || id, coalesce(digests, hex(digest_sha256) || hex(digest_md5)), digests IS NOT NULL FROM credential_revocations
		WHERE digests IS NOT NULL OR digest_sha256 IS NOT NULL OR digest_md5 IS NOT NULL`} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, secret string
			var sealed bool
			if err := rows.Scan(&id, &secret, &sealed); err != nil {
				t.Fatal(err)
			}
			if !sealed {
				secret = "clear:" + secret
			}
			out[id] = secret
		}
		rows.Close()
	}
	return out
}

func newSession(id string) *shiftkey.Session {
	return &shiftkey.Session{AccessKeyID: id, Secret: shiftkey.NewSecretKey(), Token: "SK" + shiftkey.NewSecretKey(), RoleName: "r",
		SessionName: "s", SourceARN: "arn", Tags: []shiftkey.Tag{}, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
}

// Sealed secrets read back as issued; each is bound to its row: a value
// copied to another row does not open.
func TestSealedSecretsBoundToRow(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	key, _ := keyFile(t, dir, "store.key")
	db := mustOpen(t, path, sqlite.WithKey(key, ""))
	defer db.Close()
	s1, s2 := shiftkey.NewSecretKey(), shiftkey.NewSecretKey()
	mustUserWithKey(t, db, "AKIAONE", s1)
	mustUserWithKey(t, db, "AKIATWO", s2)
	sess := newSession("ASIAONE")
	if err := db.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if k, err := db.AccessKey(ctx, "AKIAONE"); err != nil || k.Secret != s1 {
		t.Fatalf("AccessKey: %v %v", k, err)
	}
	got, err := db.Session(ctx, "ASIAONE")
	if err != nil || got.Secret != sess.Secret || got.Token != "" || !got.TokenMatches(sess.Token) || got.TokenMatches(sess.Token+"x") {
		t.Fatalf("Session: %+v %v", got, err)
	}
	raw := rawSecrets(t, path)
	for id, v := range raw {
		if !strings.HasPrefix(v, secretbox.Prefix(key.ID())) {
			t.Fatalf("%s stored as %q, want sealed under %s", id, v, key.ID())
		}
	}
	// Move AKIAONE's sealed secret onto AKIATWO.
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Exec(`UPDATE access_keys SET secret = ? WHERE id = 'AKIATWO'`, raw["AKIAONE"]); err != nil {
		t.Fatal(err)
	}
	if k, err := db.AccessKey(ctx, "AKIATWO"); err == nil {
		t.Fatalf("a secret moved to another row opened: %q", k.Secret)
	}
}

// legacyStore builds a store as shiftkey wrote it before sealing: the
// migrations up to 0007 and secrets and tokens in the clear.
func legacyStore(t *testing.T, path string, secret string, sess *shiftkey.Session) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	names, _ := filepath.Glob("migrations/*.sql")
	if _, err := db.Exec(`CREATE TABLE schema_migrations (name TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if filepath.Base(n) >= "0008" {
			continue
		}
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(string(b)); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if _, err := db.Exec(`INSERT INTO schema_migrations VALUES (?)`, "migrations/"+filepath.Base(n)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO entities (kind, name, id, path, arn, created_at) VALUES ('user', 'old', 'AIDAOLD', '/', 'arn:aws:iam::123456789012:user/old', 0)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO access_keys (id, secret, user_name, status, created_at) VALUES ('AKIAOLD', ?, 'old', 'Active', 0)`, secret); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO sessions (access_key_id, secret, token, role_name, session_name, source_arn, session_policy, tags, created_at, expires_at)
		VALUES (?, ?, ?, 'r', 's', 'arn', '', '[]', 0, ?)`, sess.AccessKeyID, sess.Secret, sess.Token, sess.ExpiresAt.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o600)
}

// A store written before sealing keeps working: opened with a key, its
// secrets are sealed in place and its tokens hashed, and the clear bytes
// are gone from every file.
func TestLegacyStoreSealedAtOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	secret, sess := shiftkey.NewSecretKey(), newSession("ASIAOLD")
	legacyStore(t, path, secret, sess)
	secrets := map[string]string{"secret key": secret, "session secret": sess.Secret, "session token": sess.Token}

	// Without a key it opens as before.
	db := mustOpen(t, path)
	if k, err := db.AccessKey(ctx, "AKIAOLD"); err != nil || k.Secret != secret {
		t.Fatalf("legacy key without a store key: %v %v", k, err)
	}
	db.Close()

	key, _ := keyFile(t, dir, "store.key")
	db = mustOpen(t, path, sqlite.WithKey(key, ""))
	defer db.Close()
	if k, err := db.AccessKey(ctx, "AKIAOLD"); err != nil || k.Secret != secret {
		t.Fatalf("legacy key after sealing: %v %v", k, err)
	}
	got, err := db.Session(ctx, "ASIAOLD")
	if err != nil || got.Secret != sess.Secret || !got.TokenMatches(sess.Token) {
		t.Fatalf("legacy session after sealing: %+v %v", got, err)
	}
	for id, v := range rawSecrets(t, path) {
		if !strings.HasPrefix(v, secretbox.Prefix(key.ID())) {
			t.Errorf("%s stored as %q after the sealing open", id, v)
		}
	}
	assertNoSecretInFiles(t, storeFiles(path), secrets)
}

// A store holding sealed secrets is refused without its key, and with
// another key, by an error that says so.
func TestSealedStoreNeedsItsKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	key, file := keyFile(t, dir, "store.key")
	db := mustOpen(t, path, sqlite.WithKey(key, file))
	mustUserWithKey(t, db, "AKIAKEY", shiftkey.NewSecretKey())
	db.Close()
	if db, err := sqlite.Open(ctx, path); !errors.Is(err, sqlite.ErrKeyRequired) {
		if db != nil {
			db.Close()
		}
		t.Fatalf("open without the key: %v, want ErrKeyRequired", err)
	}
	other, _ := keyFile(t, dir, "other.key")
	db, err := sqlite.Open(ctx, path, sqlite.WithKey(other, ""))
	if err == nil {
		db.Close()
		t.Fatal("opened with another key")
	}
	if !strings.Contains(err.Error(), key.ID()) || !strings.Contains(err.Error(), file) {
		t.Fatalf("error %q names neither the store's key %s nor its file", err, key.ID())
	}
}

// A rotation run by one process while another serves: the server's reads
// and writes never fail, it picks the new key from its file, and at the
// end nothing is sealed under the old key.
func TestRotateKeyWhileServing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	oldKey, oldFile := keyFile(t, dir, "old.key")
	server := mustOpen(t, path, sqlite.WithKey(oldKey, oldFile))
	defer server.Close()
	want := map[string]string{}
	for i := range 40 {
		id := fmt.Sprintf("AKIAROT%02d", i)
		want[id] = shiftkey.NewSecretKey()
		mustUserWithKey(t, server, id, want[id])
	}
	sessions := map[string]*shiftkey.Session{}
	for i := range 40 {
		s := newSession(fmt.Sprintf("ASIAROT%02d", i))
		if err := server.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		sessions[s.AccessKeyID] = s
	}
	creds := map[string]*shiftkey.Credential{}
	for i := range 40 {
		c := newCredential(fmt.Sprintf("CREDROT%02d", i))
		if err := server.CreateCredential(ctx, c); err != nil {
			t.Fatal(err)
		}
		creds[c.ID] = c
	}
	if _, err := server.LoginSalt(ctx, "c", "IAM:d", "", shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: 1}); err != nil {
		t.Fatal(err)
	}

	rotator := mustOpen(t, path, sqlite.WithKey(oldKey, oldFile))
	defer rotator.Close()
	newKey, newFile := keyFile(t, dir, "new.key")

	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	var created sync.Map
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				for id, secret := range want {
					k, err := server.AccessKey(ctx, id)
					if err != nil || k.Secret != secret {
						errs <- fmt.Errorf("AccessKey %s during rotation: %v", id, err)
						return
					}
				}
				for id, s := range sessions {
					got, err := server.Session(ctx, id)
					if err != nil || got.Secret != s.Secret || !got.TokenMatches(s.Token) {
						errs <- fmt.Errorf("Session %s during rotation: %v", id, err)
						return
					}
				}
				if cs, _, _, err := server.LiveCredentials(ctx, "c", "IAM:d", time.Now()); err != nil || len(cs) < len(creds) {
					errs <- fmt.Errorf("LiveCredentials during rotation: %d, %v", len(cs), err)
					return
				}
				s := newSession(fmt.Sprintf("ASIANEW%d_%d", g, i))
				if err := server.CreateSession(ctx, s); err != nil {
					errs <- fmt.Errorf("CreateSession during rotation: %v", err)
					return
				}
				created.Store(s.AccessKeyID, s)
				c := newCredential(fmt.Sprintf("CREDNEW%d_%d", g, i))
				if err := server.CreateCredential(ctx, c); err != nil {
					errs <- fmt.Errorf("CreateCredential during rotation: %v", err)
					return
				}
				created.Store(c.ID, c)
			}
		}()
	}
	n, err := rotator.RotateKey(ctx, newKey, newFile, 5)
	if err == nil {
		err = rotator.FinishRotation(ctx)
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if err != nil {
		t.Fatal(err)
	}
	if n < 120 {
		t.Fatalf("resealed %d rows, want at least 120", n)
	}
	created.Range(func(id, s any) bool {
		if c, ok := s.(*shiftkey.Credential); ok {
			creds[c.ID] = c
			return true
		}
		got, err := server.Session(ctx, id.(string))
		if err != nil || got.Secret != s.(*shiftkey.Session).Secret {
			t.Errorf("session %s created during the rotation: %v", id, err)
		}
		return true
	})
	for id, v := range rawSecrets(t, path) {
		if !strings.HasPrefix(v, secretbox.Prefix(newKey.ID())) {
			t.Errorf("%s after the rotation: %.30q, not sealed under the new key", id, v)
		}
		if _, err := oldKey.Open(v, nil); err == nil {
			t.Errorf("the old key opens %s", id)
		}
		if id, ok := strings.CutPrefix(id, "cred:"); ok {
			if _, err := oldKey.Open(v, []byte("credentials.digests\x00"+id)); err == nil {
				t.Errorf("the old key opens the digests of %s", id)
			}
			if _, err := newKey.Open(v, []byte("credentials.digests\x00"+id)); err != nil {
				t.Errorf("the new key does not open the digests of %s: %v", id, err)
			}
		}
	}
	// The old key alone no longer opens the store; the new one does.
	if db, err := sqlite.Open(ctx, path, sqlite.WithKey(oldKey, oldFile)); err == nil {
		db.Close()
		t.Fatal("the store opened with the retired key")
	}
	db := mustOpen(t, path, sqlite.WithKey(newKey, newFile))
	defer db.Close()
	for id, secret := range want {
		if k, err := db.AccessKey(ctx, id); err != nil || k.Secret != secret {
			t.Fatalf("after rotation %s: %v", id, err)
		}
	}
	assertDigests(t, db, creds)
}

// assertDigests checks that db reads back want's verifiers.
func assertDigests(t *testing.T, db *sqlite.DB, want map[string]*shiftkey.Credential) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.LoginSalt(ctx, "c", "IAM:d", "", shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: 1}); err != nil {
		t.Fatal(err)
	}
	got, _, _, err := db.LiveCredentials(ctx, "c", "IAM:d", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d live credentials, want %d", len(got), len(want))
	}
	for _, c := range got {
		w := want[c.ID]
		if w == nil || !bytes.Equal(c.DigestSHA256, w.DigestSHA256) || !bytes.Equal(c.DigestMD5, w.DigestMD5) {
			t.Fatalf("credential %s read back digests %x %x", c.ID, c.DigestSHA256, c.DigestMD5)
		}
	}
}

// Credentials issued by a store without a key keep their verifiers in the
// clear and log in; the first open with a key seals them (and the clear
// bytes leave the files); FinishRotation refuses while one is still
// sealed under the retired key.
func TestDigestsSealedAtOpenAndRotation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	db := mustOpen(t, path)
	creds := map[string]*shiftkey.Credential{}
	for _, id := range []string{"CREDA", "CREDB"} {
		c := newCredential(id)
		if err := db.CreateCredential(ctx, c); err != nil {
			t.Fatal(err)
		}
		creds[id] = c
	}
	// A revoked credential keeps its verifiers with its revocation:
	// sealed, resealed and read back as the live ones.
	revoked := newCredential("CREDC")
	if err := db.CreateCredential(ctx, revoked); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RevokeCredentials(ctx, shiftkey.CredentialFilter{ID: "CREDC"}, time.Now(), false); err != nil {
		t.Fatal(err)
	}
	assertDigests(t, db, creds)
	assertRevokedDigests(t, db, revoked)
	for id, v := range rawSecrets(t, path) {
		if !strings.HasPrefix(v, "clear:") {
			t.Fatalf("%s sealed in a store without a key: %.30q", id, v)
		}
	}
	if _, ok := rawSecrets(t, path)["revoked:CREDC"]; !ok {
		t.Fatal("the revocation of CREDC kept no verifiers")
	}
	db.Close()

	oldKey, oldFile := keyFile(t, dir, "old.key")
	db = mustOpen(t, path, sqlite.WithKey(oldKey, oldFile))
	assertDigests(t, db, creds)
	raw := rawSecrets(t, path)
	for id, v := range raw {
		if !strings.HasPrefix(v, secretbox.Prefix(oldKey.ID())) {
			t.Fatalf("%s not sealed at the open with a key: %.30q", id, v)
		}
	}
	secrets := map[string]string{}
	for id, c := range creds {
		secrets[id+" code-13 digest"], secrets[id+" MD5 digest"] = string(c.DigestSHA256), string(c.DigestMD5)
	}
	secrets["CREDC code-13 digest"], secrets["CREDC MD5 digest"] = string(revoked.DigestSHA256), string(revoked.DigestMD5)
	assertNoSecretInFiles(t, storeFiles(path), secrets)
	assertRevokedDigests(t, db, revoked)

	newKey, newFile := keyFile(t, dir, "new.key")
	if n, err := db.RotateKey(ctx, newKey, newFile, 1); err != nil || n != 3 {
		t.Fatalf("RotateKey: %d rows, %v; want 3", n, err)
	}
	// Put CREDA's verifiers back as the old key sealed them.
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Exec(`UPDATE credentials SET digests = ? WHERE id = 'CREDA'`, raw["cred:CREDA"]); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishRotation(ctx); err == nil || !strings.Contains(err.Error(), "1 secrets are not yet sealed") {
		t.Fatalf("FinishRotation with a credential sealed under the old key: %v", err)
	}
	if n, err := db.RotateKey(ctx, newKey, newFile, 1); err != nil || n != 1 {
		t.Fatalf("RotateKey again: %d rows, %v; want 1", n, err)
	}
	if _, err := other.Exec(`UPDATE credential_revocations SET digests = ? WHERE id = 'CREDC'`, raw["revoked:CREDC"]); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishRotation(ctx); err == nil || !strings.Contains(err.Error(), "1 secrets are not yet sealed") {
		t.Fatalf("FinishRotation with a revocation's verifiers sealed under the old key: %v", err)
	}
	if _, err := db.RotateKey(ctx, newKey, newFile, 1); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishRotation(ctx); err != nil {
		t.Fatal(err)
	}
	for id, v := range rawSecrets(t, path) {
		if !strings.HasPrefix(v, secretbox.Prefix(newKey.ID())) {
			t.Errorf("%s after the rotation: %.30q", id, v)
		}
	}
	db.Close()
	db = mustOpen(t, path, sqlite.WithKey(newKey, newFile))
	defer db.Close()
	assertDigests(t, db, creds)
	assertRevokedDigests(t, db, revoked)
}

func assertRevokedDigests(t *testing.T, db *sqlite.DB, want *shiftkey.Credential) {
	t.Helper()
	got, err := db.RevokedCredentials(context.Background(), want.Cluster, want.LoginName, time.Now())
	if err != nil || len(got) != 1 || got[0].ID != want.ID || !bytes.Equal(got[0].DigestSHA256, want.DigestSHA256) || !bytes.Equal(got[0].DigestMD5, want.DigestMD5) {
		t.Fatalf("RevokedCredentials = %+v, %v; want %s with its verifiers", got, err, want.ID)
	}
}
