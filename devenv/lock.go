package devenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/shiftkey/shiftkey/server"
)

// lockDir takes the data dir for this process: a second shiftkey dev on it
// would stop the first one's PostgreSQL (pgserver stops a server it finds
// running there, which is right only when its parent was killed) and then
// fail on the ports.
func lockDir(dir string) (*os.File, error) {
	f, err := server.LockFile(filepath.Join(dir, "dev.lock"))
	if le, ok := errors.AsType[*server.LockedError](err); ok {
		return nil, fmt.Errorf("data dir %s is in use by another shiftkey dev (%s): stop it, or give this one --data-dir and other addresses", dir, le.Holder)
	}
	if err != nil {
		return nil, fmt.Errorf("lock data dir %s: %w", dir, err)
	}
	return f, nil
}
