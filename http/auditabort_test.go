package http_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/audit"
	shttp "github.com/shiftkey/shiftkey/http"
)

// signalled is an observer that writes each call to an audit log and then
// says so: the record of a call whose client left is waited for, not
// slept for.
type signalled struct {
	log  *audit.Log
	done chan struct{}
}

func (o signalled) APICall(e *shiftkey.APICall) {
	o.log.APICall(e)
	o.done <- struct{}{}
}

// TestAuditAbortedCallsNameTheirOperation: a call that ends before its
// operation is read the usual way (the client gone mid-body, a body over
// the cap, one that does not parse) is recorded with the operation its
// Action or X-Amz-Target named when that much arrived whole, else with
// the marker "(unknown)", never an empty eventName; with the service and
// access key its signature's scope named, and an errorCode. Found in
// review: each had "eventName":"" (and the client gone mid-body
// "eventSource":"" and no accessKeyId), which no eventName query finds.
func TestAuditAbortedCallsNameTheirOperation(t *testing.T) {
	f := newFixture(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	log, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	done := make(chan struct{}, 16)
	f.srv.Close()
	f.api.Observer = signalled{log, done}
	f.srv = httptest.NewServer(f.api.Handler())
	t.Cleanup(f.srv.Close)
	admin := f.keys["admin"]

	// signed is a POST of body signed as admin for service.
	signed := func(service, target, body string) *http.Request {
		header := formHeader
		if target != "" {
			header = map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target}
		}
		req := buildRequest(t, "POST", f.srv.URL+"/", body, header)
		if err := v4.NewSigner().SignHTTP(context.Background(), admin, req, sha256Hex(body), service, "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		return req
	}
	// abandon sends req's headers and the first n bytes of body, then
	// hangs up: a client gone before the server read the whole request.
	abandon := func(req *http.Request, body string, n int) {
		u, _ := url.Parse(f.srv.URL)
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "POST / HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", u.Host, len(body))
		for k, vs := range req.Header {
			for _, v := range vs {
				fmt.Fprintf(&b, "%s: %s\r\n", k, v)
			}
		}
		b.WriteString("\r\n" + body[:n])
		if _, err := c.Write([]byte(b.String())); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	const query = "Action=GetClusterCredentials&Version=2012-12-01&ClusterIdentifier=dev-cluster&DbUser=alice"
	const reordered = "Version=2012-12-01&ClusterIdentifier=dev-cluster&DbUser=alice&Action=GetClusterCredentials"
	const jsonBody = `{"workgroupName":"default-workgroup","dbName":"dev"}`
	big := "Action=GetClusterCredentials&Version=2012-12-01&DbUser=" + strings.Repeat("a", shttp.MaxBodyBytes)
	tests := []struct {
		name, wantName, wantSource string
		send                       func()
		gone                       bool // the client left: the answer reached no one
	}{
		{"client gone after the Action", "GetClusterCredentials", "redshift.amazonaws.com", func() {
			abandon(signed("redshift", "", query), query, len("Action=GetClusterCredentials&Version=20"))
		}, true},
		{"client gone within the Action", "(unknown)", "redshift.amazonaws.com", func() {
			abandon(signed("redshift", "", reordered), reordered, len(reordered)-5)
		}, true},
		{"client gone before the body", "(unknown)", "redshift.amazonaws.com", func() {
			abandon(signed("redshift", "", query), query, 0)
		}, true},
		{"JSON client gone mid-body", "GetCredentials", "redshift-serverless.amazonaws.com", func() {
			abandon(signed("redshift-serverless", getCredentialsTarget, jsonBody), jsonBody, 10)
		}, true},
		{"body that does not parse", "GetClusterCredentials", "redshift.amazonaws.com", func() {
			sendRequest(t, signed("redshift", "", query+"&Padding=%zz"))
		}, false},
		{"parameter given twice", "GetClusterCredentials", "redshift.amazonaws.com", func() {
			sendRequest(t, signed("redshift", "", query+"&DbUser=bob"))
		}, false},
		{"two Actions", "(unknown)", "redshift.amazonaws.com", func() {
			sendRequest(t, signed("redshift", "", query+"&Action=DescribeClusters&Padding=%zz"))
		}, false},
		{"body over the cap", "GetClusterCredentials", "redshift.amazonaws.com", func() {
			sendRequest(t, signed("redshift", "", big))
		}, false},
		{"no Action", "(unknown)", "redshift.amazonaws.com", func() {
			sendRequest(t, signed("redshift", "", "Version=2012-12-01&ClusterIdentifier=dev-cluster"))
		}, false},
	}
	for _, tt := range tests {
		tt.send()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no record after 30 s", tt.name)
		}
		r := lastRecord(t, path)
		line := auditLines(t, path)
		if r.EventName != tt.wantName || r.EventSource != tt.wantSource || r.ErrorCode == "" || r.UserIdentity.AccessKeyID != admin.AccessKeyID {
			t.Errorf("%s: recorded %s", tt.name, line[len(line)-1])
		}
		if gone, _ := r.AdditionalEventData["clientGone"].(bool); gone != tt.gone {
			t.Errorf("%s: additionalEventData.clientGone %v, want %v: %s", tt.name, r.AdditionalEventData["clientGone"], tt.gone, line[len(line)-1])
		}
		if tt.wantName == "(unknown)" && r.ReadOnly != nil {
			t.Errorf("%s: readOnly %v of an unknown operation", tt.name, *r.ReadOnly)
		}
	}
}

// TestAuditResponseElementsAsAnswered: an AssumeRole without a session
// policy is answered without PackedPolicySize; its record's
// responseElements had "packedPolicySize":null, a member the answer did
// not have. A member the answer leaves out is not in the record.
func TestAuditResponseElementsAsAnswered(t *testing.T) {
	f := newFixture(t)
	roleARN := f.trustAccountRole(t)
	path := f.audited(t)
	_, err := f.stsClient(f.keys["admin"]).AssumeRole(context.Background(), &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("s1")})
	mustOK(t, "AssumeRole", err)
	lines := auditLines(t, path)
	l := lines[len(lines)-1]
	r := lastRecord(t, path)
	if r.EventName != "AssumeRole" || r.ResponseElements["credentials"] == nil {
		t.Fatalf("last record: %s", l)
	}
	for k, v := range r.ResponseElements {
		if v == nil {
			t.Errorf("responseElements.%s is null, a member the answer did not have: %s", k, l)
		}
	}
}
