package config

import (
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

// store.postgres selects the shared store, typically from the environment;
// it excludes store.sqlite and needs a store key every replica shares.
func TestStorePostgres(t *testing.T) {
	env := map[string]string{"SHIFTKEY_STORE_URL": "postgres://shiftkey@db.internal/shiftkey"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := Parse(strings.NewReader("store: {postgres: \"${SHIFTKEY_STORE_URL}\", grant_lease: 10s}\n"), lookup)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store.Postgres != env["SHIFTKEY_STORE_URL"] || cfg.Store.GrantLease != 10*time.Second {
		t.Fatalf("store: %+v", cfg.Store)
	}
	t.Setenv(EnvStoreKey, "restored after the test")
	os.Unsetenv(EnvStoreKey)
	if _, _, err := (StoreConfig{Postgres: "x"}).Key(true, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "every replica") {
		t.Fatalf("a PostgreSQL store without a configured key: %v; want a refusal (a generated key would be one replica's)", err)
	}
	for _, tt := range []struct{ yaml, want string }{
		{"store: {sqlite: /tmp/x.db, postgres: postgres://h/db}", "store.postgres: store.sqlite is set too"},
		{"store: {postgres: postgres://h/db, grant_lease: 1s}", "store.grant_lease"},
	} {
		if _, err := Parse(strings.NewReader(tt.yaml+"\n"), lookup); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v does not name %s", tt.yaml, err, tt.want)
		}
	}
}
