package audit

import (
	"encoding/json"
	"maps"
	"unicode/utf8"
)

// MaxRecordBytes bounds one audit line. Records are written for calls
// refused before any authentication too, and they keep what the client
// sent (parameters, the operation it named, its user agent), escaped up
// to six bytes a byte ('<' is \u003c): unbounded, a 1 MiB request made a
// 6 MiB line, and anyone could fill the log's disk.
const MaxRecordBytes = 128 << 10

// A record over MaxRecordBytes is written cut down: each text field to
// maxTextBytes, and requestParameters and responseElements dropped when
// either is over maxMemberBytes (CloudTrail, too, omits members over its
// limit). additionalEventData says what was cut. The cut record's worst
// case (every text field escaped six-fold, both members at the limit)
// stays under MaxRecordBytes.
const (
	maxTextBytes   = 512
	maxMemberBytes = 16 << 10
)

// encode is r as one line's JSON; an API call's is cut down when it is
// too long. Only those hold what any client may send: the gateway's
// records hold a startup packet's names (capped there) and the
// operator's revocations list what they revoked, which must stay whole.
func encode(r *Record) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil || len(b) <= MaxRecordBytes || r.EventType != typeAPICall {
		return b, err
	}
	return json.Marshal(cut(r))
}

// cut is a copy of r within the limits above.
func cut(r *Record) *Record {
	c := *r
	extra := maps.Clone(r.AdditionalEventData)
	if extra == nil {
		extra = map[string]any{}
	}
	extra["recordTruncated"] = true
	id := &c.UserIdentity
	for _, s := range []*string{&c.EventVersion, &c.EventTime, &c.EventSource, &c.EventName, &c.EventType, &c.AWSRegion,
		&c.SourceIPAddress, &c.UserAgent, &c.ErrorCode, &c.ErrorMessage, &c.RequestID, &c.EventID,
		&id.Type, &id.PrincipalID, &id.ARN, &id.AccountID, &id.AccessKeyID, &id.UserName} {
		*s = truncate(*s, maxTextBytes)
	}
	if sc := id.SessionContext; sc != nil {
		s := *sc
		s.SessionIssuer.Type = truncate(s.SessionIssuer.Type, maxTextBytes)
		s.SessionIssuer.ARN = truncate(s.SessionIssuer.ARN, maxTextBytes)
		s.SessionIssuer.UserName = truncate(s.SessionIssuer.UserName, maxTextBytes)
		s.SessionIssuer.PrincipalID = truncate(s.SessionIssuer.PrincipalID, maxTextBytes)
		s.SessionIssuer.AccountID = truncate(s.SessionIssuer.AccountID, maxTextBytes)
		id.SessionContext = &s
	}
	if n := encodedLen(c.RequestParameters); n > maxMemberBytes {
		c.RequestParameters, extra["requestParametersOmittedBytes"] = nil, n
	}
	if n := encodedLen(c.ResponseElements); n > maxMemberBytes {
		c.ResponseElements, extra["responseElementsOmittedBytes"] = nil, n
	}
	c.AdditionalEventData = extra
	return &c
}

func encodedLen(m map[string]any) int {
	b, _ := json.Marshal(m)
	return len(b)
}

// truncate is s cut to at most n bytes, at a character's start.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
