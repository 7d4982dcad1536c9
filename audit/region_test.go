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
