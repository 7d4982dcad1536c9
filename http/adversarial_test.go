package http_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
)

// adversarial is one hostile request and the refusal AWS would give.
type adversarial struct {
	name       string
	build      func(t *testing.T, f *fixture) *http.Request
	wantStatus int
	wantCode   string
}

// headerSigned signs a request with aws-sdk-go-v2's signer as user for
// service; mutate then changes it after signing.
func headerSigned(user, service, method, rawURL, body string, header map[string]string, mutate func(*http.Request)) func(*testing.T, *fixture) *http.Request {
	return func(t *testing.T, f *fixture) *http.Request {
		req := buildRequest(t, method, f.srv.URL+rawURL, body, header)
		if err := v4.NewSigner().SignHTTP(context.Background(), f.keys[user], req, sha256Hex(body), service, "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		if mutate != nil {
			mutate(req)
		}
		return req
	}
}

// presigned presigns GetCallerIdentity (POST unless method says) with
// aws-sdk-go-v2 and sends it with body and header, rawURL changed by edit.
func presigned(method, extraQuery, payload, body string, header map[string]string, edit func(string) string) func(*testing.T, *fixture) *http.Request {
	return func(t *testing.T, f *fixture) *http.Request {
		u := presignGo(t, method, f.srv.URL+"/?Action=GetCallerIdentity&Version=2011-06-15"+extraQuery, payload, f.keys["admin"], "sts", time.Now())
		if edit != nil {
			u = edit(u)
		}
		return buildRequest(t, method, u, body, header)
	}
}

// captured makes a real SDK call through a recorder and returns the
// recorded request, changed by mutate, for replay.
func captured(call func(*fixture, *recorder) error, mutate func(*http.Request)) func(*testing.T, *fixture) *http.Request {
	return func(t *testing.T, f *fixture) *http.Request {
		rec := &recorder{}
		if err := call(f, rec); err != nil {
			t.Fatal(err)
		}
		req := rec.reqs[0].Clone(context.Background())
		req.Body, req.ContentLength = nil, 0
		if b := rec.bodies[0]; b != "" {
			req = withBody(req, b)
		}
		req.RequestURI = ""
		mutate(req)
		return req
	}
}

func withBody(r *http.Request, body string) *http.Request {
	n, _ := http.NewRequest(r.Method, r.URL.String(), strings.NewReader(body))
	n.Header = r.Header.Clone()
	n.Host = r.Host
	return n
}

const (
	formType       = "application/x-www-form-urlencoded"
	describeQuery  = "Action=DescribeClusters&Version=2012-12-01"
	identityQuery  = "Action=GetCallerIdentity&Version=2011-06-15"
	workgroupBody  = `{"workgroupName":"edge-wg"}`
	getCredentials = "RedshiftServerless.GetCredentials"
)

var (
	formHeader = map[string]string{"Content-Type": formType}
)

func setAuth(edit func(string) string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", edit(r.Header.Get("Authorization"))) }
}

// adversarialSigV4 are the SigV4 and parameter-source attacks. Add rows
// freely: each needs only a request builder and AWS's answer.
var adversarialSigV4 = []adversarial{
	// Presigned URLs: parameters come only from the signed query string.
	{"presigned POST (UNSIGNED-PAYLOAD) with an AssumeRole body",
		presigned("POST", "&X-Amz-Expires=60", unsignedPayload, "Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A000000000000%3Arole%2FAnalyst&RoleSessionName=attacker&Version=2011-06-15", formHeader, nil),
		403, "SignatureDoesNotMatch"},
	{"presigned POST whose body repeats the signed query",
		presigned("POST", "&X-Amz-Expires=60", emptySHA256, identityQuery, formHeader, nil), 403, "SignatureDoesNotMatch"},
	{"hand-built UNSIGNED-PAYLOAD presigned POST with a body", func(t *testing.T, f *fixture) *http.Request {
		u := presignByHand("POST", f.srv.URL, map[string]string{"Action": "GetCallerIdentity", "Version": "2011-06-15"}, f.keys["admin"], "sts", time.Now(), 60)
		return buildRequest(t, "POST", u, "Action=GetSessionToken&Version=2011-06-15", formHeader)
	}, 403, "SignatureDoesNotMatch"},
	{"presigned GET with a body", presigned("GET", "&X-Amz-Expires=60", emptySHA256, "Action=AssumeRole", nil, nil), 403, "SignatureDoesNotMatch"},
	{"presigned GET with a query parameter added after signing",
		presigned("GET", "&X-Amz-Expires=60", emptySHA256, "", nil, func(u string) string { return u + "&RoleArn=x" }), 403, "SignatureDoesNotMatch"},
	{"presigned GET with its Action replaced",
		presigned("GET", "&X-Amz-Expires=60", emptySHA256, "", nil, func(u string) string {
			return strings.Replace(u, "Action=GetCallerIdentity", "Action=GetSessionToken", 1)
		}), 403, "SignatureDoesNotMatch"},
	{"presigned GET with X-Amz-Expires raised after signing",
		presigned("GET", "&X-Amz-Expires=60", emptySHA256, "", nil, func(u string) string {
			return strings.Replace(u, "X-Amz-Expires=60", "X-Amz-Expires=604800", 1)
		}), 403, "SignatureDoesNotMatch"},
	{"presigned GET valid for more than a week", presigned("GET", "&X-Amz-Expires=604801", emptySHA256, "", nil, nil), 400, "IncompleteSignature"},
	{"presigned GET past its X-Amz-Expires", func(t *testing.T, f *fixture) *http.Request {
		u := presignGo(t, "GET", f.srv.URL+"/?"+identityQuery+"&X-Amz-Expires=60", emptySHA256, f.keys["admin"], "sts", time.Now().Add(-2*time.Minute))
		return buildRequest(t, "GET", u, "", nil)
	}, 400, "RequestExpired"},
	{"presigned GET with an unsigned X-Amz-Security-Token header",
		presigned("GET", "&X-Amz-Expires=60", emptySHA256, "", map[string]string{"X-Amz-Security-Token": "SKforged"}, nil), 400, "IncompleteSignature"},
	{"presigned GET with X-Amz-Signature twice",
		presigned("GET", "&X-Amz-Expires=60", emptySHA256, "", nil, func(u string) string { return u + "&X-Amz-Signature=00" }), 400, "IncompleteSignature"},
	{"presigned GET with a lowercase X-Amz-Algorithm",
		presigned("GET", "&X-Amz-Expires=60", emptySHA256, "", nil, func(u string) string {
			return strings.Replace(u, "X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=aws4-hmac-sha256", 1)
		}), 400, "IncompleteSignature"},
	{"presigned GET that also carries an Authorization header",
		presigned("GET", "&X-Amz-Expires=60", emptySHA256, "", map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=AKIAX/20260101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00"}, nil),
		400, "IncompleteSignature"},

	// Unsigned x-amz-* headers.
	{"X-Amz-Target added after signing (Serverless)", func(t *testing.T, f *fixture) *http.Request {
		return f.signJSON(t, f.keys["admin"], getCredentials, workgroupBody)
	}, 400, "IncompleteSignatureException"},
	{"X-Amz-Security-Token added after signing", headerSigned("admin", "sts", "POST", "/", identityQuery, formHeader,
		func(r *http.Request) { r.Header.Set("X-Amz-Security-Token", "SKforged") }), 400, "IncompleteSignature"},
	{"X-Amz-Date given twice", headerSigned("admin", "redshift", "POST", "/", describeQuery, formHeader,
		func(r *http.Request) { r.Header.Add("X-Amz-Date", time.Now().UTC().Format(amzDate)) }), 400, "IncompleteSignature"},
	{"unsigned X-Amz-Anything header", headerSigned("admin", "redshift", "POST", "/", describeQuery, formHeader,
		func(r *http.Request) { r.Header.Set("X-Amz-Anything", "1") }), 400, "IncompleteSignature"},
	{"unsigned X-Amz-Content-Sha256 of the real body", headerSigned("admin", "redshift", "POST", "/", describeQuery, formHeader,
		func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", sha256Hex(describeQuery)) }), 400, "IncompleteSignature"},

	// Payload hashes.
	{"signed X-Amz-Content-Sha256: UNSIGNED-PAYLOAD", func(t *testing.T, f *fixture) *http.Request {
		req := buildRequest(t, "POST", f.srv.URL+"/", identityQuery, map[string]string{"Content-Type": formType, "X-Amz-Content-Sha256": unsignedPayload})
		if err := v4.NewSigner().SignHTTP(context.Background(), f.keys["admin"], req, unsignedPayload, "sts", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		return req
	}, 403, "SignatureDoesNotMatch"},
	{"signed X-Amz-Content-Sha256 of another body", func(t *testing.T, f *fixture) *http.Request {
		const swapped = "Action=GetSessionToken&Version=2011-06-15"
		req := buildRequest(t, "POST", f.srv.URL+"/", swapped, map[string]string{"Content-Type": formType, "X-Amz-Content-Sha256": sha256Hex(identityQuery)})
		if err := v4.NewSigner().SignHTTP(context.Background(), f.keys["admin"], req, sha256Hex(identityQuery), "sts", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		return req
	}, 403, "SignatureDoesNotMatch"},

	// Replay of captured requests as another operation.
	{"captured SDK GetWorkgroup replayed as GetCredentials", captured(func(f *fixture, rec *recorder) error {
		c := redshiftserverless.NewFromConfig(f.recordedSDK(rec))
		_, err := c.GetWorkgroup(context.Background(), &redshiftserverless.GetWorkgroupInput{WorkgroupName: aws.String("edge-wg")})
		return err
	}, func(r *http.Request) { r.Header.Set("X-Amz-Target", getCredentials) }), 403, "InvalidSignatureException"},
	{"captured SDK DescribeClusters replayed as GetClusterCredentials", captured(func(f *fixture, rec *recorder) error {
		c := redshift.NewFromConfig(f.recordedSDK(rec))
		_, err := c.DescribeClusters(context.Background(), &redshift.DescribeClustersInput{})
		return err
	}, func(r *http.Request) {
		*r = *withBody(r, "Action=GetClusterCredentials&Version=2012-12-01&ClusterIdentifier=dev-cluster&DbUser=alice")
	}), 403, "SignatureDoesNotMatch"},
	{"captured SDK DescribeClusters replayed with Action also in the URL", captured(func(f *fixture, rec *recorder) error {
		c := redshift.NewFromConfig(f.recordedSDK(rec))
		_, err := c.DescribeClusters(context.Background(), &redshift.DescribeClustersInput{})
		return err
	}, func(r *http.Request) { r.URL.RawQuery = "Action=DeleteCluster&ClusterIdentifier=dev-cluster" }), 403, "SignatureDoesNotMatch"},

	// The Authorization header itself.
	{"Authorization given twice", headerSigned("admin", "redshift", "POST", "/", describeQuery, formHeader,
		func(r *http.Request) { r.Header.Add("Authorization", r.Header.Get("Authorization")) }), 400, "IncompleteSignature"},
	{"Credential given twice in Authorization", headerSigned("admin", "redshift", "POST", "/", describeQuery, formHeader,
		setAuth(func(a string) string {
			return a + ", Credential=AKIAOTHER/" + time.Now().UTC().Format("20060102") + "/us-east-1/redshift/aws4_request"
		})), 400, "IncompleteSignature"},
	{"lowercase algorithm", headerSigned("admin", "redshift", "POST", "/", describeQuery, formHeader,
		setAuth(func(a string) string { return strings.Replace(a, "AWS4-HMAC-SHA256", "aws4-hmac-sha256", 1) })), 400, "IncompleteSignature"},
	{"SigV2-style algorithm", headerSigned("admin", "redshift", "POST", "/", describeQuery, formHeader,
		setAuth(func(a string) string { return strings.Replace(a, "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1", 1) })), 400, "IncompleteSignature"},
	{"host left out of SignedHeaders", headerSigned("admin", "redshift", "POST", "/", describeQuery, formHeader,
		setAuth(func(a string) string { return strings.Replace(a, "host;", "", 1) })), 400, "IncompleteSignature"},
	{"scope names another service", headerSigned("admin", "redshift", "POST", "/", describeQuery, formHeader,
		setAuth(func(a string) string { return strings.Replace(a, "/redshift/aws4_request", "/sts/aws4_request", 1) })), 403, "SignatureDoesNotMatch"},
	{"signed for a service not served", headerSigned("admin", "s3", "POST", "/", describeQuery, formHeader, nil), 400, "InvalidAction"},
	{"scope names another region", headerSigned("admin", "redshift", "POST", "/", describeQuery, formHeader,
		setAuth(func(a string) string { return strings.Replace(a, "/us-east-1/", "/us-west-2/", 1) })), 403, "SignatureDoesNotMatch"},
	{"scope date is not X-Amz-Date's day", headerSigned("admin", "redshift", "POST", "/", describeQuery, formHeader,
		setAuth(func(a string) string {
			today := time.Now().UTC().Format("20060102")
			return strings.Replace(a, "/"+today+"/", "/"+time.Now().UTC().Add(-24*time.Hour).Format("20060102")+"/", 1)
		})), 403, "SignatureDoesNotMatch"},
	{"X-Amz-Date moved after signing", headerSigned("admin", "redshift", "POST", "/", describeQuery, formHeader,
		func(r *http.Request) { r.Header.Set("X-Amz-Date", time.Now().UTC().Add(time.Second).Format(amzDate)) }), 403, "SignatureDoesNotMatch"},

	// No authorization at all.
	{"Serverless request without Authorization", func(t *testing.T, f *fixture) *http.Request {
		return buildRequest(t, "POST", f.srv.URL+"/", workgroupBody, map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": getCredentials})
	}, 403, "MissingAuthenticationTokenException"},
	{"Query request with an empty Authorization", headerSigned("admin", "sts", "POST", "/", identityQuery, formHeader,
		func(r *http.Request) { r.Header.Set("Authorization", "") }), 403, "MissingAuthenticationToken"},
}

// TestAdversarialSigV4 sends each hostile request to a live API and
// requires AWS's refusal, code and status, and no credential in the answer.
func TestAdversarialSigV4(t *testing.T) {
	f := newFixture(t)
	f.workgroup(t)
	f.trustAccountRole(t)
	if len(adversarialSigV4) < 15 {
		t.Fatalf("only %d rows", len(adversarialSigV4))
	}
	for _, tt := range adversarialSigV4 {
		t.Run(tt.name, func(t *testing.T) {
			got := sendRequest(t, tt.build(t, f))
			for _, secret := range []string{"SecretAccessKey", "DbPassword", "dbPassword"} {
				if strings.Contains(got.body, secret) {
					t.Fatalf("credential issued: %s", got.body)
				}
			}
			if got.status != tt.wantStatus || got.code != tt.wantCode {
				t.Fatalf("got %d %q, want %d %q: %s", got.status, got.code, tt.wantStatus, tt.wantCode, got.body)
			}
		})
	}
}
