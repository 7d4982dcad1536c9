package pgwire

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestStartupParams(t *testing.T) {
	for _, tc := range []struct {
		in      map[string]string
		forward map[string]string
		ignored []string
	}{
		{
			in:      map[string]string{"user": "u", "database": "d", "application_name": "a", "client_protocol_version": "2", "search_path": "evil"},
			forward: map[string]string{"application_name": "a"},
			ignored: []string{"search_path"},
		},
		{
			in:      map[string]string{"options": `-c statement_timeout=5s -crole=postgres --lock-timeout=2s -c search_path=a\ b -d 5 --session_authorization=x -c`},
			forward: map[string]string{"statement_timeout": "5s", "lock_timeout": "2s"},
			ignored: []string{"-c (options)", "-d (options)", "5 (options)", "role (options)", "search_path (options)", "session_authorization (options)"},
		},
		{ // a direct setting wins over options, whatever its case
			in:      map[string]string{"Statement_Timeout": "1s", "options": "-c statement_timeout=9s -c TimeZone=UTC"},
			forward: map[string]string{"Statement_Timeout": "1s", "timezone": "UTC"},
		},
		{ // every Redshift driver parameter and its families go without a word; what a user could mean is named
			in: map[string]string{"client_protocol_version": "2", "driver_version": "d", "os_version": "o", "plugin_name": "p",
				"idp_type": "i", "provider_name": "p", "token_type": "t", "identity_namespace": "n", "idc_client_display_name": "c",
				"driver_discovery_version": "1", "driver_locale": "x", "plugin_flags": "x", "idp_tenant": "x", "compression_version": "2",
				"role": "admin", "session_authorization": "x", "Search_Path": "x"},
			forward: map[string]string{},
			ignored: []string{"Search_Path", "role", "session_authorization"},
		},
		{ // escaped white space stays in the value
			in:      map[string]string{"options": `-c application_name=a\ b\\c`},
			forward: map[string]string{"application_name": `a b\c`},
		},
	} {
		forward, ignored := startupParams(tc.in)
		if !reflect.DeepEqual(forward, tc.forward) || !reflect.DeepEqual(ignored, tc.ignored) {
			t.Errorf("startupParams(%q):\n forward %q, want %q\n ignored %q, want %q", tc.in, forward, tc.forward, ignored, tc.ignored)
		}
	}
}

func TestFalseParam(t *testing.T) {
	for v, want := range map[string]bool{"false": true, "f": true, "fal": true, "OFF": true, "of": true, "no": true, "n": true, "0": true,
		"true": false, "database": false, "on": false, "1": false, "yes": false, "o": false, "": false, "offf": false} {
		if got := falseParam(v); got != want {
			t.Errorf("falseParam(%q) = %v, want %v", v, got, want)
		}
	}
}

// Timeouts given at startup, directly or in options (PGOPTIONS), reach the
// backend; settings the gateway leaves out are named to the client in a
// WARNING, and cannot change the session's role or search_path. A
// replication connection is refused.
func TestStartupSettingsReachBackendOrAreNamed(t *testing.T) {
	// Plaintext only: over TLS a Redshift driver's parameters bring
	// Redshift's password digest, which pgx does not speak.
	plainRelays(t, func(t *testing.T, relay func(*Gateway)) {
		g, addr := newGateway(t, func(g *Gateway) {
			relay(g)
			g.PoolSize = 1
		})
		host, port, _ := net.SplitHostPort(addr)
		connect := func(params map[string]string) (*pgx.Conn, []*pgconn.Notice, error) {
			cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%s user=IAM:u password=pw sslmode=disable", host, port))
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var notices []*pgconn.Notice
			cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
				mu.Lock()
				notices = append(notices, n)
				mu.Unlock()
			}
			cfg.RuntimeParams = params
			c, err := pgx.ConnectConfig(context.Background(), cfg)
			mu.Lock()
			defer mu.Unlock()
			return c, notices, err
		}
		var first uint32
		for i := range 2 { // a fresh backend, then the pooled one, reset to the same settings
			c, notices, err := connect(map[string]string{
				"options":                             `-c statement_timeout=1234 -c role=pg_read_all_data --lock-timeout=2s -c search_path=evil`,
				"idle_in_transaction_session_timeout": "1min",
				"search_path":                         "evil",
				"client_protocol_version":             "2",
			})
			if err != nil {
				t.Fatal(err)
			}
			samePooledBackend(t, i, c.PgConn().PID(), &first)
			// Changed, then reset to the startup values. Not a timeout a
			// statement can meet: 5ms ran out under load in the SETs and
			// RESET ALL that followed it in the same query (57014).
			simple(t, c, "SET statement_timeout = '1h'; SET search_path = elsewhere; RESET ALL")
			var st, lt, it, sp, role string
			if err := c.QueryRow(context.Background(), "SELECT current_setting('statement_timeout'), current_setting('lock_timeout'), current_setting('idle_in_transaction_session_timeout'), current_setting('search_path'), current_user").Scan(&st, &lt, &it, &sp, &role); err != nil {
				t.Fatal(err)
			}
			if st != "1234ms" || lt != "2s" || it != "1min" || strings.Contains(sp, "evil") || role == "pg_read_all_data" {
				t.Errorf("statement_timeout %s, lock_timeout %s, idle_in_transaction_session_timeout %s, search_path %s, current_user %s", st, lt, it, sp, role)
			}
			var warned []string
			for _, n := range notices {
				if n.Severity == "WARNING" {
					warned = append(warned, n.Message)
				}
			}
			want := "startup settings not passed to the server: role (options), search_path, search_path (options)"
			if len(warned) != 1 || warned[0] != want {
				t.Errorf("warnings %q, want [%q]", warned, want)
			}
			closeToPool(t, g, c)
		}
		// What the Redshift drivers send, identity provider included (with
		// the JDBC driver's version: pgx does SCRAM here, which
		// redshift_connector cannot, TestPythonDriverToldWhatToDoInsteadOfSCRAM).
		c, notices, err := connect(map[string]string{"application_name": "quiet", "client_protocol_version": "2",
			"driver_version": "Amazon Redshift JDBC Driver 2.1.0.30", "os_version": "Linux-6.1", "plugin_name": "redshift_connector.plugin.BrowserAzureOAuth2CredentialsProvider",
			"idp_type": "AzureAD", "provider_name": "azure"})
		if err != nil {
			t.Fatal(err)
		}
		// The real backend's server_version, told as a plain number.
		if v := c.PgConn().ParameterStatus("server_version"); !regexp.MustCompile(`^[0-9]+\.[0-9]+$`).MatchString(v) {
			t.Errorf("server_version %q, want MAJOR.MINOR", v)
		}
		// Version 2 (binary transfers) is not confirmed, so the driver falls
		// back to 0 by itself.
		if v := c.PgConn().ParameterStatus("server_protocol_version"); v != "" {
			t.Errorf("server_protocol_version %q for a driver asking 2, want none", v)
		}
		c.Close(context.Background())
		if len(notices) != 0 {
			t.Errorf("notices for a driver's own parameters: %v", notices)
		}
		c, notices, err = connect(map[string]string{"client_protocol_version": "0", "driver_discovery_version": "1", "driver_future_flag": "x", "compression_version": "1"})
		if err != nil {
			t.Fatal(err)
		}
		if v := c.PgConn().ParameterStatus("server_protocol_version"); v != "0" {
			t.Errorf("server_protocol_version %q for a driver asking 0, want 0", v)
		}
		c.Close(context.Background())
		if len(notices) != 0 {
			t.Errorf("notices for driver parameters of the drivers' families: %v", notices)
		}
		for _, v := range []string{"database", "true"} {
			if _, _, err := connect(map[string]string{"replication": v}); code(err) != codeFeatureNotSupported {
				t.Errorf("replication=%s: %v, want SQLSTATE %s", v, err, codeFeatureNotSupported)
			}
		}
		c, _, err = connect(map[string]string{"replication": "false"})
		if err != nil {
			t.Fatalf("replication=false: %v", err)
		}
		c.Close(context.Background())
	})
}

// Whatever options and parameters a client sends, only allow-listed
// settings reach the backend, and every one it sent is forwarded, left out
// by name, or a driver's own.
func FuzzStartupParams(f *testing.F) {
	f.Add(`-c statement_timeout=5s -crole=postgres --lock-timeout=2s`, "search_path", "x")
	f.Add(`-c application_name=a\ b\\c -d 5 --session_authorization=x -c`, "client_protocol_version", "2")
	f.Add("\\", "options", "-c role=x")
	f.Fuzz(func(t *testing.T, options, name, value string) {
		in := map[string]string{"options": options, name: value}
		forward, ignored := startupParams(in)
		for k := range forward {
			if !forwardedParams[strings.ToLower(k)] {
				t.Fatalf("forwarded %q (options %q, %q=%q)", k, options, name, value)
			}
		}
		lower := strings.ToLower(name)
		if name != "options" && name != "user" && name != "database" && name != "replication" &&
			!forwardedParams[lower] && !driverFamily(lower) && !slices.Contains(ignored, name) {
			t.Fatalf("%q=%q neither forwarded nor named (ignored %q)", name, value, ignored)
		}
	})
}
