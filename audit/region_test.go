package audit

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
)

// Every gateway record carries awsRegion, as every CloudTrail record does:
// its cluster's or workgroup's region when the event names one (a
// deployment serving several regions), else the log's (the first served,
// where a resource stored without a region lives).
func TestGatewayRecordsCarryTheirScopesRegion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Region = "us-east-1"
	now := time.Now()
	for _, region := range []string{"eu-west-1", ""} {
		login := shiftkey.Login{Time: now, Scope: "c", Region: region, Source: "10.0.0.1:5000", User: "IAM:a", OK: true}
		l.Login(&login)
		l.SessionEnd(&shiftkey.SessionEnd{Login: login, Start: now, End: now})
		l.Grant(&shiftkey.GrantChange{Time: now, Scope: "c", Region: region, Role: "a", Group: "g", Granted: true})
		l.Grant(&shiftkey.GrantChange{Time: now, Scope: "c", Region: region, Role: "a", Group: "g", Reconciled: true})
	}
	l.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) != 8 {
		t.Fatalf("%d records, want 8", len(lines))
	}
	for i, line := range lines {
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		want := "eu-west-1"
		if i >= 4 {
			want = "us-east-1"
		}
		if r.AWSRegion != want {
			t.Errorf("%s (event region %q): awsRegion %q, want %q", r.EventName, map[bool]string{true: "eu-west-1"}[i < 4], r.AWSRegion, want)
		}
	}
}

// The operator's records (ApplyDeclaredIdentities, RevokeCredentials)
// carry the log's region too: a query that selects by awsRegion, as
// CloudTrail's every record allows, found what the callers and the
// gateway did and not what the operator did.
func TestOperatorRecordsCarryTheLogsRegion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Region = "eu-west-1"
	now := time.Now()
	l.IdentitiesApplied(&IdentitiesApplied{Time: now, Host: "h", Trigger: "reload", Changes: []IdentityChange{{Change: "key deactivated", Kind: "user", Name: "bob", AccessKeyID: "AKIABOB"}}})
	l.Revoked(&Revocation{Time: now, Operator: "root", Host: "h", Revoked: []*shiftkey.Credential{{ID: "c1", Cluster: "s", LoginName: "IAM:a"}}})
	l.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("%d records, want 2", len(lines))
	}
	for _, line := range lines {
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		if r.AWSRegion != "eu-west-1" {
			t.Errorf("%s: awsRegion %q, want the log's eu-west-1", r.EventName, r.AWSRegion)
		}
	}
}
