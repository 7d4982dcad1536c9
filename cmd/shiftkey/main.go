// Command shiftkey serves Amazon Redshift's temporary-credential APIs and a
// PostgreSQL gateway that accepts the credentials it issues.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/shiftkey/shiftkey/config"
	"github.com/shiftkey/shiftkey/devenv"
	"github.com/shiftkey/shiftkey/gcfloor"
	"github.com/shiftkey/shiftkey/pgserver"
)

const usage = `shiftkey: short-lived, policy-checked database credentials.

Usage:
  shiftkey dev [--data-dir DIR] [--api-addr HOST:PORT] [--gateway-addr HOST:PORT] [--workgroup-addr HOST:PORT]
               [--admin-addr HOST:PORT|off] [--audit-file FILE|off] [-v]
      Run everything locally: PostgreSQL servers of its own, the AWS API, dev-cluster's gateway
      and default-workgroup's (Redshift Serverless) gateway; /metrics, /healthz and /readyz on
      the admin address, and an audit log (audit.log in the data dir).
  shiftkey serve --config FILE [-v]
      Production: clusters backed by existing PostgreSQL servers and identities declared in a
      YAML config (see shiftkey.example.yaml); ${ENV_VAR} references are expanded.
      SIGTERM fails /readyz, serves on for limits.unready_delay, then drains (limits.shutdown_grace;
      a second SIGTERM or SIGINT cuts what is left now);
      SIGHUP reloads identities and certificates and reopens audit.file.
  shiftkey policy explain --action ACTION [--resource ARN] [--policy FILE]... [--session-policy FILE]
                         [--principal user/NAME|role/NAME|ARN [--config FILE | --data-dir DIR]] [--context KEY=VALUE]...
      Local policy simulator: prints the decision and the statement that decided it.
      Exits 0 when allowed, 2 when denied.
  shiftkey policy why [--config FILE | --data-dir DIR] REQUEST_ID
      Why an API call was denied, by its request id (x-amzn-RequestId).
  shiftkey store rotate-key --config FILE --new-key-file PATH
  shiftkey store rotate-key [--data-dir DIR]
      Reseal every stored secret under a new store key while shiftkey keeps serving; dev's
      store.key is replaced at the end, serve prints the config change to make.
  shiftkey doctor (--cluster ID --db-user NAME | --workgroup NAME) [--db-name DB] [--auto-create] [--ca FILE] [--timeout 15s]
      Get a fresh credential and the endpoint (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
      AWS_SESSION_TOKEN, AWS_REGION, AWS_CA_BUNDLE as the AWS CLI reads them; dev writes dev.env), try every
      login method the gateway may offer and print which clients work with which TLS and CA settings.
      --ca defaults to PGSSLROOTCERT; --timeout bounds each API call and login. Exits 0 when SCRAM
      over verify-full TLS works.
  shiftkey audit tail [--principal ARN|ID] [--access-key ID] [--credential ID] [--source-ip ADDR] [--since T] [--until T] [--event NAMES] [--failed] [--file F ... | --config FILE] [-f]
      The audit log's records (one JSON line each) of a principal, access key, credential or address,
      within a time window (--since 24h), of some events (--event GatewayLogin), refused ones only
      (--failed); several replicas' files in one timeline; -f follows the files across rotations.
  shiftkey credentials list   [--config FILE | --data-dir DIR] [--cluster ID | --workgroup NAME] [--login NAME] [--principal ARN] [--id ID]
                              [--all-for-principal ARN] [--access-key ID]
  shiftkey credentials revoke [--config FILE | --data-dir DIR] [--cluster ID | --workgroup NAME] [--login NAME] [--principal ARN] [--id ID]
                              [--all-for-principal ARN] [--access-key ID] [--terminate]
      List or revoke issued credentials; a revoked credential stops logging in on every replica
      within a second, and with --terminate its open sessions end. --access-key revokes what was
      issued with one access key and the role sessions it started (a leaked key: deactivate it
      first); --all-for-principal what a principal and its role sessions obtained. revoke exits 1
      when nothing matched; list of nothing exits 0.
  shiftkey version
  -v (dev, serve): debug logging.
`

func main() {
	restrictUmask() // before anything is created
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, errDenied) {
			os.Exit(2)
		}
		switch {
		case errors.Is(err, flag.ErrHelp):
			// -h/--help asked for the usage, which is printed: not an error.
			os.Exit(0)
		case !errors.Is(err, errUsage):
			fmt.Fprintln(os.Stderr, "shiftkey:", err)
		}
		os.Exit(1)
	}
}

// errUsage is a command line missing what it needs, whose usage has been
// printed (flag.ErrHelp is help asked for).
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "dev":
		return runDev(ctx, args[1:], stdout, stderr)
	case "serve":
		return runServe(ctx, args[1:], stderr)
	case "policy":
		return runPolicy(ctx, args[1:], stdout, stderr)
	case "store":
		return runStore(ctx, args[1:], stdout, stderr)
	case "doctor":
		return runDoctor(ctx, args[1:], stdout, stderr)
	case "audit":
		return runAudit(ctx, args[1:], stdout, stderr)
	case "credentials":
		return runCredentials(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "shiftkey (development build)")
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d := &devenv.Dev{Stdout: stdout}
	fs.StringVar(&d.DataDir, "data-dir", "", "state directory (default: "+pgserver.DefaultHomeHelp()+")")
	fs.StringVar(&d.APIAddr, "api-addr", devenv.DefaultAPIAddr, "address of the AWS API")
	fs.StringVar(&d.GatewayAddr, "gateway-addr", devenv.DefaultGatewayAddr, "address of dev-cluster's PostgreSQL gateway")
	fs.StringVar(&d.WorkgroupAddr, "workgroup-addr", devenv.DefaultWorkgroupAddr, "address of default-workgroup's PostgreSQL gateway")
	fs.StringVar(&d.AdminAddr, "admin-addr", devenv.DefaultAdminAddr, "address of /metrics, /healthz and /readyz, or off")
	fs.StringVar(&d.AuditFile, "audit-file", devenv.DefaultAuditFile, "audit log, relative to the data dir, or off")
	verbose := fs.Bool("v", false, "debug logging")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	d.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(d.Logger)
	setProcs(d.Limits.GoMaxProcs(d.ScramIterations))
	// As serve: a SIGHUP (log rotation, a closed terminal) reopens the
	// audit log; by default it would kill the process and leave its
	// PostgreSQL servers running.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := d.Start(ctx); err != nil {
		d.Close()
		return err
	}
	d.PrintWelcome()
	for {
		select {
		case <-ctx.Done():
			d.Logger.Info("shutting down")
			return d.Close()
		case <-hup:
			if d.Audit == nil {
				continue
			}
			if err := d.Audit.Reopen(); err != nil {
				d.Logger.Error("reopening the audit log failed", "error", err)
			} else {
				d.Logger.Info("audit log reopened", "file", d.AuditFile)
			}
		}
	}
}

// setProcs sets GOMAXPROCS to n (config.Limits.GoMaxProcs; 0: Go's)
// before anything reads it.
func setProcs(n int) {
	if n > 0 {
		runtime.GOMAXPROCS(n)
	}
}

func runServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML config file")
	verbose := fs.Bool("v", false, "debug logging")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("serve: --config is required")
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	setProcs(cfg.Limits.GoMaxProcs(cfg.ScramIterations))
	defer gcfloor.Start(cfg.Limits.GCHeapFloor())()
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	// Registered before Start: a SIGHUP from then on reloads, never kills.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	s := &Serve{Config: cfg, Logger: slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))}
	// What packages log through slog's default (the stores' background
	// jobs) goes to the same JSON lines, not plain text among them.
	slog.SetDefault(s.Logger)
	if err := s.Start(ctx); err != nil {
		s.Close()
		return err
	}
	for {
		select {
		case <-ctx.Done():
			// A second SIGTERM or SIGINT ends the unready delay and the
			// grace period now: the sessions left are cut as at its end
			// (57P01, groups revoked, audited), where SIGKILL would leave
			// all that undone.
			again, closed := make(chan os.Signal, 1), make(chan struct{})
			signal.Notify(again, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(again)
			second := func(sig os.Signal) {
				s.Logger.Info("shutting down: second signal, cutting what is left now", "signal", sig.String())
				s.EndGrace()
			}
			// /readyz fails first, while the listeners still accept, so
			// that the load balancers take this replica out before it
			// refuses anything (without an admin listener, no /readyz
			// tells them: no delay).
			s.Unready()
			if d := cfg.Limits.UnreadyDelay; d > 0 && s.AdminURL != "" {
				s.Logger.Info("shutting down: unready, still accepting", "unready_delay", d.String())
				select {
				case <-time.After(d):
				case sig := <-again:
					second(sig)
				}
			}
			s.Logger.Info("shutting down: draining", "shutdown_grace", s.ShutdownGrace().String())
			go func() {
				select {
				case sig := <-again:
					second(sig)
				case <-closed:
				}
			}()
			defer close(closed)
			return s.Close()
		case <-hup:
			if err := s.Reload(ctx, *path); err != nil {
				s.Logger.Error("reload failed", "error", err)
			}
		}
	}
}

// parseFlags parses args into fs and refuses what is left: the flag
// package stops at the first argument that is not a flag, so a stray word
// (a second id pasted, a quote gone wrong) would silently drop every flag
// after it, a narrowing filter or --terminate included.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q (flags after it were not read; quote a value with spaces)", fs.Name(), fs.Arg(0))
	}
	return nil
}

// verbFlags starts a command that takes a verb (`audit tail`, `store
// rotate-key`, …): the verb, one of verbs, and a flag set named for both.
// Without one it prints the usage and fails with want.
func verbFlags(args []string, stderr io.Writer, command, want string, verbs ...string) (string, *flag.FlagSet, error) {
	if len(args) == 0 || !slices.Contains(verbs, args[0]) {
		fmt.Fprint(stderr, usage)
		return "", nil, errors.New(want)
	}
	fs := flag.NewFlagSet(command+" "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	return args[0], fs, nil
}
