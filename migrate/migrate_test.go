package migrate

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestApplyRunsTheMigrationsInNameOrderAndStopsAtAFailure(t *testing.T) {
	fsys := fstest.MapFS{
		"migrations/0002_b.sql": {Data: []byte("B")},
		"migrations/0001_a.sql": {Data: []byte("A")},
		"migrations/0003_c.sql": {Data: []byte("C")},
		"migrations/notes.txt":  {Data: []byte("not a migration")},
		"other/0000.sql":        {Data: []byte("not a migration")},
	}
	var ran []string
	if err := Apply(fsys, func(name, sql string) error { ran = append(ran, name+"="+sql); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []string{"migrations/0001_a.sql=A", "migrations/0002_b.sql=B", "migrations/0003_c.sql=C"}
	if !slices.Equal(ran, want) {
		t.Fatalf("ran %v, want %v", ran, want)
	}
	bad := errors.New("syntax error")
	ran = nil
	err := Apply(fsys, func(name, sql string) error {
		ran = append(ran, name)
		if sql == "B" {
			return bad
		}
		return nil
	})
	if !errors.Is(err, bad) || err.Error() != "migrations/0002_b.sql: syntax error" || len(ran) != 2 {
		t.Fatalf("Apply = %v after %v, want migrations/0002_b.sql: syntax error after two", err, ran)
	}
}

func TestCheckKnownRefusesAMigrationItDoesNotHave(t *testing.T) {
	fsys := fstest.MapFS{
		"migrations/0001_a.sql": {Data: []byte("A")},
		"migrations/0002_b.sql": {Data: []byte("B")},
	}
	for _, applied := range [][]string{nil, {"migrations/0001_a.sql"}, {"migrations/0001_a.sql", "migrations/0002_b.sql"}} {
		if err := CheckKnown(fsys, applied); err != nil {
			t.Fatalf("CheckKnown(%v) = %v, want nil: an older or current store", applied, err)
		}
	}
	err := CheckKnown(fsys, []string{"migrations/0001_a.sql", "migrations/0002_b.sql", "migrations/0003_c.sql"})
	if err == nil || !strings.Contains(err.Error(), "migrations/0003_c.sql") {
		t.Fatalf("CheckKnown with a newer store's migration = %v, want an error naming it", err)
	}
}
