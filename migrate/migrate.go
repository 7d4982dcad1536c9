// Package migrate walks a store's schema migrations: the migrations/*.sql
// files of its embedded file system, in name order. The store runs each
// one it has not recorded yet, with its record, in one transaction.
package migrate

import (
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"
)

// Apply passes every migrations/*.sql file of fsys to apply, in name
// order, with its name and text. It stops at the first error, prefixed
// with the file's name.
func Apply(fsys fs.FS, apply func(name, sql string) error) error {
	names, err := names(fsys)
	if err != nil {
		return err
	}
	for _, name := range names {
		buf, err := fs.ReadFile(fsys, name)
		if err == nil {
			err = apply(name, string(buf))
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func names(fsys fs.FS) ([]string, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	sort.Strings(names)
	return names, err
}

// CheckKnown fails when applied (the migrations a store records as
// required: all but the additive ones) names one that fsys does not have:
// a newer shiftkey migrated the store, and this one, which does not know
// that schema, must not serve it (nor apply its own migrations on top of
// it). A store passes only its required migrations, so that a newer
// shiftkey's additive ones do not stop this one.
func CheckKnown(fsys fs.FS, applied []string) error {
	known, err := names(fsys)
	if err != nil {
		return err
	}
	var unknown []string
	for _, a := range applied {
		if !slices.Contains(known, a) {
			unknown = append(unknown, a)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("the store was migrated by a newer shiftkey (migrations this version does not know: %s): run that version or a later one", strings.Join(unknown, ", "))
	}
	return nil
}

// Pending is the migrations of fsys that done (every migration a store
// records, required and additive) lacks, in name order.
func Pending(fsys fs.FS, done []string) ([]string, error) {
	known, err := names(fsys)
	if err != nil {
		return nil, err
	}
	var pending []string
	for _, k := range known {
		if !slices.Contains(done, k) {
			pending = append(pending, k)
		}
	}
	return pending, nil
}

// additiveMark is the line, in the comment that opens a migration, by which
// it says it is additive: the schema it leaves can still be served by a
// shiftkey that does not know it (see CheckAdditive). A store records an
// additive migration apart from the others, so that such a shiftkey,
// which checks only the others (CheckKnown), starts on it.
const additiveMark = "-- migrate: additive"

// Additive reports whether migration says it is additive: a line that is
// exactly additiveMark among the comment lines that open it.
func Additive(migration string) bool {
	for _, line := range strings.Split(migration, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == additiveMark:
			return true
		case line == "" || strings.HasPrefix(line, "--"):
		default:
			return false
		}
	}
	return false
}

// CheckAdditive fails unless migration is marked additive and does only
// what code written for the schema before it cannot trip on, whose INSERTs
// name their columns and whose SELECTs name what they read: add a column
// that is nullable and has no default, constraint or reference (the older
// code's rows leave it NULL; its deletes are not refused on its account),
// fill the NULLs of a column it added (a backfill: UPDATE t SET c = …
// WHERE c IS NULL, c alone; the older code never reads c), create a
// table, create an index that is not unique.
func CheckAdditive(migration string) error {
	if !Additive(migration) {
		return fmt.Errorf("not marked %q", additiveMark)
	}
	var text strings.Builder
	for _, line := range strings.Split(migration, "\n") {
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i]
		}
		text.WriteString(line)
		text.WriteByte('\n')
	}
	added := map[string]bool{} // "TABLE.COLUMN" added by the statements so far
	for _, stmt := range strings.Split(text.String(), ";") {
		words := strings.Fields(strings.ToUpper(stmt))
		if len(words) == 0 {
			continue
		}
		var err error
		if words[0] == "UPDATE" {
			err = checkBackfill(words, added)
		} else {
			err = checkAdditiveStatement(words)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", strings.Join(strings.Fields(stmt), " "), err)
		}
		// ALTER TABLE [IF EXISTS] t ADD [COLUMN] c …
		if rest := words[min(2, len(words)):]; words[0] == "ALTER" {
			if len(rest) > 0 && rest[0] == "IF" {
				rest = rest[min(2, len(rest)):]
			}
			if len(rest) >= 3 {
				col := rest[2]
				if col == "COLUMN" && len(rest) >= 4 {
					col = rest[3]
				}
				added[rest[0]+"."+col] = true
			}
		}
	}
	return nil
}

// checkBackfill allows UPDATE t SET c = expr WHERE c IS NULL where the
// same migration added t.c and expr sets nothing else (no comma outside
// parentheses): rows the older code wrote keep what it wrote, and it
// never reads c.
func checkBackfill(w []string, added map[string]bool) error {
	bad := fmt.Errorf("only a backfill of a column the migration added (UPDATE t SET c = … WHERE c IS NULL) is an additive UPDATE")
	n := len(w)
	if n < 9 || w[2] != "SET" || w[4] != "=" {
		return bad
	}
	t, c := w[1], w[3]
	if !added[t+"."+c] || w[n-4] != "WHERE" || w[n-3] != c || w[n-2] != "IS" || w[n-1] != "NULL" {
		return bad
	}
	depth := 0
	for _, r := range strings.Join(w[5:n-4], " ") {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				return bad
			}
		}
	}
	if depth != 0 {
		return bad
	}
	return nil
}

func checkAdditiveStatement(w []string) error {
	starts := func(prefix ...string) bool {
		return len(w) >= len(prefix) && slices.Equal(w[:len(prefix)], prefix)
	}
	switch {
	case starts("CREATE", "TABLE"), starts("CREATE", "INDEX"):
		return nil
	case starts("ALTER", "TABLE"):
		rest := w[2:]
		if len(rest) > 0 && rest[0] == "IF" { // IF EXISTS
			rest = rest[min(2, len(rest)):]
		}
		if len(rest) < 2 || rest[1] != "ADD" {
			return fmt.Errorf("an ALTER TABLE other than ADD COLUMN is not additive")
		}
		for _, word := range rest[2:] {
			word = strings.TrimRight(strings.SplitN(word, "(", 2)[0], ",")
			switch word {
			case "NOT", "DEFAULT", "CHECK", "UNIQUE", "PRIMARY", "REFERENCES", "GENERATED", "CONSTRAINT", "FOREIGN":
				return fmt.Errorf("a column added with %s is not additive: an older shiftkey's rows leave it NULL", word)
			}
		}
		return nil
	default:
		return fmt.Errorf("only ADD COLUMN, CREATE TABLE and CREATE INDEX are additive")
	}
}
