package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	rss "github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey/audit"
)

// incident is what TestLeakedKeyIncidentAudit's attacker did.
type incident struct {
	key, sessionKey    string
	secrets            []string
	direct, viaSession cred
	serverless         cred
	wgDev              *Dev
	role, roleARN      string
	group              string
	// attacker is the local address of the attacker's logins, another
	// at each run (-count), since the audit log is dev's, kept between runs.
	attacker string
}

// incidentRuns counts playLeakedKeyIncident's runs in this process.
var incidentRuns atomic.Int32

// connectFrom logs in to d's gateway from the local address from.
func connectFrom(d *Dev, c cred, db, from string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig("sslmode=disable connect_timeout=10")
	if err != nil {
		return nil, err
	}
	cfg.Host, cfg.Port, cfg.Database, cfg.User, cfg.Password = d.Gateway.Address, uint16(d.Gateway.Port), db, c.user, c.password
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	cfg.DialFunc = dialer.DialContext
	return pgx.ConnectConfig(context.Background(), cfg)
}

// playLeakedKeyIncident: an IAM user's key leaks; the attacker gets a
// cluster credential with a DbGroup directly, assumes a role and gets a
// cluster and a Serverless credential with the session, logs in with the
// first two and runs a query, and fails logins with wrong passwords from
// another address; the operator deactivates the key and revokes what it
// obtained.
func playLeakedKeyIncident(t *testing.T) incident {
	t.Helper()
	ctx := context.Background()
	user, role, group := fresh("victim"), fresh("Pivot"), fresh("loot")
	adminExec(t, dev, "CREATE ROLE "+group+" NOLOGIN")
	admin := iam.New(iam.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: provider(devCreds()), Retryer: aws.NopRetryer{}})
	if _, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(user)}); err != nil {
		t.Fatal(err)
	}
	pol := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["redshift:GetClusterCredentials","redshift:CreateClusterUser","redshift:JoinGroup","redshift-serverless:GetCredentials","sts:AssumeRole"],"Resource":"*"}]}`
	if _, err := admin.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(user), PolicyName: aws.String("p"), PolicyDocument: aws.String(pol)}); err != nil {
		t.Fatal(err)
	}
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/` + user + `"},"Action":"sts:AssumeRole"}]}`
	if _, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(role), AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String("p"), PolicyDocument: aws.String(pol)}); err != nil {
		t.Fatal(err)
	}
	k, err := admin.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(user)})
	if err != nil {
		t.Fatal(err)
	}
	leaked := aws.Credentials{AccessKeyID: aws.ToString(k.AccessKey.AccessKeyId), SecretAccessKey: aws.ToString(k.AccessKey.SecretAccessKey)}
	in := incident{key: leaked.AccessKeyID, secrets: []string{leaked.SecretAccessKey}, role: role, roleARN: "arn:aws:iam::000000000000:role/" + role, group: group,
		attacker: fmt.Sprintf("127.0.0.%d", 1+incidentRuns.Add(1))}
	rs := func(c aws.Credentials) *redshift.Client {
		return redshift.New(redshift.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: provider(c), Retryer: aws.NopRetryer{}})
	}
	issue := func(c aws.Credentials, dbUser string) cred {
		out, err := rs(c).GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String(DevCluster),
			DbUser: aws.String(dbUser), AutoCreate: aws.Bool(true), DbGroups: []string{group}, DurationSeconds: aws.Int32(1800)})
		if err != nil {
			t.Fatal(err)
		}
		in.secrets = append(in.secrets, aws.ToString(out.DbPassword))
		return cred{aws.ToString(out.DbUser), aws.ToString(out.DbPassword)}
	}
	// (a) directly.
	in.direct = issue(leaked, fresh("exfil"))
	// (b) through a session.
	ar, err := sts.New(sts.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: provider(leaked), Retryer: aws.NopRetryer{}}).
		AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(in.roleARN), RoleSessionName: aws.String("pivot")})
	if err != nil {
		t.Fatal(err)
	}
	sess := aws.Credentials{AccessKeyID: aws.ToString(ar.Credentials.AccessKeyId), SecretAccessKey: aws.ToString(ar.Credentials.SecretAccessKey),
		SessionToken: aws.ToString(ar.Credentials.SessionToken)}
	in.sessionKey = sess.AccessKeyID
	in.secrets = append(in.secrets, sess.SecretAccessKey, sess.SessionToken)
	in.viaSession = issue(sess, fresh("pivoted"))
	wg, err := serverlessClient().GetWorkgroup(ctx, &rss.GetWorkgroupInput{WorkgroupName: aws.String(DevWorkgroup)})
	if err != nil {
		t.Fatal(err)
	}
	in.wgDev = &Dev{}
	in.wgDev.Gateway.Address, in.wgDev.Gateway.Port = aws.ToString(wg.Workgroup.Endpoint.Address), int(aws.ToInt32(wg.Workgroup.Endpoint.Port))
	sl, err := rss.New(rss.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: provider(sess), Retryer: aws.NopRetryer{}}).
		GetCredentials(ctx, &rss.GetCredentialsInput{WorkgroupName: aws.String(DevWorkgroup), DbName: aws.String("dev")})
	if err != nil {
		t.Fatal(err)
	}
	in.serverless = cred{aws.ToString(sl.DbUser), aws.ToString(sl.DbPassword)}
	in.secrets = append(in.secrets, in.serverless.password)
	// (c) logins, each runs a query.
	for _, c := range []cred{in.direct, in.viaSession} {
		conn, err := connectFrom(dev, c, DevDatabase, "127.0.0.1")
		if err != nil {
			t.Fatalf("login as %s: %v", c.user, err)
		}
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM generate_series(1, 1000)").Scan(&n); err != nil || n != 1000 {
			t.Fatalf("query: %d %v", n, err)
		}
		conn.Close(ctx)
	}
	conn, err := connectFrom(in.wgDev, in.serverless, "dev", "127.0.0.1")
	if err != nil {
		t.Fatalf("serverless login: %v", err)
	}
	conn.Close(ctx)
	// (d) wrong passwords from another address.
	for i, pw := range []string{"guess-one-wrong-password", "guess-two-wrong-password"} {
		c := cred{in.direct.user, pw}
		if i == 1 {
			c.user = in.viaSession.user
		}
		if _, err := connectFrom(dev, c, DevDatabase, in.attacker); sqlState(err) != "28P01" {
			t.Fatalf("wrong password from %s: %v", in.attacker, err)
		}
		in.secrets = append(in.secrets, pw)
	}
	// The operator: deactivate, then revoke.
	if _, err := admin.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(leaked.AccessKeyID), Status: iamtypes.StatusTypeInactive}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"credentials", "revoke", "--data-dir", dev.DataDir, "--access-key", leaked.AccessKeyID}, &out, &out); err != nil {
		t.Fatal(err, out.String())
	}
	return in
}

// tailRecords runs `shiftkey audit tail` with args on dev's audit log.
func tailRecords(t *testing.T, args ...string) []audit.Record {
	t.Helper()
	var out, errOut strings.Builder
	if err := run(context.Background(), append([]string{"audit", "tail", "--file", dev.AuditFile}, args...), &out, &errOut); err != nil {
		t.Fatal(err, errOut.String())
	}
	return parseRecords(t, out.String())
}

// Found playing the incident: `audit tail --access-key` of a leaked key
// left out everything its AssumeRole session did (the session's
// GetClusterCredentials and Serverless GetCredentials, their logins and
// group grants) and the key's deactivation, and nothing selected the
// failed logins from the attacker's other address. The incident is
// answered from the audit log alone: what the key and its session
// obtained (scope, DbUser, DbGroups, expiry), which logged in from where
// as whom with which groups, for how long and how many bytes, the failed
// logins, and what the revocation covered; no secret is in it.
func TestLeakedKeyIncidentAudit(t *testing.T) {
	ctx := context.Background()
	in := playLeakedKeyIncident(t)
	// After the revocation the attacker tries again: a new call with the
	// deactivated key, a login with a revoked credential.
	_, err := redshift.New(redshift.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Retryer: aws.NopRetryer{},
		Credentials: provider(aws.Credentials{AccessKeyID: in.key, SecretAccessKey: in.secrets[0]})}).
		GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String(DevCluster), DbUser: aws.String("again")})
	if apiCode(err) == "" {
		t.Fatalf("a call with the deactivated key: %v", err)
	}
	poll(t, 5*time.Second, "the revoked credential refused", func() bool {
		conn, err := connectFrom(dev, in.direct, DevDatabase, in.attacker)
		if err == nil {
			conn.Close(ctx)
		}
		return sqlState(err) == "28P01"
	})

	var recs []audit.Record
	// count counts the records of recs, but the gateway's from in.attacker:
	// the revocation reaches dev's gateway within a second, and the
	// attacker's logins in that second may still get in (checked below).
	count := func(name, code string) int {
		n := 0
		for _, r := range recs {
			if r.EventName == name && r.ErrorCode == code && (r.EventSource != audit.SourceGateway || r.SourceIPAddress != in.attacker || code == "revoked") {
				n++
			}
		}
		return n
	}
	// Every record the key led to, once each: the session ends and group
	// revokes are written once the gateway sees the client go.
	want := map[[2]string]int{
		{"CreateAccessKey", ""}: 1, {"GetClusterCredentials", ""}: 2, {"AssumeRole", ""}: 1, {"GetCredentials", ""}: 1,
		{audit.EventGrantGroup, ""}: 2, {audit.EventLogin, ""}: 3, {audit.EventSessionEnd, ""}: 3, {audit.EventRevokeGroup, ""}: 2,
		{"UpdateAccessKey", ""}: 1, {"RevokeCredentials", ""}: 1, {audit.EventLogin, "revoked"}: 1,
	}
	missing := func() []string {
		var m []string
		for k, n := range want {
			if got := count(k[0], k[1]); got != n {
				m = append(m, fmt.Sprintf("%v: %d, want %d", k, got, n))
			}
		}
		return m
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		recs = tailRecords(t, "--access-key", in.key)
		if m := missing(); len(m) == 0 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("audit tail --access-key %s: %v", in.key, m)
		}
	}
	var refused, late int
	for _, r := range recs {
		if r.EventName == "GetClusterCredentials" && r.ErrorCode != "" {
			refused++
		}
		if r.SourceIPAddress == in.attacker && r.ErrorCode == "" {
			late++ // a login let in before the revocation reached the gateway, its grant, end and revoke
			if r.ResponseElements["dbUser"] != nil && r.ResponseElements["dbUser"] != strings.TrimPrefix(in.direct.user, "IAMA:") {
				t.Errorf("a late login of another credential: %+v", r)
			}
		}
	}
	if len(recs) != 19+late || refused != 1 || late%4 != 0 {
		t.Errorf("audit tail --access-key %s: %d records (%d refused calls, %d late), want 19 (1) and the late ones in fours:\n%+v", in.key, len(recs), refused, late, recs)
	}

	// Issued: by whom, for what, until when; the session's AssumeRole
	// names the key it was called with and the session key it issued.
	issued := map[string]audit.Record{}
	var assume audit.Record
	for _, r := range recs {
		if r.EventName == "AssumeRole" {
			assume = r
		}
		if id, _ := r.ResponseElements["credentialId"].(string); id != "" && r.EventType == "AwsApiCall" {
			issued[id] = r
		}
	}
	creds, _ := assume.ResponseElements["credentials"].(map[string]any)
	if assume.UserIdentity.AccessKeyID != in.key || creds["accessKeyId"] != in.sessionKey || creds["expiration"] == nil || len(creds) != 2 {
		t.Errorf("AssumeRole record: identity %+v, credentials %v; want the source key %s, the session key %s and its expiration only", assume.UserIdentity, creds, in.key, in.sessionKey)
	}
	if len(issued) != 3 {
		t.Fatalf("issuing records: %v", issued)
	}
	for id, r := range issued {
		wantKey := in.sessionKey
		if r.ResponseElements["dbUser"] == in.direct.user {
			wantKey = in.key
		}
		if r.UserIdentity.AccessKeyID != wantKey || r.ResponseElements["expiration"] == nil || r.ResponseElements["dbUser"] == nil {
			t.Errorf("issuing record of %s: key %s (want %s), response %v", id, r.UserIdentity.AccessKeyID, wantKey, r.ResponseElements)
		}
		if r.EventName == "GetClusterCredentials" && fmt.Sprint(r.RequestParameters["dbGroups"]) != "["+in.group+"]" {
			t.Errorf("issuing record of %s: parameters %v, want dbGroups [%s]", id, r.RequestParameters, in.group)
		}
	}
	// Logged in: each login names a credential an issuing record names,
	// and its session end the duration and bytes.
	for _, r := range recs {
		switch r.EventName {
		case audit.EventLogin, audit.EventSessionEnd, audit.EventGrantGroup, audit.EventRevokeGroup:
			id, _ := r.ResponseElements["credentialId"].(string)
			if id == "" {
				id, _ = r.AdditionalEventData["credentialId"].(string)
			}
			is, ok := issued[id]
			if !ok {
				t.Errorf("%s record names credential %q, which no issuing record in the output names", r.EventName, id)
			}
			// And the key that got it (a login refused as revoked is
			// checked against the revocation, which does not keep it).
			key, _ := r.ResponseElements["accessKeyId"].(string)
			if r.EventName == audit.EventGrantGroup || r.EventName == audit.EventRevokeGroup {
				key, _ = r.AdditionalEventData["accessKeyId"].(string)
			}
			if r.ErrorCode != "revoked" && key != is.UserIdentity.AccessKeyID {
				t.Errorf("%s record of credential %s names key %q, its issuing call was signed with %s", r.EventName, id, key, is.UserIdentity.AccessKeyID)
			}
		}
		if r.EventName == audit.EventLogin && r.ErrorCode == "" && (r.SourceIPAddress != "127.0.0.1" && r.SourceIPAddress != in.attacker || r.RequestParameters["database"] == nil || r.ResponseElements["dbUser"] == nil) {
			t.Errorf("login record: %s %v %v", r.SourceIPAddress, r.RequestParameters, r.ResponseElements)
		}
		if r.EventName == audit.EventSessionEnd {
			d := r.AdditionalEventData
			if d["durationSeconds"] == nil || d["bytesIn"] == nil || d["bytesOut"] == nil || d["sessionStart"] == nil {
				t.Errorf("session end record: %v", d)
			}
		}
		if r.EventName == audit.EventLogin && r.ErrorCode == "revoked" && r.SourceIPAddress != in.attacker {
			t.Errorf("revoked login from %s, want %s", r.SourceIPAddress, in.attacker)
		}
	}
	// The revocation covers the three credentials, with their expirations
	// as issued.
	for _, r := range recs {
		if r.EventName != "RevokeCredentials" {
			continue
		}
		list, _ := r.ResponseElements["revoked"].([]any)
		if len(list) != 3 {
			t.Errorf("revocation covers %d credentials, want 3: %v", len(list), r.ResponseElements)
		}
		for _, x := range list {
			c, _ := x.(map[string]any)
			is, ok := issued[fmt.Sprint(c["credentialId"])]
			if !ok {
				t.Errorf("revoked credential %v was not issued through the key", c)
				continue
			}
			exp, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(c["expiration"]))
			var issuedExp time.Time
			switch e := is.ResponseElements["expiration"].(type) {
			case string:
				issuedExp, _ = time.Parse(time.RFC3339Nano, e)
			case float64:
				issuedExp = time.UnixMilli(int64(e*1000 + 0.5))
			}
			if !exp.Equal(issuedExp) {
				t.Errorf("revoked credential %v expires %v, its issuing record says %v", c["credentialId"], exp, issuedExp)
			}
		}
	}
	// Times: UTC, RFC 3339.
	for _, r := range recs {
		if at, err := time.Parse(time.RFC3339, r.EventTime); err != nil || !strings.HasSuffix(r.EventTime, "Z") || at.IsZero() {
			t.Errorf("eventTime %q of %s", r.EventTime, r.EventName)
		}
	}

	// The failed logins from the other address, and nothing else from it.
	from := tailRecords(t, "--source-ip", in.attacker)
	if len(from) != 3+late {
		t.Fatalf("audit tail --source-ip %s: %d records, want the 2 wrong passwords, %d of late logins and the revoked login: %+v", in.attacker, len(from), late, from)
	}
	for i, r := range from {
		wantCode := ""
		switch i {
		case 0, 1:
			wantCode = "wrong_password"
		case len(from) - 1:
			wantCode = "revoked"
		}
		if r.EventSource != audit.SourceGateway || r.EventType != "AwsServiceEvent" || r.ErrorCode != wantCode || (wantCode != "" && (r.EventName != audit.EventLogin || r.RequestParameters["loginName"] == nil)) {
			t.Errorf("--source-ip record %d: %s %s %v", i, r.EventName, r.ErrorCode, r.RequestParameters)
		}
	}
	// The session key alone: the AssumeRole that started it, its two
	// credentials' records and the revocation; not the key's direct
	// credential.
	recs = tailRecords(t, "--access-key", in.sessionKey)
	for k, n := range map[[2]string]int{{"AssumeRole", ""}: 1, {"GetClusterCredentials", ""}: 1, {"GetCredentials", ""}: 1, {audit.EventGrantGroup, ""}: 1,
		{audit.EventLogin, ""}: 2, {audit.EventSessionEnd, ""}: 2, {audit.EventRevokeGroup, ""}: 1, {"RevokeCredentials", ""}: 1} {
		if count(k[0], k[1]) != n {
			t.Errorf("audit tail --access-key %s: %d %v records, want %d", in.sessionKey, count(k[0], k[1]), k, n)
		}
	}
	if len(recs) != 10 {
		t.Errorf("audit tail --access-key %s: %d records, want 10: %+v", in.sessionKey, len(recs), recs)
	}

	b, err := os.ReadFile(dev.AuditFile)
	if err != nil {
		t.Fatal(err)
	}
	// Every record, read as jq reads it, has CloudTrail's fields: the
	// account that received it (dev's) also on those with no caller's
	// account (a wrong password, the operator's revocation).
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var r map[string]any
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatalf("%.200s: %v", l, err)
		}
		_, ro := r["readOnly"].(bool)
		if r["recipientAccountId"] != "000000000000" || r["eventCategory"] != "Management" || r["managementEvent"] != true ||
			!ro && r["eventName"] != audit.UnknownOperation || r["eventType"] != "AwsApiCall" && r["eventType"] != "AwsServiceEvent" {
			t.Errorf("record without CloudTrail's fields: %.600s", l)
		}
	}
	for _, s := range in.secrets {
		if strings.Contains(string(b), s) {
			t.Errorf("the audit log holds a secret (%.6s…)", s)
		}
	}
}

// Found in the incident review: the runbook's other way to deactivate a
// leaked key, `status: Inactive` in the config's iam: and SIGHUP, left no
// audit record (only a log line), so the audit log could not say when a
// key declared in the config stopped working, nor when it was created.
// What applying the config's identities changed (at start, and at each
// reload) is an operator record; `audit tail --access-key` keeps those
// naming the key.
func TestDeclaredKeyChangesAreAudited(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	yaml := opsYAML(dir, "audit: {file: "+path+"}")
	s := startServe(t, yaml, opsEnv)
	if _, err := opsClient(s, opsEnv["OPS_SECRET"]).GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("opsc"),
		DbUser: aws.String(fresh("declared")), AutoCreate: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "serve.yaml")
	inactive := strings.Replace(yaml, `secret: "${OPS_SECRET}"}`, `secret: "${OPS_SECRET}", status: Inactive}`, 1)
	if inactive == yaml {
		t.Fatal("opsYAML changed: no key to deactivate")
	}
	if err := os.WriteFile(cfgPath, []byte(inactive), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range opsEnv {
		t.Setenv(k, v)
	}
	if err := s.Reload(ctx, cfgPath); err != nil {
		t.Fatal(err)
	}
	recs := make([]audit.Record, 0)
	var out, errOut strings.Builder
	if err := run(ctx, []string{"audit", "tail", "--access-key", opsEnv["OPS_KEY_ID"], "--file", path}, &out, &errOut); err != nil {
		t.Fatal(err, errOut.String())
	}
	var changes []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var r audit.Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		recs = append(recs, r)
		if r.EventName != "ApplyDeclaredIdentities" {
			continue
		}
		if r.EventSource != audit.SourceOperator || r.EventType != "AwsServiceEvent" || r.UserIdentity.Type != "Operator" {
			t.Errorf("identities record: %s", l)
		}
		list, _ := r.ResponseElements["changes"].([]any)
		for _, x := range list {
			c, _ := x.(map[string]any)
			if c["accessKeyId"] == opsEnv["OPS_KEY_ID"] {
				changes = append(changes, fmt.Sprintf("%s %v %v %v", r.RequestParameters["trigger"], c["change"], c["userName"], c["status"]))
			}
		}
	}
	if want := "[start key created ops Active reload key deactivated ops <nil>]"; fmt.Sprint(changes) != want {
		t.Fatalf("audit tail --access-key: the key's changes %v, want %s:\n%s", changes, want, out.String())
	}
	if len(recs) != 3 || recs[1].EventName != "GetClusterCredentials" {
		t.Errorf("audit tail --access-key: %d records, want the key's creation, its call and its deactivation:\n%s", len(recs), out.String())
	}
	if strings.Contains(out.String(), opsEnv["OPS_SECRET"]) {
		t.Error("the record holds the key's secret")
	}
}
