package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
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
