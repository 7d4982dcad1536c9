// Package pgserver runs a local PostgreSQL server from the installed
// binaries: for `shiftkey dev` and for tests.
//
// The server listens only on a unix socket in a private (0700) directory,
// with "trust" for local connections: only the OS user that runs it (and
// root) can reach the socket. When started as root, PostgreSQL runs as the
// postgres OS user, which owns the data and socket directories.
package pgserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey/atomicfile"
)

// ErrNotInstalled says the server binaries are missing and how to get them.
var ErrNotInstalled = errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found; install them with: sudo apt-get update && sudo apt-get install -y postgresql (or set SHIFTKEY_PG_BINDIR)")

// libGlob is where Debian installs the server binaries, off PATH.
var libGlob = "/usr/lib/postgresql/*/bin"

// FindBinDir finds a directory holding initdb, pg_ctl and postgres:
// $SHIFTKEY_PG_BINDIR, then PATH, then the newest /usr/lib/postgresql/N/bin.
func FindBinDir() (string, error) {
	if d := os.Getenv("SHIFTKEY_PG_BINDIR"); d != "" {
		if hasBinaries(d) {
			return d, nil
		}
		return "", fmt.Errorf("SHIFTKEY_PG_BINDIR=%s: %w", d, ErrNotInstalled)
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if d := filepath.Dir(resolve(p)); hasBinaries(d) {
			return d, nil
		}
	}
	dirs, _ := filepath.Glob(libGlob)
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if hasBinaries(d) {
			return d, nil
		}
	}
	return "", ErrNotInstalled
}

func resolve(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func hasBinaries(dir string) bool {
	for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
		if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// Config describes a server.
type Config struct {
	BinDir    string // "" → FindBinDir
	DataDir   string // PGDATA; initialized when it has no PG_VERSION
	SocketDir string // "" → DataDir/run, or a short dir under /tmp when that path is too long
	Port      int    // names the socket file (and the TCP port with TLS); default 5432
	// AnyPort picks a free loopback port at start instead of Port, and
	// picks again when PostgreSQL cannot bind it because another process
	// took it between the pick and the bind.
	AnyPort bool
	// TLS, when set, turns on TLS with these PEM files and listens on
	// 127.0.0.1:Port for hostssl connections authenticated by client
	// certificate (pg_hba "cert": the certificate's CN is the role) signed
	// by CA. The private socket keeps local trust.
	TLS *TLSFiles
	// HBA lines go before the defaults in pg_hba.conf (first match wins).
	HBA       []string
	Superuser string // default "postgres"
	Fsync     bool   // false for tests
	Settings  map[string]string
	Logger    *slog.Logger
}

// TLSFiles are PEM blocks for the server's TLS.
type TLSFiles struct {
	Cert, Key, CA []byte
}

// Server is a running PostgreSQL server.
type Server struct {
	cfg     Config
	asUser  *user.User // non-nil when running through runuser as postgres
	logFile string

	// tempSocketDir says SocketDir was made under $TMPDIR for a data dir
	// whose path is too long: removed when the server stops (or fails
	// to start), else one more skpg-* would stay at every start.
	tempSocketDir bool

	mu      sync.Mutex
	stopped bool
}

// Start initializes the data directory when needed and starts the server.
func Start(ctx context.Context, cfg Config) (_ *Server, err error) {
	s, err := newServer(cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.removeTempSocketDir()
		}
	}()
	cfg, dataDir := s.cfg, s.cfg.DataDir
	if cfg.SocketDir == "" {
		cfg.SocketDir = filepath.Join(dataDir, "..", filepath.Base(dataDir)+".run")
		// sun_path holds 107 bytes; "/.s.PGSQL.NNNNN" takes 15.
		if len(filepath.Clean(cfg.SocketDir)) > 90 {
			d, err := os.MkdirTemp("", "skpg-")
			if err != nil {
				return nil, err
			}
			cfg.SocketDir, s.tempSocketDir = d, true
		}
		s.cfg.SocketDir = filepath.Clean(cfg.SocketDir)
	}
	if err := s.prepareDirs(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := s.initdb(ctx); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		if cfg.AnyPort {
			if s.cfg.Port, err = freePort(); err != nil {
				return nil, err
			}
		}
		if err := s.writeConfig(); err != nil {
			return nil, err
		}
		err := s.start(ctx)
		if err == nil {
			return s, nil
		}
		if !cfg.AnyPort || !errors.Is(err, errPortTaken) || attempt == 5 {
			return nil, err
		}
		s.cfg.Logger.Warn("postgres port taken before the server bound it; picking another", "port", s.cfg.Port)
	}
}

// newServer is a Server of cfg with its defaults, not started.
func newServer(cfg Config) (*Server, error) {
	if cfg.BinDir == "" {
		d, err := FindBinDir()
		if err != nil {
			return nil, err
		}
		cfg.BinDir = d
	}
	if cfg.Port == 0 {
		cfg.Port = 5432
	}
	if cfg.Superuser == "" {
		cfg.Superuser = "postgres"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cfg.DataDir = dataDir
	s := &Server{cfg: cfg}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, PostgreSQL must run as the postgres OS user, which does not exist: %w", err)
		}
		s.asUser = u
	}
	return s, nil
}

// stopLeftover stops a postmaster still running on dataDir, one a killed
// shiftkey left there, before its files are removed: it would otherwise
// run on, unlinked, for good.
func stopLeftover(ctx context.Context, dataDir string) error {
	if _, err := os.Stat(filepath.Join(dataDir, "postmaster.pid")); err != nil {
		return nil
	}
	s, err := newServer(Config{DataDir: dataDir})
	if err != nil {
		return err
	}
	if s.command(ctx, "pg_ctl", "status", "-D", s.cfg.DataDir).Run() != nil {
		return nil // not running: a stale pid file
	}
	if out, err := s.command(ctx, "pg_ctl", "stop", "-D", s.cfg.DataDir, "-m", "immediate", "-w", "-t", "60", "-s").CombinedOutput(); err != nil {
		return fmt.Errorf("stop the server left running on %s: %w: %s", dataDir, err, tail(out))
	}
	return nil
}

// freePort is FreePort; a test makes its first pick a taken port.
var freePort = FreePort

// errPortTaken marks a start that failed because the port was in use.
var errPortTaken = errors.New("port in use")

// owned creates dir (and missing parents) owned by the server's OS user.
func (s *Server) owned(dir string, mode os.FileMode) error {
	// Parents we create must stay traversable for the postgres OS user,
	// also under a umask of 077 (shiftkey's): chmod, not only mkdir.
	if err := mkdirAllTraversable(filepath.Dir(dir)); err != nil {
		return err
	}
	uid, gid := -1, -1
	if s.asUser != nil {
		uid, _ = strconv.Atoi(s.asUser.Uid)
		gid, _ = strconv.Atoi(s.asUser.Gid)
	}
	return makeDir(dir, mode, uid, gid)
}

// mkdirAllTraversable creates the missing directories of dir 0755,
// leaving those that exist as they are.
func mkdirAllTraversable(dir string) error {
	if _, err := os.Stat(dir); err == nil || !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := mkdirAllTraversable(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return os.Chmod(dir, 0o755)
}

func (s *Server) prepareDirs() error {
	if err := s.owned(s.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := s.owned(s.cfg.SocketDir, 0o700); err != nil {
		return fmt.Errorf("socket dir: %w", err)
	}
	s.logFile = filepath.Join(s.cfg.DataDir, "postgresql.log")
	if s.asUser != nil {
		// Every parent must be traversable by postgres; we only report the
		// one that is not, changing directories we did not create is not
		// ours to do.
		for _, d := range []string{s.cfg.DataDir, s.cfg.SocketDir} {
			if out, err := exec.Command("runuser", "-u", "postgres", "--", "test", "-x", d).CombinedOutput(); err != nil {
				return fmt.Errorf("the postgres OS user cannot reach %s (a parent directory is closed to it; choose a data dir under /var/lib or /tmp): %v %s", d, err, out)
			}
		}
	}
	return nil
}

// command runs a PostgreSQL binary as the server's OS user.
func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	bin := filepath.Join(s.cfg.BinDir, name)
	var cmd *exec.Cmd
	if s.asUser != nil {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", bin}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, bin, args...)
	}
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "PGTZ=UTC")
	cmd.Dir = "/"
	return cmd
}

func tail(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

func (s *Server) initdb(ctx context.Context) error {
	out, err := s.command(ctx, "initdb", "-D", s.cfg.DataDir, "-U", s.cfg.Superuser, "-E", "UTF8", "--locale=C.UTF-8",
		"--auth-local=trust", "--auth-host=reject", "--no-instructions").CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, tail(out))
	}
	s.cfg.Logger.Info("postgres initialized", "data_dir", s.cfg.DataDir)
	return nil
}

func (s *Server) writeConfig() error {
	settings := map[string]string{
		"listen_addresses":        "''",
		"unix_socket_directories": quoteConf(s.cfg.SocketDir),
		"unix_socket_permissions": "0700",
		"port":                    strconv.Itoa(s.cfg.Port),
		"max_connections":         "200",
		"logging_collector":       "off",
		"timezone":                "'UTC'",
	}
	if s.cfg.TLS != nil {
		settings["listen_addresses"] = "'127.0.0.1'"
		settings["ssl"] = "on"
		settings["ssl_cert_file"] = "'server.crt'"
		settings["ssl_key_file"] = "'server.key'"
		settings["ssl_ca_file"] = "'root.crt'"
		for name, data := range map[string][]byte{"server.crt": s.cfg.TLS.Cert, "server.key": s.cfg.TLS.Key, "root.crt": s.cfg.TLS.CA} {
			if err := s.writeOwned(filepath.Join(s.cfg.DataDir, name), data); err != nil {
				return err
			}
		}
	}
	if !s.cfg.Fsync {
		settings["fsync"] = "off"
		settings["synchronous_commit"] = "off"
		settings["full_page_writes"] = "off"
	}
	for k, v := range s.cfg.Settings {
		settings[k] = v
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString("# Written by shiftkey at every start; edits are overwritten.\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, settings[k])
	}
	if err := s.writeOwned(filepath.Join(s.cfg.DataDir, "shiftkey.conf"), b.Bytes()); err != nil {
		return err
	}
	conf := filepath.Join(s.cfg.DataDir, "postgresql.conf")
	cur, err := readOwned(conf)
	if err != nil {
		return err
	}
	if !bytes.Contains(cur, []byte("include_if_exists = 'shiftkey.conf'")) {
		cur = append(cur, []byte("\ninclude_if_exists = 'shiftkey.conf'\n")...)
		if err := s.writeOwned(conf, cur); err != nil {
			return err
		}
	}
	hba := "# Written by shiftkey.\n"
	for _, l := range s.cfg.HBA {
		hba += l + "\n"
	}
	hba += "# The private unix socket is trusted.\nlocal all all trust\n"
	if s.cfg.TLS != nil {
		hba += "# Loopback TLS with a client certificate from the gateway's CA; the CN is the role.\nhostssl all all 127.0.0.1/32 cert\n"
	}
	return s.writeOwned(filepath.Join(s.cfg.DataDir, "pg_hba.conf"), []byte(hba))
}

func quoteConf(v string) string { return "'" + strings.ReplaceAll(v, "'", "''") + "'" }

// writeOwned writes data to path in the data dir, owned by the server's
// OS user. Running as root, the dir is that user's, who may have put a
// symbolic link at path: atomicfile owns the file through its descriptor
// and renames it over path, which replaces a link, never writing or
// chowning its target.
func (s *Server) writeOwned(path string, data []byte) error {
	var opts []atomicfile.Option
	if s.asUser != nil {
		opts = append(opts, atomicfile.Owner(s.owner()))
	}
	return atomicfile.Write(path, data, 0o600, opts...)
}

// owner is the uid and gid of the server's OS user (asUser).
func (s *Server) owner() (int, int) {
	uid, _ := strconv.Atoi(s.asUser.Uid)
	gid, _ := strconv.Atoi(s.asUser.Gid)
	return uid, gid
}

// readOwned reads a file of the data dir, never through a symbolic link
// (see writeOwned): a link there is an error.
func readOwned(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func (s *Server) start(ctx context.Context) error {
	// A server left running by a killed parent still holds the data dir:
	// stop it so we start with our configuration.
	if out, err := s.command(ctx, "pg_ctl", "status", "-D", s.cfg.DataDir).CombinedOutput(); err == nil {
		s.cfg.Logger.Warn("stopping a PostgreSQL server left running on the data dir", "status", strings.TrimSpace(string(out)))
		s.command(ctx, "pg_ctl", "stop", "-D", s.cfg.DataDir, "-m", "fast", "-w").Run()
	}
	if s.asUser != nil {
		// Created for the server's user, never through a link it put there
		// (see writeOwned): a link is removed, the file owned by descriptor.
		if fi, err := os.Lstat(s.logFile); err == nil && !fi.Mode().IsRegular() {
			os.Remove(s.logFile)
		}
		if f, err := os.OpenFile(s.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND|oNoFollow, 0o600); err == nil {
			f.Chown(s.owner())
			f.Close()
		}
	}
	var logStart int64
	if fi, err := os.Stat(s.logFile); err == nil {
		logStart = fi.Size()
	}
	out, err := s.command(ctx, "pg_ctl", "start", "-D", s.cfg.DataDir, "-l", s.logFile, "-w", "-t", "60", "-s").CombinedOutput()
	if err != nil {
		s.stopLaunched(ctx)
		logTail, _ := os.ReadFile(s.logFile)
		if int64(len(logTail)) >= logStart && bytes.Contains(logTail[logStart:], []byte("Address already in use")) {
			err = fmt.Errorf("%w: %w", errPortTaken, err)
		}
		return fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, tail(out), tail(logTail))
	}
	// pg_ctl -w waits for the postmaster; make sure a session works too.
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := pgx.Connect(ctx, s.ConnString(s.cfg.Superuser, "postgres"))
		if err == nil {
			conn.Close(ctx)
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.stopLaunched(ctx)
			return fmt.Errorf("postgres does not accept connections: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.cfg.Logger.Info("postgres started", "data_dir", s.cfg.DataDir, "socket_dir", s.cfg.SocketDir)
	return nil
}

// stopLaunched stops the postmaster a failed start may have launched (pg_ctl
// killed by a cancelled ctx, or a server that never took a session): the
// caller gets no Server to Stop, and it would hold the data dir.
func (s *Server) stopLaunched(ctx context.Context) {
	s.command(context.WithoutCancel(ctx), "pg_ctl", "stop", "-D", s.cfg.DataDir, "-m", "fast", "-w", "-t", "60", "-s").Run()
}

// Stop stops the server (fast shutdown). It is idempotent.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	out, err := s.command(ctx, "pg_ctl", "stop", "-D", s.cfg.DataDir, "-m", "fast", "-w", "-t", "60", "-s").CombinedOutput()
	if err != nil {
		// A server that died (its postmaster killed) leaves a stale
		// postmaster.pid, which pg_ctl stop fails on; it is stopped all
		// the same, and its owner may go on to remove its data.
		var exit *exec.ExitError
		if st := s.command(context.WithoutCancel(ctx), "pg_ctl", "status", "-D", s.cfg.DataDir).Run(); errors.As(st, &exit) && exit.ExitCode() == 3 {
			s.cfg.Logger.Warn("postgres was not running when stopped", "data_dir", s.cfg.DataDir, "error", tail(out))
			s.removeTempSocketDir()
			return nil
		}
		// Still running, perhaps: its socket dir stays with it.
		return fmt.Errorf("pg_ctl stop: %w: %s", err, tail(out))
	}
	s.removeTempSocketDir()
	s.cfg.Logger.Info("postgres stopped", "data_dir", s.cfg.DataDir)
	return nil
}

// removeTempSocketDir removes the socket dir Start made under $TMPDIR, of
// a server that stopped or never started.
func (s *Server) removeTempSocketDir() {
	if !s.tempSocketDir {
		return
	}
	if err := os.RemoveAll(s.cfg.SocketDir); err != nil {
		s.cfg.Logger.Warn("could not remove the server's socket dir", "socket_dir", s.cfg.SocketDir, "error", err)
	}
}

// SocketDir is the directory of the server's unix socket.
func (s *Server) SocketDir() string { return s.cfg.SocketDir }

// Port is the server's port number (it names the socket file).
func (s *Server) Port() int { return s.cfg.Port }

// Superuser is the bootstrap superuser.
func (s *Server) Superuser() string { return s.cfg.Superuser }

// DataDir is the server's data directory.
func (s *Server) DataDir() string { return s.cfg.DataDir }

// ConnString is a libpq keyword/value string for pgx.
func (s *Server) ConnString(user, database string) string {
	q := func(v string) string {
		return "'" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), "'", `\'`) + "'"
	}
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", q(s.cfg.SocketDir), s.cfg.Port, q(user), q(database))
}

// EnsureProvisioner creates role name with LOGIN CREATEROLE unless it
// exists: what shiftkey needs to create users and grant groups, and no
// more, so that the bootstrap superuser is never the provisioning role.
// On PostgreSQL 16 and later a CREATEROLE role grants only the roles it
// holds ADMIN OPTION on (those it created itself, and those granted to it
// WITH ADMIN OPTION).
func (s *Server) EnsureProvisioner(ctx context.Context, name string) error {
	return s.createUnlessExists(ctx, "role", name, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)",
		"CREATE ROLE "+pgx.Identifier{name}.Sanitize()+" LOGIN CREATEROLE")
}

// CreateDatabase creates database name unless it exists.
func (s *Server) CreateDatabase(ctx context.Context, name string) error {
	return s.createUnlessExists(ctx, "database", name, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
		"CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
}

// createUnlessExists runs create as the superuser unless exists (a query
// of name) says the object is already there.
func (s *Server) createUnlessExists(ctx context.Context, what, name, exists, create string) error {
	conn, err := pgx.Connect(ctx, s.ConnString(s.cfg.Superuser, "postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var found bool
	if err := conn.QueryRow(ctx, exists, name).Scan(&found); err != nil {
		return err
	}
	if found {
		return nil
	}
	if _, err := conn.Exec(ctx, create); err != nil {
		return fmt.Errorf("create %s %s: %w", what, name, err)
	}
	return nil
}

// Restart restarts the server with pg_ctl restart in shutdown mode ("smart",
// "fast" or "immediate"), waiting until it accepts connections again.
func (s *Server) Restart(ctx context.Context, mode string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	out, err := s.command(ctx, "pg_ctl", "restart", "-D", s.cfg.DataDir, "-m", mode, "-l", s.logFile, "-w", "-t", "60", "-s").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl restart: %w: %s", err, tail(out))
	}
	return nil
}

// ErrStopped is Revive's answer for a server stopped (by Stop) meanwhile.
var ErrStopped = errors.New("postgres server stopped")

// Running says whether the server's postmaster runs: its postmaster.pid
// names a live process. Cheap (a small read and a signal 0), for a
// periodic check; a stopped server is not running.
func (s *Server) Running() bool {
	pid, err := s.PostmasterPID()
	if err != nil || pid <= 0 {
		return false
	}
	return processExists(pid)
}

// Revive starts again, on its data and port, a server whose postmaster
// died (killed, crashed): PostgreSQL recovers from its WAL as after any
// crash. It answers ErrStopped for a server Stop stopped, and does
// nothing (started false) to one that runs again (a Restart was under
// way).
func (s *Server) Revive(ctx context.Context) (started bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false, ErrStopped
	}
	if s.Running() {
		return false, nil
	}
	return true, s.start(ctx)
}

// PostmasterPID is the process id of the running server's postmaster
// (the first line of postmaster.pid).
func (s *Server) PostmasterPID() (int, error) {
	b, err := os.ReadFile(filepath.Join(s.cfg.DataDir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(line))
}
