package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/smithy-go"
	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/shiftkey/shiftkey/audit"
	"github.com/shiftkey/shiftkey/internal/pgtest"
)

// opsYAML is a serve config with one cluster, "opsc", on dev's PostgreSQL,
// the admin listener on a free port and extra at the top level; user ops
// may get credentials and join the group ops_reader, nothing else.
func opsYAML(dir, extra string) string {
	return `
store: {sqlite: ` + filepath.Join(dir, "serve.db") + `}
api: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0"}
` + extra + `
clusters:
  - identifier: opsc
    database: dev
    gateway: {listen: "127.0.0.1:0"}
    backend: {host: ` + dev.PG.SocketDir() + `, port: ` + itoa(dev.PG.Port()) + `, admin_user: ` + dev.PG.Superuser() + `}
iam:
  users:
    - name: ops
      access_keys: [{id: "${OPS_KEY_ID}", secret: "${OPS_SECRET}"}]
      policies:
        creds: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["redshift:GetClusterCredentials","redshift:CreateClusterUser"],"Resource":"*"},{"Effect":"Allow","Action":"redshift:JoinGroup","Resource":"arn:aws:redshift:*:*:dbgroup:opsc/ops_reader"}]}'
`
}

var opsEnv = map[string]string{"OPS_KEY_ID": "AKIAOPSKEY0000000017", "OPS_SECRET": "ops-secret-key-0123456789abcdef"}

// opsScenario is what the scripted scenario did, for the checks.
type opsScenario struct {
	dbUser   string   // as requested
	login    string   // the DbUser issued (IAMA:dbUser)
	password string   // the DbPassword issued
	secrets  []string // every secret the scenario saw
	wrongKey string   // the access key id of the badly signed call
}

func opsClient(s *Serve, secret string) *redshift.Client {
	return redshift.New(redshift.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.APIURL), Retryer: aws.NopRetryer{},
		Credentials: provider(aws.Credentials{AccessKeyID: opsEnv["OPS_KEY_ID"], SecretAccessKey: secret})})
}

// gatewayConn logs in to cluster opsc of s.
func gatewayConn(ctx context.Context, s *Serve, user, password string) (*pgx.Conn, error) {
	c, err := s.Store.Cluster(ctx, "opsc")
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d dbname=dev sslmode=disable connect_timeout=10", c.Endpoint.Address, c.Endpoint.Port))
	if err != nil {
		return nil, err
	}
	cfg.User, cfg.Password = user, password
	return pgx.ConnectConfig(ctx, cfg)
}

// runOpsScenario: one credential issued (with the group ops_reader), one
// refused by policy (group ops_writer), one call signed with a wrong
// secret; a login with the credential that runs a query and ends, and a
// login with a wrong password.
func runOpsScenario(t *testing.T, s *Serve) opsScenario {
	t.Helper()
	ctx := context.Background()
	adminExec(t, dev, `DO $$ BEGIN CREATE ROLE ops_reader NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`)
	rs := opsClient(s, opsEnv["OPS_SECRET"])
	sc := opsScenario{dbUser: fresh("opsuser"), secrets: []string{opsEnv["OPS_SECRET"]}}
	out, err := rs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("opsc"),
		DbUser: aws.String(sc.dbUser), DbName: aws.String("dev"), AutoCreate: aws.Bool(true), DbGroups: []string{"ops_reader"}})
	if err != nil {
		t.Fatal(err)
	}
	sc.password, sc.login = aws.ToString(out.DbPassword), aws.ToString(out.DbUser)
	sc.secrets = append(sc.secrets, sc.password)
	_, err = rs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("opsc"),
		DbUser: aws.String(sc.dbUser), DbGroups: []string{"ops_writer"}})
	if apiCode(err) != "AccessDenied" {
		t.Fatalf("join ops_writer: got %v, want AccessDenied", err)
	}
	_, err = opsClient(s, "not-the-secret-at-all-0123").GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("opsc"), DbUser: aws.String(sc.dbUser)})
	if apiCode(err) != "SignatureDoesNotMatch" {
		t.Fatalf("wrong secret: got %v, want SignatureDoesNotMatch", err)
	}
	sc.secrets = append(sc.secrets, "not-the-secret-at-all-0123")

	conn, err := gatewayConn(ctx, s, aws.ToString(out.DbUser), sc.password)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM generate_series(1, 100)").Scan(&n); err != nil || n != 100 {
		t.Fatalf("query: %d, %v", n, err)
	}
	conn.Close(ctx)
	if _, err := gatewayConn(ctx, s, aws.ToString(out.DbUser), "wrong-password-for-this-login"); sqlState(err) != "28P01" {
		t.Fatalf("wrong password: got %v, want 28P01", err)
	}
	sc.secrets = append(sc.secrets, "wrong-password-for-this-login")
	return sc
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// scrape fetches and parses /metrics.
func scrape(t *testing.T, adminURL string) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	resp, err := http.Get(adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams, string(body)
}

// sample is the value of the series of family name whose labels include
// want: a counter's or gauge's value, a histogram's count; -1 when absent.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// The metrics after a scripted scenario count what it did, parsed with the
// Prometheus text parser; no label holds a secret.
func TestMetricsAfterScenario(t *testing.T) {
	s := startServe(t, opsYAML(t.TempDir(), ""), opsEnv)
	sc := runOpsScenario(t, s)
	var fams map[string]*dto.MetricFamily
	var text string
	// The session's end is reported once the gateway sees the client go,
	// and its group revoked after. The revoke is counted as it is reported,
	// and the held gauge drops just after (pgbackend releaseLocked): a
	// scrape between the two sees both, so the wait covers the gauge too.
	// A refused login is counted after the client got its 28P01 (pgwire
	// session.run reports it once authenticate returned): the wait covers
	// the wrong password's count and duration (observed just after) too.
	waitUntil(t, 10*time.Second, "session end, revoke and refused login counted", func() bool {
		fams, _ := scrape(t, s.AdminURL)
		return sample(fams, "shiftkey_gateway_logins_total", map[string]string{"scope": "opsc", "outcome": "wrong_password"}) == 1 &&
			sample(fams, "shiftkey_gateway_login_duration_seconds", map[string]string{"scope": "opsc"}) == 2 &&
			sample(fams, "shiftkey_gateway_sessions_ended_total", map[string]string{"scope": "opsc", "reason": "closed"}) == 1 &&
			sample(fams, "shiftkey_session_grant_changes_total", map[string]string{"scope": "opsc", "change": "revoked"}) == 1 &&
			sample(fams, "shiftkey_session_grants_held", map[string]string{"scope": "opsc"}) == 0
	})
	// A scrape gathers the families concurrently: the one that saw these
	// may have read others (the bytes, the sessions active) just before
	// the session's end changed them. One begun after it sees them all.
	fams, text = scrape(t, s.AdminURL)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"shiftkey_api_requests_total", map[string]string{"service": "redshift", "operation": "GetClusterCredentials", "code": "ok"}, 1},
		{"shiftkey_api_requests_total", map[string]string{"service": "redshift", "operation": "GetClusterCredentials", "code": "AccessDenied"}, 1},
		{"shiftkey_api_requests_total", map[string]string{"service": "redshift", "operation": "GetClusterCredentials", "code": "SignatureDoesNotMatch"}, 1},
		{"shiftkey_api_request_duration_seconds", map[string]string{"service": "redshift", "operation": "GetClusterCredentials"}, 3},
		{"shiftkey_credentials_issued_total", map[string]string{"operation": "GetClusterCredentials"}, 1},
		{"shiftkey_authorization_denials_total", map[string]string{"operation": "GetClusterCredentials"}, 1},
		{"shiftkey_gateway_logins_total", map[string]string{"scope": "opsc", "outcome": "ok"}, 1},
		{"shiftkey_gateway_logins_total", map[string]string{"scope": "opsc", "outcome": "wrong_password"}, 1},
		{"shiftkey_gateway_login_duration_seconds", map[string]string{"scope": "opsc"}, 2},
		{"shiftkey_gateway_sessions_total", map[string]string{"scope": "opsc"}, 1},
		{"shiftkey_gateway_sessions_active", map[string]string{"scope": "opsc"}, 0},
		{"shiftkey_backend_pool_misses_total", map[string]string{"scope": "opsc"}, 1},
		{"shiftkey_session_grant_changes_total", map[string]string{"scope": "opsc", "change": "granted"}, 1},
		{"shiftkey_session_grant_changes_total", map[string]string{"scope": "opsc", "change": "revoked"}, 1},
		{"shiftkey_session_grants_held", map[string]string{"scope": "opsc"}, 0},
		{"shiftkey_backend_pool_idle", map[string]string{"scope": "opsc"}, 0},
		// The scenario's one session is plaintext on both sides: the loops carry it.
		{"shiftkey_relay_sessions_total", nil, 1},
		{"shiftkey_relay_tls_sessions_total", map[string]string{"side": "client"}, 0},
		{"shiftkey_relay_tls_sessions_total", map[string]string{"side": "backend"}, 0},
		{"shiftkey_relay_sessions_active", nil, 0},
		{"shiftkey_store_operation_duration_seconds", map[string]string{"operation": "CreateCredential"}, 1},
		// Two logins, and the successful one's check that its credential
		// is still live once proved.
		{"shiftkey_store_operation_duration_seconds", map[string]string{"operation": "LiveCredentials"}, 3},
	} {
		if got := sample(fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, dir := range []string{"client_to_backend", "backend_to_client"} {
		if got := sample(fams, "shiftkey_gateway_relayed_bytes_total", map[string]string{"scope": "opsc", "direction": dir}); got <= 0 {
			t.Errorf("relayed bytes %s = %v, want > 0", dir, got)
		}
	}
	checkNoSecret(t, "/metrics", text, sc)
}

// checkNoSecret fails when text holds any secret of the scenario, or the
// backend role's name or the access key id (which no label may be).
func checkNoSecret(t *testing.T, where, text string, sc opsScenario) {
	t.Helper()
	for _, s := range sc.secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s holds a secret (%.6s…)", where, s)
		}
	}
}

func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// /healthz answers while the process runs; /readyz fails, naming it, when
// a cluster's backend is down.
func TestHealthAndReadiness(t *testing.T) {
	pg := pgtest.Start(t)
	dir := t.TempDir()
	s := startServe(t, opsYAML(dir, `
workgroups:
  - name: downwg
    namespace: downns
    database: postgres
    gateway: {listen: "127.0.0.1:0"}
    backend: {host: `+pg.SocketDir()+`, port: `+itoa(pg.Port())+`, admin_user: `+pg.Superuser()+`}
`), opsEnv)
	if code, body := getStatus(t, s.AdminURL+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthz: %d %q", code, body)
	}
	if code, body := getStatus(t, s.AdminURL+"/readyz"); code != 200 {
		t.Fatalf("readyz with every backend up: %d %q", code, body)
	}
	if err := pg.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	code, body := getStatus(t, s.AdminURL+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "backend workgroup/") || strings.Contains(body, "backend opsc") {
		t.Fatalf("readyz with workgroup downwg's backend down: %d %q, want 503 naming downwg only", code, body)
	}
	// The API's balancer leaves the backends out (an operator's review: one
	// database down took every replica's API out of rotation).
	if code, body := getStatus(t, s.AdminURL+"/readyz?exclude=backend"); code != 200 {
		t.Fatalf("readyz?exclude=backend with a backend down: %d %q", code, body)
	}
	if code, _ := getStatus(t, s.AdminURL+"/healthz"); code != 200 {
		t.Fatalf("healthz with a backend down: %d", code)
	}
}

// auditRecords reads the audit log at path.
func auditRecords(t *testing.T, path string) ([]audit.Record, string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A read can catch a record half copied into the file: only lines
	// that end in a newline are whole.
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		b = nil
	}
	return parseRecords(t, string(b)), string(b)
}

// parseRecords decodes audit lines, one record per line (the file, or
// what audit tail printed).
func parseRecords(t *testing.T, text string) []audit.Record {
	t.Helper()
	var out []audit.Record
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		if line == "" {
			continue
		}
		var r audit.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// The audit log of the scripted scenario, event by event: the API calls
// (issued, denied, badly signed), the grant, the login, the session's end,
// the revoke and the refused login; no secret anywhere; audit tail
// --principal keeps the principal's records only.
func TestAuditLogAfterScenario(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	s := startServe(t, opsYAML(dir, "audit: {file: "+path+"}"), opsEnv)
	sc := runOpsScenario(t, s)
	var recs []audit.Record
	var text string
	waitUntil(t, 10*time.Second, "9 audit records", func() bool {
		recs, text = auditRecords(t, path)
		return len(recs) >= 9
	})
	if len(recs) != 9 {
		t.Fatalf("%d audit records, want 9:\n%s", len(recs), text)
	}
	// First, what applying the config's identities at start changed.
	if r := recs[0]; r.EventName != audit.EventApplyIdentities || r.RequestParameters["trigger"] != "start" || r.ResponseElements["count"] != float64(3) {
		t.Errorf("record 0: %+v, want the identities applied at start (user, key, inline policy)", r)
	}
	recs = recs[1:]
	userARN := "arn:aws:iam::000000000000:user/ops"
	type want struct{ source, name, code, arn string }
	key := func(r audit.Record) want {
		return want{r.EventSource, r.EventName, r.ErrorCode, r.UserIdentity.ARN}
	}
	// The API calls, the grant and the login come in this order; the
	// session's end, its revoke and the refused login race each other
	// (the end is reported once the gateway sees the client go).
	ordered := []want{
		{"redshift.amazonaws.com", "GetClusterCredentials", "", userARN},
		{"redshift.amazonaws.com", "GetClusterCredentials", "AccessDenied", userARN},
		{"redshift.amazonaws.com", "GetClusterCredentials", "SignatureDoesNotMatch", ""},
		{audit.SourceGateway, audit.EventGrantGroup, "", userARN},
		{audit.SourceGateway, audit.EventLogin, "", userARN},
	}
	for i, w := range ordered {
		if got := key(recs[i]); got != w {
			t.Errorf("record %d: %+v, want %+v", i, got, w)
		}
	}
	rest := map[want]int{}
	for _, r := range recs[len(ordered):] {
		rest[key(r)]++
	}
	for _, w := range []want{
		{audit.SourceGateway, audit.EventSessionEnd, "", userARN},
		{audit.SourceGateway, audit.EventRevokeGroup, "", userARN},
		{audit.SourceGateway, audit.EventLogin, "wrong_password", ""},
	} {
		if rest[w] != 1 {
			t.Errorf("records after the login: %v, want one %+v", rest, w)
		}
	}
	// Fields.
	issue, denied, badSig, grant, login := recs[0], recs[1], recs[2], recs[3], recs[4]
	if issue.UserIdentity.Type != "IAMUser" || issue.UserIdentity.AccessKeyID != opsEnv["OPS_KEY_ID"] || issue.UserIdentity.AccountID != "000000000000" ||
		issue.RequestID == "" || issue.EventID == "" || issue.SourceIPAddress != "127.0.0.1" || issue.UserAgent == "" || issue.AWSRegion != "us-east-1" {
		t.Errorf("issue record identity and origin: %+v", issue)
	}
	if issue.RequestParameters["dbUser"] != sc.dbUser || issue.RequestParameters["clusterIdentifier"] != "opsc" || issue.ResponseElements["dbUser"] != sc.login {
		t.Errorf("issue record parameters %v, response %v", issue.RequestParameters, issue.ResponseElements)
	}
	if denied.ErrorMessage == "" || denied.ResponseElements != nil {
		t.Errorf("denied record: %+v", denied)
	}
	if badSig.UserIdentity.Type != "Unknown" || badSig.UserIdentity.AccessKeyID != opsEnv["OPS_KEY_ID"] {
		t.Errorf("badly signed record identity: %+v", badSig.UserIdentity)
	}
	if grant.RequestParameters["group"] != "ops_reader" || grant.RequestParameters["dbUser"] != sc.dbUser || grant.RequestParameters["scope"] != "opsc" {
		t.Errorf("grant record: %v", grant.RequestParameters)
	}
	credID, _ := login.ResponseElements["credentialId"].(string)
	if credID == "" || login.ResponseElements["dbUser"] != sc.dbUser || fmt.Sprint(login.ResponseElements["dbGroups"]) != "[ops_reader]" ||
		login.RequestParameters["database"] != "dev" || login.RequestParameters["loginName"] != sc.login {
		t.Errorf("login record: parameters %v, response %v", login.RequestParameters, login.ResponseElements)
	}
	if issue.ResponseElements["credentialId"] != credID {
		t.Errorf("issue record names credential %v, the login %s: an incident responder cannot tie them", issue.ResponseElements["credentialId"], credID)
	}
	for _, r := range recs[len(ordered):] {
		if r.EventName != audit.EventSessionEnd {
			continue
		}
		d := r.AdditionalEventData
		if r.ResponseElements["credentialId"] != credID || d["endReason"] != "closed" || d["bytesIn"].(float64) <= 0 || d["bytesOut"].(float64) <= 0 || d["durationSeconds"].(float64) <= 0 {
			t.Errorf("session end record: %v %v", r.ResponseElements, d)
		}
	}
	checkNoSecret(t, "the audit log", text, sc)
	_, metricsText := scrape(t, s.AdminURL)
	checkNoSecret(t, "/metrics", metricsText, sc)

	var out, errOut strings.Builder
	if err := run(context.Background(), []string{"audit", "tail", "--principal", userARN, "--file", path}, &out, &errOut); err != nil {
		t.Fatal(err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 7 {
		t.Fatalf("audit tail --principal %s: %d lines, want 7 (the user's creation, issue, denial, grant, login, session end, revoke):\n%s", userARN, len(lines), out.String())
	}
	for _, l := range lines[1:] {
		if !strings.Contains(l, `"arn":"`+userARN+`"`) {
			t.Errorf("audit tail line of another principal: %s", l)
		}
	}
	// A leaked key, followed: its calls (also the badly signed one), and
	// the login, session end and group changes of the credential it got.
	// One credential: its issue, login, session end and group changes.
	for _, c := range []struct {
		flag, value string
		want        []string
	}{
		{"--access-key", opsEnv["OPS_KEY_ID"], []string{audit.EventApplyIdentities, "GetClusterCredentials", "GetClusterCredentials", "GetClusterCredentials", audit.EventGrantGroup, audit.EventLogin}},
		{"--credential", credID, []string{"GetClusterCredentials", audit.EventGrantGroup, audit.EventLogin}},
	} {
		out.Reset()
		if err := run(context.Background(), []string{"audit", "tail", c.flag, c.value, "--file", path}, &out, &errOut); err != nil {
			t.Fatal(err, errOut.String())
		}
		var names []string
		ends := 0
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var r audit.Record
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("audit tail %s: %q: %v", c.flag, l, err)
			}
			if r.EventName == audit.EventSessionEnd || r.EventName == audit.EventRevokeGroup {
				ends++ // these race each other (above)
				continue
			}
			names = append(names, r.EventName)
		}
		if fmt.Sprint(names) != fmt.Sprint(c.want) || ends != 2 {
			t.Errorf("audit tail %s: %v and %d session end and revoke records, want %v and 2:\n%s", c.flag, names, ends, c.want, out.String())
		}
	}
}

// dev has serve's operator view: /metrics parses and counts dev's calls,
// /readyz is 200 with every backend up, the audit log in the data dir
// records an issued credential, and dev.env and the welcome text say where
// both are.
func TestDevOperatorView(t *testing.T) {
	if dev.AdminURL == "" || dev.Audit == nil {
		t.Fatalf("dev started without its admin listener (%q) or audit log", dev.AdminURL)
	}
	user := fresh("opsdev")
	getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String(user), AutoCreate: aws.Bool(true)})
	fams, text := scrape(t, dev.AdminURL)
	if n := sample(fams, "shiftkey_api_requests_total", map[string]string{"operation": "GetClusterCredentials", "code": "ok"}); n < 1 {
		t.Errorf("GetClusterCredentials OK count %v, want >= 1:\n%s", n, text)
	}
	if code, body := getStatus(t, dev.AdminURL+"/readyz"); code != 200 {
		t.Errorf("dev /readyz: %d %q", code, body)
	}
	path := filepath.Join(dev.DataDir, "audit.log")
	waitUntil(t, 10*time.Second, "an audit record of the issue", func() bool {
		recs, _ := auditRecords(t, path)
		for _, r := range recs {
			if r.EventName == "GetClusterCredentials" && r.RequestParameters["dbUser"] == user && r.ErrorCode == "" {
				return true
			}
		}
		return false
	})
	env, err := os.ReadFile(dev.EnvPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"export SHIFTKEY_ADMIN_URL=" + dev.AdminURL + "\n", "export SHIFTKEY_AUDIT_FILE=" + path + "\n"} {
		if !strings.Contains(string(env), want) {
			t.Errorf("dev.env lacks %q:\n%s", want, env)
		}
	}
	var welcome strings.Builder
	stdout := dev.Stdout
	dev.Stdout = &welcome
	dev.PrintWelcome()
	dev.Stdout = stdout
	if !strings.Contains(welcome.String(), dev.AdminURL+"/metrics") || !strings.Contains(welcome.String(), path) {
		t.Errorf("welcome text names neither the admin listener nor the audit log:\n%s", welcome.String())
	}
}

// Found in an operator's review: with the audit log's disk full, serve went
// on issuing credentials with one log line and /readyz at 200, every record
// lost unseen. /readyz now fails while the last audit write failed, and
// shiftkey_audit_records_lost_total counts what was lost (/dev/full stands
// in for the full disk).
func TestAuditWriteFailureIsNotReady(t *testing.T) {
	ctx := context.Background()
	// A first start applies the declared identities (and records that),
	// so that the second, on the full disk, starts without a record.
	dir := t.TempDir()
	if err := startServe(t, opsYAML(dir, "audit: {file: "+filepath.Join(dir, "audit.log")+"}"), opsEnv).Close(); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, opsYAML(dir, "audit: {file: /dev/full}"), opsEnv)
	if code, body := getStatus(t, s.AdminURL+"/readyz"); code != 200 {
		t.Fatalf("readyz before any record: %d %q", code, body)
	}
	api := strings.TrimPrefix(s.APIURL, "http://")
	if _, err := rsClient(api, opsEnv["OPS_KEY_ID"], opsEnv["OPS_SECRET"]).GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
		ClusterIdentifier: aws.String("opsc"), DbUser: aws.String(fresh("fulldisk")), AutoCreate: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	code, body := getStatus(t, s.AdminURL+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "audit") {
		t.Fatalf("readyz while audit records are lost: %d %q, want 503 naming the audit log", code, body)
	}
	fams, _ := scrape(t, s.AdminURL)
	if lost := sample(fams, "shiftkey_audit_records_lost_total", nil); lost < 1 {
		t.Fatalf("shiftkey_audit_records_lost_total = %v after a lost record", lost)
	}
}

// Found in an operator's review: serve refused to start while one declared
// cluster's database was down, so no replica could be restarted or added
// until it answered. It now starts; /readyz names the backend, and the
// API's check (?exclude=backend) is ready.
func TestServeStartsWithABackendDown(t *testing.T) {
	s := startServe(t, opsYAML(t.TempDir(), `
workgroups:
  - name: downatstart
    namespace: downatstartns
    database: postgres
    gateway: {listen: "127.0.0.1:0"}
    backend: {host: 127.0.0.1, port: 1, admin_user: nobody}
`), opsEnv)
	code, body := getStatus(t, s.AdminURL+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "backend workgroup/") {
		t.Fatalf("readyz with a backend down since the start: %d %q, want 503 naming it", code, body)
	}
	if code, body := getStatus(t, s.AdminURL+"/readyz?exclude=backend"); code != 200 {
		t.Fatalf("readyz?exclude=backend: %d %q", code, body)
	}
}
