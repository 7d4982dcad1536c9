package audit

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
)

// An operator's revocation is a record of who ran it, where, what they
// named and which credentials went; audit tail finds it by the principal,
// the credential, or the access key that issued a revoked credential.
func TestRevocationRecordIsFoundLikeTheCredentials(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	issued := apiRecord(&shiftkey.APICall{Time: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC), Service: "redshift", Operation: "GetClusterCredentials",
		AccessKeyID: "AKIALEAKED", Principal: &shiftkey.Principal{ARN: "arn:aws:iam::123456789012:user/bob", AccessKey: "AKIALEAKED", UserName: "bob"},
		CredentialID: "c1"}, "us-east-1")
	l.write(issued)
	l.Revoked(&Revocation{Time: time.Date(2026, 12, 6, 10, 5, 0, 0, time.UTC), Operator: "ops", Host: "bastion", Terminate: true,
		Selection: map[string]string{"allForPrincipal": "arn:aws:iam::123456789012:user/bob", "cluster": ""},
		Revoked: []*shiftkey.Credential{{ID: "c1", Cluster: "analytics", LoginName: "IAM:bob", PrincipalARN: "arn:aws:iam::123456789012:user/bob",
			AccessKeyID: "AKIALEAKED", ExpiresAt: time.Date(2026, 12, 6, 11, 0, 0, 907e6, time.UTC)}}})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Tail(t.Context(), &out, []string{path}, Filter{}, false); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var rec Record
	if len(lines) != 2 || json.Unmarshal([]byte(lines[1]), &rec) != nil {
		t.Fatalf("log: %q", out.String())
	}
	if rec.EventName != EventRevokeCredentials || rec.EventSource != SourceOperator || rec.UserIdentity.Type != "Operator" ||
		rec.UserIdentity.UserName != "ops" || rec.SourceIPAddress != "bastion" || rec.RequestParameters["terminate"] != true ||
		rec.RequestParameters["allForPrincipal"] != "arn:aws:iam::123456789012:user/bob" || rec.RequestParameters["cluster"] != nil ||
		rec.ResponseElements["count"] != float64(1) || rec.ResponseElements["revoked"].([]any)[0].(map[string]any)["accessKeyId"] != "AKIALEAKED" ||
		// As precise as the issuing call's expiration: cut to the
		// second, the two disagreed.
		rec.ResponseElements["revoked"].([]any)[0].(map[string]any)["expiration"] != "2026-12-06T11:00:00.907Z" {
		t.Fatalf("revocation record: %s", lines[1])
	}
	for _, f := range []Filter{{Principal: "arn:aws:iam::123456789012:user/bob"}, {Credential: "c1"}, {AccessKey: "AKIALEAKED"}} {
		if got := tail(t, []string{path}, f); len(got) != 2 || got[1] != rec.EventID {
			t.Errorf("filter %+v: %v, want the issue and the revocation", f, got)
		}
	}
	for _, f := range []Filter{{Principal: "arn:aws:iam::123456789012:user/alice"}, {Credential: "c2"}, {AccessKey: "AKIAOTHER"}} {
		if got := tail(t, []string{path}, f); len(got) != 0 {
			t.Errorf("filter %+v: %v, want nothing", f, got)
		}
	}
}

// Query-protocol lists and structures are recorded as CloudTrail shows
// them, whatever name a client gave the list's members.
func TestRequestParametersNestLists(t *testing.T) {
	params := func(form url.Values) map[string]any {
		return requestParameters(&shiftkey.APICall{Form: form})
	}
	for _, form := range []url.Values{
		{"DbGroups.DbGroup.1": {"analysts"}, "DbGroups.DbGroup.2": {"etl"}, "DbUser": {"bob"}},
		{"DbGroups.member.2": {"etl"}, "DbGroups.member.1": {"analysts"}, "DbUser": {"bob"}},
	} {
		want := map[string]any{"dbGroups": []any{"analysts", "etl"}, "dbUser": "bob"}
		if got := params(form); !reflect.DeepEqual(got, want) {
			t.Errorf("%v: %v, want %v", form, got, want)
		}
	}
	got := params(url.Values{"Tags.member.1.Key": {"team"}, "Tags.member.1.Value": {"data"}, "UserName": {"u"}})
	if want := map[string]any{"tags": []any{map[string]any{"key": "team", "value": "data"}}, "userName": "u"}; !reflect.DeepEqual(got, want) {
		t.Errorf("tags: %v, want %v", got, want)
	}
	// A name that clashes with one that nested is kept beside it.
	got = params(url.Values{"Tags.member.1.Key": {"team"}, "tags": {"flat"}})
	if want := map[string]any{"tags": []any{map[string]any{"key": "team"}}, "tags#2": "flat"}; !reflect.DeepEqual(got, want) {
		t.Errorf("clash: %v, want %v", got, want)
	}
	// An index no list here reaches, or a name that clashes, stays flat.
	got = params(url.Values{"DbGroups.member.5000000": {"x"}, "A": {"1"}, "A.member.1": {"2"}})
	if got["dbGroups.member.5000000"] != "x" || got["dbGroups"] != nil || len(got) != 3 {
		t.Errorf("flat fallbacks: %v", got)
	}
}

// A revoke --terminate run after a revoke without it revokes nothing new
// and ends the sessions of what the first revoked: its record lists those
// (terminated), and audit tail finds it by them as by revoked ones.
func TestTerminatedRevocationRecordIsFoundLikeTheCredentials(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	bob := "arn:aws:iam::123456789012:user/bob"
	l.Revoked(&Revocation{Time: time.Date(2026, 12, 6, 10, 7, 0, 0, time.UTC), Operator: "ops", Host: "bastion", Terminate: true,
		Selection: map[string]string{"loginName": "IAM:bob"},
		Terminated: []shiftkey.Revocation{{ID: "c1", Scope: "analytics", LoginName: "IAM:bob", PrincipalARN: bob, AccessKeyID: "AKIALEAKED", Terminate: true,
			RevokedAt: time.Date(2026, 12, 6, 10, 5, 0, 0, time.UTC), ExpiresAt: time.Date(2026, 12, 6, 11, 0, 0, 907e6, time.UTC)}}})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rec Record
	if err := json.Unmarshal(bytes.TrimSpace(b), &rec); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	term, _ := rec.ResponseElements["terminated"].([]any)
	if rec.ResponseElements["count"] != float64(0) || rec.ResponseElements["terminatedCount"] != float64(1) || len(term) != 1 ||
		!reflect.DeepEqual(term[0], map[string]any{"credentialId": "c1", "scope": "analytics", "loginName": "IAM:bob", "principal": bob,
			"accessKeyId": "AKIALEAKED", "expiration": "2026-12-06T11:00:00.907Z", "revokedAt": "2026-12-06T10:05:00Z"}) {
		t.Fatalf("record: %s", b)
	}
	for _, f := range []Filter{{Principal: bob}, {Credential: "c1"}, {AccessKey: "AKIALEAKED"}} {
		if got := tail(t, []string{path}, f); len(got) != 1 || got[0] != rec.EventID {
			t.Errorf("filter %+v: %v, want the record", f, got)
		}
	}
	if got := tail(t, []string{path}, Filter{Credential: "c2"}); len(got) != 0 {
		t.Errorf("filter by another credential: %v", got)
	}
}
