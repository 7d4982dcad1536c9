package postgres

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// Replicas judge time by the store's clock, not each by its machine's:
// when credentials expire, when STS sessions do, how far a SigV4 request
// or a peer's cancel may be from now. A replica reads the store's clock at
// Open and at every lease renewal (a third of the grant lease) and goes on
// from the last reading by elapsed monotonic time, so that neither a
// machine clock minutes off nor one stepped while it runs (NTP) moves it.
// Leases are written and judged by the store's now() itself.
//
// ClockTolerance is how far this machine's clock may be from the store's
// and still be used as it is: within it, times are the machine's (tests
// and single-host setups see their own clock), beyond it the store's,
// give or take half a round trip to the store (at most maxClockRTT/2).
// Two replicas therefore agree within twice ClockTolerance.
const ClockTolerance = 500 * time.Millisecond

// maxClockRTT is the longest round trip a reading of the store's clock is
// taken from: a slower one could be off by half of it.
const maxClockRTT = 200 * time.Millisecond

// WithLocalClock sets the clock this machine reads (time.Now), which Open
// measures against the store's; tests set one to play a machine whose
// clock is off.
func WithLocalClock(now func() time.Time) Option {
	return func(o *options) { o.local = now }
}

// clockReading is the store's clock read at mono (a time.Now with its
// monotonic reading).
type clockReading struct {
	store, mono time.Time
	off         time.Duration // the store's clock less the machine's then
}

type storeClock struct {
	last   atomic.Pointer[clockReading]
	warned atomic.Bool // the last reading found the machine's clock off
	// readings counts the readings taken (tests).
	readings atomic.Uint64
	// recheck asks the leaser for a reading now: the machine's clock and
	// the estimate of the store's no longer move together.
	recheck chan struct{}
}

// readClock reads the store's clock; a reading from a slow round trip is
// dropped, the last one stands.
func (d *DB) readClock(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second) // the renewals wait behind it
	defer cancel()
	start := time.Now()
	var store time.Time
	if err := d.pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&store); err != nil {
		return err
	}
	rtt := time.Since(start)
	if rtt > maxClockRTT && d.clock.last.Load() != nil {
		return nil
	}
	off := store.Sub(d.opts.local().Add(-rtt / 2))
	d.clock.last.Store(&clockReading{store: store, mono: start.Add(rtt / 2), off: off})
	d.clock.readings.Add(1)
	if off > ClockTolerance || off < -ClockTolerance {
		if !d.clock.warned.Swap(true) {
			slog.Default().Warn("this machine's clock is off the store's: shiftkey keeps the store's time; set the machine's clock right (NTP)",
				"store_ahead_by", off.Round(time.Millisecond).String())
		}
	} else if d.clock.warned.Swap(false) {
		slog.Default().Info("this machine's clock agrees with the store's again")
	}
	return nil
}

// Now is the time by the store's clock: the machine's (with its monotonic
// reading) while that is within ClockTolerance of the store's, else the
// last reading of the store's plus the monotonic time elapsed since,
// without a monotonic reading of its own (local.Add(off) would carry the
// machine's shifted by off, and a step of the machine's clock, changing
// off, would then count as elapsed between two such times).
func (d *DB) Now() time.Time {
	local := d.opts.local()
	r := d.clock.last.Load()
	if r == nil {
		return local
	}
	since := time.Since(r.mono)
	store := r.store.Add(since)
	off := store.Sub(local)
	// The machine's clock stepped, or its monotonic clock stood still
	// while the machine was suspended (the estimate then lags): read the
	// store's again now, at most once a second.
	if moved := off - r.off; (moved > ClockTolerance || moved < -ClockTolerance) && since > time.Second {
		select {
		case d.clock.recheck <- struct{}{}:
		default:
		}
	}
	if off > ClockTolerance || off < -ClockTolerance {
		return store
	}
	return local
}
