package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	rss "github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/shiftkey/shiftkey/iamapi"
)

// devEnvName is the one file of the data dir whose job is to hold the dev
// admin's key (as ~/.aws/credentials does); it is 0600 and the scan skips it.
const devEnvName = "dev.env"

// scanForSecrets reads every byte of every file under dir and returns, per
// secret, the files holding it raw, base64 or hex encoded.
func scanForSecrets(t *testing.T, dir string, secrets map[string]string) map[string][]string {
	t.Helper()
	found := map[string][]string{}
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.Type().IsRegular() || path == filepath.Join(dir, devEnvName) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for what, s := range secrets {
			for _, form := range []string{s, base64.StdEncoding.EncodeToString([]byte(s)), hex.EncodeToString([]byte(s))} {
				if bytes.Contains(b, []byte(form)) {
					rel, _ := filepath.Rel(dir, path)
					found[what] = append(found[what], rel)
					break
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func assertNoSecrets(t *testing.T, dir string, secrets map[string]string) {
	t.Helper()
	for what, s := range secrets {
		if s == "" {
			t.Fatalf("test premise: %s is empty", what)
		}
	}
	found := scanForSecrets(t, dir, secrets)
	names := make([]string, 0, len(found))
	for what := range found {
		names = append(names, what)
	}
	sort.Strings(names)
	for _, what := range names {
		t.Errorf("%s found in %v", what, found[what])
	}
}

// The secrets scan (issue 13): after a full walkthrough against shiftkey
// dev, no secret issued or configured appears anywhere in the data dir.
func TestFinding2SecretsScanAfterWalkthrough(t *testing.T) {
	d, dir := startOwnDev(t)
	ctx := context.Background()
	closed := false
	defer func() {
		if !closed {
			d.Close()
		}
	}()
	secrets := map[string]string{"admin's secret key": d.AccessKey.Secret}
	adminCreds := provider(aws.Credentials{AccessKeyID: d.AccessKey.ID, SecretAccessKey: d.AccessKey.Secret})
	admin := iam.New(iam.Options{Region: DevRegion, BaseEndpoint: aws.String(d.APIURL), Credentials: adminCreds, Retryer: aws.NopRetryer{}})

	// An IAM user with a key of its own, allowed everything.
	if _, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("scanner")}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("scanner"), PolicyName: aws.String("all"),
		PolicyDocument: aws.String(iamapi.AdministratorAccess)}); err != nil {
		t.Fatal(err)
	}
	ak, err := admin.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("scanner")})
	if err != nil {
		t.Fatal(err)
	}
	secrets["new user's secret key"] = aws.ToString(ak.AccessKey.SecretAccessKey)
	userCreds := provider(aws.Credentials{AccessKeyID: aws.ToString(ak.AccessKey.AccessKeyId), SecretAccessKey: aws.ToString(ak.AccessKey.SecretAccessKey)})

	// The user assumes a role: STS session credentials.
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/scanner"},"Action":"sts:AssumeRole"}]}`
	if _, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("ScanRole"), AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("ScanRole"), PolicyName: aws.String("all"), PolicyDocument: aws.String(iamapi.AdministratorAccess)}); err != nil {
		t.Fatal(err)
	}
	st := sts.New(sts.Options{Region: DevRegion, BaseEndpoint: aws.String(d.APIURL), Credentials: userCreds, Retryer: aws.NopRetryer{}})
	ar, err := st.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::000000000000:role/ScanRole"), RoleSessionName: aws.String("scan")})
	if err != nil {
		t.Fatal(err)
	}
	secrets["STS session secret"] = aws.ToString(ar.Credentials.SecretAccessKey)
	secrets["STS session token"] = aws.ToString(ar.Credentials.SessionToken)
	sessCreds := provider(aws.Credentials{AccessKeyID: aws.ToString(ar.Credentials.AccessKeyId),
		SecretAccessKey: aws.ToString(ar.Credentials.SecretAccessKey), SessionToken: aws.ToString(ar.Credentials.SessionToken)})

	// Database passwords from the cluster (as the session) and the
	// workgroup (as the user), each used to log in through its gateway.
	rs := redshift.New(redshift.Options{Region: DevRegion, BaseEndpoint: aws.String(d.APIURL), Credentials: sessCreds, Retryer: aws.NopRetryer{}})
	cc, err := rs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String(DevCluster),
		DbUser: aws.String("scanalice"), DbName: aws.String(DevDatabase), AutoCreate: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	secrets["cluster DbPassword"] = aws.ToString(cc.DbPassword)
	conn := mustConnect(t, d, cred{aws.ToString(cc.DbUser), aws.ToString(cc.DbPassword)}, DevDatabase)
	if u := currentUser(t, conn); u != "scanalice" {
		t.Fatalf("current_user %q", u)
	}
	wi, err := rs.GetClusterCredentialsWithIAM(ctx, &redshift.GetClusterCredentialsWithIAMInput{ClusterIdentifier: aws.String(DevCluster), DbName: aws.String(DevDatabase)})
	if err != nil {
		t.Fatal(err)
	}
	secrets["WithIAM DbPassword"] = aws.ToString(wi.DbPassword)
	mustConnect(t, d, cred{aws.ToString(wi.DbUser), aws.ToString(wi.DbPassword)}, DevDatabase)
	sl := rss.New(rss.Options{Region: DevRegion, BaseEndpoint: aws.String(d.APIURL), Credentials: userCreds, Retryer: aws.NopRetryer{}})
	wg, err := sl.GetWorkgroup(ctx, &rss.GetWorkgroupInput{WorkgroupName: aws.String(DevWorkgroup)})
	if err != nil {
		t.Fatal(err)
	}
	gc, err := sl.GetCredentials(ctx, &rss.GetCredentialsInput{WorkgroupName: aws.String(DevWorkgroup), DbName: aws.String(DevDatabase)})
	if err != nil {
		t.Fatal(err)
	}
	secrets["workgroup DbPassword"] = aws.ToString(gc.DbPassword)
	wgDev := &Dev{}
	wgDev.Gateway.Address, wgDev.Gateway.Port = aws.ToString(wg.Workgroup.Endpoint.Address), int(aws.ToInt32(wg.Workgroup.Endpoint.Port))
	mustConnect(t, wgDev, cred{aws.ToString(gc.DbUser), aws.ToString(gc.DbPassword)}, DevDatabase)

	// While running (WAL not checkpointed), then stopped.
	assertNoSecrets(t, dir, secrets)
	conn.Close(ctx)
	closed = true
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	assertNoSecrets(t, dir, secrets)
}
