package sqlite_test

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/shiftkey/shiftkey"
)

// Declared marks are per kind and id, survive a reopen, and re-marking
// updates the name without a duplicate.
func TestDeclaredMarks(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	db := mustOpen(t, path)
	for _, r := range []shiftkey.DeclaredRef{
		{Kind: shiftkey.KindUser, ID: "AIDA2", Name: "zed"}, {Kind: shiftkey.KindUser, ID: "AIDA1", Name: "ann"},
		{Kind: shiftkey.KindRole, ID: "AROA1", Name: "ann"}, {Kind: shiftkey.KindUser, ID: "AIDA1", Name: "Ann"},
	} {
		if err := db.MarkDeclared(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	db = mustOpen(t, path)
	defer db.Close()
	users, err := db.DeclaredRefs(ctx, shiftkey.KindUser)
	want := []shiftkey.DeclaredRef{{Kind: shiftkey.KindUser, ID: "AIDA1", Name: "Ann"}, {Kind: shiftkey.KindUser, ID: "AIDA2", Name: "zed"}}
	if err != nil || !reflect.DeepEqual(users, want) {
		t.Fatalf("DeclaredRefs(user) = %v %v, want %v", users, err, want)
	}
	if err := db.UnmarkDeclared(ctx, shiftkey.KindUser, "AIDA1"); err != nil {
		t.Fatal(err)
	}
	if err := db.UnmarkDeclared(ctx, shiftkey.KindUser, "AIDA1"); err != nil {
		t.Fatalf("unmarking twice: %v", err)
	}
	if users, _ := db.DeclaredRefs(ctx, shiftkey.KindUser); len(users) != 1 || users[0].ID != "AIDA2" {
		t.Fatalf("after unmark: %v", users)
	}
	if roles, _ := db.DeclaredRefs(ctx, shiftkey.KindRole); len(roles) != 1 || roles[0].Name != "ann" {
		t.Fatalf("roles: %v", roles)
	}
}
