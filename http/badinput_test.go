package http_test

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestGetClusterCredentialsBadInput sends each bad input as raw form
// parameters, as a hand-written client could, and checks AWS's code and
// HTTP status.
func TestGetClusterCredentialsBadInput(t *testing.T) {
	f := newFixture(t)
	long := func(n int) string { return "a" + strings.Repeat("b", n-1) }
	tests := []struct {
		name   string
		params string // appended to Action=GetClusterCredentials&Version=2012-12-01
		code   string
		status int
	}{
		{"DbUser missing", "&ClusterIdentifier=dev-cluster", "MissingParameter", 400},
		{"cluster and domain missing", "&DbUser=alice", "MissingParameter", 400},
		{"cluster identifier empty", "&DbUser=alice&ClusterIdentifier=", "MissingParameter", 400},
		{"DbUser empty", "&ClusterIdentifier=dev-cluster&DbUser=", "InvalidParameterValue", 400},
		{"DbUser 65 chars", "&ClusterIdentifier=dev-cluster&DbUser=" + long(65), "InvalidParameterValue", 400},
		{"DbUser starts with digit", "&ClusterIdentifier=dev-cluster&DbUser=1alice", "InvalidParameterValue", 400},
		{"DbUser starts with underscore", "&ClusterIdentifier=dev-cluster&DbUser=_alice", "InvalidParameterValue", 400},
		{"DbUser with colon", "&ClusterIdentifier=dev-cluster&DbUser=IAM:alice", "InvalidParameterValue", 400},
		{"DbUser with slash", "&ClusterIdentifier=dev-cluster&DbUser=a/b", "InvalidParameterValue", 400},
		{"DbUser with space", "&ClusterIdentifier=dev-cluster&DbUser=a+b", "InvalidParameterValue", 400},
		{"DbUser with quote", "&ClusterIdentifier=dev-cluster&DbUser=" + url.QueryEscape(`a"b`), "InvalidParameterValue", 400},
		{"DbUser non-ASCII", "&ClusterIdentifier=dev-cluster&DbUser=" + url.QueryEscape("alicé"), "InvalidParameterValue", 400},
		{"DbUser PUBLIC", "&ClusterIdentifier=dev-cluster&DbUser=PUBLIC", "InvalidParameterValue", 400},
		{"DbUser public lowercase", "&ClusterIdentifier=dev-cluster&DbUser=public", "InvalidParameterValue", 400},
		{"DbUser reserved SELECT", "&ClusterIdentifier=dev-cluster&DbUser=select", "InvalidParameterValue", 400},
		{"DbUser reserved user", "&ClusterIdentifier=dev-cluster&DbUser=User", "InvalidParameterValue", 400},
		{"DbName empty", "&ClusterIdentifier=dev-cluster&DbUser=alice&DbName=", "InvalidParameterValue", 400},
		{"DbName 65 chars", "&ClusterIdentifier=dev-cluster&DbUser=alice&DbName=" + long(65), "InvalidParameterValue", 400},
		{"DbName starts with digit", "&ClusterIdentifier=dev-cluster&DbUser=alice&DbName=9dev", "InvalidParameterValue", 400},
		{"DbName with slash", "&ClusterIdentifier=dev-cluster&DbUser=alice&DbName=de/v", "InvalidParameterValue", 400},
		{"DbName reserved", "&ClusterIdentifier=dev-cluster&DbUser=alice&DbName=table", "InvalidParameterValue", 400},
		{"DbGroup uppercase", "&ClusterIdentifier=dev-cluster&DbUser=alice&DbGroups.DbGroup.1=Admins", "InvalidParameterValue", 400},
		{"DbGroup empty", "&ClusterIdentifier=dev-cluster&DbUser=alice&DbGroups.DbGroup.1=", "InvalidParameterValue", 400},
		{"DbGroup 65 chars", "&ClusterIdentifier=dev-cluster&DbUser=alice&DbGroups.DbGroup.1=" + long(65), "InvalidParameterValue", 400},
		{"DbGroup starts with digit", "&ClusterIdentifier=dev-cluster&DbUser=alice&DbGroups.DbGroup.1=1g", "InvalidParameterValue", 400},
		{"DbGroup with colon", "&ClusterIdentifier=dev-cluster&DbUser=alice&DbGroups.DbGroup.1=a:b", "InvalidParameterValue", 400},
		{"DbGroup reserved", "&ClusterIdentifier=dev-cluster&DbUser=alice&DbGroups.DbGroup.1=group", "InvalidParameterValue", 400},
		{"DbGroup public", "&ClusterIdentifier=dev-cluster&DbUser=alice&DbGroups.DbGroup.1=public", "InvalidParameterValue", 400},
		{"second DbGroup bad", "&ClusterIdentifier=dev-cluster&DbUser=alice&DbGroups.DbGroup.1=ok&DbGroups.DbGroup.2=Bad", "InvalidParameterValue", 400},
		{"DbGroups index 0", "&ClusterIdentifier=dev-cluster&DbUser=alice&DbGroups.DbGroup.0=g", "InvalidParameterValue", 400},
		{"DbGroups with a value", "&ClusterIdentifier=dev-cluster&DbUser=alice&DbGroups=g", "InvalidParameterValue", 400},
		{"DurationSeconds 899", "&ClusterIdentifier=dev-cluster&DbUser=alice&DurationSeconds=899", "InvalidParameterValue", 400},
		{"DurationSeconds 3601", "&ClusterIdentifier=dev-cluster&DbUser=alice&DurationSeconds=3601", "InvalidParameterValue", 400},
		{"DurationSeconds 0", "&ClusterIdentifier=dev-cluster&DbUser=alice&DurationSeconds=0", "InvalidParameterValue", 400},
		{"DurationSeconds negative", "&ClusterIdentifier=dev-cluster&DbUser=alice&DurationSeconds=-900", "InvalidParameterValue", 400},
		{"DurationSeconds not a number", "&ClusterIdentifier=dev-cluster&DbUser=alice&DurationSeconds=abc", "InvalidParameterValue", 400},
		{"DurationSeconds huge", "&ClusterIdentifier=dev-cluster&DbUser=alice&DurationSeconds=99999999999999999999", "InvalidParameterValue", 400},
		{"AutoCreate yes", "&ClusterIdentifier=dev-cluster&DbUser=alice&AutoCreate=yes", "InvalidParameterValue", 400},
		{"AutoCreate 1", "&ClusterIdentifier=dev-cluster&DbUser=alice&AutoCreate=1", "InvalidParameterValue", 400},
		{"unknown cluster", "&ClusterIdentifier=nope&DbUser=alice", "ClusterNotFound", 404},
		{"cluster identifier is case-sensitive", "&ClusterIdentifier=Dev-Cluster&DbUser=alice", "ClusterNotFound", 404},
		{"unknown custom domain", "&CustomDomainName=db.example.com&DbUser=alice", "ClusterNotFound", 404},
		{"cluster and unknown domain", "&ClusterIdentifier=dev-cluster&CustomDomainName=db.example.com&DbUser=alice", "ClusterNotFound", 404},
		{"parameter repeated", "&ClusterIdentifier=dev-cluster&DbUser=alice&DbUser=bob", "InvalidParameterValue", 400},
		{"malformed escape", "&ClusterIdentifier=dev-cluster&DbUser=%zz", "MalformedQueryString", 404},
	}
	if len(tests) < 30 {
		t.Fatalf("only %d cases", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := f.signedPost(t, "admin", "Action=GetClusterCredentials&Version=2012-12-01"+tt.params, nil)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			if got := errorCode(t, body); got != tt.code {
				t.Fatalf("code %s, want %s: %s", got, tt.code, body)
			}
		})
	}
	// The same checks leave nothing behind: no credential was stored.
	creds, _, _, err := f.store.LiveCredentials(t.Context(), "dev-cluster", "IAM:alice", time.Now())
	if err != nil || len(creds) != 0 {
		t.Fatalf("bad inputs stored credentials: %d, %v", len(creds), err)
	}
}

func TestMissingAndUnknownAction(t *testing.T) {
	f := newFixture(t)
	for body, want := range map[string]string{
		"Version=2012-12-01":                         "MissingAction",
		"Action=DeleteEverything&Version=2012-12-01": "InvalidAction",
	} {
		status, b := f.signedPost(t, "admin", body, nil)
		if status != 400 || errorCode(t, b) != want {
			t.Fatalf("%s: %d %s, want 400 %s", body, status, b, want)
		}
	}
}

func TestGetClusterCredentialsWithIAMBadInput(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		params, code string
		status       int
	}{
		{"", "MissingParameter", 400},
		{"&ClusterIdentifier=dev-cluster&DurationSeconds=899", "InvalidParameterValue", 400},
		{"&ClusterIdentifier=dev-cluster&DurationSeconds=3601", "InvalidParameterValue", 400},
		{"&ClusterIdentifier=dev-cluster&DbName=" + strings.Repeat("d", 65), "InvalidParameterValue", 400},
		{"&ClusterIdentifier=" + strings.Repeat("c", 64), "InvalidParameterValue", 400},
		{"&ClusterIdentifier=nope", "ClusterNotFound", 404},
	} {
		status, body := f.signedPost(t, "admin", "Action=GetClusterCredentialsWithIAM&Version=2012-12-01"+tt.params, nil)
		if status != tt.status || errorCode(t, body) != tt.code {
			t.Errorf("%q: %d %s, want %d %s", tt.params, status, body, tt.status, tt.code)
		}
	}
	// limited has no GetClusterCredentialsWithIAM permission.
	status, body := f.signedPost(t, "limited", "Action=GetClusterCredentialsWithIAM&Version=2012-12-01&ClusterIdentifier=dev-cluster&DbName=dev", nil)
	if status != 403 || errorCode(t, body) != "AccessDenied" || !strings.Contains(string(body), "dbname:dev-cluster/dev") {
		t.Fatalf("limited: %d %s", status, body)
	}
}
