// Package config is the file `shiftkey serve --config` reads: its types,
// ${ENV} expansion and validation with field-qualified errors, and the
// domain values it declares (clusters, workgroups, identities, the store
// key, TLS and limits).
package config

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shiftkey/shiftkey"
	shttp "github.com/shiftkey/shiftkey/http"
	"github.com/shiftkey/shiftkey/iam"
	"github.com/shiftkey/shiftkey/iamapi"
	"github.com/shiftkey/shiftkey/pgwire"
	"github.com/shiftkey/shiftkey/redshift"
	"github.com/shiftkey/shiftkey/secretbox"
	"go.yaml.in/yaml/v3"
)

// Config is the file `shiftkey serve --config` reads. See
// shiftkey.example.yaml for a commented example.
type Config struct {
	AccountID string `yaml:"account_id"`
	// Regions are the AWS regions served; clusters and workgroups live in
	// one of them (default: the first). Default: us-east-1.
	Regions     []string          `yaml:"regions"`
	Store       StoreConfig       `yaml:"store"`
	API         APIConfig         `yaml:"api"`
	Clusters    []ClusterConfig   `yaml:"clusters"`
	Workgroups  []WorkgroupConfig `yaml:"workgroups"`
	TLS         TLSConfig         `yaml:"tls"`
	Limits      Limits            `yaml:"limits"`
	BackendAuth BackendAuthConfig `yaml:"backend_auth"`
	IAM         IAMConfig         `yaml:"iam"`
	Admin       AdminConfig       `yaml:"admin"`
	Audit       AuditConfig       `yaml:"audit"`
	// ScramIterations is the SCRAM iteration count of logins created from
	// now on (0: scram.IssuedIterations); existing logins keep theirs.
	ScramIterations int `yaml:"scram_iterations"`
	// ProxyProtocol are the addresses (CIDRs or single addresses) of TCP
	// load balancers in front of the gateways that send a PROXY protocol
	// header (version 1 or 2: HAProxy's send-proxy-v2, an NLB's proxy
	// protocol): connections from them must send one, and are counted,
	// throttled and logged as the client it names.
	ProxyProtocol []string `yaml:"proxy_protocol"`
	// PeerHost is the host (name or address) the other replicas sharing
	// the store reach this one's gateways at, to forward cancel requests
	// their clients sent to the wrong replica (default: the gateway's
	// listen address, when it is one address).
	PeerHost string `yaml:"peer_host"`
}

// GatewayProxies are ProxyProtocol's prefixes.
func (c *Config) GatewayProxies() []netip.Prefix { return proxyPrefixes(c.ProxyProtocol) }

// AdminConfig is the operators' listener: /metrics (Prometheus), /healthz
// and /readyz. Listen is host:port, or "off".
type AdminConfig struct {
	Listen string `yaml:"listen"`
}

// Enabled reports whether the admin listener runs.
func (a AdminConfig) Enabled() bool { return a.Listen != "off" }

// DefaultAdminAddr is admin.listen's default: loopback, as metrics name
// clusters and counts. A variable so that tests can run many at once.
var DefaultAdminAddr = "127.0.0.1:9440"

// AuditConfig is where the audit log goes: a file (reopened on SIGHUP, for
// rotation), "-" for standard output, or "" for none.
type AuditConfig struct {
	File string `yaml:"file"`
}

// WorkgroupConfig declares a Redshift Serverless workgroup (and its
// namespace) backed by an existing PostgreSQL.
type WorkgroupConfig struct {
	Name          string        `yaml:"name"`
	Region        string        `yaml:"region"` // default: the first of regions
	Namespace     string        `yaml:"namespace"`
	Database      string        `yaml:"database"`
	AdminUsername string        `yaml:"admin_username"`
	Gateway       GatewayConfig `yaml:"gateway"`
	Backend       BackendConfig `yaml:"backend"`
}

// TLSConfig is the gateways' certificate; without it they speak plaintext.
type TLSConfig struct {
	CertPair `yaml:",inline"`
	// AllowCleartext asks TLS clients for the password in cleartext instead
	// of SCRAM, for drivers that cannot do SCRAM.
	AllowCleartext bool `yaml:"allow_cleartext"`
}

// CertPair is a listener's certificate and key (PEM files), shared by the
// gateways' tls and api.tls.
type CertPair struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	Require  bool   `yaml:"require"` // refuse clients that do not use TLS
}

// Enabled reports whether a certificate is configured.
func (p CertPair) Enabled() bool { return p.CertFile != "" }

// check reports a half-configured pair under field (tls, api.tls).
func (p CertPair) check(bad func(string, string, ...any), field string) {
	switch {
	case p.CertFile != "" && p.KeyFile == "":
		bad(field+".key_file", "required with cert_file")
	case p.CertFile == "" && p.KeyFile != "":
		bad(field+".cert_file", "required with key_file")
	}
	if p.Require && !p.Enabled() {
		bad(field+".require", "needs cert_file and key_file")
	}
}

// Load reads the pair into a server TLS config (TLS 1.2 or later); errors
// name the field.
func (p CertPair) Load(field string) (*tls.Config, error) {
	cert, err := p.Certificate(field)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil }}, nil
}

// Certificate reads the pair; errors name the field.
func (p CertPair) Certificate(field string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(p.CertFile)
	if err != nil {
		return nil, fmt.Errorf("%s.cert_file: %w", field, err)
	}
	// Whoever reads the key can pose as this listener: as the store key,
	// it must be the owner's alone. Start and SIGHUP both read it here.
	if err := secretbox.CheckPrivate(p.KeyFile); err != nil {
		return nil, fmt.Errorf("%s.key_file: %w", field, err)
	}
	keyPEM, err := os.ReadFile(p.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("%s.key_file: %w", field, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return &cert, nil
}

// StoreConfig chooses the store.
type StoreConfig struct {
	SQLite string `yaml:"sqlite"` // path of the database file
	// Postgres is the URL of a PostgreSQL database the replicas share
	// (usually ${SHIFTKEY_STORE_URL}), instead of SQLite.
	Postgres string `yaml:"postgres"`
	// GrantLease is how long a replica's session grants outlive its last
	// renewal (PostgreSQL store; default 30s): a replica that dies has its
	// grants revoked by another soon after.
	GrantLease time.Duration `yaml:"grant_lease"`
	// SecretKeyFile holds the store key that seals IAM secret keys and STS
	// session secrets (32 bytes, raw or base64; mode 0600). Instead:
	// SHIFTKEY_STORE_KEY; with neither, a key generated beside the store.
	SecretKeyFile string `yaml:"secret_key_file"`
}

// APIConfig is the AWS API listener.
type APIConfig struct {
	Listen string `yaml:"listen"`
	// TLS: with a certificate the port answers HTTPS, and plain HTTP too
	// unless require is set.
	TLS CertPair `yaml:"tls"`
	// TrustedProxies (CIDRs or addresses) may name the client in
	// ClientIPHeader (default X-Forwarded-For); aws:SourceIp is otherwise
	// the socket's peer.
	TrustedProxies []string `yaml:"trusted_proxies"`
	ClientIPHeader string   `yaml:"client_ip_header"`
}

// check validates the api block.
func (a APIConfig) check(bad func(string, string, ...any)) {
	if _, _, err := net.SplitHostPort(a.Listen); err != nil {
		bad("api.listen", "want host:port: %v", err)
	}
	a.TLS.check(bad, "api.tls")
	checkProxies(bad, "api.trusted_proxies", a.TrustedProxies)
	if a.ClientIPHeader != "" {
		if len(a.TrustedProxies) == 0 {
			bad("api.client_ip_header", "needs api.trusted_proxies: without them the header is never read")
		}
		if strings.Trim(a.ClientIPHeader, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			bad("api.client_ip_header", "want a header name of letters, digits and -, got %q", a.ClientIPHeader)
		}
	}
}

// ClientIP is where the API takes aws:SourceIp from.
func (a APIConfig) ClientIP() shttp.ClientIP {
	return shttp.ClientIP{Header: a.ClientIPHeader, TrustedProxies: proxyPrefixes(a.TrustedProxies)}
}

// checkProxies checks a list of proxies (api.trusted_proxies,
// proxy_protocol): CIDRs or addresses.
func checkProxies(bad func(string, string, ...any), field string, list []string) {
	for i, p := range list {
		if _, err := parseProxy(p); err != nil {
			bad(fmt.Sprintf("%s[%d]", field, i), "want a CIDR (10.0.0.0/8) or an address: %v", err)
		}
	}
}

// proxyPrefixes are the prefixes of a checked list of proxies.
func proxyPrefixes(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range list {
		if pfx, err := parseProxy(p); err == nil {
			out = append(out, pfx)
		}
	}
	return out
}

// parseProxy reads a trusted proxy: a CIDR or a single address.
func parseProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ClusterConfig declares a cluster backed by an existing PostgreSQL.
type ClusterConfig struct {
	Identifier     string `yaml:"identifier"`
	Region         string `yaml:"region"` // default: the first of regions
	Database       string `yaml:"database"`
	MasterUsername string `yaml:"master_username"`
	// AllowSuperuserMaster lets sessions run as the master user when it is
	// a superuser in the backend; no other superuser is ever a session role.
	AllowSuperuserMaster bool          `yaml:"allow_superuser_master"`
	Gateway              GatewayConfig `yaml:"gateway"`
	Backend              BackendConfig `yaml:"backend"`
}

// GatewayConfig is a cluster's client-facing endpoint.
type GatewayConfig struct {
	Listen    string `yaml:"listen"`
	Advertise string `yaml:"advertise"` // address DescribeClusters reports; default: the listen host
	// ServerVersion is the server_version clients are told (default: the
	// backend's number, e.g. 15.18); 8.0.2 for code that checks for Redshift.
	ServerVersion string `yaml:"server_version"`
	// RedshiftAuth is the password exchange for AWS's Redshift drivers:
	// sha256 (Redshift's digest, code 13; the default), md5, or off (SCRAM
	// like every client). RedshiftAuthPlaintext offers it without TLS too.
	RedshiftAuth          string `yaml:"redshift_auth"`
	RedshiftAuthPlaintext bool   `yaml:"redshift_auth_plaintext"`
}

// BackendConfig says how to reach the cluster's PostgreSQL.
type BackendConfig struct {
	Host      string `yaml:"host"` // unix socket directory or TCP host
	Port      int    `yaml:"port"`
	AdminUser string `yaml:"admin_user"`
	// Login: "trust" (private unix socket; the default), "cert" (TLS client
	// certificates from backend_auth's CA) or "password" (gateway-only
	// passwords for the roles shiftkey manages).
	Login string `yaml:"login"`
}

// BackendAuthConfig holds what the cert and password login modes need.
type BackendAuthConfig struct {
	CACertFile string `yaml:"ca_cert_file"` // the CA the backends trust (ssl_ca_file)
	CAKeyFile  string `yaml:"ca_key_file"`  // its key: the gateway signs per-role client certificates
	// PasswordSecret derives the gateway-only passwords; every replica
	// needs the same one (give it through ${ENV}).
	PasswordSecret string `yaml:"password_secret"`
}

// IAMConfig declares identities. At every start the store is made to hold
// exactly what it declares for them (removed keys, policies, attachments,
// memberships, tags and identities are removed); identities created
// through the IAM API are left alone.
type IAMConfig struct {
	Users    []UserConfig   `yaml:"users"`
	Groups   []GroupConfig  `yaml:"groups"`
	Roles    []RoleConfig   `yaml:"roles"`
	Policies []PolicyConfig `yaml:"policies"`
}

// UserConfig declares an IAM user.
type UserConfig struct {
	PrincipalConfig `yaml:",inline"`
	Tags            map[string]string `yaml:"tags"`
	Groups          []string          `yaml:"groups"`
	AccessKeys      []KeyConfig       `yaml:"access_keys"`
	// PermissionsBoundary names a policy under iam.policies that caps
	// what the user's policies allow; "" for none.
	PermissionsBoundary string `yaml:"permissions_boundary"`
}

// PrincipalConfig is what users, groups and roles all declare: a name, a
// path, inline policies (name to document) and attached managed policies.
type PrincipalConfig struct {
	Name            string            `yaml:"name"`
	Path            string            `yaml:"path"`
	Policies        map[string]string `yaml:"policies"`
	ManagedPolicies []string          `yaml:"managed_policies"`
}

// KeyConfig is an access key; give the values through ${ENV} expansion.
// Status is Active or Inactive; left out, a new key is Active and an
// existing one keeps the status it has (one deactivated through the API
// stays so).
type KeyConfig struct {
	ID     string `yaml:"id"`
	Secret string `yaml:"secret"`
	Status string `yaml:"status"`
}

// GroupConfig declares an IAM group.
type GroupConfig struct {
	PrincipalConfig `yaml:",inline"`
}

// RoleConfig declares an IAM role.
type RoleConfig struct {
	PrincipalConfig    `yaml:",inline"`
	TrustPolicy        string            `yaml:"trust_policy"`
	MaxSessionDuration int               `yaml:"max_session_duration"`
	Tags               map[string]string `yaml:"tags"`
	// PermissionsBoundary is as a user's.
	PermissionsBoundary string `yaml:"permissions_boundary"`
}

// PolicyConfig declares a customer-managed policy.
type PolicyConfig struct {
	Name        string `yaml:"name"`
	Path        string `yaml:"path"`
	Description string `yaml:"description"`
	Document    string `yaml:"document"`
}

// envRef is ${NAME} with an environment-style name; policy variables such as
// ${aws:username} never match it.
var envRef = regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)\}`)

// DefaultAPIAddr is api.listen's default, and dev's API address.
const DefaultAPIAddr = "127.0.0.1:9439"

// DefaultUnreadyDelay is serve's limits.unready_delay: a few readiness
// probes' time for the load balancers to take the replica out.
const DefaultUnreadyDelay = 5 * time.Second

// Parse reads a config, expanding ${NAME} from lookup (os.LookupEnv),
// and validates it.
func Parse(r io.Reader, lookup func(string) (string, bool)) (*Config, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	// Expand in scalar values only, so comments may mention ${NAME}.
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var missing []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			v := envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
				name := m[2 : len(m)-1]
				v, ok := lookup(name)
				if !ok {
					missing = append(missing, name)
				}
				return v
			})
			// A plain ${NAME} was read as a string; its value takes the type
			// it would have written in its place (port: ${PGPORT} is a
			// number), but never null, so a secret "~" stays "~". Quoted or
			// tagged ones stay strings. Marshal quotes what it must, so a
			// value never becomes structure.
			if v != n.Value && n.Style == 0 && !isYAMLNull(v) {
				n.Tag = ""
			}
			n.Value = v
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	if len(missing) > 0 {
		return nil, fmt.Errorf("config refers to unset environment variables: %s", strings.Join(missing, ", "))
	}
	expanded := []byte{}
	if len(doc.Content) > 0 {
		if expanded, err = yaml.Marshal(&doc); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	cfg := &Config{AccountID: shiftkey.DefaultAccountID, API: APIConfig{Listen: DefaultAPIAddr}, Limits: Limits{ShutdownGrace: 30 * time.Second, UnreadyDelay: DefaultUnreadyDelay},
		Admin: AdminConfig{Listen: DefaultAdminAddr}}
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		if te, ok := errors.AsType[*yaml.TypeError](err); ok {
			return nil, fmt.Errorf("config: %w", namedTypeErrors(expanded, te))
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	if len(cfg.Regions) == 0 {
		cfg.Regions = []string{shiftkey.DefaultRegion}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// isYAMLNull reports whether a plain scalar v would be read as null.
func isYAMLNull(v string) bool {
	switch v {
	case "", "~", "null", "Null", "NULL":
		return true
	}
	return false
}

// Load reads the config file at path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg, err := Parse(f, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// namedTypeErrors names the field of each of te's errors (yaml says only
// "line 12: cannot unmarshal !!str `abc` into time.Duration", and of the
// file as re-encoded after ${NAME} expansion, not as written): the field's
// path and what it wants, e.g. "limits.shutdown_grace: want a duration
// such as 30s, got \"abc\"".
func namedTypeErrors(doc []byte, te *yaml.TypeError) error {
	type field struct{ path, value string }
	byLine := map[int][]field{}
	var root yaml.Node
	if yaml.Unmarshal(doc, &root) == nil {
		var walk func(n *yaml.Node, path string)
		walk = func(n *yaml.Node, path string) {
			add := func(v *yaml.Node, p string) {
				if v.Kind == yaml.ScalarNode {
					byLine[v.Line] = append(byLine[v.Line], field{p, v.Value})
				}
				walk(v, p)
			}
			switch n.Kind {
			case yaml.DocumentNode:
				for _, c := range n.Content {
					walk(c, path)
				}
			case yaml.MappingNode:
				for i := 0; i+1 < len(n.Content); i += 2 {
					p := n.Content[i].Value
					if path != "" {
						p = path + "." + p
					}
					add(n.Content[i+1], p)
				}
			case yaml.SequenceNode:
				for i, c := range n.Content {
					add(c, fmt.Sprintf("%s[%d]", path, i))
				}
			}
		}
		walk(&root, "")
	}
	var msgs []string
	for _, e := range te.Errors {
		var line int
		msg := e
		if _, err := fmt.Sscanf(e, "line %d:", &line); err == nil {
			msg = strings.TrimSpace(e[strings.IndexByte(e, ':')+1:])
			value := ""
			if i := strings.IndexByte(msg, '`'); i >= 0 {
				if j := strings.IndexByte(msg[i+1:], '`'); j >= 0 {
					value = msg[i+1 : i+1+j]
				}
			}
			want := msg
			switch {
			case strings.HasSuffix(msg, "into time.Duration"):
				want = fmt.Sprintf("want a duration such as 30s or 1m, got %q", value)
			case strings.HasSuffix(msg, "into int"), strings.HasSuffix(msg, "into uint16"), strings.HasSuffix(msg, "into int64"):
				want = fmt.Sprintf("want a whole number, got %q", value)
			case strings.HasSuffix(msg, "into bool"):
				want = fmt.Sprintf("want true or false, got %q", value)
			}
			candidates := byLine[line]
			for _, f := range candidates {
				if len(candidates) == 1 || f.value == value {
					msg = f.path + ": " + want
					break
				}
			}
		}
		msgs = append(msgs, msg)
	}
	return errors.New(strings.Join(msgs, "; "))
}

// LoadForTool reads the config file at path as the commands that run
// beside a server need it (credentials, audit tail, store rotate-key,
// policy): its store and audit blocks (and account and regions) only. The
// ${NAME}s of the rest (IAM secrets, listener ports) need not be set: an
// auditor reading the audit log needs no IAM secret.
func LoadForTool(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: config: %w", path, err)
	}
	if len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode {
		m := doc.Content[0]
		var kept []*yaml.Node
		for i := 0; i+1 < len(m.Content); i += 2 {
			switch m.Content[i].Value {
			case "store", "audit", "account_id", "regions":
				kept = append(kept, m.Content[i], m.Content[i+1])
			}
		}
		m.Content = kept
	}
	b, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", path, err)
	}
	cfg, err := Parse(bytes.NewReader(b), os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

var iamName = regexp.MustCompile(`^[\w+=,.@-]+$`)

var validRegion = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

// MaxScramIterations bounds scram_iterations: every issue and login pays
// for them in CPU.
const MaxScramIterations = 1 << 20

// Validate checks the whole config and reports every problem with the path
// of the field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if len(c.AccountID) != 12 || strings.Trim(c.AccountID, "0123456789") != "" {
		bad("account_id", "must be 12 digits, got %q", c.AccountID)
	}
	switch {
	case c.Store.SQLite == "" && c.Store.Postgres == "":
		bad("store.sqlite", "required: the path of the SQLite database (or store.postgres: the URL of a PostgreSQL database replicas share)")
	case c.Store.SQLite != "" && c.Store.Postgres != "":
		bad("store.postgres", "store.sqlite is set too: keep one")
	}
	if c.Store.GrantLease != 0 && c.Store.GrantLease < 3*time.Second {
		bad("store.grant_lease", "want at least 3s, got %v", c.Store.GrantLease)
	}
	c.API.check(bad)
	checkProxies(bad, "proxy_protocol", c.ProxyProtocol)
	if h := c.PeerHost; h != "" {
		if _, _, err := net.SplitHostPort(h); err == nil || strings.ContainsAny(h, "/ []") {
			bad("peer_host", "want a host name or address without a port (each gateway's port is its listen port), got %q", h)
		}
	}
	if c.Admin.Enabled() {
		if _, _, err := net.SplitHostPort(c.Admin.Listen); err != nil {
			bad("admin.listen", "want host:port or off: %v", err)
		}
	}
	if c.ScramIterations < 0 || c.ScramIterations > MaxScramIterations {
		bad("scram_iterations", "must be between 1 and %d (0: the default), got %d", MaxScramIterations, c.ScramIterations)
	}
	served := map[string]bool{}
	for i, r := range c.Regions {
		if !validRegion.MatchString(r) {
			bad(fmt.Sprintf("regions[%d]", i), "must be a region name such as us-east-1, got %q", r)
		}
		served[r] = true
	}
	checkRegion := func(field, r string) {
		if r != "" && !served[r] {
			bad(field, "region %q is not among regions %v", r, c.Regions)
		}
	}
	seen := map[string]bool{}
	for i, cl := range c.Clusters {
		f := fmt.Sprintf("clusters[%d]", i)
		checkRegion(f+".region", cl.Region)
		if !redshift.ValidClusterIdentifier(cl.Identifier) {
			bad(f+".identifier", "must be 1-63 lowercase letters, digits or hyphens, start with a letter, no trailing or double hyphen: %q", cl.Identifier)
		}
		if seen[cl.Identifier] {
			bad(f+".identifier", "duplicate cluster %q", cl.Identifier)
		}
		seen[cl.Identifier] = true
		if cl.MasterUsername != "" && cl.MasterUsername == cl.Backend.AdminUser {
			bad(f+".master_username", "must differ from backend.admin_user %q: credentials are never issued for the provisioning role", cl.Backend.AdminUser)
		}
		c.checkEndpoint(bad, f, cl.Database, cl.Gateway, cl.Backend)
	}
	wgNames := map[string]bool{}
	for i, w := range c.Workgroups {
		f := fmt.Sprintf("workgroups[%d]", i)
		checkRegion(f+".region", w.Region)
		for _, n := range []struct{ field, v string }{{".name", w.Name}, {".namespace", w.Namespace}} {
			if len(n.v) < 3 || len(n.v) > 64 || strings.Trim(n.v, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
				bad(f+n.field, "must be 3-64 lowercase letters, digits or hyphens, got %q", n.v)
			}
		}
		if wgNames[w.Name] {
			bad(f+".name", "duplicate workgroup %q", w.Name)
		}
		wgNames[w.Name] = true
		c.checkEndpoint(bad, f, w.Database, w.Gateway, w.Backend)
	}
	for f, n := range map[string]int{"limits.max_connections": c.Limits.MaxConnections, "limits.max_connections_per_source": c.Limits.MaxConnectionsPerSource,
		"limits.max_auth_per_source": c.Limits.MaxAuthPerSource, "limits.api.max_header_bytes": c.Limits.API.MaxHeaderBytes,
		"limits.api.max_concurrent_requests": c.Limits.API.MaxConcurrentRequests} {
		if n < 0 {
			bad(f, "must not be negative (0: the default)")
		}
	}
	if c.Limits.GCHeapFloorMB < -1 {
		bad("limits.gc_heap_floor_mb", "must be -1 (off), 0 (the default) or a size in MiB")
	}
	if c.Limits.API.CPUSlots < -1 {
		bad("limits.api.cpu_slots", "must be -1 (no bound), 0 (the CPUs) or a count")
	}
	if c.Limits.Procs < -1 || c.Limits.Procs > 1024 {
		bad("limits.procs", "must be -1 (Go's default), 0 (the CPUs + 1 at scram_iterations >= 1024, else Go's) or a count up to 1024, got %d", c.Limits.Procs)
	}
	if c.Limits.PoolSize < 0 {
		bad("limits.pool_size", "must not be negative")
	}
	switch c.Limits.Relay {
	case "", "goroutine":
	case "event", pgwire.EngineIOURing, pgwire.EngineEpoll:
		if !pgwire.EventRelaySupported {
			bad("limits.relay", "%s needs Linux; use goroutine", c.Limits.Relay)
		}
	default:
		bad("limits.relay", "must be event, io_uring, epoll or goroutine, got %q", c.Limits.Relay)
	}
	switch c.Limits.RelaySched {
	case "", pgwire.SchedBatch, pgwire.SchedNormal, pgwire.SchedProcess:
	default:
		bad("limits.relay_sched", "must be batch, normal or process, got %q", c.Limits.RelaySched)
	}
	if c.Limits.RelayThreads < 0 || c.Limits.RelayThreads > 64 {
		bad("limits.relay_threads", "must be 0 (half of the CPUs) to 64, got %d", c.Limits.RelayThreads)
	}
	for f, d := range map[string]time.Duration{"limits.idle_timeout": c.Limits.IdleTimeout, "limits.max_session_lifetime": c.Limits.MaxSessionLifetime, "limits.shutdown_grace": c.Limits.ShutdownGrace, "limits.unready_delay": c.Limits.UnreadyDelay, "limits.pool_idle_timeout": c.Limits.PoolIdleTimeout,
		"limits.api.read_header_timeout": c.Limits.API.ReadHeaderTimeout, "limits.api.read_timeout": c.Limits.API.ReadTimeout,
		"limits.api.write_timeout": c.Limits.API.WriteTimeout, "limits.api.idle_timeout": c.Limits.API.IdleTimeout} {
		if d < 0 {
			bad(f, "must not be negative")
		}
	}
	c.TLS.CertPair.check(bad, "tls")
	if c.TLS.AllowCleartext && c.TLS.CertFile == "" {
		bad("tls.allow_cleartext", "needs cert_file and key_file: passwords never travel in cleartext without TLS")
	}
	for f, n := range map[string]struct{ have, max int }{"iam.users": {len(c.IAM.Users), shiftkey.MaxEntities[shiftkey.KindUser]},
		"iam.groups": {len(c.IAM.Groups), shiftkey.MaxEntities[shiftkey.KindGroup]}, "iam.roles": {len(c.IAM.Roles), shiftkey.MaxEntities[shiftkey.KindRole]},
		"iam.policies": {len(c.IAM.Policies), shiftkey.MaxManagedPolicies}} {
		if n.have > n.max {
			bad(f, "at most %d (IAM's account quota), got %d", n.max, n.have)
		}
	}
	policies := map[string]bool{}
	for i, p := range c.IAM.Policies {
		f := fmt.Sprintf("iam.policies[%d]", i)
		checkName(bad, f+".name", p.Name, 128)
		checkUnique(bad, f+".name", "policy", p.Name, policies)
		if p.Path != "" && !iamapi.ValidPolicyPath(p.Path) {
			bad(f+".path", "policy %q: must be / or begin and end with / with letters, digits and .,+@=_- between (IAM's policyPathType), got %q", p.Name, p.Path)
		}
		if n := utf8.RuneCountInString(p.Description); n > 1000 {
			bad(f+".description", "policy %q: %d characters, over IAM's 1000", p.Name, n)
		}
		checkPolicy(bad, f+".document", "policy", p.Name, p.Document)
		if n := iam.Size(p.Document); n > iamapi.ManagedPolicyLimit {
			bad(f+".document", "policy %q: %d characters (white space not counted), over IAM's %d for a managed policy", p.Name, n, iamapi.ManagedPolicyLimit)
		}
	}
	groups := map[string]bool{}
	for i, g := range c.IAM.Groups {
		g.check(bad, fmt.Sprintf("iam.groups[%d]", i), "group", 128, groups, policies)
	}
	keyIDs, users, roles := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i, u := range c.IAM.Users {
		f := fmt.Sprintf("iam.users[%d]", i)
		u.check(bad, f, "user", 64, users, policies)
		if len(u.AccessKeys) > shiftkey.MaxAccessKeysPerUser {
			bad(f+".access_keys", "at most %d access keys per user (IAM's quota), got %d", shiftkey.MaxAccessKeysPerUser, len(u.AccessKeys))
		}
		for j, k := range u.AccessKeys {
			kf := fmt.Sprintf("%s.access_keys[%d]", f, j)
			if len(k.ID) < 16 || len(k.ID) > 128 || !strings.HasPrefix(k.ID, "AKIA") {
				bad(kf+".id", "must be an AKIA… access key id of 16-128 characters")
			}
			if keyIDs[k.ID] {
				bad(kf+".id", "access key %s is declared twice", k.ID)
			}
			keyIDs[k.ID] = true
			if len(k.Secret) < 16 {
				bad(kf+".secret", "must be at least 16 characters (give it through ${ENV})")
			}
			if k.Status != "" && k.Status != "Active" && k.Status != "Inactive" {
				bad(kf+".status", "must be Active or Inactive, got %q", k.Status)
			}
		}
		for j, g := range u.Groups {
			if !groups[strings.ToLower(g)] {
				bad(fmt.Sprintf("%s.groups[%d]", f, j), "no group %q under iam.groups", g)
			}
		}
		if n := distinctFold(u.Groups); n > shiftkey.MaxGroupsPerUser {
			bad(f+".groups", "at most %d groups per user (IAM's quota), got %d", shiftkey.MaxGroupsPerUser, n)
		}
		checkTags(bad, f+".tags", u.Tags)
		checkBoundary(bad, f+".permissions_boundary", u.PermissionsBoundary, policies)
	}
	for i, r := range c.IAM.Roles {
		f := fmt.Sprintf("iam.roles[%d]", i)
		r.check(bad, f, "role", 64, roles, policies)
		if _, err := iamapi.ParseTrustPolicy(r.TrustPolicy); err != nil {
			bad(f+".trust_policy", "%v", err)
		}
		if err := iamapi.CheckDocument(r.TrustPolicy); err != nil {
			bad(f+".trust_policy", "role %q: %v", r.Name, err)
		}
		if n := iam.Size(r.TrustPolicy); n > iamapi.TrustPolicyLimit {
			bad(f+".trust_policy", "role %q: %d characters (white space not counted), over IAM's %d for a trust policy", r.Name, n, iamapi.TrustPolicyLimit)
		}
		if r.MaxSessionDuration != 0 && (r.MaxSessionDuration < 3600 || r.MaxSessionDuration > 43200) {
			bad(f+".max_session_duration", "must be 3600-43200 seconds, got %d", r.MaxSessionDuration)
		}
		checkTags(bad, f+".tags", r.Tags)
		checkBoundary(bad, f+".permissions_boundary", r.PermissionsBoundary, policies)
	}
	return errors.Join(errs...)
}

// check checks what every principal declares, at field path f: its name
// (at most maxName characters, unique among seen, the names of its kind),
// path, inline policies, and managed policies (each one of policies, the
// lower-cased names under iam.policies).
func (p PrincipalConfig) check(bad func(string, string, ...any), f, kind string, maxName int, seen, policies map[string]bool) {
	checkName(bad, f+".name", p.Name, maxName)
	checkUnique(bad, f+".name", kind, p.Name, seen)
	if p.Path != "" && !iamapi.ValidPath(p.Path) {
		bad(f+".path", "%s %q: must be / or begin and end with / with printable ASCII (no space) between, at most 512 characters (IAM's pathType), got %q", kind, p.Name, p.Path)
	}
	total := 0
	for name, doc := range p.Policies {
		checkName(bad, f+".policies."+name, name, 128)
		checkPolicy(bad, f+".policies."+name, kind, p.Name, doc)
		total += iam.Size(doc)
	}
	// IAM's inline quota is the aggregate of an identity's inline
	// policies, as the API's PutUserPolicy counts it.
	if limit := iamapi.InlineLimit[shiftkey.EntityKind(kind)]; total > limit {
		bad(f+".policies", "%s %q: its inline policies total %d characters (white space not counted), over IAM's %d for a %s", kind, p.Name, total, limit, kind)
	}
	for j, n := range p.ManagedPolicies {
		if !policies[strings.ToLower(n)] {
			bad(fmt.Sprintf("%s.managed_policies[%d]", f, j), "no policy %q under iam.policies", n)
		}
	}
	if n := distinctFold(p.ManagedPolicies); n > shiftkey.MaxAttachedPolicies {
		bad(f+".managed_policies", "at most %d managed policies per %s (IAM's quota), got %d", shiftkey.MaxAttachedPolicies, kind, n)
	}
}

// checkBoundary checks a user's or role's permissions_boundary at field
// path f: "" or the name of one of policies (lower-cased, as under
// iam.policies).
func checkBoundary(bad func(string, string, ...any), f, name string, policies map[string]bool) {
	if name != "" && !policies[strings.ToLower(name)] {
		bad(f, "no policy %q under iam.policies", name)
	}
}

// distinctFold counts the names of names regardless of case, as IAM
// tells them apart.
func distinctFold(names []string) int {
	seen := map[string]bool{}
	for _, n := range names {
		seen[strings.ToLower(n)] = true
	}
	return len(seen)
}

// checkEndpoint checks what clusters and workgroups share: the database,
// the gateway listener and the backend.
func (c *Config) checkEndpoint(bad func(string, string, ...any), f, db string, gw GatewayConfig, b BackendConfig) {
	if db == "" {
		bad(f+".database", "required")
	}
	if _, _, err := net.SplitHostPort(gw.Listen); err != nil {
		bad(f+".gateway.listen", "want host:port: %v", err)
	}
	if v := gw.ServerVersion; v != "" && (strings.Trim(v, "0123456789.") != "" || v[0] == '.' || strings.HasSuffix(v, ".") || strings.Contains(v, "..")) {
		bad(f+".gateway.server_version", "must be a version number such as 8.0.2, got %q", v)
	}
	switch gw.RedshiftAuth {
	case "", pgwire.RedshiftAuthSHA256, pgwire.RedshiftAuthMD5, pgwire.RedshiftAuthOff:
	default:
		bad(f+".gateway.redshift_auth", "must be sha256, md5 or off, got %q", gw.RedshiftAuth)
	}
	if gw.RedshiftAuthPlaintext && gw.RedshiftAuth == pgwire.RedshiftAuthOff {
		bad(f+".gateway.redshift_auth_plaintext", "has no effect with redshift_auth: off")
	}
	if b.Host == "" {
		bad(f+".backend.host", "required: a unix socket directory or a host name")
	}
	if b.Port < 1 || b.Port > 65535 {
		bad(f+".backend.port", "must be 1-65535, got %d", b.Port)
	}
	if b.AdminUser == "" {
		bad(f+".backend.admin_user", "required")
	}
	c.checkLogin(bad, f+".backend.login", b.Login)
}

func (c *Config) checkLogin(bad func(string, string, ...any), field, login string) {
	switch login {
	case "", "trust":
	case "cert":
		if c.BackendAuth.CACertFile == "" || c.BackendAuth.CAKeyFile == "" {
			bad(field, "cert needs backend_auth.ca_cert_file and backend_auth.ca_key_file")
		}
	case "password":
		if len(c.BackendAuth.PasswordSecret) < 16 {
			bad(field, "password needs backend_auth.password_secret of at least 16 characters")
		}
	default:
		bad(field, "must be trust, cert or password, got %q", login)
	}
}

func checkName(bad func(string, string, ...any), field, name string, max int) {
	if name == "" || len(name) > max || !iamName.MatchString(name) {
		bad(field, "must be 1-%d characters of letters, digits and +=,.@_-, got %q", max, name)
	}
}

// checkUnique reports a name declared twice: IAM names are unique per kind
// regardless of case. seen collects the lower-cased names.
func checkUnique(bad func(string, string, ...any), field, kind, name string, seen map[string]bool) {
	if seen[strings.ToLower(name)] {
		bad(field, "duplicate %s %q", kind, name)
	}
	seen[strings.ToLower(name)] = true
}

// checkPolicy checks the document of a policy of the identity of kind
// called name as the IAM API does when it is written: it parses, and holds
// only policyDocumentType's characters.
func checkPolicy(bad func(string, string, ...any), field, kind, name, doc string) {
	if _, err := iam.ParsePolicy(field, []byte(doc)); err != nil {
		bad(field, "%v", err)
	}
	if err := iamapi.CheckDocument(doc); err != nil {
		bad(field, "%s %q: %v", kind, name, err)
	}
}

func checkTags(bad func(string, string, ...any), field string, tags map[string]string) {
	if len(tags) > 50 {
		bad(field, "at most 50 tags")
	}
	for k, v := range tags {
		if err := iamapi.CheckTag(k, v); err != nil {
			bad(field+"."+k, "%s", err.(*shiftkey.Error).Message)
		}
	}
}
