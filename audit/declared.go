package audit

import (
	"time"

	"github.com/shiftkey/shiftkey"
)

// EventApplyIdentities is the record of what applying the identities a
// config declares changed in the store (at start and at each reload): a
// key declared Inactive and SIGHUP is how a runbook may deactivate a
// leaked key, and the audit log says when it took effect.
const EventApplyIdentities = "ApplyDeclaredIdentities"

// IdentityChange is one change applying declared identities made, as
// iamapi.Change (never a secret: names, ids and statuses only).
type IdentityChange struct {
	Change                                string // "key deactivated", "user created", …
	Kind, Name                            string // whose: user, group, role or policy, and its name
	AccessKeyID, Policy, PolicyARN, Group string
	Tag, Status                           string
	Warning                               bool
}

// IdentitiesApplied is one application of a config's identities.
type IdentitiesApplied struct {
	Time time.Time
	// Host is the machine the server runs on; ConfigFile the file read
	// ("" at start, where the server was given it parsed); Trigger
	// "start" or "reload".
	Host, ConfigFile, Trigger string
	Changes                   []IdentityChange
}

// IdentitiesApplied writes the record of e; nothing when nothing changed
// (every replica applies the same config: the first writes the record).
func (l *Log) IdentitiesApplied(e *IdentitiesApplied) {
	if len(e.Changes) > 0 {
		l.write(identitiesRecord(e))
	}
}

func identitiesRecord(e *IdentitiesApplied) *Record {
	params := map[string]any{"trigger": e.Trigger}
	if e.ConfigFile != "" {
		params["configFile"] = e.ConfigFile
	}
	changes := make([]any, 0, len(e.Changes))
	for _, c := range e.Changes {
		// The identity as <kind>Name (userName, roleName, …), then what
		// the change concerns.
		m := map[string]any{"change": c.Change}
		for k, v := range map[string]string{c.Kind + "Name": c.Name, "accessKeyId": c.AccessKeyID, "inlinePolicy": c.Policy,
			"policyArn": c.PolicyARN, "group": c.Group, "tagKey": c.Tag, "status": c.Status} {
			if v != "" {
				m[k] = v
			}
		}
		if c.Warning {
			m["warning"] = true
		}
		changes = append(changes, m)
	}
	// The actor is whoever wrote the config (unknowable here): an
	// operator, unnamed.
	return &Record{EventVersion: eventVersion, EventTime: e.Time.UTC().Format(timeFormat), at: e.Time, EventSource: SourceOperator,
		EventName: EventApplyIdentities, EventType: typeServiceEvent, SourceIPAddress: e.Host,
		UserIdentity: UserIdentity{Type: "Operator"}, RequestParameters: params,
		ResponseElements: map[string]any{"count": len(changes), "changes": changes}, EventID: shiftkey.NewUUID()}
}

// changedKeys are the access keys an identities record names, and the
// names of the users it concerns.
func changedKeys(r *Record) (keys, users []string) {
	list, _ := r.ResponseElements["changes"].([]any)
	for _, x := range list {
		m, _ := x.(map[string]any)
		if k, _ := m["accessKeyId"].(string); k != "" {
			keys = append(keys, k)
		}
		if u, _ := m["userName"].(string); u != "" {
			users = append(users, u)
		}
	}
	return keys, users
}
