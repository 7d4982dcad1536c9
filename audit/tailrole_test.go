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

// `audit tail --principal ROLE_ARN` selects what every session of the role
// did, with the role's path in the ARN or without (a role name is unique
// in its account whatever its path, and `credentials list|revoke
// --principal` takes either): its sessions' API calls, their
// credentials' gateway logins (which know the session's ARN only) and
// the revocations of those credentials; no other role's whose name starts
// the same.
func TestTailPrincipalRoleARNWithOrWithoutPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const acct = "123456789012"
	at := time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC)
	session := func(role, path string) *shiftkey.Principal {
		return &shiftkey.Principal{ARN: "arn:aws:sts::" + acct + ":assumed-role/" + role + "/s1", Account: acct, Type: shiftkey.PrincipalAssumedRole,
			UserID: "AROAEXAMPLE:s1", AccessKey: "ASIA" + strings.ToUpper(role), RoleName: role, RoleARN: "arn:aws:iam::" + acct + ":role" + path + role, SessionName: "s1"}
	}
	for i, p := range []*shiftkey.Principal{session("etl", "/team/"), session("etl2", "/")} {
		l.APICall(&shiftkey.APICall{Time: at.Add(time.Duration(i) * time.Second), RequestID: "call-" + p.RoleName, Service: "redshift",
			Operation: "GetClusterCredentials", Principal: p, CredentialID: "cred-" + p.RoleName})
		l.Login(&shiftkey.Login{Time: at.Add(time.Minute), Scope: "dev-cluster", User: "IAMA:x", OK: true,
			CredentialID: "cred-" + p.RoleName, PrincipalARN: p.ARN})
		l.Revoked(&Revocation{Time: at.Add(2 * time.Minute), Operator: "root", Selection: map[string]string{"credentialId": "cred-" + p.RoleName},
			Revoked: []*shiftkey.Credential{{ID: "cred-" + p.RoleName, Cluster: "dev-cluster", PrincipalARN: p.ARN, ExpiresAt: at.Add(time.Hour)}}})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// What selected records are about: the session's call, the login and
	// the revocation of its credential.
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
			got = append(got, r.EventName+":"+cmp.Or(r.RequestID, credentialOf(&r), revokedIDs(&r)))
		}
		return got
	}
	want := []string{"GetClusterCredentials:call-etl", "GatewayLogin:cred-etl", "RevokeCredentials:cred-etl"}
	for _, p := range []string{"arn:aws:iam::" + acct + ":role/team/etl", "arn:aws:iam::" + acct + ":role/etl"} {
		if got := about(Filter{Principal: p}); !slices.Equal(got, want) {
			t.Errorf("audit tail --principal %s: %q, want %q", p, got, want)
		}
	}
}

func revokedIDs(r *Record) string {
	ids, _, _ := revokedOf(r)
	return strings.Join(ids, ",")
}
