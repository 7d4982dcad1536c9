package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/audit"
	"github.com/shiftkey/shiftkey/config"
	"github.com/shiftkey/shiftkey/devenv"
	"github.com/shiftkey/shiftkey/pgserver"
	"github.com/shiftkey/shiftkey/revocation"
	"github.com/shiftkey/shiftkey/server"
)

const credentialsHelp = `Lists or revokes issued credentials. The filters combine: a credential must
match each one named; revoke refuses to run without one. For a leaked access
key, deactivate the key first, then revoke --access-key: it also ends the STS
sessions the key started (or, for an ASIA... key, that session) and those
they started, whatever other filters name; list --access-key shows them.

revoke --terminate run after a revoke without it ends the sessions of the
credentials that one revoked ("N credentials already revoked, now
terminated").

Exit status: 0 when done. revoke exits 1, saying why on stderr, when nothing
matched the selection (a typo, an id this store never issued, one revoked
already, with --terminate one whose sessions were already to end) and no
session ended: a revoke that matched nothing closed no leak.
list exits 0 when nothing matched ("no live credentials match"): an empty
list is an answer.
`

// runCredentials is `shiftkey credentials list|revoke`: flags and the
// store; package revocation does the rest.
func runCredentials(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, fs, err := verbFlags(args, stderr, "credentials", "credentials: want list or revoke", "list", "revoke")
	if err != nil {
		return err
	}
	configPath := fs.String("config", "", "serve's YAML config file")
	dataDir := fs.String("data-dir", "", "dev's data dir (default: "+pgserver.DefaultHomeHelp()+")")
	var sel revocation.Selection
	fs.StringVar(&sel.Cluster, "cluster", "", "credentials for this cluster")
	fs.StringVar(&sel.Workgroup, "workgroup", "", "credentials for this Serverless workgroup")
	fs.StringVar(&sel.Login, "login", "", "credentials of this login name (e.g. IAM:alice)")
	fs.StringVar(&sel.Principal, "principal", "", "credentials this IAM principal ARN asked for (a user, an assumed-role session; a role's ARN: each of its sessions')")
	fs.StringVar(&sel.ID, "id", "", "the credential with this id")
	fs.StringVar(&sel.AllForPrincipal, "all-for-principal", "", "every credential of this principal ARN and of the role sessions it started, chains included")
	fs.StringVar(&sel.AccessKey, "access-key", "", "every credential issued with this access key ID (AKIA… or ASIA…) and with the role sessions it started, chains included (a leaked key); revoke ends those sessions too")
	terminate := fs.Bool("terminate", false, "revoke: end the open gateway sessions of the revoked credentials too")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: shiftkey credentials %s [flags]\n\n%s\nFlags:\n", verb, credentialsHelp)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *terminate && verb != "revoke" {
		return errors.New("credentials list: --terminate goes with revoke")
	}
	place, err := findTool(*configPath, *dataDir)
	if err != nil {
		return err
	}
	st, err := place.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	f, err := sel.Filter(ctx, st)
	if err != nil {
		return fmt.Errorf("credentials %s: %w", verb, err)
	}
	if verb == "list" {
		return revocation.List(ctx, st, f, server.StoreTime(st), stdout)
	}
	// What went is written only after its audit record: a reader that
	// stops early (| head) must not kill the command before that.
	at := server.StoreTime(st) // this host's clock may be off the replicas'
	var out bytes.Buffer
	done, err := revocation.Revoke(ctx, st, f, at, *terminate, &out)
	defer stdout.Write(out.Bytes())
	// What was done is audited even when a later step failed: sessions
	// ended before the credentials' revocation failed stay ended.
	if len(done.Credentials)+len(done.Sessions)+len(done.Terminated) > 0 {
		if path := place.auditFile(); path != "" {
			if err := auditRevocation(path, place.account(), place.region(), sel, *terminate, done, at); err != nil {
				fmt.Fprintf(stderr, "warning: the revocation is done but not in the audit log: %v\n", err)
			}
		}
	}
	return err
}

// auditRevocation appends the record of a revocation to the audit log at
// path: who ran it, where, what they named and what went.
func auditRevocation(path, account, region string, sel revocation.Selection, terminate bool, done revocation.Revoked, at time.Time) error {
	// Appended to, never created: a file this command made (as root, say)
	// could be one the server cannot open after a rotation.
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("audit log %s: %w (the server creates it)", path, err)
	}
	l, err := audit.Open(path)
	if err != nil {
		return err
	}
	l.Account, l.Region = account, region
	operator := "unknown"
	if u, err := user.Current(); err == nil {
		operator = u.Username
	}
	host, _ := os.Hostname()
	l.Revoked(&audit.Revocation{Time: at, Operator: operator, Host: host, Terminate: terminate, Revoked: done.Credentials, Ended: done.Sessions, Terminated: done.Terminated,
		Selection: map[string]string{"cluster": sel.Cluster, "workgroup": sel.Workgroup, "loginName": sel.Login,
			"principal": sel.Principal, "credentialId": sel.ID, "allForPrincipal": sel.AllForPrincipal, "accessKeyId": sel.AccessKey}})
	if err := l.Err(); err != nil {
		l.Close()
		return err
	}
	return l.Close()
}

// toolPlace is where a command run beside the server finds the server's
// store and audit log: serve's config (--config, read once) or dev's data
// dir (--data-dir, or the default one).
type toolPlace struct {
	cfg     *config.Config // nil: dev's data dir
	dataDir string
}

func findTool(configPath, dataDir string) (toolPlace, error) {
	if configPath != "" {
		if dataDir != "" {
			return toolPlace{}, errors.New("--config and --data-dir: name one")
		}
		cfg, err := config.LoadForTool(configPath)
		return toolPlace{cfg: cfg}, err
	}
	if dataDir == "" {
		d, err := pgserver.DefaultHome()
		if err != nil {
			return toolPlace{}, err
		}
		dataDir = d
	}
	return toolPlace{dataDir: dataDir}, nil
}

func (p toolPlace) openStore(ctx context.Context) (server.Store, error) {
	if p.cfg != nil {
		if err := storeExists(p.cfg.Store); err != nil {
			return nil, err
		}
		return server.OpenToolStore(ctx, p.cfg.Store, slog.New(slog.DiscardHandler))
	}
	return devenv.OpenStore(ctx, p.dataDir, false)
}

// account is the account the server serves: serve's account_id, or
// dev's.
func (p toolPlace) account() string {
	if p.cfg != nil {
		return p.cfg.AccountID
	}
	return shiftkey.DefaultAccountID
}

// region is the server's first served region, its audit log's awsRegion
// where a record names no other (as serve's and dev's logs do).
func (p toolPlace) region() string {
	if p.cfg != nil {
		return p.cfg.RegionOf("") // as serve's log
	}
	return devenv.Region
}

// auditFile is the server's audit log file: serve's audit.file (none when
// it is standard output), or dev's, as its dev.env names it (--audit-file
// may name any file, or off); "" for none.
func (p toolPlace) auditFile() string {
	if p.cfg != nil {
		if f := p.cfg.Audit.File; f != "-" {
			return f
		}
		return ""
	}
	if f, ok, err := devenv.AuditFileOf(p.dataDir); err == nil && ok {
		return f
	}
	// No dev.env (dev never got that far): the default, when it is there.
	f := filepath.Join(p.dataDir, devenv.DefaultAuditFile)
	if _, err := os.Stat(f); err != nil {
		return ""
	}
	return f
}

// storeExists refuses, as dev's data dir does, a store.sqlite that is not
// there (a relative path read from another directory than serve's): a tool
// would create an empty store, and a key beside it, that answer "0
// revoked", or rotate nothing and have the real store's key destroyed.
func storeExists(c config.StoreConfig) error {
	if c.SQLite == "" {
		return nil
	}
	if _, err := os.Stat(c.SQLite); err != nil {
		return fmt.Errorf("no store at %s (is it serve's store.sqlite, read from serve's directory?): %w", c.SQLite, err)
	}
	return nil
}

// openToolStore opens serve's store (--config) or dev's (--data-dir, or
// the default data dir) for a command that runs beside the server.
func openToolStore(ctx context.Context, configPath, dataDir string) (server.Store, error) {
	p, err := findTool(configPath, dataDir)
	if err != nil {
		return nil, err
	}
	return p.openStore(ctx)
}
