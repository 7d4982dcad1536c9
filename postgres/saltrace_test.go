package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/shiftkey/shiftkey"
)

// Replicas issuing for the same new logins at once, in batches of their
// own: every issuer of a login gets the one salt stored.
func TestLoginSaltAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	dbs := []interface {
		LoginSalt(context.Context, string, string, string, shiftkey.LoginSalt) (shiftkey.LoginSalt, error)
	}{open(t, url), open(t, url)}
	const logins, perLogin = 200, 8
	got := make([][]shiftkey.LoginSalt, logins)
	for i := range got {
		got[i] = make([]shiftkey.LoginSalt, perLogin)
	}
	var wg sync.WaitGroup
	errs := make(chan error, logins*perLogin)
	for j := range perLogin {
		wg.Go(func() {
			for k := range logins {
				i := (k + j*37) % logins
				if j%2 == 1 {
					i = logins - 1 - i // the other order on the other replica
				}
				s, err := dbs[j%2].LoginSalt(ctx, "c", fmt.Sprint("u", i), "", shiftkey.LoginSalt{Salt: []byte(fmt.Sprint(j)), Iterations: 1})
				if err != nil {
					errs <- fmt.Errorf("login %d, issuer %d: %w", i, j, err)
					continue
				}
				got[i][j] = s
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, ss := range got {
		for _, s := range ss[1:] {
			if !bytes.Equal(s.Salt, ss[0].Salt) {
				t.Fatalf("login %d: issuers got different salts %v", i, ss)
			}
		}
	}
}
