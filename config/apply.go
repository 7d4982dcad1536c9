package config

import (
	"context"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/iamapi"
)

// ClusterStore is what ApplyCluster needs of the store.
type ClusterStore interface {
	shiftkey.ClusterStore
	shiftkey.DeclaredStore
}

// ServerlessStore is what ApplyWorkgroup needs of the store.
type ServerlessStore interface {
	shiftkey.ServerlessStore
	shiftkey.DeclaredStore
}

// ApplyCluster makes the store hold cluster cc as declared, its gateway
// reached at ep: created (at now) when new, else updated in place, so
// what the API changed and the file does not declare stays. Replicas
// apply one at a time (DeclaredStore.Declaring).
func (c *Config) ApplyCluster(ctx context.Context, st ClusterStore, cc ClusterConfig, ep shiftkey.Endpoint, now time.Time) (*shiftkey.Cluster, error) {
	return declaring(ctx, st, func(ctx context.Context) (*shiftkey.Cluster, error) { return c.applyCluster(ctx, st, cc, ep, now) })
}

// declaring runs apply under st.Declaring and returns what it made.
func declaring[T any](ctx context.Context, st shiftkey.DeclaredStore, apply func(context.Context) (T, error)) (out T, err error) {
	err = st.Declaring(ctx, func(ctx context.Context) error {
		out, err = apply(ctx)
		return err
	})
	return out, err
}

func (c *Config) applyCluster(ctx context.Context, st shiftkey.ClusterStore, cc ClusterConfig, ep shiftkey.Endpoint, now time.Time) (*shiftkey.Cluster, error) {
	master := cc.MasterUsername
	if master == "" {
		// Redshift's default; never the provisioning role, which is not issued.
		master = "awsuser"
	}
	backend, region := cc.Backend.Backend(), c.RegionOf(cc.Region)
	cl, err := st.Cluster(ctx, cc.Identifier)
	if shiftkey.ErrorCode(err) == shiftkey.CodeClusterNotFound {
		cl = &shiftkey.Cluster{Identifier: cc.Identifier, Region: region, NamespaceID: shiftkey.NewUUID(), NodeType: "dc2.large", DBName: cc.Database,
			MasterUsername: master, Status: "available", Endpoint: ep, Backend: backend, CreatedAt: now.UTC()}
		return cl, st.CreateCluster(ctx, cl)
	}
	if err != nil {
		return nil, err
	}
	cl.DBName, cl.MasterUsername, cl.Endpoint, cl.Backend, cl.Region = cc.Database, master, ep, backend, region
	return cl, st.UpdateCluster(ctx, cl)
}

// RegionOf is a declared resource's region: its own, else the first served.
func (c *Config) RegionOf(r string) string {
	if r != "" {
		return r
	}
	if len(c.Regions) > 0 {
		return c.Regions[0]
	}
	return shiftkey.DefaultRegion
}

// ApplyWorkgroup makes the store hold workgroup wc and its namespace as
// declared, its gateway reached at ep; an existing namespace is kept as it
// is. Replicas apply one at a time (DeclaredStore.Declaring).
func (c *Config) ApplyWorkgroup(ctx context.Context, st ServerlessStore, wc WorkgroupConfig, ep shiftkey.Endpoint, now time.Time) (*shiftkey.Workgroup, error) {
	return declaring(ctx, st, func(ctx context.Context) (*shiftkey.Workgroup, error) { return c.applyWorkgroup(ctx, st, wc, ep, now) })
}

func (c *Config) applyWorkgroup(ctx context.Context, st shiftkey.ServerlessStore, wc WorkgroupConfig, ep shiftkey.Endpoint, now time.Time) (*shiftkey.Workgroup, error) {
	admin := wc.AdminUsername
	if admin == "" {
		admin = wc.Backend.AdminUser
	}
	if _, err := st.Namespace(ctx, wc.Namespace); shiftkey.ErrorCode(err) == shiftkey.CodeResourceNotFound {
		ns := &shiftkey.Namespace{Name: wc.Namespace, ID: shiftkey.NewUUID(), Region: c.RegionOf(wc.Region), DBName: wc.Database, AdminUsername: admin, Status: "AVAILABLE", CreatedAt: now.UTC()}
		if err := st.CreateNamespace(ctx, ns); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	backend := wc.Backend.Backend()
	w, err := st.Workgroup(ctx, wc.Name)
	if shiftkey.ErrorCode(err) == shiftkey.CodeResourceNotFound {
		w = &shiftkey.Workgroup{Name: wc.Name, ID: shiftkey.NewUUID(), Region: c.RegionOf(wc.Region), Namespace: wc.Namespace, Status: "AVAILABLE", BaseCapacity: 128,
			Endpoint: ep, Backend: backend, CreatedAt: now.UTC()}
		return w, st.CreateWorkgroup(ctx, w)
	}
	if err != nil {
		return nil, err
	}
	w.Endpoint, w.Backend, w.Region = ep, backend, c.RegionOf(wc.Region)
	return w, st.UpdateWorkgroup(ctx, w)
}

// Backend is how the gateway reaches the declared backend.
func (b BackendConfig) Backend() shiftkey.Backend {
	login := b.Login
	if login == "trust" {
		login = shiftkey.BackendLoginTrust
	}
	return shiftkey.Backend{Host: b.Host, Port: b.Port, AdminUser: b.AdminUser, Login: login}
}

// ApplyIdentities makes the store hold the identities c declares: the
// file is authoritative for them, and identities created through the IAM
// API are left alone (see iamapi.Reconcile). Replicas apply one at a time
// (DeclaredStore.Declaring), so that each finds what another created.
func (c *Config) ApplyIdentities(ctx context.Context, st iamapi.ReconcileStore) (iamapi.Changes, error) {
	return declaring(ctx, st, func(ctx context.Context) (iamapi.Changes, error) {
		return iamapi.Reconcile(ctx, st, c.IAM.Declared(c.AccountID))
	})
}

// Declared is the IAM part of the config as iamapi.Reconcile takes it.
func (c IAMConfig) Declared(accountID string) iamapi.Declared {
	d := iamapi.Declared{AccountID: accountID}
	for _, p := range c.Policies {
		d.Policies = append(d.Policies, iamapi.DeclaredPolicy{Name: p.Name, Path: p.Path, Description: p.Description, Document: p.Document})
	}
	for _, g := range c.Groups {
		d.Groups = append(d.Groups, iamapi.DeclaredGroup{Name: g.Name, Path: g.Path, Policies: g.Policies, ManagedPolicies: g.ManagedPolicies})
	}
	for _, u := range c.Users {
		du := iamapi.DeclaredUser{Name: u.Name, Path: u.Path, Tags: u.Tags, Groups: u.Groups, Policies: u.Policies, ManagedPolicies: u.ManagedPolicies,
			PermissionsBoundary: u.PermissionsBoundary}
		for _, k := range u.AccessKeys {
			du.AccessKeys = append(du.AccessKeys, iamapi.DeclaredKey{ID: k.ID, Secret: k.Secret, Status: k.Status})
		}
		d.Users = append(d.Users, du)
	}
	for _, r := range c.Roles {
		d.Roles = append(d.Roles, iamapi.DeclaredRole{Name: r.Name, Path: r.Path, TrustPolicy: r.TrustPolicy, MaxSessionDuration: r.MaxSessionDuration,
			Tags: r.Tags, Policies: r.Policies, ManagedPolicies: r.ManagedPolicies, PermissionsBoundary: r.PermissionsBoundary})
	}
	return d
}
