// Package metrics is shiftkey's Prometheus metrics: their definitions, an
// Observer that turns the edges' events into them, a store wrapper that
// times store calls, and the admin listener's handler (/metrics, /healthz,
// /readyz).
//
// Every label has a bounded set of values: operations from the list the
// services declare, error codes of the form AWS uses, scopes that are the
// configured clusters and workgroups, reasons from fixed lists. No user
// name, key id, address or password is ever a label.
package metrics

import (
	"regexp"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/shiftkey/shiftkey"
)

// Label values that stand for anything outside the bounded sets.
const (
	other = "other"
	ok    = "ok"
)

// Metrics holds shiftkey's metrics in a registry of their own.
type Metrics struct {
	Registry *prometheus.Registry

	operations map[string]bool
	codesMu    sync.Mutex
	codes      map[string]bool

	apiRequests *prometheus.CounterVec
	apiDuration *prometheus.HistogramVec
	issued      *prometheus.CounterVec
	denials     *prometheus.CounterVec

	logins         *prometheus.CounterVec
	authDuration   *prometheus.HistogramVec
	sessionsActive *prometheus.GaugeVec
	sessionsTotal  *prometheus.CounterVec
	sessionsEnded  *prometheus.CounterVec
	bytes          *prometheus.CounterVec
	poolHits       *prometheus.CounterVec
	poolMisses     *prometheus.CounterVec
	grantChanges   *prometheus.CounterVec
	cancels        *prometheus.CounterVec
	refused        *prometheus.CounterVec
	apiTLS         *prometheus.CounterVec
	gatewayTLS     *prometheus.CounterVec

	storeDuration *prometheus.HistogramVec
	storeErrors   *prometheus.CounterVec
}

// services are the API's services (the credential scope's service).
var services = []string{"iam", "sts", "redshift", "redshift-serverless"}

// issuing are the operations that hand out a credential.
var issuing = []string{"GetClusterCredentials", "GetClusterCredentialsWithIAM", "GetCredentials", "AssumeRole"}

// maxCodes bounds the distinct error codes labelled; later ones are "other".
const maxCodes = 200

var codeShape = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9.]{0,63}$`)

// New defines the metrics. operations are the API operations the services
// know: any other operation a request names is labelled "other".
func New(operations []string) *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry(), operations: map[string]bool{}, codes: map[string]bool{}}
	for _, op := range operations {
		m.operations[op] = true
	}
	// From 100 µs: at scram_iterations 1 a login with a pooled backend,
	// or an issue, takes well under a millisecond.
	latency := []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	// From 10 µs: most store calls timed are answered from memory (the
	// store cache) in microseconds, and must stand apart from the round
	// trips to the database.
	storeLatency := append([]float64{.00001, .000025, .00005}, latency...)
	m.apiRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shiftkey_api_requests_total",
		Help: "API requests answered, by service, operation and error code (ok when none)."}, []string{"service", "operation", "code"})
	m.apiDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "shiftkey_api_request_duration_seconds",
		Help: "Time from a request's arrival to its answer.", Buckets: latency}, []string{"service", "operation"})
	m.issued = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shiftkey_credentials_issued_total",
		Help: "Credentials issued, by operation."}, []string{"operation"})
	m.denials = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shiftkey_authorization_denials_total",
		Help: "API requests refused by policy (AccessDenied), by operation."}, []string{"operation"})
	m.logins = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shiftkey_gateway_logins_total",
		Help: "Gateway logins, by scope and outcome (ok, or the reason refused)."}, []string{"scope", "outcome"})
	m.authDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "shiftkey_gateway_login_duration_seconds",
		Help: "Time from accepting a gateway connection to its login's outcome.", Buckets: latency}, []string{"scope"})
	m.sessionsActive = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "shiftkey_gateway_sessions_active",
		Help: "Gateway sessions open now."}, []string{"scope"})
	m.sessionsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shiftkey_gateway_sessions_total",
		Help: "Gateway sessions started."}, []string{"scope"})
	m.sessionsEnded = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shiftkey_gateway_sessions_ended_total",
		Help: "Gateway sessions ended, by reason."}, []string{"scope", "reason"})
	m.bytes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shiftkey_gateway_relayed_bytes_total",
		Help: "Bytes relayed by ended sessions, by direction (client_to_backend, backend_to_client)."}, []string{"scope", "direction"})
	m.poolHits = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shiftkey_backend_pool_hits_total",
		Help: "Sessions that got a pooled backend connection."}, []string{"scope"})
	m.poolMisses = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shiftkey_backend_pool_misses_total",
		Help: "Sessions that opened a new backend connection."}, []string{"scope"})
	m.cancels = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shiftkey_gateway_cancel_requests_total",
		Help: "Cancel requests the gateways got, by how they ended (cancelled, forwarded to the other replicas, forward_failed when none could be reached, no_session, throttled, and those passed on by another replica)."}, []string{"scope", "outcome"})
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shiftkey_gateway_connections_refused_total",
		Help: "Connections the gateways refused at a cap before any login (SQLSTATE 53300), by cap (max_connections, max_connections_per_source, max_auth_per_source)."}, []string{"scope", "cap"})
	m.apiTLS = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shiftkey_api_tls_failures_total",
		Help: "Connections to the API that never got through TLS, by reason (plain_http to a TLS-only API, certificate_rejected, protocol, client_disconnect, timeout, other)."}, []string{"reason"})
	m.gatewayTLS = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shiftkey_gateway_tls_failures_total",
		Help: "TLS handshakes that failed on the gateways, by scope and reason (certificate_rejected, protocol, client_disconnect, timeout, other)."}, []string{"scope", "reason"})
	m.grantChanges = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shiftkey_session_grant_changes_total",
		Help: "Session group grants and revokes, by change (granted, revoked, reconciled)."}, []string{"scope", "change"})
	m.storeDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "shiftkey_store_operation_duration_seconds",
		Help: "Time of store calls, by operation.", Buckets: storeLatency}, []string{"operation"})
	m.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shiftkey_store_errors_total",
		Help: "Store calls that failed (not-found answers excluded), by operation."}, []string{"operation"})
	m.Registry.MustRegister(m.apiRequests, m.apiDuration, m.issued, m.denials, m.logins, m.authDuration, m.sessionsActive,
		m.sessionsTotal, m.sessionsEnded, m.bytes, m.poolHits, m.poolMisses, m.grantChanges, m.cancels, m.refused, m.apiTLS, m.gatewayTLS, m.storeDuration, m.storeErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// operation is op as a label: itself when the services know it.
func (m *Metrics) operation(op string) string {
	if m.operations[op] {
		return op
	}
	return other
}

func service(s string) string {
	if slices.Contains(services, s) {
		return s
	}
	return other
}

// code is an error code as a label: codes are the server's constants, but
// the label set stays bounded even if one were not.
func (m *Metrics) code(c string) string {
	if c == "" {
		return ok
	}
	if !codeShape.MatchString(c) {
		return other
	}
	m.codesMu.Lock()
	defer m.codesMu.Unlock()
	if !m.codes[c] {
		if len(m.codes) >= maxCodes {
			return other
		}
		m.codes[c] = true
	}
	return c
}

// APICall counts an answered API call.
func (m *Metrics) APICall(e *shiftkey.APICall) {
	svc, op := service(e.Service), m.operation(e.Operation)
	m.apiRequests.WithLabelValues(svc, op, m.code(e.ErrorCode)).Inc()
	m.apiDuration.WithLabelValues(svc, op).Observe(e.Duration.Seconds())
	switch {
	case e.ErrorCode == "" && slices.Contains(issuing, e.Operation):
		m.issued.WithLabelValues(op).Inc()
	case e.ErrorCode == shiftkey.CodeAccessDenied, e.ErrorCode == "AccessDeniedException": // Query, JSON 1.1
		m.denials.WithLabelValues(op).Inc()
	}
}

// Login counts a gateway login.
func (m *Metrics) Login(e *shiftkey.Login) {
	outcome := ok
	if !e.OK {
		outcome = other
		if slices.Contains(shiftkey.LoginReasons, e.Reason) {
			outcome = e.Reason
		}
	}
	m.logins.WithLabelValues(e.Scope, outcome).Inc()
	m.authDuration.WithLabelValues(e.Scope).Observe(e.Duration.Seconds())
	if e.OK {
		m.sessionsActive.WithLabelValues(e.Scope).Inc()
		m.sessionsTotal.WithLabelValues(e.Scope).Inc()
		if e.BackendReused {
			m.poolHits.WithLabelValues(e.Scope).Inc()
		} else {
			m.poolMisses.WithLabelValues(e.Scope).Inc()
		}
	}
}

// SessionEnd counts an ended session and the bytes it relayed.
func (m *Metrics) SessionEnd(e *shiftkey.SessionEnd) {
	reason := other
	if slices.Contains(shiftkey.EndReasons, e.Reason) {
		reason = e.Reason
	}
	// The bytes first: a scrape begun after one that saw the session ended
	// sees what it relayed. Not always that same scrape: a registry
	// gathers its collectors concurrently, so it may have read the bytes
	// just before this added them and the ended count just after.
	m.bytes.WithLabelValues(e.Scope, "client_to_backend").Add(float64(e.BytesIn))
	m.bytes.WithLabelValues(e.Scope, "backend_to_client").Add(float64(e.BytesOut))
	m.sessionsActive.WithLabelValues(e.Scope).Dec()
	m.sessionsEnded.WithLabelValues(e.Scope, reason).Inc()
}

// Cancel counts a cancel request by how it ended.
func (m *Metrics) Cancel(scope, outcome string) {
	if !slices.Contains(shiftkey.CancelOutcomes, outcome) {
		outcome = other
	}
	m.cancels.WithLabelValues(scope, outcome).Inc()
}

// Refused counts a connection refused at a cap.
func (m *Metrics) Refused(scope, cap string) {
	if !slices.Contains(shiftkey.RefusedCaps, cap) {
		cap = other
	}
	m.refused.WithLabelValues(scope, cap).Inc()
}

// TLSFailed counts a connection that did not get through TLS: on the API
// when scope is "", else on that gateway.
func (m *Metrics) TLSFailed(scope, reason string) {
	if !slices.Contains(shiftkey.TLSFailureReasons, reason) {
		reason = other
	}
	if scope == "" {
		m.apiTLS.WithLabelValues(reason).Inc()
		return
	}
	m.gatewayTLS.WithLabelValues(scope, reason).Inc()
}

// Forget drops every series of scope, a gateway whose cluster or
// workgroup was deleted (dev), so that each one ever created does not keep
// its series for the life of the process. Call it once the gateway has
// stopped and its sessions have ended: a later event would make them anew.
func (m *Metrics) Forget(scope string) {
	l := prometheus.Labels{"scope": scope}
	for _, v := range []*prometheus.MetricVec{m.logins.MetricVec, m.authDuration.MetricVec, m.sessionsActive.MetricVec,
		m.sessionsTotal.MetricVec, m.sessionsEnded.MetricVec, m.bytes.MetricVec, m.poolHits.MetricVec, m.poolMisses.MetricVec,
		m.grantChanges.MetricVec, m.cancels.MetricVec, m.refused.MetricVec, m.gatewayTLS.MetricVec} {
		v.DeletePartialMatch(l)
	}
}

// Grant counts a session grant or revoke.
func (m *Metrics) Grant(e *shiftkey.GrantChange) {
	change := "granted"
	switch {
	case e.Reconciled:
		change = "reconciled"
	case !e.Granted:
		change = "revoked"
	}
	m.grantChanges.WithLabelValues(e.Scope, change).Inc()
}
