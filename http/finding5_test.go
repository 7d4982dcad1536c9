package http_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// recorder is an SDK HTTP client that keeps a copy of each request it sends.
type recorder struct {
	reqs   []*http.Request
	bodies []string
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	var b []byte
	if req.Body != nil {
		b, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	r.reqs = append(r.reqs, req.Clone(context.Background()))
	r.bodies = append(r.bodies, string(b))
	return http.DefaultClient.Do(req)
}

// replay sends the i-th recorded request again, changed by mutate.
func (r *recorder) replay(t *testing.T, i int, mutate func(*http.Request)) wireResponse {
	t.Helper()
	req := r.reqs[i].Clone(context.Background())
	req.Body = io.NopCloser(strings.NewReader(r.bodies[i]))
	req.ContentLength = int64(len(r.bodies[i]))
	req.RequestURI = ""
	if mutate != nil {
		mutate(req)
	}
	return sendRequest(t, req)
}

// signJSON signs a Serverless request the way a client that leaves
// X-Amz-Target out of SignedHeaders would: the target is set after signing.
func (f *fixture) signJSON(t *testing.T, c aws.Credentials, target, body string) *http.Request {
	t.Helper()
	req := buildRequest(t, "POST", f.srv.URL+"/", body, map[string]string{"Content-Type": "application/x-amz-json-1.1"})
	if err := v4.NewSigner().SignHTTP(context.Background(), c, req, sha256Hex(body), "redshift-serverless", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Target", target)
	return req
}

// TestFinding5UnsignedHeadersChooseOperation: X-Amz-Target and
// X-Amz-Security-Token outside SignedHeaders must not be honoured.
func TestFinding5UnsignedHeadersChooseOperation(t *testing.T) {
	f := newFixture(t)
	f.workgroup(t)
	const body = `{"workgroupName":"edge-wg"}`

	// A request signed without its X-Amz-Target, replayed as GetCredentials.
	for _, target := range []string{"RedshiftServerless.GetWorkgroup", "RedshiftServerless.GetCredentials"} {
		got := sendRequest(t, f.signJSON(t, f.keys["admin"], target, body))
		if strings.Contains(got.body, "dbPassword") {
			t.Errorf("unsigned X-Amz-Target %s issued a credential: %.120s", target, got.body)
		}
		if got.status != 400 || got.code != "IncompleteSignatureException" {
			t.Errorf("unsigned X-Amz-Target %s: %d %q %.120s, want 400 IncompleteSignatureException", target, got.status, got.code, got.body)
		}
	}

	// A real SDK signs X-Amz-Target (and Content-Type); its request is
	// accepted as sent and refused once the target is changed.
	rec := &recorder{}
	client := redshiftserverless.NewFromConfig(f.recordedSDK(rec))
	_, err := client.GetWorkgroup(context.Background(), &redshiftserverless.GetWorkgroupInput{WorkgroupName: aws.String("edge-wg")})
	mustOK(t, "SDK GetWorkgroup", err)
	if auth := rec.reqs[0].Header.Get("Authorization"); !strings.Contains(auth, "x-amz-target") || !strings.Contains(auth, "content-type") {
		t.Fatalf("aws-sdk-go-v2 no longer signs x-amz-target and content-type: %s", auth)
	}
	if got := rec.replay(t, 0, nil); got.status != 200 {
		t.Fatalf("replay as sent: %d %s", got.status, got.body)
	}
	got := rec.replay(t, 0, func(r *http.Request) { r.Header.Set("X-Amz-Target", "RedshiftServerless.GetCredentials") })
	if got.status != 403 || got.code != "InvalidSignatureException" {
		t.Fatalf("SDK request replayed as GetCredentials: %d %q %s", got.status, got.code, got.body)
	}

	// Session credentials whose token is added after signing.
	roleARN := f.trustAccountRole(t)
	ar, err := f.stsClient(f.keys["admin"]).AssumeRole(context.Background(), &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("edge")})
	mustOK(t, "AssumeRole", err)
	noToken := aws.Credentials{AccessKeyID: aws.ToString(ar.Credentials.AccessKeyId), SecretAccessKey: aws.ToString(ar.Credentials.SecretAccessKey)}
	const q = "Action=GetCallerIdentity&Version=2011-06-15"
	req := buildRequest(t, "POST", f.srv.URL+"/", q, map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if err := v4.NewSigner().SignHTTP(context.Background(), noToken, req, sha256Hex(q), "sts", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Security-Token", aws.ToString(ar.Credentials.SessionToken))
	if got := sendRequest(t, req); got.status != 400 || got.code != "IncompleteSignature" {
		t.Errorf("unsigned X-Amz-Security-Token: %d %q %.200s, want 400 IncompleteSignature", got.status, got.code, got.body)
	}
}
