package migrate

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
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

// A migration says it is additive with a line "-- migrate: additive" in
// the comment that opens it; elsewhere the line says nothing.
func TestPendingIsWhatTheStoreLacksInNameOrder(t *testing.T) {
	fsys := fstest.MapFS{
		"migrations/0002_b.sql": {Data: []byte("B")},
		"migrations/0001_a.sql": {Data: []byte("A")},
		"migrations/0003_c.sql": {Data: []byte("C")},
	}
	for _, tt := range []struct{ done, want []string }{
		{nil, []string{"migrations/0001_a.sql", "migrations/0002_b.sql", "migrations/0003_c.sql"}},
		{[]string{"migrations/0001_a.sql", "migrations/0003_c.sql"}, []string{"migrations/0002_b.sql"}},
		{[]string{"migrations/0003_c.sql", "migrations/0002_b.sql", "migrations/0001_a.sql", "migrations/0004_newer.sql"}, nil},
	} {
		if got, err := Pending(fsys, tt.done); err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Pending(%v) = %v, %v; want %v", tt.done, got, err, tt.want)
		}
	}
}

func TestAdditiveReadsTheMarkInTheOpeningComment(t *testing.T) {
	for sql, want := range map[string]bool{
		"-- Why.\n-- migrate: additive\nALTER TABLE t ADD COLUMN c text;\n": true,
		"-- migrate: additive\r\nCREATE INDEX i ON t (c);":                  true,
		"-- Why.\nALTER TABLE t ADD COLUMN c text;\n":                       false,
		"ALTER TABLE t ADD COLUMN c text;\n-- migrate: additive\n":          false,
		"-- migrate: additive, or not\nALTER TABLE t ADD COLUMN c text;\n":  false,
		"\n-- migrate: additive\nALTER TABLE t DROP COLUMN c;\n":            true,
	} {
		if got := Additive(sql); got != want {
			t.Errorf("Additive(%q) = %v, want %v", sql, got, want)
		}
	}
}

// An additive migration may only add what an older shiftkey, which writes
// and reads the tables as they were, cannot trip on: nullable columns
// without a default, plain indexes, new tables.
func TestCheckAdditiveAllowsOnlyWhatOlderCodeCannotTripOn(t *testing.T) {
	ok := []string{
		"-- migrate: additive\nALTER TABLE credentials ADD COLUMN access_key_id text;\nALTER TABLE sessions ADD COLUMN source_access_key_id text;\nCREATE INDEX sessions_source_key ON sessions (source_access_key_id);\n",
		"-- migrate: additive\nCREATE TABLE IF NOT EXISTS t (id text PRIMARY KEY, n integer NOT NULL);\nCREATE INDEX IF NOT EXISTS t_n ON t (n);",
		"-- migrate: additive\nALTER TABLE k ADD COLUMN user_id text;\nUPDATE k SET user_id = (SELECT id FROM u WHERE u.kind = 'user' AND u.name = k.user_name) WHERE user_id IS NULL;\n",
		"-- migrate: additive\nALTER TABLE k ADD user_id text;\nupdate k set user_id = 'x' where user_id is null;",
		"-- migrate: additive\nALTER TABLE t ADD c INTEGER; -- a comment; with a semicolon\n",
	}
	for _, sql := range ok {
		if err := CheckAdditive(sql); err != nil {
			t.Errorf("CheckAdditive(%q) = %v, want nil", sql, err)
		}
	}
	bad := []string{
		"ALTER TABLE t ADD COLUMN c text;", // not marked
		"-- migrate: additive\nALTER TABLE t ADD COLUMN c text NOT NULL DEFAULT '';",
		"-- migrate: additive\nALTER TABLE t ADD COLUMN c text DEFAULT 'x';",
		"-- migrate: additive\nALTER TABLE t ADD COLUMN c text CHECK (c <> '');",
		"-- migrate: additive\nALTER TABLE t ADD COLUMN c text UNIQUE;",
		"-- migrate: additive\nALTER TABLE t ADD COLUMN c integer REFERENCES u (id);", // u's deletes may fail
		"-- migrate: additive\nALTER TABLE t DROP COLUMN c;",
		"-- migrate: additive\nALTER TABLE t RENAME COLUMN c TO d;",
		"-- migrate: additive\nALTER TABLE t ALTER COLUMN c SET NOT NULL;",
		"-- migrate: additive\nCREATE UNIQUE INDEX i ON t (c);",
		"-- migrate: additive\nUPDATE t SET c = lower(c);",
		"-- migrate: additive\nUPDATE t SET c = 'x' WHERE c IS NULL;",                                                // c not added here: older code reads it
		"-- migrate: additive\nALTER TABLE t ADD COLUMN c text;\nUPDATE t SET c = 'x', d = 'y' WHERE c IS NULL;",     // d too
		"-- migrate: additive\nALTER TABLE t ADD COLUMN c text;\nUPDATE t SET c = 'x' WHERE c IS NULL OR d IS NULL;", // not only the NULLs
		"-- migrate: additive\nALTER TABLE t ADD COLUMN c text;\nUPDATE t SET c = 'x' WHERE d IS NULL;",              // another column's NULLs
		"-- migrate: additive\nALTER TABLE t ADD COLUMN c text;\nUPDATE u SET c = 'x' WHERE c IS NULL;",              // another table
		"-- migrate: additive\nUPDATE t SET c = 'x' WHERE c IS NULL;\nALTER TABLE t ADD COLUMN c text;",              // before it is added
		"-- migrate: additive\nDROP INDEX i;",
		"-- migrate: additive\nCREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END;",
	}
	for _, sql := range bad {
		if err := CheckAdditive(sql); err == nil {
			t.Errorf("CheckAdditive(%q) = nil, want an error", sql)
		}
	}
}

// What makes an additive migration safe for the code written before it:
// the stores' queries name the columns they write and read, so a column
// added later is neither a value too few for an INSERT nor one too many
// for a Scan. RETURNING * is allowed only where it feeds a CTE (its
// reader names the columns).
func TestStoreQueriesNameTheirColumns(t *testing.T) {
	unnamed := regexp.MustCompile(`(?i)INSERT\s+(OR\s+\w+\s+)?INTO\s+\w+\s+(VALUES|SELECT|DEFAULT)\b|SELECT\s+(DISTINCT\s+)?\*|\w+\.\*\s+FROM|RETURNING\s+\*\s*($|[^\s)])`)
	var files []string
	for _, dir := range []string{"../postgres", "../sqlite"} {
		got, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(got) == 0 {
			t.Fatal(dir, got, err)
		}
		files = append(files, got...)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		buf, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range unnamed.FindAllIndex(buf, -1) {
			line := 1 + strings.Count(string(buf[:m[0]]), "\n")
			t.Errorf("%s:%d: %q does not name its columns: a column an additive migration adds breaks the version before it", f, line, buf[m[0]:m[1]])
		}
	}
}
