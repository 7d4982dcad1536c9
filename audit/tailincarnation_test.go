package audit

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
)

// `audit tail --principal` with a role's ARN selects every role of that
// name, so that a responder sees all the name did by default; with the
// role's unique id (AROA…, userIdentity.sessionContext.sessionIssuer.
// principalId) it selects one incarnation of a role deleted and created
// again under its name, whose sessions have the same ARN; with a session's
// principalId (AROA…:name) that session; with a user's id (AIDA…) that
// user and not a later one of its name. Found in review: --principal took
// ARNs only, and a session's ARN names the role by name, so the old and
// the new role's sessions could not be told apart.
func TestTailPrincipalIDSelectsOneIncarnation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const (
		acct    = "123456789012"
		oldRole = "AROAOLDOLDOLDOLDOLD1"
		newRole = "AROANEWNEWNEWNEWNEW2"
		oldUser = "AIDAOLDOLDOLDOLDOLD3"
		newUser = "AIDANEWNEWNEWNEWNEW4"
	)
	at := time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC)
	roleARN := "arn:aws:iam::" + acct + ":role/etl"
	session := func(roleID, key string) *shiftkey.Principal {
		return &shiftkey.Principal{ARN: "arn:aws:sts::" + acct + ":assumed-role/etl/s1", Account: acct, Type: shiftkey.PrincipalAssumedRole,
			UserID: roleID + ":s1", AccessKey: key, RoleName: "etl", RoleARN: roleARN, SessionName: "s1", TokenIssueTime: at}
	}
	user := func(id, key string) *shiftkey.Principal {
		return &shiftkey.Principal{ARN: "arn:aws:iam::" + acct + ":user/bob", Account: acct, Type: shiftkey.PrincipalUser,
			UserID: id, UserName: "bob", AccessKey: key}
	}
	// Each incarnation in turn: the first deleted before the second is
	// created under its name. Each issues a credential, logs in with it,
	// and has it revoked.
	for i, p := range []*shiftkey.Principal{session(oldRole, "ASIAOLD"), user(oldUser, "AKIAOLD"), session(newRole, "ASIANEW"), user(newUser, "AKIANEW")} {
		t0 := at.Add(time.Duration(i) * time.Hour)
		cred := "cred-" + p.UserID
		l.APICall(&shiftkey.APICall{Time: t0, RequestID: "call-" + p.UserID, Service: "redshift",
			Operation: "GetClusterCredentials", Principal: p, CredentialID: cred})
		l.Login(&shiftkey.Login{Time: t0.Add(time.Minute), Scope: "dev-cluster", User: "IAMA:x", OK: true,
			CredentialID: cred, PrincipalARN: p.ARN, IssuedTo: shiftkey.IssuedToPrincipal(p)})
		l.Revoked(&Revocation{Time: t0.Add(2 * time.Minute), Operator: "root", Selection: map[string]string{"credentialId": cred},
			Revoked: []*shiftkey.Credential{{ID: cred, Cluster: "dev-cluster", PrincipalARN: p.ARN, ExpiresAt: t0.Add(time.Hour)}}})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	about := func(f Filter) []string {
		var out bytes.Buffer
		if err := Tail(context.Background(), &out, []string{path}, f, false); err != nil {
			t.Fatal(err)
		}
		var got []string
		for line := range strings.Lines(out.String()) {
			var r Record
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			got = append(got, r.EventName+":"+cmp.Or(strings.TrimPrefix(r.RequestID, "call-"), strings.TrimPrefix(credentialOf(&r), "cred-"),
				strings.ReplaceAll(revokedIDs(&r), "cred-", "")))
		}
		return got
	}
	of := func(ids ...string) (want []string) {
		for _, id := range ids {
			want = append(want, "GetClusterCredentials:"+id, "GatewayLogin:"+id, "RevokeCredentials:"+id)
		}
		return want
	}
	for _, tc := range []struct {
		principal string
		want      []string
	}{
		// By ARN, as before: every incarnation.
		{roleARN, of(oldRole+":s1", newRole+":s1")},
		{"arn:aws:sts::" + acct + ":assumed-role/etl/s1", of(oldRole+":s1", newRole+":s1")},
		{"arn:aws:iam::" + acct + ":user/bob", of(oldUser, newUser)},
		// By unique id: one incarnation.
		{oldRole, of(oldRole + ":s1")},
		{newRole, of(newRole + ":s1")},
		{newRole + ":s1", of(newRole + ":s1")},
		{newRole + ":s2", nil},
		{oldUser, of(oldUser)},
		{newUser, of(newUser)},
	} {
		if got := about(Filter{Principal: tc.principal}); !slices.Equal(got, tc.want) {
			t.Errorf("audit tail --principal %s: %q, want %q", tc.principal, got, tc.want)
		}
	}
}
