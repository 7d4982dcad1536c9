package audit

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
)

// A grant or revoke caused by a session names the session credential's
// principal as its userIdentity, the client's address and the credential;
// a reconciled revoke (no session) stays the gateway's own act.
func TestGrantRecordCarriesSessionPrincipal(t *testing.T) {
	origin := shiftkey.SessionOrigin{ConnID: 7, Source: "10.1.2.3:51234", CredentialID: "cred-1",
		PrincipalARN: "arn:aws:iam::123456789012:user/alice"}
	for _, granted := range []bool{true, false} {
		r := roundTrip(t, grantRecord(&shiftkey.GrantChange{Time: time.Now(), Scope: "c", Role: "alice", Group: "g", Granted: granted, Session: origin}))
		if r.UserIdentity.Type != "IAMUser" || r.UserIdentity.ARN != origin.PrincipalARN || r.UserIdentity.UserName != "alice" ||
			r.UserIdentity.AccountID != "123456789012" {
			t.Errorf("granted=%v: userIdentity %+v, want alice's", granted, r.UserIdentity)
		}
		if r.SourceIPAddress != "10.1.2.3" || r.AdditionalEventData["credentialId"] != "cred-1" || r.AdditionalEventData["connectionId"] != float64(7) {
			t.Errorf("granted=%v: source %q, additional %v", granted, r.SourceIPAddress, r.AdditionalEventData)
		}
	}
	r := roundTrip(t, grantRecord(&shiftkey.GrantChange{Time: time.Now(), Scope: "c", Role: "alice", Group: "g", Reconciled: true}))
	if r.UserIdentity.Type != "AWSService" || r.UserIdentity.InvokedBy != SourceGateway || r.UserIdentity.ARN != "" || r.SourceIPAddress != "" {
		t.Errorf("reconciled revoke: userIdentity %+v, source %q; want the gateway's", r.UserIdentity, r.SourceIPAddress)
	}
	if _, ok := r.AdditionalEventData["credentialId"]; ok {
		t.Errorf("reconciled revoke names a credential: %v", r.AdditionalEventData)
	}
}

// A revoke that came before its sessions ended, because the group turned
// unsafe to hold, says why; other grants and revokes have no reason.
func TestGrantRecordCarriesRevokeReason(t *testing.T) {
	const why = `it may create in a schema of database "d"`
	r := roundTrip(t, grantRecord(&shiftkey.GrantChange{Time: time.Now(), Scope: "c", Role: "alice", Group: "g", Reason: why}))
	if r.EventName != EventRevokeGroup || r.AdditionalEventData["reason"] != why {
		t.Errorf("revoke of a group that turned unsafe: %s %v, want %s with reason %q", r.EventName, r.AdditionalEventData, EventRevokeGroup, why)
	}
	r = roundTrip(t, grantRecord(&shiftkey.GrantChange{Time: time.Now(), Scope: "c", Role: "alice", Group: "g"}))
	if _, ok := r.AdditionalEventData["reason"]; ok {
		t.Errorf("revoke at a session's end has a reason: %v", r.AdditionalEventData)
	}
}

// roundTrip is r as a reader of the log line gets it.
func roundTrip(t *testing.T, r *Record) *Record {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var out Record
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}
