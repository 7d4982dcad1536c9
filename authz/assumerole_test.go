package authz_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/authz"
	"github.com/shiftkey/shiftkey/sqlite"
)

const acct = shiftkey.DefaultAccountID

func newStore(t *testing.T) *sqlite.DB {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "authz.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestAssumeRoleSameAccount walks AWS's same-account rules for a role
// trust policy combined with the caller's identity and session policies,
// and checks that every denial is recorded with its reason.
func TestAssumeRoleSameAccount(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	userARN := "arn:aws:iam::" + acct + ":user/alice"
	mustDo(t, st.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "alice", ID: "AIDAALICE", Path: "/", ARN: userARN, CreatedAt: time.Now()}))
	mustDo(t, st.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "allowed", ID: "AIDAALLOWED", Path: "/", ARN: "arn:aws:iam::" + acct + ":user/allowed", CreatedAt: time.Now()}))
	mustDo(t, st.PutInlinePolicy(ctx, shiftkey.KindUser, "allowed", shiftkey.PolicyDocument{Name: "p",
		Document: `{"Version":"2012-10-17","Statement":[{"Sid":"Assume","Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`}))
	mustDo(t, st.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "denied", ID: "AIDADENIED", Path: "/", ARN: "arn:aws:iam::" + acct + ":user/denied", CreatedAt: time.Now()}))
	mustDo(t, st.PutInlinePolicy(ctx, shiftkey.KindUser, "denied", shiftkey.PolicyDocument{Name: "p",
		Document: `{"Version":"2012-10-17","Statement":[{"Sid":"NoAssume","Effect":"Deny","Action":"sts:AssumeRole","Resource":"*"}]}`}))
	// The role the sessions below belong to, with no policies of its own.
	opsARN := "arn:aws:iam::" + acct + ":role/Ops"
	mustDo(t, st.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindRole, Name: "Ops", ID: "AROAOPS", Path: "/", ARN: opsARN, AssumeRolePolicy: `{"Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}}`, MaxSessionDuration: 3600, CreatedAt: time.Now()}))

	user := func(name string) *shiftkey.Principal {
		return &shiftkey.Principal{ARN: "arn:aws:iam::" + acct + ":user/" + name, Account: acct, Type: shiftkey.PrincipalUser, UserName: name, UserID: "AIDA" + strings.ToUpper(name)}
	}
	session := func(policy string) *shiftkey.Principal {
		return &shiftkey.Principal{ARN: "arn:aws:sts::" + acct + ":assumed-role/Ops/s1", Account: acct, Type: shiftkey.PrincipalAssumedRole,
			UserID: "AROAOPS:s1", RoleName: "Ops", RoleARN: opsARN, SessionName: "s1", SessionPolicy: policy}
	}
	narrow := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:GetClusterCredentials","Resource":"*"}]}`
	trust := func(principal string) string {
		return `{"Version":"2012-10-17","Statement":[{"Sid":"Trust","Effect":"Allow","Principal":{"AWS":"` + principal + `"},"Action":"sts:AssumeRole"}]}`
	}
	root := "arn:aws:iam::" + acct + ":root"
	tests := []struct {
		name   string
		caller *shiftkey.Principal
		trust  string // "" for no such role
		want   string // "" allowed; else a fragment of the recorded explanation
	}{
		{"user named, no identity policy", user("alice"), trust(userARN), ""},
		{"account named, no identity policy", user("alice"), trust(root), "names only the account"},
		{"account id named, no identity policy", user("alice"), trust(acct), "names only the account"},
		{"account named, identity allows", user("allowed"), trust(root), ""},
		{"user named, identity denies explicitly", user("denied"), trust("arn:aws:iam::" + acct + ":user/denied"), "Sid NoAssume"},
		{"another user named", user("allowed"), trust(userARN), "does not name"},
		{"session named, session policy silent", session(narrow), trust("arn:aws:sts::" + acct + ":assumed-role/Ops/s1"), ""},
		{"role named, no session policy", session(""), trust(opsARN), ""},
		{"role named, session policy silent", session(narrow), trust(opsARN), "session policy must allow"},
		{"account named, role has no policy", session(""), trust(root), "names only the account"},
		{"anyone", user("alice"), `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}]}`, ""},
		// A wildcard is not a specific reference to the session (STS
		// AssumeRole, Policy: only a resource-based policy that
		// "specifically references the role session" grants beyond the
		// session policy): the session policy still bounds it.
		{"anyone, session policy silent", session(narrow), `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}]}`, "session policy must allow"},
		{"AWS *, session policy silent", session(narrow), trust("*"), "session policy must allow"},
		{"AWS *, no session policy", session(""), trust("*"), ""},
		{"no such role", user("allowed"), "", "no role"},
		{"unparseable trust policy", user("allowed"), `{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}`, "does not parse"},
	}
	a := &authz.Authorizer{Store: st}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			roleARN := "arn:aws:iam::" + acct + ":role/Target" + string(rune('A'+i))
			var role *shiftkey.Entity
			if tt.trust != "" {
				role = &shiftkey.Entity{Kind: shiftkey.KindRole, Name: "Target" + string(rune('A'+i)), ID: "AROATARGET", Path: "/", ARN: roleARN, AssumeRolePolicy: tt.trust}
			}
			c := &shiftkey.Caller{Principal: tt.caller, Region: "us-east-1", RequestID: "req-" + tt.name, Time: time.Now()}
			err := a.AuthorizeAssumeRole(ctx, c, role, shiftkey.AuthzRequest{Action: "sts:AssumeRole", Resource: roleARN})
			recs, rerr := st.Decisions(ctx, c.RequestID)
			mustDo(t, rerr)
			if tt.want == "" {
				if err != nil || len(recs) != 0 {
					t.Fatalf("want allowed, got %v (records %d)", err, len(recs))
				}
				return
			}
			if shiftkey.ErrorCode(err) != shiftkey.CodeAccessDenied || !strings.Contains(err.Error(), "sts:AssumeRole on resource: "+roleARN) {
				t.Fatalf("want AccessDenied, got %v", err)
			}
			if len(recs) != 1 || recs[0].Action != "sts:AssumeRole" || recs[0].Resource != roleARN || recs[0].Principal != tt.caller.ARN ||
				!strings.Contains(recs[0].Explanation, tt.want) {
				t.Fatalf("recorded %+v, want an explanation with %q", recs, tt.want)
			}
		})
	}
}
