package audit

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
)

// Found in an operator's review: a replica killed in the middle of writing
// a record (or a disk that filled mid-line) leaves the log's last line
// unended. The next process to append, the restarted replica or
// `credentials revoke` writing its RevokeCredentials record into dev's or
// a SQLite serve's log, glued its record onto that fragment: the line
// parsed as no record, so `audit tail` dropped the revocation, and every
// JSON-lines reader lost it. Opening a log whose last line is unended now
// ends it first, and tail reads a record glued onto a fragment (a log
// written before) as the record it is.
func TestRecordAfterATornLineIsKept(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	issued := apiRecord(&shiftkey.APICall{Time: time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC), Service: "redshift", Operation: "GetClusterCredentials",
		AccessKeyID: "AKIALEAKED", Principal: &shiftkey.Principal{ARN: "arn:aws:iam::123456789012:user/bob", AccessKey: "AKIALEAKED", UserName: "bob"},
		CredentialID: "c1"}, "us-east-1")
	b, err := json.Marshal(issued)
	if err != nil {
		t.Fatal(err)
	}
	torn := string(b) + "\n" + string(b)[:57] // the replica died here
	if err := os.WriteFile(path, []byte(torn), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	revocation := revocationRecord(&Revocation{Time: time.Date(2026, 12, 7, 3, 5, 0, 0, time.UTC), Operator: "ops", Host: "bastion",
		Selection: map[string]string{"accessKeyId": "AKIALEAKED"},
		Revoked:   []*shiftkey.Credential{{ID: "c1", Cluster: "analytics", LoginName: "IAM:bob", PrincipalARN: "arn:aws:iam::123456789012:user/bob", AccessKeyID: "AKIALEAKED"}}})
	l.write(revocation)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Each line a reader splits off is the fragment or a whole record.
	lines := strings.Split(strings.TrimSuffix(string(content), "\n"), "\n")
	var last Record
	if len(lines) != 3 || lines[1] != string(b)[:57] || json.Unmarshal([]byte(lines[2]), &last) != nil || last.EventName != EventRevokeCredentials {
		t.Errorf("after a torn line, the log's lines are:\n%s", strings.Join(lines, "\n"))
	}
	got := tail(t, []string{path}, Filter{Credential: "c1"})
	if len(got) != 2 {
		t.Errorf("tail --credential c1 after a torn line: %v, want the issue and the revocation", got)
	}

	// A log an older version wrote that way: the record after the
	// fragment is still read.
	rb, err := json.Marshal(revocation)
	if err != nil {
		t.Fatal(err)
	}
	glued := filepath.Join(dir, "glued.log")
	if err := os.WriteFile(glued, []byte(torn+string(rb)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := tail(t, []string{glued}, Filter{Credential: "c1"}); len(got) != 2 || got[1] != revocation.EventID {
		t.Errorf("tail --credential c1 of a record glued onto a fragment: %v, want the issue and the revocation", got)
	}
}
