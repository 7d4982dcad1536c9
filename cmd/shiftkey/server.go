package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/authz"
	"github.com/shiftkey/shiftkey/devca"
	shttp "github.com/shiftkey/shiftkey/http"
	"github.com/shiftkey/shiftkey/iamapi"
	"github.com/shiftkey/shiftkey/pgbackend"
	"github.com/shiftkey/shiftkey/pgwire"
	"github.com/shiftkey/shiftkey/redshift"
	"github.com/shiftkey/shiftkey/serverless"
	"github.com/shiftkey/shiftkey/sqlite"
	"github.com/shiftkey/shiftkey/sts"
)

// server is the wiring `shiftkey dev` and `shiftkey serve` share: the
// store, the API and one gateway per cluster.
type server struct {
	Logger    *slog.Logger
	Now       func() time.Time
	Store     *sqlite.DB
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
	// Limits apply to every gateway.
	Limits Limits
	// CA signs client certificates for backends with BackendLoginCert.
	CA *devca.CA
	// PasswordSecret derives gateway-only passwords (BackendLoginPassword).
	PasswordSecret []byte
	// Provisioner and ClusterProvisioner run API-created backends (dev
	// mode only).
	Provisioner        shiftkey.Provisioner
	ClusterProvisioner shiftkey.ClusterProvisioner
}

func (s *server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Limits are the gateways' and the API's operational limits.
type Limits struct {
	MaxConnections int `yaml:"max_connections"` // per gateway; 0: pgwire.DefaultMaxConnections (10,000)
	// MaxConnectionsPerSource caps one client address's connections to a
	// gateway (0: 256); MaxAuthPerSource those still logging in (0: 64).
	MaxConnectionsPerSource int           `yaml:"max_connections_per_source"`
	MaxAuthPerSource        int           `yaml:"max_auth_per_source"`
	IdleTimeout             time.Duration `yaml:"idle_timeout"`         // idle outside a transaction; 0: off
	MaxSessionLifetime      time.Duration `yaml:"max_session_lifetime"` // 0: sessions outlive credentials
	ShutdownGrace           time.Duration `yaml:"shutdown_grace"`       // sessions may finish this long at shutdown; 0: 2s
	PoolSize                int           `yaml:"pool_size"`            // idle backend connections kept per role, database and startup parameters; 0: no reuse
	PoolIdleTimeout         time.Duration `yaml:"pool_idle_timeout"`    // 0: 1 min
	// Relay moves plaintext sessions' bytes: "event" (default on Linux:
	// loops on RelayThreads locked threads, on io_uring where the kernel
	// allows it, else on epoll), "io_uring" or "epoll" (event, on that
	// engine only), or "goroutine".
	Relay        string `yaml:"relay"`
	RelayThreads int    `yaml:"relay_threads"` // 0: half of GOMAXPROCS, at least 1
	// RelaySched is the event loops' threads' scheduling policy: "batch"
	// (default; a woken loop does not preempt the running task, except
	// while it feeds slow readers) or "normal" (see pgwire.SchedBatch).
	RelaySched string `yaml:"relay_sched"`
	// API limits the AWS API's connections and requests.
	API APILimits `yaml:"api"`
}

// APILimits bound what a client of the AWS API can hold: every connection
// is closed after its timeouts, and requests beyond MaxConcurrentRequests
// at once are answered with AWS's throttling error at once. Bodies are
// capped at 1 MiB (shttp.MaxBodyBytes). Zero values take the defaults.
type APILimits struct {
	ReadHeaderTimeout     time.Duration `yaml:"read_header_timeout"`     // from accept to the end of the headers; 0: 10s
	ReadTimeout           time.Duration `yaml:"read_timeout"`            // from accept to the end of the body; 0: 30s
	WriteTimeout          time.Duration `yaml:"write_timeout"`           // from the end of the headers to the end of the answer; 0: 60s
	IdleTimeout           time.Duration `yaml:"idle_timeout"`            // between requests on a keep-alive connection; 0: 60s
	MaxHeaderBytes        int           `yaml:"max_header_bytes"`        // request line and headers; 0: 64 KiB
	MaxConcurrentRequests int           `yaml:"max_concurrent_requests"` // 0: 256
}

// relayThreads is how many event loops the relay runs. GOMAXPROCS, not
// the machine's CPU count, follows a container's CPU limit.
func (l Limits) relayThreads() int {
	if l.RelayThreads > 0 {
		return l.RelayThreads
	}
	return max(1, runtime.GOMAXPROCS(0)/2)
}

// eventRelay makes the shared event relay on first use (nil when the
// goroutine relay is configured or the platform has no event relay); its
// loops start with the first plaintext session.
func (s *server) eventRelay() (*pgwire.EventRelay, error) {
	if s.Limits.Relay == "goroutine" || (s.Limits.Relay == "" && !pgwire.EventRelaySupported) {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.relay == nil {
		engine := ""
		if s.Limits.Relay == pgwire.EngineIOURing || s.Limits.Relay == pgwire.EngineEpoll {
			engine = s.Limits.Relay
		}
		r, err := pgwire.NewEventRelay(pgwire.RelayConfig{Threads: s.Limits.relayThreads(), Engine: engine, Sched: s.Limits.RelaySched})
		if err != nil {
			return nil, fmt.Errorf("limits.relay: %w", err)
		}
		s.Logger.Info("event relay", "engine", r.Engine(), "threads", s.Limits.relayThreads(), "sched", r.Sched())
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

// startGateway serves the credentials of scope (a cluster identifier or a
// workgroup's credential scope) on ln, against backend b.
// masterUser is the one role of a cluster that may be a superuser in a
// session, and only where allowed (as Redshift's master user); workgroups
// have none.
type masterUser struct {
	name           string
	allowSuperuser bool
}

func (s *server) startGateway(ctx context.Context, scope, db string, b shiftkey.Backend, master masterUser, ln net.Listener, secret []byte) error {
	bc := pgbackend.Config{
		Host: b.Host, Port: b.Port, AdminUser: b.AdminUser, AdminDatabase: db,
		Logger: s.Logger.With("scope", scope), Grants: s.Store, Scope: scope,
		MasterUser: master.name, AllowSuperuser: master.allowSuperuser,
	}
	if b.Login == shiftkey.BackendLoginCert {
		if s.CA == nil {
			return fmt.Errorf("%s: certificate login needs the gateway's CA", scope)
		}
		bc.ClientCert, bc.RootCAs, bc.ServerName = s.CA.ClientCert, s.CA.Pool(), b.Host
	}
	if b.Login == shiftkey.BackendLoginPassword {
		if len(s.PasswordSecret) == 0 {
			return fmt.Errorf("%s: password login needs backend_auth.password_secret", scope)
		}
		secret := s.PasswordSecret
		bc.PasswordFor = func(role string) string {
			m := hmac.New(sha256.New, secret)
			io.WriteString(m, role)
			return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
		}
	}
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
	ln = apiListener(ln, s.APITLS, s.apiRequireTLS)
	authorizer := &authz.Authorizer{Store: s.Store, Logger: s.Logger.With("component", "authz")}
	issuer := &redshift.Service{Store: s.Store, Authorizer: authorizer, Now: s.now, Provisioner: s.ClusterProvisioner}
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
	s.apiServer = s.Limits.API.httpServer(api.Handler())
	s.apiServer.ErrorLog = log.New(httpErrorLog{s.Logger.With("component", "api")}, "", 0)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.apiServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger.Error("api stopped", "error", err)
		}
	}()
	sweepCtx, cancel := context.WithCancel(context.Background())
	s.stopSweep = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.sweep(sweepCtx)
	}()
}

// sweep deletes credentials and STS sessions a day after they expired and
// reconciles session grants, every minute.
func (s *server) sweep(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if n, err := s.Store.DeleteExpiredCredentials(ctx, s.now().Add(-24*time.Hour)); err != nil && ctx.Err() == nil {
			s.Logger.Warn("credential sweep failed", "error", err)
		} else if n > 0 {
			s.Logger.Info("expired credentials deleted", "count", n)
		}
		s.mu.Lock()
		var backends []*pgbackend.Backend
		for _, ep := range s.endpoints {
			backends = append(backends, ep.backend)
		}
		s.mu.Unlock()
		for _, b := range backends {
			if _, err := b.Reconcile(ctx); err != nil && ctx.Err() == nil {
				s.Logger.Warn("grant reconciliation failed", "error", err)
			}
		}
		if n, err := s.Store.DeleteExpiredSessions(ctx, s.now().Add(-24*time.Hour)); err != nil && ctx.Err() == nil {
			s.Logger.Warn("session sweep failed", "error", err)
		} else if n > 0 {
			s.Logger.Info("expired STS sessions deleted", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
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
