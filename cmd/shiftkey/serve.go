package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/audit"
	"github.com/shiftkey/shiftkey/certauth"
	"github.com/shiftkey/shiftkey/config"
	"github.com/shiftkey/shiftkey/iamapi"
	"github.com/shiftkey/shiftkey/pgwire"
	"github.com/shiftkey/shiftkey/secretbox"
	"github.com/shiftkey/shiftkey/server"
)

// Serve runs shiftkey from a config file: clusters backed by existing
// PostgreSQL servers, identities declared in the config.
type Serve struct {
	Config *config.Config
	Logger *slog.Logger
	server.Server
	// The gateways' and the API's certificates, replaced by Reload.
	gatewayCert, apiCert atomic.Pointer[tls.Certificate]
	// backendCA is backend_auth's CA (nil: none), replaced by Reload.
	backendCA backendCA
	// keyFromEnv: the store key came from SHIFTKEY_STORE_KEY, and there is
	// no file for Reload to look at.
	keyFromEnv bool
	lock       *os.File // the SQLite store's, held until Close
}

// backendCA is the CA of the backends' certificate logins as Reload last
// read it: their new connections sign and verify with it, those open keep
// what they had.
type backendCA struct{ atomic.Pointer[certauth.CA] }

func (c *backendCA) ClientCert(role string) (*tls.Certificate, error) {
	return c.Load().ClientCert(role)
}

func (c *backendCA) Pool() *x509.CertPool { return c.Load().Pool() }

// loadBackendCA reads backend_auth's CA files, refusing a key others may read.
func loadBackendCA(a config.BackendAuthConfig) (*certauth.CA, error) {
	// Its key signs certificates the backends take for any role: as the
	// store key, it must be the owner's alone.
	if err := secretbox.CheckPrivate(a.CAKeyFile); err != nil {
		return nil, fmt.Errorf("backend_auth.ca_key_file: %w", err)
	}
	ca, err := certauth.Load(a.CACertFile, a.CAKeyFile)
	if err != nil {
		return nil, fmt.Errorf("backend_auth CA: %w", err)
	}
	return ca, nil
}

// Start opens the store, applies the declared identities and clusters, and
// starts the API and the gateways. On error the caller must call Close.
func (s *Serve) Start(ctx context.Context) (err error) {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	cfg := s.Config
	s.Server.Logger, s.AccountID, s.Limits, s.Regions = s.Logger, cfg.AccountID, cfg.Limits, cfg.Regions
	s.ScramIterations = cfg.ScramIterations
	if cfg.Store.SQLite != "" {
		if err := os.MkdirAll(filepath.Dir(cfg.Store.SQLite), 0o700); err != nil {
			return err
		}
		// A SQLite store is one serve's: each keeps identities, keys and
		// policies in memory and hears only of its own writes, so a second
		// would never see what the first changed (a key deactivated, a
		// policy removed), nor the first what it changed. The tools
		// (credentials, rotate-key) do not take the lock.
		// (Every path to the store names one lock: see StoreLockPath.)
		lockPath, err := server.StoreLockPath(cfg.Store.SQLite)
		if err != nil {
			return fmt.Errorf("lock store.sqlite: %w", err)
		}
		s.lock, err = server.LockFile(lockPath)
		if le, ok := errors.AsType[*server.LockedError](err); ok {
			return fmt.Errorf("store.sqlite %s is in use by another shiftkey serve (%s): stop it, or give this one another store", cfg.Store.SQLite, le.Holder)
		}
		if err != nil {
			return fmt.Errorf("lock store.sqlite: %w", err)
		}
	}
	_, s.keyFromEnv = os.LookupEnv(config.EnvStoreKey) // OpenStore unsets it
	db, err := server.OpenStore(ctx, cfg.Store, s.Logger)
	if err != nil {
		return err
	}
	s.UseStore(db)
	if err := checkAccount(ctx, s.Store, cfg.AccountID); err != nil {
		return err
	}
	secret, err := server.GatewaySecret(ctx, db, cfg.Store)
	if err != nil {
		return err
	}
	if cfg.BackendAuth.CACertFile != "" {
		ca, err := loadBackendCA(cfg.BackendAuth)
		if err != nil {
			return err
		}
		s.backendCA.Store(ca)
		s.Logins.CA = &s.backendCA
	}
	s.Logins.PasswordSecret = []byte(cfg.BackendAuth.PasswordSecret)
	// Everything that can fail on this host (certificates, listeners) is
	// checked before the declared identities are written: with a shared
	// store, a replica that cannot start must not have changed them.
	if cfg.TLS.Enabled() {
		if s.TLS, err = server.ReloadableTLS(&s.gatewayCert, cfg.TLS.CertPair, "tls"); err != nil {
			return err
		}
		s.RequireTLS = cfg.TLS.Require
		s.AllowCleartext = cfg.TLS.AllowCleartext
	}
	if cfg.API.TLS.Enabled() {
		if s.APITLS, err = server.ReloadableTLS(&s.apiCert, cfg.API.TLS, "api.tls"); err != nil {
			return err
		}
		s.APIRequireTLS = cfg.API.TLS.Require
	}
	var bound []net.Listener
	defer func() {
		if err != nil { // served or not: closing twice is harmless
			for _, ln := range bound {
				ln.Close()
			}
		}
	}()
	gatewayLns := map[string]net.Listener{}
	listen := func(what string, gc config.GatewayConfig) error {
		ln, err := pgwire.Listen(gc.Listen)
		if err != nil {
			return fmt.Errorf("%s: gateway listen: %w", what, err)
		}
		bound, gatewayLns[what] = append(bound, ln), ln
		return nil
	}
	for _, cc := range cfg.Clusters {
		if err := listen("cluster "+cc.Identifier, cc.Gateway); err != nil {
			return err
		}
	}
	for _, wc := range cfg.Workgroups {
		if err := listen("workgroup "+wc.Name, wc.Gateway); err != nil {
			return err
		}
	}
	apiLn, err := net.Listen("tcp", cfg.API.Listen)
	if err != nil {
		return fmt.Errorf("api listen: %w", err)
	}
	bound = append(bound, apiLn)
	var adminLn net.Listener
	if cfg.Admin.Enabled() {
		if adminLn, err = net.Listen("tcp", cfg.Admin.Listen); err != nil {
			return fmt.Errorf("admin listen: %w", err)
		}
		bound = append(bound, adminLn)
	}
	// The audit log too can fail here (a directory it cannot write).
	if err := s.Observe(cfg.Admin.Enabled(), cfg.Audit.File, cfg.RegionOf("")); err != nil {
		return err
	}
	changes, err := cfg.ApplyIdentities(ctx, s.Store)
	if err != nil {
		return applyFailed(err)
	}
	changes.Log(ctx, s.Logger)
	s.auditIdentities(changes, "start", "")
	for _, g := range cfg.SharedAcrossDatabases() {
		s.Logger.Warn("gateways reach one backend server in different databases: their session groups are shared, but a session's end and another's login asking for the same group at once are not ordered, and the group can be revoked from the new session; give them one database or their own servers (docs/deployment.md)",
			"gateways", g)
	}
	s.ClientIP = cfg.API.ClientIP()
	s.GatewayProxies = cfg.GatewayProxies()
	s.PeerHost = cfg.PeerHost
	for _, cc := range cfg.Clusters {
		what := "cluster " + cc.Identifier
		err := s.serveDeclared(ctx, what, gatewayLns[what], cc.Gateway, secret, func(ep shiftkey.Endpoint) (server.Gateway, error) {
			c, err := cfg.ApplyCluster(ctx, s.Store, cc, ep, s.Clock())
			if err != nil {
				return server.Gateway{}, err
			}
			return server.Gateway{Scope: c.Identifier, Region: c.Region, DB: c.DBName, Backend: c.Backend, Master: c.MasterUsername, AllowSuperuser: cc.AllowSuperuserMaster}, nil
		})
		if err != nil {
			return err
		}
	}
	for _, wc := range cfg.Workgroups {
		what := "workgroup " + wc.Name
		err := s.serveDeclared(ctx, what, gatewayLns[what], wc.Gateway, secret, func(ep shiftkey.Endpoint) (server.Gateway, error) {
			w, err := cfg.ApplyWorkgroup(ctx, s.Store, wc, ep, s.Clock())
			if err != nil {
				return server.Gateway{}, err
			}
			return server.Gateway{Scope: w.CredentialScope(), Region: w.Region, DB: wc.Database, Backend: w.Backend}, nil
		})
		if err != nil {
			return err
		}
	}
	s.StartAPI(apiLn)
	if adminLn != nil {
		s.StartAdminOn(adminLn)
	}
	s.Logger.Info("shiftkey serving", "api", s.APIURL, "api_https", s.APIHTTPSURL, "admin", s.AdminURL, "clusters", len(cfg.Clusters))
	return nil
}

// checkAccount refuses a store whose identities were created in another
// account than account: their ARNs name theirs, and a server in another
// would answer for two at once (GetCallerIdentity's Account the new one,
// its Arn the old; no stored role assumable by either ARN).
func checkAccount(ctx context.Context, st shiftkey.Store, account string) error {
	for _, kind := range []shiftkey.EntityKind{shiftkey.KindUser, shiftkey.KindRole, shiftkey.KindGroup} {
		es, err := st.Entities(ctx, kind, "/")
		if err != nil {
			return err
		}
		for _, e := range es {
			// arn:aws:iam::ACCOUNT:…
			if parts := strings.SplitN(e.ARN, ":", 6); len(parts) == 6 && parts[4] != account {
				return fmt.Errorf("account_id is %q, but the store's identities are in account %q (%s): their ARNs cannot move to another account; set account_id: %q, or give the new account a store of its own",
					account, parts[4], e.ARN, parts[4])
			}
		}
	}
	return nil
}

// serveDeclared has apply record a declared cluster or workgroup (what,
// for errors) in the store at the endpoint its gateway listener ln gives
// clients, and serves ln (on failure Start closes every listener).
func (s *Serve) serveDeclared(ctx context.Context, what string, ln net.Listener, gc config.GatewayConfig, secret []byte, apply func(shiftkey.Endpoint) (server.Gateway, error)) error {
	ep := pgwire.Advertised(ln.Addr())
	if gc.Advertise != "" {
		ep.Address = gc.Advertise
	}
	g, err := apply(ep)
	g.ServerVersion, g.RedshiftAuth, g.RedshiftAuthPlaintext = gc.ServerVersion, gc.RedshiftAuth, gc.RedshiftAuthPlaintext
	if err != nil {
		return err
	}
	return s.StartGateway(ctx, g, ln, secret)
}

// Close stops everything.
func (s *Serve) Close() error {
	err := errors.Join(append(s.Stop(), s.Server.Close())...)
	if s.lock != nil {
		s.lock.Close() // last: until here the store is this process's
		s.lock = nil
	}
	return err
}

// auditIdentities writes the audit record of what applying the config's
// identities changed (a key created or deactivated, …), when anything did:
// how a key declared Inactive is seen to stop working.
func (s *Serve) auditIdentities(changes iamapi.Changes, trigger, configFile string) {
	if s.Audit == nil || len(changes) == 0 {
		return
	}
	out := make([]audit.IdentityChange, len(changes))
	for i, c := range changes {
		out[i] = audit.IdentityChange{Change: c.Change, Kind: string(c.Kind), Name: c.Name, AccessKeyID: c.AccessKeyID, Policy: c.Policy,
			PolicyARN: c.PolicyARN, Group: c.Group, Tag: c.Tag, Status: c.Status, Warning: c.Warning}
	}
	host, _ := os.Hostname()
	s.Audit.IdentitiesApplied(&audit.IdentitiesApplied{Time: s.Clock(), Host: host, ConfigFile: configFile, Trigger: trigger, Changes: out})
}

// applyFailed says what a failed ApplyIdentities left: nothing, as the
// store applies it in one transaction (DeclaredStore.Declaring), unless
// the COMMIT's answer was lost and the store could not learn its outcome.
func applyFailed(err error) error {
	if errors.Is(err, shiftkey.ErrCommitUnknown) {
		return fmt.Errorf("apply iam config (its identity changes may or may not be in the store: the store's connection was lost at its commit; apply it again): %w", err)
	}
	return fmt.Errorf("apply iam config (none of its identity changes applied): %w", err)
}
