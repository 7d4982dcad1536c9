package config

import (
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/pgwire"
	"github.com/shiftkey/shiftkey/scram"
	"github.com/shiftkey/shiftkey/secretbox"
)

func TestExampleConfigParses(t *testing.T) {
	f, err := os.Open("../shiftkey.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{"CI_ACCESS_KEY_ID": "AKIAEXAMPLEEXAMPLE01", "CI_SECRET_ACCESS_KEY": "example-secret-0123456789"}
	cfg, err := Parse(f, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.IAM.Users[0].AccessKeys[0].ID != "AKIAEXAMPLEEXAMPLE01" {
		t.Fatalf("env not expanded: %+v", cfg.IAM.Users[0].AccessKeys)
	}
	if !strings.Contains(cfg.IAM.Policies[0].Document, "${aws:username}") {
		t.Fatal("a policy variable was taken for an environment variable")
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	base := `store: {sqlite: /tmp/x.db}
`
	tests := []struct{ yaml, want string }{
		{`api: {listen: nope}` + "\n" + base, "api.listen"},
		{`store: {}`, "store.sqlite"},
		{base + `account_id: "12"`, "account_id"},
		{base + `clusters: [{identifier: Bad_Name, database: dev, gateway: {listen: "127.0.0.1:0"}, backend: {host: /tmp, port: 5432, admin_user: a}}]`, "clusters[0].identifier"},
		{base + `clusters: [{identifier: ok, database: dev, gateway: {listen: "127.0.0.1:0"}, backend: {host: /tmp, port: 0, admin_user: a}}]`, "clusters[0].backend.port"},
		{base + `clusters: [{identifier: ok, database: dev, gateway: {listen: "127.0.0.1:0", server_version: "8.0.2 (Redshift)"}, backend: {host: /tmp, port: 5432, admin_user: a}}]`, "clusters[0].gateway.server_version"},
		{base + `workgroups: [{name: wg1, namespace: ns1, database: dev, gateway: {listen: "127.0.0.1:0", server_version: "8..0"}, backend: {host: /tmp, port: 5432, admin_user: a}}]`, "workgroups[0].gateway.server_version"},
		{base + `clusters: [{identifier: ok, database: dev, gateway: {listen: "127.0.0.1:0", redshift_auth: scram}, backend: {host: /tmp, port: 5432, admin_user: a}}]`, "clusters[0].gateway.redshift_auth"},
		{base + `iam: {users: [{name: "a b"}]}`, "iam.users[0].name"},
		{base + `iam: {users: [{name: u, groups: [nope]}]}`, "iam.users[0].groups[0]"},
		{base + `iam: {users: [{name: u, policies: {p: '{"Statement":[{"Effect":"Maybe"}]}'}}]}`, "iam.users[0].policies.p"},
		{base + `iam: {roles: [{name: r, trust_policy: '{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}'}]}`, "iam.roles[0].trust_policy"},
		{base + `iam: {users: [{name: u, access_keys: [{id: short, secret: s}]}]}`, "iam.users[0].access_keys[0].id"},
		{base + `iam: {users: [{name: u, managed_policies: [missing]}]}`, "iam.users[0].managed_policies[0]"},
		{base + `iam: {policies: [{name: p0, document: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'}, {name: p1, document: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'}, {name: p2, document: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'}, {name: p3, document: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'}, {name: p4, document: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'}, {name: p5, document: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'}, {name: p6, document: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'}, {name: p7, document: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'}, {name: p8, document: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'}, {name: p9, document: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'}, {name: p10, document: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'}], roles: [{name: r, managed_policies: [p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10], trust_policy: '{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}]}'}]}`, "iam.roles[0].managed_policies: at most 10"},
		{base + `iam: {groups: [{name: g0}, {name: g1}, {name: g2}, {name: g3}, {name: g4}, {name: g5}, {name: g6}, {name: g7}, {name: g8}, {name: g9}, {name: g10}], users: [{name: u, groups: [g0, g1, g2, g3, g4, g5, g6, g7, g8, g9, g10]}]}`, "iam.users[0].groups: at most 10"},
		{base + `iam: {users: [{name: u, tags: {RedshiftDbRoles: "reader; admin"}}]}`, "iam.users[0].tags.RedshiftDbRoles: Tag keys and values may hold only"},
		{base + `unknown_field: 1`, "unknown_field"},
		{base + `limits: {relay: kqueue}`, "limits.relay"},
		{base + `limits: {relay_threads: -1}`, "limits.relay_threads"},
		{base + `limits: {relay_sched: fifo}`, "limits.relay_sched"},
		{base + `scram_iterations: -1`, "scram_iterations"},
		{base + `scram_iterations: 2000000`, "scram_iterations"},
		{base + `iam: {users: [{name: u, access_keys: [{id: "${UNSET_KEY_ID}", secret: x}]}]}`, "UNSET_KEY_ID"},
	}
	for _, tt := range tests {
		_, err := Parse(strings.NewReader(tt.yaml), func(string) (string, bool) { return "", false })
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("config %q: error %v does not name %s", tt.yaml, err, tt.want)
		}
	}
}

func TestAPIConfigErrorsNameTheField(t *testing.T) {
	base := "store: {sqlite: /tmp/x.db}\n"
	tests := []struct{ yaml, want string }{
		{base + `api: {listen: "127.0.0.1:0", tls: {cert_file: /x.crt}}`, "api.tls.key_file: required with cert_file"},
		{base + `api: {listen: "127.0.0.1:0", tls: {key_file: /x.key}}`, "api.tls.cert_file: required with key_file"},
		{base + `api: {listen: "127.0.0.1:0", tls: {require: true}}`, "api.tls.require: needs cert_file and key_file"},
		{base + `api: {listen: "127.0.0.1:0", tls: {certfile: /x.crt}}`, "certfile"},
		{base + `api: {listen: "127.0.0.1:0", trusted_proxies: [10.0.0.0/8, 10.0.0.0/33]}`, "api.trusted_proxies[1]"},
		{base + `api: {listen: "127.0.0.1:0", trusted_proxies: [proxy.internal]}`, "api.trusted_proxies[0]"},
		{base + `api: {listen: "127.0.0.1:0", client_ip_header: X-Real-IP}`, "api.client_ip_header: needs api.trusted_proxies"},
		{base + `proxy_protocol: [10.0.0.0/8, lb.internal]`, "proxy_protocol[1]"},
		{base + `peer_host: "10.0.0.5:5439"`, "peer_host: want a host name or address without a port"},
		{base + `peer_host: "10.0.0.0/8"`, "peer_host: want a host name or address without a port"},
		{base + `peer_host: "[::1]"`, "peer_host: want a host name or address without a port"}, // the port's brackets come from listen
		{base + `limits: {shutdown_grace: abc}`, `limits.shutdown_grace: want a duration such as 30s or 1m, got "abc"`},
		{base + `limits: {max_connections: many}`, `limits.max_connections: want a whole number, got "many"`},
		{base + `api: {listen: "127.0.0.1:0", trusted_proxies: [10.0.0.1], client_ip_header: "X Real"}`, "api.client_ip_header"},
		{base + `tls: {cert_file: /x.crt}`, "tls.key_file: required with cert_file"},
	}
	for _, tt := range tests {
		_, err := Parse(strings.NewReader(tt.yaml), func(string) (string, bool) { return "", false })
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("config %q: error %v does not say %s", tt.yaml, err, tt.want)
		}
	}
	for _, h := range []string{"10.0.0.5", "2001:db8::5", "replica-0.shiftkey.svc"} {
		if _, err := Parse(strings.NewReader(base+"peer_host: \""+h+"\"\n"), func(string) (string, bool) { return "", false }); err != nil {
			t.Errorf("peer_host %s: %v", h, err)
		}
	}
	good := base + `api: {listen: "127.0.0.1:0", tls: {cert_file: /x.crt, key_file: /x.key}, trusted_proxies: [10.0.0.0/8, "2001:db8::/32", 192.0.2.7]}`
	cfg, err := Parse(strings.NewReader(good), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ip := cfg.API.ClientIP()
	if len(ip.TrustedProxies) != 3 || ip.TrustedProxies[2].String() != "192.0.2.7/32" || ip.Header != "" {
		t.Fatalf("client IP config %+v", ip)
	}
}

func TestConfigRegions(t *testing.T) {
	parse := func(y string) (*Config, error) {
		return Parse(strings.NewReader("store: {sqlite: /tmp/x.db}\n"+y), func(string) (string, bool) { return "", false })
	}
	cfg, err := parse("")
	if err != nil || len(cfg.Regions) != 1 || cfg.Regions[0] != shiftkey.DefaultRegion {
		t.Fatalf("default regions %v, %v", cfg, err)
	}
	cluster := `clusters: [{identifier: c, region: %s, database: dev, gateway: {listen: "127.0.0.1:0"}, backend: {host: /tmp, port: 5432, admin_user: a}}]`
	for _, tt := range []struct{ yaml, field string }{
		{`regions: [US-EAST-1]`, "regions[0]"},
		{`regions: [us-east-1, "xx nowhere"]`, "regions[1]"},
		{"regions: [us-east-1]\n" + strings.Replace(cluster, "%s", "eu-west-1", 1), "clusters[0].region"},
		{"workgroups: [{name: wg1, namespace: ns1, region: eu-west-1, database: dev, gateway: {listen: \"127.0.0.1:0\"}, backend: {host: /tmp, port: 5432, admin_user: a}}]", "workgroups[0].region"},
	} {
		if _, err := parse(tt.yaml); err == nil || !strings.Contains(err.Error(), tt.field+":") {
			t.Errorf("%s: error %v, want one naming %s", tt.yaml, err, tt.field)
		}
	}
	if _, err := parse("regions: [us-east-1, eu-west-1]\n" + strings.Replace(cluster, "%s", "eu-west-1", 1)); err != nil {
		t.Fatalf("a cluster in a served region: %v", err)
	}
}

// More than shiftkey.MaxAccessKeysPerUser keys for one user is a config
// error: the store refuses the third, so serve would fail at start.
func TestConfigAccessKeysAtMostTwo(t *testing.T) {
	yaml := `store: {sqlite: /tmp/x.db}
iam:
  users:
    - name: u
      access_keys:
        - {id: AKIAAAAAAAAAAAAAAAA1, secret: secret-0123456789-1}
        - {id: AKIAAAAAAAAAAAAAAAA2, secret: secret-0123456789-2}
        - {id: AKIAAAAAAAAAAAAAAAA3, secret: secret-0123456789-3}
`
	_, err := Parse(strings.NewReader(yaml), func(string) (string, bool) { return "", false })
	if err == nil || !strings.Contains(err.Error(), "iam.users[0].access_keys: at most 2") {
		t.Fatalf("3 keys for one user: %v", err)
	}
	for _, tt := range []struct{ status, want string }{{"Maybe", "iam.users[0].access_keys[0].status"}} {
		y := strings.Replace(yaml, "secret-0123456789-1}", "secret-0123456789-1, status: "+tt.status+"}", 1)
		_, err := Parse(strings.NewReader(y), func(string) (string, bool) { return "", false })
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("status %q: %v", tt.status, err)
		}
	}
	dup := strings.Replace(yaml, "AKIAAAAAAAAAAAAAAAA3", "AKIAAAAAAAAAAAAAAAA1", 1)
	if _, err := Parse(strings.NewReader(dup), func(string) (string, bool) { return "", false }); err == nil || !strings.Contains(err.Error(), "access_keys[2].id") {
		t.Errorf("a key declared twice: %v", err)
	}
}

func TestLimitsConfigValidation(t *testing.T) {
	for _, tc := range []struct{ limits, field string }{
		{`limits: {max_connections_per_source: -1}`, "limits.max_connections_per_source"},
		{`limits: {max_auth_per_source: -1}`, "limits.max_auth_per_source"},
		{`limits: {api: {read_timeout: -1s}}`, "limits.api.read_timeout"},
		{`limits: {api: {max_concurrent_requests: -1}}`, "limits.api.max_concurrent_requests"},
		{`limits: {api: {max_header_bytes: -1}}`, "limits.api.max_header_bytes"},
		{`limits: {api: {cpu_slots: -2}}`, "limits.api.cpu_slots"},
		{`limits: {gc_heap_floor_mb: -2}`, "limits.gc_heap_floor_mb"},
		{`limits: {procs: -2}`, "limits.procs"},
		{`limits: {procs: 1025}`, "limits.procs"},
	} {
		yaml := "store: {sqlite: /tmp/x.db}\n" + tc.limits + `
clusters: [{identifier: limited, database: dev, gateway: {listen: "127.0.0.1:0"}, backend: {host: /tmp, port: 5432, admin_user: a}}]`
		_, err := Parse(strings.NewReader(yaml), func(string) (string, bool) { return "", false })
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v, want an error naming %s", tc.limits, err, tc.field)
		}
	}
}

// serve's store key: store.secret_key_file, or SHIFTKEY_STORE_KEY, never
// both; with neither, one generated 0600 beside the store.
func TestStoreKeySources(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	c := StoreConfig{SQLite: filepath.Join(dir, "s.db")}
	k, file, err := c.Key(true, log)
	if err != nil || file != c.DefaultKeyFile() {
		t.Fatalf("generated key: %v %q", err, file)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated key mode %04o", fi.Mode().Perm())
	}
	if again, _, err := c.Key(true, log); err != nil || again.ID() != k.ID() {
		t.Fatalf("second start: %v", err)
	}

	raw := make([]byte, secretbox.KeySize)
	raw[0] = 7
	want, _ := secretbox.NewKey(raw)
	t.Setenv(EnvStoreKey, base64.StdEncoding.EncodeToString(raw))
	k, file, err = c.Key(true, log)
	if err != nil || file != "" || k.ID() != want.ID() {
		t.Fatalf("key from %s: %v %q", EnvStoreKey, err, file)
	}
	if _, set := os.LookupEnv(EnvStoreKey); set {
		t.Fatalf("%s left in the environment", EnvStoreKey)
	}

	t.Setenv(EnvStoreKey, base64.StdEncoding.EncodeToString(raw))
	c.SecretKeyFile = filepath.Join(dir, "store.key")
	if _, _, err := c.Key(true, log); err == nil || !strings.Contains(err.Error(), "both") {
		t.Fatalf("file and environment: %v", err)
	}
	os.Unsetenv(EnvStoreKey)
	if _, _, err := c.Key(true, log); err == nil {
		t.Fatal("a missing store.secret_key_file was accepted")
	}
	fk, err := secretbox.CreateKeyFile(c.SecretKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if k, file, err := c.Key(true, log); err != nil || k.ID() != fk.ID() || file != c.SecretKeyFile {
		t.Fatalf("key file: %v", err)
	}
}

// The declared backend's login mode "trust" is the domain's default mode;
// the others pass as they are.
func TestBackendLoginMode(t *testing.T) {
	for login, want := range map[string]string{"": shiftkey.BackendLoginTrust, "trust": shiftkey.BackendLoginTrust,
		"cert": shiftkey.BackendLoginCert, "password": shiftkey.BackendLoginPassword} {
		b := BackendConfig{Host: "/run/pg", Port: 5432, AdminUser: "admin", Login: login}.Backend()
		if b.Login != want || b.Host != "/run/pg" || b.Port != 5432 || b.AdminUser != "admin" {
			t.Errorf("login %q: %+v, want mode %q", login, b, want)
		}
	}
}

// limits.relay: goroutine (or no event relay on the platform) needs none;
// an engine named is the one asked for; relay_threads 0 is at least one.
func TestLimitsEventRelay(t *testing.T) {
	if _, ok := (Limits{Relay: "goroutine"}).EventRelay(); ok {
		t.Fatal("the goroutine relay asked for an event relay")
	}
	rc, ok := (Limits{}).EventRelay()
	if ok != pgwire.EventRelaySupported || ok && (rc.Threads < 1 || rc.Engine != "") {
		t.Fatalf("default relay: %+v %v", rc, ok)
	}
	if rc, ok := (Limits{Relay: pgwire.EngineEpoll, RelayThreads: 3, RelaySched: pgwire.SchedNormal}).EventRelay(); ok &&
		(rc.Engine != pgwire.EngineEpoll || rc.Threads != 3 || rc.Sched != pgwire.SchedNormal) {
		t.Fatalf("epoll relay: %+v", rc)
	}
}

// GOMAXPROCS is one more than the CPUs where issues derive their keys
// with many PBKDF2 iterations (the default), Go's own where they do not,
// unless limits.procs or the environment says otherwise; the defaults
// sized by the CPUs (cpu_slots, relay_threads) follow the CPUs Go found
// at start, not the raised GOMAXPROCS.
func TestLimitsProcs(t *testing.T) {
	t.Setenv("GOMAXPROCS", "")
	for _, tc := range []struct {
		procs, iterations, want int
	}{
		{0, 0, CPUs() + 1}, // the default iterations: 4096
		{0, 4096, CPUs() + 1},
		{0, 1024, CPUs() + 1},
		{0, 1023, 0},
		{0, 1, 0},
		{3, 1, 3},
		{-1, 4096, 0},
	} {
		if got := (Limits{Procs: tc.procs}).GoMaxProcs(tc.iterations); got != tc.want {
			t.Errorf("procs %d, scram_iterations %d: GOMAXPROCS %d, want %d (CPUs %d)", tc.procs, tc.iterations, got, tc.want, CPUs())
		}
	}
	t.Setenv("GOMAXPROCS", "5")
	if got := (Limits{}).GoMaxProcs(4096); got != 0 {
		t.Errorf("with GOMAXPROCS in the environment: %d, want Go's (0)", got)
	}
	wantSlots := CPUs()
	if scram.PairsDerivations() {
		wantSlots = 2 * CPUs()
	}
	if got := (APILimits{}).Slots(0); got != wantSlots {
		t.Errorf("default cpu_slots %d, want %d (CPUs %d, derivations paired: %v)", got, wantSlots, CPUs(), scram.PairsDerivations())
	}
	if got := (APILimits{}).Slots(1); got != CPUs() {
		t.Errorf("default cpu_slots at scram_iterations 1: %d, want the %d CPUs", got, CPUs())
	}
	if got := (APILimits{CPUSlots: -1}).Slots(0); got != -1 {
		t.Errorf("cpu_slots -1 became %d", got)
	}
	if got := (APILimits{CPUSlots: 3}).Slots(0); got != 3 {
		t.Errorf("cpu_slots 3 became %d", got)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4 * CPUs()))
	if rc, ok := (Limits{}).EventRelay(); ok && rc.Threads != max(1, CPUs()/2) {
		t.Errorf("default relay threads %d at GOMAXPROCS %d, want half the %d CPUs", rc.Threads, runtime.GOMAXPROCS(0), CPUs())
	}
}

// admin.listen defaults to loopback, "off" disables it, anything else must
// be host:port.
func TestAdminListen(t *testing.T) {
	base := "store: {sqlite: /tmp/x.db}\n"
	cfg, err := Parse(strings.NewReader(base), func(string) (string, bool) { return "", false })
	if err != nil || cfg.Admin.Listen != DefaultAdminAddr || !cfg.Admin.Enabled() {
		t.Fatalf("default: %+v, %v", cfg, err)
	}
	cfg, err = Parse(strings.NewReader(base+"admin: {listen: \"off\"}\naudit: {file: \"-\"}\n"), func(string) (string, bool) { return "", false })
	if err != nil || cfg.Admin.Enabled() || cfg.Audit.File != "-" {
		t.Fatalf("off: %+v, %v", cfg, err)
	}
	if _, err := Parse(strings.NewReader(base+"admin: {listen: \"9440\"}\n"), func(string) (string, bool) { return "", false }); err == nil || !strings.Contains(err.Error(), "admin.listen") {
		t.Fatalf("admin.listen 9440: %v, want an error naming admin.listen", err)
	}
}

// gc_heap_floor_mb: 0 is the default floor, -1 none, else MiB.
func TestLimitsGCHeapFloor(t *testing.T) {
	for _, tc := range []struct {
		mb   int
		want uint64
	}{{0, DefaultGCHeapFloorMB << 20}, {-1, 0}, {64, 64 << 20}} {
		if got := (Limits{GCHeapFloorMB: tc.mb}).GCHeapFloor(); got != tc.want {
			t.Errorf("gc_heap_floor_mb %d: %d bytes, want %d", tc.mb, got, tc.want)
		}
	}
}

// Found in an operator's review: audit tail, credentials and store
// rotate-key with --config needed every ${NAME} of the file set, IAM
// secrets and listener ports included; an auditor needed a CI secret to read
// the audit log. LoadForTool reads the store and audit blocks only.
func TestLoadForToolNeedsOnlyTheStoresVariables(t *testing.T) {
	path := filepath.Join(t.TempDir(), "serve.yaml")
	t.Setenv("TOOL_TEST_STORE", filepath.Join(t.TempDir(), "s.db"))
	yaml := `
store: {sqlite: "${TOOL_TEST_STORE}"}
audit: {file: /var/log/shiftkey/audit.log}
api: {listen: "127.0.0.1:${TOOL_TEST_UNSET_PORT}"}
iam:
  users:
    - name: ci
      access_keys: [{id: AKIATOOLTEST00000001, secret: "${TOOL_TEST_UNSET_SECRET}"}]
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "TOOL_TEST_UNSET_SECRET") {
		t.Fatalf("Load with unset variables: %v", err)
	}
	cfg, err := LoadForTool(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store.SQLite != os.Getenv("TOOL_TEST_STORE") || cfg.Audit.File != "/var/log/shiftkey/audit.log" || len(cfg.IAM.Users) != 0 {
		t.Fatalf("LoadForTool: store %q, audit %q, %d users", cfg.Store.SQLite, cfg.Audit.File, len(cfg.IAM.Users))
	}
	t.Setenv("TOOL_TEST_STORE", "")
	os.Unsetenv("TOOL_TEST_STORE")
	if _, err := LoadForTool(path); err == nil || !strings.Contains(err.Error(), "TOOL_TEST_STORE") {
		t.Fatalf("LoadForTool with the store's variable unset: %v", err)
	}
}

// Found in an operator-surface review: ${NAME} could give only strings. A
// number or a switch from the environment (port: ${PGPORT}, require:
// ${API_TLS_REQUIRE}) failed with "backend.port: want a whole number, got
// \"5432\"", because the expanded value kept the string tag of the
// reference it replaced. A plain (unquoted) reference now takes the type
// its value has, as if written in its place; a quoted one stays a string,
// and the value still never becomes YAML structure.
func TestEnvGivesNumbersAndSwitches(t *testing.T) {
	yaml := `store:
  sqlite: /tmp/x.db
scram_iterations: ${ITER}
limits:
  shutdown_grace: ${GRACE}
clusters:
  - identifier: ok
    database: dev
    gateway:
      listen: "127.0.0.1:0"
      redshift_auth_plaintext: ${PLAIN}
      advertise: ${ADV}
    backend:
      host: /tmp
      port: ${PGPORT}
      admin_user: "${ADMIN}"
iam:
  users:
    - name: u
      access_keys:
        - id: AKIAENVTYPES00000001
          secret: ${SECRET}
`
	env := map[string]string{"ITER": "1", "GRACE": "10s", "PLAIN": "true", "PGPORT": "5432", "ADMIN": "123",
		"ADV":    "~",
		"SECRET": "0123456789012345678: {x: y}\nregions: [eu-west-1]"}
	cfg, err := Parse(strings.NewReader(yaml), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	cl := cfg.Clusters[0]
	if cfg.ScramIterations != 1 || cfg.Limits.ShutdownGrace.String() != "10s" || !cl.Gateway.RedshiftAuthPlaintext || cl.Backend.Port != 5432 || cl.Backend.AdminUser != "123" {
		t.Fatalf("expanded: iterations %d, grace %v, plaintext %v, port %d, admin %q", cfg.ScramIterations, cfg.Limits.ShutdownGrace, cl.Gateway.RedshiftAuthPlaintext, cl.Backend.Port, cl.Backend.AdminUser)
	}
	if cl.Gateway.Advertise != "~" || len(cfg.Regions) != 1 || cfg.Regions[0] != "us-east-1" {
		t.Fatalf("advertise %q, regions %v: a value became null or structure", cl.Gateway.Advertise, cfg.Regions)
	}
	if got := cfg.IAM.Users[0].AccessKeys[0].Secret; got != env["SECRET"] {
		t.Fatalf("secret %q, want %q as given", got, env["SECRET"])
	}
}
