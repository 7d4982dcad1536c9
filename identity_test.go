package shiftkey_test

import (
	"errors"
	"testing"

	"github.com/shiftkey/shiftkey"
)

// AdmitAccessKey counts the keys of the user as lookUp found it, refuses
// the one past the quota and passes lookUp's and count's errors through.
func TestAdmitAccessKey(t *testing.T) {
	lookUp := func() (string, error) { return "Alice", nil }
	for held := range shiftkey.MaxAccessKeysPerUser + 2 {
		var counted string
		err := shiftkey.AdmitAccessKey(lookUp, func(user string) (int, error) { counted = user; return held, nil })
		if counted != "Alice" {
			t.Fatalf("count got user %q, want the stored name %q", counted, "Alice")
		}
		if full := held >= shiftkey.MaxAccessKeysPerUser; full != (shiftkey.ErrorCode(err) == shiftkey.CodeLimitExceeded) || !full && err != nil {
			t.Fatalf("with %d keys held: %v", held, err)
		}
	}
	missing := shiftkey.NoSuchEntity(shiftkey.KindUser, "bob")
	err := shiftkey.AdmitAccessKey(func() (string, error) { return "", missing }, func(string) (int, error) {
		t.Fatal("count called for a user that does not exist")
		return 0, nil
	})
	if err != missing {
		t.Fatalf("missing user: %v, want %v", err, missing)
	}
	broken := errors.New("connection lost")
	if err := shiftkey.AdmitAccessKey(lookUp, func(string) (int, error) { return 0, broken }); err != broken {
		t.Fatalf("failed count: %v, want %v", err, broken)
	}
}
