package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	rss "github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/jackc/pgx/v5"
)

// poll calls cond until it holds or d passes: no sleeps standing in for
// synchronisation.
func poll(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// `shiftkey credentials revoke --terminate`, run as its own command beside
// a running dev (one process on SQLite): the revoked credential is refused
// within a second, its open session ends, and another login's credential
// and session are untouched.
func TestCredentialsRevokeTerminate(t *testing.T) {
	ctx := context.Background()
	victim, bystander := fresh("revokee"), fresh("bystander")
	cv := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String(victim), AutoCreate: aws.Bool(true)})
	cb := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String(bystander), AutoCreate: aws.Bool(true)})
	open := mustConnect(t, dev, cv, DevDatabase)
	other := mustConnect(t, dev, cb, DevDatabase)

	var out bytes.Buffer
	if err := run(ctx, []string{"credentials", "list", "--data-dir", dev.DataDir, "--login", cv.user}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), cv.user) || strings.Contains(out.String(), cb.user) || strings.Contains(out.String(), cv.password) {
		t.Fatalf("list --login %s:\n%s", cv.user, out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"credentials", "revoke", "--data-dir", dev.DataDir, "--cluster", DevCluster, "--login", cv.user, "--terminate"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "1 credentials revoked") {
		t.Fatalf("revoke said:\n%s", out.String())
	}
	took := poll(t, time.Second, "the revoked credential is refused", func() bool {
		c, err := connect(dev, cv, DevDatabase)
		if err == nil {
			c.Close(ctx)
		}
		return sqlState(err) == "28P01"
	})
	t.Logf("revoked credential refused after %v", took)
	poll(t, time.Second, "the revoked credential's open session ended", func() bool {
		_, err := open.Exec(ctx, "SELECT 1")
		return err != nil
	})
	// Its audit record says why it ended (it said "closed" before).
	poll(t, 5*time.Second, "the session's audit record says credential_revoked", func() bool {
		b, _ := os.ReadFile(dev.AuditFile)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, `"endReason":"credential_revoked"`) && strings.Contains(line, `"dbUser":"`+victim+`"`) {
				return true
			}
		}
		return false
	})
	// The revocation is audited, by whom and what went, and the gateway's
	// records name the process that wrote them.
	var revocation, login, end map[string]any
	b, _ := os.ReadFile(dev.AuditFile)
	for _, line := range strings.Split(string(b), "\n") {
		var r map[string]any
		if json.Unmarshal([]byte(line), &r) != nil {
			continue
		}
		params, _ := r["requestParameters"].(map[string]any)
		switch {
		case r["eventName"] == "RevokeCredentials" && params["loginName"] == cv.user:
			revocation = r
		case r["eventName"] == "GatewayLogin" && params["loginName"] == cv.user:
			login = r
		case r["eventName"] == "GatewaySessionEnd" && params["loginName"] == cv.user:
			end = r
		}
	}
	if revocation == nil || login == nil || end == nil {
		t.Fatalf("audit log lacks the revocation (%v), the login (%v) or the session end (%v)", revocation != nil, login != nil, end != nil)
	}
	resp, _ := revocation["responseElements"].(map[string]any)
	revoked, _ := resp["revoked"].([]any)
	if who, _ := revocation["userIdentity"].(map[string]any); who["type"] != "Operator" || who["userName"] == "" || len(revoked) != 1 ||
		revoked[0].(map[string]any)["loginName"] != cv.user || revocation["requestParameters"].(map[string]any)["terminate"] != true {
		t.Fatalf("revocation record %v", revocation)
	}
	// In dev's region, as the login's and the issuing call's records are.
	if revocation["awsRegion"] != "us-east-1" || login["awsRegion"] != "us-east-1" {
		t.Errorf("awsRegion of the revocation %v, of the login %v: want us-east-1", revocation["awsRegion"], login["awsRegion"])
	}
	// The refused logins with the revoked password are audited as such,
	// with the credential and its principal (they were "no_credential"
	// and anonymous before).
	revokedID := revoked[0].(map[string]any)["credentialId"]
	// The gateway reports a refused login after answering the client, so
	// the record may follow the 28P01 the poll above saw: wait for it. It
	// is looked for by its credential (dev's audit log is shared with the
	// other tests, which refuse revoked logins of their own).
	var refused map[string]any
	poll(t, 5*time.Second, "a GatewayLogin refused as revoked in the audit log naming the revoked credential", func() bool {
		b, _ := os.ReadFile(dev.AuditFile)
		for _, line := range strings.Split(string(b), "\n") {
			var r map[string]any
			if json.Unmarshal([]byte(line), &r) == nil && r["eventName"] == "GatewayLogin" && r["errorCode"] == "revoked" {
				if re, _ := r["responseElements"].(map[string]any); re["credentialId"] == revokedID {
					refused = r
				}
			}
		}
		return refused != nil
	})
	if refused["userIdentity"].(map[string]any)["arn"] != revoked[0].(map[string]any)["principal"] {
		t.Fatalf("the refused login's record %v does not name the revoked credential %v and its principal", refused, revokedID)
	}
	replica := func(r map[string]any) any { return r["additionalEventData"].(map[string]any)["replica"] }
	if s, _ := replica(login).(string); !strings.Contains(s, "/") || replica(end) != s {
		t.Fatalf("login names replica %v, its session end %v: want one host/pid/id for both", replica(login), replica(end))
	}
	if currentUser(t, other) != bystander {
		t.Fatal("the bystander's session changed")
	}
	if c, err := connect(dev, cb, DevDatabase); err != nil {
		t.Fatalf("the bystander's credential was revoked too: %v", err)
	} else {
		c.Close(ctx)
	}
	// A list that matches nothing says so (an operator's review: it printed
	// nothing at all).
	out.Reset()
	if err := run(ctx, []string{"credentials", "list", "--data-dir", dev.DataDir, "--login", cv.user}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "no live credentials match\n" {
		t.Fatalf("list of a revoked login's credentials said %q", out.String())
	}
	// Revoking everything is refused.
	if err := run(ctx, []string{"credentials", "revoke", "--data-dir", dev.DataDir}, &out, &out); err == nil || !strings.Contains(err.Error(), "name the credentials") {
		t.Fatalf("revoke without a filter: %v", err)
	}
	var _ *pgx.Conn = open
}

// Found in a review: revoking what a leaked access key obtained went by
// principal ARN (--all-for-principal), and two callers that assume one
// role under one session name share its ARN: revoking one's leak revoked
// the other's credentials too. `revoke --access-key` revokes exactly what
// was issued to calls signed with the key and with the sessions it
// started: here a user's leaked key (directly and through an AssumeRole
// session), not the same user's other key, and not the admin's session of
// the same role under the same name.
func TestCredentialsRevokeAccessKey(t *testing.T) {
	ctx := context.Background()
	user, role := fresh("leaky"), fresh("Shared")
	admin := iam.New(iam.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: provider(devCreds()), Retryer: aws.NopRetryer{}})
	if _, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(user)}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(user), PolicyName: aws.String("p"), PolicyDocument: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["redshift:GetClusterCredentials","redshift:CreateClusterUser","redshift-serverless:GetCredentials","sts:AssumeRole"],"Resource":"*"}]}`)}); err != nil {
		t.Fatal(err)
	}
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::000000000000:user/admin","arn:aws:iam::000000000000:user/` + user + `"]},"Action":"sts:AssumeRole"}]}`
	if _, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(role), AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String("withiam"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:GetClusterCredentialsWithIAM","Resource":"*"}]}`)}); err != nil {
		t.Fatal(err)
	}
	newKey := func() aws.Credentials {
		k, err := admin.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(user)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.Credentials{AccessKeyID: aws.ToString(k.AccessKey.AccessKeyId), SecretAccessKey: aws.ToString(k.AccessKey.SecretAccessKey)}
	}
	leaked, other := newKey(), newKey()
	rs := func(c aws.Credentials) *redshift.Client {
		return redshift.New(redshift.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: provider(c), Retryer: aws.NopRetryer{}})
	}
	direct := func(c aws.Credentials, dbUser string) cred {
		out, err := rs(c).GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String(DevCluster),
			DbUser: aws.String(dbUser), AutoCreate: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		return cred{aws.ToString(out.DbUser), aws.ToString(out.DbPassword)}
	}
	// Both callers' sessions are assumed-role/<role>/shared.
	viaSession := func(c aws.Credentials) (cred, string) {
		ar, err := sts.New(sts.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: provider(c), Retryer: aws.NopRetryer{}}).
			AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::000000000000:role/" + role), RoleSessionName: aws.String("shared")})
		if err != nil {
			t.Fatal(err)
		}
		sess := aws.Credentials{AccessKeyID: aws.ToString(ar.Credentials.AccessKeyId), SecretAccessKey: aws.ToString(ar.Credentials.SecretAccessKey),
			SessionToken: aws.ToString(ar.Credentials.SessionToken)}
		out, err := rs(sess).GetClusterCredentialsWithIAM(ctx, &redshift.GetClusterCredentialsWithIAMInput{ClusterIdentifier: aws.String(DevCluster)})
		if err != nil {
			t.Fatal(err)
		}
		return cred{aws.ToString(out.DbUser), aws.ToString(out.DbPassword)}, sess.AccessKeyID
	}
	leakedDirect, otherDirect := direct(leaked, fresh("leakone")), direct(other, fresh("leaktwo"))
	leakedViaRole, sessionKey := viaSession(leaked)
	adminViaRole, _ := viaSession(devCreds())
	// And a Serverless credential, on the workgroup's own gateway.
	wgClient := rss.New(rss.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: provider(leaked), Retryer: aws.NopRetryer{}})
	wg, err := serverlessClient().GetWorkgroup(ctx, &rss.GetWorkgroupInput{WorkgroupName: aws.String(DevWorkgroup)})
	if err != nil {
		t.Fatal(err)
	}
	wgDev := &Dev{}
	wgDev.Gateway.Address, wgDev.Gateway.Port = aws.ToString(wg.Workgroup.Endpoint.Address), int(aws.ToInt32(wg.Workgroup.Endpoint.Port))
	sl, err := wgClient.GetCredentials(ctx, &rss.GetCredentialsInput{WorkgroupName: aws.String(DevWorkgroup), DbName: aws.String("dev")})
	if err != nil {
		t.Fatal(err)
	}
	leakedServerless := cred{aws.ToString(sl.DbUser), aws.ToString(sl.DbPassword)}

	var out bytes.Buffer
	if err := run(ctx, []string{"credentials", "list", "--data-dir", dev.DataDir, "--access-key", leaked.AccessKeyID}, &out, &out); err != nil {
		t.Fatal(err)
	}
	listed := out.String()
	// Three credentials under their header, then the one session a revoke
	// would end under its own.
	if !strings.Contains(listed, "ACCESS KEY") || strings.Count(listed, "\n") != 7 || !strings.Contains(listed, leakedDirect.user) || !strings.Contains(listed, leakedServerless.user) ||
		!strings.Contains(listed, leakedViaRole.user) || !strings.Contains(listed, sessionKey) || strings.Contains(listed, otherDirect.user) ||
		!strings.Contains(listed, "1 live sessions started with "+leaked.AccessKeyID) {
		t.Fatalf("list --access-key %s: want the header, its direct credential and its session's (by %s), not the other key's, and its session:\n%s", leaked.AccessKeyID, sessionKey, listed)
	}
	out.Reset()
	if err := run(ctx, []string{"credentials", "revoke", "--data-dir", dev.DataDir, "--access-key", leaked.AccessKeyID}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "3 credentials revoked") {
		t.Fatalf("revoke --access-key said:\n%s", out.String())
	}
	for _, r := range []struct {
		d *Dev
		c cred
	}{{dev, leakedDirect}, {dev, leakedViaRole}, {wgDev, leakedServerless}} {
		c := r.c
		poll(t, time.Second, c.user+"'s revoked credential is refused", func() bool {
			conn, err := connect(r.d, c, DevDatabase)
			if err == nil {
				conn.Close(ctx)
			}
			return sqlState(err) == "28P01"
		})
	}
	// The same user's other key, and the admin's session with the same
	// ARN (and login name), still log in.
	for _, c := range []cred{otherDirect, adminViaRole} {
		conn, err := connect(dev, c, DevDatabase)
		if err != nil {
			t.Fatalf("%s's credential, not issued through %s, was revoked: %v", c.user, leaked.AccessKeyID, err)
		}
		conn.Close(ctx)
	}
	// The audit record names the selection.
	poll(t, 5*time.Second, "a RevokeCredentials record naming the access key", func() bool {
		b, _ := os.ReadFile(dev.AuditFile)
		for _, line := range strings.Split(string(b), "\n") {
			var r map[string]any
			if json.Unmarshal([]byte(line), &r) == nil && r["eventName"] == "RevokeCredentials" {
				if p, _ := r["requestParameters"].(map[string]any); p["accessKeyId"] == leaked.AccessKeyID {
					return true
				}
			}
		}
		return false
	})
}

// Found in a review: `credentials revoke --id NOPE` (or a misspelled
// --login or --principal) printed "0 credentials revoked" and exited 0,
// and an operator closing a leak believed it closed. It exits 1 and says
// so on stderr; a list that matches nothing still exits 0.
func TestCredentialsRevokeNothingMatchedFails(t *testing.T) {
	for _, tc := range []struct {
		args, stderr string
		code         int
	}{
		{"credentials revoke --data-dir " + dev.DataDir + " --id NOPE", "never issued a credential with id NOPE", 1},
		{"credentials revoke --data-dir " + dev.DataDir + " --login IAM:nosuchlogin", "no credential matches login IAM:nosuchlogin", 1},
		{"credentials revoke --data-dir " + dev.DataDir + " --principal arn:aws:iam::000000000000:user/nosuch", "nothing revoked", 1},
		{"credentials list --data-dir " + dev.DataDir + " --login IAM:nosuchlogin", "", 0},
		// Without a filter the refusal names every kind of filter, as
		// operations.md lists them (a workgroup and an access key too).
		{"credentials revoke --data-dir " + dev.DataDir, "a cluster or workgroup, login name, principal, credential id or access key", 1},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), mainChildEnv+"="+tc.args)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || !strings.Contains(stderr.String(), tc.stderr) || (tc.code != 0 && stdout.Len() != 0) {
			t.Errorf("shiftkey %s: exit %d, stderr %q, stdout %q; want exit %d, stderr saying %q", tc.args, code, stderr.String(), stdout.String(), tc.code, tc.stderr)
		}
	}
}

// The exit status of revoke (1 when nothing matched) is in its help.
func TestCredentialsHelpSaysExitStatus(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"credentials", "revoke", "--help"}, &out, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("revoke --help: %v", err)
	}
	if !strings.Contains(out.String(), "Exit status") || !strings.Contains(out.String(), "nothing matched") || !strings.Contains(out.String(), "-access-key") {
		t.Fatalf("revoke --help lacks the exit status or --access-key:\n%s", out.String())
	}
}
