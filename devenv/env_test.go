package devenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiftkey/shiftkey"
)

// Found in a file-handling review: dev.env (it holds the dev access key's
// secret) was written with os.WriteFile to dev.env.tmp, then renamed. A
// dev.env.tmp left over by a crash kept its mode (0644 here, so dev.env
// came out readable by all), and a symbolic link planted there had the
// secret written through it into the file it points at. It is now written
// with atomicfile: a fresh 0600 file, renamed over dev.env.
func TestWriteEnvIgnoresLeftoverTemporaryFiles(t *testing.T) {
	for _, leftover := range []string{"file", "link"} {
		t.Run(leftover, func(t *testing.T) {
			dir := t.TempDir()
			d := &Dev{DataDir: dir, AccessKey: &shiftkey.AccessKey{ID: "AKIDEVENV", Secret: "devenv-secret"}}
			victim, tmp := filepath.Join(dir, "victim"), d.EnvPath()+".tmp"
			if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
				t.Fatal(err)
			}
			if leftover == "link" {
				if err := os.Symlink(victim, tmp); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(tmp, []byte("half"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := d.writeEnv(); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(victim); string(b) != "precious" {
				t.Fatalf("the file dev.env.tmp pointed at now holds %q", b)
			}
			b, err := os.ReadFile(d.EnvPath())
			if err != nil || !strings.Contains(string(b), "devenv-secret") {
				t.Fatalf("dev.env: %q %v", b, err)
			}
			if fi, _ := os.Stat(d.EnvPath()); fi.Mode().Perm() != 0o600 {
				t.Fatalf("dev.env is mode %04o, want 0600", fi.Mode().Perm())
			}
		})
	}
}

// Tools read dev's audit log from dev.env: the path writeEnv quotes comes
// back whole, and a dev.env without one says dev keeps none.
func TestAuditFileOfReadsDevEnv(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := AuditFileOf(dir); ok || err != nil {
		t.Fatalf("no dev.env: ok %v, err %v", ok, err)
	}
	d := &Dev{DataDir: dir, AccessKey: &shiftkey.AccessKey{ID: "AKIDEVENV", Secret: "s"}}
	if err := d.writeEnv(); err != nil {
		t.Fatal(err)
	}
	if path, ok, err := AuditFileOf(dir); path != "" || !ok || err != nil {
		t.Fatalf("dev.env without an audit log: %q %v %v", path, ok, err)
	}
	d.AuditFile = filepath.Join(dir, "it's a log", "audit $HOME.log")
	if err := os.Mkdir(filepath.Dir(d.AuditFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := d.Observe(false, d.AuditFile, Region); err != nil {
		t.Fatal(err)
	}
	defer d.Server.Close()
	if err := d.writeEnv(); err != nil {
		t.Fatal(err)
	}
	if path, ok, err := AuditFileOf(dir); path != d.AuditFile || !ok || err != nil {
		t.Fatalf("AuditFileOf: %q %v %v, want %q", path, ok, err, d.AuditFile)
	}
}
