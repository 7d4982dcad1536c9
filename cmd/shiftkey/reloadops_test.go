package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
)

// SIGHUP as an operator meets it, on the real binary: each broken edit (bad
// YAML, an unset ${ENV}, a missing certificate, a key file others may
// read, an invalid policy) keeps the running config, is logged once with
// its reason, and a later good edit applies: a user added works, a key
// declared Inactive stops, a policy tightened denies, a user removed stops.
func TestSIGHUPBrokenEditsKeepTheRunningConfig(t *testing.T) {
	ctx := context.Background()
	certDir := t.TempDir()
	certFile, keyFile := writeServerCert(t, certDir)
	c := startServeChild(t, "tls: {cert_file: "+certFile+", key_file: "+keyFile+"}", newbieEnv)
	cfgPath := filepath.Join(filepath.Dir(c.auditPath), "serve.yaml")
	base, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	logCount := func(s string) int {
		b, _ := os.ReadFile(c.logPath)
		return strings.Count(string(b), s)
	}
	reload := func(t *testing.T, yaml, wait string) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		n := logCount(wait)
		c.signal(syscall.SIGHUP)
		waitUntil(t, 10*time.Second, "the reload's "+wait, func() bool { return logCount(wait) > n })
	}
	issue := func(keyID, secret string) error {
		_, err := rsClient(c.api, keyID, secret).GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
			ClusterIdentifier: aws.String("opsc"), DbUser: aws.String("reloaded"), AutoCreate: aws.Bool(true)})
		return err
	}
	ops := func() error { return issue(opsEnv["OPS_KEY_ID"], opsEnv["OPS_SECRET"]) }
	newbie := func() error { return issue(newbieEnv["NEWBIE_KEY_ID"], newbieEnv["NEWBIE_SECRET"]) }

	worldReadable := filepath.Join(certDir, "open.key")
	kb, _ := os.ReadFile(keyFile)
	if err := os.WriteFile(worldReadable, kb, 0o644); err != nil {
		t.Fatal(err)
	}
	withNewbie := string(base) + newbieUser
	for _, b := range []struct{ name, yaml, reason string }{
		{"bad YAML", withNewbie + "  - {name: [\n", "did not find expected"},
		{"unset ENV", strings.ReplaceAll(withNewbie, "${NEWBIE_SECRET}", "${NEWBIE_SECRET_UNSET}"), "NEWBIE_SECRET_UNSET"},
		{"missing certificate", strings.Replace(withNewbie, certFile, filepath.Join(certDir, "gone.crt"), 1), "gone.crt"},
		{"key others may read", strings.Replace(withNewbie, keyFile, worldReadable, 1), "chmod"},
		{"invalid policy", strings.Replace(withNewbie, `"Resource":"*"}]}'`, `"Resource":"*","Bogus":1}]}'`, 1), "Bogus"},
	} {
		t.Run(b.name, func(t *testing.T) {
			before := logCount(b.reason)
			reload(t, b.yaml, `"reload failed"`)
			if n := logCount(b.reason) - before; n != 1 {
				t.Errorf("the log names the reason (%q) %d times, want once", b.reason, n)
			}
			if err := newbie(); apiCode(err) != "InvalidClientTokenId" {
				t.Errorf("newbie after a broken reload: %v, want InvalidClientTokenId", err)
			}
			if err := ops(); err != nil {
				t.Errorf("ops after a broken reload: %v", err)
			}
		})
	}
	if n := logCount(`"config reloaded"`); n != 0 {
		t.Fatalf("%d broken reloads logged config reloaded", n)
	}

	// Good edits apply, each at the next request.
	inactive := strings.Replace(withNewbie, `secret: "${OPS_SECRET}"}`, `secret: "${OPS_SECRET}", status: Inactive}`, 1)
	reload(t, inactive, `"config reloaded"`)
	if err := newbie(); err != nil {
		t.Errorf("newbie after the good reload: %v", err)
	}
	if err := ops(); apiCode(err) != "InvalidClientTokenId" {
		t.Errorf("ops with its key declared Inactive: %v, want InvalidClientTokenId", err)
	}
	tightened := strings.Replace(inactive, `"Resource":"*"}]}'`+"\n", `"Resource":"*"},{"Effect":"Deny","Action":"redshift:GetClusterCredentials","Resource":"*"}]}'`+"\n", 2)
	if tightened == inactive {
		t.Fatal("no policy to tighten")
	}
	reload(t, tightened, `"config reloaded"`)
	if err := newbie(); apiCode(err) != "AccessDenied" {
		t.Errorf("newbie with a Deny added: %v, want AccessDenied", err)
	}
	reload(t, string(base), `"config reloaded"`)
	if err := newbie(); apiCode(err) != "InvalidClientTokenId" {
		t.Errorf("newbie removed from the file: %v, want InvalidClientTokenId", err)
	}
	if err := ops(); apiCode(err) != "InvalidClientTokenId" {
		t.Errorf("ops, its key's status left out after Inactive: %v, want InvalidClientTokenId (it keeps its status)", err)
	}
}
