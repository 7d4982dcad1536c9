package sqlite_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/internal/benchcpu"
	"github.com/shiftkey/shiftkey/secretbox"
	"github.com/shiftkey/shiftkey/sqlite"
)

// BenchmarkLiveCredentials is the gateway's per-login store lookup: a login
// with 3 live and 3 expired credentials, logging in again and again.
func BenchmarkLiveCredentials(b *testing.B) {
	db, now := benchLogin(b)
	for b.Loop() {
		creds, _, ok, err := db.LiveCredentials(context.Background(), "c", "IAM:u", now)
		if err != nil || !ok || len(creds) != 3 {
			b.Fatal(creds, ok, err)
		}
	}
}

// BenchmarkLiveCredentialsUncached is the same lookup when no cached read
// can answer it: each call's now is 1 ms earlier than the one before, which
// a read made at a later now cannot serve.
func BenchmarkLiveCredentialsUncached(b *testing.B) {
	db, now := benchLogin(b)
	for b.Loop() {
		now = now.Add(-time.Millisecond)
		creds, _, ok, err := db.LiveCredentials(context.Background(), "c", "IAM:u", now)
		if err != nil || !ok || len(creds) != 3 {
			b.Fatal(creds, ok, err)
		}
	}
}

func benchLogin(b *testing.B) (*sqlite.DB, time.Time) {
	ctx := context.Background()
	db := tempStore(b)
	now := time.Now()
	db.LoginSalt(ctx, "c", "IAM:u", "", shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: 4096})
	for i := range 6 {
		exp := now.Add(time.Hour)
		if i%2 == 0 {
			exp = now.Add(-time.Hour)
		}
		if err := db.CreateCredential(ctx, &shiftkey.Credential{ID: fmt.Sprint(i), Cluster: "c", LoginName: "IAM:u", DBUser: "u",
			StoredKey: make([]byte, 32), ServerKey: make([]byte, 32), CreatedAt: now, ExpiresAt: exp}); err != nil {
			b.Fatal(err)
		}
	}
	return db, now
}

// BenchmarkLiveCredentialsMany is the uncached lookup of a login with
// 10,000 live credentials, their digests sealed as serve stores them, when
// the cache holds an entry of the login it cannot answer from (one read at
// a later now here; one past its TTL or dropped by a write in serve).
func BenchmarkLiveCredentialsMany(b *testing.B) {
	db, now := manyCredentials(b)
	ctx := context.Background()
	b.ReportAllocs()
	cpu := benchcpu.Start(b)
	for b.Loop() {
		now = now.Add(-time.Millisecond)
		creds, _, ok, err := db.LiveCredentials(ctx, "c", "IAM:u", now)
		if err != nil || !ok || len(creds) != 10000 {
			b.Fatal(len(creds), ok, err)
		}
	}
	cpu.Report()
}

// BenchmarkLiveCredentialsManyCold is that lookup with nothing cached, as
// the first login of the name after a start: every row decoded.
func BenchmarkLiveCredentialsManyCold(b *testing.B) {
	db, now := manyCredentials(b)
	ctx := context.Background()
	b.ReportAllocs()
	cpu := benchcpu.Start(b)
	for b.Loop() {
		db.ForgetCredentials()
		creds, _, ok, err := db.LiveCredentials(ctx, "c", "IAM:u", now)
		if err != nil || !ok || len(creds) != 10000 {
			b.Fatal(len(creds), ok, err)
		}
	}
	cpu.Report()
}

// BenchmarkLiveCredentialsManyCached is the lookup of every login of that
// name once its entry is cached: what a gateway login costs the store.
func BenchmarkLiveCredentialsManyCached(b *testing.B) {
	db, now := manyCredentials(b)
	ctx := context.Background()
	if _, _, _, err := db.LiveCredentials(ctx, "c", "IAM:u", now); err != nil { // the read that fills the entry
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu := benchcpu.Start(b)
	for b.Loop() {
		now = now.Add(time.Microsecond) // a later now, as logins come
		creds, _, ok, err := db.LiveCredentials(ctx, "c", "IAM:u", now)
		if err != nil || !ok || len(creds) != 10000 {
			b.Fatal(len(creds), ok, err)
		}
	}
	cpu.Report()
}

// sealedStore is a store that seals digests under a key of its own, as
// serve's does.
func sealedStore(b *testing.B) *sqlite.DB {
	k, _, err := secretbox.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	return tempStore(b, sqlite.WithKey(k, ""))
}

// manyCredentials is a store with 10,000 live credentials of IAM:u.
func manyCredentials(b *testing.B) (*sqlite.DB, time.Time) {
	ctx := context.Background()
	db := sealedStore(b)
	now := time.Now()
	db.LoginSalt(ctx, "c", "IAM:u", "", shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: 4096})
	var wg sync.WaitGroup
	for i := range 10000 {
		wg.Go(func() {
			if err := db.CreateCredential(ctx, &shiftkey.Credential{ID: fmt.Sprint(i), Cluster: "c", LoginName: "IAM:u", DBUser: "u",
				StoredKey: make([]byte, 32), ServerKey: make([]byte, 32), DigestSHA256: make([]byte, 32), DigestMD5: make([]byte, 16),
				PrincipalARN: "arn:aws:iam::000000000000:user/bench", RequestID: shiftkey.NewUUID(),
				CreatedAt: now.Add(-time.Duration(i) * time.Millisecond), ExpiresAt: now.Add(time.Hour)}); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	return db, now
}

// BenchmarkCreateCredentialConcurrent is the issue path's write: 64
// issuers at once through the group writer, digests sealed as serve
// stores them. Its CPU profile is mostly the writer's, the serial part
// every issue waits for.
func BenchmarkCreateCredentialConcurrent(b *testing.B) {
	ctx := context.Background()
	db := sealedStore(b)
	now := time.Now()
	var n atomic.Int64
	b.SetParallelism(32) // × GOMAXPROCS issuers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if err := db.CreateCredential(ctx, &shiftkey.Credential{ID: fmt.Sprintf("%016x%016x", now.UnixMilli(), i), Cluster: "c",
				LoginName: fmt.Sprintf("IAM:u%d", i%1000), DBUser: "u", DBGroups: []string{"g"},
				StoredKey: make([]byte, 32), ServerKey: make([]byte, 32), DigestSHA256: make([]byte, 32), DigestMD5: make([]byte, 16),
				PrincipalARN: "arn:aws:iam::000000000000:user/bench", RequestID: shiftkey.NewUUID(),
				CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
