package pgserver_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/devca"
	"github.com/shiftkey/shiftkey/pgserver"
	"github.com/shiftkey/shiftkey/sqlite"
)

// gateways listens for real and records what the provisioner asks of it;
// it serves nothing.
type gateways struct {
	mu     sync.Mutex
	open   map[string]net.Listener
	events []string
	last   pgserver.Gateway
}

func (g *gateways) Listen(_ string, port int) (net.Listener, shiftkey.Endpoint, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", "0"))
	if err != nil {
		return nil, shiftkey.Endpoint{}, err
	}
	return ln, shiftkey.Endpoint{Address: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port}, nil
}

func (g *gateways) Start(_ context.Context, gw pgserver.Gateway, ln net.Listener) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open == nil {
		g.open = map[string]net.Listener{}
	}
	g.open[gw.Scope], g.last = ln, gw
	g.events = append(g.events, "start "+gw.Scope)
	return nil
}

func (g *gateways) Stop(scope string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if ln := g.open[scope]; ln != nil {
		ln.Close()
		delete(g.open, scope)
	}
	g.events = append(g.events, "stop "+scope)
}

// Remove is Stop: what it drops besides (metric series) is not here.
func (g *gateways) Remove(scope string) { g.Stop(scope) }

// newProvisioner is a provisioner of servers in a temporary data dir with
// its own store, dev CA and recording gateways; max is its MaxServers.
func newProvisioner(t *testing.T, max int) (*pgserver.Provisioner, *sqlite.DB, *devca.CA, *gateways, string) {
	t.Helper()
	if _, err := pgserver.FindBinDir(); err != nil {
		t.Skip(err)
	}
	base, err := os.MkdirTemp("", "shiftkey-prov-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755) // as root, the postgres OS user passes through
	home := filepath.Join(base, "data")
	if err := pgserver.MakeHome(home); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(home, "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ca, err := devca.LoadOrCreate(filepath.Join(home, "tls"))
	if err != nil {
		t.Fatal(err)
	}
	gws := &gateways{}
	p := &pgserver.Provisioner{Dir: filepath.Join(home, "backends"), Store: st, Gateways: gws, AdminRole: "prov_admin", Reserved: "dev-cluster",
		MaxServers: max,
		TLS: func() (*pgserver.TLSFiles, error) {
			cert, key, caPEM, err := ca.ServerFiles("127.0.0.1", "localhost")
			return &pgserver.TLSFiles{Cert: cert, Key: key, CA: caPEM}, err
		}}
	return p, st, ca, gws, home
}

// A workgroup gets a server of its own, reached by certificate over
// loopback TLS as the admin role; a move reopens only its gateway; a stop
// removes the server and its data. EnsureWorkgroup creates a workgroup
// once.
func TestProvisionerWorkgroupLifecycle(t *testing.T) {
	if _, err := pgserver.FindBinDir(); err != nil {
		t.Skip(err)
	}
	ctx := context.Background()
	p, st, ca, gws, home := newProvisioner(t, 0)
	defer p.StopAll()

	now := time.Now().UTC()
	ns := &shiftkey.Namespace{Name: "ns1", ID: shiftkey.NewUUID(), Region: "us-east-1", DBName: "analytics", AdminUsername: "nsadmin", Status: "AVAILABLE", CreatedAt: now}
	w := &shiftkey.Workgroup{Name: "wg1", ID: shiftkey.NewUUID(), Region: "us-east-1", Status: "AVAILABLE", BaseCapacity: 128, CreatedAt: now}
	if err := p.EnsureWorkgroup(ctx, w, ns); err != nil {
		t.Fatal(err)
	}
	if b := w.Backend; b.Host != "127.0.0.1" || b.AdminUser != "prov_admin" || !b.Managed || b.Login != shiftkey.BackendLoginCert || b.Port == 0 {
		t.Fatalf("workgroup backend %+v", b)
	}
	if gws.last.Scope != w.CredentialScope() || gws.last.Database != "analytics" || gws.last.Backend != w.Backend || gws.last.AllowSuperuser {
		t.Fatalf("gateway asked for %+v", gws.last)
	}
	if stored, err := st.Workgroup(ctx, "wg1"); err != nil || stored.Endpoint != w.Endpoint || stored.Namespace != "ns1" {
		t.Fatalf("stored workgroup %+v %v", stored, err)
	}
	dataDir := filepath.Join(home, "backends", w.ID)
	if _, err := os.Stat(filepath.Join(dataDir, "postgres", "PG_VERSION")); err != nil {
		t.Fatalf("the workgroup's server: %v", err)
	}
	// The server answers on loopback TLS, in the workgroup's database, to
	// the admin role by certificate.
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d user=prov_admin dbname=analytics sslmode=verify-full connect_timeout=10", w.Backend.Port))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.ClientCert("prov_admin")
	if err != nil {
		t.Fatal(err)
	}
	cfg.TLSConfig.RootCAs, cfg.TLSConfig.Certificates, cfg.Fallbacks = ca.Pool(), []tls.Certificate{*cert}, nil
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("the admin role's certificate login to the workgroup's server: %v", err)
	}
	conn.Close(ctx)

	again := &shiftkey.Workgroup{Name: "wg1", ID: shiftkey.NewUUID()}
	if err := p.EnsureWorkgroup(ctx, again, ns); err != nil || again.Backend.Port != 0 {
		t.Fatalf("second EnsureWorkgroup started another server: %+v %v", again.Backend, err)
	}

	before := w.Endpoint
	if err := p.MoveWorkgroup(ctx, w, 0); err != nil {
		t.Fatal(err)
	}
	if w.Endpoint == before || gws.last.Backend != w.Backend {
		t.Fatalf("move: endpoint %v (was %v), gateway %+v", w.Endpoint, before, gws.last)
	}
	if err := p.StopWorkgroup(ctx, w); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Fatalf("the stopped workgroup's data: %v", err)
	}
	scope := w.CredentialScope()
	if want := []string{"start " + scope, "stop " + scope, "start " + scope, "stop " + scope}; !slices.Equal(gws.events, want) {
		t.Fatalf("gateway events %v, want %v", gws.events, want)
	}
	err = p.StopCluster(ctx, &shiftkey.Cluster{Identifier: "dev-cluster"})
	if shiftkey.ErrorCode(err) != shiftkey.CodeUnsupportedOperation {
		t.Fatalf("deleting the reserved cluster: %v", err)
	}
}

// Each API-created cluster or workgroup is a PostgreSQL server on the
// developer's machine: past MaxServers, creating one is refused with the
// quota error AWS answers (ClusterQuotaExceeded, Serverless'
// ServiceQuotaExceededException), before anything starts; a server
// stopped frees its place; restarting one that exists is never refused.
func TestProvisionerQuota(t *testing.T) {
	ctx := context.Background()
	p, _, _, _, _ := newProvisioner(t, 1)
	defer p.StopAll()
	now := time.Now().UTC()
	ns := &shiftkey.Namespace{Name: "ns1", ID: shiftkey.NewUUID(), Region: "us-east-1", DBName: "dev", AdminUsername: "nsadmin", Status: "AVAILABLE", CreatedAt: now}
	w := &shiftkey.Workgroup{Name: "wg1", ID: shiftkey.NewUUID(), Region: "us-east-1", Status: "AVAILABLE", BaseCapacity: 128, CreatedAt: now}
	if err := p.EnsureWorkgroup(ctx, w, ns); err != nil {
		t.Fatal(err)
	}
	c := &shiftkey.Cluster{Identifier: "c1", DBName: "dev", MasterUsername: "admin"}
	if err := p.StartCluster(ctx, c); shiftkey.ErrorCode(err) != "ClusterQuotaExceeded" {
		t.Fatalf("a cluster past the quota: %v, want ClusterQuotaExceeded", err)
	}
	w2 := &shiftkey.Workgroup{Name: "wg2", ID: shiftkey.NewUUID(), Region: "us-east-1", CreatedAt: now}
	if err := p.StartWorkgroup(ctx, w2, ns); shiftkey.ErrorCode(err) != "ServiceQuotaExceededException" {
		t.Fatalf("a workgroup past the quota: %v, want ServiceQuotaExceededException", err)
	}
	if c.Backend.Port != 0 || w2.Backend.Port != 0 {
		t.Fatalf("refused, but started: %+v %+v", c.Backend, w2.Backend)
	}
	// A restart of the one that exists (dev's resume) is not a new server.
	p.StopAll()
	if err := p.StartWorkgroup(ctx, w, ns); err != nil {
		t.Fatalf("restarting an existing workgroup at the quota: %v", err)
	}
	if err := p.StopWorkgroup(ctx, w); err != nil {
		t.Fatal(err)
	}
	if err := p.StartCluster(ctx, c); err != nil {
		t.Fatalf("a cluster once the workgroup is gone: %v", err)
	}
}
