package postgres

import "time"

// WriterCommits is how many transactions the group writer committed.
func WriterCommits(d *DB) uint64 { return d.writer.commits.Load() }

// WriterQueued is how many writes wait in the group writer's FIFO.
func WriterQueued(d *DB) int { return d.writer.q.Queued() }

// WriterTaken is how many writes the group writer has taken from its FIFO.
func WriterTaken(d *DB) uint64 { return d.writer.q.Taken() }

// SealLock is the advisory lock key that orders batches and rotations.
const SealLock = sealLock

// WriterComing is how many credentials issues have announced (LoginSalt)
// and not yet submitted.
func WriterComing(d *DB) int { return d.writer.q.Coming() }

// CredReads is how many times a login's credentials were read from the
// database (LiveCredentials not answered from memory, MissedCredentials).
func CredReads(d *DB) uint64 { return d.credReads.Load() }

// SetWriteWait sets how long an issue's write may wait for the group
// writer (writeWait); call it before the store is used.
func SetWriteWait(d *DB, wait time.Duration) { d.writer.wait = wait }

// SetKeyChangeRetries sets how many times the group writer retries a
// write whose key a rotation retired (keyChangeRetries); call it before
// the store is used.
func SetKeyChangeRetries(d *DB, n int) { d.writer.keyRetries = n }

// SetAfterKeyRead makes the group writer call f each time it has read
// the store's current key after a rotation, before it resolves the key;
// call it before the store is used.
func SetAfterKeyRead(d *DB, f func()) { d.writer.afterKeyRead = f }

// SetBeforeKeyFile makes d call f each time before it asks the store for
// the file of a key it does not hold; call it before the store is used.
func SetBeforeKeyFile(d *DB, f func()) { d.beforeKeyFile = f }

// ClockReadings is how many times d has read the store's clock.
func ClockReadings(d *DB) uint64 { return d.clock.readings.Load() }

// Classify is classify (outage.go).
func Classify(err error) error { return classify(err) }

// SetIdleCheck turns the check for connections the server closed while
// idle on or off (closedByServer); call it before the store is used.
func SetIdleCheck(d *DB, on bool) { d.noIdleCheck.Store(!on) }
