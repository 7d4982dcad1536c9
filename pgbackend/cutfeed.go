package pgbackend

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/wakeset"
)

// A membership revoked because its group turned unsafe was the role's, on
// the backend every replica serves: a session of the role on another
// replica may have run SET ROLE to the group, and would keep acting as it.
// The replica that revokes records the cut in the store (announceCut);
// the others hear of it through the store's change feed (CutFeed) and end
// their sessions of the role that began before it (HearCuts), as the
// revoking replica ends its own.

// cutMargin is how much later than a cut a session's start may read and
// still be taken for one that began before it: a replica's reading of the
// store's clock is within it (postgres.ClockTolerance and half a round
// trip). A session that logged in within it after the cut is ended too: a
// rare cost, of a rare event, against a session acting as the group.
const cutMargin = time.Second

// cutReadTimeout bounds a read of the cuts (HearCuts): a store connection
// that stopped answering would otherwise hold CutFeed's one worker, and
// every cut heard meanwhile, until TCP gave up on it (minutes). The read
// is small; a round whose read failed is done again (CutRecheck, or the
// feed's next change). A variable for tests.
var cutReadTimeout = 5 * time.Second

// heardFor is how long a cut HearCuts read is kept for the logins under
// way as it was read (addLive): longer than a login may take.
const heardFor = 2 * time.Minute

// began reports whether l's session began before cut c (cutMargin).
func (l *Lease) began(c *shiftkey.GroupCut) bool { return l.start.Before(c.At.Add(cutMargin)) }

// Scope is the cluster or workgroup credential scope the backend serves.
func (b *Backend) Scope() string { return b.cfg.Scope }

// HearCuts ends this process's sessions of role (every role's when role
// is "") that began before another replica revoked a group of the role as
// it turned unsafe (the cuts Config.Cuts keeps), with the reason that
// replica found: the same FATAL and audit reason as its own sessions get.
// A session that began after the cut is left alone: the membership was
// gone when it logged in. It reads the cuts since the oldest live session
// began, and for a role named (a cut the feed told of) or while logins are
// under way, since heardFor ago at least, for those logins (addLive); for
// every role, only while sessions are live or logging in, so that an idle
// process reads nothing. It returns how many sessions it ended.
//
// The memberships this process holds for its sessions are left to their
// release: the holders are ended, and a membership held since the cut
// (granted again) must not lose its record.
func (b *Backend) HearCuts(ctx context.Context, role string) (int, error) {
	if b.cfg.Cuts == nil {
		return 0, nil
	}
	since, ok := b.oldestLive(role)
	if role != "" || b.preparing.Load() > 0 {
		if under := b.recordTime().Add(-heardFor); !ok || under.Before(since) {
			since, ok = under, true
		}
	}
	if !ok {
		return 0, nil
	}
	// The siblings' cuts too: the membership was the role's on the server.
	rctx, cancel := context.WithTimeout(ctx, cutReadTimeout)
	defer cancel()
	var cuts []shiftkey.GroupCut
	for _, scope := range b.scopesOnServer() {
		got, err := b.cfg.Cuts.GroupCuts(rctx, scope, role, since.Add(-cutMargin))
		if err != nil {
			return 0, fmt.Errorf("read the group cuts of other replicas: %w", err)
		}
		cuts = append(cuts, got...)
	}
	return b.hear(ctx, cuts), nil
}

// HearSiblingCut ends this backend's sessions of c.Role that began before
// c, the cut of c.Group that a sibling gateway of this process (c.Scope,
// on the same server) made as the group turned unsafe: they may have run
// SET ROLE to it, as the sibling's own sessions may. It returns how many
// sessions it ended.
func (b *Backend) HearSiblingCut(ctx context.Context, c shiftkey.GroupCut) int {
	return b.hear(ctx, []shiftkey.GroupCut{c})
}

// tellSiblings has the backends of this process on the same server
// (Config.Siblings) end their sessions of role, whose membership of group
// this backend found turned unsafe (why).
func (b *Backend) tellSiblings(ctx context.Context, role, group, why string) {
	if b.cfg.Siblings == nil {
		return
	}
	c := shiftkey.GroupCut{Scope: b.cfg.Scope, Role: role, Group: group, Reason: why, At: b.recordTime()}
	for _, s := range b.cfg.Siblings() {
		s.HearSiblingCut(ctx, c)
	}
}

// scopesOnServer is the backend's scope and its siblings' (Config.Siblings).
func (b *Backend) scopesOnServer() []string {
	return append([]string{b.cfg.Scope}, b.siblings()...)
}

// hear ends the live sessions that began before one of cuts (of the
// role each names), keeps the cuts for the logins under way (remember),
// and takes a recent cut's verdict on its group for this backend's own.
// It returns how many sessions it ended.
func (b *Backend) hear(ctx context.Context, cuts []shiftkey.GroupCut) int {
	if len(cuts) == 0 {
		return 0
	}
	for _, c := range b.remember(cuts) {
		// The revoking replica judged the group at the cut: a verdict of
		// ours reused since (outlivesFor) may be older, and would grant
		// the group again to the next session that asks.
		if b.recordTime().Sub(c.At) < outlivesFor+cutMargin {
			b.heedVerdict(c.Group, c.Reason)
		}
	}
	n := 0
	for i := range cuts {
		c := &cuts[i]
		var doomed []*Lease
		for _, l := range b.liveOf(c.Role) {
			if l.began(c) {
				doomed = append(doomed, l)
			}
		}
		n += b.endSessions(ctx, c.Role, c.Group, c.Reason, doomed)
	}
	return n
}

// oldestLive is when the oldest live session of role (every role: "")
// began, if there is one.
func (b *Backend) oldestLive(role string) (time.Time, bool) {
	b.liveMu.Lock()
	defer b.liveMu.Unlock()
	var oldest time.Time
	found := false
	for r, ls := range b.live {
		if role != "" && r != role {
			continue
		}
		for l := range ls {
			if !found || l.start.Before(oldest) {
				oldest, found = l.start, true
			}
		}
	}
	return oldest, found
}

// remember keeps cuts in heardUntil for heardFor (addLive), forgets those
// kept longer, and returns the cuts it did not keep already.
func (b *Backend) remember(cuts []shiftkey.GroupCut) (heard []shiftkey.GroupCut) {
	now := time.Now()
	b.liveMu.Lock()
	defer b.liveMu.Unlock()
	if b.heardUntil == nil {
		b.heardUntil = map[shiftkey.GroupCut]time.Time{}
	}
	for c, until := range b.heardUntil {
		if now.After(until) {
			delete(b.heardUntil, c)
		}
	}
	for _, c := range cuts {
		if _, ok := b.heardUntil[c]; !ok {
			b.heardUntil[c] = now.Add(heardFor)
			heard = append(heard, c)
		}
	}
	return heard
}

// heedVerdict takes why, another replica's verdict on group as it cut it,
// for this process's own (grantable's and the re-checks'), for
// outlivesFor as if it had read it itself.
func (b *Backend) heedVerdict(group, why string) {
	a := outlivesAnswer{why, b.now()}
	b.outlivesMu.Lock()
	defer b.outlivesMu.Unlock()
	keepAnswer(&b.outlivesSeen, group, a)
	keepAnswer(&b.unsafeSeen, group, a)
}

// liveSessions reports whether the backend has a live session, or a login
// under way.
func (b *Backend) liveSessions() bool {
	if b.preparing.Load() > 0 {
		return true
	}
	b.liveMu.Lock()
	defer b.liveMu.Unlock()
	return len(b.live) > 0
}

// CutRecheck is how often CutFeed has the backends read the cuts even
// without a change: one whose reading failed is read again.
const CutRecheck = 10 * time.Second

// CutFeed has every backend of this process end its sessions of a role
// whose group another replica revoked as it turned unsafe. It hears of
// cuts through Changed (the store's change feed, as revocation.Terminator
// hears of revoked credentials) and has the backends of the cut's scope
// read them (HearCuts) on its own goroutine (Run).
type CutFeed struct {
	Backends func() []*Backend
	Logger   *slog.Logger // nil: discard

	roles wakeset.Set[[2]string] // (scope, role); the zero key: every scope and role
}

// Changed notes a change from the store and returns at once: a cut names
// its scope and role. The zero Change says the feed was lost and regained,
// and any cut may have been missed meanwhile: every backend then reads
// every cut recorded since its oldest live session began, which the store
// keeps, so a missed cut ends the sessions it should have ended (late),
// and none that began after it. Sessions that began after a missed cut
// need nothing: the membership was gone when they logged in.
func (f *CutFeed) Changed(c shiftkey.Change) {
	var key [2]string
	switch c.Kind {
	case shiftkey.KindGroupCut:
		scope, role, ok := strings.Cut(c.Name, "\x00")
		if !ok {
			break // not one we wrote: read them all
		}
		key = [2]string{scope, role}
	case "":
	default:
		return
	}
	f.roles.Note(key)
}

// Run handles the noted changes until ctx is done. A scope's reads failing
// (the store unreachable: reads every 200 ms while the feed is behind) is
// a warning once, and their working again a note; the failures between
// are debug lines.
func (f *CutFeed) Run(ctx context.Context) {
	outages := map[string]*shiftkey.OutageLog{} // by scope
	f.roles.Run(ctx, CutRecheck, func(pending map[[2]string]bool) {
		for _, b := range f.Backends() {
			for key := range pending {
				if key != ([2]string{}) && !slices.Contains(b.scopesOnServer(), key[0]) {
					continue // another server's: a role of the same name there is another role
				}
				_, err := b.HearCuts(ctx, key[1])
				if ctx.Err() != nil {
					return
				}
				o := outages[b.Scope()]
				if o == nil {
					o = &shiftkey.OutageLog{}
					outages[b.Scope()] = o
				}
				o.Tell(ctx, f.logger(), "group cut check", err, "scope", b.Scope())
			}
		}
	})
}

// WhileBehind has the backends read the cuts each every, until ctx is
// done, while current says that the change feed Changed hears from is not
// current: a cut then reaches this process by no change. current is asked
// only while sessions are live (asking may send the feed a ping).
func (f *CutFeed) WhileBehind(ctx context.Context, current func() bool, every time.Duration) {
	f.roles.WhileBehind(ctx, every, func() bool {
		live := false
		for _, b := range f.Backends() {
			live = live || b.liveSessions()
		}
		return live && !current()
	})
}

func (f *CutFeed) logger() *slog.Logger {
	if f.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return f.Logger
}
