package postgres

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
)

// DefaultGrantLease is how long a session grant stays its owner's after
// the owner's last renewal. The owner renews every third of it.
const DefaultGrantLease = 30 * time.Second

// RecordGrant notes a session grant as this process's, leased (idempotent:
// recording it again renews the lease).
func (d *DB) RecordGrant(ctx context.Context, g shiftkey.SessionGrant) error {
	_, err := d.write(ctx, nil, st(`INSERT INTO session_grants (scope, role, grp, owner, lease_until)
		VALUES ($1, $2, $3, $4, now() + $5::interval) ON CONFLICT (scope, role, grp, owner) DO UPDATE SET lease_until = excluded.lease_until`,
		g.Scope, g.Role, g.Group, d.origin, d.opts.lease))
	return err
}

// ForgetGrant removes this process's record of a grant, and the records of
// owners whose lease on it ran out: the grant was just revoked.
func (d *DB) ForgetGrant(ctx context.Context, g shiftkey.SessionGrant) error {
	_, err := d.write(ctx, nil, st(`DELETE FROM session_grants WHERE scope = $1 AND role = $2 AND grp = $3 AND (owner = $4 OR lease_until < now())`,
		g.Scope, g.Role, g.Group, d.origin))
	return err
}

// Grants lists the session grants of a scope that are this process's to
// reconcile: its own, and those whose owner stopped renewing (a replica
// that died). Grants other live replicas hold are theirs.
func (d *DB) Grants(ctx context.Context, scope string) ([]shiftkey.SessionGrant, error) {
	return queryAll(ctx, d.pool, func(r pgx.Row) (g shiftkey.SessionGrant, err error) {
		return g, r.Scan(&g.Scope, &g.Role, &g.Group, &g.LeftBy)
	}, `SELECT scope, role, grp, coalesce(string_agg(DISTINCT owner, ',' ORDER BY owner) FILTER (WHERE owner <> $2), '')
	FROM session_grants WHERE scope = $1 AND (owner = $2 OR lease_until < now()) GROUP BY scope, role, grp ORDER BY role, grp`,
		scope, d.origin)
}

// GrantHeldElsewhere reports whether another replica holds g under a
// live lease, or anyone (this process too) holds it in one of g.Siblings.
func (d *DB) GrantHeldElsewhere(ctx context.Context, g shiftkey.SessionGrant) (bool, error) {
	var held bool
	err := d.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM session_grants WHERE role = $2 AND grp = $3
		AND (scope = $1 AND owner <> $4 OR scope = ANY ($5)) AND lease_until >= now())`, g.Scope, g.Role, g.Group, d.origin, siblings(g)).Scan(&held)
	return held, err
}

// GrantLapsedElsewhere reports whether another replica's record of g (or
// anyone's in one of g.Siblings) outlived its lease (a replica dead,
// paused or cut off from the store).
func (d *DB) GrantLapsedElsewhere(ctx context.Context, g shiftkey.SessionGrant) (bool, error) {
	var lapsed bool
	err := d.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM session_grants WHERE role = $2 AND grp = $3
		AND (scope = $1 AND owner <> $4 OR scope = ANY ($5)) AND lease_until < now())`, g.Scope, g.Role, g.Group, d.origin, siblings(g)).Scan(&lapsed)
	return lapsed, err
}

// siblings is g.Siblings as a text[] parameter (never NULL).
func siblings(g shiftkey.SessionGrant) []string {
	if g.Siblings == nil {
		return []string{}
	}
	return g.Siblings
}

// GrantLease is the lease of this store's session grants; replicas sweep
// more often than that so that a dead replica's grants go soon after.
func (d *DB) GrantLease() time.Duration { return d.opts.lease }

// leaser renews this process's grant leases every third of the lease.
type leaser struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func startLeaser(d *DB, lease time.Duration) *leaser {
	ctx, cancel := context.WithCancel(context.Background())
	l := &leaser{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		t := time.NewTicker(lease / 3)
		defer t.Stop()
		var rechecked time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case <-d.clock.recheck:
				// At most one a second: a reading dropped (a slow round
				// trip) leaves the estimate as it was, and Now asks again.
				if time.Since(rechecked) >= time.Second {
					rechecked = time.Now()
					if err := d.readClock(ctx); err != nil && ctx.Err() == nil {
						slog.Default().Warn("store clock not read", "error", err)
					}
				}
				continue
			case <-t.C:
			}
			if _, err := d.pool.Exec(ctx, `UPDATE session_grants SET lease_until = now() + $2::interval WHERE owner = $1`, d.origin, lease); err != nil && ctx.Err() == nil {
				slog.Default().Warn("session grant lease renewal failed", "error", err)
			}
			if err := d.readClock(ctx); err != nil && ctx.Err() == nil {
				slog.Default().Warn("store clock not read", "error", err)
			}
			if err := d.renewGateways(ctx); err != nil && ctx.Err() == nil {
				slog.Default().Warn("gateway peer lease renewal failed", "error", err)
			}
			// Dead replicas' records go here too, not only when a cancel
			// is forwarded (GatewayPeers): where none ever is, they piled up.
			if err := d.purgeGatewayPeers(ctx); err != nil && ctx.Err() == nil {
				slog.Default().Warn("gateway peer purge failed", "error", err)
			}
		}
	}()
	return l
}

func (l *leaser) stop() {
	l.cancel()
	<-l.done
}

// AdvertiseGateway records that this process's gateway of scope takes
// cancel requests forwarded by the other replicas at address (host:port),
// leased as session grants are.
func (d *DB) AdvertiseGateway(ctx context.Context, scope, address string) error {
	d.advMu.Lock()
	defer d.advMu.Unlock()
	if d.advertised == nil {
		d.advertised = map[string]string{}
	}
	d.advertised[scope] = address
	return d.advertiseGateway(ctx, scope, address)
}

// renewGateways renews the leases of this process's gateways, writing
// again any record that went (purged by a replica after a long store
// outage, or deleted by hand): renewing by UPDATE alone would leave such
// a gateway unreachable by forwarded cancels until a restart.
//
// advMu is held across the writes (here, in AdvertiseGateway and in
// WithdrawGateway), so that a renewal cannot write back a record withdrawn
// while it ran.
func (d *DB) renewGateways(ctx context.Context) error {
	d.advMu.Lock()
	defer d.advMu.Unlock()
	var errs []error
	for scope, address := range d.advertised {
		errs = append(errs, d.advertiseGateway(ctx, scope, address))
	}
	return errors.Join(errs...)
}

func (d *DB) advertiseGateway(ctx context.Context, scope, address string) error {
	_, err := d.pool.Exec(ctx, `INSERT INTO gateway_peers (scope, owner, address, lease_until) VALUES ($1, $2, $3, now() + $4::interval)
		ON CONFLICT (scope, owner) DO UPDATE SET address = excluded.address, lease_until = excluded.lease_until`,
		scope, d.origin, address, d.opts.lease)
	return err
}

// WithdrawGateway removes this process's record of its gateway of scope.
func (d *DB) WithdrawGateway(ctx context.Context, scope string) error {
	d.advMu.Lock()
	defer d.advMu.Unlock()
	delete(d.advertised, scope)
	_, err := d.pool.Exec(ctx, `DELETE FROM gateway_peers WHERE scope = $1 AND owner = $2`, scope, d.origin)
	return err
}

// purgeGatewayPeers deletes the records of replicas dead for an hour (that
// did not close their store: SIGKILL, a lost host).
func (d *DB) purgeGatewayPeers(ctx context.Context) error {
	_, err := d.pool.Exec(ctx, `DELETE FROM gateway_peers WHERE lease_until < now() - interval '1 hour'`)
	return err
}

// GatewayPeers lists where the other live replicas' gateways of scope take
// forwarded cancel requests; expired records of dead replicas go as it
// reads.
func (d *DB) GatewayPeers(ctx context.Context, scope string) ([]string, error) {
	if err := d.purgeGatewayPeers(ctx); err != nil {
		return nil, err
	}
	return queryAll(ctx, d.pool, func(r pgx.Row) (a string, err error) { return a, r.Scan(&a) },
		`SELECT address FROM gateway_peers WHERE scope = $1 AND owner <> $2 AND lease_until >= now() ORDER BY address`, scope, d.origin)
}
