package postgres_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/postgres"
	"github.com/shiftkey/shiftkey/secretbox"
)

// recorder collects the changes a store's feed delivers.
type recorder struct {
	mu  sync.Mutex
	got []shiftkey.Change
}

func (r *recorder) add(c shiftkey.Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, c)
}

func (r *recorder) snapshot() []shiftkey.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]shiftkey.Change{}, r.got...)
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Two processes on one store: what A writes reaches B's subscribers in
// commit order, A does not hear its own writes, and a lost feed is
// followed by the zero Change.
func TestChangeFeed(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	a, b := open(t, url), open(t, url)
	var onA, onB recorder
	a.Subscribe(onA.add)
	b.Subscribe(onB.add)

	if err := a.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "kim", ID: "AIDAFEED", Path: "/", ARN: "arn:aws:iam::1:user/kim", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateAccessKey(ctx, &shiftkey.AccessKey{ID: "AKIAFEED", Secret: "s", UserName: "kim", Status: "Active", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := a.UpdateAccessKey(ctx, "AKIAFEED", "Inactive"); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateCredential(ctx, &shiftkey.Credential{ID: "c1", Cluster: "c", LoginName: "IAM:kim", DBUser: "kim", StoredKey: []byte{1}, ServerKey: []byte{2},
		CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// A new credential or salt announces nothing (no replica caches them);
	// deleting credentials does.
	if _, err := a.LoginSalt(ctx, "c", "IAM:new", "", shiftkey.LoginSalt{Salt: []byte{1}, Iterations: 1}); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteCredentials(ctx, "c", "IAM:kim"); err != nil {
		t.Fatal(err)
	}
	want := []shiftkey.Change{
		{Kind: shiftkey.KindUser, Name: "kim"},
		{Kind: shiftkey.KindAccessKey, Name: "AKIAFEED"},
		{Kind: shiftkey.KindAccessKey, Name: "AKIAFEED"},
		{Kind: shiftkey.KindCredential, Name: "c\x00IAM:kim"},
	}
	waitFor(t, time.Second, "B heard A's four writes", func() bool { return len(onB.snapshot()) >= len(want) })
	got := onB.snapshot()
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("change %d on B = %q, want %q (all: %q)", i, got[i], want[i], got)
		}
	}
	// A failed write announces nothing: the NOTIFY is in its transaction.
	if err := a.CreateAccessKey(ctx, &shiftkey.AccessKey{ID: "AKIANONE", Secret: "s", UserName: "nobody", Status: "Active", CreatedAt: time.Now()}); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatal(err)
	}
	if err := b.DeleteAccessKey(ctx, "AKIAFEED"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "A heard B's delete", func() bool { return len(onA.snapshot()) == 1 })
	if got := onA.snapshot(); got[0] != (shiftkey.Change{Kind: shiftkey.KindAccessKey, Name: "AKIAFEED"}) {
		t.Fatalf("A heard %q, want only B's delete", got)
	}
	if n := len(onB.snapshot()); n != len(want) {
		t.Fatalf("B heard %d changes, want %d: its own write, A's failed one and A's new credential and salt are not announced: %q", n, len(want), onB.snapshot())
	}

	// Cut B's LISTEN connection: B reconnects and says anything may have
	// changed; then it hears A again.
	s := adminConn(t, url)
	if _, err := s.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "B delivered the zero Change after reconnecting", func() bool {
		for _, c := range onB.snapshot()[len(want):] {
			if c == (shiftkey.Change{}) {
				return true
			}
		}
		return false
	})
	if err := a.DeleteEntity(ctx, shiftkey.KindUser, "kim"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "B heard A after reconnecting", func() bool {
		got := onB.snapshot()
		return got[len(got)-1] == shiftkey.Change{Kind: shiftkey.KindUser, Name: "kim"}
	})
}

func adminConn(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// Secrets are sealed at rest as in the SQLite store, a replica with
// another key is refused, and so is one without a key.
func TestSecretsSealed(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	key, _, err := secretbox.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	db := open(t, url, postgres.WithKey(key, ""))
	secret := shiftkey.NewSecretKey()
	if err := db.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "u", ID: "AIDASEAL", Path: "/", ARN: "arn", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAccessKey(ctx, &shiftkey.AccessKey{ID: "AKIASEAL", Secret: secret, UserName: "u", Status: "Active", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	sess := &shiftkey.Session{AccessKeyID: "ASIASEAL", Secret: shiftkey.NewSecretKey(), Token: "tok" + shiftkey.NewSecretKey(), RoleName: "r",
		SessionName: "s", SourceARN: "arn", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := db.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	cred := newCredential("CREDSEAL")
	if err := db.CreateCredential(ctx, cred); err != nil {
		t.Fatal(err)
	}
	var dump strings.Builder
	rows, err := adminConn(t, url).Query(ctx, `SELECT secret FROM access_keys UNION ALL SELECT secret || encode(token_sha256, 'hex') FROM sessions
		UNION ALL SELECT c::text FROM credentials c UNION ALL SELECT encode(convert_to(c::text, 'UTF8'), 'escape') FROM credentials c`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v string
		rows.Scan(&v)
		dump.WriteString(v)
	}
	rows.Close()
	for what, s := range map[string]string{"IAM secret": secret, "session secret": sess.Secret, "session token": sess.Token,
		"code-13 digest": string(cred.DigestSHA256), "MD5 digest": string(cred.DigestMD5),
		"code-13 digest (hex)": hex.EncodeToString(cred.DigestSHA256), "MD5 digest (hex)": hex.EncodeToString(cred.DigestMD5)} {
		if strings.Contains(dump.String(), s) {
			t.Errorf("%s stored in the clear", what)
		}
	}
	assertDigests(t, db, cred)
	if k, err := db.AccessKey(ctx, "AKIASEAL"); err != nil || k.Secret != secret {
		t.Fatalf("access key round trip: %v", err)
	}
	other, _, _ := secretbox.GenerateKey()
	if d, err := postgres.Open(ctx, url, postgres.WithKey(other, "")); err == nil {
		d.Close()
		t.Fatal("a replica with another store key was let in")
	}
	if d, err := postgres.Open(ctx, url); err == nil {
		d.Close()
		t.Fatal("a replica without a store key was let in")
	}
}

// newCredential is a credential of (c, IAM:d) with random digests, as
// redshift issues them.
func newCredential(id string) *shiftkey.Credential {
	now := time.Now()
	sha, md := make([]byte, 32), make([]byte, 16)
	rand.Read(sha)
	rand.Read(md)
	return &shiftkey.Credential{ID: id, Cluster: "c", LoginName: "IAM:d", DBUser: "d", StoredKey: []byte("stored-" + id), ServerKey: []byte("server-" + id),
		DigestSHA256: sha, DigestMD5: md, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
}

// assertDigests checks that db reads back want's verifiers.
func assertDigests(t *testing.T, db *postgres.DB, want ...*shiftkey.Credential) {
	t.Helper()
	ctx := context.Background()
	db.LoginSalt(ctx, "c", "IAM:d", "", shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: 1})
	got, _, _, err := db.LiveCredentials(ctx, "c", "IAM:d", time.Now())
	if err != nil || len(got) != len(want) {
		t.Fatalf("LiveCredentials: %d, %v; want %d", len(got), err, len(want))
	}
	for i, c := range got {
		if w := want[i]; c.ID != w.ID || !bytes.Equal(c.DigestSHA256, w.DigestSHA256) || !bytes.Equal(c.DigestMD5, w.DigestMD5) {
			t.Fatalf("credential %s read back digests %x %x", c.ID, c.DigestSHA256, c.DigestMD5)
		}
	}
}

// Verifiers issued by a store without a key are in the clear and read
// back; the first open with a key seals them, and they still read back.
func TestCredentialDigestsSealedAtOpen(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	db := open(t, url)
	cred := newCredential("CREDCLEAR")
	if err := db.CreateCredential(ctx, cred); err != nil {
		t.Fatal(err)
	}
	assertDigests(t, db, cred)
	db.Close()
	key, _, err := secretbox.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	db = open(t, url, postgres.WithKey(key, ""))
	var digests string
	var clear bool
	if err := adminConn(t, url).QueryRow(ctx, `SELECT digests, digest_sha256 IS NOT NULL OR digest_md5 IS NOT NULL FROM credentials WHERE id = 'CREDCLEAR'`).
		Scan(&digests, &clear); err != nil {
		t.Fatal(err)
	}
	if clear || !strings.HasPrefix(digests, secretbox.Prefix(key.ID())) {
		t.Fatalf("after the open with a key: digests %.30q, clear columns set: %v", digests, clear)
	}
	assertDigests(t, db, cred)
}

// The digests of the other password exchanges round-trip, and are NULL
// (nil) when not issued.
func TestCredentialDigests(t *testing.T) {
	ctx := context.Background()
	key, _, err := secretbox.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	db := open(t, newURL(t), postgres.WithKey(key, ""))
	now := time.Now()
	db.LoginSalt(ctx, "c", "IAM:d", "", shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: 4096})
	for _, c := range []*shiftkey.Credential{
		{ID: "with", DigestSHA256: bytes.Repeat([]byte{7}, 32), DigestMD5: bytes.Repeat([]byte{5}, 16)},
		{ID: "without"},
	} {
		c.Cluster, c.LoginName, c.DBUser, c.StoredKey, c.ServerKey, c.CreatedAt, c.ExpiresAt = "c", "IAM:d", "d", []byte{1}, []byte{2}, now, now.Add(time.Hour)
		if err := db.CreateCredential(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	creds, _, _, err := db.LiveCredentials(ctx, "c", "IAM:d", now)
	if err != nil || len(creds) != 2 {
		t.Fatal(creds, err)
	}
	by := map[string]*shiftkey.Credential{creds[0].ID: creds[0], creds[1].ID: creds[1]}
	if w := by["with"]; !bytes.Equal(w.DigestSHA256, bytes.Repeat([]byte{7}, 32)) || !bytes.Equal(w.DigestMD5, bytes.Repeat([]byte{5}, 16)) {
		t.Fatalf("digests lost: %x %x", w.DigestSHA256, w.DigestMD5)
	}
	if w := by["without"]; w.DigestSHA256 != nil || w.DigestMD5 != nil {
		t.Fatalf("absent digests read as %x %x, want nil", w.DigestSHA256, w.DigestMD5)
	}
}

// Session grants are leased: another replica sees a live owner's grants
// as not its own, and a dead owner's once the lease ran out.
func TestGrantLease(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	// Renewed every third of it: a renewal may be 2/3 of a lease late on a
	// loaded machine before B could see the grant as a dead owner's.
	lease := time.Second
	a := open(t, url, postgres.WithGrantLease(lease))
	b := open(t, url, postgres.WithGrantLease(lease))
	g := shiftkey.SessionGrant{Scope: "c", Role: "alice", Group: "readers"}
	if err := a.RecordGrant(ctx, g); err != nil {
		t.Fatal(err)
	}
	if gs, _ := a.Grants(ctx, "c"); len(gs) != 1 || !reflect.DeepEqual(gs[0], g) {
		t.Fatalf("owner's grants: %v", gs)
	}
	// A renews while it lives: B never sees the grant over several leases.
	for end := time.Now().Add(3 * lease); time.Now().Before(end); time.Sleep(lease / 4) {
		if gs, _ := b.Grants(ctx, "c"); len(gs) != 0 {
			t.Fatalf("B sees a live replica's grant as its own: %v", gs)
		}
	}
	a.Close() // stops renewing, as a killed replica does
	var took shiftkey.SessionGrant
	waitFor(t, 3*lease, "B took over the dead owner's grant", func() bool {
		gs, _ := b.Grants(ctx, "c")
		if len(gs) == 1 {
			took = gs[0]
		}
		return len(gs) == 1
	})
	// It names the dead owner: host/pid/id, for the revoke's audit record.
	want := g
	want.LeftBy = a.Origin()
	if !reflect.DeepEqual(took, want) || !strings.Contains(took.LeftBy, fmt.Sprintf("/%d/", os.Getpid())) {
		t.Fatalf("B reads the dead owner's grant as %+v, want %+v (host/pid/id)", took, want)
	}
	if err := b.ForgetGrant(ctx, g); err != nil {
		t.Fatal(err)
	}
	if gs, _ := b.Grants(ctx, "c"); len(gs) != 0 {
		t.Fatalf("after B revoked it: %v", gs)
	}
}

// Replicas find each other's gateways of a scope through the store, to
// forward cancel requests: each lists the others' live ones, not its own,
// not another scope's, not one whose lease ran out (a killed replica's),
// and not one that closed its store.
func TestGatewayPeers(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	a, b := open(t, url), open(t, url)
	for db, addr := range map[*postgres.DB]string{a: "10.0.0.1:5439", b: "10.0.0.2:5439"} {
		if err := db.AdvertiseGateway(ctx, "c", addr); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.AdvertiseGateway(ctx, "other", "10.0.0.1:5440"); err != nil {
		t.Fatal(err)
	}
	raw, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close(ctx)
	if _, err := raw.Exec(ctx, `INSERT INTO gateway_peers (scope, owner, address, lease_until) VALUES
		('c', 'killed', '10.0.0.3:5439', now() - interval '1 second'), ('c', 'long gone', '10.0.0.4:5439', now() - interval '2 hours')`); err != nil {
		t.Fatal(err)
	}
	for db, want := range map[*postgres.DB]string{a: "10.0.0.2:5439", b: "10.0.0.1:5439"} {
		peers, err := db.GatewayPeers(ctx, "c")
		if err != nil || len(peers) != 1 || peers[0] != want {
			t.Fatalf("peers of %s: %v, %v; want [%s]", db.Origin(), peers, err, want)
		}
	}
	var n int
	if err := raw.QueryRow(ctx, `SELECT count(*) FROM gateway_peers WHERE owner IN ('killed', 'long gone')`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d dead replicas' records left (%v), want 1: the one dead for over an hour goes", n, err)
	}
	// Re-advertised at a new address (a replica restarted its gateway).
	if err := b.AdvertiseGateway(ctx, "c", "10.0.0.9:5439"); err != nil {
		t.Fatal(err)
	}
	if peers, _ := a.GatewayPeers(ctx, "c"); len(peers) != 1 || peers[0] != "10.0.0.9:5439" {
		t.Fatalf("after B moved: %v", peers)
	}
	// A record that went (a long outage's purge, a DELETE by hand) is
	// written again by the next renewal.
	lease := 300 * time.Millisecond
	c := open(t, url, postgres.WithGrantLease(lease))
	if err := c.AdvertiseGateway(ctx, "c", "10.0.0.5:5439"); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(ctx, `DELETE FROM gateway_peers WHERE address = '10.0.0.5:5439'`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*lease, "the deleted record is renewed", func() bool {
		peers, _ := a.GatewayPeers(ctx, "c")
		return slices.Contains(peers, "10.0.0.5:5439")
	})
	c.Close()
	if err := b.WithdrawGateway(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if peers, _ := a.GatewayPeers(ctx, "c"); len(peers) != 0 {
		t.Fatalf("after B withdrew: %v", peers)
	}
	b.AdvertiseGateway(ctx, "c", "10.0.0.2:5439")
	b.Close()
	if peers, _ := a.GatewayPeers(ctx, "c"); len(peers) != 0 {
		t.Fatalf("after B closed its store: %v", peers)
	}
}

// A revocation marked terminate later (`credentials revoke --terminate`
// after a revoke without it) is announced as the revoke was: each login
// it touched once, so that every replica's revocation watch checks that
// login's sessions; a call that marks nothing announces nothing.
func TestTerminateRevokedIsAnnounced(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	a, b := open(t, url), open(t, url)
	var onB recorder
	b.Subscribe(onB.add)
	for _, id := range []string{"t1", "t2"} {
		if err := a.CreateCredential(ctx, &shiftkey.Credential{ID: id, Cluster: "c", LoginName: "IAM:kim", DBUser: "kim", StoredKey: []byte{1}, ServerKey: []byte{2},
			CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.RevokeCredentials(ctx, shiftkey.CredentialFilter{LoginName: "IAM:kim"}, time.Now(), false); err != nil {
		t.Fatal(err)
	}
	login := shiftkey.Change{Kind: shiftkey.KindCredential, Name: "c\x00IAM:kim"}
	waitFor(t, time.Second, "B heard the revoke", func() bool { return len(onB.snapshot()) == 1 })
	if got, err := a.TerminateRevoked(ctx, shiftkey.CredentialFilter{LoginName: "IAM:kim"}); err != nil || len(got) != 2 {
		t.Fatalf("TerminateRevoked = %+v, %v; want t1 and t2", got, err)
	}
	if got, err := a.TerminateRevoked(ctx, shiftkey.CredentialFilter{LoginName: "IAM:kim"}); err != nil || len(got) != 0 {
		t.Fatalf("TerminateRevoked again = %+v, %v; want nothing", got, err)
	}
	// A change after both, to know B has heard all before it.
	if err := a.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "kim", ID: "AIDATERM", Path: "/", ARN: "arn:aws:iam::1:user/kim", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "B heard the user", func() bool { return len(onB.snapshot()) >= 3 })
	if got, want := onB.snapshot(), []shiftkey.Change{login, login, {Kind: shiftkey.KindUser, Name: "kim"}}; !slices.Equal(got, want) {
		t.Fatalf("B heard %q, want %q", got, want)
	}
}
