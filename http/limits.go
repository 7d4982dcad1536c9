package http

import (
	"cmp"
	"context"
	"errors"
	"log"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/shiftkey/shiftkey"
)

// Limits bound what a client of the API can hold: every connection is
// closed after its timeouts, and requests beyond MaxConcurrentRequests at
// once are answered with AWS's throttling error at once. Bodies are capped
// at MaxBodyBytes. Zero values take the defaults.
type Limits struct {
	ReadHeaderTimeout     time.Duration // from accept to the end of the headers; 0: 10s
	ReadTimeout           time.Duration // from accept to the end of the body; 0: 30s
	WriteTimeout          time.Duration // from the end of the headers to the end of the answer; 0: 60s
	IdleTimeout           time.Duration // between requests on a keep-alive connection; 0: 60s
	MaxHeaderBytes        int           // request line and headers; 0: 64 KiB
	MaxConcurrentRequests int           // 0: 256
	// CPUSlots is Server.CPUSlots: the Server applies it, once a request's
	// body is read; HTTPServer does not.
	CPUSlots int
}

// Defaults of Limits.
const (
	defaultReadHeaderTimeout     = 10 * time.Second
	defaultReadTimeout           = 30 * time.Second
	defaultWriteTimeout          = 60 * time.Second
	defaultIdleTimeout           = 60 * time.Second
	defaultMaxHeaderBytes        = 64 << 10
	defaultMaxConcurrentRequests = 256
)

// HTTPServer is the API's http.Server for handler under these limits; it
// logs net/http's own messages to logger.
func (l Limits) HTTPServer(handler http.Handler, logger *slog.Logger) *http.Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	writeTimeout := cmp.Or(l.WriteTimeout, defaultWriteTimeout)
	throttled := writeThrottled
	if h, ok := handler.(apiHandler); ok {
		throttled = h.throttled // reported to the Server's observer
	}
	return &http.Server{
		Handler:           limitRequests(withDeadline(handler, writeTimeout*9/10), cmp.Or(l.MaxConcurrentRequests, defaultMaxConcurrentRequests), throttled),
		ReadHeaderTimeout: cmp.Or(l.ReadHeaderTimeout, defaultReadHeaderTimeout),
		ReadTimeout:       cmp.Or(l.ReadTimeout, defaultReadTimeout),
		WriteTimeout:      writeTimeout,
		IdleTimeout:       cmp.Or(l.IdleTimeout, defaultIdleTimeout),
		MaxHeaderBytes:    cmp.Or(l.MaxHeaderBytes, defaultMaxHeaderBytes),
		ErrorLog:          log.New(errorLog{logger}, "", 0),
	}
}

// errRequestDeadline is the cause of a request's context that ended at
// its deadline (withDeadline).
var errRequestDeadline = errors.New("the request did not complete within its deadline")

// withDeadline gives each request's context a deadline d, inside the
// connection's write timeout: a store call that does not return (a lock
// held on a table, a store that stopped answering) is cut in time for
// its answer, ServiceUnavailable (writeError), to reach the client.
// Without it the handler waited on, and the client with it, for ever: the
// write timeout closes a connection only when something is written.
func withDeadline(next http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeoutCause(r.Context(), d, errRequestDeadline)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// limitRequests serves at most max requests at once; the next ones are
// answered at once, unread, with AWS's throttling error, which the SDKs
// retry with back-off. Health checks are not counted.
func limitRequests(next http.Handler, max int, throttled http.HandlerFunc) http.Handler {
	slots := make(chan struct{}, max)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			next.ServeHTTP(w, r)
			return
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
			next.ServeHTTP(w, r)
		default:
			throttled(w, r)
		}
	})
}

// throttledMessage is AWS's message for a throttled request.
const throttledMessage = "Rate exceeded"

// writeThrottled answers r with the throttling error of its protocol:
// Throttling in the Query envelope of its service (the credential scope
// names it), or ThrottlingException for the JSON protocol (Redshift
// Serverless): 400 and 429 in the error table. A handler other
// than a Server's (Server.Handler's, which reports it) has it unreported.
func writeThrottled(w http.ResponseWriter, r *http.Request) { (&Server{}).throttled(w, r) }

// writeThrottled answers c with the throttling error of its protocol.
func (s *Server) writeThrottled(c *call) {
	c.service = scopeService(c.r)
	code := "Throttling"
	if c.service == "redshift-serverless" || c.r.Header.Get("X-Amz-Target") != "" {
		c.service, code = "redshift-serverless", "ThrottlingException"
	}
	s.writeError(c, shiftkey.Errorf(code, throttledMessage))
}

// admittedWriter leaves the request's place (or its hold on Decisions)
// when its answer is written: a client slow to read it holds neither.
type admittedWriter struct {
	http.ResponseWriter
	leave func()
}

func (w admittedWriter) WriteHeader(status int) {
	w.leave()
	w.ResponseWriter.WriteHeader(status)
}

func (w admittedWriter) Write(b []byte) (int, error) {
	w.leave()
	return w.ResponseWriter.Write(b)
}

func (w admittedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// scopeService is the service of the request's SigV4 credential scope
// (header or presigned query), "" when there is none. The request is not
// read: this runs before the slot that would verify it.
func scopeService(r *http.Request) string {
	_, service := scopeOf(r)
	return service
}

// scopeOf is the access key id and the service the request's SigV4
// credential (header or presigned query) names, unverified; "" for none.
func scopeOf(r *http.Request) (keyID, service string) {
	cred := r.URL.Query().Get("X-Amz-Credential")
	if h := r.Header.Get("Authorization"); h != "" {
		if _, after, ok := strings.Cut(h, "Credential="); ok {
			cred, _, _ = strings.Cut(after, ",")
		}
	}
	// AKID/date/region/service/aws4_request
	parts := strings.Split(cred, "/")
	if len(parts) != 5 {
		return "", ""
	}
	return parts[0], parts[3]
}
