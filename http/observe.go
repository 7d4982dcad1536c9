package http

import (
	"maps"
	"net/url"
	"slices"
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
	op, form := c.op, c.params
	if op == "" {
		// Refused before the operation was read (authentication): read it
		// now for the record, as CloudTrail names the event even then.
		if c.service == "redshift-serverless" || looksJSON(c.r) {
			_, op, _ = awsjson.Target(c.r.Header.Get("X-Amz-Target"))
		} else if v, err := c.form(); err == nil {
			op, form = v.Get("Action"), v
		}
	}
	e := &shiftkey.APICall{Time: c.at, Duration: time.Since(c.start), RequestID: c.requestID, Service: c.service, Operation: op,
		AccessKeyID: c.keyID, UserAgent: c.r.UserAgent(), Form: form, Result: c.result, CredentialID: c.issued,
		ErrorCode: c.code, ErrorMessage: c.msg, Status: c.status}
	if e.Status == 0 {
		e.Status = 200
	}
	if c.service == "redshift-serverless" {
		e.Body = c.body
	}
	if c.caller != nil {
		e.Principal, e.SourceIP, e.Region = c.caller.Principal, c.caller.SourceIP, c.caller.Region
	} else {
		e.SourceIP = s.ClientIP.Of(c.r)
	}
	s.Observer.APICall(e)
}

// RedshiftOperations are the Redshift Query actions the API answers
// (metrics label only these).
func RedshiftOperations() []string { return slices.Sorted(maps.Keys(redshiftActions)) }
