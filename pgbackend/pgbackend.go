// Package pgbackend connects gateway sessions to a backend PostgreSQL as
// the mapped role and provisions what a session needs there: auto-created
// users and session-scoped group memberships.
//
// Sessions log in to the backend as the role itself; there is no shared
// login with SET ROLE, which any client could undo with RESET ROLE.
// Provisioning uses a separate admin pool whose search_path is pinned and
// which never sees client startup parameters.
package pgbackend

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/dbname"
	"github.com/shiftkey/shiftkey/relay"
	"github.com/shiftkey/shiftkey/scram"
)

// ManagedRole is the marker role every auto-created user is a member of.
const ManagedRole = "shiftkey_managed"

// Config says where the backend is and how to administer it.
type Config struct {
	Host          string // unix socket directory (starts with "/") or TCP host
	Port          int
	AdminUser     string
	AdminDatabase string // "" → "postgres"
	Logger        *slog.Logger
	// ClientCert, when set, makes every login — sessions as their role,
	// provisioning as AdminUser — a TLS connection to Host:Port with a
	// client certificate whose CN is the role (pg_hba "cert"): no password
	// exists anywhere. RootCAs and ServerName verify the backend; RootCAs
	// and ClientCert are asked at each new connection (serve's reload may
	// replace the CA).
	ClientCert func(role string) (*tls.Certificate, error)
	RootCAs    func() *x509.CertPool
	ServerName string
	// PasswordFor, when set, is the gateway-only password mode: roles that
	// shiftkey manages (members of shiftkey_managed) get a password derived
	// from the gateway's secret, set as a SCRAM verifier when the role is
	// created (or first used), and sessions log in with it over SCRAM
	// (pg_hba: host all +shiftkey_managed <gateway>/32 scram-sha-256). Roles
	// shiftkey does not manage cannot log in this way: they are never altered.
	// The password must be a full-strength secret (GatewayPassword's 256
	// bits): its verifier has one PBKDF2 iteration.
	PasswordFor func(role string) string
	// Grants, when set, records every session grant under Scope before it
	// is made, so Reconcile can revoke what a crash left behind.
	Grants shiftkey.GrantStore
	Scope  string
	// Siblings, when set, are the backends of the other gateways this
	// process serves on the same backend server. A role's memberships are
	// the server's: a group one of them grants for a session is held for
	// its sessions too, so that none revokes a group another's live session
	// holds (their scopes: shiftkey.SessionGrant.Siblings); and a
	// membership one revokes because its group turned unsafe ends the
	// others' sessions of the role too (HearSiblingCut), as another
	// replica's cut does (HearCuts).
	Siblings func() []*Backend
	// Region is Scope's region, which grant and revoke events carry ("":
	// not known).
	Region string
	// Cuts, when set (a store replicas share), hears of every membership
	// this process revokes because its group turned unsafe, so that the
	// other replicas end their sessions of the role (HearCuts), and tells
	// this process of theirs.
	Cuts shiftkey.GroupCutStore
	// MasterUser is the cluster's declared master user; AllowSuperuser lets
	// sessions run as it when it is a superuser (as Redshift's master user
	// is). No other superuser, and never AdminUser, is a session role.
	MasterUser     string
	AllowSuperuser bool
	// Observer, when set, hears of every grant and revoke (the audit log).
	Observer Observer
	// Now is the time grant and revoke records carry (nil: time.Now): the
	// server's, which with replicas sharing PostgreSQL is the store's, so
	// that `audit tail` orders the replicas' records by one clock.
	Now func() time.Time
}

// rootCAs is the pool that verifies the backend now (nil: the system's).
func (c *Config) rootCAs() *x509.CertPool {
	if c.RootCAs == nil {
		return nil
	}
	return c.RootCAs()
}

// PrivilegeError is a provisioning step the backend refused the admin role
// for want of a privilege (SQLSTATE 42501: CREATEROLE revoked, say).
type PrivilegeError struct {
	What string // the step: grant group "g", create role "r"
	Err  error
}

func (e *PrivilegeError) Error() string { return e.Err.Error() }
func (e *PrivilegeError) Unwrap() error { return e.Err }

// privilege is err, as a PrivilegeError for what when the backend refused
// it for want of a privilege.
func privilege(what string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42501" {
		return &PrivilegeError{What: what, Err: err}
	}
	return err
}

// RefusedError is a session role shiftkey will not log in as, with the
// reason to tell the client.
type RefusedError struct{ Role, Reason string }

func (e *RefusedError) Error() string {
	return fmt.Sprintf("role %q is not issued: %s", e.Role, e.Reason)
}

// Backend is one backend PostgreSQL server.
type Backend struct {
	cfg    Config
	admin  *pgxpool.Pool
	logger *slog.Logger

	mu        sync.Mutex
	users     map[string]*userState
	nextSweep int // len(users) at which unused states are dropped
	// live: the leases of each role's live sessions on this process, all
	// of them, told when a group the role holds is revoked as it turned
	// unsafe (cutLocked): the membership is the role's, so any of its
	// sessions may have run SET ROLE to the group, not only those that
	// asked for it. Its own lock: a session without groups ends without
	// the role's lock (Release), which a Prepare may hold for round trips.
	liveMu sync.Mutex
	live   map[string]map[*Lease]struct{}
	// heardUntil: the cuts other replicas recorded that HearCuts read
	// lately, each kept until the time it maps to (heardFor), so that a
	// session whose login was under way as one was read (not yet in live)
	// is ended as it joins live. Under liveMu.
	heardUntil map[shiftkey.GroupCut]time.Time
	// preparing: the logins under way (prepare), whose sessions are not
	// live yet: HearCuts reads the recent cuts of every role for them.
	preparing atomic.Int64
	// unannounced: the cuts (role, group → why, when) announceCut could not
	// record in the store, recorded again at each sweep (announceAgain).
	unannouncedMu sync.Mutex
	unannounced   map[[2]string]unannouncedCut
	now           func() time.Time // for the caches (role exists, groups' verdicts); time.Now outside tests
	// held is the number of (role, group) entries in users' refs: the
	// memberships this process's live sessions hold, whether this process
	// granted them or shares one another replica granted (joinShared).
	// Each replica counts a shared membership once: it is held by each
	// (each keeps a grant record and would revoke it as the last holder).
	// Changed only by hold, releaseLocked and cutLocked (each holding is
	// removed from refs once), so it never goes below zero.
	held atomic.Int64
	// marked: the marker role is known to exist. A backend unreachable at
	// New is made later, by the first Prepare that reaches it.
	marked atomic.Bool

	// opened: the backend processes this process logged in (pid → role),
	// kept when grants are recorded, pruned by Reconcile to those still
	// running. Reconcile does not count them as sessions that may need a
	// leftover grant: this process's sessions that need a group hold it
	// in refs, and the others, and its pooled backends, do not.
	openedMu sync.Mutex
	opened   map[uint32]string

	// outlivesSeen: outlives' recent answers by group (outlivesFor);
	// unsafeSeen: unsafe's, for the re-checks of memberships held.
	outlivesMu   sync.Mutex
	outlivesSeen map[string]outlivesAnswer
	unsafeSeen   map[string]outlivesAnswer
	// risks: each database's recent dbRisk, read under risksMu.
	risksMu sync.Mutex
	risks   map[string]dbRisk

	nudges nudger
}

// maxUserStates bounds the roles whose state the backend keeps: past it,
// the states no one uses are dropped (see Backend.user). A dropped state
// costs its role's next login a round trip or two (the role-exists check,
// the gateway-only password set again). A variable for tests.
var maxUserStates = 4096

// userState serializes provisioning of one role and counts, per group, the
// live sessions that asked for it.
type userState struct {
	// users counts the callers between Backend.user and Backend.done: a
	// state in use, or whose refs hold a group, is never dropped (a
	// Release would otherwise find a fresh state and revoke a group other
	// sessions still hold). Guarded by Backend.mu.
	users int
	mu    roleLock
	// refs: the groups this process holds for the role's sessions. A
	// membership revoked because its group turned unsafe (cutLocked)
	// leaves refs; the leases that held it then skip it at their release,
	// as their holding is no longer the one in refs.
	refs        map[string]*holding
	passwordSet bool      // the gateway-only password was (re)set by this process
	existsAt    time.Time // when the role was last seen to exist (zero: not known)
	facts       roleFacts // what the role was when last seen
}

// holding is role's membership of a group, held by n of its sessions on
// this process (each lease that holds it points to it). Guarded by the
// role's lock. Which sessions hold it need not be kept: a cut ends every
// live session of the role (live), and a lease leaves live before it
// releases its groups.
type holding struct{ n int }

// roleLock serializes the provisioning of one role, as a mutex would, but
// a login waits for it no longer than its own context: the holder may be
// waiting on a backend that stopped answering (a session's revoke, bounded
// by releaseTimeout), and the login must fail at its deadline, telling its
// client, rather than hang past it.
type roleLock chan struct{}

func (l roleLock) Lock()   { l <- struct{}{} }
func (l roleLock) Unlock() { <-l }

// LockContext is Lock, or ctx's error once ctx is done first.
func (l roleLock) LockContext(ctx context.Context) error {
	select {
	case l <- struct{}{}:
		return nil
	default:
	}
	select {
	case l <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the role's other logins and session ends: %w", context.Cause(ctx))
	}
}

// releaseTimeout bounds the round trips of a lease's Release (the revokes
// of its groups), which holds the role's lock: against a backend that
// stopped answering, the revoke fails (its grant left recorded for
// Reconcile) instead of holding the role's logins for good.
const releaseTimeout = 10 * time.Second

// roleExistsTTL is how long a positive "role exists" answer spares Prepare
// its admin query, a round trip on every login otherwise. Negative answers
// are never cached: AutoCreate must create the role at once.
//
// A role dropped out-of-band within the window is still taken to exist: the
// backend login then fails with 'role "…" does not exist' (what the client
// would see without AutoCreate anyway), and that failure (Connect) or a
// failed GRANT makes the next Prepare ask again.
const roleExistsTTL = 10 * time.Second

// New opens the admin pool and makes sure the marker role exists.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if cfg.AdminDatabase == "" {
		cfg.AdminDatabase = "postgres"
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// The backend's own host, port, user and database in the string the
	// environment completes, so that a passfile line (PGPASSFILE, ~/.pgpass)
	// for them gives the admin's password, as libpq's would: parsed from "",
	// the lookup matched the defaults (the OS user, port 5432) instead.
	pc, err := pgxpool.ParseConfig(connString(cfg.Host, cfg.Port, cfg.AdminUser, cfg.AdminDatabase))
	if err != nil {
		return nil, err
	}
	pc.ConnConfig.Host = cfg.Host
	pc.ConnConfig.Port = uint16(cfg.Port)
	pc.ConnConfig.User = cfg.AdminUser
	pc.ConnConfig.Database = cfg.AdminDatabase
	pc.ConnConfig.TLSConfig = nil
	if cfg.ClientCert != nil {
		adminTLS := func() (*tls.Config, error) {
			cert, err := cfg.ClientCert(cfg.AdminUser)
			if err != nil {
				return nil, fmt.Errorf("admin client certificate: %w", err)
			}
			return &tls.Config{Certificates: []tls.Certificate{*cert}, RootCAs: cfg.rootCAs(), ServerName: cfg.ServerName, MinVersion: tls.VersionTLS12}, nil
		}
		if pc.ConnConfig.TLSConfig, err = adminTLS(); err != nil {
			return nil, err
		}
		// Each new admin connection with the CA of the moment.
		pc.BeforeConnect = func(_ context.Context, cc *pgx.ConnConfig) error {
			c, err := adminTLS()
			cc.TLSConfig = c
			return err
		}
	}
	pc.ConnConfig.Fallbacks = nil
	pc.ConnConfig.RuntimeParams = map[string]string{"search_path": "pg_catalog", "application_name": "shiftkey-admin"}
	pc.MaxConns = 4
	// An idle admin connection the backend ended (a restart, a
	// pg_terminate_backend) has its FATAL or EOF waiting: one recv that
	// does not wait finds it, and the pool opens another instead. The
	// pool's own ping spares only connections idle a second or more, and
	// a busy gateway's are idle less: the first logins after a restart
	// failed on them.
	pc.PrepareConn = func(_ context.Context, c *pgx.Conn) (bool, error) {
		return relay.ConnAlive(c.PgConn().Conn()), nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("backend admin pool: %w", err)
	}
	b := &Backend{cfg: cfg, admin: pool, logger: logger, users: map[string]*userState{}, now: time.Now}
	if err := b.ensureMarker(ctx); err != nil {
		// A database that is down or starting up must not keep a replica
		// from starting (a restart or a new replica while one cluster's
		// database is down): the gateway serves, its logins fail until the
		// database answers, and /readyz names it. Anything else (a refused admin login, a
		// missing privilege) is the configuration's and stops the start.
		if !unreachable(err) && !startingUp(err) {
			pool.Close()
			return nil, err
		}
		logger.Warn("backend unreachable: the gateway starts without it, and its logins fail until it answers", "error", err)
	}
	return b, nil
}

// unreachable reports whether err is a failure to connect at all (not an
// answer of the server's).
func unreachable(err error) bool {
	var ce *pgconn.ConnectError
	var pe *pgconn.PgError
	return errors.As(err, &ce) && !errors.As(err, &pe)
}

// cannotConnectNow is the SQLSTATE of a server that refuses connections
// for now: starting up, in recovery, shutting down.
const cannotConnectNow = "57P03"

// startingUp reports whether err is the backend's 57P03, to a session's
// login (StartupError) or to an admin connection (PgError).
func startingUp(err error) bool {
	if se, ok := errors.AsType[*StartupError](err); ok {
		return se.Response.Code == cannotConnectNow
	}
	pe, ok := errors.AsType[*pgconn.PgError](err)
	return ok && pe.Code == cannotConnectNow
}

// startupRetry is the pause between a login's tries of a backend that is
// starting up.
const startupRetry = 250 * time.Millisecond

// whileStartingUp runs try, and again every startupRetry while it fails
// with the backend's 57P03, until ctx's deadline: a login during a restart
// or failover of the backend waits for it instead of failing, within the
// login's own time. Near the deadline (or with none) it stops with that
// 57P03 as a StartupError, the backend's own answer, which the gateway
// relays to the client.
func (b *Backend) whileStartingUp(ctx context.Context, try func() error) error {
	waited := false
	for {
		err := try()
		if err == nil || !startingUp(err) {
			if waited && err == nil {
				b.logger.InfoContext(ctx, "backend accepts connections again; the login went on")
			}
			return err
		}
		dl, ok := ctx.Deadline()
		if !ok || time.Until(dl) < 2*startupRetry {
			return asStartupError(err)
		}
		if !waited {
			waited = true
			b.logger.InfoContext(ctx, "backend is starting up: the login waits for it", "error", err)
		}
		t := time.NewTimer(startupRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return asStartupError(err)
		case <-t.C:
		}
	}
}

// asStartupError is err, a 57P03 (startingUp), as the backend's answer.
func asStartupError(err error) error {
	if _, ok := errors.AsType[*StartupError](err); ok {
		return err
	}
	pe, _ := errors.AsType[*pgconn.PgError](err)
	return &StartupError{Response: &pgproto3.ErrorResponse{Severity: pe.Severity, SeverityUnlocalized: pe.Severity,
		Code: pe.Code, Message: pe.Message, Detail: pe.Detail, Hint: pe.Hint}}
}

// Close closes the admin pool, once a nudge its last REVOKE left pending
// is made.
func (b *Backend) Close() {
	if b.nudges.stop() {
		b.nudge()
	}
	b.admin.Close()
}

func quote(name string) string { return pgx.Identifier{name}.Sanitize() }

func (b *Backend) ensureMarker(ctx context.Context) error {
	if b.marked.Load() {
		return nil
	}
	// Looked up first: a CREATE that meets the role (every start but the
	// first) would leave an ERROR in the database's log each time.
	var exists bool
	err := b.admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", ManagedRole).Scan(&exists)
	if err == nil && !exists {
		_, err = b.admin.Exec(ctx, "CREATE ROLE "+quote(ManagedRole)+" NOLOGIN")
	}
	if err != nil && !isDuplicate(err) { // a duplicate: another replica made it meanwhile
		return fmt.Errorf("create marker role: %w", err)
	}
	b.marked.Store(true)
	return nil
}

func isDuplicate(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "42710" || pe.Code == "23505")
}

// user returns role's state, for use until done(u).
func (b *Backend) user(role string) *userState {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, ok := b.users[role]
	if !ok {
		if len(b.users) >= max(b.nextSweep, maxUserStates) {
			b.sweepLocked()
		}
		u = &userState{refs: map[string]*holding{}, mu: make(roleLock, 1)}
		b.users[role] = u
	}
	u.users++
	return u
}

// done ends a use of u that user began.
func (b *Backend) done(u *userState) {
	b.mu.Lock()
	u.users--
	b.mu.Unlock()
}

// sweepLocked drops the states no one uses and whose role holds no group
// for a session. The next sweep waits until the map has doubled (or
// reached the bound), so states in use cannot make every login sweep.
// b.mu is held; a state with users == 0 is not locked by anyone, so its
// refs can be read.
func (b *Backend) sweepLocked() {
	for role, u := range b.users {
		if u.users == 0 && len(u.refs) == 0 {
			delete(b.users, role)
		}
	}
	b.nextSweep = 2 * len(b.users)
}

// Lease is what one session holds in the backend: the groups granted for
// it. Release gives them back; the last session holding a group revokes it.
type Lease struct {
	b      *Backend
	role   string
	groups []leaseGroup
	// origin is the session Prepare was called for (its context's
	// shiftkey.SessionOrigin): the grants and revokes it causes are its.
	origin shiftkey.SessionOrigin
	// start is when Prepare began (recordTime: the store's clock with a
	// shared store), before the session's backend login: a session that
	// began after another replica's cut (HearCuts) could not SET ROLE to
	// the group.
	start time.Time
	once  sync.Once

	// cutMu guards onCut and cut: the first of the lease's groups revoked
	// as it turned unsafe (cutLocked), and why, told to onCut once.
	cutMu       sync.Mutex
	onCut       func(group, why string)
	cut, cutWhy string
}

// OnGroupCut sets what the lease's session is told when one of its groups
// is revoked as it turned unsafe while held (at once if one already was),
// once: the gateway ends the session, which may have run SET ROLE to the
// group and would keep acting as it after the REVOKE. f must not block:
// it may be called under the role's lock.
func (l *Lease) OnGroupCut(f func(group, why string)) {
	l.cutMu.Lock()
	l.onCut = f
	group, why := l.cut, l.cutWhy
	l.cutMu.Unlock()
	if group != "" {
		f(group, why)
	}
}

// tellCut tells the lease's session (OnGroupCut) that group was revoked
// as it turned unsafe, unless it was told of another already, and
// reports whether this call told it.
func (l *Lease) tellCut(group, why string) bool {
	l.cutMu.Lock()
	if l.cut != "" {
		l.cutMu.Unlock()
		return false
	}
	l.cut, l.cutWhy = group, why
	f := l.onCut
	l.cutMu.Unlock()
	if f != nil {
		f(group, why)
	}
	return true
}

// leaseGroup is a group a lease holds, and the holding it counts in.
type leaseGroup struct {
	name string
	h    *holding
}

// Notice is a message for the client about something skipped.
type Notice struct{ Message string }

// Prepare provisions a session of role: creates the role when autoCreate is
// set and it does not exist, and grants each of groups that is a group role
// (NOLOGIN, not superuser, not a predefined pg_ role). Groups that are not
// are skipped with a notice; so are groups the role already belongs to on
// its own, which are then never revoked.
func (b *Backend) Prepare(ctx context.Context, role string, autoCreate bool, groups []string) (*Lease, []Notice, error) {
	var lease *Lease
	var notices []Notice
	err := b.whileStartingUp(ctx, func() (err error) {
		lease, notices, err = b.prepare(ctx, role, autoCreate, groups)
		return err
	})
	return lease, notices, err
}

func (b *Backend) prepare(ctx context.Context, role string, autoCreate bool, groups []string) (*Lease, []Notice, error) {
	if role == b.cfg.AdminUser {
		return nil, nil, &RefusedError{role, "it is shiftkey's provisioning role"}
	}
	if err := b.ensureMarker(ctx); err != nil { // unreachable at New
		return nil, nil, err
	}
	// Counted before start is read: a cut HearCuts reads while this
	// login is under way is kept for it (heardUntil) even when no
	// session is live.
	b.preparing.Add(1)
	defer b.preparing.Add(-1)
	start := b.recordTime()
	u := b.user(role)
	defer b.done(u)
	if err := u.mu.LockContext(ctx); err != nil {
		return nil, nil, err
	}
	defer u.mu.Unlock()

	exists := !u.existsAt.IsZero() && b.now().Sub(u.existsAt) < roleExistsTTL
	if !exists {
		checked := b.now()
		var err error
		if exists, u.facts, err = b.roleExists(ctx, role); err != nil {
			return nil, nil, err
		}
		if !exists && autoCreate {
			// PUBLIC only, as Redshift's AutoCreate: no privileges, no password.
			_, err := b.admin.Exec(ctx, "CREATE ROLE "+quote(role)+" LOGIN IN ROLE "+quote(ManagedRole))
			if err != nil && !isDuplicate(err) {
				return nil, nil, privilege(fmt.Sprintf("create role %q", role), fmt.Errorf("create role: %w", err))
			}
			if err == nil {
				// A new role has no password, even if this process had set
				// one on a role of that name that was dropped since.
				u.passwordSet = false
			} else if _, u.facts, err = b.roleExists(ctx, role); err != nil {
				// Created by someone else meanwhile: as they made it.
				return nil, nil, err
			}
			b.logger.InfoContext(ctx, "backend role created", "db_user", role)
			exists = true
		}
		if exists {
			u.existsAt = checked
		}
	}
	if exists && u.facts.provisioner {
		// SET ROLE would make the session shiftkey's provisioning role.
		// Asked again next time, as a REVOKE shows at once.
		u.existsAt = time.Time{}
		return nil, nil, &RefusedError{role, fmt.Sprintf("it is a member of %q, shiftkey's provisioning role, and could SET ROLE to it", b.cfg.AdminUser)}
	}
	if exists && (u.facts.super || u.facts.superLevel != "") && !(b.cfg.AllowSuperuser && role == b.cfg.MasterUser) {
		why := "it is a superuser"
		if !u.facts.super {
			why = u.facts.superLevel
			u.existsAt = time.Time{} // asked again next time: a REVOKE shows at once
		}
		return nil, nil, &RefusedError{role, why + ", and only the cluster's master user may be one where the configuration allows it"}
	}
	if exists && u.facts.noLogin {
		// PostgreSQL would refuse the login; refused here, before its
		// groups are granted to the role and so to every member of it.
		// Asked again next time: an ALTER ROLE … LOGIN shows at once.
		u.existsAt = time.Time{}
		return nil, nil, &RefusedError{role, "it cannot log in (NOLOGIN): a group role, not a user"}
	}
	if exists && b.cfg.PasswordFor != nil && !u.passwordSet {
		managed, err := b.isManaged(ctx, role)
		if err != nil {
			return nil, nil, err
		}
		if managed {
			if err := b.setPassword(ctx, role); err != nil {
				return nil, nil, privilege(fmt.Sprintf("set the gateway password of role %q", role), fmt.Errorf("set gateway password: %w", err))
			}
		}
		u.passwordSet = true
	}
	origin, _ := shiftkey.SessionOriginFrom(ctx)
	lease := &Lease{b: b, role: role, origin: origin, start: start}
	if !exists {
		// The login will fail with "role does not exist" from the backend,
		// unless the role is created before it (another login's
		// AutoCreate): then it is a session of the role like any other,
		// which a cut must reach.
		b.addLive(lease)
		return lease, nil, nil
	}
	var notices []Notice
	for _, g := range groups {
		var notice string
		var err error
		if h := u.refs[g]; h != nil {
			notice, err = b.rejoin(ctx, u, lease, h, role, g, origin)
		} else {
			notice, err = b.join(ctx, u, lease, role, g, origin)
		}
		if err != nil {
			// The groups granted so far are revoked, even when what failed
			// was the login's deadline.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
			b.releaseLocked(rctx, u, lease)
			cancel()
			return nil, nil, err
		}
		if notice != "" {
			notices = append(notices, Notice{Message: notice})
		}
	}
	// Added once its groups are settled: a revoke during this Prepare
	// (rejoin's) happened before the session could SET ROLE to anything.
	b.addLive(lease)
	return lease, notices, nil
}

// addLive records l among its role's live sessions (live), and tells it
// of a cut another replica made since its login began, which HearCuts
// read before l was live.
func (b *Backend) addLive(l *Lease) {
	b.liveMu.Lock()
	if b.live == nil {
		b.live = map[string]map[*Lease]struct{}{}
	}
	m := b.live[l.role]
	if m == nil {
		m = map[*Lease]struct{}{}
		b.live[l.role] = m
	}
	m[l] = struct{}{}
	var cut *shiftkey.GroupCut
	for c := range b.heardUntil {
		if c.Role == l.role && l.began(&c) {
			cut = &c
			break
		}
	}
	b.liveMu.Unlock()
	if cut != nil {
		b.endSessions(context.Background(), l.role, cut.Group, cut.Reason, []*Lease{l})
	}
}

// dropLive forgets l, whose session ended.
func (b *Backend) dropLive(l *Lease) {
	b.liveMu.Lock()
	defer b.liveMu.Unlock()
	if m := b.live[l.role]; m != nil {
		delete(m, l)
		if len(m) == 0 {
			delete(b.live, l.role)
		}
	}
}

// liveOf is a copy of role's live leases.
func (b *Backend) liveOf(role string) []*Lease {
	b.liveMu.Lock()
	defer b.liveMu.Unlock()
	out := make([]*Lease, 0, len(b.live[role]))
	for l := range b.live[role] {
		out = append(out, l)
	}
	return out
}

// rejoin makes the lease hold role's membership of group, which h holds
// for other sessions of role on this process, after judging the group
// again (unsafeCached: what a login costs is a look per group every 5 s at
// most): a group may have turned unsafe since it was granted. The
// membership is the role's, so refusing it to this session alone would
// change nothing: one that turned unsafe is revoked at once, for every
// session of the role, and this one is told why. Failing to revoke it
// fails the login.
func (b *Backend) rejoin(ctx context.Context, u *userState, lease *Lease, h *holding, role, g string, origin shiftkey.SessionOrigin) (notice string, err error) {
	why, err := b.unsafeCached(ctx, b.admin, g)
	if err != nil {
		return "", err
	}
	if why != "" {
		return unsafeNotice(role, g, why), b.cutLocked(ctx, u, role, g, why, origin)
	}
	h.n++
	lease.groups = append(lease.groups, leaseGroup{g, h})
	return "", nil
}

// join makes the lease hold role's membership of group, which no session
// of role on this process holds: granted, or shared with another
// replica's sessions, or a notice why not. It holds the membership's lock
// (lockMembership) throughout, so that what it finds is not another
// replica's membership in the middle of being revoked.
func (b *Backend) join(ctx context.Context, u *userState, lease *Lease, role, g string, origin shiftkey.SessionOrigin) (notice string, err error) {
	q, unlock, err := b.lockMembership(ctx, role, g)
	if err != nil {
		return "", err
	}
	defer unlock()
	ok, why, member, err := b.grantable(ctx, q, role, g)
	if err != nil {
		return "", err
	}
	if member && why != whyMember && b.sharedElsewhere(ctx, role, g) {
		// Another replica's sessions hold a membership whose group turned
		// unsafe since it was granted: it goes, for theirs too.
		if err := b.revokeUnsafe(ctx, q, role, g, why, origin); err != nil {
			return "", err
		}
		return unsafeNotice(role, g, why), nil
	}
	if !ok && why == whyMember {
		// Another replica's session may hold it: then share it.
		shared, err := b.joinShared(ctx, role, g)
		if err != nil {
			return "", err
		}
		if shared {
			b.hold(u, lease, g)
			return "", nil
		}
	}
	if !ok {
		return shiftkey.NotJoinedNotice(g) + ": " + why, nil
	}
	if err := b.record(ctx, role, g); err != nil {
		return "", err
	}
	made, err := b.grant(ctx, q, role, g)
	if err != nil {
		u.existsAt = time.Time{} // perhaps the role was dropped: ask again next time
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42501" {
			b.forget(ctx, role, g) // refused: surely not granted
		}
		return "", privilege(fmt.Sprintf("grant group %q", g), fmt.Errorf("grant %s: %w", g, err))
	}
	if !made {
		// Granted by someone else since grantable looked: another
		// replica's session (its record came first), shared as
		// joinShared would; anyone else's is the role's own. Not knowing
		// (a store error), the login fails, as joinShared's: taken for a
		// replica's, an operator's grant would go with this session.
		held, err := b.othersHold(ctx, role, g)
		if err != nil {
			b.forget(ctx, role, g)
			return "", fmt.Errorf("grant holders lookup: %w", err)
		}
		if held {
			b.logger.InfoContext(ctx, "group shared with another replica's sessions", "db_user", role, "group", g)
			b.hold(u, lease, g)
			return "", nil
		}
		b.forget(ctx, role, g)
		return shiftkey.NotJoinedNotice(g) + ": " + whyMember, nil
	}
	b.logger.InfoContext(ctx, "group granted", "db_user", role, "group", g)
	b.observe(role, g, true, origin, "")
	b.hold(u, lease, g)
	return "", nil
}

// membershipLockKey is the advisory lock key of role's membership of
// group: a hash (two memberships that collide only wait for each other).
func membershipLockKey(role, group string) int64 {
	h := fnv.New64a()
	h.Write([]byte("shiftkey membership\x00" + role + "\x00" + group))
	return int64(h.Sum64())
}

// adminQuerier is the admin pool, or one of its connections.
type adminQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Begin(ctx context.Context) (pgx.Tx, error)
}

// lockMembership takes, on the backend, the lock every replica takes
// before it judges or changes role's membership of group for sessions (a
// session advisory lock on an admin connection, which it returns for the
// work). Without it, a replica could find the membership that another
// replica, releasing its last session, was revoking at that moment, take
// it for one to share or for the role's own, and its session would lose
// the group when the REVOKE committed. Each call locks one membership and
// unlock is called before the next, so replicas cannot deadlock on them.
func (b *Backend) lockMembership(ctx context.Context, role, group string) (adminQuerier, func(), error) {
	conn, err := b.admin.Acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	key := membershipLockKey(role, group)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		conn.Release()
		return nil, nil, fmt.Errorf("lock membership of %s in %s: %w", role, group, err)
	}
	return conn, func() {
		// Not the caller's context, which may be done: the lock must go.
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, "SELECT pg_advisory_unlock($1)", key); err != nil {
			conn.Conn().Close(uctx) // the session's end releases its locks
		}
		conn.Release()
	}, nil
}

// hold makes group, which role's sessions on this process did not hold, the
// lease's: granted by it, or shared with another replica. u.mu is held.
// releaseLocked undoes it (held.Add(-1), once its REVOKE ran) for every
// group whose refs reach zero, and cutLocked for one that turned unsafe,
// so every group entering refs must come through here.
func (b *Backend) hold(u *userState, l *Lease, group string) {
	h := &holding{n: 1}
	u.refs[group] = h
	b.held.Add(1)
	l.groups = append(l.groups, leaseGroup{group, h})
}

// isManaged reports whether role is a member of the marker role.
func (b *Backend) isManaged(ctx context.Context, role string) (bool, error) {
	var ok bool
	err := b.admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m
		JOIN pg_catalog.pg_roles r ON r.oid = m.member JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
		WHERE r.rolname = $1 AND g.rolname = $2)`, role, ManagedRole).Scan(&ok)
	return ok, err
}

// roleFacts is what Prepare reads of a session role.
type roleFacts struct {
	super   bool // a superuser
	noLogin bool // cannot log in (NOLOGIN)
	// superLevel says why the role, not a superuser, can gain
	// superuser-level access as PostgreSQL documents it, or "": it belongs
	// (directly or through others) to a superuser, to
	// pg_execute_server_program, pg_write_server_files or
	// pg_read_server_files (files and programs as the server's OS user),
	// or, on PostgreSQL 15 and older, it or a role it belongs to has
	// CREATEROLE, which there grants any non-superuser role, those
	// included. Not read for a superuser, which PostgreSQL counts a member
	// of every role.
	superLevel string
	// provisioner: the role belongs to the provisioning role, which SET
	// ROLE would make the session.
	provisioner bool
}

// superLevelRoles are the predefined roles PostgreSQL documents as able to
// gain superuser-level access.
const superLevelRoles = `'pg_execute_server_program', 'pg_write_server_files', 'pg_read_server_files'`

// roleExists reports whether role exists, and what it is.
func (b *Backend) roleExists(ctx context.Context, role string) (exists bool, f roleFacts, err error) {
	var canLogin, ownCreateRole bool
	var via *string
	var provisioner *bool
	err = b.admin.QueryRow(ctx, `WITH v AS (SELECT current_setting('server_version_num')::int < 160000 AS createrole_grants_any)
		SELECT r.rolsuper, r.rolcanlogin, r.rolcreaterole AND v.createrole_grants_any,
			(`+rolesAbove("r.oid")+` SELECT p.rolname FROM above JOIN pg_catalog.pg_roles p ON p.oid = above.oid
			        WHERE p.oid <> r.oid AND (p.rolsuper OR p.rolname IN (`+superLevelRoles+`) OR p.rolcreaterole AND v.createrole_grants_any)
			        ORDER BY p.rolsuper DESC, p.rolname LIMIT 1),
			(`+rolesAbove("r.oid")+` SELECT a.oid = r.oid OR a.oid IN (SELECT oid FROM above) FROM pg_catalog.pg_roles a WHERE a.rolname = $2)
		FROM pg_catalog.pg_roles r, v WHERE r.rolname = $1`, role, b.cfg.AdminUser).Scan(&f.super, &canLogin, &ownCreateRole, &via, &provisioner)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, roleFacts{}, nil
	}
	if err != nil {
		return false, roleFacts{}, fmt.Errorf("look up role: %w", err)
	}
	f.noLogin = !canLogin
	switch {
	case f.super:
	case ownCreateRole:
		f.superLevel = "it has CREATEROLE, with which on PostgreSQL 15 and older it can grant itself any non-superuser role, pg_execute_server_program included"
	case via != nil:
		f.superLevel = fmt.Sprintf("it is a member of role %q, which can gain superuser-level access (a superuser, a server files or programs role, or CREATEROLE on PostgreSQL 15 and older)", *via)
	}
	f.provisioner = !f.super && provisioner != nil && *provisioner
	return true, f, nil
}

// rolesAbove is a WITH clause naming "above" the oids of the roles that
// role (an SQL expression of a role's oid) belongs to, directly or
// through others: pg_has_role(role, …, 'MEMBER') for a role that is no
// superuser, but read from pg_auth_members by the statement. pg_has_role
// answers from the connection's cache of the last role it was asked
// about, which PostgreSQL can fill with the memberships as they were
// before a change that committed while it was being filled, and then
// keeps until the next membership change on the server: on the admin
// pool's long-lived connections, a group just made a member of
// pg_read_server_files was judged safe again and again.
func rolesAbove(role string) string {
	return `WITH RECURSIVE above(oid) AS (SELECT m.roleid FROM pg_catalog.pg_auth_members m WHERE m.member = ` + role + `
			UNION SELECT m.roleid FROM pg_catalog.pg_auth_members m JOIN above ON m.member = above.oid)`
}

// groupFacts is what grantable reads of a group itself: its attributes,
// and the roles it belongs to.
type groupFacts struct {
	canLogin, super, createRole, createDB, bypassRLS, replication, predefined bool
	// via: a role the group belongs to, directly or through others, that
	// is not a plain group either. A member of the group may SET ROLE to
	// it (another user, or a role whose attributes then apply).
	via *string
}

// groupFactsColumns select a groupFacts of pg_roles g (scanned by dest).
var groupFactsColumns = `g.rolcanlogin, g.rolsuper, g.rolcreaterole, g.rolcreatedb, g.rolbypassrls, g.rolreplication,
			EXISTS (` + rolesAbove("g.oid") + ` SELECT 1 FROM above JOIN pg_catalog.pg_roles p ON p.oid = above.oid
			        WHERE p.rolname LIKE 'pg\_%' AND p.oid <> g.oid),
			(` + rolesAbove("g.oid") + ` SELECT p.rolname FROM above JOIN pg_catalog.pg_roles p ON p.oid = above.oid
			        WHERE p.oid <> g.oid AND (p.rolcanlogin OR p.rolsuper OR p.rolcreaterole OR p.rolcreatedb OR p.rolbypassrls OR p.rolreplication)
			        ORDER BY p.rolname LIMIT 1)`

func (f *groupFacts) dest() []any {
	return []any{&f.canLogin, &f.super, &f.createRole, &f.createDB, &f.bypassRLS, &f.replication, &f.predefined, &f.via}
}

// why says why group, with facts f, is no plain group role, or "".
func (f *groupFacts) why(b *Backend, group string) string {
	var attrs []string
	for _, a := range []struct {
		on   bool
		name string
	}{{f.canLogin, "LOGIN"}, {f.super, "SUPERUSER"}, {f.createRole, "CREATEROLE"}, {f.createDB, "CREATEDB"}, {f.bypassRLS, "BYPASSRLS"}, {f.replication, "REPLICATION"}} {
		if a.on {
			attrs = append(attrs, a.name)
		}
	}
	switch {
	case b.reserved(group):
		return "it is not a group role"
	case len(attrs) > 0:
		return "it is not a plain group role (" + strings.Join(attrs, ", ") + ")"
	case f.predefined:
		return "it is a member of a predefined pg_ role"
	case f.via != nil:
		return fmt.Sprintf("it is a member of role %q, which is not a plain group role", *f.via)
	}
	return ""
}

// reserved reports whether group is a role no session is granted by
// name: PostgreSQL's, or shiftkey's own.
func (b *Backend) reserved(group string) bool {
	return strings.HasPrefix(group, "pg_") || group == ManagedRole || group == b.cfg.AdminUser
}

// grantable reports whether group may be granted to role for a session:
// a plain group role, carrying no attribute that would lift the session
// above what its grants give (LOGIN, SUPERUSER, CREATEROLE, CREATEDB,
// BYPASSRLS, REPLICATION), and not a member, directly or through other
// roles, of a predefined pg_ role (pg_execute_server_program, …). member
// says whether role already belongs to it: then why is whyMember, or why
// the group is unsafe to hold (unsafe's reasons), which the caller must
// not overlook for a membership another replica's sessions hold.
func (b *Backend) grantable(ctx context.Context, q adminQuerier, role, group string) (ok bool, why string, member bool, err error) {
	if len(group) > dbname.MaxIdentifier {
		// PostgreSQL would read it as its first 63 bytes, another role's
		// name (a RedshiftDbRoles tag is not held to Redshift's rule).
		return false, fmt.Sprintf("its name is longer than %d bytes, which the backend would truncate to another name", dbname.MaxIdentifier), false, nil
	}
	var f groupFacts
	// heir: a role that belongs to role itself (besides the gateway's own
	// admin, which PostgreSQL 16 makes a member of the roles it creates):
	// the group granted to role would reach it too.
	var heir *string
	err = q.QueryRow(ctx, `SELECT `+groupFactsColumns+`,
			EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles r ON r.oid = m.member
			        WHERE m.roleid = g.oid AND r.rolname = $2),
			(SELECT r.rolname FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles r ON r.oid = m.member
			        JOIN pg_catalog.pg_roles u ON u.oid = m.roleid
			        WHERE u.rolname = $2 AND r.rolname <> $3 ORDER BY r.rolname LIMIT 1)
		FROM pg_catalog.pg_roles g WHERE g.rolname = $1`, group, role, b.cfg.AdminUser).Scan(append(f.dest(), &member, &heir)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, "it does not exist", false, nil
	}
	if err != nil {
		return false, "", false, fmt.Errorf("look up group: %w", err)
	}
	if b.reserved(group) {
		// Never a session's grant, whatever the role belongs to (every
		// managed role is a member of ManagedRole).
		member = false
	}
	if why := f.why(b, group); why != "" {
		return false, why, member, nil
	}
	if !member && heir != nil {
		return false, fmt.Sprintf("role %q is a member of %s and would get it too", *heir, role), false, nil
	}
	if why, err := b.outlivesCached(ctx, q, group); err != nil || why != "" {
		return false, why, member, err
	}
	if member {
		return false, whyMember, true, nil
	}
	return true, "", false, nil
}

// unsafe says why role's membership of group, granted for sessions, must
// not be held any longer, or "": the group-level checks of grantable
// (facts and outlives), which may fail after the grant (an administrator
// gives the group CREATE on a schema, or makes it a member of a LOGIN
// role). A group that is gone leaves no membership to hold.
func (b *Backend) unsafe(ctx context.Context, q adminQuerier, group string) (string, error) {
	var f groupFacts
	err := q.QueryRow(ctx, `SELECT `+groupFactsColumns+` FROM pg_catalog.pg_roles g WHERE g.rolname = $1`, group).Scan(f.dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("check group %s: %w", group, err)
	}
	if why := f.why(b, group); why != "" {
		return why, nil
	}
	// Not outlivesCached: its answer may be as old as ours (a re-check
	// should be no staler than dbRisks' cache makes it), and it refuses a
	// group over a database that cannot be read, which says nothing new
	// of a membership already held.
	return b.outlives(ctx, q, group, true)
}

// unsafeCached is unsafe, its answer reused for outlivesFor: a login
// joining a membership held for another session, and the sweep, re-check
// it at no more cost than one look per group every outlivesFor.
func (b *Backend) unsafeCached(ctx context.Context, q adminQuerier, group string) (string, error) {
	return b.seenFor(&b.unsafeSeen, group, func() (string, error) { return b.unsafe(ctx, q, group) })
}

// unsafeNotice tells a session that asked for group why it does not get
// it, and that role's other sessions lost it too.
func unsafeNotice(role, group, why string) string {
	return fmt.Sprintf("%s, and revoked from %s for its other sessions too, as it turned unsafe since it was granted: %s", shiftkey.NotJoinedNotice(group), role, why)
}

// sharedElsewhere reports whether another replica records role's
// membership of group for its sessions, live or lapsed. A store error
// answers no: the membership may be the role's own, an operator's grant
// that a session must not revoke (that replica's own re-check revokes its
// grant).
func (b *Backend) sharedElsewhere(ctx context.Context, role, group string) bool {
	held, err := b.othersHold(ctx, role, group)
	if err == nil && !held {
		held, err = b.othersLapsed(ctx, role, group)
	}
	if err != nil {
		b.logger.ErrorContext(ctx, "grant holders lookup failed", "db_user", role, "group", group, "error", err)
		return false
	}
	return held
}

// cutLocked revokes role's membership of group, which this process holds
// for sessions and which turned unsafe (why): the leases that hold it no
// longer count (refs loses it), their sessions lose the group at their
// next privilege check, and they and the role's other sessions here are
// ended (tellCut), as one that ran SET ROLE to the group would keep
// acting as it. They are ended even when the membership is already gone
// (another replica revoked it) or the REVOKE fails: the role held the
// group all the same. u.mu is held.
func (b *Backend) cutLocked(ctx context.Context, u *userState, role, group, why string, origin shiftkey.SessionOrigin) error {
	if u.refs[group] != nil {
		delete(u.refs, group)
		// Counted held until the REVOKE below ran, as at a release.
		defer b.held.Add(-1)
		// Every session of the role here, those that held it and the
		// others, and through the other gateways on the server: any of
		// them may have run SET ROLE to the group meanwhile.
		b.endSessions(ctx, role, group, why, b.liveOf(role))
		b.tellSiblings(ctx, role, group, why)
	}
	q, unlock, err := b.lockMembership(ctx, role, group)
	if err != nil {
		// Recorded still: the sweep revokes it (reconcileOne).
		return fmt.Errorf("revoke group %s that turned unsafe: %w", group, err)
	}
	defer unlock()
	return b.revokeUnsafe(ctx, q, role, group, why, origin)
}

// isMember reports whether role is a direct member of group.
func isMember(ctx context.Context, q adminQuerier, role, group string) (bool, error) {
	var member bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m
		JOIN pg_catalog.pg_roles g ON g.oid = m.roleid JOIN pg_catalog.pg_roles r ON r.oid = m.member
		WHERE g.rolname = $1 AND r.rolname = $2)`, group, role).Scan(&member)
	return member, err
}

// revokeUnsafe revokes role's membership of group, whoever holds it for
// sessions, as the group turned unsafe (why), and forgets this process's
// record (and lapsed ones). Other replicas' records stay theirs: each
// forgets its own when its sessions end or when it finds the group
// unsafe in turn. A membership already gone (another replica revoked it)
// is not reported again. q holds the membership's lock.
func (b *Backend) revokeUnsafe(ctx context.Context, q adminQuerier, role, group, why string, origin shiftkey.SessionOrigin) error {
	member, err := isMember(ctx, q, role, group)
	if err == nil && member {
		err = b.revoke(ctx, q, role, group)
		if isUndefined(err) {
			err, member = nil, false
		}
	}
	if err != nil {
		// Recorded (ours kept, or one made where another replica's
		// membership was cut), so that the sweep tries again: the record
		// goes only once the REVOKE is done. Not with the caller's context
		// alone, which may be the one whose end failed the REVOKE (the
		// sweep's bound, a login's deadline): written with it, the record
		// failed, and an unsafe membership stayed with nothing naming it.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		if rerr := b.record(rctx, role, group); rerr != nil {
			b.logger.ErrorContext(ctx, "record unrevoked grant failed", "db_user", role, "group", group, "error", rerr)
		}
		return fmt.Errorf("revoke group %s that turned unsafe from %s: %w", group, role, err)
	}
	b.forget(ctx, role, group)
	if !member {
		b.logger.InfoContext(ctx, "group that turned unsafe already revoked", "db_user", role, "group", group, "reason", why)
		return nil
	}
	b.logger.WarnContext(ctx, "group that turned unsafe revoked from its sessions", "db_user", role, "group", group, "reason", why)
	b.observe(role, group, false, origin, why)
	// The role's sessions here that did not hold it through this process
	// (another replica granted it: join's and the sweep's revokes) may
	// have run SET ROLE to it too; cutLocked told its own already. The
	// session whose login found the group unsafe is not live yet.
	b.endSessions(ctx, role, group, why, b.liveOf(role))
	b.tellSiblings(ctx, role, group, why)
	b.announceCut(ctx, role, group, why)
	return nil
}

// endSessions ends (tellCut) leases, sessions of role that may have run
// SET ROLE to group, which turned unsafe (why), and logs how many it
// ended (those not ended already).
func (b *Backend) endSessions(ctx context.Context, role, group, why string, leases []*Lease) int {
	n := 0
	for _, l := range leases {
		if l.tellCut(group, why) {
			n++
		}
	}
	if n > 0 {
		b.logger.WarnContext(ctx, "sessions ended: their role's group turned unsafe", "db_user", role, "group", group, "sessions", n, "reason", why)
	}
	return n
}

// announceCut records the membership of group just revoked from role, as
// the group turned unsafe, for the other replicas (Config.Cuts), which
// end their sessions of the role when the change feed tells them
// (HearCuts). A failure is logged, and the cut kept for the next sweep to
// record (announceAgain): the membership is gone all the same, but until
// then another replica's session that ran SET ROLE to the group goes on.
func (b *Backend) announceCut(ctx context.Context, role, group, why string) {
	if b.cfg.Cuts == nil {
		return
	}
	// Not the caller's context alone, which may be a login's at its
	// deadline: the REVOKE is done, and the others must hear of it.
	revoked := time.Now() // its monotonic reading dates a later record (announceAgain)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if err := b.cfg.Cuts.RecordGroupCut(ctx, shiftkey.GroupCut{Scope: b.cfg.Scope, Role: role, Group: group, Reason: why}); err != nil {
		b.logger.ErrorContext(ctx, "group cut not recorded for the other replicas: their sessions of the role are not ended until the next sweep records it", "db_user", role, "group", group, "error", err)
		b.unannouncedMu.Lock()
		if b.unannounced == nil {
			b.unannounced = map[[2]string]unannouncedCut{}
		}
		b.unannounced[[2]string{role, group}] = unannouncedCut{why, revoked}
		b.unannouncedMu.Unlock()
	}
}

// unannouncedCut is a cut the store did not take: why, and when the
// REVOKE was done (time.Now, for its monotonic reading).
type unannouncedCut struct {
	why     string
	revoked time.Time
}

// announceAgain records the cuts announceCut could not (Reconcile, at
// each sweep), until the store takes them, each dated as long before the
// store's now as this process's monotonic clock says the revoke was
// (GroupCut.Age): the other replicas end their sessions of the role that
// began before the revoke, not those that logged in since.
func (b *Backend) announceAgain(ctx context.Context) error {
	b.unannouncedMu.Lock()
	pending := maps.Clone(b.unannounced)
	b.unannouncedMu.Unlock()
	done := 0
	for k, c := range pending {
		// Bounded as announceCut's, and the first failure ends the
		// round (the store is still unreachable): a store that does not
		// answer holds the sweep no longer than one record.
		rctx, cancel := context.WithTimeout(ctx, releaseTimeout)
		err := b.cfg.Cuts.RecordGroupCut(rctx, shiftkey.GroupCut{Scope: b.cfg.Scope, Role: k[0], Group: k[1], Reason: c.why, Age: time.Since(c.revoked)})
		cancel()
		if err != nil {
			return fmt.Errorf("record the cut of group %s from %s for the other replicas (%d cuts left for the next sweep): %w", k[1], k[0], len(pending)-done, err)
		}
		done++
		b.logger.InfoContext(ctx, "group cut recorded for the other replicas after all", "db_user", k[0], "group", k[1])
		b.unannouncedMu.Lock()
		if b.unannounced[k] == c {
			delete(b.unannounced, k)
		}
		b.unannouncedMu.Unlock()
	}
	return nil
}

// outlivesFor is how long outlives' answer for a group is reused: it scans
// the catalogs (pg_class, pg_attribute, …), and a role whose sessions come
// one at a time has its groups judged again at each login, while what it
// reads changes only when an administrator changes the group.
const outlivesFor = 5 * time.Second

type outlivesAnswer struct {
	why string
	at  time.Time
}

func (b *Backend) outlivesCached(ctx context.Context, q adminQuerier, group string) (string, error) {
	return b.seenFor(&b.outlivesSeen, group, func() (string, error) { return b.outlives(ctx, q, group, false) })
}

// seenFor is the verdict on group in *seen if it is younger than
// outlivesFor, else read's, remembered there (under outlivesMu; the map
// starts over at maxUserStates groups).
func (b *Backend) seenFor(seen *map[string]outlivesAnswer, group string, read func() (string, error)) (string, error) {
	now := b.now()
	b.outlivesMu.Lock()
	a, ok := (*seen)[group]
	b.outlivesMu.Unlock()
	if ok && now.Sub(a.at) < outlivesFor {
		return a.why, nil
	}
	why, err := read()
	if err != nil {
		return "", err
	}
	b.outlivesMu.Lock()
	keepAnswer(seen, group, outlivesAnswer{why, now})
	b.outlivesMu.Unlock()
	return why, nil
}

// keepAnswer records a in seen for group, starting seen afresh when it
// is full; b.outlivesMu is held.
func keepAnswer(seen *map[string]outlivesAnswer, group string, a outlivesAnswer) {
	if *seen == nil || len(*seen) >= maxUserStates {
		*seen = map[string]outlivesAnswer{}
	}
	(*seen)[group] = a
}

// outlives says why what group (or a role it belongs to) holds would let a
// member keep some of it once the group is revoked, or "". A member acts as
// the owner of what the group owns (and may GRANT it to itself for good),
// passes on what it holds WITH GRANT OPTION, and with its CREATE on a
// schema or database may create, as the group, a SECURITY DEFINER function
// to call later. Redshift's groups can do none of these. The membership is
// the role's in every database, so every database counts: ownership and
// database privileges are read from the shared catalogs, the rest from
// each database (dbRisks). A database that cannot be read refuses every
// group, unless held is set: judging a membership sessions already hold,
// a database that cannot be read at the moment (a connection limit, a
// restart) says nothing new, and is skipped (the next look reads it)
// rather than revoke every held group from every live session at a blip.
func (b *Backend) outlives(ctx context.Context, q adminQuerier, group string, held bool) (string, error) {
	var owns, dbCreate bool
	var roles []uint32
	var unseen []string
	err := q.QueryRow(ctx, `WITH RECURSIVE r(oid) AS (SELECT g.oid FROM pg_catalog.pg_roles g WHERE g.rolname = $1
			UNION SELECT m.roleid FROM pg_catalog.pg_auth_members m JOIN r ON m.member = r.oid)
		SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_shdepend d WHERE d.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
			        AND d.deptype = 'o' AND d.refobjid IN (SELECT oid FROM r)),
			EXISTS (SELECT 1 FROM pg_catalog.pg_database d, pg_catalog.aclexplode(d.datacl) a
			        WHERE a.grantee IN (SELECT oid FROM r) AND (a.privilege_type = 'CREATE' OR a.is_grantable)),
			ARRAY(SELECT oid FROM r),
			ARRAY(SELECT d.datname FROM pg_catalog.pg_database d WHERE d.datallowconn
			        AND NOT pg_catalog.has_database_privilege(d.oid, 'CONNECT')
			        AND pg_catalog.has_database_privilege($1, d.oid, 'CONNECT') ORDER BY d.datname)`,
		group).Scan(&owns, &dbCreate, &roles, &unseen)
	switch {
	case err != nil:
		return "", fmt.Errorf("check group %s: %w", group, err)
	case owns:
		return "it owns objects (or a role it belongs to does): a member could grant them to itself for good", nil
	case dbCreate:
		return "it may create in a database (or a role it belongs to may): a member could create objects as it that outlive the session", nil
	case len(unseen) > 0:
		return fmt.Sprintf("it may connect to database %q, where shiftkey's admin role may not and so cannot see what it holds", unseen[0]), nil
	}
	risks, err := b.dbRisks(ctx, q)
	if err != nil {
		return "", err
	}
	for _, d := range risks {
		if d.err != nil && held {
			b.logger.WarnContext(ctx, "held group's re-check skips a database that could not be read", "group", group, "database", d.name, "error", d.err)
			continue
		}
		if d.err != nil {
			return fmt.Sprintf("what it holds in database %q could not be checked: %v", d.name, d.err), nil
		}
		for _, r := range roles {
			create, ok := d.roles[r]
			switch {
			case ok && create:
				return fmt.Sprintf("it may create in a schema of database %q (or a role it belongs to may): a member could create objects as it that outlive the session", d.name), nil
			case ok:
				return fmt.Sprintf("it holds privileges WITH GRANT OPTION in database %q (or a role it belongs to does): a member could pass them on for good", d.name), nil
			}
		}
	}
	return "", nil
}

// dbRisk is what one database's catalogs say: the roles that hold there
// CREATE on a schema (true) or a privilege WITH GRANT OPTION (false).
type dbRisk struct {
	name  string
	roles map[uint32]bool
	err   error     // the database could not be read: every group is refused until it is
	at    time.Time // when read (Backend.now)
}

// dbRisks returns every database's dbRisk, each read at most outlivesFor
// ago: a read costs a connection to each database but the admin one, and
// serves every group's check meanwhile. q is an admin connection.
func (b *Backend) dbRisks(ctx context.Context, q adminQuerier) ([]dbRisk, error) {
	b.risksMu.Lock()
	defer b.risksMu.Unlock()
	var here string
	var names []string
	err := q.QueryRow(ctx, `SELECT pg_catalog.current_database(), ARRAY(SELECT datname FROM pg_catalog.pg_database
			WHERE datallowconn AND pg_catalog.has_database_privilege(oid, 'CONNECT') ORDER BY datname)`).Scan(&here, &names)
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	now := b.now()
	fresh := make(map[string]dbRisk, len(names))
	out := make([]dbRisk, len(names))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, name := range names {
		if d, ok := b.risks[name]; ok && now.Sub(d.at) < outlivesFor {
			out[i] = d
			continue
		}
		if name == here {
			out[i] = readRisk(ctx, q, name)
			out[i].at = now
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i] = b.readRiskIn(ctx, name)
			out[i].at = now
		})
	}
	wg.Wait()
	kept := out[:0]
	for _, d := range out {
		if d.gone() {
			continue
		}
		// A failed read is kept too: retried at each check, a database
		// that refuses would cost every login with groups a connection.
		fresh[d.name] = d
		kept = append(kept, d)
	}
	b.risks = fresh
	return kept, ctx.Err()
}

// gone reports whether d's database was dropped after it was listed.
func (d dbRisk) gone() bool {
	var pe *pgconn.PgError
	return errors.As(d.err, &pe) && pe.Code == "3D000" // invalid_catalog_name
}

// readRiskIn reads database name's dbRisk on a connection of its own, as
// the admin pool's role.
func (b *Backend) readRiskIn(ctx context.Context, name string) dbRisk {
	cfg := b.admin.Config().ConnConfig.Copy()
	cfg.Database = name
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return dbRisk{name: name, err: err}
	}
	defer c.Close(context.Background())
	return readRisk(ctx, c, name)
}

// riskQuery lists the roles holding CREATE on a schema or any privilege
// WITH GRANT OPTION in the current database (the catalogs below are each
// database's own).
const riskQuery = `SELECT a.grantee, pg_catalog.bool_or(a.creates) FROM (
		SELECT a.grantee, a.privilege_type = 'CREATE' AS creates FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
		        WHERE a.privilege_type = 'CREATE' OR a.is_grantable
		UNION ALL SELECT a.grantee, false FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a WHERE a.is_grantable
		UNION ALL SELECT a.grantee, false FROM pg_catalog.pg_attribute t, pg_catalog.aclexplode(t.attacl) a
		        WHERE t.attacl IS NOT NULL AND a.is_grantable
		UNION ALL SELECT a.grantee, false FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a WHERE a.is_grantable
		UNION ALL SELECT a.grantee, false FROM pg_catalog.pg_type t, pg_catalog.aclexplode(t.typacl) a WHERE a.is_grantable
		UNION ALL SELECT a.grantee, false FROM pg_catalog.pg_language l, pg_catalog.aclexplode(l.lanacl) a WHERE a.is_grantable
		UNION ALL SELECT a.grantee, false FROM pg_catalog.pg_foreign_data_wrapper w, pg_catalog.aclexplode(w.fdwacl) a WHERE a.is_grantable
		UNION ALL SELECT a.grantee, false FROM pg_catalog.pg_foreign_server s, pg_catalog.aclexplode(s.srvacl) a WHERE a.is_grantable
		UNION ALL SELECT a.grantee, false FROM pg_catalog.pg_largeobject_metadata m, pg_catalog.aclexplode(m.lomacl) a WHERE a.is_grantable
	) a WHERE a.grantee <> 0 GROUP BY a.grantee`

func readRisk(ctx context.Context, q adminQuerier, name string) dbRisk {
	d := dbRisk{name: name, roles: map[uint32]bool{}}
	rows, err := q.Query(ctx, riskQuery)
	if err != nil {
		d.err = err
		return d
	}
	var role uint32
	var create bool
	_, d.err = pgx.ForEachRow(rows, []any{&role, &create}, func() error {
		d.roles[role] = create
		return nil
	})
	return d
}

// Empty reports whether the lease holds no group: Release then returns at
// once, without round trips or the user's lock. Only the lease's holder may
// ask, before it calls Release.
func (l *Lease) Empty() bool { return len(l.groups) == 0 }

// Release revokes the lease's groups that no other session holds. It is
// safe to call more than once.
func (l *Lease) Release(ctx context.Context) {
	l.once.Do(func() {
		l.b.dropLive(l)
		if l.Empty() {
			// Nothing to revoke: no need for the user's lock, which a
			// concurrent Prepare may hold through round trips.
			return
		}
		u := l.b.user(l.role)
		defer l.b.done(u)
		// Every holder of the lock is bounded (a login by its context,
		// a release by releaseTimeout): the wait is too.
		u.mu.Lock()
		defer u.mu.Unlock()
		ctx, cancel := context.WithTimeout(ctx, releaseTimeout)
		defer cancel()
		l.b.releaseLocked(ctx, u, l)
	})
}

func (b *Backend) releaseLocked(ctx context.Context, u *userState, l *Lease) {
	for _, lg := range l.groups {
		if u.refs[lg.name] != lg.h {
			continue // revoked, as it turned unsafe (cutLocked)
		}
		lg.h.n--
		if lg.h.n > 0 {
			continue
		}
		delete(u.refs, lg.name)
		b.releaseGroup(ctx, l, lg.name)
		// Counted held until the REVOKE ran (or failed, left to the
		// sweep): until then PostgreSQL has the membership.
		b.held.Add(-1)
	}
	l.groups = nil
}

// releaseGroup revokes the membership of group that l's session was the
// last on this process to hold, unless another replica's sessions hold
// it, under the membership's lock (lockMembership).
func (b *Backend) releaseGroup(ctx context.Context, l *Lease, g string) {
	q, unlock, err := b.lockMembership(ctx, l.role, g)
	if err != nil {
		// Left in place, and recorded for Reconcile (our record stays).
		b.logger.ErrorContext(ctx, "revoke group failed", "db_user", l.role, "group", g, "error", err)
		return
	}
	defer unlock()
	if b.lapsedHolderActive(ctx, q, l.role, g) {
		// Left, with our record, for the sweep: it revokes the membership
		// once the role's sessions that may need it are gone, or drops our
		// record if the lapsed replica comes back and renews its own.
		b.logger.InfoContext(ctx, "group left to a lapsed replica's sessions", "db_user", l.role, "group", g)
		return
	}
	// Other replicas' records are asked for before ours goes, and ours
	// goes only once the membership is settled (another holder found, or
	// the REVOKE done): forgotten first, a record the store then failed to
	// take back (a failed lookup or REVOKE) left the membership with no
	// record, which no sweep revokes. Two replicas' releases of one
	// membership cannot both see the other's record and leave it: the
	// lock runs them one after the other, and the second finds the
	// first's record gone.
	held, err := b.othersHold(ctx, l.role, g)
	if err != nil {
		// Left in place, with our record, for the sweep.
		b.logger.ErrorContext(ctx, "grant holders lookup failed", "db_user", l.role, "group", g, "error", err)
		return
	}
	if held {
		b.forget(ctx, l.role, g)
		return // another replica's sessions still need it
	}
	if err := b.revoke(ctx, q, l.role, g); err != nil {
		// Left in place, with our record, so that Reconcile revokes it later.
		b.logger.ErrorContext(ctx, "revoke group failed", "db_user", l.role, "group", g, "error", err)
		return
	}
	b.forget(ctx, l.role, g)
	b.logger.InfoContext(ctx, "group revoked", "db_user", l.role, "group", g)
	b.observe(l.role, g, false, l.origin, "")
	// A replica that joined the membership between our check and the
	// REVOKE gets it back (one whose lock predates ours: the lock keeps
	// later ones out until the REVOKE is done). Only on the store's yes,
	// not on a store error: our record is gone, so a GRANT on a mere doubt
	// would leave the membership with no record, which no sweep revokes
	// and later sessions take for the role's own.
	held, err = b.othersHold(ctx, l.role, g)
	if err != nil {
		b.logger.ErrorContext(ctx, "grant holders lookup failed after the revoke; the membership stays revoked", "db_user", l.role, "group", g, "error", err)
		return
	}
	if held {
		if err := b.changeMembership(ctx, q, "GRANT "+quote(g)+" TO "+quote(l.role)); err != nil {
			b.logger.ErrorContext(ctx, "regrant group failed", "db_user", l.role, "group", g, "error", err)
		}
	}
}

// grant makes role a member of group and reports whether this call made
// the membership. A GRANT of a membership that exists, made by someone
// else since grantable looked, changes nothing (a notice), and one made at
// the same instant fails on pg_auth_members' unique index: in both cases
// the membership is not this session's to revoke. The catalog row's xmin
// tells: our transaction's id only if our GRANT inserted it.
func (b *Backend) grant(ctx context.Context, q adminQuerier, role, group string) (made bool, err error) {
	for range concurrentAttempts { // see changeMembership
		err = pgx.BeginFunc(ctx, q, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "GRANT "+quote(group)+" TO "+quote(role)); err != nil {
				return err
			}
			return tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m
			JOIN pg_catalog.pg_roles g ON g.oid = m.roleid JOIN pg_catalog.pg_roles r ON r.oid = m.member
			WHERE g.rolname = $1 AND r.rolname = $2 AND m.xmin::text::bigint = txid_current() % 4294967296)`, group, role).Scan(&made)
		})
		if !concurrentlyChanged(err) {
			break
		}
	}
	if isDuplicate(err) {
		return false, nil
	}
	return made, err
}

// concurrentAttempts is how many times changeMembership (and grant) run a
// membership change that another session's change of the same membership
// made fail. One retry normally settles it; a third covers a replica's
// regrant (releaseLocked) landing in between.
const concurrentAttempts = 3

// changeMembership runs sql, a GRANT or REVOKE of one membership, on the
// admin pool. Two replicas revoking one membership at once (credentials
// revoke --terminate of a login with sessions on both) both find its
// pg_auth_members row; the one that waited for the other's delete fails
// with "tuple concurrently deleted" (or "updated", when the other changed
// the row). Run again, the REVOKE finds the row gone and does nothing (a
// warning), or deletes the row the other updated: the membership is as
// asked, and the caller goes on as after any success, writing its session's
// revoke record rather than leaving the grant to the sweep, whose
// "reconciled" record reads as left by a crash. Plain GRANTs on PostgreSQL
// 15 update no row (racing GRANTs fail with 23505, see grant; a GRANT
// racing a REVOKE succeeds), but GRANTs take the same path in case one does.
func (b *Backend) changeMembership(ctx context.Context, q adminQuerier, sql string) error {
	var err error
	for range concurrentAttempts {
		if _, err = q.Exec(ctx, sql); !concurrentlyChanged(err) {
			return err
		}
	}
	return err
}

// concurrentlyChanged reports a catalog row change that failed because
// another transaction updated or deleted the row first. PostgreSQL raises
// it with elog (XX000, internal_error), whose message is never translated,
// so the message is what tells it from other internal errors.
func concurrentlyChanged(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "XX000" &&
		(pe.Message == "tuple concurrently deleted" || pe.Message == "tuple concurrently updated")
}

// whyMember is grantable's reason for a group the role already belongs to.
const whyMember = "already a member"

// joinShared records role's membership of group as this process's too
// when another replica holds it for its sessions, or its lease on it
// lapsed (a replica paused or cut off from the store still has its
// grants), and reports whether it did; a membership nobody records is the
// role's own, never touched.
func (b *Backend) joinShared(ctx context.Context, role, group string) (bool, error) {
	if b.cfg.Grants == nil {
		return false, nil
	}
	// The store's answers, a store error not taken for "held": the
	// membership may be the role's own, which a session recording it would
	// revoke at its end. Not knowing, the login fails.
	held, err := b.othersHold(ctx, role, group)
	if err == nil && !held {
		held, err = b.othersLapsed(ctx, role, group)
	}
	if err != nil {
		return false, fmt.Errorf("grant holders lookup: %w", err)
	}
	if !held {
		return false, nil
	}
	if err := b.record(ctx, role, group); err != nil {
		return false, err
	}
	b.logger.InfoContext(ctx, "group shared with another replica's sessions", "db_user", role, "group", group)
	return true, nil
}

// lapsedElsewhere reports whether another replica's record of role's
// membership of group outlived its lease; on a store error it answers
// true, so that a releasing session leaves the membership, and its
// record, in place for the sweep rather than cut it from under a session.
// (Where a yes would make this process record, keep or re-grant a
// membership, the callers ask othersHold and othersLapsed and stop on an
// error instead: a yes on a mere doubt left memberships no record names,
// or took the role's own for a session's.)
func (b *Backend) lapsedElsewhere(ctx context.Context, role, group string) bool {
	lapsed, err := b.othersLapsed(ctx, role, group)
	if err != nil {
		b.logger.ErrorContext(ctx, "grant holders lookup failed", "db_user", role, "group", group, "error", err)
		return true
	}
	return lapsed
}

// lapsedHolderActive reports whether a releasing session must leave role's
// membership of group in place: another replica's record of it outlived
// its lease, and the role has sessions on the backend this process did not
// open. That replica may only be paused (SIGSTOP, a long GC, a VM
// migration) or cut off from the store, its sessions open and needing the
// group: the sweep keeps such a grant (reconcileOne), and so must a
// release. On an error it answers true: the sweep decides later. q holds
// the membership's lock.
func (b *Backend) lapsedHolderActive(ctx context.Context, q adminQuerier, role, group string) bool {
	if !b.lapsedElsewhere(ctx, role, group) {
		return false
	}
	active, err := b.othersSessions(ctx, q, role)
	if err != nil {
		b.logger.ErrorContext(ctx, "session lookup failed", "db_user", role, "group", group, "error", err)
		return true
	}
	return active
}

// othersHold reports whether another replica records role's membership of
// group for its sessions.
func (b *Backend) othersHold(ctx context.Context, role, group string) (bool, error) {
	if b.cfg.Grants == nil {
		return false, nil
	}
	return b.cfg.Grants.GrantHeldElsewhere(ctx, shiftkey.SessionGrant{Scope: b.cfg.Scope, Role: role, Group: group, Siblings: b.siblings()})
}

// othersLapsed reports whether another replica's record of role's
// membership of group outlived its lease.
func (b *Backend) othersLapsed(ctx context.Context, role, group string) (bool, error) {
	if b.cfg.Grants == nil {
		return false, nil
	}
	return b.cfg.Grants.GrantLapsedElsewhere(ctx, shiftkey.SessionGrant{Scope: b.cfg.Scope, Role: role, Group: group, Siblings: b.siblings()})
}

// siblings are the scopes of the other gateways this process serves on
// the backend's server (Config.Siblings).
func (b *Backend) siblings() []string {
	if b.cfg.Siblings == nil {
		return nil
	}
	var scopes []string
	for _, s := range b.cfg.Siblings() {
		scopes = append(scopes, s.Scope())
	}
	return scopes
}

func (b *Backend) record(ctx context.Context, role, group string) error {
	if b.cfg.Grants == nil {
		return nil
	}
	if err := b.cfg.Grants.RecordGrant(ctx, shiftkey.SessionGrant{Scope: b.cfg.Scope, Role: role, Group: group}); err != nil {
		return fmt.Errorf("record grant: %w", err)
	}
	return nil
}

func (b *Backend) forget(ctx context.Context, role, group string) {
	if b.cfg.Grants == nil {
		return
	}
	if err := b.cfg.Grants.ForgetGrant(ctx, shiftkey.SessionGrant{Scope: b.cfg.Scope, Role: role, Group: group}); err != nil {
		b.logger.ErrorContext(ctx, "forget grant failed", "db_user", role, "group", group, "error", err)
	}
}

// Reconcile revokes recorded session grants that no live session needs:
// none of this process's sessions holds them and the role has no session
// on the backend (pg_stat_activity) but those this process opened, which
// covers sessions served by other replicas. It also revokes the
// memberships held for sessions whose group turned unsafe since it was
// granted (recheckHeld, and reconcileOne for the records of others), and
// records the cuts the store missed (announceAgain). It runs at start-up, after a crash, and periodically. It returns how many
// grants it revoked.
func (b *Backend) Reconcile(ctx context.Context) (int, error) {
	// A failed re-check does not keep the leftovers below: both are
	// tried, and the errors told together.
	cut, recheckErr := b.recheckHeld(ctx)
	if b.cfg.Cuts != nil {
		recheckErr = errors.Join(recheckErr, b.announceAgain(ctx))
	}
	if b.cfg.Grants == nil {
		return cut, recheckErr
	}
	grants, err := b.cfg.Grants.Grants(ctx, b.cfg.Scope)
	if err != nil {
		return cut, errors.Join(recheckErr, err)
	}
	if err := b.pruneOpened(ctx); err != nil {
		return cut, errors.Join(recheckErr, fmt.Errorf("reconcile: %w", err))
	}
	revoked := cut
	for _, g := range grants {
		done, err := b.reconcileOne(ctx, g)
		if err != nil {
			return revoked, errors.Join(recheckErr, err)
		}
		if done {
			revoked++
		}
	}
	return revoked, recheckErr
}

// reconcileOne revokes grant g unless a session needs it, and reports
// whether it did.
func (b *Backend) reconcileOne(ctx context.Context, g shiftkey.SessionGrant) (bool, error) {
	u := b.user(g.Role)
	defer b.done(u)
	u.mu.Lock()
	defer u.mu.Unlock()
	// Bounded as a release is: it holds the role's lock, which the role's
	// releases wait for, while it waits on the backend.
	ctx, cancel := context.WithTimeout(ctx, releaseTimeout)
	defer cancel()
	if u.refs[g.Group] != nil {
		return false, nil // this process's sessions hold it (recheckHeld judged it)
	}
	q, unlock, err := b.lockMembership(ctx, g.Role, g.Group)
	if err != nil {
		return false, fmt.Errorf("reconcile: %w", err)
	}
	defer unlock()
	// A group that turned unsafe goes whoever holds it: a lapsed
	// replica's sessions (paused, or cut off from the store) would keep it
	// otherwise, as no new session of theirs judges it again.
	why, err := b.unsafeCached(ctx, q, g.Group)
	if err != nil {
		return false, fmt.Errorf("reconcile: %w", err)
	}
	if why != "" {
		if err := b.revokeUnsafe(ctx, q, g.Role, g.Group, why, shiftkey.SessionOrigin{}); err != nil {
			return false, fmt.Errorf("reconcile: %w", err)
		}
		return true, nil
	}
	// The store's own answer, a store error not taken for "held": on
	// that, our record below would go and leave the membership with none.
	// An error leaves both to the next sweep.
	held, err := b.othersHold(ctx, g.Role, g.Group)
	if err != nil {
		return false, fmt.Errorf("reconcile: grant holders lookup: %w", err)
	}
	if held {
		// A live replica holds it: the membership stays, and so do the
		// records of owners whose lease ran out (g.LeftBy): such an owner
		// may be only paused or cut off from the store, and renews its
		// record when it is back (an UPDATE: a deleted record stays
		// deleted, and the live holder's last session would then revoke
		// the group from under that owner's). They go with the membership.
		if g.LeftBy == "" {
			b.forget(ctx, g.Role, g.Group)
		}
		return false, nil
	}
	// Sessions of the role this process did not open may be a lapsed
	// replica's that need the grant; its own (sessions that did not ask
	// for the group, pooled backends) do not, and must not keep a crash's
	// leftover granted to every session of the role.
	active, err := b.othersSessions(ctx, q, g.Role)
	if err != nil {
		return false, fmt.Errorf("reconcile: %w", err)
	}
	if active {
		return false, nil
	}
	// The records were read before this lock: a session's end may have
	// revoked the membership and forgotten its record since (or a crash
	// came between a record and its GRANT). Nothing to revoke, nor to
	// report as a leftover.
	member, err := isMember(ctx, q, g.Role, g.Group)
	if err != nil {
		return false, fmt.Errorf("reconcile: %w", err)
	}
	if !member {
		b.forget(ctx, g.Role, g.Group)
		return false, nil
	}
	if err := b.revoke(ctx, q, g.Role, g.Group); err != nil && !isUndefined(err) {
		return false, fmt.Errorf("reconcile revoke %s from %s: %w", g.Group, g.Role, err)
	}
	b.forget(ctx, g.Role, g.Group)
	b.logger.InfoContext(ctx, "stale group grant revoked", "db_user", g.Role, "group", g.Group, "left_by", g.LeftBy)
	if b.cfg.Observer != nil {
		b.cfg.Observer.Grant(&shiftkey.GrantChange{Time: b.recordTime(), Scope: b.cfg.Scope, Region: b.cfg.Region, Role: g.Role, Group: g.Group,
			Reconciled: true, LeftBy: g.LeftBy})
	}
	return true, nil
}

// recheckHeld judges again the memberships this process holds for its
// sessions (unsafeCached: a look per group, whatever the roles holding
// it) and revokes those whose group turned unsafe since it was granted,
// so that no new session of the role need come for it to go. It returns
// how many it revoked. Nothing held, nothing read.
func (b *Backend) recheckHeld(ctx context.Context) (int, error) {
	if b.held.Load() == 0 {
		return 0, nil
	}
	b.mu.Lock()
	roles := slices.Collect(maps.Keys(b.users))
	b.mu.Unlock()
	// The role's lock, as reconcileOne takes it: its holders are bounded.
	heldBy := map[string][]string{} // group → roles
	for _, role := range roles {
		u := b.user(role)
		u.mu.Lock()
		for g := range u.refs {
			heldBy[g] = append(heldBy[g], role)
		}
		u.mu.Unlock()
		b.done(u)
	}
	cut := 0
	for g, roles := range heldBy {
		why, err := b.unsafeCached(ctx, b.admin, g)
		if err != nil {
			return cut, fmt.Errorf("recheck group %s: %w", g, err)
		}
		if why == "" {
			continue
		}
		for _, role := range roles {
			done, err := b.cutIfHeld(ctx, role, g, why)
			if err != nil {
				return cut, err
			}
			if done {
				cut++
			}
		}
	}
	return cut, nil
}

// cutIfHeld is cutLocked for the sweep, if this process's sessions still
// hold role's membership of group, and reports whether it did.
func (b *Backend) cutIfHeld(ctx context.Context, role, group, why string) (bool, error) {
	u := b.user(role)
	defer b.done(u)
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.refs[group] == nil {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, releaseTimeout) // as reconcileOne: it holds the role's lock
	defer cancel()
	if err := b.cutLocked(ctx, u, role, group, why, shiftkey.SessionOrigin{}); err != nil {
		return false, fmt.Errorf("reconcile: %w", err)
	}
	return true, nil
}

// othersSessions reports whether role has sessions on the backend that
// this process did not log in (another replica's, or direct logins): ones
// that may need a grant whose owner's lease ran out.
func (b *Backend) othersSessions(ctx context.Context, q adminQuerier, role string) (bool, error) {
	var active bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity WHERE usename = $1 AND pid <> ALL ($2::int4[]))`,
		role, b.openedBy(role)).Scan(&active)
	return active, err
}

// openedBy lists the running backend processes of role that this process
// logged in.
func (b *Backend) openedBy(role string) []int32 {
	b.openedMu.Lock()
	defer b.openedMu.Unlock()
	pids := []int32{}
	for pid, r := range b.opened {
		if r == role {
			pids = append(pids, int32(pid))
		}
	}
	return pids
}

// pruneOpened forgets the backend processes that have ended, before their
// ids can be another process's: one reused since the last prune (a minute,
// the sweep's) is taken for this process's.
func (b *Backend) pruneOpened(ctx context.Context) error {
	b.openedMu.Lock()
	n := len(b.opened)
	b.openedMu.Unlock()
	if n == 0 {
		return nil
	}
	var running []int32
	if err := b.admin.QueryRow(ctx, `SELECT coalesce(array_agg(pid), '{}') FROM pg_catalog.pg_stat_activity`).Scan(&running); err != nil {
		return err
	}
	live := make(map[uint32]bool, len(running))
	for _, pid := range running {
		live[uint32(pid)] = true
	}
	b.openedMu.Lock()
	defer b.openedMu.Unlock()
	for pid := range b.opened {
		if !live[pid] {
			delete(b.opened, pid)
		}
	}
	return nil
}

// isUndefined reports a role that no longer exists (nothing to revoke).
func isUndefined(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42704"
}

// Conn is a backend connection that finished its startup as the role.
type Conn struct {
	net.Conn
	Params  []*pgproto3.ParameterStatus
	KeyData *pgproto3.BackendKeyData // nil when the backend sent none
}

// StartupError is an ErrorResponse the backend sent during startup (for
// example "role does not exist"); the gateway relays it unchanged.
type StartupError struct{ Response *pgproto3.ErrorResponse }

func (e *StartupError) Error() string {
	return "backend startup: " + e.Response.Code + " " + e.Response.Message
}

func (b *Backend) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	if strings.HasPrefix(b.cfg.Host, "/") {
		return d.DialContext(ctx, "unix", fmt.Sprintf("%s/.s.PGSQL.%d", b.cfg.Host, b.cfg.Port))
	}
	return d.DialContext(ctx, "tcp", net.JoinHostPort(b.cfg.Host, strconv.Itoa(b.cfg.Port)))
}

// Connect logs in to database as role with the given startup parameters.
func (b *Backend) Connect(ctx context.Context, role, database string, params map[string]string) (*Conn, error) {
	var c *Conn
	err := b.whileStartingUp(ctx, func() (err error) {
		c, err = b.connect(ctx, role, database, params)
		return err
	})
	if err == nil && c.KeyData != nil && b.cfg.Grants != nil {
		b.openedMu.Lock()
		if b.opened == nil {
			b.opened = map[uint32]string{}
		}
		b.opened[c.KeyData.ProcessID] = role
		b.openedMu.Unlock()
	}
	var se *StartupError
	if errors.As(err, &se) {
		// Perhaps the role was dropped since Prepare last saw it ("role
		// does not exist", or a password failure in password mode): the
		// next Prepare asks the backend again instead of trusting its cache.
		// (Not past the login's deadline: the cache is only an
		// optimisation, and the role's lock may be held by a revoke
		// waiting on a backend that stopped answering.)
		u := b.user(role)
		if u.mu.LockContext(ctx) == nil {
			u.existsAt = time.Time{}
			u.mu.Unlock()
		}
		b.done(u)
	}
	return c, err
}

func (b *Backend) connect(ctx context.Context, role, database string, params map[string]string) (*Conn, error) {
	// role=none at login, which outranks per-role and per-database
	// settings: a default role (ALTER ROLE … SET role, which a role may set
	// on itself) is applied only while the role belongs to it, but then
	// stays the backend's for its life, DISCARD ALL included, so a pooled
	// backend would run a later session as a group revoked since.
	params = maps.Clone(params)
	if params == nil {
		params = map[string]string{}
	}
	params["role"] = "none"
	if b.cfg.PasswordFor != nil {
		c, err := b.connectWithPassword(ctx, role, database, params)
		var se *StartupError
		if errors.As(err, &se) && se.Response.Code == "28P01" {
			// The role's password is no longer the gateway's: a session of
			// it set one of its own (ALTER ROLE … PASSWORD needs no
			// privilege for one's own role). Set the gateway's again, which
			// ends that one, and try once more, rather than lock every
			// session of the role out until a restart.
			if rerr := b.resetPassword(ctx, role); rerr != nil {
				b.logger.WarnContext(ctx, "gateway password not set again", "db_user", role, "error", rerr)
				return nil, err
			}
			b.logger.WarnContext(ctx, "gateway password set again: the role's password had been changed", "db_user", role)
			c, err = b.connectWithPassword(ctx, role, database, params)
		}
		return c, err
	}
	nc, err := b.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("dial backend: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	var tap *relay.TLSTap
	if b.cfg.ClientCert != nil {
		var tc net.Conn
		tc, tap, err = b.startTLS(nc, role)
		if err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	var read int64
	c, err := startup(nc, &countingReader{r: nc, n: &read}, role, database, params)
	if err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	if tap != nil {
		c.Conn = b.afterTLSLogin(c.Conn, tap, read)
	}
	return c, nil
}

// afterTLSLogin hands a TLS 1.3 (AES-GCM) connection whose login the tap
// followed to shiftkey's own record layer (relay.TLSConn), which a session
// on an event loop carries on with (TLSConn.LoopKeys) and one on the
// goroutine relay uses as it is. Anything else stays with crypto/tls
// (TLS 1.2, ChaCha20, a KeyUpdate during the login, bytes crypto/tls
// holds); the reason is logged at debug level.
func (b *Backend) afterTLSLogin(tc net.Conn, tap *relay.TLSTap, read int64) net.Conn {
	keys, err := tap.Keys(read)
	if err == nil {
		var rc *relay.TLSConn
		if rc, err = relay.NewTLSConn(tap.Conn, keys); err == nil {
			return rc
		}
	}
	b.logger.Debug("backend TLS stays with crypto/tls", "why", err.Error())
	return tc
}

// countingReader counts the bytes read through it: what the login read
// from crypto/tls (TLSTap.Keys compares it with what the backend sent).
type countingReader struct {
	r io.Reader
	n *int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

// connectWithPassword logs in with the role's gateway-only password (SCRAM,
// done by pgconn) and takes over the connection.
func (b *Backend) connectWithPassword(ctx context.Context, role, database string, params map[string]string) (*Conn, error) {
	cfg, err := pgconn.ParseConfig("")
	if err != nil {
		return nil, err
	}
	cfg.Host, cfg.Port, cfg.User, cfg.Database = b.cfg.Host, uint16(b.cfg.Port), role, database
	cfg.Password = b.cfg.PasswordFor(role)
	cfg.TLSConfig, cfg.Fallbacks = nil, nil
	cfg.RuntimeParams = params
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return nil, &StartupError{Response: &pgproto3.ErrorResponse{Severity: pe.Severity, SeverityUnlocalized: pe.Severity,
				Code: pe.Code, Message: pe.Message, Detail: pe.Detail, Hint: pe.Hint}}
		}
		return nil, fmt.Errorf("backend login: %w", err)
	}
	h, err := pc.Hijack()
	if err != nil {
		pc.Close(ctx)
		return nil, err
	}
	if h.Frontend.ReadBufferLen() > 0 {
		h.Conn.Close()
		return nil, errors.New("backend startup: unexpected data after ReadyForQuery")
	}
	c := &Conn{Conn: h.Conn}
	names := make([]string, 0, len(h.ParameterStatuses))
	for k := range h.ParameterStatuses {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		c.Params = append(c.Params, &pgproto3.ParameterStatus{Name: k, Value: h.ParameterStatuses[k]})
	}
	if h.PID != 0 {
		c.KeyData = &pgproto3.BackendKeyData{ProcessID: h.PID, SecretKey: h.SecretKey}
	}
	return c, nil
}

// gatewayPasswordIterations is the PBKDF2 count of a managed role's
// verifier. The password is 256 bits of HMAC output (GatewayPassword), so
// stretching protects nothing; the gateway would pay it (about 0.6 ms of
// CPU at 4096) at every backend login it makes.
const gatewayPasswordIterations = 1

// setPassword gives a managed role its gateway-only password as a SCRAM
// verifier computed here, so the password itself never reaches the backend.
func (b *Backend) setPassword(ctx context.Context, role string) error {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return err
	}
	v := scram.Verifier{Iterations: gatewayPasswordIterations, Salt: salt, Keys: scram.NewKeys(b.cfg.PasswordFor(role), salt, gatewayPasswordIterations)}
	_, err := b.admin.Exec(ctx, "ALTER ROLE "+quote(role)+" PASSWORD "+quoteLiteral(v.String()))
	return err
}

// resetPassword sets role's gateway-only password again, when role is one
// shiftkey manages (others are never altered).
func (b *Backend) resetPassword(ctx context.Context, role string) error {
	u := b.user(role)
	defer b.done(u)
	if err := u.mu.LockContext(ctx); err != nil {
		return err
	}
	defer u.mu.Unlock()
	managed, err := b.isManaged(ctx, role)
	if err != nil {
		return err
	}
	if !managed {
		return errors.New("not a role shiftkey manages")
	}
	if err := b.setPassword(ctx, role); err != nil {
		return err
	}
	u.passwordSet = true
	return nil
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// startTLS asks the backend for TLS and logs in with role's certificate,
// over a tap (TLSTap) that follows the records from the handshake on.
func (b *Backend) startTLS(nc net.Conn, role string) (*tls.Conn, *relay.TLSTap, error) {
	cert, err := b.cfg.ClientCert(role)
	if err != nil {
		return nil, nil, fmt.Errorf("client certificate for %s: %w", role, err)
	}
	req, _ := (&pgproto3.SSLRequest{}).Encode(nil)
	if _, err := nc.Write(req); err != nil {
		return nil, nil, fmt.Errorf("backend SSLRequest: %w", err)
	}
	var answer [1]byte
	if _, err := io.ReadFull(nc, answer[:]); err != nil {
		return nil, nil, fmt.Errorf("backend SSLRequest: %w", err)
	}
	if answer[0] != 'S' {
		return nil, nil, errors.New("backend refused TLS; certificate login needs ssl=on")
	}
	// The tap keeps this connection's traffic secrets, in memory only.
	tap := relay.NewTLSClientTap(nc)
	cfg := &tls.Config{Certificates: []tls.Certificate{*cert}, RootCAs: b.cfg.rootCAs(), ServerName: b.cfg.ServerName,
		MinVersion: tls.VersionTLS12, KeyLogWriter: tap.KeyLog()}
	tc := tls.Client(tap, cfg)
	if err := tc.Handshake(); err != nil {
		return nil, nil, fmt.Errorf("backend TLS: %w", err)
	}
	tap.Handshaken(tc.ConnectionState())
	return tc, tap, nil
}

func startup(nc net.Conn, r io.Reader, role, database string, params map[string]string) (*Conn, error) {
	fe := pgproto3.NewFrontend(r, nc)
	p := map[string]string{}
	for k, v := range params {
		p[k] = v
	}
	p["user"] = role
	p["database"] = database
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: p})
	if err := fe.Flush(); err != nil {
		return nil, fmt.Errorf("backend startup: %w", err)
	}
	c := &Conn{Conn: nc}
	for {
		msg, err := fe.Receive()
		if err != nil {
			return nil, fmt.Errorf("backend startup: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.AuthenticationOk:
		case *pgproto3.ParameterStatus:
			c.Params = append(c.Params, &pgproto3.ParameterStatus{Name: m.Name, Value: m.Value})
		case *pgproto3.BackendKeyData:
			c.KeyData = &pgproto3.BackendKeyData{ProcessID: m.ProcessID, SecretKey: append([]byte(nil), m.SecretKey...)}
		case *pgproto3.NoticeResponse:
		case *pgproto3.ErrorResponse:
			cp := *m
			return nil, &StartupError{Response: &cp}
		case *pgproto3.ReadyForQuery:
			if fe.ReadBufferLen() > 0 {
				return nil, errors.New("backend startup: unexpected data after ReadyForQuery")
			}
			return c, nil
		case pgproto3.AuthenticationResponseMessage:
			return nil, fmt.Errorf("backend startup: the backend asks role %q for a password (%T); configure pg_hba for the gateway's login method", role, msg)
		default:
			return nil, fmt.Errorf("backend startup: unexpected %T", msg)
		}
	}
}

// Cancel asks the backend to cancel the query of the session with key.
func (b *Backend) Cancel(ctx context.Context, key *pgproto3.BackendKeyData) error {
	nc, err := b.dial(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	buf, err := (&pgproto3.CancelRequest{ProcessID: key.ProcessID, SecretKey: key.SecretKey}).Encode(nil)
	if err != nil {
		return err
	}
	if _, err = nc.Write(buf); err != nil {
		return err
	}
	// PostgreSQL closes the connection once it has signalled the backend,
	// as libpq's PQcancel waits for: until then the cancel may still land
	// later, on whatever the backend runs by then (a pooled backend's next
	// session, pgwire's release).
	if d, ok := ctx.Deadline(); ok {
		nc.SetReadDeadline(d)
	}
	if _, err = nc.Read(make([]byte, 1)); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// connString is a keyword/value connection string of the settings given
// (an empty one, or port 0, is left to the environment's defaults), each
// value quoted: a socket directory or a role name may hold spaces.
func connString(host string, port int, user, database string) string {
	quote := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	var kv []string
	for _, s := range [][2]string{{"host", host}, {"user", user}, {"dbname", database}} {
		if s[1] != "" {
			kv = append(kv, s[0]+"='"+quote.Replace(s[1])+"'")
		}
	}
	if port != 0 {
		kv = append(kv, "port="+strconv.Itoa(port))
	}
	return strings.Join(kv, " ")
}
