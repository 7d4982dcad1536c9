package pgserver

// SetFreePort replaces the port picker of AnyPort starts until the
// returned function restores it.
func SetFreePort(f func() (int, error)) (restore func()) {
	old := freePort
	freePort = f
	return func() { freePort = old }
}
