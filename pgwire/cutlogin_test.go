package pgwire

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/shiftkey/shiftkey"
)

// cutLease is a lease whose group was cut before Prepare returned it (a
// cut another replica made, heard while the login was under way): it
// tells OnGroupCut's f at once, as pgbackend's Lease does.
type cutLease struct{ fakeLease }

func (l cutLease) OnGroupCut(f func(group, why string)) { f("g", "it may create in a schema") }

// cutAtPrepare's leases come cut, and its Connect, as pgbackend's, fails
// with the login's context once that is done.
type cutAtPrepare struct{ *fakeBackend }

func (b cutAtPrepare) Prepare(ctx context.Context, role string, autoCreate bool, groups []string) (Lease, []string, error) {
	b.count(&b.prepared)
	return cutLease{fakeLease{b.fakeBackend}}, nil, nil
}

func (b cutAtPrepare) Connect(ctx context.Context, role, db string, params map[string]string) (net.Conn, *pgproto3.BackendKeyData, map[string]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, nil, err
	}
	return b.fakeBackend.Connect(ctx, role, db, params)
}

// A login whose lease was cut before Prepare returned (another replica's
// cut of the role's group heard while it was under way) is ended with the
// cut's FATAL, never greeted, its lease released once and no backend
// connection left open. Its login was recorded as backend_error (and
// logged as a failed backend connect, at error level): the backend was
// fine, the gateway cut it. It is recorded as group_unsafe.
func TestALoginCutAtPrepareGetsTheCutsFatal(t *testing.T) {
	fb := &fakeBackend{}
	logins := &loginLog{}
	var logs lockedBuffer
	_, addr := newGateway(t, func(g *Gateway) {
		g.Backend, g.Observer, g.Logger = cutAtPrepare{fb}, logins, slog.New(slog.NewTextHandler(&logs, nil))
	})
	host, port, _ := net.SplitHostPort(addr)
	c, err := pgx.Connect(context.Background(), "host="+host+" port="+port+" user=IAM:u password=pw sslmode=disable connect_timeout=20")
	if err == nil {
		c.Close(context.Background())
		t.Fatal("the login whose group was cut was let in")
	}
	wantFatal(t, "cut at prepare", err, `group "g" of role`)
	e := logins.reported(t, 1)[0]
	if e.OK || e.Reason != shiftkey.LoginGroupUnsafe || e.CredentialID != "x" {
		t.Fatalf("the cut login reported as %+v, want %s with credential x", e, shiftkey.LoginGroupUnsafe)
	}
	deadline := time.Now().Add(5 * time.Second)
	for fb.counts() != [4]int{1, 1, fb.counts()[2], fb.counts()[2]} && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := fb.counts(); got[0] != 1 || got[1] != 1 || got[2] != got[3] {
		t.Fatalf("(leases, releases, connects, closes) = %v, want one lease released and every connection closed", got)
	}
	logs.mu.Lock()
	out := logs.b.String()
	logs.mu.Unlock()
	if strings.Contains(out, "level=ERROR") {
		t.Errorf("the cut login was logged as an error:\n%s", out)
	}
}
