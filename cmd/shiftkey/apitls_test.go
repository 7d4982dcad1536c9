package main

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/config"
)

// devHTTPSURL is dev's API over TLS: the same port as the plain URL.
func devHTTPSURL(t *testing.T) string {
	t.Helper()
	if u := "https://" + strings.TrimPrefix(dev.APIURL, "http://"); u != dev.APIHTTPSURL {
		t.Fatalf("dev's HTTPS URL %q is not on the plain URL's port (%s)", dev.APIHTTPSURL, u)
	}
	return dev.APIHTTPSURL
}

// httpsClient trusts dev's CA only.
func httpsClient(t *testing.T) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: caPool(t)}}}
}

// Finding 6 (issue 12): the API spoke only plain HTTP, so DbPassword,
// SecretAccessKey and SessionToken crossed the network in cleartext. dev's
// API port answers HTTPS with a certificate from the dev CA.
func TestFinding6DevAPIAnswersHTTPS(t *testing.T) {
	resp, err := httpsClient(t).Get(devHTTPSURL(t) + "/healthz")
	if err != nil {
		t.Fatalf("HTTPS to dev's API port: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "ok\n" || resp.TLS == nil {
		t.Fatalf("HTTPS /healthz: %d %q tls=%v", resp.StatusCode, body, resp.TLS != nil)
	}
	rs := redshift.New(redshift.Options{Region: DevRegion, BaseEndpoint: aws.String(devHTTPSURL(t)), Credentials: provider(devCreds()),
		HTTPClient: httpsClient(t), Retryer: aws.NopRetryer{}})
	out, err := rs.GetClusterCredentials(context.Background(), &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String(DevCluster),
		DbUser: aws.String("tls_sdk"), AutoCreate: aws.Bool(true)})
	if err != nil {
		t.Fatalf("GetClusterCredentials over HTTPS: %v", err)
	}
	// The password works: HTTPS issues the same credentials as HTTP.
	conn := mustConnect(t, dev, cred{aws.ToString(out.DbUser), aws.ToString(out.DbPassword)}, "dev")
	if u := currentUser(t, conn); u != "tls_sdk" {
		t.Fatalf("current_user %q", u)
	}
	// Plain HTTP stays on the same port for old clients.
	resp2, err := http.Get(dev.APIURL + "/healthz")
	if err != nil {
		t.Fatalf("plain HTTP next to HTTPS: %v", err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != 200 || resp2.TLS != nil {
		t.Fatalf("plain HTTP /healthz: %d", resp2.StatusCode)
	}
}

// aws:SecureTransport is false over plain HTTP and true over HTTPS: a
// policy that denies credentials without TLS refuses the first and allows
// the second, end to end through the SDK.
func TestSecureTransportCondition(t *testing.T) {
	ctx := context.Background()
	name := fresh("tlsonly")
	u := &shiftkey.Entity{Kind: shiftkey.KindUser, Name: name, ID: shiftkey.NewID("AIDA"), Path: "/", ARN: "arn:aws:iam::" + shiftkey.DefaultAccountID + ":user/" + name, CreatedAt: time.Now()}
	k := &shiftkey.AccessKey{ID: shiftkey.NewID("AKIA"), Secret: shiftkey.NewSecretKey(), UserName: name, Status: "Active", CreatedAt: time.Now()}
	policy := `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"redshift:GetClusterCredentials","Resource":"*"},
		{"Sid":"TLSOnly","Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`
	if err := dev.Store.CreateEntity(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := dev.Store.CreateAccessKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := dev.Store.PutInlinePolicy(ctx, shiftkey.KindUser, name, shiftkey.PolicyDocument{Name: "tls-only", Document: policy}); err != nil {
		t.Fatal(err)
	}
	creds := provider(aws.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret})
	in := func() *redshift.GetClusterCredentialsInput {
		return &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String(DevCluster), DbUser: aws.String("nobody_yet")}
	}
	plain := redshift.New(redshift.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: creds, Retryer: aws.NopRetryer{}})
	if _, err := plain.GetClusterCredentials(ctx, in()); !strings.Contains(errString(err), "AccessDenied") {
		t.Fatalf("over plain HTTP (aws:SecureTransport false): %v, want AccessDenied", err)
	}
	secure := redshift.New(redshift.Options{Region: DevRegion, BaseEndpoint: aws.String(devHTTPSURL(t)), Credentials: creds,
		HTTPClient: httpsClient(t), Retryer: aws.NopRetryer{}})
	if _, err := secure.GetClusterCredentials(ctx, in()); err != nil {
		t.Fatalf("over HTTPS (aws:SecureTransport true): %v", err)
	}
}

// readDevEnv parses dev.env's export lines.
func readDevEnv(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(dev.EnvPath())
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok {
			env[k] = strings.Trim(v, "'")
		}
	}
	return env
}

// The real AWS CLI over HTTPS with dev.env as it is: AWS_ENDPOINT_URL is
// https:// and AWS_CA_BUNDLE makes the dev CA trusted. Without the bundle
// the CLI refuses the certificate.
func TestAWSCLIOverHTTPS(t *testing.T) {
	awsCLI, err := exec.LookPath("aws")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the AWS CLI is not installed")
		}
		t.Skip("the AWS CLI is not installed")
	}
	devEnv := readDevEnv(t)
	if !strings.HasPrefix(devEnv["AWS_ENDPOINT_URL"], "https://") || devEnv["AWS_CA_BUNDLE"] != dev.CAPath {
		t.Fatalf("dev.env: AWS_ENDPOINT_URL=%q AWS_CA_BUNDLE=%q", devEnv["AWS_ENDPOINT_URL"], devEnv["AWS_CA_BUNDLE"])
	}
	// The CLI sees dev.env and nothing of this machine's AWS or CA settings.
	var base []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "AWS_") && k != "REQUESTS_CA_BUNDLE" && k != "SSL_CERT_FILE" && k != "CURL_CA_BUNDLE" {
			base = append(base, kv)
		}
	}
	base = append(base, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_MAX_ATTEMPTS=1", "AWS_RETRY_MODE=standard")
	run := func(withCA bool) (string, error) {
		env := append([]string(nil), base...)
		for k, v := range devEnv {
			if k != "AWS_CA_BUNDLE" || withCA {
				env = append(env, k+"="+v)
			}
		}
		// --endpoint-url: CLIs before v1.29 / v2.13 ignore AWS_ENDPOINT_URL.
		cmd := exec.Command(awsCLI, "--endpoint-url", devEnv["AWS_ENDPOINT_URL"], "redshift", "get-cluster-credentials",
			"--cluster-identifier", DevCluster, "--db-user", "cli_https", "--db-name", DevDatabase, "--auto-create",
			"--query", "[DbUser,DbPassword]", "--output", "text")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(true)
	if err != nil {
		t.Fatalf("aws over HTTPS with AWS_CA_BUNDLE: %v\n%s", err, out)
	}
	user, password, ok := strings.Cut(strings.TrimSpace(out), "\t")
	if !ok || user != "IAMA:cli_https" {
		t.Fatalf("aws printed %q", out)
	}
	conn := mustConnect(t, dev, cred{user, password}, "dev")
	if u := currentUser(t, conn); u != "cli_https" {
		t.Fatalf("current_user %q", u)
	}
	out, err = run(false)
	if err == nil || !strings.Contains(strings.ToLower(out), "certificate verify failed") {
		t.Fatalf("aws over HTTPS without AWS_CA_BUNDLE: %v\n%s\nwant a certificate verification failure", err, out)
	}
}

// startAPIServe runs serve with api.tls (require as given), one cluster on
// dev's PostgreSQL and a user ci whose policy denies everything without TLS.
func startAPIServe(t *testing.T, require bool, extraAPI string) (*Serve, aws.CredentialsProviderFunc) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := writeServerCert(t, dir)
	yaml := `
store: {sqlite: ` + filepath.Join(dir, "serve.db") + `}
api:
  listen: "127.0.0.1:0"
  tls: {cert_file: ` + certFile + `, key_file: ` + keyFile + `, require: ` + strconv.FormatBool(require) + `}
` + extraAPI + `
` + declaredClusterYAML("secure", `"redshift:GetClusterCredentials","redshift:CreateClusterUser"`,
		`{"Sid":"TLSOnly","Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}`)
	env := map[string]string{"TEST_KEY_ID": "AKIACONFIGKEY0000003", "TEST_SECRET": "config-secret-0123456789"}
	s := startServe(t, yaml, env)
	return s, provider(aws.Credentials{AccessKeyID: env["TEST_KEY_ID"], SecretAccessKey: env["TEST_SECRET"]})
}

func getSecure(ctx context.Context, url string, hc *http.Client, creds aws.CredentialsProviderFunc) (*redshift.GetClusterCredentialsOutput, error) {
	o := redshift.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: creds, Retryer: aws.NopRetryer{}}
	if hc != nil {
		o.HTTPClient = hc
	}
	return redshift.New(o).GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("secure"),
		DbUser: aws.String("tls_user"), AutoCreate: aws.Bool(true)})
}

// serve with api.tls: aws-sdk-go-v2 gets credentials over HTTPS (and they
// log in); plain HTTP still answers on the same port, where
// aws:SecureTransport is false and the TLS-only policy refuses the call.
func TestServeAPITLS(t *testing.T) {
	ctx := context.Background()
	s, creds := startAPIServe(t, false, "")
	if !strings.HasPrefix(s.APIHTTPSURL, "https://127.0.0.1:") || s.APIURL != "http://"+strings.TrimPrefix(s.APIHTTPSURL, "https://") {
		t.Fatalf("URLs %q %q", s.APIHTTPSURL, s.APIURL)
	}
	out, err := getSecure(ctx, s.APIHTTPSURL, httpsClient(t), creds)
	if err != nil {
		t.Fatalf("SDK over HTTPS: %v", err)
	}
	c, err := s.Store.Cluster(ctx, "secure")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, "host="+c.Endpoint.Address+" port="+itoa(c.Endpoint.Port)+" dbname=dev sslmode=disable user="+
		aws.ToString(out.DbUser)+" password="+aws.ToString(out.DbPassword))
	if err != nil {
		t.Fatalf("credential issued over HTTPS: %v", err)
	}
	conn.Close(ctx)
	if _, err := getSecure(ctx, s.APIURL, nil, creds); !strings.Contains(errString(err), "AccessDenied") {
		t.Fatalf("SDK over plain HTTP with a TLS-only policy: %v, want AccessDenied", err)
	}
	// An HTTPS client that does not trust the certificate is refused by its own TLS.
	if _, err := getSecure(ctx, s.APIHTTPSURL, nil, creds); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("SDK over HTTPS without the CA: %v, want a certificate error", err)
	}
}

// api.tls.require: the port speaks TLS only. A plain-HTTP request gets
// net/http's 400 "Client sent an HTTP request to an HTTPS server" and the
// connection is closed; HTTPS works.
func TestServeAPIRequireTLS(t *testing.T) {
	ctx := context.Background()
	s, creds := startAPIServe(t, true, "")
	if s.APIURL != "" || !strings.HasPrefix(s.APIHTTPSURL, "https://") {
		t.Fatalf("URLs: plain %q, HTTPS %q", s.APIURL, s.APIHTTPSURL)
	}
	plainURL := "http://" + strings.TrimPrefix(s.APIHTTPSURL, "https://")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(plainURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "HTTP request to an HTTPS server") {
		t.Fatalf("plain HTTP with require: %d %q, want 400", resp.StatusCode, body)
	}
	if _, err := getSecure(ctx, plainURL, nil, creds); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("SDK over plain HTTP with require: %v, want refused with 400", err)
	}
	if _, err := getSecure(ctx, s.APIHTTPSURL, httpsClient(t), creds); err != nil {
		t.Fatalf("SDK over HTTPS with require: %v", err)
	}
}

// A certificate that cannot be read fails serve's start, naming the field.
func TestServeMissingCertificateNamesField(t *testing.T) {
	cfg, err := config.Parse(strings.NewReader("store: {sqlite: "+filepath.Join(t.TempDir(), "x.db")+"}\napi: {listen: \"127.0.0.1:0\", tls: {cert_file: /x.crt, key_file: /x.key}}"),
		func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	// A certificate that cannot be read fails the start, naming the field.
	s := &Serve{Config: cfg, Logger: dev.Logger}
	defer s.Close()
	if err := s.Start(context.Background()); err == nil || !strings.HasPrefix(err.Error(), "api.tls.cert_file: open /x.crt") {
		t.Fatalf("start with a missing certificate: %v", err)
	}
}
