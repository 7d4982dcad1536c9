package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiftkey/shiftkey/config"
)

// Found in an operator-surface review: serve read backend_auth.ca_key_file
// whatever its mode. That key signs the client certificates the backends
// accept for any role in the cert login mode, so a copy readable by other
// local users let any of them log in to the backends as any role, and
// serve started without a word (dev refuses its own ca.key so, and serve
// its store key). It now refuses the key as it refuses the store key,
// naming the file and the chmod that fixes it.
func TestServeRefusesACAKeyOthersCanRead(t *testing.T) {
	dir := t.TempDir()
	keyPEM, err := os.ReadFile(filepath.Join(dev.DataDir, "tls", "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	caKey := filepath.Join(dir, "backend-ca.key")
	if err := os.WriteFile(caKey, keyPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(caKey, 0o644); err != nil {
		t.Fatal(err)
	}
	yaml := `
store: {sqlite: ` + filepath.Join(dir, "serve.db") + `}
api: {listen: "127.0.0.1:0"}
backend_auth: {ca_cert_file: ` + dev.CAPath + `, ca_key_file: ` + caKey + `}
`
	cfg, err := config.Parse(strings.NewReader(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	s := &Serve{Config: cfg, Logger: dev.Logger}
	err = s.Start(context.Background())
	s.Close()
	if err == nil || !strings.Contains(err.Error(), "chmod 600 "+caKey) {
		t.Fatalf("serve with a CA key of mode 0644: %v, want it refused with chmod 600 %s", err, caKey)
	}
}
