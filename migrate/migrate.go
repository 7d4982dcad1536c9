// Package migrate walks a store's schema migrations: the migrations/*.sql
// files of its embedded file system, in name order. The store runs each
// one it has not recorded yet, with its record, in one transaction.
package migrate

import (
	"fmt"
	"io/fs"
	"sort"
)

// Apply passes every migrations/*.sql file of fsys to apply, in name
// order, with its name and text. It stops at the first error, prefixed
// with the file's name.
func Apply(fsys fs.FS, apply func(name, sql string) error) error {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
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
