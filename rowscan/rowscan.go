// Package rowscan reads the rows of a query's result into a slice, for
// both stores' drivers: database/sql's *sql.Rows as they are, pgx's rows
// behind a Close that returns an error.
package rowscan

// Rows is a query's result, read once from its first row.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// Row is the row under the cursor (or a driver's single-row result).
type Row interface {
	Scan(dest ...any) error
}

// All scans every row of rows with scan, in order, and closes rows. It
// stops at scan's first error; otherwise its error is the iteration's.
func All[T any](rows Rows, scan func(Row) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
