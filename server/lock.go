package server

// LockedError is a lock file (LockFile) another process holds.
type LockedError struct {
	Holder string // "process PID", or "another process"
}

func (e *LockedError) Error() string { return "locked by " + e.Holder }
