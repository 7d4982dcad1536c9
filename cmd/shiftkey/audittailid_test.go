package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `audit tail --principal` takes a role's unique id (AROA…) for one
// incarnation of a role deleted and created again under its name, whose
// sessions' ARNs are the same; the ARN keeps both. An access key id is
// refused with a pointer to --access-key, not read as a principal that
// did nothing.
func TestAuditTailPrincipalID(t *testing.T) {
	log := filepath.Join(t.TempDir(), "audit.log")
	rec := func(roleID string) string {
		return `{"eventVersion":"1.08","eventTime":"2026-12-07T03:00:00Z","eventName":"GetClusterCredentials","eventType":"AwsApiCall",` +
			`"userIdentity":{"type":"AssumedRole","principalId":"` + roleID + `:s1","arn":"arn:aws:sts::1:assumed-role/etl/s1",` +
			`"sessionContext":{"sessionIssuer":{"type":"Role","principalId":"` + roleID + `","arn":"arn:aws:iam::1:role/etl","userName":"etl"}}}}` + "\n"
	}
	if err := os.WriteFile(log, []byte(rec("AROAOLD")+rec("AROANEW")), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		principal string
		want      []string
	}{
		{"arn:aws:iam::1:role/etl", []string{"AROAOLD", "AROANEW"}},
		{"AROANEW", []string{"AROANEW"}},
		{"AROAOLD:s1", []string{"AROAOLD"}},
	} {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), []string{"audit", "tail", "--file", log, "--principal", tc.principal}, &stdout, &stderr); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
		ok := len(lines) == len(tc.want)
		for i := range lines {
			ok = ok && i < len(tc.want) && strings.Contains(lines[i], `"principalId":"`+tc.want[i]+`:s1"`)
		}
		if !ok {
			t.Errorf("--principal %s: stdout %q, stderr %q; want the records of %v", tc.principal, stdout.String(), stderr.String(), tc.want)
		}
	}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"audit", "tail", "--file", log, "--principal", "AKIAEXAMPLEEXAMPLE12"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--access-key") {
		t.Errorf("--principal AKIA…: %v (stdout %q), want an error naming --access-key", err, stdout.String())
	}
}
