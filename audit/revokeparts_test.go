package audit

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
)

// Found rehearsing issue 17's check: `credentials revoke` of 42,851
// credentials wrote one 9.6 MB line, which log shippers cut or drop
// (Fluent Bit's default line buffer is 32 KB, Vector's 100 KB, Splunk
// truncates at 10,000 bytes): what an incident revoked never reached
// the SIEM. A large revocation is now written as parts, none over
// MaxRecordBytes, each naming its share of what was revoked under one
// revocationId; together they name all of it, and `audit tail` finds a
// credential in its part.
func TestLargeRevocationIsWrittenInParts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	e := &Revocation{Time: time.Date(2026, 12, 7, 9, 40, 0, 0, time.UTC), Operator: "ops", Host: "bastion", Terminate: true,
		Selection: map[string]string{"accessKeyId": "AKIALEAKED"}}
	for i := range 2000 {
		e.Revoked = append(e.Revoked, &shiftkey.Credential{ID: fmt.Sprintf("cred-%04d", i), Cluster: "analytics", LoginName: "IAM:alice",
			PrincipalARN: "arn:aws:iam::123456789012:user/alice", AccessKeyID: "AKIALEAKED", ExpiresAt: e.Time.Add(time.Hour)})
	}
	for i := range 300 {
		e.Ended = append(e.Ended, &shiftkey.Session{AccessKeyID: fmt.Sprintf("ASIAENDED%04d", i), SourceARN: "arn:aws:iam::123456789012:user/alice",
			RoleName: "etl", SessionName: "run", SourceAccessKeyID: "AKIALEAKED", ExpiresAt: e.Time.Add(time.Hour)})
	}
	l.Revoked(e)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(content), "\n"), "\n")
	creds, sessions, revocation := map[string]bool{}, map[string]bool{}, ""
	for i, line := range lines {
		if len(line) > MaxRecordBytes {
			t.Fatalf("record %d of the revocation: %d bytes, want at most %d", i+1, len(line), MaxRecordBytes)
		}
		var r Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		id, _ := r.AdditionalEventData["revocationId"].(string)
		part, _ := r.AdditionalEventData["part"].(float64)
		parts, _ := r.AdditionalEventData["parts"].(float64)
		if r.EventName != EventRevokeCredentials || id == "" || revocation != "" && id != revocation || int(part) != i+1 || int(parts) != len(lines) ||
			r.RequestParameters["accessKeyId"] != "AKIALEAKED" || r.ResponseElements["count"] != float64(2000) || r.ResponseElements["sessionCount"] != float64(300) {
			t.Fatalf("record %d of %d: %s %v %v; want RevokeCredentials, part %d of %d of one revocationId, the selection and the totals", i+1, len(lines), r.EventName, r.AdditionalEventData, r.ResponseElements["count"], i+1, len(lines))
		}
		revocation = id
		ids, _, _ := revokedOf(&r)
		for _, c := range ids {
			creds[c] = true
		}
		ended, _ := r.ResponseElements["endedSessions"].([]any)
		for _, s := range ended {
			sessions[s.(map[string]any)["accessKeyId"].(string)] = true
		}
	}
	if len(lines) < 2 || len(creds) != 2000 || len(sessions) != 300 {
		t.Fatalf("%d records name %d credentials and %d sessions; want several records naming all 2000 and 300", len(lines), len(creds), len(sessions))
	}
	if got := tail(t, []string{path}, Filter{Credential: "cred-1999"}); len(got) != 1 {
		t.Fatalf("tail --credential cred-1999: %v, want the part that names it", got)
	}
}
