package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Found in an operator's review: `audit tail --principal ARN` with a
// mistyped ARN (another case, a path left out) printed nothing and exited
// 0, the same answer as a principal that did nothing: an operator read "no
// activity". A tail (not -f) whose filters kept no record says so on
// standard error, with how many records it read; the exit status stays 0,
// as for a credentials list of nothing.
func TestAuditTailSaysWhenNothingMatched(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "audit.log")
	rec := `{"eventVersion":"1.08","eventTime":"2026-12-07T03:00:00Z","eventName":"GetClusterCredentials","eventType":"AwsApiCall","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/eng/carol"}}` + "\n"
	if err := os.WriteFile(log, []byte(rec+rec), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"audit", "tail", "--file", log, "--principal", "arn:aws:iam::1:user/carol"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if stdout.Len() != 0 || !strings.Contains(stderr.String(), "no record matched") || !strings.Contains(stderr.String(), "2 records read") {
		t.Errorf("tail of a principal with no record: stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	// One that matched says nothing more.
	stdout.Reset()
	stderr.Reset()
	if err := run(context.Background(), []string{"audit", "tail", "--file", log, "--principal", "arn:aws:iam::1:user/eng/carol"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if strings.Count(stdout.String(), "\n") != 2 || stderr.Len() != 0 {
		t.Errorf("tail of a principal with records: stdout %q, stderr %q", stdout.String(), stderr.String())
	}
}
