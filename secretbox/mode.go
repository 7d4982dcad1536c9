package secretbox

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/shiftkey/shiftkey/atomicfile"
)

// CheckPrivate refuses files that group or others may read or write, as
// ssh and PostgreSQL refuse their private keys: the error names each file
// and the command that fixes it. Missing files pass. Windows has no such
// mode bits and always passes.
func CheckPrivate(paths ...string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	var open []string
	var modes []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			open = append(open, p)
			modes = append(modes, fmt.Sprintf("%s is mode %04o", p, fi.Mode().Perm()))
		}
	}
	if len(open) == 0 {
		return nil
	}
	return fmt.Errorf("%s: group or others may read or write it, and it holds secrets; run: chmod 600 %s",
		strings.Join(modes, ", "), strings.Join(open, " "))
}

// LoadOrCreateRaw reads the 32 random bytes in the private file at path,
// creating it (0600) when it is missing. The gateway keys its decoy salts
// with such a secret. A file of another length is refused, named, and left
// as it is: a fresh secret in its place would change the decoy salt of
// every login without credentials while known logins keep theirs, so a
// name's salt asked before and after would tell whether it has any.
func LoadOrCreateRaw(path string) ([]byte, error) {
	if err := CheckPrivate(path); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err == nil && len(b) == 32 {
		return b, nil
	}
	if err == nil {
		return nil, fmt.Errorf("%s is %d bytes, not the 32 random bytes written there: restore it from a backup "+
			"(a new secret would change the decoy salts of logins without credentials)", path, len(b))
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	b = make([]byte, 32)
	rand.Read(b)
	// Renamed into place: a symbolic link at path is replaced, never
	// written through (its target truncated, or created).
	if err := atomicfile.Write(path, b, 0o600); err != nil {
		return nil, err
	}
	return b, nil
}
