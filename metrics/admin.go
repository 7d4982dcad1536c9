package metrics

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness condition: the store, or a backend.
type Check struct {
	Name string
	Fn   func(context.Context) error
}

// Gateway is a running gateway's state sampled at each scrape.
type Gateway struct {
	Scope      string
	PoolIdle   int // idle pooled backend connections
	GrantsHeld int // session group memberships this process holds for live sessions (Backend.GrantsHeld)
}

// Gateways samples the running gateways at each scrape (pool size, grants
// held); gateways come and go, so they are read, not registered.
func (m *Metrics) Gateways(sample func() []Gateway) {
	m.Registry.MustRegister(&gatewayCollector{sample: sample})
}

var (
	poolIdleDesc   = prometheus.NewDesc("shiftkey_backend_pool_idle", "Idle backend connections the gateway keeps for reuse.", []string{"scope"}, nil)
	grantsHeldDesc = prometheus.NewDesc("shiftkey_session_grants_held", "Session group memberships held on the backend for live sessions.", []string{"scope"}, nil)
)

type gatewayCollector struct{ sample func() []Gateway }

func (c *gatewayCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- poolIdleDesc
	ch <- grantsHeldDesc
}

func (c *gatewayCollector) Collect(ch chan<- prometheus.Metric) {
	for _, g := range c.sample() {
		ch <- prometheus.MustNewConstMetric(poolIdleDesc, prometheus.GaugeValue, float64(g.PoolIdle), g.Scope)
		ch <- prometheus.MustNewConstMetric(grantsHeldDesc, prometheus.GaugeValue, float64(g.GrantsHeld), g.Scope)
	}
}

// AuditLost counts the audit records that could not be written (lost
// reads audit.Log.Lost at each scrape).
func (m *Metrics) AuditLost(lost func() uint64) {
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "shiftkey_audit_records_lost_total",
		Help: "Audit records that could not be written (the audit log's disk full or gone)."}, func() float64 { return float64(lost()) }))
}

// Relay is the event relay's counters sampled at each scrape: the sessions
// its loops carried since start (the rest of the gateway's sessions ran on
// goroutines), of which with a TLS client or backend, those running now,
// and writes a socket did not take whole.
type Relay struct {
	Engine                                  string
	Sessions, ClientTLS, BackendTLS, Active int64
	BackloggedToClient, BackloggedToBackend int64
}

// Relay samples the event relay at each scrape; ok is false while there is
// none (the goroutine relay is configured, or none has started yet).
func (m *Metrics) Relay(sample func() (r Relay, ok bool)) {
	m.Registry.MustRegister(&relayCollector{sample: sample})
}

var (
	relaySessionsDesc = prometheus.NewDesc("shiftkey_relay_sessions_total",
		"Sessions the event relay's loops carried (shiftkey_gateway_sessions_total less these ran on goroutines).", []string{"engine"}, nil)
	relayTLSDesc = prometheus.NewDesc("shiftkey_relay_tls_sessions_total",
		"Of the loops' sessions, those whose client or backend side was TLS, its records opened and sealed on the loop.", []string{"engine", "side"}, nil)
	relayActiveDesc     = prometheus.NewDesc("shiftkey_relay_sessions_active", "Sessions on the event relay's loops now.", []string{"engine"}, nil)
	relayBackloggedDesc = prometheus.NewDesc("shiftkey_relay_backlogged_writes_total",
		"Writes a socket did not take whole (the slow-reader paths), by direction.", []string{"engine", "direction"}, nil)
)

type relayCollector struct{ sample func() (Relay, bool) }

func (c *relayCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- relaySessionsDesc
	ch <- relayTLSDesc
	ch <- relayActiveDesc
	ch <- relayBackloggedDesc
}

func (c *relayCollector) Collect(ch chan<- prometheus.Metric) {
	r, ok := c.sample()
	if !ok {
		return
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{r.Engine}, labels...)...)
	}
	counter(relaySessionsDesc, r.Sessions)
	counter(relayTLSDesc, r.ClientTLS, "client")
	counter(relayTLSDesc, r.BackendTLS, "backend")
	counter(relayBackloggedDesc, r.BackloggedToClient, "backend_to_client")
	counter(relayBackloggedDesc, r.BackloggedToBackend, "client_to_backend")
	ch <- prometheus.MustNewConstMetric(relayActiveDesc, prometheus.GaugeValue, float64(r.Active), r.Engine)
}

// CheckTimeout bounds each readiness check.
const CheckTimeout = 2 * time.Second

// Handler serves /metrics, /healthz (the process answers) and /readyz
// (every check passes; 503 naming those that fail) for the admin listener.
func (m *Metrics) Handler(checks func() []Check) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		var list []Check
		if checks != nil {
			list = checks()
		}
		// ?exclude=NAME (repeatable) leaves out the checks called NAME or
		// "NAME …": an HTTP balancer in front of the API alone asks
		// /readyz?exclude=backend, so that one cluster's database being down
		// does not take the API (IAM, STS, the other clusters) out with it.
		if ex := r.URL.Query()["exclude"]; len(ex) > 0 {
			list = slices.DeleteFunc(slices.Clone(list), func(c Check) bool {
				return slices.ContainsFunc(ex, func(e string) bool { return c.Name == e || strings.HasPrefix(c.Name, e+" ") })
			})
		}
		failed := runChecks(r.Context(), list)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if len(failed) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			for _, f := range failed {
				fmt.Fprintln(w, f)
			}
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// runChecks runs the checks at once and returns "name: error" for each
// that failed, sorted.
func runChecks(ctx context.Context, checks []Check) []string {
	var (
		mu     sync.Mutex
		failed []string
		wg     sync.WaitGroup
	)
	for _, c := range checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
			defer cancel()
			if err := c.Fn(cctx); err != nil {
				mu.Lock()
				failed = append(failed, c.Name+": "+err.Error())
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	sort.Strings(failed)
	return failed
}
