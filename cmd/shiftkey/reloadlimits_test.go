package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiftkey/shiftkey"
)

// A SIGHUP reload of a config whose declared policy the IAM API would
// refuse (here a user's inline policies over IAM's 2,048 characters) fails,
// naming the field and the user, and applies nothing. It was applied: the
// user was created with a policy no API call could have given it.
func TestReloadRefusesPoliciesOverIAMLimits(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	base := `
store: {sqlite: ` + filepath.Join(dir, "serve.db") + `}
api: {listen: "127.0.0.1:0"}
` + declaredClusterYAML("reloadlimits", `"redshift:GetClusterCredentials"`)
	s := startServe(t, base, limitsEnv)
	for k, v := range limitsEnv {
		t.Setenv(k, v)
	}
	big := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:DescribeClusters","Resource":"arn:aws:redshift:us-east-1:000000000000:cluster:` +
		strings.Repeat("c", 2000) + `"}]}`
	cfgPath := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfgPath, []byte(base+"    - name: big\n      policies: {p: '"+big+"'}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := s.Reload(ctx, cfgPath)
	if err == nil || !strings.Contains(err.Error(), `iam.users[1].policies: user "big": its inline policies total`) || !strings.Contains(err.Error(), "over IAM's 2048 for a user") {
		t.Fatalf("reload with an inline policy over IAM's quota: %v, want an error naming iam.users[1].policies and user big", err)
	}
	if _, err := s.Store.Entity(ctx, shiftkey.KindUser, "big"); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("the refused reload created user big (%v)", err)
	}
}
