// Package http serves shiftkey's AWS-compatible API: SigV4 authentication,
// routing by the credential scope's service and the action, and the wire
// protocols the SDKs speak. Import it as shttp.
package http

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/awsquery"
	"github.com/shiftkey/shiftkey/redshift"
	"github.com/shiftkey/shiftkey/sigv4"
)

// MaxBodyBytes bounds a request body; credential calls are a few hundred bytes.
const MaxBodyBytes = 1 << 20

// Server is the API's HTTP handler.
type Server struct {
	Identities shiftkey.IdentityStore
	Redshift   *redshift.Service
	AccountID  string
	Logger     *slog.Logger     // nil → discard
	Now        func() time.Time // nil → time.Now
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Handler returns the root handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/", s.serveAPI)
	return mux
}

// call is one API request in flight.
type call struct {
	w         http.ResponseWriter
	r         *http.Request
	requestID string
	body      []byte
	caller    *shiftkey.Caller
	service   string
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	c := &call{w: w, r: r, requestID: shiftkey.NewUUID()}
	w.Header().Set("x-amzn-RequestId", c.requestID)
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		s.writeError(c, shiftkey.Errorf("InvalidAction", "Method %s is not allowed.", r.Method))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			s.writeError(c, shiftkey.Errorf("RequestEntityTooLarge", "Request body larger than %d bytes.", MaxBodyBytes))
			return
		}
		s.writeError(c, shiftkey.Errorf(shiftkey.CodeMalformedQueryString, "The request body could not be read."))
		return
	}
	c.body = body
	if err := s.authenticate(r.Context(), c); err != nil {
		s.writeError(c, err)
		return
	}
	switch c.service {
	case "redshift":
		s.serveRedshift(c)
	default:
		s.writeError(c, shiftkey.Errorf(shiftkey.CodeInvalidAction, "The service %s is not available at this endpoint.", c.service))
	}
}

// authenticate verifies the SigV4 signature and resolves the caller.
func (s *Server) authenticate(ctx context.Context, c *call) error {
	auth, err := sigv4.Parse(c.r)
	if err != nil {
		return sigError(err)
	}
	c.service = auth.Service
	key, err := s.Identities.AccessKey(ctx, auth.AccessKeyID)
	if shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity || err == nil && key.Status != "Active" {
		return shiftkey.Errorf(shiftkey.CodeInvalidClientTokenID, "The security token included in the request is invalid.")
	}
	if err != nil {
		return err
	}
	now := s.now()
	if err := auth.Verify(c.r, c.body, key.Secret, now); err != nil {
		return sigError(err)
	}
	if auth.SecurityToken != "" {
		// Session tokens are only valid with the temporary keys they came
		// with; long-term IAM user keys never carry one.
		return shiftkey.Errorf(shiftkey.CodeInvalidClientTokenID, "The security token included in the request is invalid.")
	}
	user, err := s.Identities.User(ctx, key.UserName)
	if err != nil {
		return fmt.Errorf("user of access key: %w", err)
	}
	host, _, _ := net.SplitHostPort(c.r.RemoteAddr)
	c.caller = &shiftkey.Caller{
		Principal: &shiftkey.Principal{
			ARN: user.ARN, Account: s.AccountID, Type: "User",
			UserName: user.Name, UserID: user.ID, AccessKey: key.ID,
		},
		Region:          auth.Region,
		SourceIP:        host,
		SecureTransport: c.r.TLS != nil,
		RequestID:       c.requestID,
		Time:            now,
	}
	return nil
}

func sigError(err error) error {
	if e, ok := errors.AsType[*sigv4.Error](err); ok {
		return &shiftkey.Error{Code: e.Code, Message: e.Message}
	}
	return err
}

const redshiftNS = "http://redshift.amazonaws.com/doc/2012-12-01/"

// writeError answers with the error envelope of the call's protocol. Errors
// that are not *shiftkey.Error are internal: logged here, once, and sent as
// a generic InternalFailure.
func (s *Server) writeError(c *call, err error) {
	e, ok := errors.AsType[*shiftkey.Error](err)
	if !ok {
		s.logger().ErrorContext(c.r.Context(), "internal error", "request_id", c.requestID, "error", err)
		e = &shiftkey.Error{Code: shiftkey.CodeInternalFailure, Message: "An internal error occurred. Request ID: " + c.requestID}
	}
	status := StatusOf(e.Code)
	c.w.Header().Set("Content-Type", "text/xml")
	c.w.WriteHeader(status)
	awsquery.WriteError(c.w, redshiftNS, e.Code, e.Message, c.requestID, status >= 500)
}
