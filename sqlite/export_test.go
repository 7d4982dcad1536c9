package sqlite

// GroupCommits is how many transactions the group writer has committed.
func (d *DB) GroupCommits() uint64 { return d.writer.commits.Load() }

// QueuedWrites is how many writes wait for the group writer.
func (d *DB) QueuedWrites() int { return d.writer.q.Queued() }

// TakenWrites is how many writes the group writer has taken from its FIFO.
func (d *DB) TakenWrites() uint64 { return d.writer.q.Taken() }

// ForgetCredentials empties the login cache, stale entries too, as a
// restart does.
func (d *DB) ForgetCredentials() { d.cache.Forget() }
