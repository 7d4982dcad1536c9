package http

import (
	"cmp"
	"crypto/tls"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/awsjson"
)

// Observer hears of every API call once it is answered (metrics, the
// audit log). It runs on the request's goroutine: it must not block for
// long.
type Observer interface {
	APICall(*shiftkey.APICall)
}

// outcome is what the call recorded while it ran, for the observer.
type outcome struct {
	start  time.Time  // this machine's clock, for the duration
	at     time.Time  // the server's time (Server.Now), for the record
	keyID  string     // the access key the request was signed with
	op     string     // the action or operation, once read
	params url.Values // a Query request's parameters, once read
	result any
	issued string // the id of the credential the call issued (shiftkey.NoteIssued)
	code   string // the AWS error code sent
	msg    string
	status int
}

// report tells the observer how the call went.
func (s *Server) report(c *call) {
	if s.Observer == nil {
		return
	}
	op, form, service, keyID := c.op, c.params, c.service, c.keyID
	if service == "" || keyID == "" {
		// Refused before authentication read the signature (the body
		// was not read whole, the signature does not parse): the key and
		// service its credential names, as sent, as a refused
		// signature's key is recorded.
		k, svc := scopeOf(c.r)
		keyID, service = cmp.Or(keyID, k), cmp.Or(service, svc)
	}
	if op == "" {
		// Refused before the operation was read (authentication): read it
		// now for the record, as CloudTrail names the event even then.
		if service == "redshift-serverless" || looksJSON(c.r) {
			_, op, _ = awsjson.Target(c.r.Header.Get("X-Amz-Target"))
		} else if v, err := c.form(); err == nil && !c.cut {
			op, form = v.Get("Action"), v
		} else {
			op = c.sent("Action")
		}
	}
	if service == "" && !looksJSON(c.r) {
		// No signature named the service (none was sent, or it does not
		// parse): the request itself does, as CloudTrail records such a
		// call under the service asked.
		version := form.Get("Version")
		if form == nil {
			version = c.sent("Version")
		}
		service = s.queryService(op, version)
	}
	e := &shiftkey.APICall{Time: c.at, Duration: time.Since(c.start), RequestID: c.requestID, Service: service, Operation: op,
		AccessKeyID: keyID, UserAgent: c.r.UserAgent(), Form: form, Result: c.result, CredentialID: c.issued,
		ErrorCode: c.code, ErrorMessage: c.msg, Status: c.status, ClientGone: c.gone}
	if e.Status == 0 {
		e.Status = 200
	}
	if c.service == "redshift-serverless" {
		e.Body = c.body
	}
	if cs := c.r.TLS; cs != nil {
		e.TLS = &shiftkey.TLSDetails{Version: tlsVersion(cs.Version), CipherSuite: tls.CipherSuiteName(cs.CipherSuite), Host: c.r.Host}
	}
	if c.caller != nil {
		e.Principal, e.SourceIP, e.Region = c.caller.Principal, c.caller.SourceIP, c.caller.Region
	} else {
		e.SourceIP = s.ClientIP.Of(c.r)
	}
	s.Observer.APICall(e)
}

// sent is parameter name (Action, Version) of a Query request whose
// parameters do not parse (a malformed pair elsewhere, a parameter given
// twice) or did not arrive whole (the client gone mid-body, a body over the
// cap): the value of the one such pair that arrived whole and decodes, ""
// when there is none or there are several that differ.
func (c *call) sent(name string) string {
	raw := c.r.URL.RawQuery
	if c.r.Method == "POST" && !c.presigned {
		raw = string(c.body)
		if c.cut {
			// Only the pairs an '&' ended arrived whole.
			i := strings.LastIndexByte(string(c.partial), '&')
			raw = string(c.partial[:max(i, 0)])
		}
	}
	v, _ := url.ParseQuery(raw) // keeps the pairs that decode
	vals := v[name]
	if len(vals) == 0 || slices.ContainsFunc(vals, func(a string) bool { return a != vals[0] }) {
		return ""
	}
	return vals[0]
}

// queryService is the Query service a request with no credential scope
// asked: the one configured service that answers its action, else the one
// whose API version it names, else "" (an action none or several answer
// with no known Version: nothing tells).
func (s *Server) queryService(action, version string) string {
	if svc := s.queryActions[action]; svc != "" {
		return svc
	}
	for svc, v := range map[string]string{"redshift": redshiftVersion, "iam": iamVersion, "sts": stsVersion} {
		if version == v && s.serves(svc) {
			return svc
		}
	}
	return ""
}

// actionServices maps each action of the configured Query services to the
// service that answers it; an action more than one answers maps to "".
func (s *Server) actionServices() map[string]string {
	m := map[string]string{}
	add := func(service string, actions []string) {
		for _, a := range actions {
			if prev, ok := m[a]; ok && prev != service {
				m[a] = ""
				continue
			}
			m[a] = service
		}
	}
	if s.Redshift != nil {
		add("redshift", RedshiftOperations())
	}
	if s.IAM != nil {
		add("iam", s.IAM.Operations())
	}
	if s.STS != nil {
		add("sts", s.STS.Operations())
	}
	return m
}

// tlsVersion names a TLS version as CloudTrail's tlsDetails does.
func tlsVersion(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return tls.VersionName(v)
}

// RedshiftOperations are the Redshift Query actions the API answers
// (metrics label only these).
func RedshiftOperations() []string { return slices.Sorted(maps.Keys(redshiftActions)) }
