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
	"github.com/shiftkey/shiftkey/iamapi"
)

// Serve runs shiftkey from a config file: clusters backed by existing
// PostgreSQL servers, identities declared in the config.
type Serve struct {
	Config *Config
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
	if err := os.MkdirAll(filepath.Dir(cfg.Store.SQLite), 0o700); err != nil {
		return err
	}
	var err error
	if s.Store, err = openServeStore(ctx, cfg.Store, s.Logger); err != nil {
		return err
	}
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
	changes, err := ApplyIdentities(ctx, s.Store, cfg)
	changes.Log(ctx, s.Logger)
	if err != nil {
		return fmt.Errorf("apply iam config: %w", err)
	}
	if cfg.TLS.Enabled() {
		if s.TLS, err = cfg.TLS.load("tls"); err != nil {
			return err
		}
		s.requireTLS = cfg.TLS.Require
		s.allowCleartext = cfg.TLS.AllowCleartext
	}
	if cfg.API.TLS.Enabled() {
		if s.APITLS, err = cfg.API.TLS.load("api.tls"); err != nil {
			return err
		}
		s.apiRequireTLS = cfg.API.TLS.Require
	}
	s.clientIP = cfg.API.clientIP()
	for _, cc := range cfg.Clusters {
		ln, err := listenGateway(cc.Gateway.Listen)
		if err != nil {
			return fmt.Errorf("cluster %s: gateway listen: %w", cc.Identifier, err)
		}
		ep := advertised(ln.Addr())
		if cc.Gateway.Advertise != "" {
			ep.Address = cc.Gateway.Advertise
		}
		c, err := s.applyCluster(ctx, cc, ep)
		if err != nil {
			ln.Close()
			return err
		}
		if err := s.startGateway(ctx, c.Identifier, c.DBName, c.Backend, masterUser{c.MasterUsername, cc.AllowSuperuserMaster}, ln, secret); err != nil {
			ln.Close()
			return err
		}
	}
	for _, wc := range cfg.Workgroups {
		ln, err := listenGateway(wc.Gateway.Listen)
		if err != nil {
			return fmt.Errorf("workgroup %s: gateway listen: %w", wc.Name, err)
		}
		ep := advertised(ln.Addr())
		if wc.Gateway.Advertise != "" {
			ep.Address = wc.Gateway.Advertise
		}
		w, err := s.applyWorkgroup(ctx, wc, ep)
		if err != nil {
			ln.Close()
			return err
		}
		if err := s.startGateway(ctx, w.CredentialScope(), wc.Database, w.Backend, masterUser{}, ln, secret); err != nil {
			ln.Close()
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

func (s *Serve) applyCluster(ctx context.Context, cc ClusterConfig, ep shiftkey.Endpoint) (*shiftkey.Cluster, error) {
	master := cc.MasterUsername
	if master == "" {
		// Redshift's default; never the provisioning role, which is not issued.
		master = "awsuser"
	}
	backend := shiftkey.Backend{Host: cc.Backend.Host, Port: cc.Backend.Port, AdminUser: cc.Backend.AdminUser, Login: loginMode(cc.Backend.Login)}
	region := s.regionOf(cc.Region)
	c, err := s.Store.Cluster(ctx, cc.Identifier)
	if shiftkey.ErrorCode(err) == shiftkey.CodeClusterNotFound {
		c = &shiftkey.Cluster{Identifier: cc.Identifier, Region: region, NamespaceID: shiftkey.NewUUID(), NodeType: "dc2.large", DBName: cc.Database,
			MasterUsername: master, Status: "available", Endpoint: ep, Backend: backend, CreatedAt: s.now().UTC()}
		return c, s.Store.CreateCluster(ctx, c)
	}
	if err != nil {
		return nil, err
	}
	c.DBName, c.MasterUsername, c.Endpoint, c.Backend, c.Region = cc.Database, master, ep, backend, region
	return c, s.Store.UpdateCluster(ctx, c)
}

// regionOf is a declared resource's region: its own, else the first served.
func (s *Serve) regionOf(r string) string {
	if r != "" {
		return r
	}
	if len(s.Regions) > 0 {
		return s.Regions[0]
	}
	return shiftkey.DefaultRegion
}

func (s *Serve) applyWorkgroup(ctx context.Context, wc WorkgroupConfig, ep shiftkey.Endpoint) (*shiftkey.Workgroup, error) {
	admin := wc.AdminUsername
	if admin == "" {
		admin = wc.Backend.AdminUser
	}
	if _, err := s.Store.Namespace(ctx, wc.Namespace); shiftkey.ErrorCode(err) == shiftkey.CodeResourceNotFound {
		ns := &shiftkey.Namespace{Name: wc.Namespace, ID: shiftkey.NewUUID(), Region: s.regionOf(wc.Region), DBName: wc.Database, AdminUsername: admin, Status: "AVAILABLE", CreatedAt: s.now().UTC()}
		if err := s.Store.CreateNamespace(ctx, ns); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	backend := shiftkey.Backend{Host: wc.Backend.Host, Port: wc.Backend.Port, AdminUser: wc.Backend.AdminUser, Login: loginMode(wc.Backend.Login)}
	w, err := s.Store.Workgroup(ctx, wc.Name)
	if shiftkey.ErrorCode(err) == shiftkey.CodeResourceNotFound {
		w = &shiftkey.Workgroup{Name: wc.Name, ID: shiftkey.NewUUID(), Region: s.regionOf(wc.Region), Namespace: wc.Namespace, Status: "AVAILABLE", BaseCapacity: 128,
			Endpoint: ep, Backend: backend, CreatedAt: s.now().UTC()}
		return w, s.Store.CreateWorkgroup(ctx, w)
	}
	if err != nil {
		return nil, err
	}
	w.Endpoint, w.Backend, w.Region = ep, backend, s.regionOf(wc.Region)
	return w, s.Store.UpdateWorkgroup(ctx, w)
}

func loginMode(s string) string {
	if s == "trust" {
		return shiftkey.BackendLoginTrust
	}
	return s
}

// Close stops everything.
func (s *Serve) Close() error {
	errs := s.close()
	if s.Store != nil {
		errs = append(errs, s.Store.Close())
	}
	return errors.Join(errs...)
}

// ApplyIdentities makes the store hold the identities cfg declares: the
// file is authoritative for them, and identities created through the IAM
// API are left alone (see iamapi.Reconcile).
func ApplyIdentities(ctx context.Context, st iamapi.ReconcileStore, cfg *Config) (iamapi.Changes, error) {
	return iamapi.Reconcile(ctx, st, cfg.IAM.declared(cfg.AccountID))
}

// declared is the IAM part of the config as iamapi.Reconcile takes it.
func (c IAMConfig) declared(accountID string) iamapi.Declared {
	d := iamapi.Declared{AccountID: accountID}
	for _, p := range c.Policies {
		d.Policies = append(d.Policies, iamapi.DeclaredPolicy{Name: p.Name, Path: p.Path, Description: p.Description, Document: p.Document})
	}
	for _, g := range c.Groups {
		d.Groups = append(d.Groups, iamapi.DeclaredGroup{Name: g.Name, Path: g.Path, Policies: g.Policies, ManagedPolicies: g.ManagedPolicies})
	}
	for _, u := range c.Users {
		du := iamapi.DeclaredUser{Name: u.Name, Path: u.Path, Tags: u.Tags, Groups: u.Groups, Policies: u.Policies, ManagedPolicies: u.ManagedPolicies}
		for _, k := range u.AccessKeys {
			du.AccessKeys = append(du.AccessKeys, iamapi.DeclaredKey{ID: k.ID, Secret: k.Secret, Status: k.Status})
		}
		d.Users = append(d.Users, du)
	}
	for _, r := range c.Roles {
		d.Roles = append(d.Roles, iamapi.DeclaredRole{Name: r.Name, Path: r.Path, TrustPolicy: r.TrustPolicy, MaxSessionDuration: r.MaxSessionDuration,
			Tags: r.Tags, Policies: r.Policies, ManagedPolicies: r.ManagedPolicies})
	}
	return d
}
