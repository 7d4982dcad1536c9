package audit

import (
	"encoding/json"
	"net/url"
	"os"
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
