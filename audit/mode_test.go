package audit

import (
	"os"
	"path/filepath"
	"testing"
)

// Found in an operator's review: an audit file that existed with mode 0644
// stayed 0644, where operations.md says 0600. Opening and reopening (after
// a rotation tool made the new file 0644) make it 0600.
func TestAuditFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	mode := func() os.FileMode {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	if m := mode(); m != 0o600 {
		t.Fatalf("audit file opened with mode %o, want 600", m)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	if m := mode(); m != 0o600 {
		t.Fatalf("audit file reopened with mode %o, want 600", m)
	}
}
