package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/internal/benchcpu"
)

// BenchmarkMissedCredentials10000 is the read a login of a name with
// 10,000 live credentials makes when its proof matched none of the cached
// ones (a wrong password, or a credential just issued on another
// replica), and the refresh of an entry the TTL or a write aged: the ids
// again, the decoded credentials reused.
func BenchmarkMissedCredentials10000(b *testing.B) {
	ctx := context.Background()
	d := open(b, newURL(b))
	now := time.Now()
	if _, err := d.LoginSalt(ctx, "c", "IAM:hot", "", shiftkey.LoginSalt{Salt: []byte("salt"), Iterations: 1}); err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Go(func() {
			for i := w; i < 10000; i += 64 {
				c := &shiftkey.Credential{ID: fmt.Sprint(i), Cluster: "c", LoginName: "IAM:hot", DBUser: "u", StoredKey: []byte{1}, ServerKey: []byte{2},
					CreatedAt: now.Add(time.Duration(i) * time.Microsecond), ExpiresAt: now.Add(time.Hour)}
				if err := d.CreateCredential(ctx, c); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	known, _, _, err := d.LiveCredentials(ctx, "c", "IAM:hot", now)
	if err != nil || len(known) != 10000 {
		b.Fatalf("%d live credentials, %v", len(known), err)
	}
	b.ReportAllocs()
	cpu := benchcpu.Start(b)
	for b.Loop() {
		if missed, err := d.MissedCredentials(ctx, "c", "IAM:hot", known, now); err != nil || len(missed) != 0 {
			b.Fatal(missed, err)
		}
	}
	cpu.Report()
}
