package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Issue 17 item 4: records shaped like CloudTrail's. The API's record of
// an assumed-role caller names the role behind the session
// (userIdentity.sessionContext: sessionIssuer, attributes); the gateway's
// records of the login, grant, revoke and session end of the credential
// that session got named only the session's ARN, so a query on
// sessionContext.sessionIssuer.arn (or principalId) found the issue and
// none of what the credential did. The gateway's records now carry the
// API record's userIdentity (less the access key, which signed the issue,
// not the login: it is responseElements.accessKeyId), and name the role
// as it was at the issue after it is deleted and created again, also on
// a login refused because the credential was revoked.
func TestAuditGatewayRecordsOfARoleSessionCarryItsSessionContext(t *testing.T) {
	ctx := context.Background()
	role, group, dbUser := fresh("Auditee"), fresh("sessctxgroup"), fresh("sessctx")
	adminExec(t, dev, "CREATE ROLE "+group+" NOLOGIN")
	admin := iam.New(iam.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: provider(devCreds()), Retryer: aws.NopRetryer{}})
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/admin"},"Action":"sts:AssumeRole"}]}`
	pol := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["redshift:GetClusterCredentials","redshift:CreateClusterUser","redshift:JoinGroup"],"Resource":"*"}]}`
	createRole := func(path string) string {
		out, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(role), Path: aws.String(path), AssumeRolePolicyDocument: aws.String(trust)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := admin.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String("p"), PolicyDocument: aws.String(pol)}); err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Role.RoleId)
	}
	roleID := createRole("/team/")
	before, err := os.ReadFile(dev.AuditFile)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Truncate(time.Second) // creationDate is to the second
	ar, err := sts.New(sts.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: provider(devCreds()), Retryer: aws.NopRetryer{}}).
		AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::000000000000:role/team/" + role), RoleSessionName: aws.String("audited")})
	if err != nil {
		t.Fatal(err)
	}
	sess := aws.Credentials{AccessKeyID: aws.ToString(ar.Credentials.AccessKeyId), SecretAccessKey: aws.ToString(ar.Credentials.SecretAccessKey),
		SessionToken: aws.ToString(ar.Credentials.SessionToken)}
	out, err := redshift.New(redshift.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: provider(sess), Retryer: aws.NopRetryer{}}).
		GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String(DevCluster), DbUser: aws.String(dbUser),
			AutoCreate: aws.Bool(true), DbGroups: []string{group}})
	if err != nil {
		t.Fatal(err)
	}
	c := cred{aws.ToString(out.DbUser), aws.ToString(out.DbPassword)}
	conn := mustConnect(t, dev, c, DevDatabase)
	conn.Close(ctx)

	// records are the new lines of the audit log: the issue's and the
	// gateway's records of c, by event name.
	records := func() (issue map[string]any, gateway map[string][]map[string]any) {
		b, _ := os.ReadFile(dev.AuditFile)
		gateway = map[string][]map[string]any{}
		for _, l := range bytes.Split(b[len(before):], []byte("\n")) {
			var r map[string]any
			if json.Unmarshal(l, &r) != nil {
				continue
			}
			p, _ := r["requestParameters"].(map[string]any)
			resp, _ := r["responseElements"].(map[string]any)
			switch name := fmt.Sprint(r["eventName"]); {
			case name == "GetClusterCredentials" && resp["dbUser"] == c.user:
				issue = r
			case (name == "GatewayLogin" || name == "GatewaySessionEnd") && p["loginName"] == c.user,
				(name == "GrantSessionGroup" || name == "RevokeSessionGroup") && p["dbUser"] == dbUser:
				gateway[name] = append(gateway[name], r)
			}
		}
		return issue, gateway
	}
	var issue map[string]any
	var gateway map[string][]map[string]any
	poll(t, 10*time.Second, "the issue's, login's, grant's, revoke's and session end's records", func() bool {
		issue, gateway = records()
		return issue != nil && len(gateway) == 4
	})
	want, _ := issue["userIdentity"].(map[string]any)
	// The issue's own record is CloudTrail's: the role with its path and
	// id, and when the session began.
	sc, _ := want["sessionContext"].(map[string]any)
	issuer, _ := sc["sessionIssuer"].(map[string]any)
	attrs, _ := sc["attributes"].(map[string]any)
	if issuer["arn"] != "arn:aws:iam::000000000000:role/team/"+role || issuer["principalId"] != roleID || issuer["userName"] != role ||
		attrs["creationDate"] == nil || attrs["mfaAuthenticated"] != "false" || want["principalId"] != roleID+":audited" {
		t.Errorf("GetClusterCredentials record's userIdentity %v: want the session of %s (%s) with its sessionIssuer and attributes", want, role, roleID)
	}
	if created, err := time.Parse(time.RFC3339, fmt.Sprint(attrs["creationDate"])); err != nil || created.Before(start) || created.After(time.Now()) {
		t.Errorf("sessionContext.attributes.creationDate %v (%v), want the session's start", attrs["creationDate"], err)
	}
	// The gateway's records: the same identity; the key that got the
	// credential is in responseElements (additionalEventData for grants).
	same := func(when string, records map[string][]map[string]any) {
		t.Helper()
		wantGW := map[string]any{}
		for k, v := range want {
			if k != "accessKeyId" {
				wantGW[k] = v
			}
		}
		for name, rs := range records {
			for _, r := range rs {
				if got := r["userIdentity"]; !reflect.DeepEqual(got, wantGW) {
					g, _ := json.Marshal(got)
					w, _ := json.Marshal(wantGW)
					t.Errorf("%s: %s record's userIdentity\n %s\nwant the issuing call's\n %s", when, name, g, w)
				}
			}
		}
	}
	same("first login", gateway)

	// The role is deleted and created again under its name, elsewhere: a
	// new role (another id and path). The credential, issued to the old
	// one's session, still logs in (until it expires, as in Redshift), and
	// its records name the role it was issued to.
	if _, err := admin.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String("p")}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(role)}); err != nil {
		t.Fatal(err)
	}
	if newID := createRole("/other/"); newID == roleID {
		t.Fatalf("the role created again has the old one's id %s", roleID)
	}
	conn = mustConnect(t, dev, c, DevDatabase)
	conn.Close(ctx)
	poll(t, 10*time.Second, "the second login's records", func() bool {
		_, gateway = records()
		return len(gateway["GatewayLogin"]) == 2 && len(gateway["GatewaySessionEnd"]) == 2
	})
	same("after the role was created again", map[string][]map[string]any{"GatewayLogin": gateway["GatewayLogin"][1:], "GatewaySessionEnd": gateway["GatewaySessionEnd"][1:]})

	// Revoked, the credential is refused; the refused login's record names
	// the same principal (its credential is known: the client proved it).
	var text bytes.Buffer
	if err := run(ctx, []string{"credentials", "revoke", "--data-dir", dev.DataDir, "--cluster", DevCluster, "--login", c.user}, &text, &text); err != nil {
		t.Fatal(err, text.String())
	}
	if _, err := connect(dev, c, DevDatabase); sqlState(err) != "28P01" {
		t.Fatalf("login with the revoked credential: %v, want 28P01", err)
	}
	poll(t, 10*time.Second, "the refused login's record", func() bool {
		_, gateway = records()
		return len(gateway["GatewayLogin"]) == 3
	})
	refused := gateway["GatewayLogin"][2]
	if refused["errorCode"] != "revoked" {
		t.Fatalf("third login's record: %v, want one refused as revoked", refused)
	}
	same("refused as revoked", map[string][]map[string]any{"GatewayLogin": {refused}})
}
