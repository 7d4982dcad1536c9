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

// Revoked writes the records of a revocation: one, or for a large one
// parts (revocationParts).
func (l *Log) Revoked(e *Revocation) {
	for _, r := range revocationParts(e) {
		l.write(r)
	}
}

// revocationPartBytes bounds what one record of a revocation lists, well
// inside MaxRecordBytes with the rest of the record around it.
const revocationPartBytes = 96 << 10

// revocationParts are the records of a revocation: the one record when
// what it lists fits revocationPartBytes; else parts that each list a
// share of it, in order, and repeat the selection and the totals, with
// additionalEventData's revocationId (shared), part and parts. A whole
// list of a large incident's revocation made one line of megabytes,
// which log shippers cut or drop, and no line may pass MaxRecordBytes.
func revocationParts(e *Revocation) []*Record {
	lists := revocationLists(e)
	var parts [][3][]any
	var cur [3][]any
	size := 0
	for i, list := range lists {
		for _, x := range list {
			n := encodedLen(x.(map[string]any)) + 1
			if size+n > revocationPartBytes && size > 0 {
				parts, cur, size = append(parts, cur), [3][]any{}, 0
			}
			cur[i], size = append(cur[i], x), size+n
		}
	}
	parts = append(parts, cur)
	if len(parts) == 1 {
		return []*Record{revocationRecordOf(e, lists[0], lists[1], lists[2])}
	}
	id := shiftkey.NewUUID()
	out := make([]*Record, len(parts))
	for i, p := range parts {
		r := revocationRecordOf(e, p[0], p[1], p[2])
		r.AdditionalEventData = map[string]any{"revocationId": id, "part": i + 1, "parts": len(parts)}
		out[i] = r
	}
	return out
}

// revocationLists are what a revocation lists: the credentials it
// revoked, those revoked before whose sessions it ended, and the STS
// sessions it ended.
func revocationLists(e *Revocation) [3][]any {
	var lists [3][]any
	for _, c := range e.Revoked {
		r := map[string]any{"credentialId": c.ID, "scope": c.Cluster, "loginName": c.LoginName,
			"principal": c.PrincipalARN, "expiration": c.ExpiresAt.UTC().Format(timePreciseFormat)} // as the issuing call's record has it
		if c.AccessKeyID != "" {
			r["accessKeyId"] = c.AccessKeyID // the key that signed its issuing call
		}
		lists[0] = append(lists[0], r)
	}
	for _, v := range e.Terminated {
		r := map[string]any{"credentialId": v.ID, "scope": v.Scope, "loginName": v.LoginName, "principal": v.PrincipalARN,
			"expiration": v.ExpiresAt.UTC().Format(timePreciseFormat), "revokedAt": v.RevokedAt.UTC().Format(timePreciseFormat)}
		if v.AccessKeyID != "" {
			r["accessKeyId"] = v.AccessKeyID
		}
		lists[1] = append(lists[1], r)
	}
	for _, s := range e.Ended {
		// Each session by its temporary key id, never its secret or token.
		r := map[string]any{"accessKeyId": s.AccessKeyID, "principal": shiftkey.AssumedRoleARN(s.SourceARN, s.RoleName, s.SessionName),
			"sourceArn": s.SourceARN, "expiration": s.ExpiresAt.UTC().Format(timeFormat)}
		if s.SourceAccessKeyID != "" {
			r["sourceAccessKeyId"] = s.SourceAccessKeyID
		}
		lists[2] = append(lists[2], r)
	}
	return lists
}

// revocationRecordOf is a record of e listing revoked, terminated and
// ended (all of e's, or a part's share), with e's totals.
func revocationRecordOf(e *Revocation, revoked, terminated, ended []any) *Record {
	params := map[string]any{"terminate": e.Terminate}
	for k, v := range e.Selection {
		if v != "" {
			params[k] = v
		}
	}
	response := map[string]any{"count": len(e.Revoked), "revoked": nonNilList(revoked)}
	if len(e.Terminated) > 0 {
		response["terminatedCount"], response["terminated"] = len(e.Terminated), nonNilList(terminated)
	}
	if e.Selection["accessKeyId"] != "" || len(e.Ended) > 0 {
		response["sessionCount"], response["endedSessions"] = len(e.Ended), nonNilList(ended)
	}
	return &Record{EventVersion: eventVersion, EventTime: e.Time.UTC().Format(timeFormat), at: e.Time, EventSource: SourceOperator,
		EventName: EventRevokeCredentials, EventType: typeServiceEvent, SourceIPAddress: e.Host,
		UserIdentity:      UserIdentity{Type: "Operator", UserName: e.Operator},
		RequestParameters: params, ResponseElements: response,
		EventID: shiftkey.NewUUID()}
}

// nonNilList is l, or an empty list for none: JSON's [], not null.
func nonNilList(l []any) []any {
	if l == nil {
		return []any{}
	}
	return l
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
