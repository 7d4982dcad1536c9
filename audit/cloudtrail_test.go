package audit

import (
	"bufio"
	"encoding/json"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
)

// cloudTrailEventTypes are the eventType values CloudTrail documents
// ("CloudTrail record contents"; non-API events).
var cloudTrailEventTypes = map[string]bool{"AwsApiCall": true, "AwsServiceEvent": true, "AwsConsoleAction": true,
	"AwsConsoleSignIn": true, "AwsCloudTrailInsight": true, "AwsVpceEvent": true}

// TestRecordsCarryCloudTrailsFields: every kind of record, read as jq
// reads the log (JSON objects, no Go types), has the CloudTrail fields
// that are true of it: eventVersion, an eventType of CloudTrail's
// vocabulary, eventCategory Management with managementEvent true,
// recipientAccountId (the account shiftkey serves, which received the
// event, also when the caller was not authenticated), and readOnly (a
// gateway or operator event changes something: false).
func TestRecordsCarryCloudTrailsFields(t *testing.T) {
	path := t.TempDir() + "/audit.log"
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const account = "123456789012"
	l.Account = account
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	user := &shiftkey.Principal{ARN: "arn:aws:iam::" + account + ":user/alice", Account: account, UserName: "alice", AccessKey: "AKIAALICE"}
	login := shiftkey.Login{Time: now, Scope: "c", ConnID: 1, Source: "10.0.0.1:5000", User: "IAMA:alice", Database: "dev", OK: true,
		CredentialID: "c1", DBUser: "alice", PrincipalARN: user.ARN, Groups: []string{"g"}}
	want := []struct {
		name, eventType string
		readOnly        bool
	}{
		{"GetClusterCredentials", "AwsApiCall", true},
		{"CreateUser", "AwsApiCall", false},
		{"DescribeClusters", "AwsApiCall", true}, // refused: no authenticated caller
		{EventGrantGroup, "AwsServiceEvent", false},
		{EventLogin, "AwsServiceEvent", false},
		{EventLogin, "AwsServiceEvent", false}, // refused
		{EventSessionEnd, "AwsServiceEvent", false},
		{EventRevokeGroup, "AwsServiceEvent", false}, // reconciled
		{EventRevokeCredentials, "AwsServiceEvent", false},
		{EventApplyIdentities, "AwsServiceEvent", false},
	}
	l.APICall(&shiftkey.APICall{Time: now, Service: "redshift", Operation: "GetClusterCredentials", Principal: user, AccessKeyID: user.AccessKey,
		Form: url.Values{"ClusterIdentifier": {"c"}, "DbUser": {"alice"}}, CredentialID: "c1"})
	l.APICall(&shiftkey.APICall{Time: now, Service: "iam", Operation: "CreateUser", Principal: user, AccessKeyID: user.AccessKey,
		Form: url.Values{"UserName": {"bob"}}, Result: map[string]any{"User": map[string]any{"UserName": "bob"}}})
	l.APICall(&shiftkey.APICall{Time: now, Service: "redshift", Operation: "DescribeClusters", AccessKeyID: "AKIANOSUCH",
		ErrorCode: "InvalidClientTokenId", ErrorMessage: "The security token included in the request is invalid."})
	l.Grant(&shiftkey.GrantChange{Time: now, Scope: "c", Role: "alice", Group: "g", Granted: true,
		Session: shiftkey.SessionOrigin{ConnID: 1, Source: login.Source, CredentialID: "c1", PrincipalARN: user.ARN}})
	l.Login(&login)
	l.Login(&shiftkey.Login{Time: now, Scope: "c", ConnID: 2, Source: "10.0.0.2:5000", User: "IAMA:alice", Reason: shiftkey.LoginWrongPassword})
	l.SessionEnd(&shiftkey.SessionEnd{Login: login, Start: now, End: now.Add(time.Second), Reason: shiftkey.EndClosed})
	l.Grant(&shiftkey.GrantChange{Time: now, Scope: "c", Role: "alice", Group: "g", Reconciled: true})
	l.Revoked(&Revocation{Time: now, Operator: "ops", Host: "bastion", Selection: map[string]string{"credentialId": "c1"},
		Revoked: []*shiftkey.Credential{{ID: "c1", Cluster: "c", LoginName: "IAMA:alice", PrincipalARN: user.ARN, ExpiresAt: now.Add(time.Hour)}}})
	l.IdentitiesApplied(&IdentitiesApplied{Time: now, Host: "h", Trigger: "reload", Changes: []IdentityChange{{Change: "user created", Kind: "user", Name: "bob"}}})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	i := 0
	for ; sc.Scan(); i++ {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if i >= len(want) {
			t.Fatalf("more records than written: %s", sc.Bytes())
		}
		w := want[i]
		ok := r["eventName"] == w.name && r["eventVersion"] == eventVersion && r["eventType"] == w.eventType &&
			cloudTrailEventTypes[r["eventType"].(string)] && r["eventCategory"] == "Management" && r["managementEvent"] == true &&
			r["recipientAccountId"] == account && r["readOnly"] == w.readOnly
		if !ok {
			t.Errorf("record %d (%s): %s\nwant eventType %s, eventCategory Management, managementEvent true, recipientAccountId %s, readOnly %v",
				i, w.name, sc.Bytes(), w.eventType, account, w.readOnly)
		}
	}
	if i != len(want) {
		t.Errorf("%d records, want %d", i, len(want))
	}
}

// cloudTrailIdentityTypes are CloudTrail's documented userIdentity types.
var cloudTrailIdentityTypes = map[string]bool{"Root": true, "IAMUser": true, "AssumedRole": true, "Role": true, "FederatedUser": true,
	"Directory": true, "AWSAccount": true, "AWSService": true, "Unknown": true, "IdentityCenterUser": true}

// TestGatewaysOwnActsAreCloudTrailsAWSService: a revoke the gateway makes
// on its own (a dead replica's or its own leftover grant, no session) had
// userIdentity {"type":"Gateway"}, no type CloudTrail has, which a
// reader's rules do not know; CloudTrail's for an act of the service
// itself is AWSService, naming it in invokedBy.
func TestGatewaysOwnActsAreCloudTrailsAWSService(t *testing.T) {
	r := roundTrip(t, grantRecord(&shiftkey.GrantChange{Time: time.Now(), Scope: "c", Role: "alice", Group: "g", Reconciled: true}))
	if !cloudTrailIdentityTypes[r.UserIdentity.Type] || r.UserIdentity.Type != "AWSService" || r.UserIdentity.InvokedBy != SourceGateway {
		b, _ := json.Marshal(r.UserIdentity)
		t.Errorf("reconciled revoke: userIdentity %s, want {\"type\":\"AWSService\",\"invokedBy\":%q}", b, SourceGateway)
	}
}
