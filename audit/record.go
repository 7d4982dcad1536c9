// Package audit writes the audit log: one JSON line per security event
// (every API call, every gateway login and session end, every session
// group grant and revoke), shaped like AWS CloudTrail records where
// CloudTrail has the field, and reads it back filtered (shiftkey audit
// tail). No secret is ever written: request parameters and response
// elements lose every member whose name says it holds one.
package audit

import (
	"bytes"
	"cmp"
	"encoding/json"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/awsquery"
)

// Record is one audit log line.
type Record struct {
	EventVersion        string         `json:"eventVersion"`
	EventTime           string         `json:"eventTime"`
	EventSource         string         `json:"eventSource"`
	EventName           string         `json:"eventName"`
	EventType           string         `json:"eventType"`
	AWSRegion           string         `json:"awsRegion,omitempty"`
	UserIdentity        UserIdentity   `json:"userIdentity"`
	SourceIPAddress     string         `json:"sourceIPAddress,omitempty"`
	UserAgent           string         `json:"userAgent,omitempty"`
	RequestParameters   map[string]any `json:"requestParameters,omitempty"`
	ResponseElements    map[string]any `json:"responseElements,omitempty"`
	AdditionalEventData map[string]any `json:"additionalEventData,omitempty"`
	ErrorCode           string         `json:"errorCode,omitempty"`
	ErrorMessage        string         `json:"errorMessage,omitempty"`
	RequestID           string         `json:"requestID,omitempty"`
	EventID             string         `json:"eventID"`
	ReadOnly            *bool          `json:"readOnly,omitempty"`
	// ManagementEvent, RecipientAccountID and EventCategory are the same
	// on every record (Log.write): each event acts on the account's
	// control plane, as CloudTrail's management events (ConsoleLogin
	// among them) do.
	ManagementEvent    bool        `json:"managementEvent"`
	RecipientAccountID string      `json:"recipientAccountId,omitempty"`
	EventCategory      string      `json:"eventCategory,omitempty"`
	TLSDetails         *TLSDetails `json:"tlsDetails,omitempty"`

	// at is eventTime's instant, written to the nanosecond as
	// additionalEventData.eventTimePrecise: CloudTrail's eventTime is to
	// the second, too coarse to order one second's events of several
	// replicas (an issue and its logins) in a merged timeline.
	at time.Time
}

// UserIdentity is who acted, as CloudTrail's userIdentity.
type UserIdentity struct {
	Type           string          `json:"type"` // IAMUser, AssumedRole, Unknown, AWSService for the gateway's own acts, Operator
	PrincipalID    string          `json:"principalId,omitempty"`
	ARN            string          `json:"arn,omitempty"`
	AccountID      string          `json:"accountId,omitempty"`
	AccessKeyID    string          `json:"accessKeyId,omitempty"`
	UserName       string          `json:"userName,omitempty"`
	SessionContext *SessionContext `json:"sessionContext,omitempty"`
	// InvokedBy names the service of an AWSService identity, as
	// CloudTrail's does: the gateway acting on its own.
	InvokedBy string `json:"invokedBy,omitempty"`
}

// TLSDetails is CloudTrail's tlsDetails: the TLS an API call came over.
type TLSDetails struct {
	TLSVersion               string `json:"tlsVersion"`
	CipherSuite              string `json:"cipherSuite"`
	ClientProvidedHostHeader string `json:"clientProvidedHostHeader,omitempty"`
}

// SessionContext names the role behind an assumed-role session, with
// CloudTrail's fields: principalId is the role's unique id (AROA…).
type SessionContext struct {
	SessionIssuer struct {
		Type        string `json:"type"`
		PrincipalID string `json:"principalId,omitempty"`
		ARN         string `json:"arn"`
		AccountID   string `json:"accountId,omitempty"`
		UserName    string `json:"userName"`
	} `json:"sessionIssuer"`
	// Attributes are CloudTrail's: when the session's credentials were
	// issued, and whether with MFA (never: shiftkey has none).
	Attributes *SessionAttributes `json:"attributes,omitempty"`
}

// SessionAttributes are CloudTrail's sessionContext.attributes; the
// values are strings there, the flag too.
type SessionAttributes struct {
	CreationDate     string `json:"creationDate"`
	MFAAuthenticated string `json:"mfaAuthenticated"`
}

// Event names and sources of the gateway's records.
const (
	SourceGateway    = "gateway.shiftkey"
	EventLogin       = "GatewayLogin"
	EventSessionEnd  = "GatewaySessionEnd"
	EventGrantGroup  = "GrantSessionGroup"
	EventRevokeGroup = "RevokeSessionGroup"
	// eventVersion is CloudTrail's record version that has every field
	// written (tlsDetails came with 1.08).
	eventVersion = "1.08"
	typeAPICall  = "AwsApiCall"
	// typeServiceEvent is CloudTrail's eventType of an event that no
	// request to a public AWS API caused directly: the gateway's logins,
	// session ends and group changes, and the operator's commands (their
	// eventSource tells them apart). Not AwsConsoleSignIn: that is a
	// sign-in to the AWS console, which rules and dashboards treat as such.
	typeServiceEvent   = "AwsServiceEvent"
	categoryManagement = "Management"
	timeFormat         = "2006-01-02T15:04:05Z"
	timePreciseFormat  = time.RFC3339Nano
	// eventTimePrecise's layout: fixed width, so that it compares as text
	// as the times compare.
	eventTimePreciseFormat = "2006-01-02T15:04:05.000000000Z"
)

// UnknownOperation is the eventName of an API call whose operation is not
// known: no Action or X-Amz-Target arrived whole (the client left
// mid-body, a body over the cap) or the request named none, or several.
// Not an operation name: AWS's are letters and digits.
const UnknownOperation = "(unknown)"

// issuing are the read-looking operations whose answer is worth keeping
// (without its secret): the credential they issued.
var issuing = map[string]bool{"GetClusterCredentials": true, "GetClusterCredentialsWithIAM": true, "GetCredentials": true}

// apiRecord is the record of an API call.
func apiRecord(e *shiftkey.APICall, region string) *Record {
	if e.Region != "" {
		region = e.Region
	}
	r := &Record{EventVersion: eventVersion, EventTime: e.Time.UTC().Format(timeFormat), at: e.Time, EventName: cmp.Or(e.Operation, UnknownOperation),
		EventType: typeAPICall, AWSRegion: region, SourceIPAddress: e.SourceIP, UserAgent: e.UserAgent,
		ErrorCode: e.ErrorCode, ErrorMessage: e.ErrorMessage, RequestID: e.RequestID, EventID: shiftkey.NewUUID()}
	if e.Service != "" {
		r.EventSource = e.Service + ".amazonaws.com"
	}
	r.UserIdentity = identityOf(e.Principal, e.AccessKeyID)
	// Whether what the call sent and got (a DbPassword) crossed the
	// network in cleartext: tls as the gateway's records say it.
	r.AdditionalEventData = map[string]any{"tls": e.TLS != nil}
	if e.ClientGone {
		r.AdditionalEventData["clientGone"] = true
	}
	if e.TLS != nil {
		r.TLSDetails = &TLSDetails{TLSVersion: e.TLS.Version, CipherSuite: e.TLS.CipherSuite, ClientProvidedHostHeader: e.TLS.Host}
	}
	r.RequestParameters = requestParameters(e)
	ro := readOnly(e.Operation)
	if e.Operation != "" { // unknown: neither
		r.ReadOnly = &ro
	}
	if e.ErrorCode == "" && e.Result != nil && (!ro || issuing[e.Operation]) {
		r.ResponseElements = responseElements(e.Result)
	}
	if e.ErrorCode == "" && e.CredentialID != "" {
		// What ties the call to the gateway's records of the credential.
		if r.ResponseElements == nil {
			r.ResponseElements = map[string]any{}
		}
		r.ResponseElements["credentialId"] = e.CredentialID
	}
	return r
}

func readOnly(op string) bool {
	for _, p := range []string{"Get", "List", "Describe"} {
		if strings.HasPrefix(op, p) {
			return true
		}
	}
	return false
}

// identityOf is the userIdentity of an API caller (nil: authentication
// failed; keyID is then the key the request named).
func identityOf(p *shiftkey.Principal, keyID string) UserIdentity {
	if p == nil {
		return UserIdentity{Type: "Unknown", AccessKeyID: keyID}
	}
	id := UserIdentity{PrincipalID: p.UserID, ARN: p.ARN, AccountID: p.Account, AccessKeyID: p.AccessKey}
	switch p.Type {
	case shiftkey.PrincipalAssumedRole:
		id.Type = "AssumedRole"
		id.SessionContext = sessionContext(p.UserID, p.RoleARN, p.RoleName, p.Account, p.TokenIssueTime)
	default:
		id.Type, id.UserName = "IAMUser", p.UserName
	}
	return id
}

// sessionContext is the sessionContext of an assumed-role session:
// userID is its aws:userid (the role's id, a colon, the session's name),
// roleARN and roleName its role's, created when its credentials were
// issued (zero: not known).
func sessionContext(userID, roleARN, roleName, account string, created time.Time) *SessionContext {
	sc := &SessionContext{}
	sc.SessionIssuer.Type, sc.SessionIssuer.ARN, sc.SessionIssuer.UserName, sc.SessionIssuer.AccountID = "Role", roleARN, roleName, account
	sc.SessionIssuer.PrincipalID, _, _ = strings.Cut(userID, ":")
	if !created.IsZero() {
		sc.Attributes = &SessionAttributes{CreationDate: created.UTC().Format(timeFormat), MFAAuthenticated: "false"}
	}
	return sc
}

// identityOfCredential is the userIdentity of a credential's principal:
// its ARN, and what the issue kept of it (to name it as the issuing
// call's record did: the same, less the access key, which signed that
// call and not the login). A credential from before that was kept is
// known by its ARN only.
func identityOfCredential(arn string, to shiftkey.IssuedTo) UserIdentity {
	id := UserIdentity{Type: "Unknown", ARN: arn}
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) == 6 {
		id.AccountID = parts[4]
		switch {
		case strings.HasPrefix(parts[5], "user/"):
			id.Type = "IAMUser"
			id.UserName = parts[5][strings.LastIndex(parts[5], "/")+1:]
			id.PrincipalID = to.PrincipalID
		case strings.HasPrefix(parts[5], "assumed-role/"):
			id.Type = "AssumedRole"
			if to.RoleARN != "" && to.PrincipalID != "" {
				id.PrincipalID = to.PrincipalID
				// A role's name is its ARN's last part (a path ends in "/").
				name := to.RoleARN[strings.LastIndex(to.RoleARN, "/")+1:]
				id.SessionContext = sessionContext(to.PrincipalID, to.RoleARN, name, id.AccountID, to.SessionCreatedAt)
			}
		}
	}
	return id
}

// requestParameters are a call's parameters without the protocol's own
// (Action, Version, X-Amz-*) and without secrets; names as CloudTrail
// writes them (first letter lower-case).
func requestParameters(e *shiftkey.APICall) map[string]any {
	out := map[string]any{}
	// In name order, so that which of two clashing names nests is the
	// same every time (A before A.member.1).
	for _, k := range slices.Sorted(maps.Keys(e.Form)) {
		vs := e.Form[k]
		if k == "Action" || k == "Version" || strings.HasPrefix(strings.ToLower(k), "x-amz-") || secretName(k) {
			continue
		}
		var v any = vs
		if len(vs) == 1 {
			v = typed(k, vs[0])
		}
		if !nest(out, strings.Split(k, "."), v) {
			// Never over what nested: the name as sent, or numbered.
			name := lowerFirst(k)
			for i := 1; out[name] != nil; i++ {
				name = k
				if i > 1 {
					name = k + "#" + strconv.Itoa(i)
				}
			}
			out[name] = v
		}
	}
	if len(e.Body) > 0 {
		// Numbers stay as written (json.Number): one no float64 holds
		// (1e400) is a valid body the service serves, and must not cost
		// the record every other member.
		var body map[string]any
		dec := json.NewDecoder(bytes.NewReader(e.Body))
		dec.UseNumber()
		if dec.Decode(&body) == nil {
			// JSON members keep the names sent: they are already
			// CloudTrail's, and the service reads them case-sensitively,
			// so a WorkgroupName folded onto workgroupName would record
			// a member the call never used in place of the one it did.
			for k, v := range scrubKeeping(body, false).(map[string]any) {
				out[k] = v
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// typedParams are the boolean and integer parameters of the Query
// operations served (the same type wherever a name appears).
var typedParams = map[string]string{"AutoCreate": "bool", "SkipFinalClusterSnapshot": "bool", "SetAsDefault": "bool",
	"DurationSeconds": "int", "MaxRecords": "int", "NumberOfNodes": "int", "Port": "int", "MaxSessionDuration": "int", "MaxItems": "int"}

// typed is a Query parameter's value as CloudTrail writes it, and as a
// JSON call's are: a boolean or integer parameter as a JSON boolean or
// number (the value the service reads), other values and values the
// service refuses as sent. As strings, jq's comparisons of them with
// numbers and booleans silently fail.
func typed(name, value string) any {
	switch typedParams[name] {
	case "bool":
		switch strings.ToLower(value) {
		case "true":
			return true
		case "false":
			return false
		}
	case "int":
		if n, err := strconv.Atoi(value); err == nil {
			return json.Number(strconv.Itoa(n))
		}
	}
	return value
}

// maxNestedIndex bounds the list index nest builds (AWS's lists here are
// short): a larger one stays a flat name rather than a huge list.
const maxNestedIndex = 1000

// nest puts value at the path of a Query-protocol parameter name into m,
// as CloudTrail shows lists and structures whatever a client called a list
// member: DbGroups.DbGroup.1 (the AWS CLI) and DbGroups.member.1 (other
// signers) both become dbGroups[0]; Tags.member.1.Key becomes tags[0].key.
// It reports false, changing nothing, where the name does not fit what m
// holds already (the caller then keeps the flat name).
func nest(m map[string]any, path []string, value any) bool {
	name := lowerFirst(path[0])
	if name == "" {
		return false
	}
	for _, p := range path {
		if strings.Trim(p, "0123456789") == "" && !isIndex(p) {
			return false // an index out of range, or a name of digits
		}
	}
	if len(path) == 1 {
		if _, taken := m[name]; taken {
			return false
		}
		m[name] = value
		return true
	}
	// Name.member.N… or Name.N…: a list.
	rest := path[1:]
	if len(rest) >= 2 && !isIndex(rest[0]) && isIndex(rest[1]) {
		rest = rest[1:]
	}
	if isIndex(rest[0]) {
		i, _ := awsquery.Index(rest[0])
		list, ok := m[name].([]any)
		if !ok && m[name] != nil {
			return false
		}
		for len(list) < i {
			list = append(list, nil)
		}
		if len(rest) == 1 {
			if list[i-1] != nil {
				return false
			}
			list[i-1] = value
		} else {
			sub, ok := list[i-1].(map[string]any)
			if !ok {
				if list[i-1] != nil {
					return false
				}
				sub = map[string]any{}
			}
			if !nest(sub, rest[1:], value) {
				return false
			}
			list[i-1] = sub
		}
		m[name] = list
		return true
	}
	sub, ok := m[name].(map[string]any)
	if !ok {
		if m[name] != nil {
			return false
		}
		sub = map[string]any{}
	}
	if !nest(sub, rest, value) {
		return false
	}
	m[name] = sub
	return true
}

// isIndex reports whether s is a list index of the Query protocol that
// nest builds a list for.
func isIndex(s string) bool {
	i, ok := awsquery.Index(s)
	return ok && i <= maxNestedIndex
}

// responseElements is a result as JSON, without secrets.
func responseElements(result any) map[string]any {
	b, err := json.Marshal(result)
	if err != nil {
		return nil
	}
	var v any
	if json.Unmarshal(b, &v) != nil {
		return nil
	}
	m, ok := scrub(dropNulls(v)).(map[string]any)
	if !ok || len(m) == 0 {
		return nil
	}
	return m
}

// dropNulls drops, at every depth, the members of v that are null: a
// result's nil field (PackedPolicySize of an AssumeRole without a session
// policy) is a member its answer leaves out, not one it sends empty.
func dropNulls(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if x == nil {
				delete(v, k)
			} else {
				v[k] = dropNulls(x)
			}
		}
	case []any:
		for i := range v {
			v[i] = dropNulls(v[i])
		}
	}
	return v
}

// scrub drops, at every depth, the members whose name says they hold a
// secret, and lower-cases the first letter of the others' names.
func scrub(v any) any { return scrubKeeping(v, true) }

// scrubKeeping is scrub, lower-casing the first letters only when lower.
func scrubKeeping(v any, lower bool) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			if secretName(k) {
				continue
			}
			if lower {
				k = lowerFirst(k)
			}
			out[k] = scrubKeeping(x, lower)
		}
		return out
	case []any:
		for i := range v {
			v[i] = scrubKeeping(v[i], lower)
		}
		return v
	}
	return v
}

// secretWords mark a member that holds a secret (DbPassword,
// SecretAccessKey, SessionToken, SCRAM keys and salts, signatures).
var secretWords = []string{"password", "secret", "token", "storedkey", "serverkey", "salt", "signature", "authorization"}

func secretName(k string) bool {
	k = strings.ToLower(k)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 || unicode.IsLower(r) {
		return s
	}
	return string(unicode.ToLower(r)) + s[n:]
}

// hostOf is the address of host:port.
func hostOf(hostPort string) string {
	if h, _, err := net.SplitHostPort(hostPort); err == nil {
		return h
	}
	return hostPort
}

// loginRecord is the record of a gateway login (ok or refused).
func loginRecord(e *shiftkey.Login) *Record {
	r := gatewayRecord(e, EventLogin, e.Time)
	r.AdditionalEventData = map[string]any{"connectionId": e.ConnID, "tls": e.TLS, "authenticationMillis": e.Duration.Milliseconds()}
	if e.OK {
		r.AdditionalEventData["backendReused"] = e.BackendReused
	} else {
		r.ErrorCode, r.ErrorMessage = e.Reason, "login refused: "+strings.ReplaceAll(e.Reason, "_", " ")
	}
	addNotices(r, e)
	return r
}

// addNotices adds what the client was told its session did not get (the
// groups of dbGroups not joined, and why) to a login's or session's record.
func addNotices(r *Record, e *shiftkey.Login) {
	if len(e.Notices) > 0 {
		r.AdditionalEventData["notices"] = e.Notices
	}
}

// sessionEndRecord is the record of an ended session.
func sessionEndRecord(e *shiftkey.SessionEnd) *Record {
	r := gatewayRecord(&e.Login, EventSessionEnd, e.End)
	r.AdditionalEventData = map[string]any{"connectionId": e.ConnID, "tls": e.TLS, "backendReused": e.BackendReused,
		"sessionStart": e.Start.UTC().Format(timePreciseFormat), "sessionEnd": e.End.UTC().Format(timePreciseFormat),
		"durationSeconds": e.End.Sub(e.Start).Seconds(), "bytesIn": e.BytesIn, "bytesOut": e.BytesOut, "endReason": e.Reason}
	addNotices(r, &e.Login)
	return r
}

// gatewayRecord is what login and session records share: who (the
// credential's principal), from where, and for what.
func gatewayRecord(e *shiftkey.Login, name string, at time.Time) *Record {
	r := &Record{EventVersion: eventVersion, EventTime: at.UTC().Format(timeFormat), at: at, EventSource: SourceGateway, EventName: name,
		EventType: typeServiceEvent, AWSRegion: e.Region, SourceIPAddress: hostOf(e.Source), EventID: shiftkey.NewUUID()}
	r.UserIdentity = UserIdentity{Type: "Unknown"}
	if e.PrincipalARN != "" {
		r.UserIdentity = identityOfCredential(e.PrincipalARN, e.IssuedTo)
	}
	r.RequestParameters = map[string]any{"scope": e.Scope, "loginName": e.User}
	if e.Database != "" {
		r.RequestParameters["database"] = e.Database
	}
	if e.CredentialID != "" {
		r.ResponseElements = map[string]any{"credentialId": e.CredentialID, "dbUser": e.DBUser, "dbGroups": nonNil(e.Groups)}
		if e.AccessKeyID != "" {
			// The key that got the credential (never a secret): a leaked
			// key's logins, found without the issuing call's record.
			r.ResponseElements["accessKeyId"] = e.AccessKeyID
		}
	}
	return r
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// grantRecord is the record of a session group granted or revoked.
func grantRecord(e *shiftkey.GrantChange) *Record {
	name := EventGrantGroup
	if !e.Granted {
		name = EventRevokeGroup
	}
	r := &Record{EventVersion: eventVersion, EventTime: e.Time.UTC().Format(timeFormat), at: e.Time, EventSource: SourceGateway, EventName: name,
		EventType: typeServiceEvent, AWSRegion: e.Region, UserIdentity: UserIdentity{Type: "AWSService", InvokedBy: SourceGateway}, EventID: shiftkey.NewUUID(),
		RequestParameters:   map[string]any{"scope": e.Scope, "dbUser": e.Role, "group": e.Group},
		AdditionalEventData: map[string]any{"reconciled": e.Reconciled}}
	if e.LeftBy != "" {
		r.AdditionalEventData["leftBy"] = e.LeftBy
	}
	if e.Reason != "" {
		r.AdditionalEventData["reason"] = e.Reason
	}
	// The session whose start or end caused it: the credential's
	// principal acted, through the gateway. A reconciled revoke has none.
	if o := e.Session; o.PrincipalARN != "" || o.CredentialID != "" {
		r.UserIdentity = identityOfCredential(o.PrincipalARN, o.IssuedTo)
		r.SourceIPAddress = hostOf(o.Source)
		r.AdditionalEventData["connectionId"] = o.ConnID
		r.AdditionalEventData["credentialId"] = o.CredentialID
		if o.AccessKeyID != "" {
			r.AdditionalEventData["accessKeyId"] = o.AccessKeyID
		}
	}
	return r
}
