package pgwire

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
)

// lookups records the login names a gateway looked up.
type lookups struct {
	memCreds
	mu    sync.Mutex
	names []string
}

func (l *lookups) LiveCredentials(ctx context.Context, cluster, login string, now time.Time) ([]*shiftkey.Credential, shiftkey.LoginSalt, bool, error) {
	l.mu.Lock()
	l.names = append(l.names, login)
	l.mu.Unlock()
	return l.memCreds.LiveCredentials(ctx, cluster, login, now)
}

// Found in a review of the gateway's wire handling: a login name of up to
// 10 KB was looked up before any proof, and a lookup caches the name, so
// clients without a credential pinned 160 MB of heap with 9,000 long
// names. A name longer than any the API issues fails as an unknown login
// does (28P01, the same message), without a lookup.
func TestLoginNameTooLongIsNotLookedUp(t *testing.T) {
	rec := &lookups{}
	_, addr := newGateway(t, func(g *Gateway) {
		rec.memCreds = g.Credentials.(memCreds)
		g.Credentials = rec
	})
	long := "IAM:" + strings.Repeat("n", maxLoginName)
	for _, user := range []string{long, "IAM:unknown"} {
		_, err := pgx.Connect(context.Background(), "postgres://"+strings.ReplaceAll(user, ":", "%3A")+":pw@"+addr+"/db?sslmode=disable")
		if got := code(err); got != codeInvalidPassword {
			t.Fatalf("%d-byte name: %v, want %s", len(user), err, codeInvalidPassword)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.names) != 1 || rec.names[0] != "IAM:unknown" {
		t.Fatalf("looked up %d names (%.20q…), want IAM:unknown alone", len(rec.names), rec.names)
	}
}
