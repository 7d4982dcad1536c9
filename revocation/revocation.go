// Package revocation is what an operator does to issued credentials, which
// Redshift cannot: list them, revoke them (by cluster or workgroup, login
// name, principal or id, or everything a principal or an access key and
// the role sessions they started obtained), end the STS sessions an access
// key started, and end the gateway sessions of revoked credentials on
// every replica (Terminator).
package revocation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/wakeset"
)

// Store is what listing and revoking need.
type Store interface {
	shiftkey.CredentialAdmin
	shiftkey.SessionAdmin
	Workgroup(ctx context.Context, name string) (*shiftkey.Workgroup, error)
	Cluster(ctx context.Context, id string) (*shiftkey.Cluster, error)
}

// Selection is what the operator named (the command's flags).
type Selection struct {
	Cluster, Workgroup, Login, Principal, ID string
	// AllForPrincipal is a principal ARN whose credentials, and those of
	// the role sessions it started, all go: the answer to a leaked key.
	AllForPrincipal string
	// AccessKey is an access key id whose issued credentials, and those
	// of the STS sessions it started, all go: a leaked key, exactly.
	AccessKey string
}

// ErrNoMatch is a revoke that matched no credential: an error, so that a
// typo in a selection is not taken for a leak closed.
var ErrNoMatch = errors.New("nothing revoked")

// Filter resolves s against st: a workgroup's credentials are kept under
// its credential scope. An unknown cluster or workgroup is an error, so a
// typo does not read as "nothing to revoke".
func (s Selection) Filter(ctx context.Context, st Store) (shiftkey.CredentialFilter, error) {
	f := shiftkey.CredentialFilter{Scope: s.Cluster, LoginName: s.Login, PrincipalARN: s.Principal, ID: s.ID}
	switch {
	case s.Cluster != "" && s.Workgroup != "":
		return f, fmt.Errorf("--cluster and --workgroup: name one")
	case s.AllForPrincipal != "" && s.Principal != "":
		return f, fmt.Errorf("--all-for-principal and --principal: name one")
	case s.Cluster != "":
		if _, err := st.Cluster(ctx, s.Cluster); err != nil {
			return f, err
		}
	case s.Workgroup != "":
		w, err := st.Workgroup(ctx, s.Workgroup)
		if err != nil {
			return f, err
		}
		f.Scope = w.CredentialScope()
	}
	if s.AllForPrincipal != "" {
		f.PrincipalARN, f.SessionsOf = s.AllForPrincipal, true
	}
	f.AccessKeyID = s.AccessKey
	return f, nil
}

// List writes the credentials matching f unexpired at now, as a table,
// and when f names an access key, the live STS sessions a revoke would end.
func List(ctx context.Context, st Store, f shiftkey.CredentialFilter, now time.Time, w io.Writer) error {
	creds, err := st.ListCredentials(ctx, f, now)
	if err != nil {
		return err
	}
	if len(creds) == 0 {
		// Said, so that an empty answer is not taken for a failure.
		fmt.Fprintln(w, "no live credentials match")
		if hint, err := likelyPrincipals(ctx, st, f, now); err != nil {
			return err
		} else if hint != "" {
			fmt.Fprintf(w, "note: %s\n", hint)
		}
	} else if err := table(w, creds); err != nil {
		return err
	}
	if f.AccessKeyID != "" {
		sessions, err := st.SessionsStartedWith(ctx, f.AccessKeyID, now)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%d live sessions started with %s (revoke --access-key ends them)\n", len(sessions), f.AccessKeyID)
		if err := sessionTable(w, sessions); err != nil {
			return err
		}
	}
	return sayUnrecorded(ctx, st, f, now, w)
}

// unrecorded says, when f names an access key, how many live credentials
// the rest of f selects have no recorded key, and whose they are: issued
// by a shiftkey from before keys were recorded, or by a replica still
// running one during a rolling upgrade, they may have been obtained with
// the key, which cannot tell. "" when there are none.
func unrecorded(ctx context.Context, st Store, f shiftkey.CredentialFilter, now time.Time) (string, error) {
	if f.AccessKeyID == "" {
		return "", nil
	}
	key := f.AccessKeyID
	f.AccessKeyID = ""
	creds, err := st.ListCredentials(ctx, f, now)
	if err != nil {
		return "", err
	}
	n, by := 0, map[string]int{}
	for _, c := range creds {
		if c.AccessKeyID == "" {
			n++
			by[c.PrincipalARN]++
		}
	}
	if n == 0 {
		return "", nil
	}
	principals := slices.Sorted(maps.Keys(by))
	for i, p := range principals {
		principals[i] = fmt.Sprintf("%s (%d)", p, by[p])
	}
	return fmt.Sprintf("%d live credentials have no recorded access key (issued by a shiftkey from before keys were recorded, "+
		"or by a replica still running one): whether %s obtained them cannot be told. By principal: %s. "+
		"If the key is one of these principals', revoke that principal's with --all-for-principal ARN "+
		"(its credentials and its role sessions', whichever key obtained them)", n, key, strings.Join(principals, ", ")), nil
}

func sayUnrecorded(ctx context.Context, st Store, f shiftkey.CredentialFilter, now time.Time, w io.Writer) error {
	note, err := unrecorded(ctx, st, f, now)
	if note != "" {
		fmt.Fprintf(w, "note: %s\n", note)
	}
	return err
}

// Revoked is what a revoke did.
type Revoked struct {
	Credentials []*shiftkey.Credential
	// Sessions are the STS sessions it ended: those the access key the
	// filter names started (or is), chains included.
	Sessions []*shiftkey.Session
	// Terminated are, with terminate, the credentials the filter matches
	// that an earlier revoke without it had revoked: now their sessions
	// end too.
	Terminated []shiftkey.Revocation
}

// Revoke revokes the credentials matching f and writes what it revoked.
// With terminate, their open sessions end too, on every replica serving
// the store (see Terminator). When f names an access key, the STS
// sessions it started (or that it is), chains included, end first,
// whatever else f names: they are the key's, not a credential's, and while
// one lives it can obtain more. With terminate, credentials f matches that
// were revoked already without it are marked terminate: an operator who
// sees sessions stay after a revoke runs it again with --terminate. On an
// error, what it returns was done.
func Revoke(ctx context.Context, st Store, f shiftkey.CredentialFilter, now time.Time, terminate bool, w io.Writer) (Revoked, error) {
	var done Revoked
	if f.AccessKeyID != "" {
		// First: a credential a session obtains meanwhile is revoked below.
		sessions, err := st.EndSessions(ctx, f.AccessKeyID, now)
		if err != nil {
			return done, fmt.Errorf("end the sessions of %s: %w", f.AccessKeyID, err)
		}
		done.Sessions = sessions
	}
	creds, err := st.RevokeCredentials(ctx, f, now, terminate)
	if err != nil {
		tell(w, done, now, terminate, false, false) // what was done is said
		return done, err
	}
	done.Credentials = creds
	if terminate {
		// After the revoke: what it revoked is marked terminate already.
		terms, err := st.TerminateRevoked(ctx, f)
		if err != nil {
			tell(w, done, now, terminate, false, false)
			return done, fmt.Errorf("end the sessions of credentials revoked before: %w", err)
		}
		done.Terminated = terms
	}
	if len(creds) == 0 && len(done.Sessions) == 0 && len(done.Terminated) == 0 {
		err := noMatch(ctx, st, f)
		if hint, _ := likelyPrincipals(ctx, st, f, now); hint != "" {
			err = fmt.Errorf("%w; %s", err, hint)
		}
		if note, _ := unrecorded(ctx, st, f, now); note != "" {
			err = fmt.Errorf("%w; %s", err, note)
		}
		return done, err
	}
	if err := tell(w, done, now, terminate, true, f.AccessKeyID != ""); err != nil {
		return done, err
	}
	// What was revoked is done: a failure to say more is not its failure.
	sayUnrecorded(ctx, st, f, now, w)
	return done, nil
}

// tell writes what done holds: each part that is not empty, and for the
// revoke's own answer (complete) the count of credentials revoked unless
// it only terminated earlier ones, and the sessions ended of a selection by
// access key (byKey) even when none did. Credentials expired before now
// but not yet swept are revoked too; the count says how many, as
// `credentials list` shows live ones only.
func tell(w io.Writer, done Revoked, now time.Time, terminate, complete, byKey bool) error {
	what := "revoked"
	if terminate {
		what = "revoked; their sessions end"
	}
	expired := 0
	for _, c := range done.Credentials {
		if !c.ExpiresAt.After(now) {
			expired++
		}
	}
	if expired > 0 {
		what += fmt.Sprintf(" (%d of them had expired and were not yet swept; credentials list shows live ones only)", expired)
	}
	if len(done.Credentials) > 0 || complete && len(done.Terminated) == 0 {
		fmt.Fprintf(w, "%d credentials %s\n", len(done.Credentials), what)
		if err := table(w, done.Credentials); err != nil {
			return err
		}
	}
	if len(done.Terminated) > 0 {
		fmt.Fprintf(w, "%d credentials already revoked, now terminated: their sessions end\n", len(done.Terminated))
		if err := revocationTable(w, done.Terminated); err != nil {
			return err
		}
	}
	if len(done.Sessions) > 0 || complete && byKey {
		fmt.Fprintf(w, "%d sessions ended\n", len(done.Sessions))
		return sessionTable(w, done.Sessions)
	}
	return nil
}

// noMatch is ErrNoMatch with what was named, and for an id why it
// matched nothing where the store can tell.
func noMatch(ctx context.Context, st Store, f shiftkey.CredentialFilter) error {
	if f.ID != "" {
		revs, err := st.Revocations(ctx, []string{f.ID})
		if err == nil && len(revs) == 1 {
			how := ""
			if revs[0].Terminate {
				how = " (its sessions end)"
			}
			return fmt.Errorf("%w: credential %s was already revoked at %s%s", ErrNoMatch, f.ID, revs[0].RevokedAt.UTC().Format(time.RFC3339), how)
		}
		// Expired ones too: a revoke matches them.
		known, err := st.ListCredentials(ctx, shiftkey.CredentialFilter{ID: f.ID}, time.Unix(0, 0))
		if err == nil && len(known) == 0 {
			return fmt.Errorf("%w: this store never issued a credential with id %s (or it expired over a day ago and was swept)", ErrNoMatch, f.ID)
		}
	}
	return fmt.Errorf("%w: no credential matches %s (see shiftkey credentials list)", ErrNoMatch, describe(f))
}

// likelyPrincipals says, when f names a principal that selected nothing,
// which principals of the live credentials the rest of f selects the
// operator most likely meant (the same user, role or session name in
// another case or with another path: IAM names are unique whatever their
// case and path), with how many credentials each has; "" for none. ARNs
// are still compared exactly: a principal deleted and created again in
// another case is another principal.
func likelyPrincipals(ctx context.Context, st Store, f shiftkey.CredentialFilter, now time.Time) (string, error) {
	if f.PrincipalARN == "" {
		return "", nil
	}
	want, ok := principalKey(f.PrincipalARN)
	if !ok {
		return "", nil
	}
	rest := f
	rest.PrincipalARN, rest.SessionsOf = "", false
	creds, err := st.ListCredentials(ctx, rest, now)
	if err != nil {
		return "", err
	}
	by := map[string]int{}
	for _, c := range creds {
		if k, ok := principalKey(c.PrincipalARN); ok && c.PrincipalARN != f.PrincipalARN && (k == want || k.role() == want) {
			by[c.PrincipalARN]++
		}
	}
	if len(by) == 0 {
		return "", nil
	}
	principals := slices.Sorted(maps.Keys(by))
	for i, p := range principals {
		principals[i] = fmt.Sprintf("%s (%d)", p, by[p])
	}
	return fmt.Sprintf("ARNs are compared exactly (case and path included); live credentials whose principal has the same name: %s",
		strings.Join(principals, ", ")), nil
}

// nameKey is an ARN's account, kind and lowercased name without its path:
// user/[PATH/]NAME, role/[PATH/]NAME, assumed-role/ROLE/SESSION.
type nameKey struct{ account, kind, name string }

// role is, for an assumed-role session, its role's key.
func (k nameKey) role() nameKey {
	if k.kind != "assumed-role" {
		return nameKey{}
	}
	role, _, _ := strings.Cut(k.name, "/")
	return nameKey{k.account, "role", role}
}

func principalKey(arn string) (nameKey, bool) {
	f := strings.SplitN(arn, ":", 6)
	if len(f) != 6 || f[0] != "arn" {
		return nameKey{}, false
	}
	kind, rest, ok := strings.Cut(f[5], "/")
	if !ok || rest == "" {
		return nameKey{}, false
	}
	switch kind {
	case "user", "role":
		rest = rest[strings.LastIndexByte(rest, '/')+1:]
	case "assumed-role":
	default:
		return nameKey{}, false
	}
	return nameKey{f[4], kind, strings.ToLower(rest)}, true
}

// describe names what f selects, as the flags did.
func describe(f shiftkey.CredentialFilter) string {
	var parts []string
	add := func(what, v string) {
		if v != "" {
			parts = append(parts, what+" "+v)
		}
	}
	add("scope", f.Scope)
	add("login", f.LoginName)
	add("principal", f.PrincipalARN)
	if f.SessionsOf && f.PrincipalARN != "" {
		parts[len(parts)-1] += " and the sessions it started"
	}
	add("id", f.ID)
	add("access key", f.AccessKeyID)
	if f.AccessKeyID != "" {
		parts[len(parts)-1] += " and the sessions it started"
	}
	return strings.Join(parts, ", ")
}

func table(w io.Writer, creds []*shiftkey.Credential) error {
	if len(creds) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSCOPE\tLOGIN\tDB USER\tGROUPS\tPRINCIPAL\tACCESS KEY\tEXPIRES")
	for _, c := range creds {
		key := c.AccessKeyID
		if key == "" {
			key = "-" // issued before keys were recorded
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Cluster, c.LoginName, c.DBUser, strings.Join(c.DBGroups, ","), c.PrincipalARN,
			key, c.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// revocationTable writes revocations, as table writes credentials.
func revocationTable(w io.Writer, revs []shiftkey.Revocation) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSCOPE\tLOGIN\tPRINCIPAL\tACCESS KEY\tREVOKED\tEXPIRES")
	for _, r := range revs {
		key := r.AccessKeyID
		if key == "" {
			key = "-" // not recorded
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Scope, r.LoginName, r.PrincipalARN, key,
			r.RevokedAt.UTC().Format(time.RFC3339), r.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// sessionTable writes STS sessions (never a secret): each one's temporary
// key, its assumed-role ARN and the key that started it.
func sessionTable(w io.Writer, sessions []*shiftkey.Session) error {
	if len(sessions) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION KEY\tASSUMED ROLE\tSTARTED WITH\tEXPIRES")
	for _, s := range sessions {
		from := s.SourceAccessKeyID
		if from == "" {
			from = "-" // started before keys were recorded
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.AccessKeyID, shiftkey.AssumedRoleARN(s.SourceARN, s.RoleName, s.SessionName), from,
			s.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// Gateway is a running gateway's view of its sessions (*pgwire.Gateway).
type Gateway interface {
	CredentialsInUse(login string) []string
	Terminate(ids map[string]bool) int
	// Sessions is how many sessions it has (logging in or logged in).
	Sessions() int
}

// Terminator ends the sessions of credentials revoked with terminate, in
// this process, whichever process revoked them: it hears of revocations
// through Changed (the store's change feed, or a poll of a store without
// one) and asks the store which of its sessions' credentials are revoked.
type Terminator struct {
	Store interface {
		Revocations(ctx context.Context, ids []string) ([]shiftkey.Revocation, error)
	}
	Gateways func() []Gateway
	Logger   *slog.Logger // nil: discard

	logins wakeset.Set[string] // login names to check; "" all
}

// Changed notes a change from the store; a credential change names the
// login to check, the zero Change (anything may have changed) all of them.
// It returns at once: Run does the work.
func (t *Terminator) Changed(c shiftkey.Change) {
	login := ""
	switch c.Kind {
	case shiftkey.KindCredential:
		if _, l, ok := strings.Cut(c.Name, "\x00"); ok {
			login = l
		}
	case "":
	default:
		return
	}
	t.logins.Note(login)
}

// Recheck is how often Run looks at every session even without a change:
// a session that finished logging in with a credential just as it was
// revoked may have been missed by the check its change triggered.
const Recheck = 10 * time.Second

// Run handles the noted changes until ctx is done. Checks failing (the
// store unreachable: a check every poll while the feed is behind) are a
// warning once, and their working again a note; the failures between are
// debug lines.
func (t *Terminator) Run(ctx context.Context) {
	var outage shiftkey.OutageLog
	t.logins.Run(ctx, Recheck, func(logins map[string]bool) {
		asked, err := t.check(ctx, logins)
		// Only a check that read the store tells it works again.
		if ctx.Err() == nil && (err != nil || asked) {
			outage.Tell(ctx, t.logger(), "revoked-session check", err)
		}
	})
}

// WhileBehind checks every session each every, until ctx is done, while
// current says that the change feed Changed hears from is not current (its
// connection hangs, or was lost and cannot be made again): a revocation
// made elsewhere then reaches this process by no change, and would wait
// for Recheck. current is asked only while sessions are open (asking may
// send the feed a ping), so an idle process asks nothing.
func (t *Terminator) WhileBehind(ctx context.Context, current func() bool, every time.Duration) {
	t.logins.WhileBehind(ctx, every, func() bool { return t.sessionsOpen() && !current() })
}

// sessionsOpen reports whether any gateway has a session: asked every
// tick, so a count under the gateway's lock, not a list of its sessions'
// credentials.
func (t *Terminator) sessionsOpen() bool {
	for _, g := range t.Gateways() {
		if g.Sessions() > 0 {
			return true
		}
	}
	return false
}

// check ends the sessions of logins whose credentials are revoked with
// terminate; asked is whether it read the store (some were open).
func (t *Terminator) check(ctx context.Context, logins map[string]bool) (asked bool, err error) {
	gws := t.Gateways()
	var ids []string
	for _, g := range gws {
		for l := range logins {
			ids = append(ids, g.CredentialsInUse(l)...)
		}
	}
	if len(ids) == 0 {
		return false, nil
	}
	revs, err := t.Store.Revocations(ctx, ids)
	if err != nil {
		return false, err
	}
	doomed := map[string]bool{}
	for _, r := range revs {
		if r.Terminate {
			doomed[r.ID] = true
		}
	}
	if len(doomed) == 0 {
		return true, nil
	}
	n := 0
	for _, g := range gws {
		n += g.Terminate(doomed)
	}
	t.logger().Info("sessions of revoked credentials ended", "count", n)
	return true, nil
}

func (t *Terminator) logger() *slog.Logger {
	if t.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return t.Logger
}
