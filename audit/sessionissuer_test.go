package audit

import (
	"encoding/json"
	"net/url"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
)

// CloudTrail's sessionIssuer of an assumed-role session is the role:
// type Role, principalId (its AROA… id), arn, accountId and userName. An
// API call's record wrote only type, arn and userName, so a query on
// sessionIssuer.accountId or .principalId (Athena over CloudTrail's
// schema) found nothing.
func TestAPIRecordSessionIssuerIsCloudTrails(t *testing.T) {
	path := t.TempDir() + "/audit.log"
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const account = "123456789012"
	p := &shiftkey.Principal{Type: shiftkey.PrincipalAssumedRole, ARN: "arn:aws:sts::" + account + ":assumed-role/Reader/s1", Account: account,
		UserID: "AROAREADER:s1", AccessKey: "ASIASESSION", RoleARN: "arn:aws:iam::" + account + ":role/team/Reader", RoleName: "Reader", SessionName: "s1"}
	l.APICall(&shiftkey.APICall{Time: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC), Service: "redshift", Operation: "GetClusterCredentials",
		Principal: p, AccessKeyID: p.AccessKey, Form: url.Values{"ClusterIdentifier": {"c"}, "DbUser": {"r"}}, CredentialID: "c1"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		UserIdentity struct {
			SessionContext struct {
				SessionIssuer map[string]any `json:"sessionIssuer"`
			} `json:"sessionContext"`
		} `json:"userIdentity"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(string(raw))), &rec); err != nil {
		t.Fatal(err)
	}
	got := rec.UserIdentity.SessionContext.SessionIssuer
	want := map[string]any{"type": "Role", "principalId": "AROAREADER", "arn": p.RoleARN, "accountId": account, "userName": "Reader"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("sessionIssuer.%s = %v, want %v (sessionIssuer %v)", k, got[k], v, got)
		}
	}
}

// The gateway's records of a credential name its principal as the
// issuing call's record did (userIdentity less the access key, which
// signed that call, not the login), from what the issue kept
// (shiftkey.IssuedTo): for a session, the role with its path and id and
// when the session began, however the role changed since. A credential
// from before that was kept has no sessionContext (nor principalId): its
// ARN alone does not say which role, with which path and id, it was.
func TestGatewayRecordsNameTheSessionAsTheIssueDid(t *testing.T) {
	const account = "123456789012"
	began := time.Date(2026, 12, 7, 11, 58, 30, 0, time.UTC)
	p := &shiftkey.Principal{Type: shiftkey.PrincipalAssumedRole, ARN: "arn:aws:sts::" + account + ":assumed-role/Reader/s1", Account: account,
		UserID: "AROAREADER:s1", AccessKey: "ASIASESSION", RoleARN: "arn:aws:iam::" + account + ":role/team/Reader", RoleName: "Reader", SessionName: "s1",
		TokenIssueTime: began}
	user := &shiftkey.Principal{Type: shiftkey.PrincipalUser, ARN: "arn:aws:iam::" + account + ":user/eng/alice", Account: account, UserID: "AIDAALICE",
		UserName: "alice", AccessKey: "AKIAALICE"}
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, p := range []*shiftkey.Principal{p, user} {
		api := roundTrip(t, apiRecord(&shiftkey.APICall{Time: at, Service: "redshift", Operation: "GetClusterCredentials", Principal: p, AccessKeyID: p.AccessKey,
			CredentialID: "c1"}, "us-east-1"))
		want := api.UserIdentity
		want.AccessKeyID = ""
		login := shiftkey.Login{Time: at, Scope: "c", ConnID: 1, Source: "10.0.0.1:5000", User: "IAMA:r", OK: true, CredentialID: "c1", DBUser: "r",
			PrincipalARN: p.ARN, AccessKeyID: p.AccessKey, IssuedTo: shiftkey.IssuedToPrincipal(p)}
		origin := shiftkey.SessionOrigin{ConnID: 1, Source: login.Source, CredentialID: "c1", PrincipalARN: p.ARN, AccessKeyID: p.AccessKey, IssuedTo: login.IssuedTo}
		for name, r := range map[string]*Record{
			"login":       roundTrip(t, loginRecord(&login)),
			"session end": roundTrip(t, sessionEndRecord(&shiftkey.SessionEnd{Login: login, Start: at, End: at.Add(time.Second), Reason: shiftkey.EndClosed})),
			"grant":       roundTrip(t, grantRecord(&shiftkey.GrantChange{Time: at, Scope: "c", Role: "r", Group: "g", Granted: true, Session: origin})),
		} {
			if !reflect.DeepEqual(r.UserIdentity, want) {
				g, _ := json.Marshal(r.UserIdentity)
				w, _ := json.Marshal(want)
				t.Errorf("%s: %s record's userIdentity\n %s\nwant the issuing call's\n %s", p.Type, name, g, w)
			}
		}
	}
	if a := roundTrip(t, apiRecord(&shiftkey.APICall{Time: at, Principal: p}, "")).UserIdentity.SessionContext.Attributes; a == nil ||
		a.CreationDate != "2026-12-07T11:58:30Z" || a.MFAAuthenticated != "false" {
		t.Errorf("sessionContext.attributes %+v, want CloudTrail's creationDate of the session and mfaAuthenticated false", a)
	}
	old := roundTrip(t, loginRecord(&shiftkey.Login{Time: at, Scope: "c", User: "IAMA:r", OK: true, CredentialID: "c0", PrincipalARN: p.ARN}))
	if id := old.UserIdentity; id.Type != "AssumedRole" || id.ARN != p.ARN || id.AccountID != account || id.SessionContext != nil || id.PrincipalID != "" {
		t.Errorf("login with a credential from before its principal was kept: userIdentity %+v, want the ARN's type, account and nothing more", id)
	}
}
