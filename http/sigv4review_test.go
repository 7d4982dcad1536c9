package http_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/shiftkey/shiftkey"
)

// The second review of the API's front door: each row is signed for real
// (aws-sdk-go-v2's signer) and sent to the live handler.

// signAs signs a request built by the row with c for service at the
// current time; mutate changes it after signing.
func signAs(c func(*testing.T, *fixture) aws.Credentials, service, method, rawURL, body string, header http.Header, mutate func(*http.Request)) func(*testing.T, *fixture) *http.Request {
	return func(t *testing.T, f *fixture) *http.Request {
		req := buildRequest(t, method, f.srv.URL+rawURL, body, nil)
		for k, vs := range header {
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
		if err := v4.NewSigner().SignHTTP(context.Background(), c(t, f), req, sha256Hex(body), service, "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		if mutate != nil {
			mutate(req)
		}
		return req
	}
}

func userKey(name string) func(*testing.T, *fixture) aws.Credentials {
	return func(_ *testing.T, f *fixture) aws.Credentials { return f.keys[name] }
}

// assumed is a fresh session of role Analyst, assumed by admin.
func assumed(t *testing.T, f *fixture) aws.Credentials {
	t.Helper()
	out, err := f.stsClient(f.keys["admin"]).AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn: aws.String("arn:aws:iam::" + account + ":role/Analyst"), RoleSessionName: aws.String("review")})
	mustOK(t, "AssumeRole", err)
	c := out.Credentials
	return aws.Credentials{AccessKeyID: aws.ToString(c.AccessKeyId), SecretAccessKey: aws.ToString(c.SecretAccessKey), SessionToken: aws.ToString(c.SessionToken)}
}

// otherSessionsToken signs with one session's key and another's token.
func otherSessionsToken(t *testing.T, f *fixture) aws.Credentials {
	a, b := assumed(t, f), assumed(t, f)
	a.SessionToken = b.SessionToken
	return a
}

// expiredSession is a session of Analyst that ended an hour ago, written
// directly (the SDK signs with the real clock).
func expiredSession(t *testing.T, f *fixture) aws.Credentials {
	t.Helper()
	s := &shiftkey.Session{AccessKeyID: shiftkey.NewID("ASIA"), Secret: shiftkey.NewSecretKey(), Token: "SKexpired" + shiftkey.NewUUID(), RoleName: "Analyst",
		SessionName: "old", SourceARN: "arn:aws:iam::" + account + ":user/admin", CreatedAt: time.Now().Add(-2 * time.Hour), ExpiresAt: time.Now().Add(-time.Hour)}
	mustOK(t, "CreateSession", f.store.CreateSession(context.Background(), s))
	return aws.Credentials{AccessKeyID: s.AccessKeyID, SecretAccessKey: s.Secret, SessionToken: s.Token}
}

// adminWithToken is admin's long-term key with a session's token.
func adminWithToken(t *testing.T, f *fixture) aws.Credentials {
	c := f.keys["admin"]
	c.SessionToken = assumed(t, f).SessionToken
	return c
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

var (
	form    = hdr("Content-Type", formType)
	jsonHdr = func(target string) http.Header {
		return hdr("Content-Type", "application/x-amz-json-1.1", "X-Amz-Target", target)
	}
)

const limitedAlice = "Action=GetClusterCredentials&Version=2012-12-01&ClusterIdentifier=dev-cluster&DbUser=alice"

var reviewSigV4 = []adversarial{
	// Headers: which one is signed, which one is used.
	{"Authorization plus X-Amz-Signature in the query", signAs(userKey("admin"), "redshift", "POST", "/?X-Amz-Signature=00", describeQuery, form, nil),
		400, "IncompleteSignature"},
	{"X-Amz-Security-Token given twice", signAs(assumed, "sts", "POST", "/", identityQuery, form,
		func(r *http.Request) { r.Header.Add("X-Amz-Security-Token", r.Header.Get("X-Amz-Security-Token")) }), 400, "IncompleteSignature"},
	{"X-Amz-Target given twice, both signed", signAs(userKey("admin"), "redshift-serverless", "POST", "/", workgroupBody,
		hdr("Content-Type", "application/x-amz-json-1.1", "X-Amz-Target", "RedshiftServerless.GetWorkgroup", "X-Amz-Target", getCredentials), nil),
		400, "IncompleteSignatureException"},
	{"one signed X-Amz-Target split in two lines", signAs(userKey("admin"), "redshift-serverless", "POST", "/", workgroupBody,
		jsonHdr("RedshiftServerless.GetWorkgroup,"+getCredentials),
		func(r *http.Request) {
			r.Header["X-Amz-Target"] = []string{"RedshiftServerless.GetWorkgroup", getCredentials}
		}),
		400, "IncompleteSignatureException"},
	{"X-Amz-Content-Sha256 given twice, both signed", signAs(userKey("admin"), "sts", "POST", "/", identityQuery,
		hdr("Content-Type", formType, "X-Amz-Content-Sha256", sha256Hex(identityQuery), "X-Amz-Content-Sha256", sha256Hex(identityQuery)), nil),
		400, "IncompleteSignature"},
	{"SignedHeaders naming a header twice", signAs(userKey("admin"), "redshift", "POST", "/", describeQuery, form,
		setAuth(func(a string) string { return strings.Replace(a, "host;", "host;host;", 1) })), 403, "SignatureDoesNotMatch"},
	{"SignedHeaders in another order", signAs(userKey("admin"), "redshift", "POST", "/", describeQuery, form,
		setAuth(func(a string) string { return strings.Replace(a, "content-type;host;", "host;content-type;", 1) })), 403, "SignatureDoesNotMatch"},
	{"SignedHeaders with an upper-case name", signAs(userKey("admin"), "redshift", "POST", "/", describeQuery, form,
		setAuth(func(a string) string { return strings.Replace(a, "host;", "Host;", 1) })), 400, "IncompleteSignature"},
	{"a signed header's value changed in its inner spaces", signAs(userKey("admin"), "redshift", "POST", "/", describeQuery, hdr("Content-Type", formType+"; charset=utf-8"),
		func(r *http.Request) { r.Header.Set("Content-Type", formType+";charset=utf-8") }), 403, "SignatureDoesNotMatch"},

	// Parameters: the value authorized is the value used.
	{"DbUser twice", signAs(userKey("limited"), "redshift", "POST", "/", limitedAlice+"&DbUser=bob", form, nil), 400, "InvalidParameterValue"},
	{"DbUser twice, one percent-encoded", signAs(userKey("limited"), "redshift", "POST", "/", limitedAlice+"&Db%55ser=bob", form, nil), 400, "InvalidParameterValue"},
	{"Action twice", signAs(userKey("admin"), "redshift", "POST", "/", describeQuery+"&Action=DeleteCluster", form, nil), 400, "InvalidParameterValue"},
	{"DbGroups member 1 under both spellings", signAs(userKey("admin"), "redshift", "POST", "/", limitedAlice+"&DbGroups.member.1=a&DbGroups.DbGroup.1=b", form, nil), 400, "InvalidParameterValue"},
	{"a list given empty and with members", signAs(userKey("admin"), "redshift", "POST", "/", describeQuery+"&TagKeys=&TagKeys.TagKey.1=team", form, nil),
		400, "InvalidParameterValue"},
	{"Tags member 1 under both spellings", signAs(userKey("admin"), "redshift", "POST", "/",
		"Action=CreateTags&Version=2012-12-01&ResourceName=arn:aws:redshift:us-east-1:"+account+":cluster:dev-cluster&Tags.member.1.Key=a&Tags.member.1.Value=1&Tags.Tag.1.Key=b&Tags.Tag.1.Value=2", form, nil),
		400, "InvalidParameterValue"},

	// Credential scope.
	{"Serverless call signed for redshift", signAs(userKey("admin"), "redshift", "POST", "/", workgroupBody, jsonHdr(getCredentials), nil),
		403, "InvalidSignatureException"},
	{"Serverless call signed for sts", signAs(userKey("admin"), "sts", "POST", "/", workgroupBody, jsonHdr(getCredentials), nil),
		403, "InvalidSignatureException"},
	{"scope terminator altered", signAs(userKey("admin"), "redshift", "POST", "/", describeQuery, form,
		setAuth(func(a string) string { return strings.Replace(a, "/aws4_request", "/aws4_requesx", 1) })), 400, "IncompleteSignature"},

	// Session tokens.
	{"another session's token with this session's key", signAs(otherSessionsToken, "sts", "POST", "/", identityQuery, form, nil), 403, "InvalidClientTokenId"},
	{"an expired session (Query)", signAs(expiredSession, "sts", "POST", "/", identityQuery, form, nil), 400, "ExpiredToken"},
	{"an expired session (JSON)", signAs(expiredSession, "redshift-serverless", "POST", "/", workgroupBody, jsonHdr(getCredentials), nil), 403, "ExpiredTokenException"},
	{"a session token on a long-term key", signAs(adminWithToken, "sts", "POST", "/", identityQuery, form, nil), 403, "InvalidClientTokenId"},
	{"a session key without its token", signAs(func(t *testing.T, f *fixture) aws.Credentials {
		c := assumed(t, f)
		c.SessionToken = ""
		return c
	}, "sts", "POST", "/", identityQuery, form, nil), 403, "InvalidClientTokenId"},
	{"a session token only in the query of a header-signed request", func(t *testing.T, f *fixture) *http.Request {
		c := assumed(t, f)
		tok := c.SessionToken
		c.SessionToken = ""
		return signAs(func(*testing.T, *fixture) aws.Credentials { return c }, "sts", "POST", "/?X-Amz-Security-Token="+url.QueryEscape(tok), identityQuery, form, nil)(t, f)
	}, 403, "InvalidClientTokenId"},
	{"a presigned URL of an expired session", func(t *testing.T, f *fixture) *http.Request {
		u := presignGo(t, "GET", f.srv.URL+"/?"+identityQuery+"&X-Amz-Expires=900", emptySHA256, expiredSession(t, f), "sts", time.Now())
		return buildRequest(t, "GET", u, "", nil)
	}, 400, "ExpiredToken"},
	{"a presigned URL of a session, its token left out", func(t *testing.T, f *fixture) *http.Request {
		c := assumed(t, f)
		c.SessionToken = ""
		u := presignGo(t, "GET", f.srv.URL+"/?"+identityQuery+"&X-Amz-Expires=900", emptySHA256, c, "sts", time.Now())
		return buildRequest(t, "GET", u, "", nil)
	}, 403, "InvalidClientTokenId"},
	{"a presigned URL of a session, its token appended after signing", func(t *testing.T, f *fixture) *http.Request {
		c := assumed(t, f)
		tok := c.SessionToken
		c.SessionToken = ""
		u := presignGo(t, "GET", f.srv.URL+"/?"+identityQuery+"&X-Amz-Expires=900", emptySHA256, c, "sts", time.Now())
		return buildRequest(t, "GET", u+"&X-Amz-Security-Token="+url.QueryEscape(tok), "", nil)
	}, 403, "SignatureDoesNotMatch"},
}

func TestReviewSigV4(t *testing.T) {
	f := newFixture(t)
	f.workgroup(t)
	f.trustAccountRole(t)
	for _, tt := range reviewSigV4 {
		t.Run(tt.name, func(t *testing.T) {
			got := sendRequest(t, tt.build(t, f))
			for _, secret := range []string{"SecretAccessKey", "DbPassword", "dbPassword", "<Arn>"} {
				if strings.Contains(got.body, secret) {
					t.Fatalf("answered: %s", got.body)
				}
			}
			if got.status != tt.wantStatus || got.code != tt.wantCode {
				t.Fatalf("got %d %q, want %d %q: %s", got.status, got.code, tt.wantStatus, tt.wantCode, got.body)
			}
		})
	}
}

// TestJSONMemberGivenTwiceIsAuthorizedAsUsed: encoding/json keeps the last
// of a member given twice (as AWS's JSON services do); the workgroup the
// policy is checked on must be the one the credential is issued for, and
// the one the audit log records, whichever order, and whichever spelling
// of the member name.
func TestJSONMemberGivenTwiceIsAuthorizedAsUsed(t *testing.T) {
	f := newFixture(t)
	f.workgroup(t)
	ctx := context.Background()
	edge, err := f.store.Workgroup(ctx, "edge-wg")
	mustOK(t, "Workgroup", err)
	mustOK(t, "CreateNamespace", f.store.CreateNamespace(ctx, &shiftkey.Namespace{Name: "other-ns", ID: shiftkey.NewUUID(), DBName: "dev",
		AdminUsername: "admin", Status: "AVAILABLE", CreatedAt: time.Now()}))
	other := &shiftkey.Workgroup{Name: "other-wg", ID: shiftkey.NewUUID(), Namespace: "other-ns", Status: "AVAILABLE", BaseCapacity: 128,
		Endpoint: shiftkey.Endpoint{Address: "127.0.0.1", Port: 5441}, CreatedAt: time.Now()}
	mustOK(t, "CreateWorkgroup", f.store.CreateWorkgroup(ctx, other))
	f.addUser(t, "edgeonly", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift-serverless:GetCredentials",
		"Resource":"arn:aws:redshift-serverless:us-east-1:`+account+`:workgroup/`+edge.ID+`"}]}`)
	path := f.audited(t)
	for _, body := range []string{`{"workgroupName":"edge-wg","workgroupName":"other-wg"}`, `{"workgroupName":"edge-wg","workgroup\u004eame":"other-wg"}`} {
		got := sendRequest(t, signedIn("edgeonly", "redshift-serverless", "us-east-1", getCredentials, body)(t, f))
		if got.status != 403 || got.code != "AccessDeniedException" || !strings.Contains(got.body, other.ID) || strings.Contains(got.body, "dbPassword") {
			t.Errorf("%s: %d %q %s, want AccessDeniedException on other-wg", body, got.status, got.code, got.body)
		}
		if wg := lastRecord(t, path).RequestParameters["workgroupName"]; wg != "other-wg" {
			t.Errorf("%s: refused on other-wg, recorded workgroupName %v", body, wg)
		}
	}
	for _, body := range []string{`{"workgroupName":"other-wg","workgroupName":"edge-wg"}`, `{"workgroupName":"other-wg","workgroup\u004eame":"edge-wg"}`} {
		got := sendRequest(t, signedIn("edgeonly", "redshift-serverless", "us-east-1", getCredentials, body)(t, f))
		if got.status != 200 || !strings.Contains(got.body, "dbPassword") {
			t.Errorf("%s: %d %s, want a credential for edge-wg", body, got.status, got.body)
		}
		if wg := lastRecord(t, path).RequestParameters["workgroupName"]; wg != "edge-wg" {
			t.Errorf("%s: issued for edge-wg, recorded workgroupName %v", body, wg)
		}
	}
}

// TestQueryPOSTRunsItsBodyOnly: a header-signed POST takes its parameters
// from its body; parameters in its URL (signed too) are neither run nor
// authorized nor recorded, so a URL naming another DbUser changes nothing.
func TestQueryPOSTRunsItsBodyOnly(t *testing.T) {
	f := newFixture(t)
	path := f.audited(t)
	for _, tt := range []struct{ query, body, wantUser, wantCode string }{
		{"Action=GetClusterCredentials&Version=2012-12-01&ClusterIdentifier=dev-cluster&DbUser=bob", limitedAlice, "alice", ""},
		{"DbUser=alice", "Action=GetClusterCredentials&Version=2012-12-01&ClusterIdentifier=dev-cluster&DbUser=bob", "bob", "AccessDenied"},
		{limitedAlice, "", "", "MissingAction"},
	} {
		got := sendRequest(t, signAs(userKey("limited"), "redshift", "POST", "/?"+tt.query, tt.body, form, nil)(t, f))
		if got.code != tt.wantCode {
			t.Fatalf("URL %s, body %s: %d %q %s, want %q", tt.query, tt.body, got.status, got.code, got.body, tt.wantCode)
		}
		if tt.wantCode == "" && !strings.Contains(got.body, "<DbUser>IAM:alice</DbUser>") {
			t.Fatalf("URL %s, body %s: %s, want alice's credential", tt.query, tt.body, got.body)
		}
		if tt.wantCode == "AccessDenied" && !strings.Contains(got.body, "dbuser:dev-cluster/bob") {
			t.Fatalf("URL %s, body %s: %s, want refused on bob", tt.query, tt.body, got.body)
		}
		if u := lastRecord(t, path).RequestParameters["dbUser"]; tt.wantUser != "" && u != tt.wantUser {
			t.Fatalf("URL %s, body %s: recorded dbUser %v, want %s", tt.query, tt.body, u, tt.wantUser)
		}
	}
}

// TestHostGivenTwice: the host signed is r.Host, and net/http refuses a
// request with two Host headers before any handler reads one.
func TestHostGivenTwice(t *testing.T) {
	f := newFixture(t)
	u, _ := url.Parse(f.srv.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "POST / HTTP/1.1\r\nHost: " + u.Host + "\r\nHost: other.example\r\nContent-Type: " + formType +
		"\r\nContent-Length: " + strconv.Itoa(len(identityQuery)) + "\r\nConnection: close\r\n\r\n" + identityQuery
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 400 {
		t.Fatalf("two Host headers: %d, want 400", resp.StatusCode)
	}
}
