package http

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/admission"
	"github.com/shiftkey/shiftkey/awsjson"
	"github.com/shiftkey/shiftkey/awsquery"
	"github.com/shiftkey/shiftkey/redshift"
	"github.com/shiftkey/shiftkey/sigv4"
)

// MaxBodyBytes bounds a request body; credential calls are a few hundred bytes.
const MaxBodyBytes = 1 << 20

// QueryService runs the actions of a Query-protocol service that decodes
// its own parameters (iamapi.Service, sts.Service). The result is
// marshalled as the children of <ActionResult>.
type QueryService interface {
	Handle(ctx context.Context, c *shiftkey.Caller, action string, v url.Values) (any, error)
	// Operations are the actions Handle answers: a request refused
	// before a signature named its service is recorded under the service
	// its Action belongs to.
	Operations() []string
}

// JSONService runs the operations of an AWS JSON 1.1 service, given the
// request body (serverless.Service). The result is marshalled as JSON.
type JSONService interface {
	Handle(ctx context.Context, c *shiftkey.Caller, op string, body []byte) (any, error)
}

// Server is the API's HTTP handler.
type Server struct {
	Identities shiftkey.IdentityStore
	Redshift   *redshift.Service // decoded here into its typed inputs
	IAM        QueryService
	Serverless JSONService
	STS        QueryService
	AccountID  string
	// Regions are the regions whose Redshift and Serverless resources this
	// API serves; nil → shiftkey.DefaultRegion only. IAM and STS are
	// global: they also accept us-east-1, where the SDKs sign IAM.
	Regions  []string
	Logger   *slog.Logger     // nil → discard
	Now      func() time.Time // nil → time.Now
	ClientIP ClientIP         // where aws:SourceIp comes from; zero: the socket
	// Observer, when set, hears of every call once answered.
	Observer Observer
	// CPUSlots is how many requests do their CPU work (signature, policy,
	// SCRAM keys) at once; the others wait in arrival order. 0: GOMAXPROCS;
	// negative: no bound. A request leaves its place when it starts waiting
	// for the store's commit or writes its answer.
	CPUSlots int
	// Decisions, when set, is held for reading by each call from its
	// authentication until its answer is written. A change of several
	// identities at once (serve's reload of its iam:) holds it for
	// writing, so that no call is decided under part of the change: a
	// widened Allow without the Deny that came with it.
	Decisions *sync.RWMutex

	gate *admission.Gate // from CPUSlots, made by Handler
	// queryActions are the Query services' actions, each with the one
	// service that answers it (made by Handler).
	queryActions map[string]string

	// keyUses are the access keys whose use is being recorded, off the
	// request path (recordKeyUse); keyUsesDone is signalled when the last
	// of those writes returns.
	keyUsesMu   sync.Mutex
	keyUses     map[string]bool
	keyUsesDone *sync.Cond
}

// WaitBackground waits for the writes that calls started and did not wait
// for (the records of access keys' use): a drain calls it before the store
// is closed, a test before it reads them.
func (s *Server) WaitBackground() {
	s.keyUsesMu.Lock()
	defer s.keyUsesMu.Unlock()
	for len(s.keyUses) > 0 {
		s.keyUsesDone.Wait()
	}
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Server) now() time.Time { return shiftkey.Now(s.Now) }

// Handler returns the root handler.
func (s *Server) Handler() http.Handler {
	s.gate = nil
	if s.CPUSlots >= 0 {
		s.gate = admission.New(cmp.Or(s.CPUSlots, runtime.GOMAXPROCS(0)))
	}
	s.queryActions = s.actionServices()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/", s.serveAPI)
	return apiHandler{mux, s}
}

// apiHandler is the Server's root handler; Limits.HTTPServer answers the
// requests over its cap through it, so that they are reported as the
// calls they are.
type apiHandler struct {
	*http.ServeMux
	s *Server
}

// throttled answers a request over the cap with Throttling (unread) and
// reports it: an operator must see the cap being hit in the metrics and
// the audit log.
func (h apiHandler) throttled(w http.ResponseWriter, r *http.Request) { h.s.throttled(w, r) }

// throttled answers r, over the cap, with Throttling and reports it.
func (s *Server) throttled(w http.ResponseWriter, r *http.Request) {
	c := s.newCall(w, r)
	defer s.report(c) // reads no body: c.body stays empty
	// The body is left unread; closing the connection after the answer
	// keeps net/http from first waiting for the rest of it (up to
	// ReadTimeout) to discard it.
	w.Header().Set("Connection", "close")
	s.writeThrottled(c)
}

// newCall begins answering r on w: its request id and its Date, by the
// clock signatures are judged by (a replica's is its store's, not its
// machine's), which the SDKs correct a client's clock from after a
// "Signature expired".
func (s *Server) newCall(w http.ResponseWriter, r *http.Request) *call {
	c := &call{w: w, r: r, requestID: shiftkey.NewUUID(), outcome: outcome{start: time.Now(), at: s.now()}}
	w.Header().Set("x-amzn-RequestId", c.requestID)
	w.Header().Set("Date", c.at.UTC().Format(http.TimeFormat))
	return c
}

// call is one API request in flight.
type call struct {
	w         http.ResponseWriter
	r         *http.Request
	requestID string
	body      []byte
	// partial is the body as far as it was read, when cut is set: it was
	// not read whole (the client left, or it was over the cap).
	partial   []byte
	cut       bool
	gone      bool // the client left before its answer
	caller    *shiftkey.Caller
	service   string
	presigned bool // authenticated by a presigned query string
	outcome
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	aw := &answerWriter{ResponseWriter: w}
	w = aw
	c := s.newCall(w, r)
	defer func() {
		// Deferred first, so it runs last: the place and the hold on
		// Decisions are already given back when a panic reaches here.
		if v := recover(); v != nil {
			s.panicked(c, aw, v)
			return
		}
		s.report(c)
	}()
	c.r = r.WithContext(shiftkey.WithIssuedNote(r.Context(), &c.issued))
	r = c.r
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		s.writeError(c, shiftkey.Errorf("InvalidAction", "Method %s is not allowed.", r.Method))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		c.partial, c.cut = body, true // what arrived: the record names the operation when it did
		if looksJSON(r) {
			// Refused before the credential scope is read: a JSON 1.1
			// client gets its own envelope, not Query XML it cannot parse.
			c.service = "redshift-serverless"
		}
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			s.writeError(c, shiftkey.Errorf("RequestEntityTooLarge", "Request body larger than %d bytes.", MaxBodyBytes))
			return
		}
		// Short of the cap, a body stops only when its client goes.
		c.gone = true
		s.writeError(c, shiftkey.Errorf(shiftkey.CodeMalformedQueryString, "The request body could not be read."))
		return
	}
	c.body = body
	if s.gate != nil {
		// Admitted only once the body is read: a slow client holds no place.
		if err := s.gate.Enter(r.Context()); err != nil {
			c.gone = true
			s.writeThrottled(c) // the client has gone
			return
		}
		// The store calls it before its commit, the answer and the
		// handler's end after it: the place is left once.
		leave := sync.OnceFunc(s.gate.Leave)
		defer leave()
		c.r = r.WithContext(shiftkey.WithAdmission(r.Context(), leave))
		r = c.r
		c.w = admittedWriter{w, leave}
	}
	if s.Decisions != nil {
		// After the body is read and the place taken: a slow client holds
		// no reload up, nor, behind it, every other call.
		s.Decisions.RLock()
		done := sync.OnceFunc(s.Decisions.RUnlock)
		defer done()
		c.w = admittedWriter{c.w, done}
	}
	if err := s.authenticate(r.Context(), c); err != nil {
		s.writeError(c, err)
		return
	}
	if !s.serves(c.service) {
		s.writeError(c, shiftkey.Errorf(shiftkey.CodeInvalidAction, "The service %s is not available at this endpoint.", c.service))
		return
	}
	switch c.service {
	case "redshift":
		s.serveQuery(c, redshiftNS, redshiftVersion, s.redshiftAction(c))
	case "iam":
		s.serveQuery(c, iamNS, iamVersion, s.IAM.Handle)
	case "sts":
		s.serveQuery(c, stsNS, stsVersion, s.STS.Handle)
	case "redshift-serverless":
		s.serveServerless(c)
	default:
		s.writeError(c, shiftkey.Errorf(shiftkey.CodeInvalidAction, "The service %s is not available at this endpoint.", c.service))
	}
}

// panicked answers and reports a call whose handler panicked with v. Left
// to net/http, the panic would drop the connection, and the deferred
// report would count the call as a success. Before anything is written the
// client gets InternalFailure (500); after, the answer is cut (the
// connection aborted), as a truncated one must not read as complete. Either
// way the call is reported as the InternalFailure it is.
func (s *Server) panicked(c *call, aw *answerWriter, v any) {
	if v != http.ErrAbortHandler {
		s.logger().ErrorContext(c.r.Context(), "API handler panicked", "request_id", c.requestID,
			"service", c.service, "operation", c.op, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	}
	c.result = nil // no result was answered
	e := &shiftkey.Error{Code: shiftkey.CodeInternalFailure, Message: "An internal error occurred. Request ID: " + c.requestID}
	if !aw.started {
		s.writeError(c, e)
		s.report(c)
		return
	}
	c.code, c.msg, c.status = e.Code, e.Message, http.StatusInternalServerError
	if c.service == "redshift-serverless" {
		c.code = jsonCode(e.Code)
	}
	s.report(c)
	panic(http.ErrAbortHandler)
}

// answerWriter notes whether the answer has begun: a handler that panics
// after it can no longer be answered with an error.
type answerWriter struct {
	http.ResponseWriter
	started bool
}

func (w *answerWriter) WriteHeader(status int) {
	w.started = true
	w.ResponseWriter.WriteHeader(status)
}

func (w *answerWriter) Write(b []byte) (int, error) {
	w.started = true
	return w.ResponseWriter.Write(b)
}

func (w *answerWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// serves reports whether the service of a credential scope is configured.
func (s *Server) serves(service string) bool {
	switch service {
	case "redshift":
		return s.Redshift != nil
	case "iam":
		return s.IAM != nil
	case "sts":
		return s.STS != nil
	case "redshift-serverless":
		return s.Serverless != nil
	}
	return false
}

// checkRegion refuses a credential scope whose region this API does not
// serve, as AWS refuses a scope for the wrong region: resources live in one
// region, and a region that is not checked would be copied into every ARN.
func (s *Server) checkRegion(service, region string) error {
	if slices.Contains(s.regions(), region) {
		return nil
	}
	if (service == "iam" || service == "sts") && region == shiftkey.DefaultRegion {
		return nil
	}
	return shiftkey.Errorf(shiftkey.CodeSignatureDoesNotMatch, "Credential should be scoped to a valid region, not '%s'.", region)
}

func (s *Server) regions() []string {
	if len(s.Regions) == 0 {
		return []string{shiftkey.DefaultRegion}
	}
	return s.Regions
}

// authenticate verifies the SigV4 signature and resolves the caller: an
// IAM user's access key, or an STS session's temporary key and token.
func (s *Server) authenticate(ctx context.Context, c *call) error {
	auth, err := sigv4.Parse(c.r)
	if err != nil {
		if looksJSON(c.r) {
			// No credential scope names the service: answer a JSON 1.1
			// client in its own envelope, not in Query XML it cannot parse.
			c.service = "redshift-serverless"
		}
		return sigError(err)
	}
	c.service, c.presigned, c.keyID = auth.Service, auth.Presigned, auth.AccessKeyID
	// The scope is refused before any key is looked up or any HMAC computed.
	if err := s.checkRegion(c.service, auth.Region); err != nil {
		return err
	}
	if c.r.Header.Get("X-Amz-Target") != "" && c.service != "redshift-serverless" {
		// A JSON 1.1 call signed for a Query service: AWS's Serverless
		// endpoint refuses the scope; here it would reach that service
		// and fail on a body it cannot read. Answered as JSON.
		c.service = "redshift-serverless"
		return shiftkey.Errorf(shiftkey.CodeSignatureDoesNotMatch, "Credential should be scoped to correct service: 'redshift-serverless'.")
	}
	invalid := shiftkey.Errorf(shiftkey.CodeInvalidClientTokenID, "The security token included in the request is invalid.")
	now := s.now()
	var principal *shiftkey.Principal
	if strings.HasPrefix(auth.AccessKeyID, "ASIA") {
		sess, err := s.Identities.Session(ctx, auth.AccessKeyID)
		if shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity {
			return invalid
		}
		if err != nil {
			return err
		}
		if err := auth.Verify(c.r, c.body, sess.Secret, now); err != nil {
			return sigError(err)
		}
		if !sess.TokenMatches(auth.SecurityToken) { // the store keeps only the token's hash
			return invalid
		}
		if !now.Before(sess.ExpiresAt) {
			return shiftkey.Errorf(CodeExpiredToken, "The security token included in the request is expired")
		}
		if principal, err = s.sessionPrincipal(ctx, sess); err != nil {
			return err
		}
	} else {
		key, err := s.Identities.AccessKey(ctx, auth.AccessKeyID)
		if shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity || err == nil && key.Status != "Active" {
			return invalid
		}
		if err != nil {
			return err
		}
		if err := auth.Verify(c.r, c.body, key.Secret, now); err != nil {
			return sigError(err)
		}
		if auth.SecurityToken != "" {
			// Long-term IAM user keys never carry a session token.
			return invalid
		}
		// By the user's id, as the key records it, not its name: a user
		// renamed since the key was read (here, or in a replica's cache not
		// yet told) is still its user, and a new user of the old name is
		// another id.
		user, err := s.Identities.EntityByID(ctx, shiftkey.KindUser, key.UserID)
		if shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity {
			return invalid // the user, and so the key, deleted meanwhile
		}
		if err != nil {
			return err
		}
		s.recordKeyUse(ctx, c, key, auth.Region, now)
		tags, err := s.Identities.Tags(ctx, shiftkey.KindUser, user.Name)
		if err != nil {
			return err
		}
		principal = &shiftkey.Principal{ARN: user.ARN, Account: s.AccountID, Type: shiftkey.PrincipalUser,
			UserName: user.Name, UserID: user.ID, AccessKey: key.ID, Tags: tags}
	}
	c.caller = &shiftkey.Caller{
		Principal:       principal,
		Region:          auth.Region,
		SourceIP:        s.ClientIP.Of(c.r),
		SecureTransport: c.r.TLS != nil,
		RequestID:       c.requestID,
		Time:            now,
	}
	return nil
}

// recordKeyUse records, for GetAccessKeyLastUsed, that key signed a
// request that authenticated, once a shiftkey.KeyUseInterval at most (the
// cached key says when it was last recorded): most requests write nothing.
// The write runs beside the call, one per key at a time, so that no call
// waits for it (on SQLite it may wait out another process's write lock);
// a failed one only leaves the date older.
func (s *Server) recordKeyUse(ctx context.Context, c *call, key *shiftkey.AccessKey, region string, now time.Time) {
	if now.Sub(key.LastUsed) < shiftkey.KeyUseInterval {
		return
	}
	s.keyUsesMu.Lock()
	if s.keyUses[key.ID] {
		s.keyUsesMu.Unlock()
		return
	}
	if s.keyUses == nil {
		s.keyUses, s.keyUsesDone = map[string]bool{}, sync.NewCond(&s.keyUsesMu)
	}
	s.keyUses[key.ID] = true
	s.keyUsesMu.Unlock()
	ctx = context.WithoutCancel(ctx)
	service, requestID := c.service, c.requestID
	go func() {
		// Once the write has returned (and a cache in front of the store
		// dropped the key), another call may write again.
		defer func() {
			s.keyUsesMu.Lock()
			delete(s.keyUses, key.ID)
			if len(s.keyUses) == 0 {
				s.keyUsesDone.Broadcast()
			}
			s.keyUsesMu.Unlock()
		}()
		if err := s.Identities.RecordAccessKeyUse(ctx, key.ID, now, service, region); err != nil {
			s.logger().WarnContext(ctx, "access key use not recorded", "request_id", requestID, "access_key_id", key.ID, "error", err)
		}
	}()
}

// looksJSON reports whether r is shaped like a JSON 1.1 (Serverless)
// request.
func looksJSON(r *http.Request) bool {
	return r.Header.Get("X-Amz-Target") != "" || strings.HasPrefix(r.Header.Get("Content-Type"), awsjson.ContentType)
}

// sessionPrincipal is the caller behind STS session credentials. The role
// must still exist, as the one assumed (its unique id: not another role
// since created under its name); its tags apply, overridden by the
// session's.
func (s *Server) sessionPrincipal(ctx context.Context, sess *shiftkey.Session) (*shiftkey.Principal, error) {
	role, err := s.Identities.Entity(ctx, shiftkey.KindRole, sess.RoleName)
	if shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity || err == nil && role.ID != sess.RoleID {
		return nil, shiftkey.Errorf(shiftkey.CodeInvalidClientTokenID, "The security token included in the request is invalid.")
	}
	if err != nil {
		return nil, err
	}
	roleTags, err := s.Identities.Tags(ctx, shiftkey.KindRole, role.Name)
	if err != nil {
		return nil, err
	}
	tags := append([]shiftkey.Tag(nil), sess.Tags...)
	for _, t := range roleTags {
		overridden := false
		for _, st := range sess.Tags {
			if strings.EqualFold(st.Key, t.Key) {
				overridden = true
			}
		}
		if !overridden {
			tags = append(tags, t)
		}
	}
	return &shiftkey.Principal{
		ARN:     fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", s.AccountID, role.Name, sess.SessionName),
		Account: s.AccountID, Type: shiftkey.PrincipalAssumedRole,
		UserID: role.ID + ":" + sess.SessionName, AccessKey: sess.AccessKeyID,
		RoleName: role.Name, RoleARN: role.ARN, SessionName: sess.SessionName, SessionPolicy: sess.SessionPolicy,
		TokenIssueTime: sess.CreatedAt, Tags: tags,
	}, nil
}

func sigError(err error) error {
	if e, ok := errors.AsType[*sigv4.Error](err); ok {
		return &shiftkey.Error{Code: e.Code, Message: e.Message}
	}
	return err
}

// The XML namespaces of the Query services' responses.
const (
	redshiftNS = "http://redshift.amazonaws.com/doc/2012-12-01/"
	iamNS      = "https://iam.amazonaws.com/doc/2010-05-08/"
	stsNS      = "https://sts.amazonaws.com/doc/2011-06-15/"
)

// serverlessTarget is the service name of Redshift Serverless's
// X-Amz-Target.
const serverlessTarget = "RedshiftServerless"

// writeError answers with the error envelope of the call's protocol. Errors
// that are not *shiftkey.Error are logged here, once: a store that could not
// be reached (shiftkey.ErrStoreUnavailable) or a call out of time is
// sent as ServiceUnavailable, anything else as a generic InternalFailure.
func (s *Server) writeError(c *call, err error) {
	e, ok := errors.AsType[*shiftkey.Error](err)
	if !ok && errors.Is(err, shiftkey.ErrStoreUnavailable) {
		s.logger().WarnContext(c.r.Context(), "store unavailable", "request_id", c.requestID, "error", err)
		e, ok = shiftkey.StoreOutage(c.requestID), true
	}
	if !ok && errors.Is(context.Cause(c.r.Context()), errRequestDeadline) {
		s.logger().WarnContext(c.r.Context(), "request did not complete in time", "request_id", c.requestID, "error", err)
		e, ok = shiftkey.RequestTimedOut(c.requestID), true
	}
	if !ok {
		s.logger().ErrorContext(c.r.Context(), "internal error", "request_id", c.requestID, "error", err)
		e = &shiftkey.Error{Code: shiftkey.CodeInternalFailure, Message: "An internal error occurred. Request ID: " + c.requestID}
	}
	status := StatusOf(e.Code)
	c.code, c.msg, c.status = e.Code, e.Message, status
	if c.service == "redshift-serverless" {
		code := jsonCode(e.Code)
		switch code {
		case shiftkey.CodeResourceNotFound:
			// Real Redshift Serverless answers 400, not the model's 404.
			status = http.StatusBadRequest
		case "ExpiredTokenException":
			// AWS's common errors of JSON services: 403 (the Query
			// services' ExpiredToken is 400).
			status = http.StatusForbidden
		}
		// Recorded (audit log, metrics) as the client got it.
		c.code, c.status = code, status
		awsjson.WriteError(c.w, status, code, e.Message)
		return
	}
	ns := redshiftNS
	switch c.service {
	case "iam":
		ns = iamNS
	case "sts":
		ns = stsNS
	}
	c.w.Header().Set("Content-Type", "text/xml")
	c.w.WriteHeader(status)
	awsquery.WriteError(c.w, ns, e.Code, e.Message, c.requestID, status >= 500)
}

// jsonCode is the JSON-protocol name of an error code.
func jsonCode(code string) string {
	switch code {
	case shiftkey.CodeAccessDenied:
		return "AccessDeniedException"
	case shiftkey.CodeInvalidClientTokenID:
		return "UnrecognizedClientException"
	case shiftkey.CodeSignatureDoesNotMatch, shiftkey.CodeRequestExpired:
		return "InvalidSignatureException"
	case shiftkey.CodeIncompleteSignature:
		return "IncompleteSignatureException"
	case shiftkey.CodeMissingAuthenticationToken:
		return "MissingAuthenticationTokenException"
	case CodeExpiredToken:
		return "ExpiredTokenException"
	case shiftkey.CodeInternalFailure:
		return "InternalServerException"
	case shiftkey.CodeInvalidParameterValue, shiftkey.CodeMissingParameter:
		return shiftkey.CodeValidation
	}
	return code
}

func (s *Server) serveServerless(c *call) {
	if c.r.Method != http.MethodPost {
		s.writeError(c, shiftkey.Errorf(shiftkey.CodeValidation, "Redshift Serverless requests are POSTs."))
		return
	}
	svc, op, ok := awsjson.Target(c.r.Header.Get("X-Amz-Target"))
	if !ok || svc != serverlessTarget {
		s.writeError(c, shiftkey.Errorf("UnknownOperationException", "X-Amz-Target %q is not a Redshift Serverless operation.", c.r.Header.Get("X-Amz-Target")))
		return
	}
	c.op = op
	out, err := s.Serverless.Handle(c.r.Context(), c.caller, op, c.body)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.result = out
	if op == "GetCredentials" {
		s.logger().DebugContext(c.r.Context(), "credential issued", "request_id", c.requestID, "principal", c.caller.Principal.ARN, "operation", op)
	}
	if err := awsjson.WriteResult(c.w, out); err != nil {
		s.logger().ErrorContext(c.r.Context(), "write response", "request_id", c.requestID, "error", err)
	}
}
