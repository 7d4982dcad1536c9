package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/audit"
	shttp "github.com/shiftkey/shiftkey/http"
	"github.com/shiftkey/shiftkey/iamapi"
	"github.com/shiftkey/shiftkey/metrics"
	"github.com/shiftkey/shiftkey/pgbackend"
	"github.com/shiftkey/shiftkey/pgwire"
	"github.com/shiftkey/shiftkey/serverless"
	"github.com/shiftkey/shiftkey/sts"
)

// NewMetrics defines the metrics, labelling the operations the API knows.
func NewMetrics() *metrics.Metrics {
	return metrics.New(slices.Concat(iamapi.Operations(), sts.Operations(), serverless.Operations(), shttp.RedshiftOperations()))
}

// gatewayStats samples the running gateways for the metrics.
func (s *Server) gatewayStats() []metrics.Gateway {
	var out []metrics.Gateway
	s.gateways.Each(func(scope string, gw *pgwire.Gateway, b *pgbackend.Backend) {
		out = append(out, metrics.Gateway{Scope: scope, PoolIdle: gw.PoolIdle(), GrantsHeld: b.GrantsHeld()})
	})
	return out
}

// relayStats samples the event relay, once it exists.
func (s *Server) relayStats() (metrics.Relay, bool) {
	r := s.Relay()
	if r == nil {
		return metrics.Relay{}, false
	}
	st := r.Stats()
	var active int64
	for _, n := range st.PerLoop {
		active += int64(n)
	}
	return metrics.Relay{Engine: r.Engine(), Sessions: st.Started, ClientTLS: st.StartedTLS, BackendTLS: st.StartedBackendTLS,
		Active: active, BackloggedToClient: st.BackloggedToClient, BackloggedToBackend: st.BackloggedToBackend}, true
}

// readiness is what /readyz checks: not draining, the store answers, and
// every gateway's backend answers.
func (s *Server) readiness() []metrics.Check {
	checks := []metrics.Check{
		{Name: "shutdown", Fn: func(context.Context) error {
			if s.draining.Load() {
				return errors.New("draining")
			}
			return nil
		}},
		{Name: "store", Fn: func(ctx context.Context) error {
			// A read that touches the database and no cache. After a
			// PostgreSQL store's restart, a pooled connection that died with
			// the old server can be handed out unchecked and fail once
			// (dropped then): that says nothing of the store now, so an
			// unreachable answer is asked again, twice at most.
			var err error
			for range 3 {
				if _, err = s.Store.Grants(ctx, "readyz"); !errors.Is(err, shiftkey.ErrStoreUnavailable) || ctx.Err() != nil {
					break
				}
			}
			return err
		}},
	}
	if wh, ok := s.db.(shiftkey.WriteHealth); ok {
		// Reads may succeed while no issue can be written (a full disk,
		// a store that does not answer writes).
		checks = append(checks, metrics.Check{Name: "store writes", Fn: func(context.Context) error { return wh.WriteErr() }})
	}
	if s.Audit != nil {
		// A replica that loses its audit records is not fit to serve.
		checks = append(checks, metrics.Check{Name: "audit", Fn: func(context.Context) error { return s.Audit.Err() }})
	}
	s.gateways.Each(func(scope string, _ *pgwire.Gateway, b *pgbackend.Backend) {
		checks = append(checks, metrics.Check{Name: "backend " + scope, Fn: b.Ping})
	})
	return checks
}

// StartAdmin serves /metrics, /healthz and /readyz of Metrics on addr.
func (s *Server) StartAdmin(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admin listen: %w", err)
	}
	s.StartAdminOn(ln)
	return nil
}

// StartAdminOn is StartAdmin on a listener already bound.
func (s *Server) StartAdminOn(ln net.Listener) {
	s.Metrics.Gateways(s.gatewayStats)
	s.Metrics.Relay(s.relayStats)
	if s.Audit != nil {
		s.Metrics.AuditLost(s.Audit.Lost)
	}
	s.AdminURL = "http://" + ln.Addr().String()
	s.adminServer = &http.Server{Handler: s.Metrics.Handler(s.readiness), ReadHeaderTimeout: 10 * time.Second}
	s.wg.Go(func() {
		if err := s.adminServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger.Error("admin listener stopped", "error", err)
		}
	})
}

// Observe sets up the operator's view before the gateways and the API
// start: metrics for the admin listener when metrics is true, and the audit
// log at auditFile unless it is "" (region is its records' awsRegion).
func (s *Server) Observe(metrics bool, auditFile, region string) error {
	var obs shiftkey.Observers
	if metrics {
		s.Metrics = NewMetrics()
		obs = append(obs, s.Metrics)
	}
	if auditFile != "" {
		a, err := audit.Open(auditFile)
		if err != nil {
			return err
		}
		a.Region, a.Account, a.Logger, s.Audit = region, s.AccountID, s.Logger, a
		a.Replica = shiftkey.ProcessName()
		if o, ok := s.db.(interface{ Origin() string }); ok {
			a.Replica = o.Origin() // what other replicas' records call it (leftBy)
		}
		obs = append(obs, a)
	}
	if len(obs) > 0 {
		s.Observer = obs
	}
	return nil
}
