package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
)

// groupCutsKept is how long a cut is kept for the other replicas: each
// reads it within a second through the change feed, or at its next poll
// or recheck (seconds) when the feed is behind, so only a replica that
// cannot read the store for that long misses one.
const groupCutsKept = 24 * time.Hour

// RecordGroupCut implements shiftkey.GroupCutStore: c, dated by the
// store's clock (c.Age before now(); c.At is ignored), and a KindGroupCut
// change, in one transaction; cuts older than groupCutsKept go meanwhile
// (cuts are rare).
func (d *DB) RecordGroupCut(ctx context.Context, c shiftkey.GroupCut) error {
	_, err := d.write(ctx, []shiftkey.Change{{Kind: shiftkey.KindGroupCut, Name: c.Scope + "\x00" + c.Role}},
		st(`DELETE FROM group_cuts WHERE at < now() - $1::interval`, groupCutsKept),
		st(`INSERT INTO group_cuts (scope, role, grp, reason, owner, at) VALUES ($1, $2, $3, $4, $5, now() - $6::interval)`,
			c.Scope, c.Role, c.Group, c.Reason, d.origin, max(c.Age, 0)))
	return err
}

// GroupCuts implements shiftkey.GroupCutStore: the cuts other processes
// recorded of scope (and role, unless "") at or after since, oldest first.
func (d *DB) GroupCuts(ctx context.Context, scope, role string, since time.Time) ([]shiftkey.GroupCut, error) {
	return queryAll(ctx, d.pool, func(r pgx.Row) (c shiftkey.GroupCut, err error) {
		err = r.Scan(&c.Scope, &c.Role, &c.Group, &c.Reason, &c.At)
		c.At = utc(c.At)
		return c, err
	}, `SELECT scope, role, grp, reason, at FROM group_cuts
		WHERE scope = $1 AND ($2 = '' OR role = $2) AND at >= $3 AND owner <> $4 ORDER BY at, id`, scope, role, since, d.origin)
}
