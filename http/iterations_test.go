package http_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/shiftkey/shiftkey/scram"
)

// Changing the iteration count (scram_iterations) applies to logins
// created afterwards; a login that has a salt keeps its count, so its
// credentials issued before and after the change all verify with it.
func TestIterationsChangeKeepsExistingLogins(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	issue := func(user string) (string, string) {
		t.Helper()
		out, err := f.client("admin").GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
			ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String(user)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.DbUser), aws.ToString(out.DbPassword)
	}
	check := func(login string, passwords []string, want int) {
		t.Helper()
		creds, salt, ok, err := f.store.LiveCredentials(ctx, "dev-cluster", login, time.Now())
		if err != nil || !ok || len(creds) != len(passwords) {
			t.Fatalf("%s: %d credentials, %v %v", login, len(creds), ok, err)
		}
		if salt.Iterations != want {
			t.Fatalf("%s: salt of %d iterations, want %d", login, salt.Iterations, want)
		}
		for _, pw := range passwords {
			keys := scram.NewKeys(pw, salt.Salt, salt.Iterations)
			found := false
			for _, c := range creds {
				found = found || bytes.Equal(c.StoredKey, keys.StoredKey[:])
			}
			if !found {
				t.Fatalf("%s: a password does not verify against the login's salt", login)
			}
		}
	}
	alice, first := issue("alice")
	check(alice, []string{first}, scram.IssuedIterations)

	f.api.Redshift.Iterations = 1
	_, second := issue("alice")
	check(alice, []string{first, second}, scram.IssuedIterations)
	carol, pw := issue("carol")
	check(carol, []string{pw}, 1)
}
