package pgbackend

import "time"

// RoleExistsTTL is roleExistsTTL, for tests.
const RoleExistsTTL = roleExistsTTL

// SetClock replaces the clock of b's role-exists cache.
func SetClock(b *Backend, now func() time.Time) { b.now = now }
