package doctor

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Client is what one family of clients needs.
type Client struct {
	Family string
	Works  bool
	Needs  string // the settings to use, or why it will not work and what to do
}

// advise turns the results into advice per client family.
func advise(r *Report, opts Options) []Client {
	ok := func(m Method) bool { return r.Result(m).Outcome == OK }
	ca := opts.CA
	if ca == "" {
		ca = "<CA file>"
	}
	var out []Client
	// The best SCRAM path, or why none works.
	pg := func(family, full, plus, require, plain string) {
		c := Client{Family: family}
		switch {
		case ok(SCRAMVerifyFull):
			c.Works, c.Needs = true, full
			if ok(SCRAMPlus) && plus != "" {
				c.Needs += "; " + plus
			}
		case ok(SCRAMRequire):
			c.Works, c.Needs = true, require+" (unverified: fix verify-full, see above)"
		case ok(SCRAMPlain):
			c.Works, c.Needs = true, plain+" (no TLS: see above)"
		default:
			c.Needs = "no SCRAM login worked: " + firstHint(r, SCRAMVerifyFull, SCRAMRequire, SCRAMPlain)
		}
		out = append(out, c)
	}
	pg("psql / libpq", "sslmode=verify-full sslrootcert="+ca+" (or PGSSLROOTCERT)", "channel_binding=require (libpq 13+)", "sslmode=require", "sslmode=disable")
	pg("pgx (Go)", "sslmode=verify-full sslrootcert="+ca, "channel_binding=require", "sslmode=require", "sslmode=disable")
	pg("psycopg2 / psycopg", "sslmode='verify-full', sslrootcert='"+ca+"'", "channel_binding='require' (libpq 13+)", "sslmode='require'", "sslmode='disable'")
	pg("pgJDBC", "ssl=true&sslmode=verify-full&sslrootcert="+ca+" (or the CA in the Java trust store with sslfactory=org.postgresql.ssl.DefaultJavaSSLFactory)", "",
		"ssl=true&sslmode=require", "sslmode=disable")
	pg("node-postgres", "ssl: { ca: fs.readFileSync('"+ca+"') }", "", "ssl: { rejectUnauthorized: false }", "ssl: false")

	db := r.DBName
	if db == "" {
		db = "<database>"
	}
	dt, dp := r.Result(DriverTLS), r.Result(DriverPlain)
	// The drivers' own TLS failure, told with their own CA setting.
	why := func(caVar string) string {
		if dt.TLS != nil {
			return gatewayCAHint(dt.TLS, caVar, r.Host, opts)
		}
		return or(dt.Hint, dt.Message)
	}
	py := Client{Family: "redshift_connector (Python)"}
	jdbc := Client{Family: "Redshift JDBC"}
	switch {
	case dt.Outcome == OK:
		py.Works = true
		py.Needs = fmt.Sprintf("iam=True, ssl=True, sslmode='verify-full' (or its default verify-ca), database='%s' (without it the driver asks for DbName \"\", which is refused); "+
			"no root-certificate parameter: SSL_CERT_FILE=%s or the CA in the system store", db, ca) + pyAPI(opts.Env)
		jdbc.Works = true
		jdbc.Needs = fmt.Sprintf("jdbc:redshift:iam://%s:%d/%s?ssl=true&sslmode=verify-full&sslrootcert=%s (or the CA in the Java trust store)", r.Host, r.Port, db, ca)
	case dp.Outcome == OK:
		py.Works = true
		py.Needs = "only with ssl=False, so not with iam=True (which requires TLS); over TLS: " + why("SSL_CERT_FILE")
		jdbc.Works = true
		jdbc.Needs = "ssl=false only; over TLS: " + why("SSLRootCert")
	default:
		py.Needs = "will not log in: " + why("SSL_CERT_FILE")
		jdbc.Needs = "will not log in: " + why("SSLRootCert")
		// Offered SCRAM, the JDBC driver logs in with pgJDBC's SCRAM code.
		if dt.Outcome == NotOffered && strings.Contains(dt.Auth, "SCRAM") && (ok(SCRAMVerifyFull) || ok(SCRAMRequire)) {
			jdbc.Works = true
			jdbc.Needs = fmt.Sprintf("with SCRAM (the gateway offers it to drivers): jdbc:redshift:iam://%s:%d/%s?ssl=true&sslmode=verify-full&sslrootcert=%s", r.Host, r.Port, db, ca)
			if !ok(SCRAMVerifyFull) {
				jdbc.Needs = fmt.Sprintf("with SCRAM, unverified (fix verify-full, see above): ?ssl=true&sslfactory=com.amazon.redshift.ssl.NonValidatingFactory")
			}
		}
	}
	return append(out, py, jdbc)
}

// pyAPI is what redshift_connector's boto3 needs to reach this API: the
// endpoint (botocore before 1.31 ignores AWS_ENDPOINT_URL) and, over HTTPS
// with a private CA, AWS_CA_BUNDLE (boto3 does not read SSL_CERT_FILE).
func pyAPI(env Env) string {
	if env.EndpointURL == "" {
		return ""
	}
	s := "; for the API: endpoint_url='" + env.EndpointURL + "'"
	if env.CABundle != "" && strings.HasPrefix(env.EndpointURL, "https:") {
		s += " and AWS_CA_BUNDLE=" + env.CABundle + " (boto3 does not read SSL_CERT_FILE)"
	}
	return s
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func firstHint(r *Report, ms ...Method) string {
	for _, m := range ms {
		if x := r.Result(m); x.Hint != "" {
			return x.Hint
		}
	}
	return r.Result(ms[0]).Message
}

// Labels name the methods in the printed table.
var Labels = map[Method]string{
	SCRAMPlain:      "SCRAM-SHA-256, no TLS (sslmode=disable)",
	SCRAMRequire:    "SCRAM-SHA-256, TLS unverified (sslmode=require)",
	SCRAMVerifyFull: "SCRAM-SHA-256, TLS verify-full with the CA [recommended]",
	SCRAMPlus:       "SCRAM-SHA-256-PLUS (channel_binding=require)",
	DriverTLS:       "Redshift driver (code 13 / MD5), TLS verify-full",
	DriverPlain:     "Redshift driver (code 13 / MD5), no TLS",
}

// WriteText prints the report for people.
func (r *Report) WriteText(w io.Writer) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "shiftkey doctor: %s\n", r.Target)
	if p := r.Problem; p != nil {
		fmt.Fprintf(b, "\nFAILED at %s (%s", p.Step, p.Kind)
		if p.Code != "" {
			fmt.Fprintf(b, ", %s", p.Code)
		}
		fmt.Fprintf(b, "): %s\n", p.Message)
		if p.Hint != "" {
			fmt.Fprintf(b, "  → %s\n", p.Hint)
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	ca := r.CA
	if ca == "" {
		ca = "(system store)"
	}
	fmt.Fprintf(b, "credential: %s, database %s, expires %s\ngateway:    %s:%d, CA %s\n\n", r.DBUser, r.DBName, r.Expiration.Local().Format(time.RFC3339), r.Host, r.Port, ca)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "METHOD\tRESULT\tDETAIL")
	for _, x := range r.Results {
		detail := x.Auth
		switch x.Outcome {
		case Refused:
			detail = fmt.Sprintf("SQLSTATE %s: %s", x.SQLState, x.Message)
		case NotOffered, Failed:
			detail = x.Message
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", Labels[x.Method], x.Outcome, detail)
	}
	tw.Flush()
	var hints []string
	for _, x := range r.Results {
		if x.Hint != "" && x.Outcome != OK {
			hints = append(hints, fmt.Sprintf("  %s: %s", Labels[x.Method], x.Hint))
		}
	}
	if len(hints) > 0 {
		fmt.Fprintf(b, "\nWhat to do:\n%s\n", strings.Join(hints, "\n"))
	}
	fmt.Fprintln(b, "\nClients:")
	for _, c := range r.Clients {
		mark := "no "
		if c.Works {
			mark = "yes"
		}
		fmt.Fprintf(b, "  %s  %-28s %s\n", mark, c.Family, c.Needs)
	}
	if r.OK {
		fmt.Fprintln(b, "\nThe recommended path (SCRAM-SHA-256 over verify-full TLS) works.")
	} else {
		fmt.Fprintln(b, "\nThe recommended path (SCRAM-SHA-256 over verify-full TLS) does NOT work.")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
