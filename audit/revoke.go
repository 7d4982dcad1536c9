package audit

import (
	"time"

	"github.com/shiftkey/shiftkey"
)

// The operator's records: what `shiftkey credentials revoke` did, written
// by the command itself (the replicas learn of a revocation from the
// store, each on its own, and would write it once per replica).
const (
	SourceOperator         = "operator.shiftkey"
	EventRevokeCredentials = "RevokeCredentials"
	typeOperatorEvent      = "ShiftkeyOperatorEvent"
)

// Revocation is one run of `shiftkey credentials revoke`.
type Revocation struct {
	Time time.Time
	// Operator is the account that ran the command (the OS user), Host
	// the machine it ran on.
	Operator, Host string
	// Selection is what the operator named (flag name to value).
	Selection map[string]string
	Terminate bool
	Revoked   []*shiftkey.Credential
	// Ended are the STS sessions it ended (a selection by access key).
	Ended []*shiftkey.Session
	// Terminated are the credentials revoked before without terminate
	// whose sessions it ended (a revoke with terminate run again).
	Terminated []shiftkey.Revocation
}

// Revoked writes the record of a revocation.
func (l *Log) Revoked(e *Revocation) { l.write(revocationRecord(e)) }

func revocationRecord(e *Revocation) *Record {
	params := map[string]any{"terminate": e.Terminate}
	for k, v := range e.Selection {
		if v != "" {
			params[k] = v
		}
	}
	revoked := make([]any, 0, len(e.Revoked))
	for _, c := range e.Revoked {
		r := map[string]any{"credentialId": c.ID, "scope": c.Cluster, "loginName": c.LoginName,
			"principal": c.PrincipalARN, "expiration": c.ExpiresAt.UTC().Format(timePreciseFormat)} // as the issuing call's record has it
		if c.AccessKeyID != "" {
			r["accessKeyId"] = c.AccessKeyID // the key that signed its issuing call
		}
		revoked = append(revoked, r)
	}
	response := map[string]any{"count": len(e.Revoked), "revoked": revoked}
	if len(e.Terminated) > 0 {
		terminated := make([]any, 0, len(e.Terminated))
		for _, v := range e.Terminated {
			r := map[string]any{"credentialId": v.ID, "scope": v.Scope, "loginName": v.LoginName, "principal": v.PrincipalARN,
				"expiration": v.ExpiresAt.UTC().Format(timePreciseFormat), "revokedAt": v.RevokedAt.UTC().Format(timePreciseFormat)}
			if v.AccessKeyID != "" {
				r["accessKeyId"] = v.AccessKeyID
			}
			terminated = append(terminated, r)
		}
		response["terminatedCount"], response["terminated"] = len(e.Terminated), terminated
	}
	if e.Selection["accessKeyId"] != "" || len(e.Ended) > 0 {
		// Each session by its temporary key id, never its secret or token.
		ended := make([]any, 0, len(e.Ended))
		for _, s := range e.Ended {
			r := map[string]any{"accessKeyId": s.AccessKeyID, "principal": shiftkey.AssumedRoleARN(s.SourceARN, s.RoleName, s.SessionName),
				"sourceArn": s.SourceARN, "expiration": s.ExpiresAt.UTC().Format(timeFormat)}
			if s.SourceAccessKeyID != "" {
				r["sourceAccessKeyId"] = s.SourceAccessKeyID
			}
			ended = append(ended, r)
		}
		response["sessionCount"], response["endedSessions"] = len(e.Ended), ended
	}
	return &Record{EventVersion: eventVersion, EventTime: e.Time.UTC().Format(timeFormat), at: e.Time, EventSource: SourceOperator,
		EventName: EventRevokeCredentials, EventType: typeOperatorEvent, SourceIPAddress: e.Host,
		UserIdentity:      UserIdentity{Type: "Operator", UserName: e.Operator},
		RequestParameters: params, ResponseElements: response,
		EventID: shiftkey.NewUUID()}
}

// revokedOf are the credentials a revocation record names: id,
// principal and issuing access key (when recorded) of each; keys holds
// too the keys of the STS sessions it ended and of those that started
// them.
func revokedOf(r *Record) (ids, principals, keys []string) {
	if r.EventName != EventRevokeCredentials {
		return nil, nil, nil
	}
	// Those it terminated were revoked before; it names them the same way.
	list, _ := r.ResponseElements["revoked"].([]any)
	terminated, _ := r.ResponseElements["terminated"].([]any)
	for _, x := range append(list, terminated...) {
		m, _ := x.(map[string]any)
		id, _ := m["credentialId"].(string)
		p, _ := m["principal"].(string)
		ids, principals = append(ids, id), append(principals, p)
		if k, _ := m["accessKeyId"].(string); k != "" {
			keys = append(keys, k)
		}
	}
	ended, _ := r.ResponseElements["endedSessions"].([]any)
	for _, x := range ended {
		m, _ := x.(map[string]any)
		for _, name := range []string{"accessKeyId", "sourceAccessKeyId"} {
			if k, _ := m[name].(string); k != "" {
				keys = append(keys, k)
			}
		}
	}
	return ids, principals, keys
}
