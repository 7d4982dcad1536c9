package audit

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
)

// incidentLog writes, through Log, the records of a leaked key's use: the
// key's creation, a credential it got, an AssumeRole session it started
// (and one that session chained) with credentials of their own, a login
// with the session's credential, a wrong password from another address,
// another user's credential, the key's deactivation and the revocation.
// Event ids name the records.
func incidentLog(t *testing.T) (string, map[string]string) {
	t.Helper()
	path := t.TempDir() + "/audit.log"
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	user := &shiftkey.Principal{ARN: "arn:aws:iam::123456789012:user/victim", Account: "123456789012", UserName: "victim", AccessKey: "AKIALEAKED"}
	session := func(key, name string) *shiftkey.Principal {
		return &shiftkey.Principal{Type: shiftkey.PrincipalAssumedRole, ARN: "arn:aws:sts::123456789012:assumed-role/Pivot/" + name, Account: "123456789012",
			AccessKey: key, RoleARN: "arn:aws:iam::123456789012:role/Pivot", RoleName: "Pivot"}
	}
	admin := &shiftkey.Principal{ARN: "arn:aws:iam::123456789012:user/admin", Account: "123456789012", UserName: "admin", AccessKey: "AKIAADMIN"}
	other := &shiftkey.Principal{ARN: "arn:aws:iam::123456789012:user/other", Account: "123456789012", UserName: "other", AccessKey: "AKIAOTHER"}
	names := map[string]string{}
	call := func(name string, s int, p *shiftkey.Principal, service, op string, form url.Values, result any, cred string) {
		r := apiRecord(&shiftkey.APICall{Time: at(s), Service: service, Operation: op, Principal: p, AccessKeyID: p.AccessKey,
			SourceIP: "198.51.100.7", Form: form, Result: result, CredentialID: cred}, "us-east-1")
		names[r.EventID] = name
		l.write(r)
	}
	assumed := func(key string) any {
		return map[string]any{"Credentials": map[string]any{"AccessKeyId": key, "SecretAccessKey": "sess-secret", "SessionToken": "sess-token", "Expiration": at(3600)}}
	}
	call("create-key", 0, admin, "iam", "CreateAccessKey", url.Values{"UserName": {"victim"}},
		map[string]any{"AccessKey": map[string]any{"AccessKeyId": "AKIALEAKED", "SecretAccessKey": "leaked-secret", "UserName": "victim"}}, "")
	call("issue-direct", 1, user, "redshift", "GetClusterCredentials", url.Values{"ClusterIdentifier": {"c"}, "DbUser": {"exfil"}}, nil, "c1")
	call("assume", 2, user, "sts", "AssumeRole", url.Values{"RoleArn": {"arn:aws:iam::123456789012:role/Pivot"}, "RoleSessionName": {"pivot"}}, assumed("ASIASESSION"), "")
	call("issue-session", 3, session("ASIASESSION", "pivot"), "redshift", "GetClusterCredentials", url.Values{"ClusterIdentifier": {"c"}, "DbUser": {"pivoted"}}, nil, "c2")
	call("issue-serverless", 4, session("ASIASESSION", "pivot"), "redshift-serverless", "GetCredentials", nil, nil, "c3")
	call("assume-chained", 5, session("ASIASESSION", "pivot"), "sts", "AssumeRole", url.Values{"RoleArn": {"arn:aws:iam::123456789012:role/Pivot"}, "RoleSessionName": {"again"}}, assumed("ASIACHAINED"), "")
	call("issue-chained", 6, session("ASIACHAINED", "again"), "redshift", "GetClusterCredentials", url.Values{"ClusterIdentifier": {"c"}, "DbUser": {"deeper"}}, nil, "c4")
	call("issue-other", 7, other, "redshift", "GetClusterCredentials", url.Values{"ClusterIdentifier": {"c"}, "DbUser": {"exfil"}}, nil, "c5")
	gw := func(name string, r *Record) {
		names[r.EventID] = name
		l.write(r)
	}
	login := shiftkey.Login{Time: at(8), Scope: "c", ConnID: 1, Source: "198.51.100.7:5000", User: "IAMA:pivoted", Database: "dev", OK: true,
		CredentialID: "c2", DBUser: "pivoted", PrincipalARN: session("ASIASESSION", "pivot").ARN, Groups: []string{"loot"}}
	gw("grant", grantRecord(&shiftkey.GrantChange{Time: at(8), Scope: "c", Role: "pivoted", Group: "loot", Granted: true,
		Session: shiftkey.SessionOrigin{ConnID: 1, Source: login.Source, CredentialID: "c2", PrincipalARN: login.PrincipalARN}}))
	gw("login", loginRecord(&login))
	gw("session-end", sessionEndRecord(&shiftkey.SessionEnd{Login: login, Start: at(8), End: at(9), Reason: shiftkey.EndClosed}))
	gw("wrong-password", loginRecord(&shiftkey.Login{Time: at(10), Scope: "c", ConnID: 2, Source: "203.0.113.9:6000", User: "IAMA:exfil", Database: "dev",
		Reason: shiftkey.LoginWrongPassword}))
	call("deactivate", 11, admin, "iam", "UpdateAccessKey", url.Values{"UserName": {"victim"}, "AccessKeyId": {"AKIALEAKED"}, "Status": {"Inactive"}}, nil, "")
	rev := revocationRecord(&Revocation{Time: at(12), Operator: "ops", Host: "bastion", Selection: map[string]string{"accessKeyId": "AKIALEAKED"},
		Revoked: []*shiftkey.Credential{{ID: "c1", Cluster: "c", LoginName: "IAMA:exfil", PrincipalARN: user.ARN, AccessKeyID: "AKIALEAKED", ExpiresAt: at(900)},
			{ID: "c2", Cluster: "c", LoginName: "IAMA:pivoted", PrincipalARN: login.PrincipalARN, AccessKeyID: "ASIASESSION", ExpiresAt: at(900)},
			{ID: "c3", Cluster: "workgroup/w", LoginName: "IAMR:Pivot", PrincipalARN: login.PrincipalARN, AccessKeyID: "ASIASESSION", ExpiresAt: at(900)},
			{ID: "c4", Cluster: "c", LoginName: "IAMA:deeper", PrincipalARN: session("ASIACHAINED", "again").ARN, AccessKeyID: "ASIACHAINED", ExpiresAt: at(900)}}})
	gw("revoke", rev)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path, names
}

// Found playing a leaked-key incident: `audit tail --access-key AKIA…`
// showed the key's own calls and the logins of the credentials those
// issued, but not the AssumeRole sessions' calls (signed with the ASIA…
// key the AssumeRole record names), nor the credentials those issued and
// their logins, nor the key's deactivation; and nothing selected the
// failed logins from the attacker's address.
func TestTailFollowsALeakedKeyThroughItsSessions(t *testing.T) {
	path, names := incidentLog(t)
	named := func(f Filter) string {
		var got []string
		for _, id := range tail(t, []string{path}, f) {
			got = append(got, names[id])
		}
		return strings.Join(got, " ")
	}
	for _, c := range []struct {
		f    Filter
		want string
	}{
		{Filter{AccessKey: "AKIALEAKED"}, "create-key issue-direct assume issue-session issue-serverless assume-chained issue-chained grant login session-end deactivate revoke"},
		// A leaked session key: the call that started the session, what
		// it did and what the sessions it started did.
		{Filter{AccessKey: "ASIASESSION"}, "assume issue-session issue-serverless assume-chained issue-chained grant login session-end revoke"},
		{Filter{AccessKey: "AKIAOTHER"}, "issue-other"},
		{Filter{SourceIP: "203.0.113.9"}, "wrong-password"},
		{Filter{SourceIP: "198.51.100.7", AccessKey: "ASIACHAINED"}, "assume-chained issue-chained"},
	} {
		if got := named(c.f); got != c.want {
			t.Errorf("tail %+v:\n got %s\nwant %s", c.f, got, c.want)
		}
	}
	// No secret of the calls is in the log.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b := string(raw)
	for _, s := range []string{"leaked-secret", "sess-secret", "sess-token"} {
		if strings.Contains(b, s) {
			t.Errorf("the log holds %q", s)
		}
	}
}

// Found in the same review: a login record named its credential but not
// the key that got it, so `audit tail --access-key` found a leaked key's
// logins only in logs that also held the issuing call (a replica's log
// lost, or rotated away, hid them) and jq over login records could not
// answer "which logins came from this key". Login, session end and grant
// records name it (responseElements.accessKeyId, a grant's
// additionalEventData.accessKeyId).
func TestGatewayRecordsNameTheIssuingKey(t *testing.T) {
	path := t.TempDir() + "/audit.log"
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	login := shiftkey.Login{Time: at, Scope: "c", ConnID: 1, Source: "198.51.100.7:5000", User: "IAMA:exfil", Database: "dev", OK: true,
		CredentialID: "c1", DBUser: "exfil", PrincipalARN: "arn:aws:iam::123456789012:user/victim", Groups: []string{"loot"}, AccessKeyID: "AKIALEAKED"}
	names := map[string]string{}
	for name, r := range map[string]*Record{
		"grant": grantRecord(&shiftkey.GrantChange{Time: at, Scope: "c", Role: "exfil", Group: "loot", Granted: true,
			Session: shiftkey.SessionOrigin{ConnID: 1, Source: login.Source, CredentialID: "c1", PrincipalARN: login.PrincipalARN, AccessKeyID: "AKIALEAKED"}}),
		"login":       loginRecord(&login),
		"session-end": sessionEndRecord(&shiftkey.SessionEnd{Login: login, Start: at, End: at.Add(time.Second), Reason: shiftkey.EndClosed}),
	} {
		names[r.EventID] = name
		l.write(r)
	}
	other := login
	other.CredentialID, other.AccessKeyID, other.ConnID = "c2", "AKIAOTHER", 2
	l.Login(&other)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, id := range tail(t, []string{path}, Filter{AccessKey: "AKIALEAKED"}) {
		got = append(got, names[id])
	}
	slices.Sort(got)
	if strings.Join(got, " ") != "grant login session-end" {
		t.Fatalf("--access-key AKIALEAKED without the issuing call: %v, want the grant, login and session end", got)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		r, ok := parse([]byte(line))
		if !ok {
			t.Fatalf("line %q", line)
		}
		key := r.ResponseElements["accessKeyId"]
		if r.EventName == EventGrantGroup {
			key = r.AdditionalEventData["accessKeyId"]
		}
		want := "AKIALEAKED"
		if credentialOf(r) == "c2" {
			want = "AKIAOTHER"
		}
		if key != want {
			t.Errorf("%s record names key %v, want %s: %s", r.EventName, key, want, line)
		}
	}
}

// The record of declared identities applied names what changed, never a
// secret, and is selected by the keys and users it changed.
func TestIdentitiesAppliedRecord(t *testing.T) {
	path := t.TempDir() + "/audit.log"
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	l.IdentitiesApplied(&IdentitiesApplied{Time: at, Host: "h", Trigger: "start"}) // nothing changed: no record
	l.IdentitiesApplied(&IdentitiesApplied{Time: at, Host: "h", Trigger: "reload", ConfigFile: "/etc/shiftkey.yaml", Changes: []IdentityChange{
		{Change: "key deactivated", Kind: "user", Name: "ci", AccessKeyID: "AKIACI"},
		{Change: "user added to group", Kind: "user", Name: "bob", Group: "analysts"},
	}})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := parse(raw)
	if !ok || r.EventName != EventApplyIdentities || r.EventType != typeServiceEvent || r.RequestParameters["configFile"] != "/etc/shiftkey.yaml" ||
		r.RequestParameters["trigger"] != "reload" || r.ResponseElements["count"] != json.Number("2") {
		t.Fatalf("one record of the reload, want: %s", raw)
	}
	c := r.ResponseElements["changes"].([]any)[0].(map[string]any)
	if c["change"] != "key deactivated" || c["userName"] != "ci" || c["accessKeyId"] != "AKIACI" {
		t.Errorf("change: %v", c)
	}
	for f, want := range map[Filter]int{
		{AccessKey: "AKIACI"}: 1, {AccessKey: "AKIAOTHER"}: 0, {Principal: "arn:aws:iam::1:user/bob"}: 1, {Principal: "arn:aws:iam::1:user/alice"}: 0,
		{Principal: "arn:aws:iam::1:role/bob"}: 0, {Credential: "c1"}: 0, {SourceIP: "h"}: 1,
	} {
		if got := len(tail(t, []string{path}, f)); got != want {
			t.Errorf("tail %+v: %d records, want %d", f, got, want)
		}
	}
}

// A revocation that ended a key's STS sessions is selected by each ended
// session's key (and the key that started it) even where the AssumeRole
// that started the session is not in the logs read.
func TestTailFindsTheRevocationThatEndedASession(t *testing.T) {
	path := t.TempDir() + "/audit.log"
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	l.Revoked(&Revocation{Time: at, Operator: "ops", Host: "bastion", Selection: map[string]string{"accessKeyId": "AKIALEAKED"},
		Ended: []*shiftkey.Session{{AccessKeyID: "ASIASESSION", RoleName: "Pivot", SessionName: "pivot", SourceARN: "arn:aws:iam::123456789012:user/victim",
			SourceAccessKeyID: "AKIALEAKED", ExpiresAt: at.Add(time.Hour)}}})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[Filter]int{{AccessKey: "ASIASESSION"}: 1, {AccessKey: "AKIALEAKED"}: 1, {AccessKey: "ASIAOTHER"}: 0} {
		if got := len(tail(t, []string{path}, f)); got != want {
			t.Errorf("tail %+v: %d records, want %d", f, got, want)
		}
	}
}

// Found rehearsing issue 17's check (two replicas behind HAProxy, one
// killed with kill -9): the survivor's RevokeSessionGroup of the dead
// replica's grant (reconciled, leftBy the dead replica) names no session,
// so `audit tail --access-key`, `--principal`, `--credential` and
// `--source-ip` left it out, and the responder following a principal
// could not see what became of its sessions' groups on the replica that
// died. A reconciled revoke now follows the records that joined its
// membership on a replica it names: leftBy's, or for its own record
// (leftBy empty) the replica that revoked.
func TestTailFollowsADeadReplicasGrantToItsRevoke(t *testing.T) {
	dir := t.TempDir()
	const deadA, survivorB = "hostA/100/aaaa", "hostB/200/bbbb"
	open := func(name, replica string) *Log {
		l, err := Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		l.Replica = replica
		return l
	}
	a, b := open("a.log", deadA), open("b.log", survivorB)
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	// Each log's records are named in the order they are written.
	order := map[*Log][]string{}
	named := func(l *Log, name string, write func(*Log)) {
		write(l)
		order[l] = append(order[l], name)
	}
	alice := shiftkey.Login{Scope: "analytics", Source: "198.51.100.7:5000", User: "IAMA:dana", Database: "dev", OK: true,
		CredentialID: "c1", DBUser: "dana", PrincipalARN: "arn:aws:iam::123456789012:user/alice", Groups: []string{"analysts"}, AccessKeyID: "AKIAALICE"}
	bob := shiftkey.Login{Scope: "analytics", Source: "203.0.113.9:6000", User: "IAMA:erin", Database: "dev", OK: true,
		CredentialID: "c2", DBUser: "erin", PrincipalARN: "arn:aws:iam::123456789012:user/bob", Groups: []string{"analysts"}, AccessKeyID: "AKIABOB"}
	origin := func(l shiftkey.Login) shiftkey.SessionOrigin {
		return shiftkey.SessionOrigin{ConnID: l.ConnID, Source: l.Source, CredentialID: l.CredentialID, PrincipalARN: l.PrincipalARN, AccessKeyID: l.AccessKeyID}
	}
	// alice's session on A, which dies with it: a grant and a login.
	onA := alice
	onA.Time, onA.ConnID = at(1), 1
	named(a, "grant-on-A", func(l *Log) {
		l.Grant(&shiftkey.GrantChange{Time: at(1), Scope: "analytics", Role: "dana", Group: "analysts", Granted: true, Session: origin(onA)})
	})
	named(a, "login-on-A", func(l *Log) { l.Login(&onA) })
	// alice's session on B shares A's membership (no grant), and ends.
	onB := alice
	onB.Time, onB.ConnID = at(2), 7
	named(b, "login-on-B", func(l *Log) { l.Login(&onB) })
	named(b, "end-on-B", func(l *Log) {
		l.SessionEnd(&shiftkey.SessionEnd{Login: onB, Start: at(2), End: at(3), Reason: shiftkey.EndClosed})
	})
	// bob's session on B: granted, ended, revoked by its end.
	bobB := bob
	bobB.Time, bobB.ConnID = at(2), 8
	named(b, "bob-grant", func(l *Log) {
		l.Grant(&shiftkey.GrantChange{Time: at(2), Scope: "analytics", Role: "erin", Group: "analysts", Granted: true, Session: origin(bobB)})
	})
	named(b, "bob-login", func(l *Log) { l.Login(&bobB) })
	named(b, "bob-end", func(l *Log) {
		l.SessionEnd(&shiftkey.SessionEnd{Login: bobB, Start: at(2), End: at(3), Reason: shiftkey.EndClosed})
	})
	named(b, "bob-revoke", func(l *Log) {
		l.Grant(&shiftkey.GrantChange{Time: at(3), Scope: "analytics", Role: "erin", Group: "analysts", Session: origin(bobB)})
	})
	// After A's lease: B revokes what A left, and its own leftover of
	// dana's membership; and erin's membership another dead replica left.
	named(b, "reconciled-A", func(l *Log) {
		l.Grant(&shiftkey.GrantChange{Time: at(10), Scope: "analytics", Role: "dana", Group: "analysts", Reconciled: true, LeftBy: deadA})
	})
	named(b, "reconciled-own", func(l *Log) {
		l.Grant(&shiftkey.GrantChange{Time: at(11), Scope: "analytics", Role: "dana", Group: "analysts", Reconciled: true})
	})
	named(b, "reconciled-other", func(l *Log) {
		l.Grant(&shiftkey.GrantChange{Time: at(12), Scope: "analytics", Role: "erin", Group: "analysts", Reconciled: true, LeftBy: "hostC/300/cccc"})
	})
	for _, l := range []*Log{a, b} {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	paths := []string{filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")}
	names := map[string]string{}
	for i, l := range []*Log{a, b} {
		raw, err := os.ReadFile(paths[i])
		if err != nil {
			t.Fatal(err)
		}
		got := ids(t, string(raw))
		if len(got) != len(order[l]) {
			t.Fatalf("%s: %d records, want %d", paths[i], len(got), len(order[l]))
		}
		for j, id := range got {
			names[id] = order[l][j]
		}
	}
	aliceWants := "grant-on-A login-on-A login-on-B end-on-B reconciled-A reconciled-own"
	for _, c := range []struct {
		f    Filter
		want string
	}{
		{Filter{AccessKey: "AKIAALICE"}, aliceWants},
		{Filter{Principal: alice.PrincipalARN}, aliceWants},
		{Filter{Credential: "c1"}, aliceWants},
		{Filter{SourceIP: "198.51.100.7"}, aliceWants},
		// bob's membership was revoked when his session ended: the
		// reconciled revoke of erin's that another replica left is not his.
		{Filter{AccessKey: "AKIABOB"}, "bob-grant bob-login bob-end bob-revoke"},
		{Filter{}, "grant-on-A login-on-A login-on-B end-on-B bob-grant bob-login bob-end bob-revoke reconciled-A reconciled-own reconciled-other"},
	} {
		var got []string
		for _, id := range tail(t, paths, c.f) {
			got = append(got, names[id])
		}
		if g := strings.Join(got, " "); g != c.want {
			t.Errorf("tail %+v:\n got %s\nwant %s", c.f, g, c.want)
		}
	}
}

// A login's dbGroups are what it asked for; its notices say which of them
// its session did not join (a group that does not exist, a LOGIN role, an
// unsafe one). `audit tail --principal alice` counted them as joined, so
// it kept the reconciled revoke of a membership that only another
// principal's session on the dead replica had joined.
func TestTailDoesNotCountGroupsALoginDidNotJoin(t *testing.T) {
	dir := t.TempDir()
	const deadA = "hostA/100/aaaa"
	l, err := Open(filepath.Join(dir, "a.log"))
	if err != nil {
		t.Fatal(err)
	}
	l.Replica = deadA
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	var order []string
	named := func(name string, write func()) { write(); order = append(order, name) }
	// alice's session asks for analysts, which is unsafe then, and for
	// a group that does not exist: it joins neither.
	alice := shiftkey.Login{Time: at(1), Scope: "analytics", ConnID: 1, Source: "198.51.100.7:5000", User: "IAMA:dana", Database: "dev", OK: true,
		CredentialID: "c1", DBUser: "dana", PrincipalARN: "arn:aws:iam::123456789012:user/alice", Groups: []string{"analysts", `odd "name`},
		Notices: []string{
			`group "analysts" not joined: it may create in a database (or a role it belongs to may): a member could create objects as it that outlive the session`,
			`group "odd \"name" not joined: it does not exist`}}
	named("alice-login", func() { l.Login(&alice) })
	named("alice-end", func() {
		l.SessionEnd(&shiftkey.SessionEnd{Login: alice, Start: at(1), End: at(2), Reason: shiftkey.EndClosed})
	})
	// carol's session, as the same database user, joins it once fixed.
	carol := shiftkey.Login{Time: at(3), Scope: "analytics", ConnID: 2, Source: "203.0.113.9:6000", User: "IAMA:dana", Database: "dev", OK: true,
		CredentialID: "c2", DBUser: "dana", PrincipalARN: "arn:aws:iam::123456789012:user/carol", Groups: []string{"analysts"}}
	named("carol-grant", func() {
		l.Grant(&shiftkey.GrantChange{Time: at(3), Scope: "analytics", Role: "dana", Group: "analysts", Granted: true,
			Session: shiftkey.SessionOrigin{ConnID: 2, Source: carol.Source, CredentialID: "c2", PrincipalARN: carol.PrincipalARN}})
	})
	named("carol-login", func() { l.Login(&carol) })
	// A dies; another replica revokes what A left.
	named("reconciled", func() {
		l.Grant(&shiftkey.GrantChange{Time: at(10), Scope: "analytics", Role: "dana", Group: "analysts", Reconciled: true, LeftBy: deadA})
	})
	named("reconciled-odd", func() {
		l.Grant(&shiftkey.GrantChange{Time: at(11), Scope: "analytics", Role: "dana", Group: `odd "name`, Reconciled: true, LeftBy: deadA})
	})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "a.log")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for i, id := range ids(t, string(raw)) {
		names[id] = order[i]
	}
	for _, c := range []struct {
		f    Filter
		want string
	}{
		{Filter{Principal: alice.PrincipalARN}, "alice-login alice-end"},
		{Filter{Credential: "c1"}, "alice-login alice-end"},
		{Filter{Principal: carol.PrincipalARN}, "carol-grant carol-login reconciled"},
	} {
		var got []string
		for _, id := range tail(t, []string{path}, c.f) {
			got = append(got, names[id])
		}
		if g := strings.Join(got, " "); g != c.want {
			t.Errorf("tail %+v:\n got %s\nwant %s", c.f, g, c.want)
		}
	}
}
