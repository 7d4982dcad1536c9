package http_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/shiftkey/shiftkey/sigv4"
)

const (
	unsignedPayload = "UNSIGNED-PAYLOAD"
	emptySHA256     = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	amzDate         = "20060102T150405Z"
)

func sha256Hex(b string) string {
	sum := sha256.Sum256([]byte(b))
	return hex.EncodeToString(sum[:])
}

// response is what came back: status, error code (XML or JSON envelope,
// "" on success) and the body.
type wireResponse struct {
	status int
	code   string
	body   string
	ctype  string
}

func sendRequest(t *testing.T, req *http.Request) wireResponse {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := wireResponse{status: resp.StatusCode, body: string(b), ctype: resp.Header.Get("Content-Type")}
	if resp.StatusCode >= 300 {
		if strings.HasPrefix(r.ctype, "application/x-amz-json") {
			var e struct {
				Type string `json:"__type"`
			}
			json.Unmarshal(b, &e)
			r.code = e.Type
		} else {
			var e struct {
				Code string `xml:"Error>Code"`
			}
			xml.Unmarshal(b, &e)
			r.code = e.Code
		}
	}
	return r
}

// awsEscape is SigV4's URI encoding: RFC 3986 unreserved characters stay.
func awsEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// presignByHand builds an S3-style presigned URL (host the only signed
// header, the payload UNSIGNED-PAYLOAD) independently of both aws-sdk-go-v2
// and package sigv4's canonicalization. (Real botocore presigns with the
// empty-body hash: see TestBotocorePresignedGetCallerIdentity.)
func presignByHand(method, base string, params map[string]string, c aws.Credentials, service string, at time.Time, expires int) string {
	u, _ := url.Parse(base)
	scope := at.UTC().Format("20060102") + "/us-east-1/" + service + "/aws4_request"
	q := map[string]string{}
	for k, v := range params {
		q[k] = v
	}
	q["X-Amz-Algorithm"] = "AWS4-HMAC-SHA256"
	q["X-Amz-Credential"] = c.AccessKeyID + "/" + scope
	q["X-Amz-Date"] = at.UTC().Format(amzDate)
	q["X-Amz-Expires"] = strconv.Itoa(expires)
	q["X-Amz-SignedHeaders"] = "host"
	if c.SessionToken != "" {
		q["X-Amz-Security-Token"] = c.SessionToken
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = awsEscape(k) + "=" + awsEscape(q[k])
	}
	query := strings.Join(parts, "&")
	creq := method + "\n/\n" + query + "\nhost:" + u.Host + "\n\nhost\n" + unsignedPayload
	sts := "AWS4-HMAC-SHA256\n" + at.UTC().Format(amzDate) + "\n" + scope + "\n" + sha256Hex(creq)
	m := hmac.New(sha256.New, sigv4.SigningKey(c.SecretAccessKey, at.UTC().Format("20060102"), "us-east-1", service))
	m.Write([]byte(sts))
	return base + "/?" + query + "&X-Amz-Signature=" + hex.EncodeToString(m.Sum(nil))
}

// presignGo presigns with aws-sdk-go-v2's signer, as its STS presign client
// and aws-iam-authenticator do.
func presignGo(t *testing.T, method, rawURL, payloadHash string, c aws.Credentials, service string, at time.Time) string {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, _, err := v4.NewSigner().PresignHTTP(context.Background(), c, req, payloadHash, service, "us-east-1", at)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func buildRequest(t *testing.T, method, rawURL, body string, header map[string]string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, r)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return req
}

// trustAccountRole creates role Analyst, assumable by anyone in the account
// (admin's Allow * then permits sts:AssumeRole).
func (f *fixture) trustAccountRole(t *testing.T) string {
	t.Helper()
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"sts:AssumeRole"}]}`
	_, err := f.iamClient(f.keys["admin"]).CreateRole(context.Background(), &iam.CreateRoleInput{RoleName: aws.String("Analyst"), AssumeRolePolicyDocument: aws.String(trust)})
	mustOK(t, "CreateRole", err)
	return "arn:aws:iam::" + account + ":role/Analyst"
}

// TestFinding1PresignedPostRunsOnlySignedQuery: a URL presigned for
// sts:GetCallerIdentity (the usual proof-of-identity token) must not run an
// AssumeRole placed in the (unsigned) body of a POST.
func TestFinding1PresignedPostRunsOnlySignedQuery(t *testing.T) {
	f := newFixture(t)
	roleARN := f.trustAccountRole(t)
	admin := f.keys["admin"]
	const gci = "Action=GetCallerIdentity&Version=2011-06-15"
	identity := map[string]string{"Action": "GetCallerIdentity", "Version": "2011-06-15"}
	attack := "Action=AssumeRole&RoleArn=" + url.QueryEscape(roleARN) + "&RoleSessionName=attacker&Version=2011-06-15"
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	now := time.Now()
	tests := []struct {
		name, method, url, body string
		wantStatus              int
		wantCode                string
	}{
		{"go presigned POST (UNSIGNED-PAYLOAD) with AssumeRole body", "POST",
			presignGo(t, "POST", f.srv.URL+"/?"+gci+"&X-Amz-Expires=60", unsignedPayload, admin, "sts", now), attack, 403, "SignatureDoesNotMatch"},
		{"hand-built UNSIGNED-PAYLOAD presigned POST with AssumeRole body", "POST",
			presignByHand("POST", f.srv.URL, identity, admin, "sts", now, 60), attack, 403, "SignatureDoesNotMatch"},
		{"go presigned POST (empty-body hash) with AssumeRole body", "POST",
			presignGo(t, "POST", f.srv.URL+"/?"+gci+"&X-Amz-Expires=60", emptySHA256, admin, "sts", now), attack, 403, "SignatureDoesNotMatch"},
		{"go presigned POST, empty body", "POST",
			presignGo(t, "POST", f.srv.URL+"/?"+gci+"&X-Amz-Expires=60", unsignedPayload, admin, "sts", now), "", 200, ""},
		{"hand-built UNSIGNED-PAYLOAD presigned POST, empty body", "POST",
			presignByHand("POST", f.srv.URL, identity, admin, "sts", now, 60), "", 200, ""},
		{"hand-built UNSIGNED-PAYLOAD presigned GET", "GET",
			presignByHand("GET", f.srv.URL, identity, admin, "sts", now, 60), "", 200, ""},
		{"go presigned GET", "GET",
			presignGo(t, "GET", f.srv.URL+"/?"+gci+"&X-Amz-Expires=60", emptySHA256, admin, "sts", now), "", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string(nil)
			if tt.body != "" {
				hdr = form
			}
			got := sendRequest(t, buildRequest(t, tt.method, tt.url, tt.body, hdr))
			if strings.Contains(got.body, "AssumeRoleResponse") {
				t.Fatalf("presigned GetCallerIdentity ran AssumeRole from the body: %d %s", got.status, got.body)
			}
			if got.status != tt.wantStatus || got.code != tt.wantCode {
				t.Fatalf("got %d %q, want %d %q: %s", got.status, got.code, tt.wantStatus, tt.wantCode, got.body)
			}
			if tt.wantStatus == 200 && !strings.Contains(got.body, "<Arn>arn:aws:iam::"+account+":user/admin</Arn>") {
				t.Fatalf("not admin's identity: %s", got.body)
			}
		})
	}
}
