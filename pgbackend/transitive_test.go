package pgbackend_test

import (
	"context"
	"strings"
	"testing"
)

// A group is granted for a session only when it carries no attribute that
// lifts the session above its grants, and that includes the roles it is a
// member of: a member of a group can SET ROLE to every role the group
// belongs to (and a superuser's, CREATEROLE's, BYPASSRLS's attributes come
// with the SET ROLE). A group that belonged to another LOGIN role, or to a
// CREATEROLE or BYPASSRLS one, was granted: the session could SET ROLE to
// that user, or to that role, while only plain groups are documented as
// granted (docs/security.md). Such groups are skipped with a notice now; a
// group that only belongs to plain groups is still granted.
func TestGroupReachingPrivilegedRoleIsNotGranted(t *testing.T) {
	f := newRaceFixture(t)
	ctx := context.Background()
	run := strings.TrimPrefix(f.role, "race_user_")
	name := func(s string) string { return s + "_" + run }
	stmts := []string{
		"CREATE ROLE " + name("other_user") + " LOGIN",
		"CREATE ROLE " + name("via_login") + " NOLOGIN",
		"GRANT " + name("other_user") + " TO " + name("via_login"),
		"CREATE ROLE " + name("creator") + " NOLOGIN CREATEROLE",
		"CREATE ROLE " + name("via_createrole") + " NOLOGIN",
		"GRANT " + name("creator") + " TO " + name("via_createrole"),
		"CREATE ROLE " + name("bypasser") + " NOLOGIN BYPASSRLS",
		"CREATE ROLE " + name("mid") + " NOLOGIN",
		"GRANT " + name("bypasser") + " TO " + name("mid"),
		"CREATE ROLE " + name("via_bypassrls") + " NOLOGIN",
		"GRANT " + name("mid") + " TO " + name("via_bypassrls"),
		"CREATE ROLE " + name("plain_parent") + " NOLOGIN",
		"CREATE ROLE " + name("via_plain") + " NOLOGIN",
		"GRANT " + name("plain_parent") + " TO " + name("via_plain"),
	}
	for _, s := range stmts {
		if _, err := f.admin.Exec(ctx, s); err != nil {
			t.Fatal(s, err)
		}
	}
	b := f.replica(t, &sharedGrants{records: map[[3]string]bool{}}, "a")
	refused := []string{name("via_login"), name("via_createrole"), name("via_bypassrls")}
	lease, notices, err := b.Prepare(ctx, f.role, false, append(refused, name("via_plain")))
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release(ctx)
	for _, g := range append(refused, name("via_plain")) {
		var member bool
		if err := f.admin.QueryRow(ctx, "SELECT pg_has_role($1, $2, 'MEMBER')", f.role, g).Scan(&member); err != nil {
			t.Fatal(err)
		}
		if want := g == name("via_plain"); member != want {
			t.Errorf("%s granted: %v, want %v", g, member, want)
		}
	}
	if len(notices) != len(refused) {
		t.Errorf("notices %v, want one per refused group", notices)
	}
}
