//go:build !unix

package pgserver

// checkOwner has no owner to compare where there are no unix modes.
func checkOwner(string) error { return nil }

// oNoFollow: no such flag here.
const oNoFollow = 0

// processExists cannot tell here: the server is taken to run.
func processExists(int) bool { return true }
