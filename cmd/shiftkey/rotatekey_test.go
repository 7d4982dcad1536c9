package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/shiftkey/shiftkey/iamapi"
	"github.com/shiftkey/shiftkey/secretbox"
	"github.com/shiftkey/shiftkey/sqlite"
)

// `shiftkey store rotate-key` on a running dev: SigV4 calls with IAM keys
// and STS sessions (old and new) never fail, new sessions are created
// throughout, and at the end store.key holds the new key, under which
// every secret is sealed; the old key opens nothing.
func TestRotateKeyUnderLoad(t *testing.T) {
	d, dir := startOwnDev(t)
	ctx := context.Background()
	defer d.Close()
	oldKey, err := secretbox.LoadKeyFile(filepath.Join(dir, devStoreKeyName))
	if err != nil {
		t.Fatal(err)
	}
	adminCreds := provider(aws.Credentials{AccessKeyID: d.AccessKey.ID, SecretAccessKey: d.AccessKey.Secret})
	admin := iam.New(iam.Options{Region: DevRegion, BaseEndpoint: aws.String(d.APIURL), Credentials: adminCreds, Retryer: aws.NopRetryer{}})
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/admin"},"Action":"sts:AssumeRole"}]}`
	if _, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("RotRole"), AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("RotRole"), PolicyName: aws.String("all"), PolicyDocument: aws.String(iamapi.AdministratorAccess)}); err != nil {
		t.Fatal(err)
	}
	// Enough users and sessions that the rewrite takes several batches.
	var users []aws.CredentialsProviderFunc
	for i := range 60 {
		name := fmt.Sprintf("rot%d", i)
		if _, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
		ak, err := admin.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, provider(aws.Credentials{AccessKeyID: aws.ToString(ak.AccessKey.AccessKeyId), SecretAccessKey: aws.ToString(ak.AccessKey.SecretAccessKey)}))
	}
	stsAs := func(p aws.CredentialsProviderFunc) *sts.Client {
		return sts.New(sts.Options{Region: DevRegion, BaseEndpoint: aws.String(d.APIURL), Credentials: p, Retryer: aws.NopRetryer{}})
	}
	assume := func() (aws.CredentialsProviderFunc, error) {
		ar, err := stsAs(adminCreds).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::000000000000:role/RotRole"), RoleSessionName: aws.String("rot")})
		if err != nil {
			return nil, err
		}
		return provider(aws.Credentials{AccessKeyID: aws.ToString(ar.Credentials.AccessKeyId), SecretAccessKey: aws.ToString(ar.Credentials.SecretAccessKey),
			SessionToken: aws.ToString(ar.Credentials.SessionToken)}), nil
	}
	var sessions []aws.CredentialsProviderFunc
	for range 60 {
		s, err := assume()
		if err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, s)
	}

	var stop atomic.Bool
	var calls atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	worker := func(creds []aws.CredentialsProviderFunc, assumeToo bool) {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			p := creds[i%len(creds)]
			if assumeToo && i%3 == 0 {
				s, err := assume()
				if err != nil {
					errs <- fmt.Errorf("AssumeRole during rotation: %w", err)
					return
				}
				p = s
			}
			if _, err := stsAs(p).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
				errs <- fmt.Errorf("GetCallerIdentity during rotation: %w", err)
				return
			}
			calls.Add(1)
		}
	}
	wg.Add(3)
	go worker(users, false)
	go worker(sessions, false)
	go worker(sessions, true)

	var out, errOut bytes.Buffer
	rotErr := run(ctx, []string{"store", "rotate-key", "--data-dir", dir}, &out, &errOut)
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if rotErr != nil {
		t.Fatalf("rotate-key: %v\n%s", rotErr, errOut.String())
	}
	if calls.Load() == 0 {
		t.Fatal("test premise: no call ran during the rotation")
	}
	t.Logf("%d calls during the rotation; %s", calls.Load(), strings.TrimSpace(out.String()))

	newKey, err := secretbox.LoadKeyFile(filepath.Join(dir, devStoreKeyName))
	if err != nil {
		t.Fatal(err)
	}
	if newKey.ID() == oldKey.ID() {
		t.Fatal("store.key still holds the old key")
	}
	for _, leftover := range []string{devStoreKeyName + ".new", devStoreKeyName + ".old"} {
		if _, err := os.Stat(filepath.Join(dir, leftover)); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", leftover, err)
		}
	}
	// Every stored secret is sealed under the new key; the old opens none.
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, devStoreName)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	n := 0
	for _, q := range []string{`SELECT secret FROM access_keys`, `SELECT secret FROM sessions`} {
		rows, err := raw.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var v string
			rows.Scan(&v)
			n++
			if !strings.HasPrefix(v, secretbox.Prefix(newKey.ID())) {
				t.Errorf("a secret stored as %.24q after the rotation", v)
			}
			if _, err := oldKey.Open(v, nil); err == nil {
				t.Error("the old key opens a stored secret")
			}
		}
		rows.Close()
	}
	if n < 120 {
		t.Fatalf("%d secrets stored, want at least 120", n)
	}
	// The running dev keeps working, and the store opens with store.key.
	if _, err := stsAs(users[0]).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatal(err)
	}
	db, err := openDevStore(ctx, dir, false)
	if err != nil {
		t.Fatalf("reopen with the new store.key: %v", err)
	}
	db.Close()
	if db, err := sqlite.Open(ctx, filepath.Join(dir, devStoreName), sqlite.WithKey(oldKey, "")); err == nil {
		db.Close()
		t.Fatal("the store opened with the old key")
	}
}
