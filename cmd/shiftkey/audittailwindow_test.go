package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// `audit tail --since/--until/--event/--failed`: an incident's window from
// the command line, a duration ago or an RFC 3339 time, and the mistakes
// an operator makes with them refused with what to type.
func TestAuditTailWindowFlags(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "audit.log")
	old := time.Now().Add(-3 * time.Hour).UTC().Format(time.RFC3339)
	recent := time.Now().Add(-10 * time.Minute).UTC().Format(time.RFC3339)
	rec := func(at, name, code string) string {
		return `{"eventVersion":"1.08","eventTime":"` + at + `","eventName":"` + name + `","eventType":"AwsApiCall","errorCode":"` + code + `","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/carol"}}` + "\n"
	}
	lines := rec(old, "GetClusterCredentials", "") + rec(recent, "GetClusterCredentials", "") + rec(recent, "GetClusterCredentials", "AccessDenied") + rec(recent, "ListUsers", "")
	if err := os.WriteFile(log, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	tail := func(args ...string) (string, string, error) {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"audit", "tail", "--file", log}, args...), &stdout, &stderr)
		return stdout.String(), stderr.String(), err
	}
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"--since", "1h"}, 3},
		{[]string{"--until", "1h"}, 1},
		{[]string{"--since", old}, 4},
		{[]string{"--since", "1h", "--event", "GetClusterCredentials"}, 2},
		{[]string{"--since", "1h", "--event", "GetClusterCredentials", "--failed"}, 1},
	} {
		out, _, err := tail(c.args...)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if n := strings.Count(out, "\n"); n != c.want {
			t.Errorf("%v: %d records, want %d", c.args, n, c.want)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--since", "yesterday"}, `--since "yesterday": want an RFC 3339 time`},
		{[]string{"--since", "1h", "--until", "2h"}, "is before --since"},
		{[]string{"--principal", "AGPAEXAMPLEGROUP0001"}, "is a group's id"},
	} {
		if _, _, err := tail(c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one saying %q", c.args, err, c.want)
		}
	}
	// A window that kept nothing is said, as any filter that did.
	if _, stderr, err := tail("--until", "24h"); err != nil || !strings.Contains(stderr, "no record matched") {
		t.Errorf("an empty window: %v, stderr %q", err, stderr)
	}
}
