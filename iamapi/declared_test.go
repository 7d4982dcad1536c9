package iamapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/iamapi"
	"github.com/shiftkey/shiftkey/sqlite"
)

func newStore(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

const (
	allowDoc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}]}`
	trustDoc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/ci"},"Action":"sts:AssumeRole"}]}`
	key1     = "AKIARECONCILE000001"
	key2     = "AKIARECONCILE000002"
	goneKey  = "AKIARECONCILEGONE01"
	secret1  = "reconcile-secret-0001"
	secret2  = "reconcile-secret-0002"
)

// base declares a policy, a group, two users and a role with everything
// Reconcile manages.
func base() iamapi.Declared {
	return iamapi.Declared{
		AccountID: "000000000000",
		Policies:  []iamapi.DeclaredPolicy{{Name: "mp", Document: allowDoc}, {Name: "spare", Document: allowDoc}},
		Groups:    []iamapi.DeclaredGroup{{Name: "analysts", Policies: map[string]string{"gp": allowDoc}, ManagedPolicies: []string{"mp"}}},
		Users: []iamapi.DeclaredUser{
			{Name: "ci", Tags: map[string]string{"team": "data", "tier": "1"}, Groups: []string{"analysts"},
				AccessKeys: []iamapi.DeclaredKey{{ID: key1, Secret: secret1}, {ID: key2, Secret: secret2}},
				Policies:   map[string]string{"creds": allowDoc, "more": allowDoc}, ManagedPolicies: []string{"mp"}},
			{Name: "gone", AccessKeys: []iamapi.DeclaredKey{{ID: goneKey, Secret: secret1}}, Groups: []string{"analysts"}},
		},
		Roles: []iamapi.DeclaredRole{{Name: "etl", TrustPolicy: trustDoc, Tags: map[string]string{"RedshiftDbRoles": "loader"},
			Policies: map[string]string{"rp": allowDoc}, ManagedPolicies: []string{"mp"}}},
	}
}

func reconcile(t *testing.T, st iamapi.ReconcileStore, d iamapi.Declared) iamapi.Changes {
	t.Helper()
	changes, err := iamapi.Reconcile(context.Background(), st, d)
	if err != nil {
		t.Fatalf("Reconcile: %v (after %v)", err, changes)
	}
	return changes
}

// hasChange reports whether changes hold what for name (and the key, policy,
// group or tag detail when given).
func hasChange(changes iamapi.Changes, what, name, detail string) bool {
	for _, c := range changes {
		if c.Change == what && c.Name == name && (detail == "" || detail == c.AccessKeyID || detail == c.Policy || detail == c.PolicyARN || detail == c.Group || detail == c.Tag) {
			return true
		}
	}
	return false
}

func user(d *iamapi.Declared, name string) *iamapi.DeclaredUser {
	for i := range d.Users {
		if d.Users[i].Name == name {
			return &d.Users[i]
		}
	}
	return nil
}

func TestReconcileCreatesAndIsIdempotent(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	changes := reconcile(t, st, base())
	for _, c := range []struct{ what, name, detail string }{
		{"policy created", "mp", ""}, {"group created", "analysts", ""}, {"user created", "ci", ""}, {"key created", "ci", key1},
		{"added to group", "ci", "analysts"}, {"tag set", "ci", "team"}, {"inline policy created", "ci", "creds"},
		{"policy attached", "etl", "arn:aws:iam::000000000000:policy/mp"}, {"role created", "etl", ""},
	} {
		if !hasChange(changes, c.what, c.name, c.detail) {
			t.Errorf("first reconcile: no %q for %s %s in %v", c.what, c.name, c.detail, changes)
		}
	}
	if k, err := st.AccessKey(ctx, key1); err != nil || k.Status != "Active" || k.Secret != secret1 || k.UserName != "ci" {
		t.Fatalf("declared key: %+v %v", k, err)
	}
	// Roles are reconciled twice in a run (trust bindings): the second
	// pass must not report what the first created as adopted.
	if hasChange(changes, "role adopted", "etl", "") {
		t.Fatalf("first reconcile reports the role it created as adopted: %v", changes)
	}
	if again := reconcile(t, st, base()); len(again) != 0 {
		t.Fatalf("second reconcile of the same state changed %v", again)
	}
}

// Finding 5: a declared key deactivated through the API stays Inactive
// across restarts unless the file says Active; status in the file wins.
func TestFinding5ReconcileKeepsDeactivatedKey(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	reconcile(t, st, base())
	before, _ := st.AccessKey(ctx, key1)
	if err := st.UpdateAccessKey(ctx, key1, "Inactive"); err != nil { // what UpdateAccessKey through the API does
		t.Fatal(err)
	}
	if changes := reconcile(t, st, base()); len(changes) != 0 {
		t.Errorf("restart changed %v", changes)
	}
	after, err := st.AccessKey(ctx, key1)
	if err != nil || after.Status != "Inactive" || !after.CreatedAt.Equal(before.CreatedAt) {
		t.Fatalf("after restart: %+v %v, want the same key still Inactive", after, err)
	}

	d := base()
	user(&d, "ci").AccessKeys[0].Status = "Active"
	if changes := reconcile(t, st, d); !hasChange(changes, "key activated", "ci", key1) || len(changes) != 1 {
		t.Errorf("status Active in the file: %v", changes)
	}
	user(&d, "ci").AccessKeys[1].Status = "Inactive"
	if changes := reconcile(t, st, d); !hasChange(changes, "key deactivated", "ci", key2) || len(changes) != 1 {
		t.Errorf("status Inactive in the file: %v", changes)
	}
	for id, want := range map[string]string{key1: "Active", key2: "Inactive"} {
		if k, err := st.AccessKey(ctx, id); err != nil || k.Status != want {
			t.Errorf("key %s: %+v %v, want %s", id, k, err, want)
		}
	}
	// A new key declared Inactive is created so.
	d.Users = append(d.Users, iamapi.DeclaredUser{Name: "fresh", AccessKeys: []iamapi.DeclaredKey{{ID: "AKIARECONCILEFRESH1", Secret: secret1, Status: "Inactive"}}})
	reconcile(t, st, d)
	if k, err := st.AccessKey(ctx, "AKIARECONCILEFRESH1"); err != nil || k.Status != "Inactive" {
		t.Errorf("new key declared Inactive: %+v %v", k, err)
	}
}

// Finding 5: a key removed from the file is removed from the store, and so
// is one added through the API to a declared user.
func TestFinding5ReconcileRemovesKey(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	reconcile(t, st, base())
	d := base()
	user(&d, "ci").AccessKeys = user(&d, "ci").AccessKeys[:1]
	changes := reconcile(t, st, d)
	if !hasChange(changes, "key deleted", "ci", key2) {
		t.Errorf("changes %v", changes)
	}
	if _, err := st.AccessKey(ctx, key2); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("key removed from the file: %v", err)
	}
	if err := st.CreateAccessKey(ctx, &shiftkey.AccessKey{ID: "AKIAVIATHEAPI000001", Secret: secret2, UserName: "ci", Status: "Active", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	reconcile(t, st, d)
	if keys, _ := st.AccessKeys(ctx, "ci"); len(keys) != 1 || keys[0].ID != key1 {
		t.Fatalf("keys of a declared user: %v, want only %s", keys, key1)
	}
}

// Finding 5: inline policies removed from the file are removed, for users,
// groups and roles; a changed document is replaced.
func TestFinding5ReconcileRemovesInlinePolicy(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	reconcile(t, st, base())
	d := base()
	user(&d, "ci").Policies = map[string]string{"creds": strings.Replace(allowDoc, "sts:GetCallerIdentity", "iam:GetUser", 1)}
	d.Groups[0].Policies = nil
	d.Roles[0].Policies = nil
	changes := reconcile(t, st, d)
	for _, c := range []struct{ what, name, policy string }{
		{"inline policy deleted", "ci", "more"}, {"inline policy updated", "ci", "creds"}, {"inline policy deleted", "analysts", "gp"}, {"inline policy deleted", "etl", "rp"},
	} {
		if !hasChange(changes, c.what, c.name, c.policy) {
			t.Errorf("no %q %s %s in %v", c.what, c.name, c.policy, changes)
		}
	}
	if ps, _ := st.InlinePolicies(ctx, shiftkey.KindUser, "ci"); len(ps) != 1 || !strings.Contains(ps[0].Document, "iam:GetUser") {
		t.Errorf("ci's inline policies: %v", ps)
	}
	for kind, name := range map[shiftkey.EntityKind]string{shiftkey.KindGroup: "analysts", shiftkey.KindRole: "etl"} {
		if ps, _ := st.InlinePolicies(ctx, kind, name); len(ps) != 0 {
			t.Errorf("%s %s inline policies: %v", kind, name, ps)
		}
	}
}

// Finding 5: managed-policy attachments removed from the file are detached,
// including one attached through the API to a declared identity.
func TestFinding5ReconcileRemovesAttachment(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	reconcile(t, st, base())
	spare := "arn:aws:iam::000000000000:policy/spare"
	if err := st.AttachPolicy(ctx, shiftkey.KindRole, "etl", spare); err != nil {
		t.Fatal(err)
	}
	d := base()
	user(&d, "ci").ManagedPolicies = nil
	d.Groups[0].ManagedPolicies = nil
	d.Roles[0].ManagedPolicies = []string{"spare"}
	changes := reconcile(t, st, d)
	mp := "arn:aws:iam::000000000000:policy/mp"
	for _, c := range []struct{ what, name, arn string }{{"policy detached", "ci", mp}, {"policy detached", "analysts", mp}, {"policy detached", "etl", mp}} {
		if !hasChange(changes, c.what, c.name, c.arn) {
			t.Errorf("no %q %s %s in %v", c.what, c.name, c.arn, changes)
		}
	}
	for kind, name := range map[shiftkey.EntityKind]string{shiftkey.KindUser: "ci", shiftkey.KindGroup: "analysts"} {
		if ps, _ := st.AttachedPolicies(ctx, kind, name); len(ps) != 0 {
			t.Errorf("%s %s attachments: %v", kind, name, ps)
		}
	}
	if ps, _ := st.AttachedPolicies(ctx, shiftkey.KindRole, "etl"); len(ps) != 1 || ps[0].ARN != spare {
		t.Errorf("etl's attachments: %v, want only spare", ps)
	}
}

// Finding 5: a group membership removed from the file is removed; a tag too.
func TestFinding5ReconcileRemovesMembershipAndTags(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	reconcile(t, st, base())
	if err := st.TagEntity(ctx, shiftkey.KindUser, "ci", []shiftkey.Tag{{Key: "viaapi", Value: "x"}}); err != nil {
		t.Fatal(err)
	}
	d := base()
	user(&d, "ci").Groups = nil
	user(&d, "ci").Tags = map[string]string{"team": "platform"}
	changes := reconcile(t, st, d)
	for _, c := range []struct{ what, detail string }{{"removed from group", "analysts"}, {"tag removed", "tier"}, {"tag removed", "viaapi"}, {"tag set", "team"}} {
		if !hasChange(changes, c.what, "ci", c.detail) {
			t.Errorf("no %q %s in %v", c.what, c.detail, changes)
		}
	}
	if gs, _ := st.GroupsForUser(ctx, "ci"); len(gs) != 0 {
		t.Errorf("ci's groups: %v", gs)
	}
	if members, _ := st.GroupMembers(ctx, "analysts"); len(members) != 1 || members[0] != "gone" {
		t.Errorf("analysts: %v, want only gone", members)
	}
	if tags, _ := st.Tags(ctx, shiftkey.KindUser, "ci"); len(tags) != 1 || tags[0] != (shiftkey.Tag{Key: "team", Value: "platform"}) {
		t.Errorf("ci's tags: %v", tags)
	}
}

// Finding 5: identities removed from the file are deleted with what hangs
// off them; a removed managed policy is deleted unless an identity the file
// does not declare still has it attached.
func TestFinding5ReconcileRemovesIdentities(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	reconcile(t, st, base())
	// An API-created user has "spare" attached: it must stay.
	if err := st.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "bob", ID: shiftkey.NewID("AIDA"), Path: "/", ARN: "arn:aws:iam::000000000000:user/bob", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := st.AttachPolicy(ctx, shiftkey.KindUser, "bob", "arn:aws:iam::000000000000:policy/spare"); err != nil {
		t.Fatal(err)
	}
	d := base()
	d.Users = d.Users[:1] // gone removed
	d.Users[0].Groups = nil
	d.Groups, d.Roles = nil, nil
	d.Users[0].ManagedPolicies = nil
	d.Policies = nil
	changes := reconcile(t, st, d)
	for _, c := range []struct{ what, name string }{{"user deleted", "gone"}, {"group deleted", "analysts"}, {"role deleted", "etl"}, {"policy deleted", "mp"}} {
		if !hasChange(changes, c.what, c.name, "") {
			t.Errorf("no %q %s in %v", c.what, c.name, changes)
		}
	}
	var warned bool
	for _, c := range changes {
		warned = warned || c.Warning && c.Name == "spare"
	}
	if !warned {
		t.Errorf("no warning for spare, still attached to bob: %v", changes)
	}
	for kind, name := range map[shiftkey.EntityKind]string{shiftkey.KindUser: "gone", shiftkey.KindGroup: "analysts", shiftkey.KindRole: "etl"} {
		if _, err := st.Entity(ctx, kind, name); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
			t.Errorf("%s %s: %v, want NoSuchEntity", kind, name, err)
		}
	}
	if _, err := st.AccessKey(ctx, goneKey); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Errorf("removed user's key: %v", err)
	}
	if _, err := st.ManagedPolicy(ctx, "arn:aws:iam::000000000000:policy/mp"); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Errorf("removed policy mp: %v", err)
	}
	if _, err := st.ManagedPolicy(ctx, "arn:aws:iam::000000000000:policy/spare"); err != nil {
		t.Errorf("spare, attached to bob: %v", err)
	}
	// Once bob lets go of it, the next start deletes it.
	if err := st.DetachPolicy(ctx, shiftkey.KindUser, "bob", "arn:aws:iam::000000000000:policy/spare"); err != nil {
		t.Fatal(err)
	}
	if changes := reconcile(t, st, d); !hasChange(changes, "policy deleted", "spare", "") || len(changes) != 1 {
		t.Errorf("after detaching: %v", changes)
	}
	if again := reconcile(t, st, d); len(again) != 0 {
		t.Errorf("third reconcile: %v", again)
	}
}

// Identities created through the API are left alone, also when one takes
// the name of a declared identity deleted through the API.
func TestReconcileLeavesAPIIdentitiesAlone(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	reconcile(t, st, base())
	mk := func(name string) {
		t.Helper()
		if err := st.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: name, ID: shiftkey.NewID("AIDA"), Path: "/", ARN: "arn:aws:iam::000000000000:user/" + name, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateAccessKey(ctx, &shiftkey.AccessKey{ID: "AKIAAPI" + strings.ToUpper(name) + "000001", Secret: secret2, UserName: name, Status: "Inactive", CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := st.PutInlinePolicy(ctx, shiftkey.KindUser, name, shiftkey.PolicyDocument{Name: "own", Document: allowDoc}); err != nil {
			t.Fatal(err)
		}
		if err := st.AttachPolicy(ctx, shiftkey.KindUser, name, "arn:aws:iam::000000000000:policy/mp"); err != nil {
			t.Fatal(err)
		}
		if err := st.AddUserToGroup(ctx, "analysts", name); err != nil {
			t.Fatal(err)
		}
		if err := st.TagEntity(ctx, shiftkey.KindUser, name, []shiftkey.Tag{{Key: "k", Value: "v"}}); err != nil {
			t.Fatal(err)
		}
	}
	mk("bob")
	// gone is deleted through the API and a user of that name recreated.
	if err := st.DeleteEntity(ctx, shiftkey.KindUser, "gone"); err != nil {
		t.Fatal(err)
	}
	mk("gone")
	d := base()
	d.Users = d.Users[:1]
	if changes := reconcile(t, st, d); len(changes) != 0 {
		t.Errorf("reconcile touched API identities: %v", changes)
	}
	for _, name := range []string{"bob", "gone"} {
		keys, _ := st.AccessKeys(ctx, name)
		inline, _ := st.InlinePolicies(ctx, shiftkey.KindUser, name)
		attached, _ := st.AttachedPolicies(ctx, shiftkey.KindUser, name)
		groups, _ := st.GroupsForUser(ctx, name)
		tags, _ := st.Tags(ctx, shiftkey.KindUser, name)
		if len(keys) != 1 || keys[0].Status != "Inactive" || len(inline) != 1 || len(attached) != 1 || len(groups) != 1 || len(tags) != 1 {
			t.Errorf("API user %s after reconcile: keys %v inline %v attached %v groups %v tags %v", name, keys, inline, attached, groups, tags)
		}
	}
}

// A user declared with the name of one created through the API is adopted:
// from then on the file is authoritative for it.
func TestReconcileAdoptsExistingIdentity(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	if err := st.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "CI", ID: "AIDAADOPTED0000001", Path: "/", ARN: "arn:aws:iam::000000000000:user/CI", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutInlinePolicy(ctx, shiftkey.KindUser, "CI", shiftkey.PolicyDocument{Name: "old", Document: allowDoc}); err != nil {
		t.Fatal(err)
	}
	changes := reconcile(t, st, base())
	if !hasChange(changes, "user adopted", "CI", "") || !hasChange(changes, "inline policy deleted", "CI", "old") {
		t.Errorf("changes %v", changes)
	}
	if e, err := st.Entity(ctx, shiftkey.KindUser, "ci"); err != nil || e.ID != "AIDAADOPTED0000001" {
		t.Errorf("adopted user: %+v %v", e, err)
	}
}

// A secret changed in the file takes effect; the key keeps its status.
func TestReconcileChangedSecret(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	reconcile(t, st, base())
	if err := st.UpdateAccessKey(ctx, key1, "Inactive"); err != nil {
		t.Fatal(err)
	}
	d := base()
	user(&d, "ci").AccessKeys[0].Secret = "reconcile-secret-rotated"
	changes := reconcile(t, st, d)
	if !hasChange(changes, "key secret replaced", "ci", key1) || len(changes) != 1 {
		t.Errorf("changes %v", changes)
	}
	if k, err := st.AccessKey(ctx, key1); err != nil || k.Secret != "reconcile-secret-rotated" || k.Status != "Inactive" {
		t.Errorf("rotated key: %+v %v", k, err)
	}
}

// A key moved in the file from one declared user to another (both at the
// quota) moves.
func TestReconcileKeyMovesBetweenUsers(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	d := base()
	d.Users = append(d.Users, iamapi.DeclaredUser{Name: "ops", AccessKeys: []iamapi.DeclaredKey{{ID: "AKIARECONCILEOPS001", Secret: secret1}, {ID: "AKIARECONCILEOPS002", Secret: secret1}}})
	reconcile(t, st, d)
	ci, ops := user(&d, "ci"), user(&d, "ops")
	ci.AccessKeys[1], ops.AccessKeys[1] = ops.AccessKeys[1], ci.AccessKeys[1]
	reconcile(t, st, d)
	for id, owner := range map[string]string{key2: "ops", "AKIARECONCILEOPS002": "ci"} {
		if k, err := st.AccessKey(ctx, id); err != nil || k.UserName != owner {
			t.Errorf("key %s: %+v %v, want owner %s", id, k, err, owner)
		}
	}
}

// A changed trust policy updates the role under its id with its policies;
// a key owned by an identity the file does not declare is an error.
func TestReconcileRoleUpdateAndForeignKey(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	reconcile(t, st, base())
	before, _ := st.Entity(ctx, shiftkey.KindRole, "etl")
	d := base()
	d.Roles[0].TrustPolicy = strings.Replace(trustDoc, "user/ci", "root", 1)
	d.Roles[0].MaxSessionDuration = 7200
	if changes := reconcile(t, st, d); !hasChange(changes, "role updated", "etl", "") || len(changes) != 1 {
		t.Errorf("changes %v", changes)
	}
	after, err := st.Entity(ctx, shiftkey.KindRole, "etl")
	if err != nil || after.ID != before.ID || after.MaxSessionDuration != 7200 || !strings.Contains(after.AssumeRolePolicy, "root") {
		t.Errorf("updated role: %+v %v", after, err)
	}
	if ps, _ := st.InlinePolicies(ctx, shiftkey.KindRole, "etl"); len(ps) != 1 {
		t.Errorf("role policies after update: %v", ps)
	}

	if err := st.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "bob", ID: shiftkey.NewID("AIDA"), Path: "/", ARN: "arn:aws:iam::000000000000:user/bob", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAccessKey(ctx, &shiftkey.AccessKey{ID: "AKIABOBSKEY00000001", Secret: secret1, UserName: "bob", Status: "Active", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	user(&d, "gone").AccessKeys = []iamapi.DeclaredKey{{ID: "AKIABOBSKEY00000001", Secret: secret1}}
	if _, err := iamapi.Reconcile(ctx, st, d); err == nil || !strings.Contains(err.Error(), "belongs to bob") {
		t.Errorf("a key of an API-created user declared for another: %v", err)
	}
	if k, _ := st.AccessKey(ctx, "AKIABOBSKEY00000001"); k == nil || k.UserName != "bob" {
		t.Errorf("bob's key: %+v", k)
	}
}

// The log has a line per change with the identity under its kind, a
// summary, warnings at warn level, and never a secret.
func TestReconcileChangesLog(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	d := base()
	user(&d, "ci").AccessKeys[0].Status = "Inactive"
	changes := reconcile(t, st, d)
	changes = append(changes, iamapi.Change{Change: "policy kept: test", Kind: shiftkey.KindPolicy, Name: "p", PolicyARN: "arn:p", Warning: true})
	var buf bytes.Buffer
	changes.Log(ctx, slog.New(slog.NewJSONHandler(&buf, nil)))
	if strings.Contains(buf.String(), secret1) || strings.Contains(buf.String(), secret2) {
		t.Fatal("a secret in the log")
	}
	var keyLine, summary, warn bool
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		switch {
		case r["msg"] == "declared state applied" && r["change"] == "key created" && r["user"] == "ci" && r["access_key_id"] == key1:
			keyLine = r["level"] == "INFO" && r["status"] == "Inactive"
		case r["msg"] == "declared state reconciled":
			summary = r["changes"] == float64(len(changes)-1) && r["warnings"] == float64(1)
		case r["msg"] == "declared state left in place":
			warn = r["level"] == "WARN" && r["policy"] == "p" && r["policy_arn"] == "arn:p"
		}
	}
	if !keyLine || !summary || !warn {
		t.Errorf("key line %v, summary %v, warning %v in:\n%s", keyLine, summary, warn, buf.String())
	}
}

// A declared role's trust policy names the declared entities as they are
// now: a user removed from the configuration and declared again (a new
// id) is trusted again after the reload, as is a role declared after the
// role that names it. (A reconcile binds whatever entity holds a name
// then, declared or not: see the stop note of 2026-12-06.)
func TestReconcileBindsTrustPrincipals(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	d := base()
	d.Roles = append([]iamapi.DeclaredRole{{Name: "first", TrustPolicy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
		"Principal":{"AWS":["arn:aws:iam::000000000000:user/ci","arn:aws:iam::000000000000:role/etl"]},"Action":"sts:AssumeRole"}]}`},
		{Name: "selfish", TrustPolicy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
		"Principal":{"AWS":"arn:aws:iam::000000000000:role/selfish"},"Action":"sts:AssumeRole"}]}`}}, d.Roles...)
	bindings := func(role string) map[string]string {
		t.Helper()
		e, err := st.Entity(ctx, shiftkey.KindRole, role)
		if err != nil {
			t.Fatal(err)
		}
		var ids map[string]string
		if err := json.Unmarshal([]byte(e.TrustPrincipalIDs), &ids); err != nil {
			t.Fatalf("role %s: TrustPrincipalIDs %q: %v", role, e.TrustPrincipalIDs, err)
		}
		return ids
	}
	id := func(kind shiftkey.EntityKind, name string) string {
		t.Helper()
		e, err := st.Entity(ctx, kind, name)
		if err != nil {
			t.Fatal(err)
		}
		return e.ID
	}
	reconcile(t, st, d)
	ci, etl := "arn:aws:iam::000000000000:user/ci", "arn:aws:iam::000000000000:role/etl"
	if b := bindings("first"); b[ci] != id(shiftkey.KindUser, "ci") || b[etl] != id(shiftkey.KindRole, "etl") {
		t.Fatalf("first binds %v, want ci and etl (declared after it)", b)
	}
	selfish := "arn:aws:iam::000000000000:role/selfish"
	if b := bindings("selfish"); b[selfish] != id(shiftkey.KindRole, "selfish") {
		t.Fatalf("selfish binds %v, want itself (%s)", b, id(shiftkey.KindRole, "selfish"))
	}
	if again := reconcile(t, st, d); len(again) != 0 {
		t.Fatalf("a second reconcile of the same roles changed %v", again)
	}
	oldCI := id(shiftkey.KindUser, "ci")

	without := base()
	without.Users = without.Users[1:]
	without.Roles = d.Roles
	reconcile(t, st, without)
	reconcile(t, st, d)
	if newCI := id(shiftkey.KindUser, "ci"); newCI == oldCI || bindings("first")[ci] != newCI || bindings("etl")[ci] != newCI {
		t.Fatalf("after ci was declared again (%s, before %s): first binds %v, etl %v", newCI, oldCI, bindings("first"), bindings("etl"))
	}
}

// A declared trust policy binds the principals it names when it is saved,
// as AWS does. A reload that leaves the policy as it is saves nothing: a
// principal outside the file that named no one keeps naming no one, and
// one bound to a user keeps that user, when an API caller later creates a
// user of that name or recreates it. Editing the policy in the file saves
// it again, binding whoever holds the names then.
func TestReconcileKeepsUndeclaredTrustBindings(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	bob, carol := "arn:aws:iam::000000000000:user/bob", "arn:aws:iam::000000000000:user/carol"
	policy := func(extra string) string {
		return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["` + bob + `","` + carol +
			`","arn:aws:iam::000000000000:user/ci"]},"Action":"sts:AssumeRole"` + extra + `}]}`
	}
	bindings := func() map[string]string {
		t.Helper()
		e, err := st.Entity(ctx, shiftkey.KindRole, "bridge")
		if err != nil {
			t.Fatal(err)
		}
		var ids map[string]string
		if err := json.Unmarshal([]byte(e.TrustPrincipalIDs), &ids); err != nil {
			t.Fatalf("TrustPrincipalIDs %q: %v", e.TrustPrincipalIDs, err)
		}
		return ids
	}
	create := func(name string) string {
		t.Helper()
		id := shiftkey.NewID("AIDA")
		if err := st.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: name, ID: id, Path: "/",
			ARN: "arn:aws:iam::000000000000:user/" + name, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	carol1 := create("carol")
	d := base()
	d.Roles = append(d.Roles, iamapi.DeclaredRole{Name: "bridge", TrustPolicy: policy("")})
	reconcile(t, st, d)
	if b := bindings(); b[carol] != carol1 || b[bob] != "" || b["arn:aws:iam::000000000000:user/ci"] == "" {
		t.Fatalf("first save binds %v, want carol %s, ci, and no bob", b, carol1)
	}

	bob1 := create("bob")
	if err := st.DeleteEntity(ctx, shiftkey.KindUser, "carol"); err != nil {
		t.Fatal(err)
	}
	carol2 := create("carol")
	if changes := reconcile(t, st, d); len(changes) != 0 {
		t.Fatalf("a reload of the same file changed %v", changes)
	}
	if b := bindings(); b[carol] != carol1 || b[bob] != "" {
		t.Fatalf("after bob was created and carol recreated (%s), a reload binds %v, want carol %s and no bob", carol2, b, carol1)
	}

	// The declared user ci is the file's: recreated by it, it is bound again.
	oldCI := bindings()["arn:aws:iam::000000000000:user/ci"]
	without := base()
	without.Users = without.Users[1:]
	without.Roles = d.Roles
	reconcile(t, st, without)
	reconcile(t, st, d)
	if b := bindings(); b["arn:aws:iam::000000000000:user/ci"] == oldCI || b[carol] != carol1 || b[bob] != "" {
		t.Fatalf("after ci was declared again: %v, want a new ci, carol %s and no bob", b, carol1)
	}

	d.Roles[len(d.Roles)-1].TrustPolicy = policy(`,"Condition":{"Bool":{"aws:SecureTransport":"true"}}`)
	reconcile(t, st, d)
	if b := bindings(); b[carol] != carol2 || b[bob] != bob1 {
		t.Fatalf("an edited policy binds %v, want carol %s and bob %s", b, carol2, bob1)
	}
}

// deleteSpy fails the test when a role is deleted.
type deleteSpy struct {
	*sqlite.DB
	t *testing.T
}

func (s deleteSpy) DeleteEntity(ctx context.Context, kind shiftkey.EntityKind, name string) error {
	if kind == shiftkey.KindRole {
		s.t.Errorf("role %s deleted: while it is gone and recreated, its policies come back one at a time (an Allow before a Deny)", name)
	}
	return s.DB.DeleteEntity(ctx, kind, name)
}

// A reload that changes a declared role's trust policy or session limit
// updates the role in one write, keeping its id, policies and tags, and
// never deletes and recreates it: between the steps a request could find
// an Allow back and a Deny not yet.
func TestReconcileUpdatesARoleInPlace(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	d := base()
	d.Roles[0].Policies["deny"] = `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"sts:GetCallerIdentity","Resource":"*"}]}`
	reconcile(t, st, d)
	before, err := st.Entity(ctx, shiftkey.KindRole, "etl")
	if err != nil {
		t.Fatal(err)
	}
	d.Roles[0].TrustPolicy = strings.Replace(trustDoc, `"Action":"sts:AssumeRole"`, `"Action":["sts:AssumeRole","sts:TagSession"]`, 1)
	d.Roles[0].MaxSessionDuration = 7200
	changes := reconcile(t, deleteSpy{st, t}, d)
	if !hasChange(changes, "role updated", "etl", "") {
		t.Fatalf("changes %v, want the role updated", changes)
	}
	after, err := st.Entity(ctx, shiftkey.KindRole, "etl")
	if err != nil {
		t.Fatal(err)
	}
	if after.ID != before.ID || after.AssumeRolePolicy != d.Roles[0].TrustPolicy || after.MaxSessionDuration != 7200 || after.TrustPrincipalIDs == "" {
		t.Fatalf("role after the update: %+v (before %+v)", after, before)
	}
	if inline, _ := st.InlinePolicies(ctx, shiftkey.KindRole, "etl"); len(inline) != 2 {
		t.Fatalf("inline policies after the update: %v", inline)
	}
	if tags, _ := st.Tags(ctx, shiftkey.KindRole, "etl"); len(tags) != 1 {
		t.Fatalf("tags after the update: %v", tags)
	}
	if again := reconcile(t, deleteSpy{st, t}, d); len(again) != 0 {
		t.Fatalf("a second reconcile changed %v", again)
	}
}

// markSpy counts the declared marks written.
type markSpy struct {
	*sqlite.DB
	marks *int
}

func (s markSpy) MarkDeclared(ctx context.Context, ref shiftkey.DeclaredRef) error {
	*s.marks++
	return s.DB.MarkDeclared(ctx, ref)
}

// A reload whose file changed nothing writes nothing: serve holds its API
// calls off while a reload applies identities, and a mark rewritten per
// identity (one commit each) made every SIGHUP, a log rotation's too,
// hold them for as long as the file has identities.
func TestReconcileThatChangesNothingWritesNoMarks(t *testing.T) {
	st := newStore(t)
	reconcile(t, st, base())
	var marks int
	if changes := reconcile(t, markSpy{st, &marks}, base()); len(changes) != 0 || marks != 0 {
		t.Fatalf("second reconcile of the same file: %d marks written, changes %v; want none", marks, changes)
	}
	// What the file adds is still marked.
	d := base()
	d.Policies = append(d.Policies, iamapi.DeclaredPolicy{Name: "extra", Document: allowDoc})
	d.Groups = append(d.Groups, iamapi.DeclaredGroup{Name: "extras"})
	reconcile(t, markSpy{st, &marks}, d)
	if marks != 2 {
		t.Fatalf("a policy and a group added: %d marks written, want 2", marks)
	}
}

// A declared key deleted through the IAM API (a responder stopping a leaked
// key) does not come back working at the next start or reload (a log
// rotation's SIGHUP): it is recreated Inactive, as one deactivated through
// the API stays Inactive, unless the file says status: Active. A key the
// file adds, or moves between users, is created Active as before.
func TestReconcileKeepsAnAPIDeletedKeyStopped(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	reconcile(t, st, base())
	if err := st.DeleteAccessKey(ctx, key1); err != nil { // what DeleteAccessKey through the API does
		t.Fatal(err)
	}
	changes := reconcile(t, st, base())
	if k, err := st.AccessKey(ctx, key1); err != nil || k.Status != "Inactive" {
		t.Fatalf("a declared key deleted through the API, after a reload: %+v %v, want it Inactive", k, err)
	}
	if !hasChange(changes, "key recreated Inactive: deleted through the IAM API", "ci", key1) || len(changes) != 1 {
		t.Errorf("changes %v", changes)
	}
	if again := reconcile(t, st, base()); len(again) != 0 {
		t.Errorf("the next reload changed %v", again)
	}
	d := base()
	user(&d, "ci").AccessKeys[0].Status = "Active"
	if changes := reconcile(t, st, d); !hasChange(changes, "key activated", "ci", key1) {
		t.Errorf("status Active in the file: %v", changes)
	}

	// Keys new to the file, and keys the file moves, are not taken for
	// deleted ones.
	d = base()
	d.Users = append(d.Users, iamapi.DeclaredUser{Name: "ops", AccessKeys: []iamapi.DeclaredKey{{ID: "AKIARECONCILEOPS001", Secret: secret1}}})
	reconcile(t, st, d)
	user(&d, "ops").AccessKeys = append(user(&d, "ops").AccessKeys, user(&d, "ci").AccessKeys[1])
	user(&d, "ci").AccessKeys = user(&d, "ci").AccessKeys[:1]
	reconcile(t, st, d)
	for id, owner := range map[string]string{"AKIARECONCILEOPS001": "ops", key2: "ops"} {
		if k, err := st.AccessKey(ctx, id); err != nil || k.UserName != owner || k.Status != "Active" {
			t.Errorf("key %s: %+v %v, want %s's, Active", id, k, err, owner)
		}
	}
	// One removed from the file and declared again later is new again.
	d = base()
	user(&d, "gone").AccessKeys = nil
	reconcile(t, st, d)
	reconcile(t, st, base())
	if k, err := st.AccessKey(ctx, goneKey); err != nil || k.Status != "Active" {
		t.Errorf("a key declared again: %+v %v, want Active", k, err)
	}
}

// A user renamed in the file (the old name removed, the new one declaring
// the same key) is a user deleted by the reconciler and one created: its
// key goes with the old user and is created again for the new one, Active
// as a new key is. It is not a declared key "deleted through the IAM API",
// which stays stopped: the rehearsal of issue 17 renamed alice to carol in
// serve's config and SIGHUP left her key Inactive, every call refused with
// InvalidClientTokenId on both replicas.
func TestReconcileKeyOfAUserRenamedInTheFileStaysActive(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	reconcile(t, st, base())
	d := base()
	user(&d, "gone").Name = "renamed"
	changes := reconcile(t, st, d)
	if k, err := st.AccessKey(ctx, goneKey); err != nil || k.UserName != "renamed" || k.Status != "Active" {
		t.Fatalf("the key of a user renamed in the file: %+v %v, want renamed's, Active (changes %v)", k, err, changes)
	}
	if !hasChange(changes, "key created", "renamed", goneKey) {
		t.Errorf("changes %v, want the key created for renamed", changes)
	}
}

// The file is authoritative for a declared policy's versions too: versions
// created through the API (CreatePolicyVersion, default or not) are
// dropped at the next start or reload, the file's document the default
// version's, under the default's id (as a config edit has always replaced
// v1's document in place). A reload after that changes nothing.
func TestReconcileDropsAPIPolicyVersions(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	reconcile(t, st, base())
	const arn = "arn:aws:iam::000000000000:policy/mp"
	other := strings.Replace(allowDoc, "sts:GetCallerIdentity", "iam:*", 1)
	versions := func() string {
		t.Helper()
		vs, err := st.PolicyVersions(ctx, arn)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, v := range vs {
			x := v.ID
			if v.IsDefault {
				x += "*"
			}
			if v.Document == allowDoc {
				x += "=file"
			}
			out = append(out, x)
		}
		return strings.Join(out, " ")
	}
	for _, setDefault := range []bool{false, true} {
		if err := st.CreatePolicyVersion(ctx, arn, &shiftkey.PolicyVersion{Document: other, IsDefault: setDefault, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if got := versions(); got != "v3* v2 v1=file" {
		t.Fatalf("premise: versions %s", got)
	}
	changes := reconcile(t, st, base())
	if !hasChange(changes, "policy updated", "mp", arn) {
		t.Fatalf("reload after API versions: changes %v, want the policy updated", changes)
	}
	if got := versions(); got != "v3*=file" {
		t.Fatalf("versions after the reload: %s, want the default alone, with the file's document", got)
	}
	if m, err := st.ManagedPolicy(ctx, arn); err != nil || m.Document != allowDoc {
		t.Fatalf("policy after the reload: %+v %v", m, err)
	}
	// A version not made default, the default's document the file's:
	// still dropped.
	if err := st.CreatePolicyVersion(ctx, arn, &shiftkey.PolicyVersion{Document: other, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if changes := reconcile(t, st, base()); !hasChange(changes, "policy updated", "mp", arn) || versions() != "v3*=file" {
		t.Fatalf("reload after a version not made default: changes %v, versions %s; want it dropped", changes, versions())
	}
	if again := reconcile(t, st, base()); len(again) != 0 {
		t.Fatalf("a reload of the same state changed %v", again)
	}
}

// The file is authoritative for a declared policy's tags, as for a
// declared user's or role's: the file declares none for policies, so tags
// set through the API (TagPolicy, or a CreatePolicy that the file then
// adopted) go at the next start or reload, each one logged. A reload
// after that changes nothing.
func TestReconcileDropsAPIPolicyTags(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	reconcile(t, st, base())
	const arn = "arn:aws:iam::000000000000:policy/mp"
	if err := st.TagEntity(ctx, shiftkey.KindPolicy, arn, []shiftkey.Tag{{Key: "ManagedBy", Value: "terraform"}}); err != nil {
		t.Fatal(err)
	}
	changes := reconcile(t, st, base())
	if !hasChange(changes, "tag removed", "mp", "ManagedBy") {
		t.Fatalf("reload after TagPolicy: changes %v, want the tag removed", changes)
	}
	if tags, err := st.Tags(ctx, shiftkey.KindPolicy, arn); err != nil || len(tags) != 0 {
		t.Fatalf("declared policy's tags after the reload: %v %v", tags, err)
	}
	if again := reconcile(t, st, base()); len(again) != 0 {
		t.Fatalf("a reload of the same state changed %v", again)
	}
}

// A declared user or group renamed or moved through the IAM API
// (UpdateUser, UpdateGroup) is the file's again at the next start or
// reload, as a declared role's settings changed through UpdateRole are:
// the same entity (its id, keys, memberships, policies) under the declared
// name and path. Not the reload failing on the declared key the renamed
// user holds, nor a second user made under the declared name.
func TestReconcileUndoesAPIRenames(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	reconcile(t, st, base())
	ci, err := st.Entity(ctx, shiftkey.KindUser, "ci")
	if err != nil {
		t.Fatal(err)
	}
	analysts, err := st.Entity(ctx, shiftkey.KindGroup, "analysts")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.RenameEntity(ctx, shiftkey.KindUser, &shiftkey.Entity{Name: "ci"}, &shiftkey.Entity{Name: "ci-renamed", Path: "/moved/", ARN: "arn:aws:iam::000000000000:user/moved/ci-renamed"}); err != nil {
		t.Fatal(err)
	}
	if err := st.RenameEntity(ctx, shiftkey.KindGroup, &shiftkey.Entity{Name: "analysts"}, &shiftkey.Entity{Name: "analysts", Path: "/moved/", ARN: "arn:aws:iam::000000000000:group/moved/analysts"}); err != nil {
		t.Fatal(err)
	}

	changes := reconcile(t, st, base())
	if !hasChange(changes, "user renamed", "ci", "") || !hasChange(changes, "group renamed", "analysts", "") {
		t.Errorf("changes %v, want ci renamed and analysts moved back", changes)
	}
	for _, c := range []struct {
		kind     shiftkey.EntityKind
		name, id string
	}{{shiftkey.KindUser, "ci", ci.ID}, {shiftkey.KindGroup, "analysts", analysts.ID}} {
		got, err := st.Entity(ctx, c.kind, c.name)
		if err != nil || got.ID != c.id || got.Name != c.name || got.Path != "/" || got.ARN != "arn:aws:iam::000000000000:"+string(c.kind)+"/"+c.name {
			t.Fatalf("%s %s after the reload: %+v %v; want id %s under the declared name and path", c.kind, c.name, got, err, c.id)
		}
	}
	if _, err := st.Entity(ctx, shiftkey.KindUser, "ci-renamed"); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("ci-renamed after the reload: %v", err)
	}
	if k, err := st.AccessKey(ctx, key1); err != nil || k.UserName != "ci" || k.Status != "Active" {
		t.Fatalf("ci's key after the reload: %+v %v", k, err)
	}
	if gs, _ := st.GroupsForUser(ctx, "ci"); len(gs) != 1 || gs[0].ID != analysts.ID {
		t.Fatalf("ci's groups after the reload: %+v", gs)
	}
	if again := reconcile(t, st, base()); len(again) != 0 {
		t.Fatalf("a second reconcile changed %v", again)
	}

	// A file that now declares the name the API gave keeps the entity.
	if err := st.RenameEntity(ctx, shiftkey.KindUser, &shiftkey.Entity{Name: "ci"}, &shiftkey.Entity{Name: "ci2", Path: "/", ARN: "arn:aws:iam::000000000000:user/ci2"}); err != nil {
		t.Fatal(err)
	}
	d := base()
	user(&d, "ci").Name = "ci2"
	reconcile(t, st, d)
	if got, err := st.Entity(ctx, shiftkey.KindUser, "ci2"); err != nil || got.ID != ci.ID {
		t.Fatalf("ci2, declared under the API's name: %+v %v; want ci's id %s", got, err, ci.ID)
	}
}

// A declared user renamed through the IAM API whose declared name another
// user then took (CreateUser under it) cannot get its name back. The
// reconcile deleted the declared user as no longer declared (its keys,
// memberships and policies with it), adopted the other user in its place
// and gave it the file's policies, groups and trust (the declared role
// now trusting its id), the file's keys coming back Inactive as if
// deleted through the API: two API calls (UpdateUser, CreateUser) turned
// a working declared identity into another one. Now the reconcile stops
// on that conflict, naming both, and changes neither.
func TestReconcileRefusesARenamedUsersTakenName(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	reconcile(t, st, base())
	ci, err := st.Entity(ctx, shiftkey.KindUser, "ci")
	if err != nil {
		t.Fatal(err)
	}
	etl, err := st.Entity(ctx, shiftkey.KindRole, "etl")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.RenameEntity(ctx, shiftkey.KindUser, ci, &shiftkey.Entity{Name: "ci-renamed", Path: "/", ARN: "arn:aws:iam::000000000000:user/ci-renamed"}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "ci", ID: "AIDAOTHER", Path: "/", ARN: "arn:aws:iam::000000000000:user/ci", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}

	changes, err := iamapi.Reconcile(ctx, st, base())
	if err == nil || !strings.Contains(err.Error(), "ci-renamed") || !strings.Contains(err.Error(), "AIDAOTHER") {
		t.Errorf("Reconcile with the declared ci renamed ci-renamed and ci another user's: %v (changes %v), want an error naming both", err, changes)
	}
	if got, err := st.Entity(ctx, shiftkey.KindUser, "ci-renamed"); err != nil || got.ID != ci.ID {
		t.Fatalf("the declared ci (renamed ci-renamed) after the reconcile: %+v %v; want it kept (id %s)", got, err, ci.ID)
	}
	if k, err := st.AccessKey(ctx, key1); err != nil || k.UserName != "ci-renamed" || k.Status != "Active" {
		t.Fatalf("the declared ci's key after the reconcile: %+v %v; want it ci-renamed's, Active", k, err)
	}
	if ps, _ := st.InlinePolicies(ctx, shiftkey.KindUser, "ci"); len(ps) != 0 {
		t.Fatalf("the other user ci got the file's policies: %v", ps)
	}
	if r, _ := st.Entity(ctx, shiftkey.KindRole, "etl"); r == nil || r.TrustPrincipalIDs != etl.TrustPrincipalIDs {
		t.Fatalf("etl's trust bindings after the reconcile: %+v, want %s", r, etl.TrustPrincipalIDs)
	}
}
