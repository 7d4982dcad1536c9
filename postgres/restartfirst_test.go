package postgres_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/devca"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgserver"
	"github.com/shiftkey/shiftkey/postgres"
)

// The store's server restarts (pg_ctl restart -m fast) while the store is
// idle: the connections the pool and the group writer hold are dead, and
// each first call after the restart (a read and a write on the pool, an
// issue's write on the writer's connection) is answered, not failed with
// ServiceUnavailable: a connection the server closed before the query was
// sent is replaced and the query sent again on a new one.
//
// Over TCP the write of a query to a closed connection succeeds and the
// reply is the server's goodbye (57P01), which pgx cannot tell from a
// query that ran: the connection must be found closed before a query is
// sent. Over a unix socket the write fails (EPIPE: nothing sent), and
// without that check the call goes again on a new connection.
func TestFirstCallsAfterStoreServerRestart(t *testing.T) {
	t.Run("unix socket", func(t *testing.T) {
		srv := pgtest.Start(t)
		firstCallsAfterRestart(t, srv, srv.ConnString(srv.Superuser(), "store"), true)
	})
	t.Run("unix socket without the idle check", func(t *testing.T) {
		srv := pgtest.Start(t)
		firstCallsAfterRestart(t, srv, srv.ConnString(srv.Superuser(), "store"), false)
	})
	t.Run("tcp", func(t *testing.T) {
		srv := pgtest.Start(t, func(c *pgserver.Config) {
			c.AnyPort = true
			c.Settings = map[string]string{"listen_addresses": "'127.0.0.1'"}
			c.HBA = []string{"host all all 127.0.0.1/32 trust"}
		})
		firstCallsAfterRestart(t, srv, fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=store sslmode=disable", srv.Port(), srv.Superuser()), true)
	})
	// Over TLS (sslmode=require to the store) the check peeks under the
	// TLS layer, where the server's goodbye is bytes as over TCP. (Without
	// the check this fails as TCP does: 57P01 answers the first call.)
	t.Run("tls", func(t *testing.T) {
		srv := pgtest.Start(t, tlsStore(t))
		firstCallsAfterRestart(t, srv, fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=store sslmode=require", srv.Port(), srv.Superuser()), true)
	})
}

// tlsStore configures a test server for the store over TLS: a certificate
// from a throwaway CA, loopback TCP connections of any user trusted over
// TLS only.
func tlsStore(t *testing.T) func(*pgserver.Config) {
	ca, err := devca.LoadOrCreate(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatal(err)
	}
	cert, key, caPEM, err := ca.ServerFiles("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	return func(c *pgserver.Config) {
		c.AnyPort = true
		c.TLS = &pgserver.TLSFiles{Cert: cert, Key: key, CA: caPEM}
		c.HBA = []string{"hostssl all all 127.0.0.1/32 trust", "hostnossl all all 0.0.0.0/0 reject"}
	}
}

func firstCallsAfterRestart(t *testing.T, srv *pgserver.Server, url string, idleCheck bool) {
	ctx := context.Background()
	if err := srv.CreateDatabase(ctx, "store"); err != nil {
		t.Fatal(err)
	}
	// One pool connection, so that the call after the restart gets the
	// one that was used before it, whichever the pool hands out.
	db := open(t, url, postgres.WithMaxConns(1))
	postgres.SetIdleCheck(db, idleCheck)
	cluster := func(i int) *shiftkey.Cluster {
		return &shiftkey.Cluster{Identifier: fmt.Sprint("c", i), NamespaceID: fmt.Sprint("ns", i), NodeType: "dc2.large", DBName: "dev",
			MasterUsername: "admin", Status: "available", CreatedAt: time.Now()}
	}
	for round := range 3 {
		// Every path used once, so each holds a live connection.
		if err := db.CreateCluster(ctx, cluster(2*round)); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateCredential(ctx, testCredential(fmt.Sprint("before", round), "u")); err != nil {
			t.Fatal(err)
		}
		pgtest.PgCtl(t, srv, "restart", "-m", "fast", "-w", "-t", "60", "-s", "-l", filepath.Join(srv.DataDir(), "restart.log"))
		calls := []func(){
			func() {
				if _, err := db.Cluster(ctx, cluster(2*round).Identifier); err != nil {
					t.Errorf("round %d: a read after the restart: %v", round, err)
				}
			},
			func() {
				if err := db.CreateCluster(ctx, cluster(2*round+1)); err != nil {
					t.Errorf("round %d: a pool write after the restart: %v", round, err)
				}
			},
			func() {
				if err := db.CreateCredential(ctx, testCredential(fmt.Sprint("after", round), "u")); err != nil {
					t.Errorf("round %d: an issue's write after the restart: %v", round, err)
				}
			},
		}
		// Each round another of them is the pool's first call.
		for i := range calls {
			calls[(i+round)%len(calls)]()
		}
	}
}
