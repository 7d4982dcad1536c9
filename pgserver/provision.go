package pgserver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/shiftkey/shiftkey"
)

// Provisioner gives every cluster and workgroup created through the API a
// PostgreSQL server of its own, in Dir/<id>, and a gateway in front of it
// (shiftkey dev). Sessions log in to the servers by client certificate.
type Provisioner struct {
	Dir   string // the servers' data: Dir/<id>/postgres
	Store Store
	// Gateways open and close the gateways in front of the servers.
	Gateways Gateways
	// TLS is the servers' TLS: a certificate for loopback, and the CA that
	// signs the gateways' client certificates.
	TLS func() (*TLSFiles, error)
	// AdminRole is made in every server: the gateways provision roles as
	// it, and credentials are never issued for it.
	AdminRole string
	// Reserved is a cluster that runs elsewhere (dev-cluster, on dev's own
	// server): never started here, and not to be deleted.
	Reserved string
	// ReservedServer is Reserved's server, when it runs in this process:
	// Watch starts it again too, and ClusterStatus reports it; it is
	// never stopped here.
	ReservedServer *Server
	Logger         *slog.Logger
	// MaxServers bounds the servers it runs (0: DefaultMaxServers): each
	// is a PostgreSQL on the developer's machine, and an API caller's loop
	// must not start them without end.
	MaxServers int

	mu       sync.Mutex
	servers  map[string]*Server // by cluster identifier or workgroup id
	starting int                // new servers being made, counted against MaxServers
	// busy holds the ids being started or stopped: a cluster's data dir is
	// named by its identifier, so two CreateCluster calls for one name, or
	// one racing the DeleteCluster of that name, would otherwise share it.
	busy map[string]bool
	// failed holds the clusters whose servers could not be resumed (their
	// data damaged or gone): reported, kept until deleted.
	failed map[string]bool
	// reviving holds the ids whose dead postmaster Watch is starting again.
	reviving map[string]bool
	// reviveFailed counts, by id, the failed attempts to start a dead
	// server again since it died, with the cause of the last: a cause
	// is logged once, not at every attempt (reviveDead).
	reviveFailed map[string]reviveFailure
	scopes       map[string]string // the gateway scope of each running id, for logs
	unwatch      context.CancelFunc
	watchEvery   time.Duration // Watch's interval
	watching     sync.WaitGroup
}

// Cluster statuses the provisioner reports over the stored one
// (Redshift's ClusterStatus values): a server being started again after
// its postmaster died, and one that could not be resumed.
const (
	StatusRebooting = "rebooting"
	StatusFailed    = "hardware-failure"
	// StatusWorkgroupUnavailable is the workgroup status for both.
	StatusWorkgroupUnavailable = "MODIFYING"
)

// DefaultMaxServers is Provisioner.MaxServers' default.
const DefaultMaxServers = 16

// Store is where the provisioner finds the clusters and workgroups to
// resume and records their new endpoints.
type Store interface {
	shiftkey.ClusterStore
	shiftkey.ServerlessStore
}

// Gateway is a gateway the provisioner asks for: the credentials of Scope
// (a cluster identifier or a workgroup's credential scope) served against
// Backend, in database Database by default. MasterUser may be a superuser
// in a session when AllowSuperuser says so (a cluster's master user).
type Gateway struct {
	Scope, Database string
	Region          string // the cluster's or workgroup's: its audit records'
	Backend         shiftkey.Backend
	MasterUser      string
	AllowSuperuser  bool
}

// Gateways open and close gateways: the wiring's.
type Gateways interface {
	// Listen opens the listener of scope's gateway on port, or on a free
	// port when port is taken, and says where clients reach it.
	Listen(scope string, port int) (net.Listener, shiftkey.Endpoint, error)
	// Start serves g on ln.
	Start(ctx context.Context, g Gateway, ln net.Listener) error
	// Stop closes the gateway of scope (to open it again on another port).
	Stop(scope string)
	// Remove closes the gateway of scope, whose cluster or workgroup is
	// deleted, and drops what was kept of it (its metric series).
	Remove(scope string)
}

var (
	_ shiftkey.Provisioner        = (*Provisioner)(nil)
	_ shiftkey.ClusterProvisioner = (*Provisioner)(nil)
	_ shiftkey.ClusterHealth      = (*Provisioner)(nil)
	_ shiftkey.WorkgroupHealth    = (*Provisioner)(nil)
)

func (p *Provisioner) dir(id string) string { return filepath.Join(p.Dir, id) }

func (p *Provisioner) log() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Logger
}

// claim marks id busy, or answers inUse when it is running or busy
// already; release undoes it.
func (p *Provisioner) claim(id string, inUse func() error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.busy[id] || p.servers[id] != nil {
		return inUse()
	}
	if p.busy == nil {
		p.busy = map[string]bool{}
	}
	p.busy[id] = true
	return nil
}

func (p *Provisioner) release(id string) {
	p.mu.Lock()
	delete(p.busy, id)
	p.mu.Unlock()
}

// How start treats the data dir of the server it starts.
type startMode int

const (
	// create: a new cluster or workgroup. A dir there already is what an
	// interrupted creation (dev killed midway) or delete left: nobody's,
	// and a new server must never start on it, so it is removed.
	create startMode = iota
	// resume: a stored cluster; its data must be there.
	resume
	// resumeOrCreate: a stored workgroup; made anew when its data is gone.
	resumeOrCreate
)

// start starts (or restarts, keeping its data) the server for id and opens
// g's gateway on port; g.Backend is the server. inUse is the answer when
// id's server runs already or is being started or stopped. A data dir
// this start made is removed again when it fails: nothing is left behind.
func (p *Provisioner) start(ctx context.Context, id, superuser string, g Gateway, port int, mode startMode, quota func(int) error, inUse func() error) (shiftkey.Endpoint, shiftkey.Backend, error) {
	if err := p.claim(id, inUse); err != nil {
		return shiftkey.Endpoint{}, shiftkey.Backend{}, err
	}
	defer p.release(id)
	_, statErr := os.Stat(p.dir(id))
	if statErr != nil && !errors.Is(statErr, os.ErrNotExist) {
		return shiftkey.Endpoint{}, shiftkey.Backend{}, fmt.Errorf("backend of %s: %w", g.Scope, statErr)
	}
	fresh := statErr != nil
	switch {
	case mode == create && !fresh:
		p.log().Warn("removing a data dir no cluster or workgroup owns (left by an interrupted creation or delete)", "scope", g.Scope, "dir", p.dir(id))
		if err := stopLeftover(ctx, filepath.Join(p.dir(id), "postgres")); err != nil {
			return shiftkey.Endpoint{}, shiftkey.Backend{}, fmt.Errorf("backend of %s: %w", g.Scope, err)
		}
		if err := os.RemoveAll(p.dir(id)); err != nil {
			return shiftkey.Endpoint{}, shiftkey.Backend{}, fmt.Errorf("backend of %s: %w", g.Scope, err)
		}
		fresh = true
	case mode == resume && fresh:
		return shiftkey.Endpoint{}, shiftkey.Backend{}, fmt.Errorf("backend of %s: its data dir %s is gone", g.Scope, p.dir(id))
	}
	if fresh {
		// A new server: within the quota, counting those being made.
		max := cmp.Or(p.MaxServers, DefaultMaxServers)
		p.mu.Lock()
		if len(p.servers)+p.starting >= max {
			p.mu.Unlock()
			return shiftkey.Endpoint{}, shiftkey.Backend{}, quota(max)
		}
		p.starting++
		p.mu.Unlock()
		defer func() {
			p.mu.Lock()
			p.starting--
			p.mu.Unlock()
		}()
	}
	ln, ep, err := p.Gateways.Listen(g.Scope, port)
	if err != nil {
		return shiftkey.Endpoint{}, shiftkey.Backend{}, err
	}
	tlsFiles, err := p.TLS()
	if err != nil {
		ln.Close()
		return shiftkey.Endpoint{}, shiftkey.Backend{}, err
	}
	pg, err := Start(ctx, Config{DataDir: filepath.Join(p.dir(id), "postgres"), Superuser: superuser, AnyPort: true, TLS: tlsFiles, Fsync: true, Logger: p.Logger})
	if err == nil {
		err = pg.CreateDatabase(ctx, g.Database)
	}
	if err == nil {
		err = pg.EnsureProvisioner(ctx, p.AdminRole)
	}
	if err != nil {
		ln.Close()
		if pg != nil {
			pg.Stop(context.WithoutCancel(ctx))
		}
		if fresh {
			os.RemoveAll(p.dir(id))
		}
		return shiftkey.Endpoint{}, shiftkey.Backend{}, fmt.Errorf("backend of %s: %w", g.Scope, err)
	}
	g.Backend = shiftkey.Backend{Host: "127.0.0.1", Port: pg.Port(), AdminUser: p.AdminRole, Managed: true, Login: shiftkey.BackendLoginCert}
	if err := p.Gateways.Start(ctx, g, ln); err != nil {
		ln.Close()
		pg.Stop(context.WithoutCancel(ctx))
		if fresh {
			os.RemoveAll(p.dir(id))
		}
		return shiftkey.Endpoint{}, shiftkey.Backend{}, err
	}
	p.mu.Lock()
	if p.servers == nil {
		p.servers = map[string]*Server{}
	}
	p.servers[id] = pg
	if p.scopes == nil {
		p.scopes = map[string]string{}
	}
	p.scopes[id] = g.Scope
	p.mu.Unlock()
	return ep, g.Backend, nil
}

// move reopens g's gateway on port: the new listener first, so that a
// port that cannot be had leaves the old gateway serving.
func (p *Provisioner) move(ctx context.Context, g Gateway, port int) (shiftkey.Endpoint, error) {
	ln, ep, err := p.Gateways.Listen(g.Scope, port)
	if err != nil {
		return shiftkey.Endpoint{}, err
	}
	p.Gateways.Stop(g.Scope)
	return ep, p.Gateways.Start(ctx, g, ln)
}

// stop closes the gateway, stops the server and removes its data: nothing
// is kept, as with SkipFinalClusterSnapshot.
func (p *Provisioner) stop(ctx context.Context, id, scope string) error {
	p.Gateways.Remove(scope)
	p.mu.Lock()
	pg := p.servers[id]
	delete(p.servers, id)
	delete(p.scopes, id)
	delete(p.failed, id)
	delete(p.reviveFailed, id)
	// Busy until its data is gone: a start meanwhile would reuse the dir.
	// (Busy already: another stop of the same id, which releases it.)
	claimed := !p.busy[id]
	if claimed {
		if p.busy == nil {
			p.busy = map[string]bool{}
		}
		p.busy[id] = true
	}
	p.mu.Unlock()
	if claimed {
		defer p.release(id)
	}
	if pg != nil {
		if err := pg.Stop(ctx); err != nil {
			return err
		}
	}
	return os.RemoveAll(p.dir(id))
}

// superuserRefused says why superuser cannot be a server's superuser
// ("" when it can): initdb refuses pg_ names, and the provisioning role
// must stay a CREATEROLE role of its own, never the superuser (the
// gateways refuse credentials for it, too).
func (p *Provisioner) superuserRefused(superuser string) string {
	switch {
	case strings.HasPrefix(superuser, "pg_"):
		return "must not begin with pg_: PostgreSQL reserves those role names"
	case superuser == p.AdminRole:
		return "is shiftkey's provisioning role"
	}
	return ""
}

// StartWorkgroup implements shiftkey.Provisioner.
func (p *Provisioner) StartWorkgroup(ctx context.Context, w *shiftkey.Workgroup, ns *shiftkey.Namespace) error {
	if why := p.superuserRefused(ns.AdminUsername); why != "" {
		return shiftkey.Errorf(shiftkey.CodeValidation, "The adminUsername %s of namespace %s %s.", ns.AdminUsername, ns.Name, why)
	}
	return p.startWorkgroup(ctx, w, ns, create)
}

func (p *Provisioner) startWorkgroup(ctx context.Context, w *shiftkey.Workgroup, ns *shiftkey.Namespace, mode startMode) error {
	ep, b, err := p.start(ctx, w.ID, ns.AdminUsername, Gateway{Scope: w.CredentialScope(), Region: w.Region, Database: ns.DBName}, w.Endpoint.Port, mode, workgroupQuota, workgroupInUse)
	if err != nil {
		return err
	}
	w.Endpoint, w.Backend = ep, b
	return nil
}

// MoveWorkgroup implements shiftkey.Provisioner.
func (p *Provisioner) MoveWorkgroup(ctx context.Context, w *shiftkey.Workgroup, port int) error {
	ns, err := p.Store.Namespace(ctx, w.Namespace)
	if err != nil {
		return err
	}
	ep, err := p.move(ctx, Gateway{Scope: w.CredentialScope(), Region: w.Region, Database: ns.DBName, Backend: w.Backend}, port)
	if err != nil {
		return err
	}
	w.Endpoint = ep
	return nil
}

// StopWorkgroup implements shiftkey.Provisioner.
func (p *Provisioner) StopWorkgroup(ctx context.Context, w *shiftkey.Workgroup) error {
	return p.stop(ctx, w.ID, w.CredentialScope())
}

// clusterQuota and workgroupQuota are the answers AWS gives past an
// account's quota, for a server past MaxServers.
func clusterQuota(max int) error {
	return shiftkey.Errorf("ClusterQuotaExceeded", "The request would exceed the allowed number of cluster instances for this account: shiftkey dev runs at most %d PostgreSQL servers for clusters and workgroups. Delete one first.", max)
}

func workgroupQuota(max int) error {
	return shiftkey.Errorf("ServiceQuotaExceededException", "The request would exceed the workgroup quota: shiftkey dev runs at most %d PostgreSQL servers for clusters and workgroups. Delete one first.", max)
}

// workgroupInUse: a workgroup's id is new at each creation, so only a
// second start of one running workgroup meets it.
func workgroupInUse() error {
	return shiftkey.Errorf(shiftkey.CodeConflict, "The workgroup's server is already running.")
}

// clusterGateway is c's gateway: its master user may be a superuser, as
// Redshift's is.
func clusterGateway(c *shiftkey.Cluster) Gateway {
	return Gateway{Scope: c.Identifier, Region: c.Region, Database: c.DBName, Backend: c.Backend, MasterUser: c.MasterUsername, AllowSuperuser: true}
}

// StartCluster implements shiftkey.ClusterProvisioner.
func (p *Provisioner) StartCluster(ctx context.Context, c *shiftkey.Cluster) error {
	if why := p.superuserRefused(c.MasterUsername); why != "" {
		return shiftkey.Errorf(shiftkey.CodeInvalidParameterValue, "MasterUsername %s %s.", c.MasterUsername, why)
	}
	return p.startCluster(ctx, c, create)
}

func (p *Provisioner) startCluster(ctx context.Context, c *shiftkey.Cluster, mode startMode) error {
	ep, b, err := p.start(ctx, clusterID(c), c.MasterUsername, clusterGateway(c), c.Endpoint.Port, mode, clusterQuota, shiftkey.ClusterExists)
	if err != nil {
		return err
	}
	c.Endpoint, c.Backend = ep, b
	return nil
}

// clusterID is the provisioner's id of c's server (its data dir's name).
func clusterID(c *shiftkey.Cluster) string { return "cluster-" + c.Identifier }

// ClusterStatus implements shiftkey.ClusterHealth: StatusFailed for a
// cluster whose server could not be resumed, StatusRebooting while its
// postmaster is dead or being started again.
func (p *Provisioner) ClusterStatus(c *shiftkey.Cluster) string {
	id := clusterID(c)
	p.mu.Lock()
	failed, reviving, pg := p.failed[id], p.reviving[id], p.servers[id]
	p.mu.Unlock()
	if c.Identifier == p.Reserved {
		pg = p.ReservedServer
	}
	switch {
	case failed:
		return StatusFailed
	case reviving || pg != nil && !pg.Running():
		return StatusRebooting
	}
	return ""
}

// MoveCluster implements shiftkey.ClusterProvisioner.
func (p *Provisioner) MoveCluster(ctx context.Context, c *shiftkey.Cluster, port int) error {
	ep, err := p.move(ctx, clusterGateway(c), port)
	if err != nil {
		return err
	}
	c.Endpoint = ep
	return nil
}

// StopCluster implements shiftkey.ClusterProvisioner.
func (p *Provisioner) StopCluster(ctx context.Context, c *shiftkey.Cluster) error {
	if c.Identifier == p.Reserved {
		return shiftkey.Errorf(shiftkey.CodeUnsupportedOperation, "%s runs on shiftkey dev's own server and cannot be deleted.", c.Identifier)
	}
	return p.stop(ctx, clusterID(c), c.Identifier)
}

// interval is Watch's interval, for logs.
func (p *Provisioner) interval() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.watchEvery
}

// DefaultWatchInterval is how often dev checks that its servers run.
const DefaultWatchInterval = 2 * time.Second

// Watch checks every interval that the servers run (a read of each one's
// postmaster.pid and a signal 0), and starts again, on its data and port,
// each whose postmaster died, until StopAll. Its gateway keeps serving
// meanwhile; logins fail (08006) until the server is back.
func (p *Provisioner) Watch(interval time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	p.mu.Lock()
	if p.unwatch != nil {
		p.mu.Unlock()
		cancel()
		return
	}
	p.unwatch, p.watchEvery = cancel, interval
	p.mu.Unlock()
	p.watching.Add(1)
	go func() {
		defer p.watching.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				p.reviveDead(ctx)
			}
		}
	}()
}

// reviveFailure is a dead server's failed attempts to start again.
type reviveFailure struct {
	attempts int
	cause    string
}

// reviveCause is what the log says of a failed revive: why, when known.
func reviveCause(err error) string {
	if errors.Is(err, errPortTaken) {
		return "another process holds its port"
	}
	return "it does not start"
}

// reviveDead starts again the servers whose postmaster is gone. One being
// started or stopped (busy) is left alone; one that Stop stops while it
// is started again is stopped after it (Server.Revive).
func (p *Provisioner) reviveDead(ctx context.Context) {
	p.mu.Lock()
	servers, scopes := map[string]*Server{}, map[string]string{}
	maps.Copy(servers, p.servers)
	maps.Copy(scopes, p.scopes)
	if p.ReservedServer != nil {
		id := clusterID(&shiftkey.Cluster{Identifier: p.Reserved})
		servers[id], scopes[id] = p.ReservedServer, p.Reserved
	}
	dead := map[string]*Server{}
	for id, pg := range servers {
		if !p.busy[id] && !pg.Running() {
			dead[id] = pg
			if p.reviving == nil {
				p.reviving = map[string]bool{}
			}
			p.reviving[id] = true
		}
	}
	p.mu.Unlock()
	for id, pg := range dead {
		log := p.log().With("scope", scopes[id], "data_dir", pg.DataDir())
		began := time.Now()
		started, err := pg.Revive(ctx)
		p.mu.Lock()
		delete(p.reviving, id)
		failed := p.reviveFailed[id]
		if err != nil && !errors.Is(err, ErrStopped) && ctx.Err() == nil {
			if p.reviveFailed == nil {
				p.reviveFailed = map[string]reviveFailure{}
			}
			p.reviveFailed[id] = reviveFailure{failed.attempts + 1, reviveCause(err)}
		} else {
			delete(p.reviveFailed, id)
		}
		p.mu.Unlock()
		switch {
		case errors.Is(err, ErrStopped) || ctx.Err() != nil:
		case err != nil && reviveCause(err) == failed.cause:
			// Said already: every interval would repeat it (a port
			// another process holds stays held for minutes).
			log.Debug("postgres server still does not start again", "cause", failed.cause, "port", pg.Port(), "attempts", failed.attempts+1, "error", err)
		case err != nil:
			// Its port stays: the gateway reaches the server there, as
			// its stored backend says. Restarting dev gives it another.
			log.Error("postgres server died and does not start again: "+reviveCause(err)+"; dev tries again every "+p.interval().String()+" (meanwhile a cluster is "+StatusRebooting+", a workgroup "+StatusWorkgroupUnavailable+"; restarting dev starts it on another port)",
				"port", pg.Port(), "attempts", failed.attempts+1, "error", err)
		case started && failed.attempts > 0:
			log.Warn("postgres server died; started again on its data", "took", time.Since(began).Round(time.Millisecond), "failed_attempts", failed.attempts)
		case started:
			log.Warn("postgres server died; started again on its data", "took", time.Since(began).Round(time.Millisecond))
		}
	}
}

// StopAll stops every server, keeping their data.
func (p *Provisioner) StopAll() []error {
	p.mu.Lock()
	unwatch := p.unwatch
	p.mu.Unlock()
	if unwatch != nil {
		unwatch()
		p.watching.Wait()
	}
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

// ResumeClusters restarts the servers of the clusters the store holds, as
// they were before shiftkey stopped, and records their endpoints.
func (p *Provisioner) ResumeClusters(ctx context.Context) error {
	clusters, err := p.Store.Clusters(ctx)
	if err != nil {
		return err
	}
	for _, c := range clusters {
		if c.Identifier == p.Reserved || !c.Backend.Managed {
			continue
		}
		if err := p.startCluster(ctx, c, resume); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("cluster %s: %w", c.Identifier, err)
			}
			// One broken cluster keeps neither dev nor the others from
			// starting: it is reported, and DeleteCluster removes it.
			id := clusterID(c)
			p.log().Error("cluster not started: its server cannot be resumed; DescribeClusters reports it "+StatusFailed+", DeleteCluster removes it",
				"cluster", c.Identifier, "data_dir", filepath.Join(p.dir(id), "postgres"), "error", err)
			p.markFailed(id)
			continue
		}
		if err := p.Store.UpdateCluster(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// ResumeWorkgroups restarts the servers of the workgroups the store holds
// and records their endpoints; ports pins a workgroup's gateway port by
// name (dev's default-workgroup: --workgroup-addr).
func (p *Provisioner) ResumeWorkgroups(ctx context.Context, ports map[string]int) error {
	wgs, err := p.Store.Workgroups(ctx)
	if err != nil {
		return err
	}
	for _, w := range wgs {
		ns, err := p.Store.Namespace(ctx, w.Namespace)
		if err != nil {
			return err
		}
		if port, ok := ports[w.Name]; ok {
			w.Endpoint.Port = port
		}
		if why := p.superuserRefused(ns.AdminUsername); why != "" {
			err = fmt.Errorf("adminUsername %s %s", ns.AdminUsername, why)
		} else {
			err = p.startWorkgroup(ctx, w, ns, resumeOrCreate)
		}
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("workgroup %s: %w", w.Name, err)
			}
			// As for a cluster: one broken workgroup keeps neither dev nor
			// the others from starting. Serverless has no failed status,
			// so it is reported MODIFYING (WorkgroupStatus), its
			// credentials are refused, and DeleteWorkgroup removes it.
			p.log().Error("workgroup not started: its server cannot be resumed; GetWorkgroup reports it "+StatusWorkgroupUnavailable+" and GetCredentials refuses it until DeleteWorkgroup removes it",
				"workgroup", w.Name, "data_dir", filepath.Join(p.dir(w.ID), "postgres"), "error", err)
			p.markFailed(w.ID)
			continue
		}
		if err := p.Store.UpdateWorkgroup(ctx, w); err != nil {
			return err
		}
	}
	return nil
}

// markFailed records that id's server could not be resumed.
func (p *Provisioner) markFailed(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failed == nil {
		p.failed = map[string]bool{}
	}
	p.failed[id] = true
}

// WorkgroupStatus implements shiftkey.WorkgroupHealth: a workgroup whose
// server could not be resumed, or whose postmaster is dead or being
// started again, is MODIFYING, the one status of Serverless' model for a
// workgroup that exists but does not serve now.
func (p *Provisioner) WorkgroupStatus(w *shiftkey.Workgroup) string {
	p.mu.Lock()
	failed, reviving, pg := p.failed[w.ID], p.reviving[w.ID], p.servers[w.ID]
	p.mu.Unlock()
	if failed || reviving || pg != nil && !pg.Running() {
		return StatusWorkgroupUnavailable
	}
	return ""
}

// EnsureWorkgroup creates and starts workgroup w unless the store has one
// of its name; its namespace ns is created first when missing.
func (p *Provisioner) EnsureWorkgroup(ctx context.Context, w *shiftkey.Workgroup, ns *shiftkey.Namespace) error {
	if _, err := p.Store.Workgroup(ctx, w.Name); shiftkey.ErrorCode(err) != shiftkey.CodeResourceNotFound {
		return err
	}
	stored, err := p.Store.Namespace(ctx, ns.Name)
	if shiftkey.ErrorCode(err) == shiftkey.CodeResourceNotFound {
		if err := p.Store.CreateNamespace(ctx, ns); err != nil {
			return err
		}
		stored = ns
	} else if err != nil {
		return err
	}
	w.Namespace = stored.Name
	if err := p.StartWorkgroup(ctx, w, stored); err != nil {
		return err
	}
	return p.Store.CreateWorkgroup(ctx, w)
}

// FreePort is a loopback TCP port nothing listens on right now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
