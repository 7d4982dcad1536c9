package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/config"
)

// A reload whose account_id differs from the running account is refused,
// naming the key, and changes nothing (a user it adds is not created).
// It was applied with the account left for the restart ("these settings
// change at the next restart"), where the identities already stored kept
// the old account's ARNs (TestServeRefusesAStoreOfAnotherAccount).
func TestReloadRefusesAnotherAccount(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	base := `
store: {sqlite: ` + filepath.Join(dir, "serve.db") + `}
api: {listen: "127.0.0.1:0"}
` + declaredClusterYAML("reloadacct", `"redshift:GetClusterCredentials"`)
	s := startServe(t, base, limitsEnv)
	for _, env := range []map[string]string{limitsEnv, newbieEnv} {
		for k, v := range env {
			t.Setenv(k, v)
		}
	}
	cfgPath := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfgPath, []byte("account_id: \"111111111111\"\n"+base+newbieUser), 0o600); err != nil {
		t.Fatal(err)
	}
	err := s.Reload(ctx, cfgPath)
	if err == nil || !strings.Contains(err.Error(), "account_id") || !strings.Contains(err.Error(), "111111111111") || !strings.Contains(err.Error(), s.AccountID) {
		t.Errorf("reload with account_id changed from %s to 111111111111: %v, want an error naming account_id and both accounts", s.AccountID, err)
	}
	if _, err := s.Store.Entity(ctx, shiftkey.KindUser, "newbie"); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Errorf("the refused reload created user newbie (%v)", err)
	}
}

// serve refuses to start in another account than the one its store's
// identities were created in, naming account_id and both accounts: their
// ARNs (users, roles, groups, policies, and what callers' policies name)
// are the old account's. It started, and callers saw two accounts at once:
// GetCallerIdentity answered the new Account with the old account's Arn.
func TestServeRefusesAStoreOfAnotherAccount(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	base := `
store: {sqlite: ` + filepath.Join(dir, "serve.db") + `}
api: {listen: "127.0.0.1:0"}
admin: {listen: "off"}
` + declaredClusterYAML("otheracct", `"redshift:GetClusterCredentials"`)
	first := startServe(t, base, limitsEnv)
	first.Close()

	cfg, err := config.Parse(strings.NewReader("account_id: \"111111111111\"\n"+base), func(k string) (string, bool) { v, ok := limitsEnv[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	s := &Serve{Config: cfg, Logger: dev.Logger}
	defer s.Close()
	err = s.Start(ctx)
	if err == nil {
		out, cerr := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.APIURL), Retryer: aws.NopRetryer{},
			Credentials: provider(aws.Credentials{AccessKeyID: limitsEnv["TEST_KEY_ID"], SecretAccessKey: limitsEnv["TEST_SECRET"]})}).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if cerr != nil {
			t.Fatalf("serve started in account 111111111111 on a store of account 000000000000; GetCallerIdentity: %v", cerr)
		}
		t.Fatalf("serve started in account 111111111111 on a store of account 000000000000: GetCallerIdentity answered Account %s, Arn %s",
			aws.ToString(out.Account), aws.ToString(out.Arn))
	}
	for _, want := range []string{"account_id", "111111111111", "000000000000"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("start refused with %q, which does not name %s", err, want)
		}
	}
}
