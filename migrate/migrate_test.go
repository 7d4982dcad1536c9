package migrate

import (
	"errors"
	"slices"
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
