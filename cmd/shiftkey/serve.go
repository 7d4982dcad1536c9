package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/certauth"
	"github.com/shiftkey/shiftkey/cmd/shiftkey/config"
)

// Serve runs shiftkey from a config file: clusters backed by existing
// PostgreSQL servers, identities declared in the config.
type Serve struct {
	Config *config.Config
	Logger *slog.Logger
	server
}

// Start opens the store, applies the declared identities and clusters, and
// starts the API and the gateways. On error the caller must call Close.
func (s *Serve) Start(ctx context.Context) error {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	cfg := s.Config
	s.server.Logger, s.AccountID, s.Limits, s.Regions = s.Logger, cfg.AccountID, cfg.Limits, cfg.Regions
	s.scramIterations = cfg.ScramIterations
	if err := os.MkdirAll(filepath.Dir(cfg.Store.SQLite), 0o700); err != nil {
		return err
	}
	var err error
	db, err := openServeStore(ctx, cfg.Store, s.Logger)
	if err != nil {
		return err
	}
	s.useStore(db)
	secret, err := loadOrCreateKey(cfg.Store.SQLite + ".gateway-key")
	if err != nil {
		return err
	}
	if cfg.BackendAuth.CACertFile != "" {
		ca, err := certauth.Load(cfg.BackendAuth.CACertFile, cfg.BackendAuth.CAKeyFile)
		if err != nil {
			return fmt.Errorf("backend_auth CA: %w", err)
		}
		s.Logins.CA = ca
	}
	s.Logins.PasswordSecret = []byte(cfg.BackendAuth.PasswordSecret)
	changes, err := cfg.ApplyIdentities(ctx, s.Store)
	changes.Log(ctx, s.Logger)
	if err != nil {
		return fmt.Errorf("apply iam config: %w", err)
	}
	if cfg.TLS.Enabled() {
		if s.TLS, err = cfg.TLS.Load("tls"); err != nil {
			return err
		}
		s.requireTLS = cfg.TLS.Require
		s.allowCleartext = cfg.TLS.AllowCleartext
	}
	if cfg.API.TLS.Enabled() {
		if s.APITLS, err = cfg.API.TLS.Load("api.tls"); err != nil {
			return err
		}
		s.apiRequireTLS = cfg.API.TLS.Require
	}
	s.clientIP = cfg.API.ClientIP()
	for _, cc := range cfg.Clusters {
		err := s.serveDeclared(ctx, "cluster "+cc.Identifier, cc.Gateway, secret, func(ep shiftkey.Endpoint) (gateway, error) {
			c, err := cfg.ApplyCluster(ctx, s.Store, cc, ep, s.now())
			if err != nil {
				return gateway{}, err
			}
			return gateway{scope: c.Identifier, db: c.DBName, backend: c.Backend, master: c.MasterUsername, allowSuperuser: cc.AllowSuperuserMaster}, nil
		})
		if err != nil {
			return err
		}
	}
	for _, wc := range cfg.Workgroups {
		err := s.serveDeclared(ctx, "workgroup "+wc.Name, wc.Gateway, secret, func(ep shiftkey.Endpoint) (gateway, error) {
			w, err := cfg.ApplyWorkgroup(ctx, s.Store, wc, ep, s.now())
			if err != nil {
				return gateway{}, err
			}
			return gateway{scope: w.CredentialScope(), db: wc.Database, backend: w.Backend}, nil
		})
		if err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", cfg.API.Listen)
	if err != nil {
		return fmt.Errorf("api listen: %w", err)
	}
	s.startAPI(ln)
	s.Logger.Info("shiftkey serving", "api", s.APIURL, "api_https", s.APIHTTPSURL, "clusters", len(cfg.Clusters))
	return nil
}

// serveDeclared opens the gateway listener of a declared cluster or
// workgroup (what, for errors), has apply record it in the store at the
// endpoint clients are to use, and serves it.
func (s *Serve) serveDeclared(ctx context.Context, what string, gc config.GatewayConfig, secret []byte, apply func(shiftkey.Endpoint) (gateway, error)) error {
	ln, err := listenGateway(gc.Listen)
	if err != nil {
		return fmt.Errorf("%s: gateway listen: %w", what, err)
	}
	ep := advertised(ln.Addr())
	if gc.Advertise != "" {
		ep.Address = gc.Advertise
	}
	g, err := apply(ep)
	if err == nil {
		err = s.startGateway(ctx, g, ln, secret)
	}
	if err != nil {
		ln.Close()
	}
	return err
}

// Close stops everything.
func (s *Serve) Close() error {
	errs := s.close()
	if s.db != nil {
		errs = append(errs, s.db.Close())
	}
	return errors.Join(errs...)
}
