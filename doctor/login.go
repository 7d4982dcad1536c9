package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shiftkey/shiftkey/rslogin"
)

// TLSProblem is why a certificate was not accepted.
type TLSProblem struct {
	UnknownAuthority bool     // no trusted CA signs the certificate
	Issuer           string   // the certificate's issuer, when its authority is unknown
	Names            []string // the names the certificate holds, when the host is not among them
	Expired          bool     // expired or not yet valid
	Message          string
}

// certProblem finds a certificate verification failure in err's chain.
func certProblem(err error) *TLSProblem {
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		tp := &TLSProblem{UnknownAuthority: true, Message: "certificate signed by unknown authority"}
		if ua.Cert != nil {
			tp.Issuer = ua.Cert.Issuer.String()
		}
		return tp
	}
	var he x509.HostnameError
	if errors.As(err, &he) {
		tp := &TLSProblem{Message: he.Error()}
		if he.Certificate != nil {
			tp.Names = append(tp.Names, he.Certificate.DNSNames...)
			for _, ip := range he.Certificate.IPAddresses {
				tp.Names = append(tp.Names, ip.String())
			}
		}
		return tp
	}
	var ci x509.CertificateInvalidError
	if errors.As(err, &ci) {
		return &TLSProblem{Expired: ci.Reason == x509.Expired, Message: ci.Error()}
	}
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return &TLSProblem{Message: cv.Err.Error()}
	}
	return nil
}

// gatewayCAHint says what to do about tp for a client given its CA by
// caVar (PGSSLROOTCERT, SSL_CERT_FILE…).
func gatewayCAHint(tp *TLSProblem, caVar string, host string, opts Options) string {
	dev := ""
	if opts.Env.CABundle != "" {
		dev = " (dev: $AWS_CA_BUNDLE in dev.env, " + opts.Env.CABundle + ")"
	} else {
		dev = " (dev: $AWS_CA_BUNDLE in dev.env)"
	}
	switch {
	case tp.UnknownAuthority && opts.CA == "":
		return fmt.Sprintf("the gateway's certificate is signed by an unknown authority: set %s=<the CA's PEM file>%s", caVar, dev)
	case tp.UnknownAuthority:
		return fmt.Sprintf("the gateway's certificate is signed by an unknown authority: %s does not sign it (issuer %q); set %s to the CA that does%s", opts.CA, tp.Issuer, caVar, dev)
	case len(tp.Names) > 0:
		return fmt.Sprintf("hostname mismatch: the certificate does not name %s; connect to one of %s", host, strings.Join(tp.Names, ", "))
	case tp.Expired:
		return "the gateway's certificate has expired or is not yet valid: renew it (tls.cert_file of the gateway)"
	}
	return "the gateway's certificate cannot be verified: " + tp.Message
}

// caPool reads opts.CA; nil when it is unset (the system store).
func caPool(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// login tries every method with credential c.
func login(ctx context.Context, opts Options, c *credential) []Result {
	pool, caErr := caPool(opts.CA)
	var out []Result
	for _, m := range Methods {
		cctx, cancel := context.WithTimeout(ctx, opts.Timeout)
		var r Result
		switch m {
		case SCRAMPlain:
			r = scram(cctx, c, opts, "sslmode=disable channel_binding=disable")
		case SCRAMRequire:
			r = scram(cctx, c, opts, "sslmode=require sslrootcert='' channel_binding=disable")
		case SCRAMVerifyFull:
			if caErr != nil {
				r = caFileResult(caErr)
			} else {
				r = scram(cctx, c, opts, "sslmode=verify-full sslrootcert="+quote(opts.CA)+" channel_binding=disable")
			}
		case SCRAMPlus:
			// Channel binding ties the SCRAM proof to the certificate the
			// client saw, so it is meaningful even unverified.
			r = scram(cctx, c, opts, "sslmode=require sslrootcert='' channel_binding=require")
			if r.Outcome == OK {
				r.Auth = "SCRAM-SHA-256-PLUS"
			}
		case DriverTLS:
			if caErr != nil {
				r = caFileResult(caErr)
			} else {
				r = driver(cctx, c, opts, &tls.Config{RootCAs: pool, ServerName: c.host})
			}
		case DriverPlain:
			r = driver(cctx, c, opts, nil)
		}
		cancel()
		r.Method = m
		out = append(out, r)
	}
	return out
}

func caFileResult(err error) Result {
	return Result{Outcome: Failed, Message: err.Error(),
		Hint: "the CA file (--ca / PGSSLROOTCERT) cannot be used: point it at the PEM certificate of the gateway's CA (dev: $AWS_CA_BUNDLE in dev.env)"}
}

// quote is a libpq connection-string value.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// scram logs in with pgx's libpq-compatible client, SCRAM only.
func scram(ctx context.Context, c *credential, opts Options, settings string) Result {
	// Everything that changes the attempt is spelled out, so that PG*
	// variables of the caller's environment do not.
	dsn := fmt.Sprintf("host=%s port=%d dbname=%s require_auth=scram-sha-256 sslnegotiation=postgres target_session_attrs=any sslcert='' sslkey='' %s",
		quote(c.host), c.port, quote(c.db), settings)
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return Result{Outcome: Failed, Message: innermost(err)}
	}
	cfg.User, cfg.Password = c.user, c.password
	cfg.RuntimeParams = map[string]string{"application_name": "shiftkey doctor"}
	cfg.Fallbacks = nil
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err == nil {
		conn.Close(ctx)
		return Result{Outcome: OK, Auth: "SCRAM-SHA-256"}
	}
	var pe *pgconn.PgError
	msg := err.Error()
	switch {
	case errors.As(err, &pe):
		return refused(pe.Code, pe.Message, opts)
	case certProblem(err) != nil:
		tp := certProblem(err)
		return Result{Outcome: Failed, Message: tp.Message, TLS: tp, Hint: gatewayCAHint(tp, "PGSSLROOTCERT", c.host, opts)}
	case strings.Contains(msg, "server refused TLS connection"):
		return Result{Outcome: NotOffered, Message: "the gateway does not offer TLS", Hint: "give the gateway a certificate (tls.cert_file, tls.key_file)"}
	case strings.Contains(msg, "authentication method requirement"):
		auth := ""
		if _, after, ok := strings.Cut(msg, "server requested "); ok {
			auth = strings.TrimSuffix(after, " authentication")
		}
		return Result{Outcome: NotOffered, Auth: auth, Message: "the gateway asked for " + auth + ", not SCRAM-SHA-256"}
	case strings.Contains(msg, "channel binding required but server does not support"):
		return Result{Outcome: NotOffered, Auth: "SCRAM-SHA-256", Message: "the gateway does not offer SCRAM-SHA-256-PLUS"}
	}
	return unreachable(err, c)
}

// driver logs in as redshift_connector 2.1.15 does.
func driver(ctx context.Context, c *credential, opts Options, tc *tls.Config) Result {
	s, err := rslogin.Login(ctx, net.JoinHostPort(c.host, strconv.Itoa(c.port)), rslogin.Config{Params: rslogin.DriverParams(c.user, c.db), Password: c.password, TLS: tc})
	auth := ""
	if s != nil && len(s.Auth) > 0 {
		auth = authName(s.Auth[0])
	}
	if err == nil {
		s.Close()
		return Result{Outcome: OK, Auth: auth}
	}
	var se *rslogin.ServerError
	// Where the gateway would offer a Redshift driver SCRAM, it tells
	// redshift_connector (whose startup packet this is) why it cannot log in.
	scramForDrivers := errors.As(err, &se) && se.Code == "28000" && strings.Contains(se.Message, "cannot log in with SCRAM")
	switch {
	case scramForDrivers || errors.Is(err, rslogin.ErrUnsupported):
		if scramForDrivers {
			auth = authName(rslogin.AuthSASL)
		}
		r := Result{Outcome: NotOffered, Auth: auth,
			Message: "the gateway asks Redshift drivers for " + auth + ", not code 13 or MD5 (redshift_connector's SCRAM fails with the scramp releases pip installs)"}
		if tc != nil {
			r.Hint = "set gateway.redshift_auth: sha256 (the default) or md5 for this " + strings.Fields(targetKind(opts))[0]
		} else {
			r.Hint = "code 13 and MD5 are offered over TLS only (gateway.redshift_auth_plaintext: true offers them without; they prove a verifier, not the password)"
		}
		return r
	case errors.As(err, &se):
		r := refused(se.Code, se.Message, opts)
		r.Auth = auth
		return r
	case certProblem(err) != nil:
		tp := certProblem(err)
		return Result{Outcome: Failed, Auth: auth, Message: tp.Message, TLS: tp, Hint: gatewayCAHint(tp, "--ca", c.host, opts)}
	case errors.Is(err, rslogin.ErrCleartextWithoutTLS):
		return Result{Outcome: Failed, Auth: auth, Message: "asked for the password in cleartext without TLS (not sent)",
			Hint: "a shiftkey gateway never asks that without TLS: something else answers at this address, or sits between you and it"}
	case strings.Contains(err.Error(), "does not offer TLS"):
		return Result{Outcome: NotOffered, Message: "the gateway does not offer TLS", Hint: "give the gateway a certificate (tls.cert_file, tls.key_file)"}
	}
	return unreachable(err, c)
}

func targetKind(opts Options) string {
	if opts.Workgroup != "" {
		return "workgroup"
	}
	return "cluster"
}

func authName(code int) string {
	switch code {
	case rslogin.AuthOK:
		return "none"
	case rslogin.AuthCleartext:
		return "cleartext password"
	case rslogin.AuthMD5:
		return "MD5"
	case rslogin.AuthSASL:
		return "SASL (SCRAM)"
	case rslogin.AuthDigest:
		return "code 13 (SHA-256 digest)"
	}
	return "code " + strconv.Itoa(code)
}

func refused(code, msg string, opts Options) Result {
	r := Result{Outcome: Refused, SQLState: code, Message: msg}
	switch {
	case code == "28000" && strings.Contains(msg, "does not exist"):
		r.Hint = "the database user does not exist: create it, or ask with --auto-create (redshift:CreateClusterUser)"
	case code == "28P01":
		r.Hint = "the gateway refused the fresh credential: is the API's store the gateway's? (AWS_ENDPOINT_URL of another shiftkey?)"
	case code == "28000" && strings.Contains(strings.ToLower(msg), "tls"):
		r.Hint = "the gateway requires TLS"
	}
	return r
}

func unreachable(err error, c *credential) Result {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return Result{Outcome: Failed, Message: innermost(err),
			Hint: fmt.Sprintf("nothing answers at %s: is the gateway running, and is the endpoint the API reports reachable from here?", net.JoinHostPort(c.host, strconv.Itoa(c.port)))}
	}
	return Result{Outcome: Failed, Message: innermost(err)}
}
