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

// devProvisioner gives every workgroup created in dev mode a PostgreSQL
// server of its own, in DataDir/workgroups/<id>, and a gateway endpoint.
type devProvisioner struct {
	d      *Dev
	secret []byte

	mu      sync.Mutex
	servers map[string]*pgserver.Server // by workgroup id
}

var _ shiftkey.Provisioner = (*devProvisioner)(nil)

func (p *devProvisioner) dir(w *shiftkey.Workgroup) string {
	return filepath.Join(p.d.DataDir, "workgroups", w.ID)
}

// StartWorkgroup starts (or restarts, keeping its data) w's server and opens
// its gateway on the requested port of the dev gateway's host.
func (p *devProvisioner) StartWorkgroup(ctx context.Context, w *shiftkey.Workgroup, ns *shiftkey.Namespace) error {
	host, _, err := net.SplitHostPort(p.d.GatewayAddr)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(w.Endpoint.Port)))
	if err != nil {
		return shiftkey.Errorf(shiftkey.CodeConflict, "Port %d is in use on this machine; choose another port (5431-5455 or 8191-8215).", w.Endpoint.Port)
	}
	_, statErr := os.Stat(p.dir(w))
	fresh := errors.Is(statErr, os.ErrNotExist)
	pg, err := pgserver.Start(ctx, pgserver.Config{DataDir: filepath.Join(p.dir(w), "postgres"), Superuser: ns.AdminUsername, Fsync: true, Logger: p.d.Logger})
	if err == nil {
		err = pg.CreateDatabase(ctx, ns.DBName)
	}
	if err != nil {
		ln.Close()
		if pg != nil {
			pg.Stop(context.WithoutCancel(ctx))
		}
		if fresh {
			os.RemoveAll(p.dir(w))
		}
		return fmt.Errorf("workgroup %s backend: %w", w.Name, err)
	}
	w.Endpoint = advertised(ln.Addr())
	w.Backend = shiftkey.Backend{Host: pg.SocketDir(), Port: pg.Port(), AdminUser: pg.Superuser(), Managed: true}
	if err := p.d.startGateway(ctx, w.CredentialScope(), ns.DBName, w.Backend, ln, p.secret); err != nil {
		ln.Close()
		pg.Stop(context.WithoutCancel(ctx))
		return err
	}
	p.mu.Lock()
	if p.servers == nil {
		p.servers = map[string]*pgserver.Server{}
	}
	p.servers[w.ID] = pg
	p.mu.Unlock()
	return nil
}

// MoveWorkgroup reopens w's gateway on port.
func (p *devProvisioner) MoveWorkgroup(ctx context.Context, w *shiftkey.Workgroup, port int) error {
	host, _, err := net.SplitHostPort(p.d.GatewayAddr)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return shiftkey.Errorf(shiftkey.CodeConflict, "Port %d is in use on this machine; choose another port (5431-5455 or 8191-8215).", port)
	}
	ns, err := p.d.Store.Namespace(ctx, w.Namespace)
	if err != nil {
		ln.Close()
		return err
	}
	p.d.stopGateway(w.CredentialScope())
	w.Endpoint = advertised(ln.Addr())
	return p.d.startGateway(ctx, w.CredentialScope(), ns.DBName, w.Backend, ln, p.secret)
}

// StopWorkgroup closes w's gateway, stops its server and removes its data:
// nothing is kept, as with SkipFinalSnapshot.
func (p *devProvisioner) StopWorkgroup(ctx context.Context, w *shiftkey.Workgroup) error {
	p.d.stopGateway(w.CredentialScope())
	p.mu.Lock()
	pg := p.servers[w.ID]
	delete(p.servers, w.ID)
	p.mu.Unlock()
	if pg != nil {
		if err := pg.Stop(ctx); err != nil {
			return err
		}
	}
	return os.RemoveAll(p.dir(w))
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
		ns = &shiftkey.Namespace{Name: DevNamespace, ID: shiftkey.NewUUID(), DBName: DevDatabase, AdminUsername: "admin", Status: "AVAILABLE", CreatedAt: p.d.now().UTC()}
		if err := p.d.Store.CreateNamespace(ctx, ns); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	w := &shiftkey.Workgroup{Name: DevWorkgroup, ID: shiftkey.NewUUID(), Namespace: ns.Name, Status: "AVAILABLE", BaseCapacity: 128,
		Endpoint: shiftkey.Endpoint{Port: defaultPort}, CreatedAt: p.d.now().UTC()}
	if err := p.StartWorkgroup(ctx, w, ns); err != nil {
		return err
	}
	return p.d.Store.CreateWorkgroup(ctx, w)
}
