package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
)

// Found in an operator's review: Go's flag package stops at the first
// argument that is not a flag, and the commands ignored what was left. A
// stray word (a second id or key pasted, a quote gone wrong) made every
// flag after it vanish silently: `credentials revoke --login L stray
// --terminate` revoked without ending the session and exited 0, and with
// a narrowing filter after the word (`--cluster C stray --login L`) a
// revoke would take every credential of the cluster. Each command now
// refuses a leftover argument before it does anything.
func TestStrayArgumentIsRefused(t *testing.T) {
	ctx := context.Background()
	c := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String(fresh("strayarg")), AutoCreate: aws.Bool(true)})

	var out bytes.Buffer
	err := run(ctx, []string{"credentials", "revoke", "--data-dir", dev.DataDir, "--login", c.user, "stray", "--terminate"}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), `"stray"`) {
		t.Errorf("revoke with a stray argument before --terminate: err %v, said:\n%s", err, out.String())
	}
	// Nothing was revoked: the credential is still listed.
	out.Reset()
	if err := run(ctx, []string{"credentials", "list", "--data-dir", dev.DataDir, "--login", c.user}, &out, &out); err != nil || !strings.Contains(out.String(), c.user) {
		t.Errorf("after the refused revoke, list --login %s: %v\n%s", c.user, err, out.String())
	}

	// audit tail: the second file and the filter after it were dropped,
	// and every record of the first file printed.
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, []byte(`{"eventTime":"2026-12-07T03:00:00Z","eventName":"X","userIdentity":{"arn":"arn:aws:iam::1:user/other"}}`+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"audit", "tail", "--file", a, b, "--principal", "arn:aws:iam::1:user/alice"},
		{"credentials", "list", "--data-dir", dev.DataDir, "stray", "--login", c.user},
		{"store", "rotate-key", "--data-dir", filepath.Join(dir, "none"), "stray"},
		{"policy", "explain", "--action", "redshift:GetClusterCredentials", "stray", "--policy", a},
	} {
		out.Reset()
		err := run(ctx, args, &out, &out)
		if err == nil || !strings.Contains(err.Error(), "unexpected argument") {
			t.Errorf("shiftkey %s: err %v, printed:\n%s", strings.Join(args, " "), err, out.String())
		}
	}
}
