//go:build !linux

package sqlite

// walIndexHeader is Linux's (walindex_linux.go): elsewhere outsideWrites
// asks PRAGMA data_version.
type walIndexHeader struct{}

func openWALIndexHeader(string) *walIndexHeader { return nil }

func openingStore(string) func() { return func() {} }

func (*walIndexHeader) read() changeMark { return changeMark{} }

func (*walIndexHeader) ok() bool { return false }

func (*walIndexHeader) release() {}
