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

// CheckKnown fails when applied (the migrations a store records) names one
// that fsys does not have: a newer shiftkey migrated the store, and this
// one, which does not know that schema, must not serve it (nor apply its
// own migrations on top of it).
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
