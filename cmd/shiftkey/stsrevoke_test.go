package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

// leak is a user's access key that assumed a role (session first), whose
// session assumed another role (chained), and the same user's other key,
// which assumed the first role under the same session name (bystander:
// its session has first's ARN, and is not the leak's).
type leak struct {
	user, firstRoleARN        string
	key, other                aws.Credentials
	first, chained, bystander aws.Credentials
}

// newLeak sets the leak up through the IAM and STS APIs at url as admin.
func newLeak(t *testing.T, url, region string, admin aws.Credentials) *leak {
	t.Helper()
	ctx := context.Background()
	l := &leak{user: fresh("stsleak")}
	first, second := fresh("StsFirst"), fresh("StsChained")
	ic := iam.New(iam.Options{Region: region, BaseEndpoint: aws.String(url), Credentials: provider(admin), Retryer: aws.NopRetryer{}})
	const may = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["redshift:GetClusterCredentials","redshift:CreateClusterUser","sts:AssumeRole"],"Resource":"*"}]}`
	u, err := ic.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(l.user)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ic.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(l.user), PolicyName: aws.String("p"), PolicyDocument: aws.String(may)}); err != nil {
		t.Fatal(err)
	}
	role := func(name, trusted string) string {
		trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + trusted + `"},"Action":"sts:AssumeRole"}]}`
		r, err := ic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ic.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String("p"), PolicyDocument: aws.String(may)}); err != nil {
			t.Fatal(err)
		}
		return aws.ToString(r.Role.Arn)
	}
	firstARN := role(first, aws.ToString(u.User.Arn))
	secondARN := role(second, firstARN)
	l.firstRoleARN = firstARN
	newKey := func() aws.Credentials {
		k, err := ic.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(l.user)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.Credentials{AccessKeyID: aws.ToString(k.AccessKey.AccessKeyId), SecretAccessKey: aws.ToString(k.AccessKey.SecretAccessKey)}
	}
	l.key, l.other = newKey(), newKey()
	assume := func(c aws.Credentials, arn string) aws.Credentials {
		ar, err := sts.New(sts.Options{Region: region, BaseEndpoint: aws.String(url), Credentials: provider(c), Retryer: aws.NopRetryer{}}).
			AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(arn), RoleSessionName: aws.String("leaky")})
		if err != nil {
			t.Fatalf("AssumeRole %s: %v", arn, err)
		}
		return aws.Credentials{AccessKeyID: aws.ToString(ar.Credentials.AccessKeyId), SecretAccessKey: aws.ToString(ar.Credentials.SecretAccessKey),
			SessionToken: aws.ToString(ar.Credentials.SessionToken)}
	}
	l.first = assume(l.key, firstARN)
	l.chained = assume(l.first, secondARN)
	l.bystander = assume(l.other, firstARN)
	return l
}

// issueWith calls GetClusterCredentials on cluster at url signed with c.
func issueWith(url, region, cluster string, c aws.Credentials) error {
	_, err := redshift.New(redshift.Options{Region: region, BaseEndpoint: aws.String(url), Credentials: provider(c), Retryer: aws.NopRetryer{}}).
		GetClusterCredentials(context.Background(), &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String(cluster),
			DbUser: aws.String("stsleak"), AutoCreate: aws.Bool(true)})
	return err
}

// invalidToken reports whether err is AWS's refusal of a security token
// it does not accept: InvalidClientTokenId, 403.
func invalidToken(err error) bool {
	var ae smithy.APIError
	var re *awshttp.ResponseError
	return errors.As(err, &ae) && ae.ErrorCode() == "InvalidClientTokenId" && errors.As(err, &re) && re.HTTPStatusCode() == http.StatusForbidden
}

// Found in a review: `credentials revoke --access-key` revoked what a
// leaked key had obtained, but the STS sessions the key had started kept
// working until they expired (up to 12 h): whoever held the key's
// AssumeRole results went on minting database credentials after the
// revoke. The revoke ends those sessions, chains included, and a call
// signed with one is refused as AWS refuses a token it does not accept;
// another key's session of the same role and session name works on.
func TestCredentialsRevokeAccessKeyEndsItsSessions(t *testing.T) {
	ctx := context.Background()
	l := newLeak(t, dev.APIURL, DevRegion, devCreds())
	for _, c := range []aws.Credentials{l.first, l.chained, l.bystander} {
		if err := issueWith(dev.APIURL, DevRegion, DevCluster, c); err != nil {
			t.Fatalf("a session's call before the revoke: %v", err)
		}
	}
	admin := iam.New(iam.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: provider(devCreds()), Retryer: aws.NopRetryer{}})
	if _, err := admin.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String(l.user), AccessKeyId: aws.String(l.key.AccessKeyID),
		Status: iamtypes.StatusTypeInactive}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"credentials", "revoke", "--data-dir", dev.DataDir, "--access-key", l.key.AccessKeyID}, &out, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	revoked := out.String()
	for name, c := range map[string]aws.Credentials{"the key's session": l.first, "the chained session": l.chained} {
		took := poll(t, time.Second, name+" is refused with InvalidClientTokenId (403)", func() bool {
			return invalidToken(issueWith(dev.APIURL, DevRegion, DevCluster, c))
		})
		t.Logf("%s refused after %v", name, took)
	}
	if err := issueWith(dev.APIURL, DevRegion, DevCluster, l.bystander); err != nil {
		t.Fatalf("another key's session of the same role and name was ended: %v", err)
	}
	if !strings.Contains(revoked, "2 sessions ended") || !strings.Contains(revoked, l.first.AccessKeyID) || !strings.Contains(revoked, l.chained.AccessKeyID) ||
		strings.Contains(revoked, l.bystander.AccessKeyID) {
		t.Fatalf("revoke --access-key said:\n%s\nwant 2 sessions ended, %s and %s, not %s", revoked, l.first.AccessKeyID, l.chained.AccessKeyID, l.bystander.AccessKeyID)
	}
	// The audit record names the sessions, and no secret.
	var rec map[string]any
	poll(t, 5*time.Second, "a RevokeCredentials record naming the ended sessions", func() bool {
		b, _ := os.ReadFile(dev.AuditFile)
		for _, line := range strings.Split(string(b), "\n") {
			var r map[string]any
			if json.Unmarshal([]byte(line), &r) == nil && r["eventName"] == "RevokeCredentials" {
				if p, _ := r["requestParameters"].(map[string]any); p["accessKeyId"] == l.key.AccessKeyID {
					rec = r
					return true
				}
			}
		}
		return false
	})
	b, _ := json.Marshal(rec)
	if !strings.Contains(string(b), l.first.AccessKeyID) || !strings.Contains(string(b), l.chained.AccessKeyID) || !strings.Contains(string(b), `"sessionCount":2`) {
		t.Fatalf("the audit record does not name the ended sessions: %s", b)
	}
	for _, secret := range []string{l.key.SecretAccessKey, l.first.SecretAccessKey, l.first.SessionToken, l.chained.SecretAccessKey, l.chained.SessionToken} {
		if strings.Contains(string(b), secret) {
			t.Fatalf("the audit record holds a secret: %s", b)
		}
	}
}

// The sessions a revoke by access key ends are refused within a second on
// every replica of a shared PostgreSQL store, each of which had them
// cached (the same change feed that carries a deactivated key).
func TestReplicasRefuseEndedSessions(t *testing.T) {
	ctx := context.Background()
	storeURL, keyFile := newStoreDB(t, "stsrevoke_"), newStoreKey(t)
	a, cfgA := replicaConfig(t, storeURL, keyFile, "")
	serveInProcess(t, cfgA)
	b, cfgB := replicaConfig(t, storeURL, keyFile, "")
	serveInProcess(t, cfgB)
	const region = "us-east-1"
	admin := aws.Credentials{AccessKeyID: replicaKeys["ADMIN_KEY"], SecretAccessKey: replicaKeys["ADMIN_SECRET"]}
	l := newLeak(t, "http://"+a.api, region, admin)
	for _, r := range []*replica{a, b} {
		for _, c := range []aws.Credentials{l.first, l.chained} {
			if err := issueWith("http://"+r.api, region, "shared", c); err != nil {
				t.Fatalf("a session's call on %s before the revoke: %v", r.api, err)
			}
		}
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"credentials", "revoke", "--config", cfgB, "--access-key", l.key.AccessKeyID}, &out, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "2 sessions ended") {
		t.Fatalf("revoke --access-key said:\n%s", out.String())
	}
	for _, r := range []*replica{a, b} {
		for _, c := range []aws.Credentials{l.first, l.chained} {
			took := poll(t, time.Second, c.AccessKeyID+" is refused on "+r.api, func() bool {
				return invalidToken(issueWith("http://"+r.api, region, "shared", c))
			})
			t.Logf("ended session %s refused on %s after %v", c.AccessKeyID, r.api, took)
		}
		if err := issueWith("http://"+r.api, region, "shared", l.bystander); err != nil {
			t.Fatalf("another key's session was ended on %s: %v", r.api, err)
		}
	}
}
