package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/devca"
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
		if s.CA, err = devca.Load(cfg.BackendAuth.CACertFile, cfg.BackendAuth.CAKeyFile); err != nil {
			return fmt.Errorf("backend_auth CA: %w", err)
		}
	}
	s.PasswordSecret = []byte(cfg.BackendAuth.PasswordSecret)
	if err := ApplyIdentities(ctx, s.Store, cfg); err != nil {
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

func tagList(m map[string]string) []shiftkey.Tag {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]shiftkey.Tag, 0, len(keys))
	for _, k := range keys {
		out = append(out, shiftkey.Tag{Key: k, Value: m[k]})
	}
	return out
}

func pathOr(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// ApplyIdentities creates or updates what the config declares: managed
// policies, groups, users (keys, tags, memberships, policies) and roles.
// Identities created through the IAM API and absent from the config are
// left alone.
func ApplyIdentities(ctx context.Context, st shiftkey.IdentityStore, cfg *Config) error {
	now := time.Now().UTC()
	arn := func(kind, path, name string) string {
		return fmt.Sprintf("arn:aws:iam::%s:%s%s%s", cfg.AccountID, kind, pathOr(path), name)
	}
	policyARN := map[string]string{}
	for _, p := range cfg.IAM.Policies {
		m := &shiftkey.ManagedPolicy{ARN: arn("policy", p.Path, p.Name), Name: p.Name, ID: shiftkey.NewID("ANPA"), Path: pathOr(p.Path),
			Description: p.Description, Document: p.Document, CreatedAt: now, UpdatedAt: now}
		policyARN[p.Name] = m.ARN
		if _, err := st.ManagedPolicy(ctx, m.ARN); shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity {
			if err := st.CreateManagedPolicy(ctx, m); err != nil {
				return fmt.Errorf("policy %s: %w", p.Name, err)
			}
		} else if err != nil {
			return err
		} else if err := st.UpdateManagedPolicy(ctx, m); err != nil {
			return fmt.Errorf("policy %s: %w", p.Name, err)
		}
	}
	ensure := func(e *shiftkey.Entity) (*shiftkey.Entity, error) {
		got, err := st.Entity(ctx, e.Kind, e.Name)
		if shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity {
			return e, st.CreateEntity(ctx, e)
		}
		return got, err
	}
	attach := func(kind shiftkey.EntityKind, name string, inline map[string]string, managed []string) error {
		for pn, doc := range inline {
			if err := st.PutInlinePolicy(ctx, kind, name, shiftkey.PolicyDocument{Name: pn, Document: doc}); err != nil {
				return err
			}
		}
		for _, m := range managed {
			if err := st.AttachPolicy(ctx, kind, name, policyARN[m]); err != nil {
				return err
			}
		}
		return nil
	}
	for _, g := range cfg.IAM.Groups {
		e, err := ensure(&shiftkey.Entity{Kind: shiftkey.KindGroup, Name: g.Name, ID: shiftkey.NewID("AGPA"), Path: pathOr(g.Path), ARN: arn("group", g.Path, g.Name), CreatedAt: now})
		if err != nil {
			return fmt.Errorf("group %s: %w", g.Name, err)
		}
		if err := attach(shiftkey.KindGroup, e.Name, g.Policies, g.ManagedPolicies); err != nil {
			return fmt.Errorf("group %s: %w", g.Name, err)
		}
	}
	for _, u := range cfg.IAM.Users {
		e, err := ensure(&shiftkey.Entity{Kind: shiftkey.KindUser, Name: u.Name, ID: shiftkey.NewID("AIDA"), Path: pathOr(u.Path), ARN: arn("user", u.Path, u.Name), CreatedAt: now})
		if err != nil {
			return fmt.Errorf("user %s: %w", u.Name, err)
		}
		if len(u.Tags) > 0 {
			if err := st.TagEntity(ctx, shiftkey.KindUser, e.Name, tagList(u.Tags)); err != nil {
				return err
			}
		}
		for _, g := range u.Groups {
			if err := st.AddUserToGroup(ctx, g, e.Name); err != nil {
				return err
			}
		}
		for _, k := range u.AccessKeys {
			existing, err := st.AccessKey(ctx, k.ID)
			switch {
			case shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity:
			case err != nil:
				return err
			case !strings.EqualFold(existing.UserName, e.Name):
				return fmt.Errorf("user %s: access key %s belongs to %s", u.Name, k.ID, existing.UserName)
			case existing.Secret == k.Secret && existing.Status == "Active":
				continue
			default:
				// The secret was rotated in the environment: replace the key.
				if err := st.DeleteAccessKey(ctx, k.ID); err != nil {
					return err
				}
			}
			if err := st.CreateAccessKey(ctx, &shiftkey.AccessKey{ID: k.ID, Secret: k.Secret, UserName: e.Name, Status: "Active", CreatedAt: now}); err != nil {
				return fmt.Errorf("user %s: %w", u.Name, err)
			}
		}
		if err := attach(shiftkey.KindUser, e.Name, u.Policies, u.ManagedPolicies); err != nil {
			return fmt.Errorf("user %s: %w", u.Name, err)
		}
	}
	for _, r := range cfg.IAM.Roles {
		maxSession := r.MaxSessionDuration
		if maxSession == 0 {
			maxSession = 3600
		}
		want := &shiftkey.Entity{Kind: shiftkey.KindRole, Name: r.Name, ID: shiftkey.NewID("AROA"), Path: pathOr(r.Path), ARN: arn("role", r.Path, r.Name),
			AssumeRolePolicy: r.TrustPolicy, MaxSessionDuration: maxSession, CreatedAt: now}
		e, err := ensure(want)
		if err != nil {
			return fmt.Errorf("role %s: %w", r.Name, err)
		}
		if e.AssumeRolePolicy != r.TrustPolicy || e.MaxSessionDuration != maxSession {
			// The store has no role update; recreate the role under its
			// old id so sessions and ARNs stay valid.
			want.ID, want.CreatedAt, want.Name = e.ID, e.CreatedAt, e.Name
			if err := recreateRole(ctx, st, want); err != nil {
				return fmt.Errorf("role %s: %w", r.Name, err)
			}
		}
		if len(r.Tags) > 0 {
			if err := st.TagEntity(ctx, shiftkey.KindRole, e.Name, tagList(r.Tags)); err != nil {
				return err
			}
		}
		if err := attach(shiftkey.KindRole, e.Name, r.Policies, r.ManagedPolicies); err != nil {
			return fmt.Errorf("role %s: %w", r.Name, err)
		}
	}
	return nil
}

// recreateRole replaces a role's trust policy and session limit, keeping
// its policies, attachments and tags.
func recreateRole(ctx context.Context, st shiftkey.IdentityStore, r *shiftkey.Entity) error {
	inline, err := st.InlinePolicies(ctx, shiftkey.KindRole, r.Name)
	if err != nil {
		return err
	}
	attached, err := st.AttachedPolicies(ctx, shiftkey.KindRole, r.Name)
	if err != nil {
		return err
	}
	tags, err := st.Tags(ctx, shiftkey.KindRole, r.Name)
	if err != nil {
		return err
	}
	if err := st.DeleteEntity(ctx, shiftkey.KindRole, r.Name); err != nil {
		return err
	}
	if err := st.CreateEntity(ctx, r); err != nil {
		return err
	}
	for _, p := range inline {
		if err := st.PutInlinePolicy(ctx, shiftkey.KindRole, r.Name, p); err != nil {
			return err
		}
	}
	for _, m := range attached {
		if err := st.AttachPolicy(ctx, shiftkey.KindRole, r.Name, m.ARN); err != nil {
			return err
		}
	}
	if len(tags) > 0 {
		return st.TagEntity(ctx, shiftkey.KindRole, r.Name, tags)
	}
	return nil
}
