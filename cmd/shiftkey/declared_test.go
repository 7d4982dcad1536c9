package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/config"
)

// lockedBuffer collects log lines written from serve's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records are the JSON log lines written so far.
func (b *lockedBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startLoggedServe starts serve from yaml with a JSON logger into logs; the caller
// closes it (a restart is a Close and a new startLoggedServe on the same store).
func startLoggedServe(t *testing.T, yaml string, env map[string]string, logs *lockedBuffer) *Serve {
	t.Helper()
	cfg, err := config.Parse(strings.NewReader(yaml), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	s := &Serve{Config: cfg, Logger: slog.New(slog.NewJSONHandler(logs, nil))}
	if err := s.Start(context.Background()); err != nil {
		s.Close()
		t.Fatal(err)
	}
	return s
}

const declaredAdminPolicy = `'{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*"}]}'`

// declaredYAML is a serve config with no cluster: the IAM part is what
// the test varies.
func declaredYAML(db, iamPart string) string {
	return "store: {sqlite: " + db + "}\napi: {listen: \"127.0.0.1:0\"}\niam:\n" + iamPart
}

// Finding 5 (issue 13): declared state was not authoritative. A restart of
// serve deleted and recreated Active a declared key an operator had
// deactivated, and kept keys, inline policies, attachments, memberships and
// whole users removed from the file. Now the file wins for what it
// declares, API-created identities are untouched, and the start-up log
// says what changed without a secret.
func TestFinding5ServeRestartDeclaredAuthoritative(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "serve.db")
	env := map[string]string{
		"ADMIN_KEY": "AKIADECLAREDADMIN001", "ADMIN_SECRET": "declared-admin-secret-01",
		"CI_KEY": "AKIADECLAREDCI000001", "CI_SECRET": "declared-ci-secret-0001",
		"CI_KEY2": "AKIADECLAREDCI000002", "CI_SECRET2": "declared-ci-secret-0002",
		"GONE_KEY": "AKIADECLAREDGONE001", "GONE_SECRET": "declared-gone-secret-01",
		"OPS_KEY": "AKIADECLAREDOPS0001", "OPS_SECRET": "declared-ops-secret-001",
	}
	v1 := declaredYAML(db, `
  policies:
    - {name: mp, document: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}]}'}
  groups: [{name: analysts}]
  users:
    - name: admin
      access_keys: [{id: "${ADMIN_KEY}", secret: "${ADMIN_SECRET}"}]
      policies: {all: `+declaredAdminPolicy+`}
    - name: ci
      groups: [analysts]
      managed_policies: [mp]
      tags: {team: data}
      access_keys: [{id: "${CI_KEY}", secret: "${CI_SECRET}"}, {id: "${CI_KEY2}", secret: "${CI_SECRET2}"}]
      policies: {creds: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}]}'}
    - name: gone
      access_keys: [{id: "${GONE_KEY}", secret: "${GONE_SECRET}"}]
    - name: ops
      access_keys: [{id: "${OPS_KEY}", secret: "${OPS_SECRET}"}]
`)
	logs := &lockedBuffer{}
	s := startLoggedServe(t, v1, env, logs)
	admin := iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.APIURL), Retryer: aws.NopRetryer{},
		Credentials: provider(aws.Credentials{AccessKeyID: env["ADMIN_KEY"], SecretAccessKey: env["ADMIN_SECRET"]})})
	// The operator deactivates a declared key and sets up an identity of
	// their own through the IAM API.
	if _, err := admin.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String("ci"), AccessKeyId: aws.String(env["CI_KEY"]), Status: iamtypes.StatusTypeInactive}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("bob")}); err != nil {
		t.Fatal(err)
	}
	bobKey, err := admin.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("bob")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("bob"), PolicyName: aws.String("own"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}]}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart with ci's second key, inline policy, attachment, membership
	// and tag removed from the file, and the user gone removed entirely.
	v2 := declaredYAML(db, `
  policies:
    - {name: mp, document: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}]}'}
  groups: [{name: analysts}]
  users:
    - name: admin
      access_keys: [{id: "${ADMIN_KEY}", secret: "${ADMIN_SECRET}"}]
      policies: {all: `+declaredAdminPolicy+`}
    - name: ci
      access_keys: [{id: "${CI_KEY}", secret: "${CI_SECRET}"}]
    - name: ops
      access_keys: [{id: "${OPS_KEY}", secret: "${OPS_SECRET}"}]
`)
	logs = &lockedBuffer{}
	s = startLoggedServe(t, v2, env, logs)
	st := s.Store
	if k, err := st.AccessKey(ctx, env["CI_KEY"]); err != nil || k.Status != "Inactive" {
		t.Errorf("deactivated declared key after restart: %+v %v, want still Inactive", k, err)
	}
	if _, err := st.AccessKey(ctx, env["CI_KEY2"]); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Errorf("key removed from the file: %v, want NoSuchEntity", err)
	}
	if ps, _ := st.InlinePolicies(ctx, shiftkey.KindUser, "ci"); len(ps) != 0 {
		t.Errorf("inline policies removed from the file: %v", ps)
	}
	if ps, _ := st.AttachedPolicies(ctx, shiftkey.KindUser, "ci"); len(ps) != 0 {
		t.Errorf("attachment removed from the file: %v", ps)
	}
	if gs, _ := st.GroupsForUser(ctx, "ci"); len(gs) != 0 {
		t.Errorf("membership removed from the file: %v", gs)
	}
	if tags, _ := st.Tags(ctx, shiftkey.KindUser, "ci"); len(tags) != 0 {
		t.Errorf("tags removed from the file: %v", tags)
	}
	if _, err := st.Entity(ctx, shiftkey.KindUser, "gone"); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Errorf("user removed from the file: %v, want NoSuchEntity", err)
	}
	if _, err := st.AccessKey(ctx, env["GONE_KEY"]); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Errorf("removed user's key: %v, want NoSuchEntity", err)
	}
	// bob, created through the API, is untouched.
	if k, err := st.AccessKey(ctx, aws.ToString(bobKey.AccessKey.AccessKeyId)); err != nil || k.Status != "Active" {
		t.Errorf("API-created key after restart: %+v %v", k, err)
	}
	if ps, _ := st.InlinePolicies(ctx, shiftkey.KindUser, "bob"); len(ps) != 1 {
		t.Errorf("API-created user's policies after restart: %v", ps)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart with ops's key declared Inactive and admin's secret rotated:
	// the log has a line per change and a summary, and no secret.
	env["ADMIN_SECRET"] = "declared-admin-secret-02"
	v3 := strings.Replace(v2, `{id: "${OPS_KEY}", secret: "${OPS_SECRET}"}`, `{id: "${OPS_KEY}", secret: "${OPS_SECRET}", status: Inactive}`, 1)
	logs = &lockedBuffer{}
	s = startLoggedServe(t, v3, env, logs)
	defer s.Close()
	if k, err := s.Store.AccessKey(ctx, env["OPS_KEY"]); err != nil || k.Status != "Inactive" {
		t.Errorf("key declared Inactive: %+v %v", k, err)
	}
	admin = iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.APIURL), Retryer: aws.NopRetryer{},
		Credentials: provider(aws.Credentials{AccessKeyID: env["ADMIN_KEY"], SecretAccessKey: env["ADMIN_SECRET"]})})
	if _, err := admin.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("bob")}); err != nil {
		t.Errorf("the rotated declared secret: %v", err)
	}
	var applied []map[string]any
	summary := false
	for _, r := range logs.records(t) {
		switch r["msg"] {
		case "declared state applied":
			applied = append(applied, r)
		case "declared state reconciled":
			summary = r["changes"] == float64(2)
		}
	}
	want := map[string]bool{"key deactivated " + env["OPS_KEY"]: false, "key secret replaced " + env["ADMIN_KEY"]: false}
	for _, r := range applied {
		k, _ := r["change"].(string)
		id, _ := r["access_key_id"].(string)
		if _, ok := want[k+" "+id]; !ok {
			t.Errorf("unexpected change logged: %v", r)
		}
		want[k+" "+id] = true
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("no log line for %s in:\n%s", k, logs)
		}
	}
	if !summary {
		t.Errorf("no summary line with changes=2 in:\n%s", logs)
	}
	for _, secret := range []string{env["ADMIN_SECRET"], "declared-admin-secret-01", env["OPS_SECRET"], env["CI_SECRET"]} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the start-up log holds a secret")
		}
	}
}
