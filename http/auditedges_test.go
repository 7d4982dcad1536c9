package http_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/shiftkey/shiftkey/audit"
)

// The audit record of a Serverless call against the call as served:
// what the record says was asked for must be what the service read.

// audited makes f's API write its audit log to a fresh file (a new
// server, so that no request races the change) and returns its path.
func (f *fixture) audited(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	log, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	f.srv.Close()
	f.api.Observer = log
	f.srv = httptest.NewServer(f.api.Handler())
	t.Cleanup(f.srv.Close)
	return path
}

// auditLines are the lines of the audit log at path.
func auditLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, len(b)+1)
	for sc.Scan() {
		out = append(out, append([]byte(nil), sc.Bytes()...))
	}
	return out
}

// lastRecord is the last record of the audit log at path.
func lastRecord(t *testing.T, path string) *audit.Record {
	t.Helper()
	lines := auditLines(t, path)
	if len(lines) == 0 {
		t.Fatal("audit log is empty")
	}
	var r audit.Record
	dec := json.NewDecoder(bytes.NewReader(lines[len(lines)-1]))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("audit line %.200s: %v", lines[len(lines)-1], err)
	}
	return &r
}

const getCredentialsTarget = "RedshiftServerless.GetCredentials"

// TestAuditServerlessMembersAsRead: a body that names workgroupName twice
// in two cases (the service reads workgroupName only) is recorded with the
// workgroup the credential was issued for, every time: the record does not
// fold WorkgroupName onto workgroupName.
func TestAuditServerlessMembersAsRead(t *testing.T) {
	f := newFixture(t)
	f.workgroup(t)
	path := f.audited(t)
	const body = `{"workgroupName":"edge-wg","WorkgroupName":"decoy-wg"}`
	for i := range 16 {
		got := sendRequest(t, signedIn("admin", "redshift-serverless", "us-east-1", getCredentialsTarget, body)(t, f))
		if got.status != 200 {
			t.Fatalf("GetCredentials: %d %s", got.status, got.body)
		}
		r := lastRecord(t, path)
		if wg := r.RequestParameters["workgroupName"]; wg != "edge-wg" {
			t.Fatalf("call %d: issued for edge-wg, recorded workgroupName %v (requestParameters %v)", i, wg, r.RequestParameters)
		}
	}
}

// TestServerlessRefusesTrailingData: a body with more after its object is
// not a JSON document: refused as SerializationException, never served
// (the audit log could not read its parameters back, so a credential
// would be recorded without the workgroup it was issued for).
func TestServerlessRefusesTrailingData(t *testing.T) {
	f := newFixture(t)
	f.workgroup(t)
	for _, body := range []string{
		`{"workgroupName":"edge-wg"} {"workgroupName":"decoy-wg"}`,
		`{"workgroupName":"edge-wg"}}`,
		`{"workgroupName":"edge-wg"} x`,
		`{"workgroupName":"edge-wg"}` + "\x00",
		`{"workgroupName":"edge-wg"}` + "\u00a0",
	} {
		got := sendRequest(t, signedIn("admin", "redshift-serverless", "us-east-1", getCredentialsTarget, body)(t, f))
		if got.status != 400 || got.code != "SerializationException" {
			t.Errorf("%q: %d %q %.120s, want 400 SerializationException", body, got.status, got.code, got.body)
		}
	}
	// Whitespace after the object is still a JSON document.
	got := sendRequest(t, signedIn("admin", "redshift-serverless", "us-east-1", getCredentialsTarget, "{\"workgroupName\":\"edge-wg\"}\r\n \t")(t, f))
	if got.status != 200 {
		t.Errorf("trailing whitespace: %d %s", got.status, got.body)
	}
}

// TestAuditServerlessParametersOfAnyNumber: a member the service ignores
// holding a number no float64 holds does not cost the record every other
// parameter: the call is served, so it is recorded with its workgroup.
func TestAuditServerlessParametersOfAnyNumber(t *testing.T) {
	f := newFixture(t)
	f.workgroup(t)
	path := f.audited(t)
	for _, body := range []string{
		`{"workgroupName":"edge-wg","padding":1e400}`,
		`{"workgroupName":"edge-wg","padding":[-1e999]}`,
	} {
		got := sendRequest(t, signedIn("admin", "redshift-serverless", "us-east-1", getCredentialsTarget, body)(t, f))
		if got.status != 200 {
			t.Fatalf("%s: %d %s", body, got.status, got.body)
		}
		r := lastRecord(t, path)
		if r.ResponseElements["credentialId"] == nil {
			t.Fatalf("%s: record of the issuing call without its credential: %+v", body, r)
		}
		if wg := r.RequestParameters["workgroupName"]; wg != "edge-wg" {
			t.Errorf("%s: issued for edge-wg, recorded requestParameters %v", body, r.RequestParameters)
		}
	}
}
