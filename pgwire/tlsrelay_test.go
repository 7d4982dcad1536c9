package pgwire

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// OpenSSL clients, one per TLS 1.3 suite the loops carry, send KeyUpdates
// (with and without update_requested) between queries on a session the
// event loop carries, and read a result of several records: the loop
// follows the client's keys, answers with its own KeyUpdate, and OpenSSL
// reads everything after it. crypto/tls cannot send a KeyUpdate on demand;
// the client is testdata/keyupdate.c, built here.
func TestTLSKeyUpdateFromOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("cc"); err != nil {
		t.Skip("no C compiler for the OpenSSL client")
	}
	if _, err := os.Stat("/usr/include/openssl/ssl.h"); err != nil {
		t.Skip("no OpenSSL headers (apt-get install -y libssl-dev)")
	}
	bin := filepath.Join(t.TempDir(), "keyupdate")
	if out, err := exec.Command("cc", "-O", "-Wall", "-o", bin, "testdata/keyupdate.c", "-lssl", "-lcrypto").CombinedOutput(); err != nil {
		t.Fatalf("building the OpenSSL client: %v\n%s", err, out)
	}
	engines(t, func(t *testing.T, engine string) {
		r := eventRelay(t, 1, engine)
		cfg, _ := testTLS(t)
		g, addr := newGateway(t, func(g *Gateway) { g.Relay, g.TLS, g.RequireTLS, g.AllowCleartext, g.PoolSize = r, cfg, true, true, 1 })
		_, port, _ := net.SplitHostPort(addr)
		for i, suite := range []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"} {
			out, err := exec.Command(bin, port, "IAM:u", "pw", g.DefaultDB, suite).CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "ok "+suite {
				t.Fatalf("%s: %v\n%s", suite, err, out)
			}
			if st := r.Stats(); st.StartedTLS != int64(i+1) {
				t.Fatalf("%s: %d TLS sessions on the event loop, want %d", suite, st.StartedTLS, i+1)
			}
		}
		// Both ended with Terminate while idle: the backend went back to
		// the pool through the loop's reset.
		if !waitUntil(5e9, func() bool { return g.pooledCount() == 1 }) {
			t.Fatal("the backend was not pooled after the TLS sessions")
		}
	})
}
