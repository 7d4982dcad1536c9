// Package doctor checks, for one cluster or workgroup, the whole path a
// client takes: a fresh credential and the endpoint from the credential
// API, then every login method the gateway may offer (SCRAM with and
// without TLS, verified TLS, channel binding, and the Redshift drivers'
// code 13 / MD5), and says which client families will work and what each
// needs. Most failures seen in the field are TLS and CA set-up, so every
// such failure carries the setting to change.
package doctor

import (
	"context"
	"errors"
	"time"
)

// Env is how the AWS CLI finds the API: endpoint, keys, region and the CA
// bundle for the endpoint's certificate.
type Env struct {
	EndpointURL     string // AWS_ENDPOINT_URL; "" → AWS's own endpoint for the region
	AccessKeyID     string // AWS_ACCESS_KEY_ID
	SecretAccessKey string // AWS_SECRET_ACCESS_KEY
	SessionToken    string // AWS_SESSION_TOKEN
	Region          string // AWS_REGION, else AWS_DEFAULT_REGION
	CABundle        string // AWS_CA_BUNDLE
}

// EnvFrom reads Env with getenv (os.Getenv).
func EnvFrom(getenv func(string) string) Env {
	region := getenv("AWS_REGION")
	if region == "" {
		region = getenv("AWS_DEFAULT_REGION")
	}
	return Env{
		EndpointURL:     getenv("AWS_ENDPOINT_URL"),
		AccessKeyID:     getenv("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken:    getenv("AWS_SESSION_TOKEN"),
		Region:          region,
		CABundle:        getenv("AWS_CA_BUNDLE"),
	}
}

// Options say what to check.
type Options struct {
	Cluster    string // a provisioned cluster, or
	Workgroup  string // a Redshift Serverless workgroup
	DBUser     string // GetClusterCredentials' DbUser (clusters only)
	DBName     string // "" → the credential is asked without DbName; logins use the cluster's database
	AutoCreate bool   // GetClusterCredentials' AutoCreate
	CA         string // the gateway's CA file (PGSSLROOTCERT); "" → the system store
	Env        Env
	Timeout    time.Duration // per API call and per login; 0 → 15s
}

// Kind classifies what went wrong with the credential API.
type Kind string

// Kinds of API problems.
const (
	KindConfig       Kind = "config"        // a flag or an environment variable is missing or wrong
	KindUnreachable  Kind = "unreachable"   // the endpoint does not answer
	KindTLS          Kind = "tls"           // the endpoint's certificate is not trusted
	KindAccessDenied Kind = "access-denied" // the principal may not call the action
	KindNotFound     Kind = "not-found"     // no such cluster or workgroup
	KindBadKeys      Kind = "bad-keys"      // the access key is unknown or the secret is wrong
	KindNotAvailable Kind = "not-available" // the cluster or workgroup is not available (rebooting, failed, modifying)
	KindOther        Kind = "error"
)

// Problem is why the doctor could not get a credential or an endpoint.
type Problem struct {
	Step    string // the API action, e.g. "redshift:GetClusterCredentials"
	Kind    Kind
	Code    string // the AWS error code, when the API answered
	Message string
	Hint    string // what to do
}

func (p *Problem) Error() string { return p.Step + ": " + p.Message }

// Method is a way of logging in to the gateway.
type Method string

// The methods tried, in order.
const (
	SCRAMPlain      Method = "scram-plain"       // SCRAM-SHA-256, sslmode=disable
	SCRAMRequire    Method = "scram-require"     // SCRAM-SHA-256, sslmode=require (no verification)
	SCRAMVerifyFull Method = "scram-verify-full" // SCRAM-SHA-256, sslmode=verify-full with the CA: the recommended path
	SCRAMPlus       Method = "scram-plus"        // SCRAM-SHA-256-PLUS, channel_binding=require over TLS
	DriverTLS       Method = "driver-tls"        // as a Redshift driver (code 13 / MD5) over verified TLS
	DriverPlain     Method = "driver-plain"      // as a Redshift driver without TLS
)

// Methods lists every method in the order they are tried and printed.
var Methods = []Method{SCRAMPlain, SCRAMRequire, SCRAMVerifyFull, SCRAMPlus, DriverTLS, DriverPlain}

// Outcome of one login attempt.
type Outcome string

// Outcomes.
const (
	OK         Outcome = "ok"
	Refused    Outcome = "refused"     // the gateway answered with an error (SQLSTATE)
	NotOffered Outcome = "not offered" // the gateway asked for another exchange, or has no TLS
	Failed     Outcome = "failed"      // TLS verification, network, or another client-side failure
)

// Result is one method's outcome.
type Result struct {
	Method   Method
	Outcome  Outcome
	Auth     string // the exchange the gateway asked for: SCRAM-SHA-256, SCRAM-SHA-256-PLUS, code 13, MD5…
	SQLState string // when Refused
	Message  string
	TLS      *TLSProblem // when a certificate check failed
	Hint     string
}

// Report is everything the doctor found.
type Report struct {
	Target     string // "cluster dev-cluster" or "workgroup default-workgroup"
	Problem    *Problem
	Host       string
	Port       int
	DBUser     string
	DBName     string
	Expiration time.Time
	CA         string
	Results    []Result
	Clients    []Client
	// OK: the recommended path, SCRAM over verify-full TLS, works.
	OK bool
}

// Result returns the result of m (zero if it was not tried).
func (r *Report) Result(m Method) Result {
	for _, x := range r.Results {
		if x.Method == m {
			return x
		}
	}
	return Result{}
}

// ErrNotHealthy is what a command returns, after printing the report, when
// the recommended path does not work.
var ErrNotHealthy = errors.New("the recommended path (SCRAM-SHA-256 over verify-full TLS) does not work")

// Run checks opts' cluster or workgroup. The report is always returned;
// Problem is set when the API step failed, and then no login is tried.
func Run(ctx context.Context, opts Options) *Report {
	if opts.Timeout == 0 {
		opts.Timeout = 15 * time.Second
	}
	r := &Report{CA: opts.CA}
	if opts.Workgroup != "" {
		r.Target = "workgroup " + opts.Workgroup
	} else {
		r.Target = "cluster " + opts.Cluster
	}
	c, p := fetch(ctx, opts)
	if p != nil {
		r.Problem = p
		return r
	}
	r.Host, r.Port, r.DBUser, r.DBName, r.Expiration = c.host, c.port, c.user, c.db, c.expiration
	r.Results = login(ctx, opts, c)
	r.Clients = advise(r, opts)
	r.OK = r.Result(SCRAMVerifyFull).Outcome == OK
	return r
}
