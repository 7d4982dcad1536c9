package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/authz"
	"github.com/shiftkey/shiftkey/cmd/shiftkey/config"
	shttp "github.com/shiftkey/shiftkey/http"
	"github.com/shiftkey/shiftkey/iamapi"
	"github.com/shiftkey/shiftkey/maintenance"
	"github.com/shiftkey/shiftkey/pgbackend"
	"github.com/shiftkey/shiftkey/pgwire"
	"github.com/shiftkey/shiftkey/redshift"
	"github.com/shiftkey/shiftkey/serverless"
	"github.com/shiftkey/shiftkey/sqlite"
	"github.com/shiftkey/shiftkey/storecache"
	"github.com/shiftkey/shiftkey/sts"
)

// server is the wiring `shiftkey dev` and `shiftkey serve` share: the
// store, the API and one gateway per cluster.
type server struct {
	Logger *slog.Logger
	Now    func() time.Time
	// Store is db behind the cache every reader and writer goes through.
	Store     *storecache.Store
	db        *sqlite.DB
	AccountID string
	// Regions are the regions the API serves (nil: shiftkey.DefaultRegion).
	Regions []string

	// APIURL is the API over plain HTTP ("" when api.tls.require), and
	// APIHTTPSURL over TLS ("" without a certificate): one port.
	APIURL      string
	APIHTTPSURL string
	// APITLS is the API's TLS (nil: plain HTTP only); apiRequireTLS
	// refuses plain HTTP.
	APITLS        *tls.Config
	apiRequireTLS bool
	// clientIP is where aws:SourceIp comes from (api.trusted_proxies).
	clientIP  shttp.ClientIP
	apiServer *http.Server
	stopSweep context.CancelFunc
	wg        sync.WaitGroup

	mu        sync.Mutex
	endpoints map[string]*endpoint // by credential scope
	relay     *pgwire.EventRelay   // shared by every gateway; nil: goroutine relay
	// TLS configures the gateways' TLS (nil: plaintext only).
	TLS            *tls.Config
	requireTLS     bool
	allowCleartext bool
	// scramIterations is the iteration count of new logins (0: the default).
	scramIterations int
	// Limits apply to every gateway.
	Limits config.Limits
	// Logins are the backends' cert and password login modes' CA and secret.
	Logins pgbackend.Logins
	// Provisioner and ClusterProvisioner run API-created backends (dev
	// mode only).
	Provisioner        shiftkey.Provisioner
	ClusterProvisioner shiftkey.ClusterProvisioner
}

// useStore makes db the server's store, behind its cache.
func (s *server) useStore(db *sqlite.DB) {
	s.db, s.Store = db, storecache.New(db)
}

func (s *server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// eventRelay makes the shared event relay on first use (nil when the
// goroutine relay is configured or the platform has no event relay); its
// loops start with the first plaintext session.
func (s *server) eventRelay() (*pgwire.EventRelay, error) {
	rc, ok := s.Limits.EventRelay()
	if !ok {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.relay == nil {
		r, err := pgwire.NewEventRelay(rc)
		if err != nil {
			return nil, fmt.Errorf("limits.relay: %w", err)
		}
		s.Logger.Info("event relay", "engine", r.Engine(), "threads", rc.Threads, "sched", r.Sched())
		s.relay = r
	}
	return s.relay, nil
}

// endpoint is one running gateway with its backend.
type endpoint struct {
	gw      *pgwire.Gateway
	backend *pgbackend.Backend
	done    chan struct{}
}

// gateway is one to serve: the credentials of scope (a cluster identifier
// or a workgroup's credential scope) against backend, in database db by
// default. master is the one role of a cluster that may be a superuser in
// a session, and only where allowSuperuser says so (as Redshift's master
// user); workgroups have none.
type gateway struct {
	scope, db      string
	backend        shiftkey.Backend
	master         string
	allowSuperuser bool
}

// startGateway serves g on ln.
func (s *server) startGateway(ctx context.Context, g gateway, ln net.Listener, secret []byte) error {
	scope, db, b := g.scope, g.db, g.backend
	bc, err := s.Logins.ConfigFor(b, db)
	if err != nil {
		return fmt.Errorf("%s: %w", scope, err)
	}
	bc.Logger, bc.Grants, bc.Scope = s.Logger.With("scope", scope), s.Store, scope
	bc.MasterUser, bc.AllowSuperuser = g.master, g.allowSuperuser
	relay, err := s.eventRelay()
	if err != nil {
		return err
	}
	backend, err := pgbackend.New(ctx, bc)
	if err != nil {
		return fmt.Errorf("%s: %w", scope, err)
	}
	// Grants a crashed predecessor left behind go before the first session.
	if n, err := backend.Reconcile(ctx); err != nil {
		s.Logger.Warn("grant reconciliation failed", "scope", scope, "error", err)
	} else if n > 0 {
		s.Logger.Info("stale grants revoked at start", "scope", scope, "count", n)
	}
	gw := &pgwire.Gateway{
		Cluster:        scope,
		Credentials:    s.Store,
		Backend:        backend.ForGateway(),
		DefaultDB:      db,
		Logger:         s.Logger.With("component", "gateway"),
		Now:            s.now,
		Secret:         secret,
		Iterations:     s.scramIterations,
		TLS:            s.TLS,
		RequireTLS:     s.requireTLS,
		AllowCleartext: s.allowCleartext,
		Route:          s.route,

		MaxConnections:          s.Limits.MaxConnections,
		MaxConnectionsPerSource: s.Limits.MaxConnectionsPerSource,
		MaxAuthPerSource:        s.Limits.MaxAuthPerSource,
		IdleTimeout:             s.Limits.IdleTimeout,
		MaxSessionLifetime:      s.Limits.MaxSessionLifetime,
		PoolSize:                s.Limits.PoolSize,
		PoolIdleTimeout:         s.Limits.PoolIdleTimeout,
		Relay:                   relay,
	}
	ep := &endpoint{gw: gw, backend: backend, done: make(chan struct{})}
	s.mu.Lock()
	if s.endpoints == nil {
		s.endpoints = map[string]*endpoint{}
	}
	s.endpoints[scope] = ep
	s.mu.Unlock()
	go func() {
		defer close(ep.done)
		if err := gw.Serve(ln); err != nil {
			s.Logger.Error("gateway stopped", "scope", scope, "error", err)
		}
	}()
	return nil
}

// route maps a TLS server name to the gateway of the cluster or workgroup
// the custom domain is associated with.
func (s *server) route(ctx context.Context, name string) (*pgwire.Gateway, bool) {
	d, err := s.Store.CustomDomain(ctx, name)
	if err != nil {
		return nil, false
	}
	scope := d.Target
	if d.Kind == "workgroup" {
		w, err := s.Store.Workgroup(ctx, d.Target)
		if err != nil {
			return nil, false
		}
		scope = w.CredentialScope()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ep, ok := s.endpoints[scope]
	if !ok {
		return nil, false
	}
	return ep.gw, true
}

// knownName reports whether the gateways answer to a TLS server name.
func (s *server) knownName(name string) bool {
	_, err := s.Store.CustomDomain(context.Background(), name)
	return err == nil
}

// stopGateway closes the gateway of scope and its backend pool.
func (s *server) stopGateway(scope string) {
	s.mu.Lock()
	ep := s.endpoints[scope]
	delete(s.endpoints, scope)
	s.mu.Unlock()
	if ep == nil {
		return
	}
	grace := s.Limits.ShutdownGrace
	if grace == 0 {
		grace = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	if n := ep.gw.Shutdown(ctx); n > 0 {
		s.Logger.Info("sessions cut at shutdown", "scope", scope, "count", n)
	}
	cancel()
	<-ep.done
	ep.backend.Close()
}

// setAPIURLs sets the URLs clients reach the API on ln at.
func (s *server) setAPIURLs(ln net.Listener) {
	ep := advertised(ln.Addr())
	hostPort := net.JoinHostPort(ep.Address, strconv.Itoa(ep.Port))
	s.APIURL, s.APIHTTPSURL = "http://"+hostPort, ""
	if s.APITLS != nil {
		s.APIHTTPSURL = "https://" + hostPort
		if s.apiRequireTLS {
			s.APIURL = ""
		}
	}
}

// startAPI serves the AWS API on ln, over TLS too when APITLS is set.
func (s *server) startAPI(ln net.Listener) {
	s.setAPIURLs(ln)
	ln = shttp.Listener(ln, s.APITLS, s.apiRequireTLS)
	authorizer := &authz.Authorizer{Store: s.Store, Logger: s.Logger.With("component", "authz")}
	issuer := &redshift.Service{Store: s.Store, Authorizer: authorizer, Now: s.now, Provisioner: s.ClusterProvisioner, Iterations: s.scramIterations}
	api := &shttp.Server{
		Identities: s.Store,
		Redshift:   issuer,
		Serverless: &serverless.Service{Store: s.Store, Authorizer: authorizer, Issuer: issuer, Provisioner: s.Provisioner, Now: s.now},
		IAM:        &iamapi.Service{Store: s.Store, Authorizer: authorizer, AccountID: s.AccountID, Now: s.now},
		STS:        &sts.Service{Store: s.Store, Authorizer: authorizer, AccountID: s.AccountID, Now: s.now},
		AccountID:  s.AccountID,
		Regions:    s.Regions,
		Logger:     s.Logger.With("component", "api"),
		Now:        s.now,
		ClientIP:   s.clientIP,
	}
	s.apiServer = shttp.Limits(s.Limits.API).HTTPServer(api.Handler(), s.Logger.With("component", "api"))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.apiServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger.Error("api stopped", "error", err)
		}
	}()
	sweepCtx, cancel := context.WithCancel(context.Background())
	s.stopSweep = cancel
	sweeper := &maintenance.Sweeper{Store: s.Store, Backends: s.backends, Logger: s.Logger, Now: s.now}
	s.wg.Go(func() { sweeper.Run(sweepCtx) })
}

// backends are the running gateways' backends.
func (s *server) backends() []maintenance.Reconciler {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []maintenance.Reconciler
	for _, ep := range s.endpoints {
		out = append(out, ep.backend)
	}
	return out
}

// close stops the API and the gateways, then the backends' admin pools.
func (s *server) close() []error {
	var errs []error
	if s.apiServer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, s.apiServer.Shutdown(ctx))
		cancel()
	}
	s.mu.Lock()
	scopes := make([]string, 0, len(s.endpoints))
	for scope := range s.endpoints {
		scopes = append(scopes, scope)
	}
	s.mu.Unlock()
	for _, scope := range scopes {
		s.stopGateway(scope)
	}
	if s.stopSweep != nil {
		s.stopSweep()
	}
	s.wg.Wait()
	s.mu.Lock()
	if s.relay != nil {
		s.relay.Close()
		s.relay = nil
	}
	s.mu.Unlock()
	return errs
}

// advertised is the endpoint clients should use for a listener address.
func advertised(a net.Addr) shiftkey.Endpoint {
	ta := a.(*net.TCPAddr)
	host := ta.IP.String()
	if ta.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return shiftkey.Endpoint{Address: host, Port: ta.Port}
}

// listenGateway listens for PostgreSQL clients. Accepted connections get
// TCP keepalive with the system's timings (as PgBouncer's tcp_keepalive):
// Go's own timings would cost three more system calls per connection.
func listenGateway(addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: -1, Interval: -1, Count: -1}}
	return lc.Listen(context.Background(), "tcp", addr)
}
