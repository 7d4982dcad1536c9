package main

import (
	"cmp"
	"net/http"
	"strings"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/awsjson"
	"github.com/shiftkey/shiftkey/awsquery"
	shttp "github.com/shiftkey/shiftkey/http"
	"github.com/shiftkey/shiftkey/iamapi"
	"github.com/shiftkey/shiftkey/sts"
)

// Defaults of limits.api.
const (
	defaultAPIReadHeaderTimeout     = 10 * time.Second
	defaultAPIReadTimeout           = 30 * time.Second
	defaultAPIWriteTimeout          = 60 * time.Second
	defaultAPIIdleTimeout           = 60 * time.Second
	defaultAPIMaxHeaderBytes        = 64 << 10
	defaultAPIMaxConcurrentRequests = 256
)

// httpServer is the API's http.Server for handler under these limits.
func (l APILimits) httpServer(handler http.Handler) *http.Server {
	return &http.Server{
		Handler:           limitRequests(handler, cmp.Or(l.MaxConcurrentRequests, defaultAPIMaxConcurrentRequests)),
		ReadHeaderTimeout: cmp.Or(l.ReadHeaderTimeout, defaultAPIReadHeaderTimeout),
		ReadTimeout:       cmp.Or(l.ReadTimeout, defaultAPIReadTimeout),
		WriteTimeout:      cmp.Or(l.WriteTimeout, defaultAPIWriteTimeout),
		IdleTimeout:       cmp.Or(l.IdleTimeout, defaultAPIIdleTimeout),
		MaxHeaderBytes:    cmp.Or(l.MaxHeaderBytes, defaultAPIMaxHeaderBytes),
	}
}

// limitRequests serves at most max requests at once; the next ones are
// answered at once, unread, with AWS's throttling error, which the SDKs
// retry with back-off. Health checks are not counted.
func limitRequests(next http.Handler, max int) http.Handler {
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
			writeThrottled(w, r)
		}
	})
}

// throttledMessage is AWS's message for a throttled request.
const throttledMessage = "Rate exceeded"

// writeThrottled answers r with the throttling error of its protocol:
// Throttling in the Query envelope of its service (the credential scope
// names it), or ThrottlingException for the JSON protocol (Redshift
// Serverless). Both are status 400 in the error table.
func writeThrottled(w http.ResponseWriter, r *http.Request) {
	requestID := shiftkey.NewUUID()
	w.Header().Set("x-amzn-RequestId", requestID)
	service := scopeService(r)
	if service == "redshift-serverless" || r.Header.Get("X-Amz-Target") != "" {
		const code = "ThrottlingException"
		awsjson.WriteError(w, shttp.StatusOf(code), code, throttledMessage)
		return
	}
	ns := "http://redshift.amazonaws.com/doc/2012-12-01/"
	switch service {
	case "iam":
		ns = iamapi.Namespace
	case "sts":
		ns = sts.Namespace
	}
	const code = "Throttling"
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(shttp.StatusOf(code))
	awsquery.WriteError(w, ns, code, throttledMessage, requestID, false)
}

// scopeService is the service of the request's SigV4 credential scope
// (header or presigned query), "" when there is none.
func scopeService(r *http.Request) string {
	cred := r.URL.Query().Get("X-Amz-Credential")
	if h := r.Header.Get("Authorization"); h != "" {
		if _, after, ok := strings.Cut(h, "Credential="); ok {
			cred, _, _ = strings.Cut(after, ",")
		}
	}
	// AKID/date/region/service/aws4_request
	parts := strings.Split(cred, "/")
	if len(parts) != 5 {
		return ""
	}
	return parts[3]
}
