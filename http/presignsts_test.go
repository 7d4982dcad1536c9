package http_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// TestGoSDKPresignedGetCallerIdentity sends a URL aws-sdk-go-v2's STS
// presigner makes. It sets no X-Amz-Expires: STS takes such a request for
// 15 minutes, as it ignores the parameter (aws/aws-sdk-go#2167), and
// identity proofs (EKS tokens and the like) are made this way.
func TestGoSDKPresignedGetCallerIdentity(t *testing.T) {
	f := newFixture(t)
	admin := f.keys["admin"]
	p := sts.NewPresignClient(f.stsClient(aws.Credentials{AccessKeyID: admin.AccessKeyID, SecretAccessKey: admin.SecretAccessKey}))
	req, err := p.PresignGetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(req.URL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Query().Has("X-Amz-Expires") {
		t.Fatalf("the SDK's presigned URL has X-Amz-Expires now (%s): this test no longer covers its absence", req.URL)
	}
	got := sendRequest(t, buildRequest(t, req.Method, req.URL, "", nil))
	if got.status != 200 || !strings.Contains(got.body, ":user/admin</Arn>") {
		t.Errorf("GetCallerIdentity presigned by aws-sdk-go-v2: %d %q %s", got.status, got.code, got.body)
	}

	// Without X-Amz-Expires a presigned STS request lives 15 minutes, and
	// another service's is refused as before.
	creds := aws.Credentials{AccessKeyID: admin.AccessKeyID, SecretAccessKey: admin.SecretAccessKey}
	call := f.srv.URL + "/?Action=GetCallerIdentity&Version=2011-06-15"
	const emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	// With it, STS still takes one for at most 15 minutes (a bearer token
	// such as an EKS or Vault login must not outlive AWS's), a shorter one
	// for its own span, and another service's for what it says.
	for _, tc := range []struct {
		age     time.Duration
		service string
		expires string // "": none
		code    string // "": answered
	}{
		{14 * time.Minute, "sts", "", ""}, {16 * time.Minute, "sts", "", "RequestExpired"},
		{time.Minute, "redshift", "", "IncompleteSignature"},
		{14 * time.Minute, "sts", "3600", ""}, {16 * time.Minute, "sts", "3600", "RequestExpired"},
		{2 * time.Minute, "sts", "60", "RequestExpired"},
		{16 * time.Minute, "redshift", "3600", "InvalidAction"}, // past the time check: GetCallerIdentity is no Redshift action
	} {
		target := call
		if tc.expires != "" {
			target += "&X-Amz-Expires=" + tc.expires
		}
		u := presignGo(t, "GET", target, emptyHash, creds, tc.service, time.Now().Add(-tc.age))
		if got := sendRequest(t, buildRequest(t, "GET", u, "", nil)); got.code != tc.code || (tc.code == "") != (got.status == 200) {
			t.Errorf("%s presigned %v ago with X-Amz-Expires %q: %d %q, want %q", tc.service, tc.age, tc.expires, got.status, got.code, tc.code)
		}
	}
}
