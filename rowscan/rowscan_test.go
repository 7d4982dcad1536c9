package rowscan

import (
	"errors"
	"slices"
	"testing"
)

// fakeRows is a result of ints whose iteration fails with iterErr.
type fakeRows struct {
	vals    []int
	at      int
	iterErr error
	closed  bool
}

func (r *fakeRows) Next() bool { r.at++; return r.at <= len(r.vals) }
func (r *fakeRows) Scan(dest ...any) error {
	*dest[0].(*int) = r.vals[r.at-1]
	return nil
}
func (r *fakeRows) Err() error   { return r.iterErr }
func (r *fakeRows) Close() error { r.closed = true; return nil }

func scanInt(r Row) (n int, err error) { return n, r.Scan(&n) }

func TestAllScansEveryRowInOrderAndCloses(t *testing.T) {
	rows := &fakeRows{vals: []int{3, 1, 2}}
	got, err := All(rows, scanInt)
	if err != nil || !slices.Equal(got, []int{3, 1, 2}) || !rows.closed {
		t.Fatalf("All = %v, %v (closed %v), want [3 1 2], nil, closed", got, err, rows.closed)
	}
}

func TestAllReturnsTheFirstScanErrorAndTheIterationsError(t *testing.T) {
	bad := errors.New("bad row")
	rows := &fakeRows{vals: []int{1, 2, 3}}
	n := 0
	got, err := All(rows, func(r Row) (int, error) {
		if n++; n == 2 {
			return 0, bad
		}
		return scanInt(r)
	})
	if !errors.Is(err, bad) || got != nil || !rows.closed || n != 2 {
		t.Fatalf("All = %v, %v after %d scans (closed %v), want nil, %v after 2, closed", got, err, n, rows.closed, bad)
	}
	broken := errors.New("connection lost")
	rows = &fakeRows{vals: []int{1}, iterErr: broken}
	if _, err := All(rows, scanInt); !errors.Is(err, broken) {
		t.Fatalf("All's error = %v, want %v", err, broken)
	}
}
