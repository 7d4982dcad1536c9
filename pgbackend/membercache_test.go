package pgbackend_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey/pgbackend"
)

// PostgreSQL keeps, per connection, the roles the role it was last asked
// about belongs to (pg_has_role's cache). Filled while another transaction
// committed a change to that role's memberships, the list could miss the
// change, and was kept until the next membership change anywhere on the
// server. A group check that ran as an administrator made the group a
// member of pg_read_server_files then judged the group safe again and
// again on that admin connection, so a re-check never cut it from the
// sessions holding it. (Timing alone did it in 1–40% of such races on
// PostgreSQL 15.18, with the group belonging to a chain of other groups;
// the test orders it.) The checks read pg_auth_members now.
func TestGroupCheckSeesAMembershipGrantedDuringTheLastCheck(t *testing.T) {
	f := newRaceFixture(t)
	ctx := context.Background()
	b := f.replica(t, &sharedGrants{records: map[[3]string]bool{}}, "a")
	q, op := f.conn(t), f.admin
	parent := f.group + "_parent"
	if _, err := op.Exec(ctx, "CREATE ROLE "+parent+" NOLOGIN NOINHERIT; GRANT "+parent+" TO "+f.group); err != nil {
		t.Fatal(err)
	}
	// q's catalog cache holds the group's own memberships, not its
	// parent's: a privileges look stops at a NOINHERIT role.
	if _, err := q.Exec(ctx, "SELECT pg_has_role($1, 'pg_monitor', 'USAGE')", f.group); err != nil {
		t.Fatal(err)
	}
	// The administrator's GRANT commits while the check reads the parent's.
	err := f.commitDuring(t, q, []string{"GRANT pg_read_server_files TO " + f.group}, func() error {
		_, err := pgbackend.Unsafe(ctx, b, q, f.group)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	why, err := pgbackend.Unsafe(ctx, b, q, f.group)
	if err != nil {
		t.Fatal(err)
	}
	if why == "" {
		t.Errorf("group %s, made a member of pg_read_server_files, judged safe after the GRANT committed", f.group)
	}
}

// commitDuring runs stmts in a transaction that then locks pg_auth_members,
// starts run, which must read memberships on conn, and commits once conn
// waits for that lock: the change commits while run is reading the
// memberships. It returns run's error.
func (f *raceFixture) commitDuring(t *testing.T, conn *pgx.Conn, stmts []string, run func() error) error {
	t.Helper()
	ctx := context.Background()
	tx, err := f.conn(t).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	for _, s := range append(stmts, "LOCK TABLE pg_catalog.pg_auth_members IN ACCESS EXCLUSIVE MODE") {
		if _, err := tx.Exec(ctx, s); err != nil {
			t.Fatal(s, err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- run() }()
	waiting := func() bool {
		var w bool
		err := f.admin.QueryRow(ctx, "SELECT coalesce(wait_event_type = 'Lock', false) FROM pg_stat_activity WHERE pid = $1", conn.PgConn().PID()).Scan(&w)
		return err == nil && w
	}
	for deadline := time.Now().Add(10 * time.Second); !waiting(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the read never waited for pg_auth_members")
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return <-done
}
