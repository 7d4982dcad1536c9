package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
)

// Found in a review: with `shiftkey dev --audit-file` naming another file
// than the default, `shiftkey credentials revoke --data-dir` audited
// nothing (it looked for DATA_DIR/audit.log only); with --audit-file off
// it appended to an audit.log an earlier run left. It now follows the
// audit file dev.env names (SHIFTKEY_AUDIT_FILE), and none when it names
// none.
func TestDevRevokeAuditsToTheConfiguredFile(t *testing.T) {
	ctx := context.Background()
	dir, err := tempDataDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	revoke := func(d *Dev) {
		t.Helper()
		cr := getCreds(t, d, &redshift.GetClusterCredentialsInput{DbUser: aws.String("audited"), AutoCreate: aws.Bool(true)})
		var out bytes.Buffer
		if err := run(ctx, []string{"credentials", "revoke", "--data-dir", dir, "--login", cr.user}, &out, &out); err != nil {
			t.Fatalf("revoke: %v\n%s", err, out.String())
		}
		if strings.Contains(out.String(), "warning") {
			t.Errorf("revoke said:\n%s", out.String())
		}
	}
	revocations := func(path string) int {
		b, _ := os.ReadFile(path)
		n := 0
		for _, line := range strings.Split(string(b), "\n") {
			var r map[string]any
			if json.Unmarshal([]byte(line), &r) == nil && r["eventName"] == "RevokeCredentials" {
				n++
			}
		}
		return n
	}
	start := func(audit string) *Dev {
		t.Helper()
		d := newTestDev(dir)
		d.AuditFile = audit
		if err := d.Start(ctx); err != nil {
			d.Close()
			t.Fatal(err)
		}
		return d
	}
	custom, stale := filepath.Join(dir, "ops", "shiftkey audit.log"), filepath.Join(dir, "audit.log")
	if err := os.MkdirAll(filepath.Dir(custom), 0o700); err != nil {
		t.Fatal(err)
	}
	// An audit.log of an earlier run with the default.
	d := start("audit.log")
	d.Close()
	if _, err := os.Stat(stale); err != nil {
		t.Fatal(err)
	}
	d = start(custom)
	revoke(d)
	if n := revocations(custom); n != 1 {
		t.Errorf("dev audits to %s: %d revocations there, want 1", custom, n)
	}
	d.Close()
	d = start("off")
	defer d.Close()
	revoke(d)
	if n := revocations(stale); n != 0 {
		t.Errorf("dev audits nothing (--audit-file off): %d revocations appended to the earlier run's %s", n, stale)
	}
	if n := revocations(custom); n != 1 {
		t.Errorf("dev audits nothing (--audit-file off): %d revocations in %s, want the 1 from before", n, custom)
	}
}
