package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey/config"
)

// Found in a file-handling review: serve refused a store key or a backend
// CA key that group or others may read, but started with the private key
// of tls or api.tls at any mode. It now refuses them as it does the CA
// key: the field, the file and the chmod that fixes it.
func TestServeRefusesATLSKeyOthersCanRead(t *testing.T) {
	for _, field := range []string{"tls", "api.tls"} {
		t.Run(field, func(t *testing.T) {
			dir := t.TempDir()
			certFile, keyFile := writeServerCert(t, dir)
			if err := os.Chmod(keyFile, 0o644); err != nil {
				t.Fatal(err)
			}
			pair := "{cert_file: " + certFile + ", key_file: " + keyFile + "}"
			yaml := "store: {sqlite: " + filepath.Join(dir, "serve.db") + "}\n"
			if field == "tls" {
				yaml += "api: {listen: \"127.0.0.1:0\"}\ntls: " + pair + "\n"
			} else {
				yaml += "api: {listen: \"127.0.0.1:0\", tls: " + pair + "}\n"
			}
			cfg, err := config.Parse(strings.NewReader(yaml), func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			s := &Serve{Config: cfg, Logger: dev.Logger}
			err = s.Start(context.Background())
			s.Close()
			if err == nil || !strings.HasPrefix(err.Error(), field+".key_file: ") || !strings.Contains(err.Error(), "chmod 600 "+keyFile) {
				t.Fatalf("serve with a %s key of mode 0644: %v, want it refused under %s.key_file with chmod 600 %s", field, err, field, keyFile)
			}
		})
	}
}

// The same on SIGHUP: a reload that finds the new key open to others keeps
// serving the old certificate and logs why, and serve runs on; once the
// key is 0600 the next SIGHUP serves the new one.
func TestSIGHUPWithATLSKeyOthersCanReadKeepsTheOldCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeServerCert(t, dir)
	next := t.TempDir()
	nextCert, nextKey := writeServerCert(t, next)
	cfgPath := filepath.Join(dir, "serve.yaml")
	yaml := "store: {sqlite: " + filepath.Join(dir, "serve.db") + "}\napi: {listen: \"127.0.0.1:0\", tls: {cert_file: " + certFile + ", key_file: " + keyFile + "}}\n"
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, exited, logPath := startMain(t, "serve --config "+cfgPath)
	var api string
	waitUntil(t, 60*time.Second, "serve logs its API", func() bool {
		b, _ := os.ReadFile(logPath)
		for _, line := range strings.Split(string(b), "\n") {
			var r struct {
				Msg      string
				APIHTTPS string `json:"api_https"`
			}
			if json.Unmarshal([]byte(line), &r) == nil && r.Msg == "shiftkey serving" {
				api = strings.TrimPrefix(r.APIHTTPS, "https://")
			}
		}
		return api != ""
	})
	first, second := derOf(t, certFile), derOf(t, nextCert)
	if !bytes.Equal(apiCert(t, api), first) {
		t.Fatal("before the reload: not the first certificate")
	}
	for _, f := range [][2]string{{nextCert, certFile}, {nextKey, keyFile}} {
		b, _ := os.ReadFile(f[0])
		if err := os.WriteFile(f[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, 10*time.Second, "serve logs the failed reload and why", func() bool {
		b, _ := os.ReadFile(logPath)
		return bytes.Contains(b, []byte(`"msg":"reload failed"`)) && bytes.Contains(b, []byte("chmod 600 "+keyFile))
	})
	select {
	case err := <-exited:
		t.Fatalf("serve exited after the reload: %v", err)
	default:
	}
	if !bytes.Equal(apiCert(t, api), first) {
		t.Fatal("after a reload refused for the key's mode: not the old certificate")
	}
	if err := os.Chmod(keyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, 10*time.Second, "the new certificate after the key is 0600", func() bool { return bytes.Equal(apiCert(t, api), second) })
}
