// Package server runs what one shiftkey process serves over one store: the
// AWS API, a PostgreSQL gateway per cluster or workgroup, the maintenance
// sweep, the revocation watch and the admin listener, and drains them on
// Stop. `shiftkey serve` configures it from its YAML file and `shiftkey dev`
// from its data dir (package devenv); both only fill in its fields.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/audit"
	"github.com/shiftkey/shiftkey/authz"
	"github.com/shiftkey/shiftkey/config"
	shttp "github.com/shiftkey/shiftkey/http"
	"github.com/shiftkey/shiftkey/iamapi"
	"github.com/shiftkey/shiftkey/maintenance"
	"github.com/shiftkey/shiftkey/metrics"
	"github.com/shiftkey/shiftkey/pgbackend"
	"github.com/shiftkey/shiftkey/pgwire"
	"github.com/shiftkey/shiftkey/redshift"
	"github.com/shiftkey/shiftkey/revocation"
	"github.com/shiftkey/shiftkey/serverless"
	"github.com/shiftkey/shiftkey/storecache"
	"github.com/shiftkey/shiftkey/sts"
)

// Store is what serve and dev need of a store: the SQLite store of one
// instance or the PostgreSQL store replicas share.
type Store interface {
	shiftkey.Store
	shiftkey.DeclaredStore
}

// Server is what `shiftkey dev` and `shiftkey serve` share: the store, the
// API and one gateway per cluster. Fill in the fields, UseStore, start the
// gateways, the API and the admin listener; Stop drains them.
type Server struct {
	Logger *slog.Logger
	Now    func() time.Time
	// Store is db behind the cache every reader and writer goes through
	// (UseStore).
	Store     Store
	db        Store
	AccountID string
	// Regions are the regions the API serves (nil: shiftkey.DefaultRegion).
	Regions []string

	// APIURL is the API over plain HTTP ("" when api.tls.require), and
	// APIHTTPSURL over TLS ("" without a certificate): one port.
	APIURL      string
	APIHTTPSURL string
	// APITLS is the API's TLS (nil: plain HTTP only); APIRequireTLS
	// refuses plain HTTP.
	APITLS        *tls.Config
	APIRequireTLS bool
	// ClientIP is where aws:SourceIp comes from (api.trusted_proxies).
	ClientIP  shttp.ClientIP
	apiServer *http.Server
	api       *shttp.Server // its handler, whose background writes Stop waits for
	stopSweep context.CancelFunc
	wg        sync.WaitGroup

	mu       sync.Mutex
	gateways pgwire.Gateways[*pgbackend.Backend]
	// servers maps each gateway's scope to the backend server it reaches
	// (shiftkey.Backend.Server), from its start until its cluster or
	// workgroup is removed (not only while it runs: a draining gateway's
	// sessions still hold their groups): siblingsOf.
	servers map[string]served
	relay   *pgwire.EventRelay // shared by every gateway; nil: goroutine relay
	// TLS configures the gateways' TLS (nil: plaintext only); RequireTLS
	// and AllowCleartext are pgwire.Gateway's.
	TLS            *tls.Config
	RequireTLS     bool
	AllowCleartext bool
	// GatewayProxies are pgwire.Gateway's ProxyFrom.
	GatewayProxies []netip.Prefix
	// PeerHost is where the other replicas reach this one's gateways to
	// forward cancel requests ("": the gateway's listen address when it
	// names one; none when it listens on every address).
	PeerHost string
	// ScramIterations is the iteration count of new logins (0: the default).
	ScramIterations int
	// Limits apply to every gateway.
	Limits config.Limits
	// Logins are the backends' cert and password login modes' CA and secret.
	Logins pgbackend.Logins
	// Provisioner and ClusterProvisioner run API-created backends (dev
	// mode only).
	Provisioner        shiftkey.Provisioner
	ClusterProvisioner shiftkey.ClusterProvisioner
	// Observer hears of API calls, logins, sessions and grants (metrics,
	// audit); nil: none. Metrics, when set, also times the store.
	Observer shiftkey.Observer
	Metrics  *metrics.Metrics
	Audit    *audit.Log // nil without an audit log (Observe)
	// AdminURL is the admin listener (/metrics, /healthz, /readyz); "" when off.
	AdminURL    string
	adminServer *http.Server
	draining    atomic.Bool // /readyz fails from the start of a shutdown
	// decisions is the API's shttp.Server.Decisions: DeclaringStore's
	// Declaring holds it for writing.
	decisions sync.RWMutex
	// graceMu guards endGrace (Stop's, to cut its grace period short) and
	// graceEnded (EndGrace came before Stop).
	graceMu    sync.Mutex
	endGrace   context.CancelFunc
	graceEnded bool
}

// EndGrace ends a drain's grace period now (serve's second SIGTERM or
// SIGINT): Stop cuts the sessions left, as at its end, and the API calls
// still running. Before Stop, Stop begins with no grace period.
func (s *Server) EndGrace() {
	s.graceMu.Lock()
	defer s.graceMu.Unlock()
	s.graceEnded = true
	if s.endGrace != nil {
		s.endGrace()
	}
}

// DeclaringStore is the store for applying declared identities while the
// API serves (serve's reload): its Declaring holds off this process's API
// calls while the change lands, once the store's own lock (another
// replica's declaring) is taken, so that each call is decided under all of
// the change or none of it. Other replicas see its writes one by one.
func (s *Server) DeclaringStore() Store { return declaringStore{s.Store, &s.decisions} }

type declaringStore struct {
	Store
	decisions *sync.RWMutex
}

func (d declaringStore) Declaring(ctx context.Context, fn func(context.Context) error) error {
	return d.Store.Declaring(ctx, func(ctx context.Context) error {
		d.decisions.Lock()
		defer d.decisions.Unlock()
		return fn(ctx)
	})
}

// store is the store as the API and the gateways use it: timed when there
// are metrics.
func (s *Server) store() shiftkey.Store {
	if s.Metrics != nil {
		return s.Metrics.Store(s.Store)
	}
	return s.Store
}

// UseStore makes db the server's store, behind its cache; the cache
// subscribes to db's change feed when db is shared with other replicas.
func (s *Server) UseStore(db Store) {
	s.db, s.Store = db, storecache.New(db)
}

// Close closes the store given to UseStore and the audit log, those that
// are open; call it after Stop.
func (s *Server) Close() error {
	var errs []error
	if s.db != nil {
		errs = append(errs, s.db.Close())
	}
	if s.Audit != nil {
		errs = append(errs, s.Audit.Close())
	}
	return errors.Join(errs...)
}

// Clock is the time by Now; when nil, the store's time where the store
// keeps one (replicas sharing PostgreSQL: postgres.DB.Now), so that every
// replica issues, expires and checks by one clock; else time.Now.
func (s *Server) Clock() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return StoreTime(s.db)
}

// StoreTime is the time by st's clock where st keeps one (the PostgreSQL
// store replicas share: postgres.DB.Now), else time.Now. Tools that write
// to a shared store (credentials revoke) date what they write by it.
func StoreTime(st Store) time.Time {
	if c, ok := st.(interface{ Now() time.Time }); ok {
		return c.Now()
	}
	return time.Now()
}

// Relay is the event relay the gateways share, nil until the first gateway
// made it or when they use the goroutine relay.
func (s *Server) Relay() *pgwire.EventRelay {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.relay
}

// eventRelay makes the shared event relay on first use (nil when the
// goroutine relay is configured or the platform has no event relay); its
// loops start with the first plaintext session.
func (s *Server) eventRelay() (*pgwire.EventRelay, error) {
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

// Gateway is one to serve: the credentials of Scope (a cluster identifier
// or a workgroup's credential scope) against Backend, in database DB by
// default. Master is the one role of a cluster that may be a superuser in
// a session, and only where AllowSuperuser says so (as Redshift's master
// user); workgroups have none.
type Gateway struct {
	Scope, DB      string
	Region         string // Scope's region: the audit records' awsRegion
	Backend        shiftkey.Backend
	Master         string
	AllowSuperuser bool
	ServerVersion  string // told to clients ("": the backend's number)
	// RedshiftAuth and RedshiftAuthPlaintext are pgwire.Gateway's.
	RedshiftAuth          string
	RedshiftAuthPlaintext bool
}

// StartGateway serves g on ln; secret keys its decoy salts.
func (s *Server) StartGateway(ctx context.Context, g Gateway, ln net.Listener, secret []byte) error {
	scope, db, b := g.Scope, g.DB, g.Backend
	bc, err := s.Logins.ConfigFor(b, db)
	if err != nil {
		return fmt.Errorf("%s: %w", scope, err)
	}
	bc.Logger, bc.Grants, bc.Scope, bc.Region = s.Logger.With("scope", scope), s.store(), scope, g.Region
	if s.Observer != nil {
		bc.Observer = s.Observer
	}
	bc.MasterUser, bc.AllowSuperuser = g.Master, g.AllowSuperuser
	if cs, ok := s.db.(shiftkey.GroupCutStore); ok {
		bc.Cuts = cs // a store replicas share: they hear of each other's cuts (watchGroupCuts)
	}
	bc.Now = s.Clock
	s.onServer(scope, b)
	bc.Siblings = func() []*pgbackend.Backend { return s.siblingsOf(scope) }
	relay, err := s.eventRelay()
	if err != nil {
		return err
	}
	backend, err := pgbackend.New(ctx, bc)
	if err != nil {
		return fmt.Errorf("%s: %w", scope, err)
	}
	s.servedBy(scope, backend)
	// Grants a crashed predecessor left behind go before the first session.
	if n, err := backend.Reconcile(ctx); err != nil {
		s.Logger.Warn("grant reconciliation failed", "scope", scope, "error", err)
	} else if n > 0 {
		s.Logger.Info("stale grants revoked at start", "scope", scope, "count", n)
	}
	gw := &pgwire.Gateway{
		Cluster:        scope,
		Region:         g.Region,
		Credentials:    s.store(),
		Backend:        backend.ForGateway(),
		DefaultDB:      db,
		Logger:         s.Logger.With("component", "gateway"),
		Now:            s.Clock,
		Secret:         secret,
		Iterations:     s.ScramIterations,
		TLS:            s.TLS,
		RequireTLS:     s.RequireTLS,
		ProxyFrom:      s.GatewayProxies,
		ServerVersion:  g.ServerVersion,
		AllowCleartext: s.AllowCleartext,

		RedshiftAuth:          g.RedshiftAuth,
		RedshiftAuthPlaintext: g.RedshiftAuthPlaintext,

		MaxConnections:          s.Limits.MaxConnections,
		MaxConnectionsPerSource: s.Limits.MaxConnectionsPerSource,
		MaxAuthPerSource:        s.Limits.MaxAuthPerSource,
		IdleTimeout:             s.Limits.IdleTimeout,
		MaxSessionLifetime:      s.Limits.MaxSessionLifetime,
		PoolSize:                s.Limits.PoolSize,
		PoolIdleTimeout:         s.Limits.PoolIdleTimeout,
		Relay:                   relay,
	}
	if s.Observer != nil {
		gw.Observer = s.Observer
	}
	gw.Peers = s.advertiseGateway(ctx, scope, ln.Addr())
	if rk, ok := s.db.(shiftkey.RevokedKeys); ok {
		gw.Revoked = rk
	}
	if si, ok := s.db.(shiftkey.SaltIterations); ok {
		gw.SaltIterations = si
	}
	s.mu.Lock()
	if s.gateways.Domains == nil { // before the first gateway serves
		s.gateways.Domains, s.gateways.Workgroups, s.gateways.Grace, s.gateways.Logger = s.Store, s.Store, s.Limits.ShutdownGrace, s.Logger
	}
	s.mu.Unlock()
	s.gateways.Serve(scope, gw, ln, backend)
	return nil
}

// StopGateway stops the gateway of scope at once (a deleted cluster or
// workgroup, or one moving to another port).
func (s *Server) StopGateway(scope string) {
	// Withdrawn once stopped: while its sessions drain, the peers forward
	// their cancels to it.
	s.gateways.Stop(scope)
	if ps, ok := s.db.(peerStore); ok {
		if err := ps.WithdrawGateway(context.Background(), scope); err != nil {
			s.Logger.Warn("gateway not withdrawn from its peers", "scope", scope, "error", err)
		}
	}
}

// RemoveGateway stops the gateway of scope, whose cluster or workgroup
// was deleted, and forgets its metric series.
func (s *Server) RemoveGateway(scope string) {
	s.StopGateway(scope)
	s.onServer(scope, shiftkey.Backend{})
	if s.Metrics != nil {
		s.Metrics.Forget(scope)
	}
}

// served is where a scope's gateway reaches its backend.
type served struct {
	server  string             // shiftkey.Backend.Server
	backend *pgbackend.Backend // nil until made (servedBy)
}

// onServer records that scope's gateway reaches backend b's server; the
// zero Backend forgets it.
func (s *Server) onServer(scope string, b shiftkey.Backend) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b == (shiftkey.Backend{}) {
		delete(s.servers, scope)
		return
	}
	if s.servers == nil {
		s.servers = map[string]served{}
	}
	s.servers[scope] = served{server: b.Server()}
}

// servedBy records scope's backend, once made (onServer came first). A
// gateway restarted on another port replaces the one it stopped, whose
// sessions StopGateway let end first.
func (s *Server) servedBy(scope string, b *pgbackend.Backend) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sv, ok := s.servers[scope]; ok {
		sv.backend = b
		s.servers[scope] = sv
	}
}

// siblingsOf are the backends of the other gateways on the backend server
// of scope's, ordered by scope: a role's memberships are the server's, so
// the grants of each hold for the others' sessions too, and a membership
// one revokes as its group turned unsafe ends the others' sessions of the
// role (pgbackend.Config.Siblings). A gateway whose backend is not made
// yet has no sessions.
func (s *Server) siblingsOf(scope string) []*pgbackend.Backend {
	s.mu.Lock()
	defer s.mu.Unlock()
	var others []string
	for other, sv := range s.servers {
		if other != scope && sv.backend != nil && sv.server == s.servers[scope].server {
			others = append(others, other)
		}
	}
	slices.Sort(others)
	var out []*pgbackend.Backend
	for _, other := range others {
		out = append(out, s.servers[other].backend)
	}
	return out
}

// peerStore is a store replicas share, through which their gateways find
// each other to forward cancel requests.
type peerStore interface {
	AdvertiseGateway(ctx context.Context, scope, address string) error
	WithdrawGateway(ctx context.Context, scope string) error
	GatewayPeers(ctx context.Context, scope string) ([]string, error)
}

// advertiseGateway records where the other replicas reach the gateway of
// scope listening on addr, and returns its peers; nil when the store is
// not shared or there is no address to give.
func (s *Server) advertiseGateway(ctx context.Context, scope string, addr net.Addr) *pgwire.Peers {
	ps, ok := s.db.(peerStore)
	if !ok {
		return nil
	}
	address := peerAddress(s.PeerHost, addr)
	if address == "" {
		s.Logger.Warn("cancel requests are not forwarded between replicas: the gateway listens on every address; set peer_host to where the other replicas reach this one", "scope", scope, "listen", addr.String())
	} else if err := ps.AdvertiseGateway(ctx, scope, address); err != nil {
		s.Logger.Warn("gateway not advertised to its peers: cancel requests sent to other replicas do not reach its sessions", "scope", scope, "error", err)
	}
	return &pgwire.Peers{
		List: func(ctx context.Context) ([]string, error) { return ps.GatewayPeers(ctx, scope) },
		// Draining: the peers' cancels come to a port of their own.
		Advertise: func(a net.Addr) bool {
			address := peerAddress(s.PeerHost, a)
			if address == "" {
				return false
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := ps.AdvertiseGateway(ctx, scope, address); err != nil {
				s.Logger.Warn("draining gateway not advertised to its peers: cancel requests sent to other replicas do not reach its sessions", "scope", scope, "error", err)
				return false
			}
			return true
		},
	}
}

// peerAddress is host with addr's port, or addr itself when host is ""
// and addr names one address.
func peerAddress(host string, addr net.Addr) string {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return ""
	}
	if host != "" {
		return net.JoinHostPort(host, strconv.Itoa(ta.Port))
	}
	if ta.IP == nil || ta.IP.IsUnspecified() {
		return ""
	}
	return ta.String()
}

// KnownName says whether name is a custom domain of a running gateway, for
// the certificate a TLS handshake asks for.
func (s *Server) KnownName(name string) bool { return s.gateways.Known(name) }

// ShutdownGrace is how long sessions may run once a shutdown begins.
func (s *Server) ShutdownGrace() time.Duration {
	if s.Limits.ShutdownGrace == 0 {
		return 2 * time.Second
	}
	return s.Limits.ShutdownGrace
}

// SetAPIURLs sets the URLs clients reach the API on ln at (StartAPI does
// too; dev writes them to dev.env before the API answers).
func (s *Server) SetAPIURLs(ln net.Listener) {
	ep := pgwire.Advertised(ln.Addr())
	hostPort := net.JoinHostPort(ep.Address, strconv.Itoa(ep.Port))
	s.APIURL, s.APIHTTPSURL = "http://"+hostPort, ""
	if s.APITLS != nil {
		s.APIHTTPSURL = "https://" + hostPort
		if s.APIRequireTLS {
			s.APIURL = ""
		}
	}
}

// StartAPI serves the AWS API on ln, over TLS too when APITLS is set, and
// starts the maintenance sweep and the revocation watch.
func (s *Server) StartAPI(ln net.Listener) {
	s.SetAPIURLs(ln)
	tlsObserver, _ := s.Observer.(shiftkey.TLSObserver)
	ln = shttp.Listener(ln, s.APITLS, s.APIRequireTLS, tlsObserver)
	st := s.store()
	authorizer := &authz.Authorizer{Store: st, Logger: s.Logger.With("component", "authz")}
	issuer := &redshift.Service{Store: st, Authorizer: authorizer, Now: s.Clock, Provisioner: s.ClusterProvisioner, Iterations: s.ScramIterations}
	api := &shttp.Server{
		Identities: st,
		Redshift:   issuer,
		Serverless: &serverless.Service{Store: st, Authorizer: authorizer, Issuer: issuer, Provisioner: s.Provisioner, Now: s.Clock},
		IAM:        &iamapi.Service{Store: st, Authorizer: authorizer, AccountID: s.AccountID, Now: s.Clock},
		STS:        &sts.Service{Store: st, Authorizer: authorizer, AccountID: s.AccountID, Now: s.Clock},
		AccountID:  s.AccountID,
		Regions:    s.Regions,
		Logger:     s.Logger.With("component", "api"),
		Now:        s.Clock,
		ClientIP:   s.ClientIP,
		CPUSlots:   s.Limits.API.Slots(s.ScramIterations),
		Decisions:  &s.decisions,
	}
	if s.Observer != nil {
		api.Observer = s.Observer
	}
	s.api = api
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
	sweeper := &maintenance.Sweeper{Store: s.Store, Backends: s.backends, Logger: s.Logger, Now: s.Clock}
	if l, ok := s.db.(interface{ GrantLease() time.Duration }); ok {
		sweeper.Every = min(maintenance.Interval, l.GrantLease()/2)
	}
	s.wg.Go(func() { sweeper.Run(sweepCtx) })
	s.watchRevocations(sweepCtx)
	s.watchGroupCuts(sweepCtx)
}

// revocationPoll is how often a store without a change feed (SQLite) is
// asked whether another process revoked credentials, for the sessions
// open with them, and one with a feed while that feed is not current.
const revocationPoll = 200 * time.Millisecond

// watchRevocations ends the sessions of credentials revoked with
// --terminate, whichever process revoked them: replicas hear of it through
// the store's change feed; a SQLite store tells of what another process
// revoked when a login or a call asks it (it has dropped what it cached
// then, and the cache its sessions), and every revocationPoll for the
// sessions open with no login coming.
func (s *Server) watchRevocations(ctx context.Context) {
	term := &revocation.Terminator{Store: s.Store, Gateways: s.sessionGateways, Logger: s.Logger.With("component", "revocation")}
	s.wg.Go(func() { term.Run(ctx) })
	switch st := s.db.(type) {
	case shiftkey.ChangeSource:
		st.Subscribe(term.Changed)
		if cs, ok := st.(shiftkey.CurrentSource); ok {
			s.wg.Go(func() { term.WhileBehind(ctx, cs.Current, revocationPoll) })
		}
	case interface {
		shiftkey.OutsideRevocations
		WatchRevocations(context.Context, time.Duration)
	}:
		st.OnRevoked(func() { term.Changed(shiftkey.Change{}) })
		// What a login noticed before the callback was registered.
		term.Changed(shiftkey.Change{})
		s.wg.Go(func() { st.WatchRevocations(ctx, revocationPoll) })
	}
}

// watchGroupCuts ends this process's sessions of a role whose group
// another replica revoked as it turned unsafe: they may have run SET ROLE
// to it. Replicas hear of it through the store's change feed, as of
// revoked credentials (watchRevocations), and read the store while the
// feed is not current. A store without a feed (SQLite) has one process,
// which ends its own sessions as it revokes.
func (s *Server) watchGroupCuts(ctx context.Context) {
	st, ok := s.db.(shiftkey.ChangeSource)
	if _, cuts := s.db.(shiftkey.GroupCutStore); !ok || !cuts {
		return
	}
	feed := &pgbackend.CutFeed{Backends: s.gateways.Owners, Logger: s.Logger.With("component", "gateway")}
	s.wg.Go(func() { feed.Run(ctx) })
	st.Subscribe(feed.Changed)
	if cs, ok := st.(shiftkey.CurrentSource); ok {
		s.wg.Go(func() { feed.WhileBehind(ctx, cs.Current, revocationPoll) })
	}
}

// sessionGateways are the running gateways, as the Terminator sees them.
func (s *Server) sessionGateways() []revocation.Gateway {
	var out []revocation.Gateway
	s.gateways.Each(func(_ string, gw *pgwire.Gateway, _ *pgbackend.Backend) { out = append(out, gw) })
	return out
}

// backends are the running gateways' backends.
func (s *Server) backends() []maintenance.Reconciler {
	var out []maintenance.Reconciler
	for _, b := range s.gateways.Owners() {
		out = append(out, b)
	}
	return out
}

// Unready makes /readyz fail from now on, while everything goes on
// serving: the start of serve's shutdown, limits.unready_delay before Stop.
func (s *Server) Unready() { s.draining.Store(true) }

// Stop drains: the API and every gateway stop accepting at once; API calls
// in flight finish and sessions run on until they end or the shutdown
// grace period does (or EndGrace ends it), when those left are cut. Then
// the backends' admin pools, the sweeper and the admin listener stop. The
// store and the audit log stay open (Close).
func (s *Server) Stop() []error {
	s.draining.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), s.ShutdownGrace())
	defer cancel()
	s.graceMu.Lock()
	s.endGrace = cancel
	if s.graceEnded {
		cancel()
	}
	s.graceMu.Unlock()
	var (
		errs   []error
		errsMu sync.Mutex
		wg     sync.WaitGroup
	)
	if s.apiServer != nil {
		wg.Go(func() {
			err := s.apiServer.Shutdown(ctx)
			if err != nil {
				// Calls still running at the end of the grace period are cut.
				s.apiServer.Close()
			}
			if err != nil && errors.Is(err, ctx.Err()) {
				// As documented, and part of a clean drain, not its failure
				// (serve would exit 1 saying only "context deadline exceeded").
				s.Logger.Info("API calls cut at shutdown", "shutdown_grace", s.ShutdownGrace().String())
				err = nil
			}
			errsMu.Lock()
			errs = append(errs, err)
			errsMu.Unlock()
		})
	}
	wg.Go(func() { s.gateways.Drain(ctx) })
	wg.Wait()
	if s.api != nil {
		// The calls have returned; what they wrote beside them lands
		// before the store is closed.
		s.api.WaitBackground()
	}
	if s.stopSweep != nil {
		s.stopSweep()
	}
	if s.adminServer != nil {
		actx, acancel := context.WithTimeout(context.Background(), time.Second)
		if err := s.adminServer.Shutdown(actx); err != nil {
			s.adminServer.Close()
		}
		acancel()
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
