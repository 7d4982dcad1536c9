package audit

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

// shortFile is the log's file on a disk that fills: the write that
// reaches full writes what fits and fails; later ones write whole (space
// was freed).
type shortFile struct {
	*os.File
	room int // bytes left before the disk is full; <0: no limit any more
}

func (f *shortFile) Write(b []byte) (int, error) {
	if f.room >= 0 && len(b) > f.room {
		n, _ := f.File.Write(b[:f.room])
		f.room = -1
		return n, syscall.ENOSPC
	}
	return f.File.Write(b)
}

// The last note's known gap: a record cut short by a write that failed
// midway (a disk that filled) left the line unended while the writer ran
// on, and its next record was glued onto the fragment, a line no JSON
// reader parses. The record after a short write now starts a line of its
// own.
func TestRecordAfterAShortWriteStartsItsOwnLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	call := func(id string) *Record {
		return apiRecord(&shiftkey.APICall{Time: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC), Service: "redshift", Operation: "GetClusterCredentials",
			AccessKeyID: "AKIAFULL", Principal: &shiftkey.Principal{ARN: "arn:aws:iam::123456789012:user/bob", AccessKey: "AKIAFULL", UserName: "bob"},
			CredentialID: id}, "us-east-1")
	}
	l.write(call("c1"))
	l.w = &shortFile{File: l.f, room: 40}
	l.write(call("c2")) // cut after 40 bytes
	if l.Lost() != 1 || l.Err() == nil {
		t.Fatalf("after the short write: lost %d, Err %v; want 1 and the error", l.Lost(), l.Err())
	}
	l.write(call("c3"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(content), "\n"), "\n")
	var last Record
	if len(lines) != 3 || len(lines[1]) != 40 || json.Unmarshal([]byte(lines[2]), &last) != nil || last.ResponseElements["credentialId"] != "c3" {
		t.Errorf("after a short write, the log's lines are:\n%s\nwant c1's record, the 40-byte fragment, c3's record", strings.Join(lines, "\n"))
	}
}
