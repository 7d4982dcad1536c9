package http_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/shiftkey/shiftkey/audit"
	shttp "github.com/shiftkey/shiftkey/http"
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

// auditLineBound is what one audit line may take at most, whatever a
// client sends: records are written for calls refused before any
// authentication, so an unbounded one lets anyone fill the disk.
const auditLineBound = 128 << 10

// TestAuditRecordsAreBounded: unauthenticated requests near the body
// and header caps, of characters JSON escapes six-fold ('<' is \u003c),
// in every field a client fills, each leave one record of bounded size
// that still says which request it was and how it ended.
func TestAuditRecordsAreBounded(t *testing.T) {
	f := newFixture(t)
	path := f.audited(t)
	big := strings.Repeat("<", shttp.MaxBodyBytes-200)
	var many strings.Builder
	for i := 0; many.Len() < shttp.MaxBodyBytes-200; i++ {
		fmt.Fprintf(&many, "P%d=&", i)
	}
	jsonHeader := map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": getCredentialsTarget}
	tests := []struct {
		name   string
		body   string
		header map[string]string
	}{
		{"Query parameter", "Action=GetClusterCredentials&Version=2012-12-01&DbUser=" + big, formHeader},
		{"Query action", "Version=2012-12-01&Action=" + big, formHeader},
		{"Query parameter names", "Action=GetClusterCredentials&Version=2012-12-01&" + many.String(), formHeader},
		{"JSON member", `{"workgroupName":"` + big + `"}`, jsonHeader},
		{"JSON members", `{"a":[` + strings.Repeat(`"<",`, (shttp.MaxBodyBytes-200)/4) + `"<"]}`, jsonHeader},
		{"X-Amz-Target", `{}`, map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "RedshiftServerless." + strings.Repeat("<", 60<<10)}},
		{"User-Agent", "Action=DescribeClusters&Version=2012-12-01", map[string]string{"Content-Type": formType, "User-Agent": strings.Repeat("<", 60<<10)}},
		{"Authorization credential", "Action=DescribeClusters&Version=2012-12-01", map[string]string{"Content-Type": formType,
			"Authorization": "AWS4-HMAC-SHA256 Credential=" + strings.Repeat("<", 60<<10) + "/20260101/us-east-1/redshift/aws4_request, SignedHeaders=host, Signature=00"}},
	}
	for _, tt := range tests {
		before := len(auditLines(t, path))
		got := sendRequest(t, buildRequest(t, "POST", f.srv.URL+"/", tt.body, tt.header))
		lines := auditLines(t, path)
		if len(lines) != before+1 {
			t.Errorf("%s: %d records, want 1", tt.name, len(lines)-before)
			continue
		}
		l := lines[len(lines)-1]
		if len(l) > auditLineBound {
			t.Errorf("%s: an audit line of %d bytes for a %d-byte request (%d %s), want at most %d", tt.name, len(l), len(tt.body), got.status, got.code, auditLineBound)
		}
		r := lastRecord(t, path)
		if r.RequestID == "" || r.ErrorCode == "" || !strings.HasPrefix(got.code, r.ErrorCode) {
			t.Errorf("%s: record %.300s, want the request id and the error code of %s", tt.name, l, got.code)
		}
	}
}

// TestServerlessBodyOverTheCapIsJSON: a Serverless request whose body is
// over MaxBodyBytes is refused in the JSON 1.1 envelope its SDK parses
// (as every other refusal before authentication is), not in Query XML.
func TestServerlessBodyOverTheCapIsJSON(t *testing.T) {
	f := newFixture(t)
	body := `{"workgroupName":"edge-wg","padding":"` + strings.Repeat("x", shttp.MaxBodyBytes) + `"}`
	got := sendRequest(t, signedIn("admin", "redshift-serverless", "us-east-1", getCredentialsTarget, body)(t, f))
	if got.status != 413 || got.ctype != "application/x-amz-json-1.1" || got.code != "RequestEntityTooLarge" {
		t.Fatalf("%d %q %s %.200s, want 413 RequestEntityTooLarge in JSON", got.status, got.code, got.ctype, got.body)
	}
	// A Query request keeps the XML envelope.
	got = sendRequest(t, signedIn("admin", "redshift", "us-east-1", "", "Action=DescribeClusters&Version=2012-12-01&P="+strings.Repeat("x", shttp.MaxBodyBytes))(t, f))
	if got.status != 413 || !strings.HasPrefix(got.ctype, "text/xml") || got.code != "RequestEntityTooLarge" {
		t.Fatalf("Query: %d %q %s %.200s, want 413 RequestEntityTooLarge in XML", got.status, got.code, got.ctype, got.body)
	}
}

// The audit record (and the metric) of a refused Serverless call names the
// error its client got: the JSON protocol's exception (AccessDeniedException,
// MissingAuthenticationTokenException, …), not the Query protocol's name
// the server uses inside, so an incident responder can match a client's
// error to its record.
func TestAuditServerlessErrorIsTheOneSent(t *testing.T) {
	f := newFixture(t)
	f.workgroup(t)
	f.addUser(t, "nobody", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:DescribeClusters","Resource":"*"}]}`)
	path := f.audited(t)
	unsigned := func(*testing.T, *fixture) *http.Request {
		return buildRequest(t, "POST", f.srv.URL+"/", `{"workgroupName":"edge-wg"}`,
			map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": getCredentialsTarget})
	}
	for name, req := range map[string]func(*testing.T, *fixture) *http.Request{
		"unsigned":      unsigned,
		"denied":        signedIn("nobody", "redshift-serverless", "us-east-1", getCredentialsTarget, `{"workgroupName":"edge-wg"}`),
		"no workgroup":  signedIn("admin", "redshift-serverless", "us-east-1", getCredentialsTarget, `{"workgroupName":"no-such-wg"}`),
		"bad duration":  signedIn("admin", "redshift-serverless", "us-east-1", getCredentialsTarget, `{"workgroupName":"edge-wg","durationSeconds":1}`),
		"trailing junk": signedIn("admin", "redshift-serverless", "us-east-1", getCredentialsTarget, `{"workgroupName":"edge-wg"} x`),
	} {
		got := sendRequest(t, req(t, f))
		if got.status < 400 || got.code == "" {
			t.Fatalf("%s: %d %s, want an error", name, got.status, got.body)
		}
		if r := lastRecord(t, path); r.ErrorCode != got.code {
			t.Errorf("%s: the client got %s, the audit record says %q", name, got.code, r.ErrorCode)
		}
	}
}

// Found rehearsing issue 17's check (reading the audit log as an incident
// responder): an API call's record did not say whether it came over TLS,
// so a GetClusterCredentials whose DbPassword crossed the network in
// cleartext (plain HTTP, which the API port also answers) read the same
// as one over HTTPS. CloudTrail records tlsDetails (tlsVersion,
// cipherSuite, clientProvidedHostHeader) for a call over TLS; the record
// now has them, and additionalEventData.tls as gateway records do.
func TestAuditRecordsTheCallsTLS(t *testing.T) {
	f := newFixture(t)
	path := f.audited(t)
	tlsSrv := httptest.NewTLSServer(f.api.Handler())
	t.Cleanup(tlsSrv.Close)
	issue := func(base string, hc *http.Client) map[string]any {
		t.Helper()
		cfg := f.sdk(f.keys["admin"])
		cfg.BaseEndpoint = aws.String(base)
		if hc != nil {
			cfg.HTTPClient = hc
		}
		_, err := redshift.NewFromConfig(cfg).GetClusterCredentials(context.Background(), &redshift.GetClusterCredentialsInput{
			ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("alice"), DbName: aws.String("dev")})
		mustOK(t, "GetClusterCredentials", err)
		lines := auditLines(t, path)
		var rec map[string]any
		if err := json.Unmarshal(lines[len(lines)-1], &rec); err != nil {
			t.Fatal(err)
		}
		if rec["eventName"] != "GetClusterCredentials" {
			t.Fatalf("last record: %s", lines[len(lines)-1])
		}
		return rec
	}
	plain := issue(f.srv.URL, nil)
	if plain["tlsDetails"] != nil || plain["additionalEventData"].(map[string]any)["tls"] != false {
		t.Errorf("over plain HTTP: tlsDetails %v, additionalEventData %v; want none and tls false", plain["tlsDetails"], plain["additionalEventData"])
	}
	over := issue(tlsSrv.URL, tlsSrv.Client())
	d, _ := over["tlsDetails"].(map[string]any)
	host := strings.TrimPrefix(tlsSrv.URL, "https://")
	if d == nil || d["tlsVersion"] != "TLSv1.3" || d["cipherSuite"] == "" || d["cipherSuite"] == nil || d["clientProvidedHostHeader"] != host ||
		over["additionalEventData"].(map[string]any)["tls"] != true {
		t.Errorf("over TLS: tlsDetails %v, additionalEventData %v; want TLSv1.3, its cipher suite, host %s, tls true", d, over["additionalEventData"], host)
	}
}
