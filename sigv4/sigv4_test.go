package sigv4

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

var (
	creds   = aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
	signAt  = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	request = []struct {
		name, method, url, body string
		headers                 map[string]string
		token                   string
	}{
		{"query POST form", "POST", "https://redshift.us-east-1.amazonaws.com/", "Action=GetClusterCredentials&Version=2012-12-01&DbUser=alice&DbGroups.DbGroup.1=a%2Bb",
			map[string]string{"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, ""},
		{"GET with query", "GET", "http://127.0.0.1:9439/?Action=DescribeClusters&Version=2012-12-01&Marker=a%20b&Z=%E2%82%AC&empty=", "", nil, ""},
		{"reserved characters in query", "GET", "http://localhost/?a=%2F%3D%26%2B&b=~._-", "", nil, ""},
		{"path with special characters", "POST", "http://localhost/some%20path/x~y", "{}", map[string]string{"Content-Type": "application/x-amz-json-1.1"}, ""},
		{"session token", "POST", "http://localhost/", "Action=GetCallerIdentity&Version=2011-06-15", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "FwoGZXIvYXdzEXAMPLETOKEN"},
		{"extra signed headers", "POST", "http://localhost/", "x=1", map[string]string{"Content-Type": "text/plain", "User-Agent": "aws-sdk-go-v2/1.0  extra   spaces", "X-Amz-Target": "RedshiftServerless.GetCredentials"}, ""},
		{"declared content hash", "POST", "http://localhost/", "hello", map[string]string{"X-Amz-Content-Sha256": hashHex("hello")}, ""},
	}
)

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func build(t *testing.T, method, url, body string, headers map[string]string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	return r
}

func sign(t *testing.T, r *http.Request, body string, c aws.Credentials, at time.Time) {
	t.Helper()
	if err := v4.NewSigner().SignHTTP(context.Background(), c, r, hashHex(body), "redshift", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
}

// check parses and verifies r as a server would.
func check(r *http.Request, body string, secret string, now time.Time) error {
	a, err := Parse(r)
	if err != nil {
		return err
	}
	return a.Verify(r, []byte(body), secret, now)
}

func code(err error) string {
	if e, ok := err.(*Error); ok {
		return e.Code
	}
	if err != nil {
		return "other: " + err.Error()
	}
	return ""
}

// TestSDKSignedRequestsVerify signs with aws-sdk-go-v2's signer and mutates
// one thing at a time.
func TestSDKSignedRequestsVerify(t *testing.T) {
	for _, rq := range request {
		t.Run(rq.name, func(t *testing.T) {
			c := creds
			c.SessionToken = rq.token
			fresh := func() *http.Request {
				r := build(t, rq.method, rq.url, rq.body, rq.headers)
				sign(t, r, rq.body, c, signAt)
				return r
			}
			r := fresh()
			if err := check(r, rq.body, creds.SecretAccessKey, signAt.Add(time.Minute)); err != nil {
				t.Fatalf("SDK-signed request refused: %v", err)
			}
			a, _ := Parse(r)
			if a.AccessKeyID != creds.AccessKeyID || a.Region != "us-east-1" || a.Service != "redshift" || a.SecurityToken != rq.token {
				t.Fatalf("parsed %+v", a)
			}
			mutations := []struct {
				name   string
				mutate func(r *http.Request) (body, secret string, now time.Time)
				want   string
			}{
				{"body byte", func(r *http.Request) (string, string, time.Time) { return rq.body + "x", creds.SecretAccessKey, signAt }, "SignatureDoesNotMatch"},
				{"signed header", func(r *http.Request) (string, string, time.Time) {
					r.Header.Set("X-Amz-Date", signAt.Add(time.Second).Format("20060102T150405Z"))
					return rq.body, creds.SecretAccessKey, signAt
				}, "SignatureDoesNotMatch"},
				{"host", func(r *http.Request) (string, string, time.Time) {
					r.Host = "evil.example"
					return rq.body, creds.SecretAccessKey, signAt
				}, "SignatureDoesNotMatch"},
				{"secret", func(r *http.Request) (string, string, time.Time) {
					return rq.body, "wrong" + creds.SecretAccessKey, signAt
				}, "SignatureDoesNotMatch"},
				{"signature", func(r *http.Request) (string, string, time.Time) {
					h := r.Header.Get("Authorization")
					r.Header.Set("Authorization", h[:len(h)-1]+string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", h[len(h)-1])+1)%16]))
					return rq.body, creds.SecretAccessKey, signAt
				}, "SignatureDoesNotMatch"},
				{"region", func(r *http.Request) (string, string, time.Time) {
					r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/us-east-1/", "/us-west-2/", 1))
					return rq.body, creds.SecretAccessKey, signAt
				}, "SignatureDoesNotMatch"},
				{"5 min 1 s late", func(r *http.Request) (string, string, time.Time) {
					return rq.body, creds.SecretAccessKey, signAt.Add(5*time.Minute + time.Second)
				}, "SignatureDoesNotMatch"},
				{"5 min 1 s early", func(r *http.Request) (string, string, time.Time) {
					return rq.body, creds.SecretAccessKey, signAt.Add(-5*time.Minute - time.Second)
				}, "SignatureDoesNotMatch"},
			}
			for _, m := range mutations {
				r := fresh()
				body, secret, now := m.mutate(r)
				if got := code(check(r, body, secret, now)); got != m.want {
					t.Errorf("%s: got %q, want %s", m.name, got, m.want)
				}
			}
			// Within the window both ways is fine.
			for _, d := range []time.Duration{-5 * time.Minute, 5 * time.Minute} {
				if err := check(fresh(), rq.body, creds.SecretAccessKey, signAt.Add(d)); err != nil {
					t.Errorf("skew %v refused: %v", d, err)
				}
			}
		})
	}
}

func TestDeclaredHashMustMatchBody(t *testing.T) {
	r := build(t, "POST", "http://localhost/", "hello", map[string]string{"X-Amz-Content-Sha256": hashHex("hello")})
	sign(t, r, "hello", creds, signAt)
	if got := code(check(r, "goodbye", creds.SecretAccessKey, signAt)); got != "SignatureDoesNotMatch" {
		t.Fatalf("swapped body under a declared hash: %q", got)
	}
}

func TestPresigned(t *testing.T) {
	r := build(t, "GET", "http://127.0.0.1:9439/?Action=DescribeClusters&Version=2012-12-01&X-Amz-Expires=300", "", nil)
	url, hdr, err := v4.NewSigner().PresignHTTP(context.Background(), creds, r, hashHex(""), "redshift", "us-east-1", signAt)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		p.Header[k] = v
	}
	if err := check(p, "", creds.SecretAccessKey, signAt.Add(time.Minute)); err != nil {
		t.Fatalf("presigned refused: %v", err)
	}
	if got := code(check(p, "", creds.SecretAccessKey, signAt.Add(301*time.Second))); got != "RequestExpired" {
		t.Fatalf("expired presigned: %q", got)
	}
	q, _ := http.NewRequest("GET", strings.Replace(url, "DescribeClusters", "DeleteCluster", 1), nil)
	for k, v := range hdr {
		q.Header[k] = v
	}
	if got := code(check(q, "", creds.SecretAccessKey, signAt)); got != "SignatureDoesNotMatch" {
		t.Fatalf("altered presigned query: %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	good := "AWS4-HMAC-SHA256 Credential=AKID/20261124/us-east-1/redshift/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcd"
	tests := []struct {
		name, auth, date string
		want             string
	}{
		{"no authorization", "", "20261124T120000Z", "MissingAuthenticationToken"},
		{"other algorithm", strings.Replace(good, "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1", 1), "20261124T120000Z", "IncompleteSignature"},
		{"no signature", strings.Split(good, ", Signature")[0], "20261124T120000Z", "IncompleteSignature"},
		{"no signed headers", strings.Replace(good, "SignedHeaders=host;x-amz-date, ", "", 1), "20261124T120000Z", "IncompleteSignature"},
		{"no credential", strings.Replace(good, "Credential=AKID/20261124/us-east-1/redshift/aws4_request, ", "", 1), "20261124T120000Z", "IncompleteSignature"},
		{"short scope", strings.Replace(good, "/redshift/aws4_request", "/aws4_request", 1), "20261124T120000Z", "IncompleteSignature"},
		{"scope not aws4_request", strings.Replace(good, "aws4_request", "aws5_request", 1), "20261124T120000Z", "IncompleteSignature"},
		{"host not signed", strings.Replace(good, "host;", "", 1), "20261124T120000Z", "IncompleteSignature"},
		{"signed header absent", strings.Replace(good, "host;x-amz-date", "host;x-amz-date;x-amz-target", 1), "20261124T120000Z", "IncompleteSignature"},
		{"uppercase signed header", strings.Replace(good, "host;x-amz-date", "Host;x-amz-date", 1), "20261124T120000Z", "IncompleteSignature"},
		{"no date", good, "", "IncompleteSignature"},
		{"bad date", good, "2026-11-24T12:00:00Z", "IncompleteSignature"},
		{"parameter without =", good + ", junk", "20261124T120000Z", "IncompleteSignature"},
		{"parameter twice", good + ", Signature=ef", "20261124T120000Z", "IncompleteSignature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest("POST", "http://localhost/", nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			if tt.date != "" {
				r.Header.Set("X-Amz-Date", tt.date)
			}
			_, err := Parse(r)
			if got := code(err); got != tt.want {
				t.Fatalf("got %q (%v), want %s", got, err, tt.want)
			}
		})
	}
	// Scope date differing from X-Amz-Date fails verification.
	r, _ := http.NewRequest("POST", "http://localhost/", nil)
	r.Header.Set("Authorization", good)
	r.Header.Set("X-Amz-Date", "20261125T000100Z")
	a, err := Parse(r)
	if err != nil {
		t.Fatal(err)
	}
	if got := code(a.Verify(r, nil, "s", signAt)); got != "SignatureDoesNotMatch" {
		t.Fatalf("scope date mismatch: %q", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20261124/us-east-1/redshift/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcd", "20261124T120000Z")
	f.Add("AWS4-HMAC-SHA256 Credential=//// , SignedHeaders=;, Signature=", "x")
	f.Add("AWS4-HMAC-SHA256", "")
	f.Fuzz(func(t *testing.T, auth, date string) {
		r, _ := http.NewRequest("POST", "http://localhost/", io.NopCloser(strings.NewReader("")))
		r.Header.Set("Authorization", auth)
		r.Header.Set("X-Amz-Date", date)
		a, err := Parse(r)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		a.Verify(r, nil, "secret", signAt)
	})
}

// TestFinding1PresignedBodyRefused: a presigned URL's signature covers no
// body, so a body is refused whatever the presigner wrote as payload hash;
// without a body both forms verify.
func TestFinding1PresignedBodyRefused(t *testing.T) {
	for _, payload := range []string{"UNSIGNED-PAYLOAD", hashHex("")} {
		r := build(t, "POST", "http://127.0.0.1:9439/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Expires=60", "", nil)
		u, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, r, payload, "sts", "us-east-1", signAt)
		if err != nil {
			t.Fatal(err)
		}
		if err := check(build(t, "POST", u, "", nil), "", creds.SecretAccessKey, signAt); err != nil {
			t.Errorf("%s: presigned POST without a body refused: %v", payload, err)
		}
		const body = "Action=AssumeRole&RoleArn=arn:aws:iam::000000000000:role/Admin&RoleSessionName=xx&Version=2011-06-15"
		if got := code(check(build(t, "POST", u, body, nil), body, creds.SecretAccessKey, signAt)); got != "SignatureDoesNotMatch" {
			t.Errorf("%s: presigned POST with a body: %q, want SignatureDoesNotMatch", payload, got)
		}
	}
}

// TestUnsignedPayloadHeaderRefused: these services always hash the body, so
// a header-signed request declaring UNSIGNED-PAYLOAD (signed or not) is
// refused even when its signature is over that declaration.
func TestUnsignedPayloadHeaderRefused(t *testing.T) {
	const body = "Action=AssumeRole&Version=2011-06-15"
	r := build(t, "POST", "http://localhost/", body, map[string]string{"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"})
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, "UNSIGNED-PAYLOAD", "sts", "us-east-1", signAt); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Header.Get("Authorization"), "x-amz-content-sha256") {
		t.Fatalf("x-amz-content-sha256 not signed: %s", r.Header.Get("Authorization"))
	}
	if got := code(check(r, body, creds.SecretAccessKey, signAt)); got != "SignatureDoesNotMatch" {
		t.Fatalf("UNSIGNED-PAYLOAD header: %q, want SignatureDoesNotMatch", got)
	}
}

// TestFinding5UnsignedAmzHeaders: every x-amz-* header present must be
// signed, and each authentication input given once.
func TestFinding5UnsignedAmzHeaders(t *testing.T) {
	const body = `{"workgroupName":"wg"}`
	signed := func() *http.Request {
		r := build(t, "POST", "http://localhost/", body, map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "RedshiftServerless.GetWorkgroup"})
		sign(t, r, body, creds, signAt)
		return r
	}
	tests := []struct {
		name   string
		mutate func(r *http.Request)
		want   string
	}{
		{"as signed", func(*http.Request) {}, ""},
		{"x-amzn-trace-id added (another prefix)", func(r *http.Request) { r.Header.Set("X-Amzn-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793") }, ""},
		{"x-amz-security-token added", func(r *http.Request) { r.Header.Set("X-Amz-Security-Token", "tok") }, "IncompleteSignature"},
		{"x-amz-content-sha256 added", func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", hashHex(body)) }, "IncompleteSignature"},
		{"x-amz-anything added", func(r *http.Request) { r.Header.Set("X-Amz-Anything", "1") }, "IncompleteSignature"},
		{"second X-Amz-Target", func(r *http.Request) { r.Header.Add("X-Amz-Target", "RedshiftServerless.GetCredentials") }, "IncompleteSignature"},
		{"second X-Amz-Date", func(r *http.Request) { r.Header.Add("X-Amz-Date", "20261124T120100Z") }, "IncompleteSignature"},
		{"second Authorization", func(r *http.Request) { r.Header.Add("Authorization", r.Header.Get("Authorization")) }, "IncompleteSignature"},
		{"presigned parameters too", func(r *http.Request) { r.URL.RawQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256" }, "IncompleteSignature"},
	}
	for _, tt := range tests {
		r := signed()
		tt.mutate(r)
		if got := code(check(r, body, creds.SecretAccessKey, signAt)); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
	// Signed without X-Amz-Target, the target added afterwards.
	r := build(t, "POST", "http://localhost/", body, map[string]string{"Content-Type": "application/x-amz-json-1.1"})
	sign(t, r, body, creds, signAt)
	r.Header.Set("X-Amz-Target", "RedshiftServerless.GetCredentials")
	if got := code(check(r, body, creds.SecretAccessKey, signAt)); got != "IncompleteSignature" {
		t.Errorf("unsigned X-Amz-Target: %q, want IncompleteSignature", got)
	}

	// Presigned: a token header, or an auth parameter given twice.
	p := build(t, "GET", "http://localhost/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Expires=60", "", nil)
	u, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, p, hashHex(""), "sts", "us-east-1", signAt)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		url    string
		header map[string]string
		want   string
	}{
		"as presigned":               {u, nil, ""},
		"unsigned token header":      {u, map[string]string{"X-Amz-Security-Token": "tok"}, "IncompleteSignature"},
		"unsigned x-amz-target":      {u, map[string]string{"X-Amz-Target": "RedshiftServerless.GetCredentials"}, "IncompleteSignature"},
		"X-Amz-Credential twice":     {u + "&X-Amz-Credential=AKIDOTHER%2F20261124%2Fus-east-1%2Fsts%2Faws4_request", nil, "IncompleteSignature"},
		"X-Amz-Signature twice":      {u + "&X-Amz-Signature=00", nil, "IncompleteSignature"},
		"X-Amz-Security-Token added": {u + "&X-Amz-Security-Token=tok", nil, "SignatureDoesNotMatch"},
	} {
		if got := code(check(build(t, "GET", tc.url, "", tc.header), "", creds.SecretAccessKey, signAt)); got != tc.want {
			t.Errorf("%s: %q, want %q", name, got, tc.want)
		}
	}
}

// Found in a review of the audit log: an Authorization part without '='
// was quoted whole in the error, which the audit log records, so a
// client that wrote "Signature <hex>" (or a header mangled on the way)
// left a signature anyone reading the log could replay, reformatted, for
// the rest of its window. Errors name a malformed part by its place.
func TestParseErrorsQuoteNoSignature(t *testing.T) {
	const sig = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
	for _, auth := range []string{
		"AWS4-HMAC-SHA256 Credential=AKID/20261124/us-east-1/redshift/aws4_request, SignedHeaders=host;x-amz-date, Signature " + sig,
		"AWS4-HMAC-SHA256 Credential=AKID/20261124/us-east-1/redshift/aws4_request, SignedHeaders=host;x-amz-date, Signature:" + sig,
		"AWS4-HMAC-SHA256 Credential=AKID/20261124/us-east-1/redshift/aws4_request, Signature " + sig + "=x, Signature " + sig + "=x",
	} {
		r, _ := http.NewRequest("POST", "http://localhost/", nil)
		r.Header.Set("Authorization", auth)
		r.Header.Set("X-Amz-Date", "20261124T120000Z")
		_, err := Parse(r)
		if code(err) != "IncompleteSignature" {
			t.Fatalf("%q: %v, want IncompleteSignature", auth, err)
		}
		if strings.Contains(err.Error(), sig[:16]) {
			t.Fatalf("the error quotes the signature: %v", err)
		}
	}
}

// A presigned URL lives X-Amz-Expires (at most 7 days) from its own
// X-Amz-Date, whatever the 5-minute skew rule says of signed headers, and
// is refused until its X-Amz-Date is within 5 minutes; the refusal names
// the server's time.
func TestPresignedWeek(t *testing.T) {
	presign := func(expires string) *http.Request {
		r := build(t, "GET", "http://127.0.0.1:9439/?Action=DescribeClusters&Version=2012-12-01&X-Amz-Expires="+expires, "", nil)
		url, hdr, err := v4.NewSigner().PresignHTTP(context.Background(), creds, r, hashHex(""), "redshift", "us-east-1", signAt)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := http.NewRequest("GET", url, nil)
		for k, v := range hdr {
			p.Header[k] = v
		}
		return p
	}
	week := presign("604800")
	if err := check(week, "", creds.SecretAccessKey, signAt.Add(7*24*time.Hour)); err != nil {
		t.Errorf("presigned for a week, used at its end: %v", err)
	}
	err := check(week, "", creds.SecretAccessKey, signAt.Add(7*24*time.Hour+time.Second))
	if code(err) != "RequestExpired" || !strings.Contains(err.Error(), "20261201T120001Z") {
		t.Errorf("presigned for a week, used a second after: %v", err)
	}
	err = check(week, "", creds.SecretAccessKey, signAt.Add(-5*time.Minute-time.Second))
	if code(err) != "RequestExpired" || !strings.Contains(err.Error(), "20261124T115459Z") {
		t.Errorf("presigned 5 min 1 s ahead of the server: %v", err)
	}
	if got := code(check(presign("604801"), "", creds.SecretAccessKey, signAt)); got != "IncompleteSignature" {
		t.Errorf("X-Amz-Expires past a week: %q", got)
	}
}

// TestRepeatedAmzHeaderRefused: a header given twice is signed as its
// values joined by a comma, exactly as one value holding that comma is, and
// the server reads the first. Every x-amz-* header is refused when
// repeated, signed or not: the operation or session chosen must be the one
// value that was signed.
func TestRepeatedAmzHeaderRefused(t *testing.T) {
	const body = `{"workgroupName":"wg"}`
	// Signed with both values: aws-sdk-go-v2 signs them joined.
	r := build(t, "POST", "http://localhost/", body, map[string]string{"Content-Type": "application/x-amz-json-1.1"})
	r.Header.Add("X-Amz-Target", "RedshiftServerless.GetWorkgroup")
	r.Header.Add("X-Amz-Target", "RedshiftServerless.GetCredentials")
	sign(t, r, body, creds, signAt)
	if got := code(check(r, body, creds.SecretAccessKey, signAt)); got != "IncompleteSignature" {
		t.Errorf("X-Amz-Target given twice, both signed: %q, want IncompleteSignature", got)
	}
	// Signed as one value with a comma, sent as two lines: same signature.
	r = build(t, "POST", "http://localhost/", body, map[string]string{"Content-Type": "application/x-amz-json-1.1",
		"X-Amz-Target": "RedshiftServerless.GetWorkgroup,RedshiftServerless.GetCredentials"})
	sign(t, r, body, creds, signAt)
	r.Header["X-Amz-Target"] = []string{"RedshiftServerless.GetWorkgroup", "RedshiftServerless.GetCredentials"}
	if got := code(check(r, body, creds.SecretAccessKey, signAt)); got != "IncompleteSignature" {
		t.Errorf("one signed X-Amz-Target split in two: %q, want IncompleteSignature", got)
	}
	// Other signed headers may repeat, joined with commas as AWS does.
	r = build(t, "POST", "http://localhost/", body, map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "RedshiftServerless.GetWorkgroup"})
	r.Header.Add("My-Header", "a")
	r.Header.Add("My-Header", "  b   c ")
	sign(t, r, body, creds, signAt)
	if err := check(r, body, creds.SecretAccessKey, signAt); err != nil {
		t.Errorf("a repeated signed header with inner spaces: %v", err)
	}
}
