package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/pgserver"
)

// devProvisioner gives every cluster and workgroup created in dev mode a
// PostgreSQL server of its own, in DataDir/backends/<id>, and a gateway.
type devProvisioner struct {
	d      *Dev
	secret []byte

	mu      sync.Mutex
	servers map[string]*pgserver.Server // by cluster identifier or workgroup id
}

var (
	_ shiftkey.Provisioner        = (*devProvisioner)(nil)
	_ shiftkey.ClusterProvisioner = (*devProvisioner)(nil)
)

func (p *devProvisioner) dir(id string) string { return filepath.Join(p.d.DataDir, "backends", id) }

// listen opens port on the dev gateway's host; when another endpoint
// already has it (dev-cluster holds 5439) it takes a free port instead,
// which the API then reports.
func (p *devProvisioner) listen(port int) (net.Listener, error) {
	host, _, err := net.SplitHostPort(p.d.GatewayAddr)
	if err != nil {
		return nil, err
	}
	ln, err := listenGateway(net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		p.d.Logger.Warn("requested port is taken; using a free one", "port", port, "error", err)
		ln, err = listenGateway(net.JoinHostPort(host, "0"))
	}
	return ln, err
}

// start starts (or restarts, keeping its data) the server for id and
// opens the gateway of scope on port.
func (p *devProvisioner) start(ctx context.Context, id, scope, superuser, db string, master masterUser, port int) (shiftkey.Endpoint, shiftkey.Backend, error) {
	ln, err := p.listen(port)
	if err != nil {
		return shiftkey.Endpoint{}, shiftkey.Backend{}, err
	}
	_, statErr := os.Stat(p.dir(id))
	fresh := errors.Is(statErr, os.ErrNotExist)
	pgTLS, err := backendTLS(p.d.devCA)
	if err != nil {
		ln.Close()
		return shiftkey.Endpoint{}, shiftkey.Backend{}, err
	}
	pgPort, err := freeTCPPort()
	if err != nil {
		ln.Close()
		return shiftkey.Endpoint{}, shiftkey.Backend{}, err
	}
	pg, err := pgserver.Start(ctx, pgserver.Config{DataDir: filepath.Join(p.dir(id), "postgres"), Superuser: superuser, Port: pgPort, TLS: pgTLS, Fsync: true, Logger: p.d.Logger})
	if err == nil {
		err = pg.CreateDatabase(ctx, db)
	}
	if err == nil {
		err = pg.EnsureProvisioner(ctx, ProvisionerRole)
	}
	if err != nil {
		ln.Close()
		if pg != nil {
			pg.Stop(context.WithoutCancel(ctx))
		}
		if fresh {
			os.RemoveAll(p.dir(id))
		}
		return shiftkey.Endpoint{}, shiftkey.Backend{}, fmt.Errorf("backend of %s: %w", scope, err)
	}
	backend := shiftkey.Backend{Host: "127.0.0.1", Port: pg.Port(), AdminUser: ProvisionerRole, Managed: true, Login: shiftkey.BackendLoginCert}
	if err := p.d.startGateway(ctx, scope, db, backend, master, ln, p.secret); err != nil {
		ln.Close()
		pg.Stop(context.WithoutCancel(ctx))
		return shiftkey.Endpoint{}, shiftkey.Backend{}, err
	}
	p.mu.Lock()
	if p.servers == nil {
		p.servers = map[string]*pgserver.Server{}
	}
	p.servers[id] = pg
	p.mu.Unlock()
	return advertised(ln.Addr()), backend, nil
}

func (p *devProvisioner) move(ctx context.Context, scope, db string, backend shiftkey.Backend, master masterUser, port int) (shiftkey.Endpoint, error) {
	ln, err := p.listen(port)
	if err != nil {
		return shiftkey.Endpoint{}, err
	}
	p.d.stopGateway(scope)
	return advertised(ln.Addr()), p.d.startGateway(ctx, scope, db, backend, master, ln, p.secret)
}

// stop closes the gateway, stops the server and removes its data: nothing
// is kept, as with SkipFinalClusterSnapshot.
func (p *devProvisioner) stop(ctx context.Context, id, scope string) error {
	p.d.stopGateway(scope)
	p.mu.Lock()
	pg := p.servers[id]
	delete(p.servers, id)
	p.mu.Unlock()
	if pg != nil {
		if err := pg.Stop(ctx); err != nil {
			return err
		}
	}
	return os.RemoveAll(p.dir(id))
}

// StartWorkgroup implements shiftkey.Provisioner.
func (p *devProvisioner) StartWorkgroup(ctx context.Context, w *shiftkey.Workgroup, ns *shiftkey.Namespace) error {
	ep, b, err := p.start(ctx, w.ID, w.CredentialScope(), ns.AdminUsername, ns.DBName, masterUser{}, w.Endpoint.Port)
	if err != nil {
		return err
	}
	w.Endpoint, w.Backend = ep, b
	return nil
}

// MoveWorkgroup implements shiftkey.Provisioner.
func (p *devProvisioner) MoveWorkgroup(ctx context.Context, w *shiftkey.Workgroup, port int) error {
	ns, err := p.d.Store.Namespace(ctx, w.Namespace)
	if err != nil {
		return err
	}
	ep, err := p.move(ctx, w.CredentialScope(), ns.DBName, w.Backend, masterUser{}, port)
	if err != nil {
		return err
	}
	w.Endpoint = ep
	return nil
}

// StopWorkgroup implements shiftkey.Provisioner.
func (p *devProvisioner) StopWorkgroup(ctx context.Context, w *shiftkey.Workgroup) error {
	return p.stop(ctx, w.ID, w.CredentialScope())
}

// StartCluster implements shiftkey.ClusterProvisioner.
func (p *devProvisioner) StartCluster(ctx context.Context, c *shiftkey.Cluster) error {
	ep, b, err := p.start(ctx, "cluster-"+c.Identifier, c.Identifier, c.MasterUsername, c.DBName, masterUser{c.MasterUsername, true}, c.Endpoint.Port)
	if err != nil {
		return err
	}
	c.Endpoint, c.Backend = ep, b
	return nil
}

// MoveCluster implements shiftkey.ClusterProvisioner.
func (p *devProvisioner) MoveCluster(ctx context.Context, c *shiftkey.Cluster, port int) error {
	ep, err := p.move(ctx, c.Identifier, c.DBName, c.Backend, masterUser{c.MasterUsername, true}, port)
	if err != nil {
		return err
	}
	c.Endpoint = ep
	return nil
}

// StopCluster implements shiftkey.ClusterProvisioner.
func (p *devProvisioner) StopCluster(ctx context.Context, c *shiftkey.Cluster) error {
	if c.Identifier == DevCluster {
		return shiftkey.Errorf(shiftkey.CodeUnsupportedOperation, "dev-cluster runs on shiftkey dev's own server and cannot be deleted.")
	}
	return p.stop(ctx, "cluster-"+c.Identifier, c.Identifier)
}

// stopAll stops every workgroup server, keeping their data.
func (p *devProvisioner) stopAll() []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for id, pg := range p.servers {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		errs = append(errs, pg.Stop(ctx))
		cancel()
		delete(p.servers, id)
	}
	return errs
}

// startWorkgroups brings up the workgroups the store already has, and
// creates default-namespace/default-workgroup on first start.
func (p *devProvisioner) startClusters(ctx context.Context) error {
	clusters, err := p.d.Store.Clusters(ctx)
	if err != nil {
		return err
	}
	for _, c := range clusters {
		if c.Identifier == DevCluster || !c.Backend.Managed {
			continue
		}
		if err := p.StartCluster(ctx, c); err != nil {
			return fmt.Errorf("cluster %s: %w", c.Identifier, err)
		}
		if err := p.d.Store.UpdateCluster(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

func (p *devProvisioner) startWorkgroups(ctx context.Context, defaultPort int) error {
	wgs, err := p.d.Store.Workgroups(ctx)
	if err != nil {
		return err
	}
	for _, w := range wgs {
		ns, err := p.d.Store.Namespace(ctx, w.Namespace)
		if err != nil {
			return err
		}
		if w.Name == DevWorkgroup {
			w.Endpoint.Port = defaultPort
		}
		if err := p.StartWorkgroup(ctx, w, ns); err != nil {
			return fmt.Errorf("workgroup %s: %w", w.Name, err)
		}
		if err := p.d.Store.UpdateWorkgroup(ctx, w); err != nil {
			return err
		}
	}
	if _, err := p.d.Store.Workgroup(ctx, DevWorkgroup); shiftkey.ErrorCode(err) != shiftkey.CodeResourceNotFound {
		return err
	}
	ns, err := p.d.Store.Namespace(ctx, DevNamespace)
	if shiftkey.ErrorCode(err) == shiftkey.CodeResourceNotFound {
		ns = &shiftkey.Namespace{Name: DevNamespace, ID: shiftkey.NewUUID(), Region: DevRegion, DBName: DevDatabase, AdminUsername: "admin", Status: "AVAILABLE", CreatedAt: p.d.now().UTC()}
		if err := p.d.Store.CreateNamespace(ctx, ns); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	w := &shiftkey.Workgroup{Name: DevWorkgroup, ID: shiftkey.NewUUID(), Region: DevRegion, Namespace: ns.Name, Status: "AVAILABLE", BaseCapacity: 128,
		Endpoint: shiftkey.Endpoint{Port: defaultPort}, CreatedAt: p.d.now().UTC()}
	if err := p.StartWorkgroup(ctx, w, ns); err != nil {
		return err
	}
	return p.d.Store.CreateWorkgroup(ctx, w)
}
