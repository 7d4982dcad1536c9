package postgres_test

import (
	"context"
	"testing"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/internal/storetest"
	"github.com/shiftkey/shiftkey/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newURL is a fresh database on the shared test server.
func newURL(t testing.TB) string {
	t.Helper()
	s := pgtest.Server(t)
	return s.ConnString(s.Superuser(), pgtest.NewDatabase(t))
}

// open opens a store on url, closed when the test ends.
func open(t testing.TB, url string, opts ...postgres.Option) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) shiftkey.Store { return open(t, newURL(t)) })
}
