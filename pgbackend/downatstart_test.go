package pgbackend_test

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgbackend"
)

// Found in an operator's review: serve refused to start while one declared
// cluster's database was down ("create marker role: … connection refused"),
// so no replica could be restarted or added until it came back. A backend
// unreachable at New now starts; its Prepare fails until the database
// answers, then works (the marker role is made then). A refused admin login
// still fails New: that is the configuration's.
func TestBackendDownAtStart(t *testing.T) {
	srv := pgtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Its address: connections are closed at once while it is down, and
	// passed to the test server's socket (which takes them for local
	// connections) once it is up.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var isUp atomic.Bool
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !isUp.Load() {
				c.Close()
				continue
			}
			go func() {
				defer c.Close()
				s, err := net.Dial("unix", filepath.Join(srv.SocketDir(), ".s.PGSQL."+strconv.Itoa(srv.Port())))
				if err != nil {
					return
				}
				defer s.Close()
				go io.Copy(s, c)
				io.Copy(c, s)
			}()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	b, err := pgbackend.New(ctx, pgbackend.Config{Host: "127.0.0.1", Port: port, AdminUser: srv.Superuser()})
	if err != nil {
		t.Fatalf("New with the database down: %v", err)
	}
	defer b.Close()
	if _, _, err := b.Prepare(ctx, "lateuser", true, nil); err == nil {
		t.Fatal("Prepare succeeded with the database down")
	}
	isUp.Store(true)
	lease, _, err := b.Prepare(ctx, "lateuser", true, nil)
	if err != nil {
		t.Fatalf("Prepare once the database answers: %v", err)
	}
	defer lease.Release(ctx)
	c, err := b.Connect(ctx, "lateuser", "postgres", nil)
	if err != nil {
		t.Fatalf("Connect once the database answers: %v", err)
	}
	c.Close()

	if _, err := pgbackend.New(ctx, pgbackend.Config{Host: srv.SocketDir(), Port: srv.Port(), AdminUser: "no_such_admin"}); err == nil {
		t.Fatal("New with an admin role the database refuses succeeded")
	}
}
