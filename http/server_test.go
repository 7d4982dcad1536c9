package http_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/redshift/types"
	"github.com/aws/smithy-go"
	"github.com/shiftkey/shiftkey/scram"
)

func TestSDKGetClusterCredentials(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	before := time.Now()
	out, err := f.client("admin").GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
		ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("alice"), DbName: aws.String("dev"),
		AutoCreate: aws.Bool(true), DbGroups: []string{"analysts", "readers"}, DurationSeconds: aws.Int32(1800),
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.DbUser) != "IAMA:alice" {
		t.Fatalf("DbUser = %q, want IAMA:alice", aws.ToString(out.DbUser))
	}
	if len(aws.ToString(out.DbPassword)) < 32 {
		t.Fatalf("password too short: %d chars", len(aws.ToString(out.DbPassword)))
	}
	exp := aws.ToTime(out.Expiration)
	if d := exp.Sub(before); d < 1799*time.Second || d > 1801*time.Second+time.Since(before) {
		t.Fatalf("expiration %v is not 1800s after the call", d)
	}

	// What is stored verifies the returned password and nothing else.
	creds, salt, ok, err := f.store.LiveCredentials(ctx, "dev-cluster", "IAMA:alice", time.Now())
	if err != nil || !ok || len(creds) != 1 {
		t.Fatalf("stored credentials: %v %v %v", creds, ok, err)
	}
	c := creds[0]
	keys := scram.NewKeys(aws.ToString(out.DbPassword), salt.Salt, salt.Iterations)
	if !bytes.Equal(c.StoredKey, keys.StoredKey[:]) || !bytes.Equal(c.ServerKey, keys.ServerKey[:]) {
		t.Fatal("stored SCRAM keys do not derive from the returned password")
	}
	if c.DBUser != "alice" || c.DBName != "dev" || !c.AutoCreate || strings.Join(c.DBGroups, ",") != "analysts,readers" ||
		c.PrincipalARN != "arn:aws:iam::"+account+":user/admin" {
		t.Fatalf("stored credential: %+v", c)
	}

	// Without AutoCreate: IAM: prefix, default 900 s.
	out, err = f.client("admin").GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
		ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("bob"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.DbUser) != "IAM:bob" {
		t.Fatalf("DbUser = %q", aws.ToString(out.DbUser))
	}
	if d := time.Until(aws.ToTime(out.Expiration)); d < 890*time.Second || d > 900*time.Second {
		t.Fatalf("default duration %v, want 900s", d)
	}
}

func TestExpirationWireFormat(t *testing.T) {
	f := newFixture(t)
	status, body := f.signedPost(t, "admin", "Action=GetClusterCredentials&Version=2012-12-01&ClusterIdentifier=dev-cluster&DbUser=alice", nil)
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	var r struct {
		Result struct {
			DbUser, DbPassword, Expiration string
		} `xml:"GetClusterCredentialsResult"`
		RequestID string `xml:"ResponseMetadata>RequestId"`
	}
	if err := xml.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", r.Result.Expiration); err != nil || len(r.Result.Expiration) != 24 {
		t.Fatalf("Expiration %q is not YYYY-MM-DDTHH:MM:SS.sssZ", r.Result.Expiration)
	}
	if r.RequestID == "" || r.Result.DbUser != "IAM:alice" {
		t.Fatalf("response: %s", body)
	}
}

func TestSDKDescribeClusters(t *testing.T) {
	f := newFixture(t)
	out, err := f.client("admin").DescribeClusters(context.Background(), &redshift.DescribeClustersInput{ClusterIdentifier: aws.String("dev-cluster")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Clusters) != 1 {
		t.Fatalf("clusters: %d", len(out.Clusters))
	}
	c := out.Clusters[0]
	if aws.ToString(c.ClusterIdentifier) != "dev-cluster" || aws.ToString(c.Endpoint.Address) != "127.0.0.1" ||
		aws.ToInt32(c.Endpoint.Port) != 5439 || aws.ToString(c.ClusterStatus) != "available" || aws.ToString(c.DBName) != "dev" {
		t.Fatalf("cluster: %+v endpoint %+v", c, c.Endpoint)
	}
	all, err := f.client("admin").DescribeClusters(context.Background(), &redshift.DescribeClustersInput{})
	if err != nil || len(all.Clusters) != 1 {
		t.Fatalf("all clusters: %v, %v", all, err)
	}
}

func TestSDKTypedErrors(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	_, err := f.client("admin").GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("nope"), DbUser: aws.String("alice")})
	var nf *types.ClusterNotFoundFault
	if !errors.As(err, &nf) {
		t.Fatalf("unknown cluster: %v, want ClusterNotFoundFault", err)
	}
	if !strings.Contains(nf.ErrorMessage(), "nope") {
		t.Fatalf("message %q does not name the cluster", nf.ErrorMessage())
	}
	_, err = f.client("admin").DescribeClusters(ctx, &redshift.DescribeClustersInput{ClusterIdentifier: aws.String("nope")})
	if !errors.As(err, &nf) {
		t.Fatalf("DescribeClusters unknown: %v", err)
	}

	_, err = f.client("admin").GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("select")})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "InvalidParameterValue" {
		t.Fatalf("reserved DbUser: %v, want InvalidParameterValue", err)
	}

	cases := []struct {
		user, dbUser, wantResource, wantSuffix string
		groups                                 []string
		autoCreate                             bool
	}{
		{"limited", "bob", "arn:aws:redshift:us-east-1:" + account + ":dbuser:dev-cluster/bob", "because no identity-based policy allows the redshift:GetClusterCredentials action", nil, false},
		{"limited", "alice", "arn:aws:redshift:us-east-1:" + account + ":dbgroup:dev-cluster/admins", "because no identity-based policy allows the redshift:JoinGroup action", []string{"admins"}, false},
		{"limited", "alice", "arn:aws:redshift:us-east-1:" + account + ":dbuser:dev-cluster/alice", "because no identity-based policy allows the redshift:CreateClusterUser action", nil, true},
		{"denied", "alice", "arn:aws:redshift:us-east-1:" + account + ":dbuser:dev-cluster/alice", "with an explicit deny in an identity-based policy", nil, false},
	}
	for _, c := range cases {
		_, err := f.client(c.user).GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
			ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String(c.dbUser), DbGroups: c.groups, AutoCreate: aws.Bool(c.autoCreate)})
		if !errors.As(err, &api) || api.ErrorCode() != "AccessDenied" {
			t.Fatalf("%s/%s: %v, want AccessDenied", c.user, c.dbUser, err)
		}
		want := "User: arn:aws:iam::" + account + ":user/" + c.user + " is not authorized to perform: "
		if !strings.HasPrefix(api.ErrorMessage(), want) || !strings.Contains(api.ErrorMessage(), "on resource: "+c.wantResource+" ") ||
			!strings.HasSuffix(api.ErrorMessage(), c.wantSuffix) {
			t.Fatalf("AccessDenied message %q", api.ErrorMessage())
		}
		var re interface{ HTTPStatusCode() int }
		if !errors.As(err, &re) || re.HTTPStatusCode() != 403 {
			t.Fatalf("AccessDenied status: %v", err)
		}
	}
	// limited may get exactly what its policy names.
	if _, err := f.client("limited").GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
		ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("alice"), DbName: aws.String("dev")}); err != nil {
		t.Fatalf("allowed call failed: %v", err)
	}
	_, err = f.client("limited").GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
		ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("alice"), DbName: aws.String("other")})
	if !errors.As(err, &api) || api.ErrorCode() != "AccessDenied" || !strings.Contains(api.ErrorMessage(), ":dbname:dev-cluster/other") {
		t.Fatalf("dbname not allowed: %v", err)
	}
}

// signedPost signs body as the SDK would (optionally altered by mutate
// after signing) and returns the status and body of the response.
func (f *fixture) signedPost(t *testing.T, user, body string, mutate func(*http.Request), opts ...func(*signOpts)) (int, []byte) {
	t.Helper()
	o := signOpts{creds: f.keys[user], at: time.Now(), service: "redshift"}
	for _, fn := range opts {
		fn(&o)
	}
	req, _ := http.NewRequest("POST", f.srv.URL+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), o.creds, req, hex.EncodeToString(sum[:]), o.service, "us-east-1", o.at); err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("x-amzn-RequestId") == "" {
		t.Errorf("response without x-amzn-RequestId")
	}
	return resp.StatusCode, b
}

type signOpts struct {
	creds   aws.Credentials
	at      time.Time
	service string
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Code      string `xml:"Error>Code"`
		RequestID string `xml:"RequestId"`
	}
	if err := xml.Unmarshal(body, &e); err != nil {
		t.Fatalf("not an error envelope: %s", body)
	}
	if e.RequestID == "" {
		t.Errorf("error envelope without RequestId: %s", body)
	}
	return e.Code
}

func TestSigV4(t *testing.T) {
	f := newFixture(t)
	const body = "Action=DescribeClusters&Version=2012-12-01"
	tests := []struct {
		name       string
		mutate     func(*http.Request)
		opt        func(*signOpts)
		wantStatus int
		wantCode   string
	}{
		{"accepted", nil, nil, 200, ""},
		{"altered body", func(r *http.Request) {
			b := "Action=DescribeClusters&Version=2012-12-02"
			r.Body = io.NopCloser(strings.NewReader(b))
			r.ContentLength = int64(len(b))
		}, nil, 403, "SignatureDoesNotMatch"},
		{"altered signed header", func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") }, nil, 403, "SignatureDoesNotMatch"},
		{"altered date header", func(r *http.Request) {
			r.Header.Set("X-Amz-Date", time.Now().Add(-time.Minute).UTC().Format("20060102T150405Z"))
		}, nil, 403, "SignatureDoesNotMatch"},
		{"wrong secret", nil, func(o *signOpts) { o.creds.SecretAccessKey = "wrong" + o.creds.SecretAccessKey[5:] }, 403, "SignatureDoesNotMatch"},
		{"unknown access key", nil, func(o *signOpts) { o.creds.AccessKeyID = "AKIAUNKNOWN000000000" }, 403, "InvalidClientTokenId"},
		{"stale X-Amz-Date", nil, func(o *signOpts) { o.at = time.Now().Add(-6 * time.Minute) }, 403, "SignatureDoesNotMatch"},
		{"future X-Amz-Date", nil, func(o *signOpts) { o.at = time.Now().Add(6 * time.Minute) }, 403, "SignatureDoesNotMatch"},
		{"no authorization", func(r *http.Request) { r.Header.Del("Authorization") }, nil, 403, "MissingAuthenticationToken"},
		{"truncated authorization", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Split(r.Header.Get("Authorization"), ", Signature=")[0])
		}, nil, 400, "IncompleteSignature"},
		{"unknown service", nil, func(o *signOpts) { o.service = "s3" }, 400, "InvalidAction"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []func(*signOpts)
			if tt.opt != nil {
				opts = append(opts, tt.opt)
			}
			status, b := f.signedPost(t, "admin", body, tt.mutate, opts...)
			if status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", status, tt.wantStatus, b)
			}
			if tt.wantCode != "" {
				if got := errorCode(t, b); got != tt.wantCode {
					t.Fatalf("code %s, want %s", got, tt.wantCode)
				}
			}
		})
	}
}
