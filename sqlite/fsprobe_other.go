//go:build !linux

package sqlite

// fsProbe is Linux's (fsprobe_linux.go): elsewhere there is none.
type fsProbe struct{}

func openFSProbe(string) *fsProbe { return nil }

func (*fsProbe) failed() error { return nil }

func (*fsProbe) close() {}
