// Package devenv is what `shiftkey dev` runs on one machine: a PostgreSQL
// server of its own with a dev CA, the store, dev-cluster's and
// default-workgroup's gateways, the provisioner of API-created clusters and
// workgroups, and the API, all under one data dir; dev.env and the welcome
// text tell a newcomer how to reach them.
package devenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/atomicfile"
	"github.com/shiftkey/shiftkey/config"
	"github.com/shiftkey/shiftkey/devca"
	"github.com/shiftkey/shiftkey/iamapi"
	"github.com/shiftkey/shiftkey/pgserver"
	"github.com/shiftkey/shiftkey/pgwire"
	"github.com/shiftkey/shiftkey/redshift"
	"github.com/shiftkey/shiftkey/secretbox"
	"github.com/shiftkey/shiftkey/server"
)

// Defaults of `shiftkey dev`.
const (
	DefaultAPIAddr     = config.DefaultAPIAddr
	DefaultGatewayAddr = "127.0.0.1:5439"
	Region             = "us-east-1"
	// ProvisionerRole creates roles and grants groups in dev's backends;
	// the master user (awsuser) stays a role credentials can be issued for.
	ProvisionerRole = "shiftkey_admin"
	Cluster         = "dev-cluster"
	Database        = "dev"
	MasterUser      = "awsuser"
	AdminUser       = "admin"
	Namespace       = "default-namespace"
	Workgroup       = "default-workgroup"
	// DefaultWorkgroupAddr is default-workgroup's gateway (dev-cluster has 5439).
	DefaultWorkgroupAddr = "127.0.0.1:5440"
	// DefaultAdminAddr is serve's admin.listen default.
	DefaultAdminAddr = "127.0.0.1:9440"
	// DefaultAuditFile is the audit log in the data dir.
	DefaultAuditFile = "audit.log"
)

// Dev runs everything on one machine: a PostgreSQL server of its own, the
// store, the API and a gateway per cluster.
type Dev struct {
	DataDir       string
	APIAddr       string
	GatewayAddr   string
	WorkgroupAddr string // default-workgroup's gateway; "" → DefaultWorkgroupAddr
	// AdminAddr is the admin listener's (/metrics, /healthz, /readyz), as
	// serve's admin.listen; "" or "off": none. The command's default is
	// DefaultAdminAddr; tests that run several devs use port 0.
	AdminAddr string
	// AuditFile is the audit log, as serve's audit.file; relative to the
	// data dir; "" or "off": none. The command's default is DefaultAuditFile.
	AuditFile string
	Logger    *slog.Logger
	Stdout    io.Writer
	Now       func() time.Time // nil → time.Now; tests move it to expire credentials

	// Set by Start.
	CAPath    string // the dev CA certificate (PGSSLROOTCERT)
	Gateway   shiftkey.Endpoint
	AccessKey *shiftkey.AccessKey
	PG        *pgserver.Server
	server.Server

	lock *os.File // the data dir's, held until Close (lockDir)
}

// Start brings everything up. On error the caller must still call Close.
func (d *Dev) Start(ctx context.Context) error {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	d.Server.Logger, d.Server.Now, d.AccountID, d.Regions = d.Logger, d.Now, shiftkey.DefaultAccountID, []string{Region}
	// Short-lived connections skip PostgreSQL's process start.
	d.Limits.PoolSize = 20
	if d.DataDir == "" {
		dir, err := pgserver.DefaultHome()
		if err != nil {
			return err
		}
		d.DataDir = dir
	}
	dir, err := filepath.Abs(d.DataDir)
	if err != nil {
		return err
	}
	d.DataDir = dir
	binDir, err := pgserver.FindBinDir()
	if err != nil {
		return err
	}
	if err := pgserver.MakeHome(dir); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	if d.lock, err = lockDir(dir); err != nil {
		return err
	}
	db, err := OpenStore(ctx, dir, true)
	if err != nil {
		return err
	}
	d.UseStore(db)
	// The operator's view serve has: metrics for the admin listener, and
	// the audit log, in the data dir unless the path is absolute.
	auditFile := ""
	if on(d.AuditFile) {
		if !filepath.IsAbs(d.AuditFile) {
			d.AuditFile = filepath.Join(dir, d.AuditFile)
		}
		auditFile = d.AuditFile
	}
	if err := d.Observe(on(d.AdminAddr), auditFile, Region); err != nil {
		return err
	}
	secret, err := server.GatewayKeyFile(ctx, db, filepath.Join(dir, "gateway.key"))
	if err != nil {
		return err
	}
	if err := secretbox.CheckPrivate(filepath.Join(dir, "tls", "ca.key")); err != nil {
		return err
	}
	ca, err := devca.LoadOrCreate(filepath.Join(dir, "tls"))
	if err != nil {
		return fmt.Errorf("dev CA: %w", err)
	}
	d.CAPath = ca.Path
	gwHost, _, _ := net.SplitHostPort(d.GatewayAddr)
	d.TLS = ca.ServerConfig(func(name string) bool {
		return name == "localhost" || name == gwHost || d.KnownName(name)
	}, "localhost", "127.0.0.1", gwHost)
	// The API answers HTTPS with the same CA (AWS_CA_BUNDLE), and plain
	// HTTP on the same port for clients that cannot be given a CA.
	apiHost, _, _ := net.SplitHostPort(d.APIAddr)
	d.APITLS = ca.ServerConfig(func(name string) bool { return name == "localhost" || name == apiHost }, loopbackAnd(apiHost)...)
	d.Logins.CA = ca // signs the backends' client certificates
	pgTLS, err := backendTLS(ca)
	if err != nil {
		return err
	}
	d.PG, err = pgserver.Start(ctx, pgserver.Config{
		BinDir:    binDir,
		DataDir:   filepath.Join(dir, "postgres"),
		Superuser: MasterUser,
		AnyPort:   true,
		TLS:       pgTLS,
		Fsync:     true,
		Logger:    d.Logger,
	})
	if err != nil {
		return err
	}
	if err := d.PG.EnsureProvisioner(ctx, ProvisionerRole); err != nil {
		return err
	}
	if err := d.PG.CreateDatabase(ctx, Database); err != nil {
		return err
	}

	gwLn, err := pgwire.Listen(d.GatewayAddr)
	if err != nil {
		return fmt.Errorf("gateway listen %s: %w", d.GatewayAddr, err)
	}
	d.Gateway = pgwire.Advertised(gwLn.Addr())
	cluster, err := d.ensureCluster(ctx)
	if err != nil {
		gwLn.Close()
		return err
	}
	if d.AccessKey, err = iamapi.EnsureAdmin(ctx, d.Store, shiftkey.DefaultAccountID, AdminUser, d.Clock().UTC()); err != nil {
		gwLn.Close()
		return err
	}

	if err := d.StartGateway(ctx, server.Gateway{Scope: cluster.Identifier, Region: cluster.Region, DB: cluster.DBName, Backend: cluster.Backend, Master: cluster.MasterUsername, AllowSuperuser: true}, gwLn, secret); err != nil {
		gwLn.Close()
		return err
	}
	wgAddr := d.WorkgroupAddr
	if wgAddr == "" {
		wgAddr = DefaultWorkgroupAddr
	}
	wgHost, wgPort, err := net.SplitHostPort(wgAddr)
	if err != nil {
		return fmt.Errorf("workgroup address %s: %w", wgAddr, err)
	}
	port, _ := strconv.Atoi(wgPort)
	// default-workgroup listens on --workgroup-addr's host, not the
	// gateway's: never wider than asked.
	wg := &shiftkey.Workgroup{ID: shiftkey.NewUUID()}
	if stored, err := d.Store.Workgroup(ctx, Workgroup); err == nil {
		wg.ID = stored.ID
	}
	gateways := devGateways{d, secret, map[string]string{wg.CredentialScope(): wgHost}}
	prov := &pgserver.Provisioner{Dir: filepath.Join(dir, "backends"), Store: d.Store, Gateways: gateways,
		TLS: func() (*pgserver.TLSFiles, error) { return backendTLS(ca) }, AdminRole: ProvisionerRole, Reserved: Cluster, ReservedServer: d.PG, Logger: d.Logger}
	d.Provisioner = prov
	if err := prov.ResumeWorkgroups(ctx, map[string]int{Workgroup: port}); err != nil {
		return err
	}
	now := d.Clock().UTC()
	if err := prov.EnsureWorkgroup(ctx,
		&shiftkey.Workgroup{Name: Workgroup, ID: wg.ID, Region: Region, Status: "AVAILABLE", BaseCapacity: 128, Endpoint: shiftkey.Endpoint{Port: port}, CreatedAt: now},
		&shiftkey.Namespace{Name: Namespace, ID: shiftkey.NewUUID(), Region: Region, DBName: Database, AdminUsername: "admin", Status: "AVAILABLE", CreatedAt: now}); err != nil {
		return err
	}
	if err := prov.ResumeClusters(ctx); err != nil {
		return err
	}
	// A server whose postmaster dies (killed, out of memory) is started
	// again on its data, rather than its logins failing until dev restarts.
	prov.Watch(pgserver.DefaultWatchInterval)
	d.ClusterProvisioner = prov
	if d.Metrics != nil {
		if err := d.StartAdmin(d.AdminAddr); err != nil {
			return err
		}
	}
	apiLn, err := net.Listen("tcp", d.APIAddr)
	if err != nil {
		return fmt.Errorf("api listen %s: %w", d.APIAddr, err)
	}
	// dev.env first: whoever sees the API answer finds the keys written.
	d.SetAPIURLs(apiLn)
	if err := d.writeEnv(); err != nil {
		apiLn.Close()
		return err
	}
	d.StartAPI(apiLn)
	d.Logger.Info("shiftkey dev ready", "api", d.APIHTTPSURL, "api_plain", d.APIURL, "gateway", net.JoinHostPort(d.Gateway.Address, strconv.Itoa(d.Gateway.Port)), "admin", d.AdminURL, "data_dir", dir)
	return nil
}

func on(addr string) bool { return addr != "" && addr != "off" }

func (d *Dev) ensureCluster(ctx context.Context) (*shiftkey.Cluster, error) {
	// Sessions log in by client certificate over loopback TLS (the
	// recommended mode); the private socket serves tests and tools.
	return redshift.EnsureCluster(ctx, d.Store, &shiftkey.Cluster{
		Identifier: Cluster, Region: Region, NamespaceID: shiftkey.NewUUID(), NodeType: "dc2.large",
		DBName: Database, MasterUsername: d.PG.Superuser(), Status: "available", Endpoint: d.Gateway, CreatedAt: d.Clock().UTC(),
		Backend: shiftkey.Backend{Host: "127.0.0.1", Port: d.PG.Port(), AdminUser: ProvisionerRole, Managed: true, Login: shiftkey.BackendLoginCert},
	})
}

// EnvPath is the file of `export NAME=value` lines for the dev setup.
func (d *Dev) EnvPath() string { return filepath.Join(d.DataDir, "dev.env") }

func (d *Dev) writeEnv() error {
	var b strings.Builder
	env := [][2]string{
		{"AWS_ACCESS_KEY_ID", d.AccessKey.ID},
		{"AWS_SECRET_ACCESS_KEY", d.AccessKey.Secret},
		{"AWS_REGION", Region},
		{"AWS_DEFAULT_REGION", Region},
		{"AWS_ENDPOINT_URL", d.APIHTTPSURL},
		{"AWS_CA_BUNDLE", d.CAPath},
		// The AWS SDK for JavaScript v3 reads AWS_ENDPOINT_URL but not
		// AWS_CA_BUNDLE; Node adds this file to its trust store at start.
		{"NODE_EXTRA_CA_CERTS", d.CAPath},
		{"PGHOST", d.Gateway.Address},
		{"PGPORT", strconv.Itoa(d.Gateway.Port)},
		{"PGDATABASE", Database},
		{"PGSSLROOTCERT", d.CAPath},
	}
	if d.AdminURL != "" {
		env = append(env, [2]string{"SHIFTKEY_ADMIN_URL", d.AdminURL})
	}
	if d.Audit != nil {
		env = append(env, [2]string{"SHIFTKEY_AUDIT_FILE", d.AuditFile})
	}
	for _, kv := range env {
		fmt.Fprintf(&b, "export %s=%s\n", kv[0], shellQuote(kv[1]))
	}
	// It holds the access key's secret: whole or not at all, 0600.
	return atomicfile.Write(d.EnvPath(), []byte(b.String()), 0o600)
}

// AuditFileOf is the audit log of the shiftkey dev whose data dir is dir,
// as its dev.env names it (SHIFTKEY_AUDIT_FILE; "" when it keeps none:
// --audit-file off). ok is false when there is no dev.env to read.
// Tools run beside dev (credentials revoke) append their records there:
// dev's --audit-file may name any file.
func AuditFileOf(dir string) (path string, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, "dev.env"))
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	for line := range strings.Lines(string(b)) {
		if v, found := strings.CutPrefix(strings.TrimRight(line, "\n"), "export SHIFTKEY_AUDIT_FILE="); found {
			path, err := shellUnquote(v)
			return path, true, err
		}
	}
	return "", true, nil
}

// shellUnquote undoes shellQuote.
func shellUnquote(s string) (string, error) {
	if !strings.HasPrefix(s, "'") {
		return s, nil
	}
	if len(s) < 2 || !strings.HasSuffix(s, "'") {
		return "", fmt.Errorf("dev.env: unterminated quote in %q", s)
	}
	return strings.ReplaceAll(s[1:len(s)-1], `'\''`, "'"), nil
}

func shellQuote(s string) string {
	if strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@+", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// PrintWelcome prints copy-paste examples.
func (d *Dev) PrintWelcome() {
	if d.Stdout == nil {
		return
	}
	fmt.Fprintf(d.Stdout, `
shiftkey dev is running.
  AWS API:   %s   (Redshift, Redshift Serverless, IAM, STS; its CA is AWS_CA_BUNDLE, and NODE_EXTRA_CA_CERTS for Node, in dev.env)
             %s    (the same port in plain HTTP, for clients that cannot take a CA; aws:SecureTransport is false)
  Gateway:   %s:%d   (cluster %s, database %s)
  Serverless workgroup %s: see aws redshift-serverless get-workgroup --workgroup-name %s
  TLS:       the API and the gateways use the CA %s (sslmode=verify-full works)
  Data dir:  %s%s

Try it in another shell:

  source %s      # AWS CLI v2 before 2.13 ignores AWS_ENDPOINT_URL: hence --endpoint-url
  aws --endpoint-url "$AWS_ENDPOINT_URL" redshift describe-clusters --cluster-identifier %s
  aws --endpoint-url "$AWS_ENDPOINT_URL" redshift get-cluster-credentials --cluster-identifier %s --db-user alice --db-name %s --auto-create
  eval "$(aws --endpoint-url "$AWS_ENDPOINT_URL" redshift get-cluster-credentials --cluster-identifier %s --db-user alice --db-name %s \
      --auto-create --query '[DbUser,DbPassword]' --output text | awk '{printf "export PGUSER=%%s PGPASSWORD=%%s\n", $1, $2}')"
  psql -c 'SELECT current_user'
  aws --endpoint-url "$AWS_ENDPOINT_URL" redshift-serverless get-credentials --workgroup-name %s --db-name %s
  aws --endpoint-url %s redshift describe-clusters   # plain HTTP, for old clients

Stop with Ctrl-C; a restart on the same data dir keeps clusters, identities and live credentials.
`, d.APIHTTPSURL, d.APIURL, d.Gateway.Address, d.Gateway.Port, Cluster, Database, Workgroup, Workgroup, d.CAPath, d.DataDir, d.operatorLines(),
		d.EnvPath(), Cluster, Cluster, Database, Cluster, Database, Workgroup, Database, d.APIURL)
}

// operatorLines are the welcome text's lines for the admin listener and
// the audit log, those that are on.
func (d *Dev) operatorLines() string {
	var b strings.Builder
	if d.AdminURL != "" {
		fmt.Fprintf(&b, "\n  Admin:     %s/metrics, /healthz, /readyz   (SHIFTKEY_ADMIN_URL)", d.AdminURL)
	}
	if d.Audit != nil {
		fmt.Fprintf(&b, "\n  Audit log: %s   (shiftkey audit tail --file \"$SHIFTKEY_AUDIT_FILE\" -f)", d.AuditFile)
	}
	return b.String()
}

// Close stops everything: API, gateways, backends, PostgreSQL, store.
func (d *Dev) Close() error {
	errs := d.Stop()
	if p, ok := d.Provisioner.(*pgserver.Provisioner); ok {
		errs = append(errs, p.StopAll()...)
	}
	if d.PG != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		errs = append(errs, d.PG.Stop(ctx))
		cancel()
	}
	errs = append(errs, d.Server.Close())
	if d.lock != nil {
		d.lock.Close() // last: until here the data dir is this process's
	}
	return errors.Join(errs...)
}

// loopbackAnd is the names a dev server certificate covers: localhost,
// 127.0.0.1 and the host it listens on, when that is a name or a specific
// address.
func loopbackAnd(host string) []string {
	names := []string{"localhost", "127.0.0.1"}
	if ip := net.ParseIP(host); host != "" && host != "localhost" && (ip == nil || !ip.IsUnspecified() && !ip.Equal(net.IPv4(127, 0, 0, 1))) {
		names = append(names, host)
	}
	return names
}

// backendTLS is the TLS of shiftkey's own PostgreSQL servers: a server
// certificate for loopback from the dev CA, which also signs the
// gateway's client certificates.
func backendTLS(ca *devca.CA) (*pgserver.TLSFiles, error) {
	cert, key, caPEM, err := ca.ServerFiles("127.0.0.1", "localhost")
	if err != nil {
		return nil, err
	}
	return &pgserver.TLSFiles{Cert: cert, Key: key, CA: caPEM}, nil
}
