package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	rss "github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
	"github.com/aws/smithy-go"
)

// credential is what the API step yields.
type credential struct {
	host       string
	port       int
	db         string // the database logins ask for
	user       string
	password   string
	expiration time.Time
}

// Actions, as a policy names them.
const (
	actDescribeClusters = "redshift:DescribeClusters"
	actGetClusterCreds  = "redshift:GetClusterCredentials"
	actGetWorkgroup     = "redshift-serverless:GetWorkgroup"
	actGetCredentials   = "redshift-serverless:GetCredentials"
)

// fetch asks the API for the endpoint and a fresh credential.
func fetch(ctx context.Context, opts Options) (*credential, *Problem) {
	if p := checkOptions(opts); p != nil {
		return nil, p
	}
	hc, p := httpClient(opts.Env)
	if p != nil {
		return nil, p
	}
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: opts.Env.AccessKeyID, SecretAccessKey: opts.Env.SecretAccessKey, SessionToken: opts.Env.SessionToken}, nil
	})
	var base *string
	if opts.Env.EndpointURL != "" {
		base = aws.String(opts.Env.EndpointURL)
	}
	call := func(f func(context.Context) error) error {
		cctx, cancel := context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
		return f(cctx)
	}
	c := &credential{}
	if opts.Workgroup != "" {
		api := rss.New(rss.Options{Region: opts.Env.Region, BaseEndpoint: base, Credentials: creds, HTTPClient: hc, Retryer: aws.NopRetryer{}})
		var wg *rss.GetWorkgroupOutput
		if err := call(func(ctx context.Context) (err error) {
			wg, err = api.GetWorkgroup(ctx, &rss.GetWorkgroupInput{WorkgroupName: aws.String(opts.Workgroup)})
			return err
		}); err != nil {
			return nil, apiProblem(actGetWorkgroup, err, opts)
		}
		if wg.Workgroup == nil || wg.Workgroup.Endpoint == nil || aws.ToString(wg.Workgroup.Endpoint.Address) == "" {
			return nil, &Problem{Step: actGetWorkgroup, Kind: KindOther, Message: "the workgroup has no endpoint yet", Hint: "wait until its status is AVAILABLE"}
		}
		c.host, c.port = aws.ToString(wg.Workgroup.Endpoint.Address), int(aws.ToInt32(wg.Workgroup.Endpoint.Port))
		in := &rss.GetCredentialsInput{WorkgroupName: aws.String(opts.Workgroup), DurationSeconds: aws.Int32(900)}
		if opts.DBName != "" {
			in.DbName = aws.String(opts.DBName)
		}
		var out *rss.GetCredentialsOutput
		if err := call(func(ctx context.Context) (err error) { out, err = api.GetCredentials(ctx, in); return err }); err != nil {
			return nil, notAvailable(apiProblem(actGetCredentials, err, opts), codeConflict, string(wg.Workgroup.Status))
		}
		c.user, c.password, c.expiration = aws.ToString(out.DbUser), aws.ToString(out.DbPassword), aws.ToTime(out.Expiration)
		// Serverless does not say its database; Redshift Serverless's default is dev.
		c.db = opts.DBName
		if c.db == "" {
			c.db = "dev"
		}
		return c, nil
	}
	api := redshift.New(redshift.Options{Region: opts.Env.Region, BaseEndpoint: base, Credentials: creds, HTTPClient: hc, Retryer: aws.NopRetryer{}})
	var dc *redshift.DescribeClustersOutput
	if err := call(func(ctx context.Context) (err error) {
		dc, err = api.DescribeClusters(ctx, &redshift.DescribeClustersInput{ClusterIdentifier: aws.String(opts.Cluster)})
		return err
	}); err != nil {
		return nil, apiProblem(actDescribeClusters, err, opts)
	}
	if len(dc.Clusters) == 0 || dc.Clusters[0].Endpoint == nil || aws.ToString(dc.Clusters[0].Endpoint.Address) == "" {
		return nil, &Problem{Step: actDescribeClusters, Kind: KindOther, Message: "the cluster has no endpoint yet", Hint: "wait until its status is available"}
	}
	cl := dc.Clusters[0]
	c.host, c.port = aws.ToString(cl.Endpoint.Address), int(aws.ToInt32(cl.Endpoint.Port))
	in := &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String(opts.Cluster), DbUser: aws.String(opts.DBUser),
		DurationSeconds: aws.Int32(900), AutoCreate: aws.Bool(opts.AutoCreate)}
	if opts.DBName != "" {
		in.DbName = aws.String(opts.DBName)
	}
	var out *redshift.GetClusterCredentialsOutput
	if err := call(func(ctx context.Context) (err error) { out, err = api.GetClusterCredentials(ctx, in); return err }); err != nil {
		return nil, notAvailable(apiProblem(actGetClusterCreds, err, opts), codeInvalidClusterState, aws.ToString(cl.ClusterStatus))
	}
	c.user, c.password, c.expiration = aws.ToString(out.DbUser), aws.ToString(out.DbPassword), aws.ToTime(out.Expiration)
	c.db = opts.DBName
	if c.db == "" {
		c.db = aws.ToString(cl.DBName)
	}
	return c, nil
}

// The codes of a credential call on a cluster or workgroup that is not
// available: its logins would fail, so no credential is issued.
const (
	codeInvalidClusterState = "InvalidClusterState" // GetClusterCredentials…: not "available"
	codeConflict            = "ConflictException"   // Serverless GetCredentials: not "AVAILABLE"
)

// notAvailable gives p, when the credential call answered code (the
// cluster or workgroup is not available), its own kind and what to do,
// told by the status DescribeClusters or GetWorkgroup reported just before.
func notAvailable(p *Problem, code, status string) *Problem {
	if p.Code != code {
		return p
	}
	p.Kind = KindNotAvailable
	const revive = "(dev starts a server that died again within about 2 s)"
	is := "not available"
	switch {
	case code == codeInvalidClusterState && status == "hardware-failure":
		p.Hint = "the cluster is hardware-failure: its server cannot be started again, and it will not become available by waiting: " +
			"delete it (DeleteCluster) and create it again (CreateCluster); dev's log names the damaged data dir"
		return p
	case code == codeInvalidClusterState:
		if status != "" && status != "available" {
			is = status
		}
		p.Hint = "the cluster is " + is + ": no credential until DescribeClusters says available; wait, then run doctor again " + revive +
			"; one that stays hardware-failure needs DeleteCluster and CreateCluster"
	default:
		if status != "" && status != "AVAILABLE" {
			is = status
		}
		p.Hint = "the workgroup is " + is + ": no credential until GetWorkgroup says AVAILABLE; wait, then run doctor again " + revive +
			"; a dev workgroup that stays MODIFYING has a server that cannot start (dev's log names it and its data dir): DeleteWorkgroup and CreateWorkgroup it"
	}
	return p
}

func checkOptions(opts Options) *Problem {
	bad := func(msg, hint string) *Problem {
		return &Problem{Step: "options", Kind: KindConfig, Message: msg, Hint: hint}
	}
	switch {
	case (opts.Cluster == "") == (opts.Workgroup == ""):
		return bad("give exactly one of --cluster and --workgroup", "")
	case opts.Cluster != "" && opts.DBUser == "":
		return bad("--db-user is required with --cluster", "GetClusterCredentials issues a credential for a named database user")
	case opts.Env.AccessKeyID == "" || opts.Env.SecretAccessKey == "":
		return bad("no AWS credentials in the environment", "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (dev: source DATA_DIR/dev.env)")
	case opts.Env.Region == "":
		return bad("no region in the environment", "set AWS_REGION (dev: us-east-1, in dev.env)")
	}
	if opts.Env.EndpointURL != "" {
		if u, err := url.Parse(opts.Env.EndpointURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return bad(fmt.Sprintf("AWS_ENDPOINT_URL %q is not an http(s) URL", opts.Env.EndpointURL), "dev: source DATA_DIR/dev.env")
		}
	}
	return nil
}

// nodeCAHint follows a hint on AWS_CA_BUNDLE: the AWS SDK for JavaScript
// v3 does not read it, and Node adds NODE_EXTRA_CA_CERTS to its trust
// store only when it starts (dev.env exports both).
const nodeCAHint = "; the AWS SDK for JavaScript does not read AWS_CA_BUNDLE: start node with NODE_EXTRA_CA_CERTS set to the same file"

// httpClient trusts AWS_CA_BUNDLE alone when it is set, as the AWS CLI
// does, and the system store otherwise.
func httpClient(env Env) (*http.Client, *Problem) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if env.CABundle != "" {
		pem, err := os.ReadFile(env.CABundle)
		if err != nil {
			return nil, &Problem{Step: "AWS_CA_BUNDLE", Kind: KindConfig, Message: err.Error(), Hint: "point AWS_CA_BUNDLE at the PEM file of the CA that signed the API's certificate (dev: DATA_DIR/tls/ca.crt)"}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &Problem{Step: "AWS_CA_BUNDLE", Kind: KindConfig, Message: env.CABundle + " holds no PEM certificate", Hint: "point AWS_CA_BUNDLE at a PEM CA certificate"}
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &http.Client{Transport: tr}, nil
}

var deniedAction = regexp.MustCompile(`perform: (\S+)`)

// apiProblem explains err of action: what failed and what to do.
func apiProblem(action string, err error, opts Options) *Problem {
	p := &Problem{Step: action, Kind: KindOther, Message: err.Error()}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		p.Code, p.Message = ae.ErrorCode(), ae.ErrorMessage()
		switch code := ae.ErrorCode(); {
		case code == "AccessDenied" || code == "AccessDeniedException" || code == "AccessDeniedFault" || code == "UnauthorizedOperation":
			p.Kind = KindAccessDenied
			denied := action
			if m := deniedAction.FindStringSubmatch(p.Message); m != nil {
				denied = m[1]
			}
			p.Hint = fmt.Sprintf("the caller may not call %s: allow it in an IAM policy of the caller (`shiftkey policy explain --action %s` shows which statement decides)", denied, denied)
			if denied == actGetClusterCreds && opts.AutoCreate {
				p.Hint += "; --auto-create also needs redshift:CreateClusterUser"
			}
		case strings.Contains(code, "NotFound"):
			p.Kind = KindNotFound
			if opts.Workgroup != "" {
				p.Hint = fmt.Sprintf("no workgroup %q in region %s at this endpoint: check --workgroup, AWS_REGION and AWS_ENDPOINT_URL", opts.Workgroup, opts.Env.Region)
			} else {
				p.Hint = fmt.Sprintf("no cluster %q in region %s at this endpoint: check --cluster, AWS_REGION and AWS_ENDPOINT_URL", opts.Cluster, opts.Env.Region)
			}
		case code == "InvalidClientTokenId" || code == "SignatureDoesNotMatch" || code == "UnrecognizedClientException" || code == "ExpiredToken" || code == "ExpiredTokenException" || code == "InvalidSignatureException":
			p.Kind = KindBadKeys
			p.Hint = "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (dev: source DATA_DIR/dev.env again: a new data dir has new keys)"
		}
		return p
	}
	endpoint := opts.Env.EndpointURL
	if endpoint == "" {
		endpoint = "the AWS endpoint of region " + opts.Env.Region
	}
	if tp := certProblem(err); tp != nil {
		p.Kind, p.Message = KindTLS, "TLS to "+endpoint+": "+tp.Message
		switch {
		case tp.UnknownAuthority && opts.Env.CABundle == "":
			p.Hint = "the API's certificate is signed by an unknown authority: set AWS_CA_BUNDLE=<the CA's PEM file> (dev: source DATA_DIR/dev.env, which sets it to DATA_DIR/tls/ca.crt)" + nodeCAHint
		case tp.UnknownAuthority:
			p.Hint = fmt.Sprintf("AWS_CA_BUNDLE=%s does not sign the API's certificate (issued by %q): point it at the CA that does (dev: DATA_DIR/tls/ca.crt of the running dev)", opts.Env.CABundle, tp.Issuer) + nodeCAHint
		case len(tp.Names) > 0:
			p.Hint = "hostname mismatch: set AWS_ENDPOINT_URL to a host the certificate names: " + strings.Join(tp.Names, ", ")
		default:
			p.Hint = "the API's certificate cannot be verified: " + tp.Message
		}
		return p
	}
	var ne net.Error
	var oe *net.OpError
	var dnsErr *net.DNSError
	if errors.As(err, &oe) || errors.As(err, &dnsErr) || errors.As(err, &ne) {
		p.Kind = KindUnreachable
		p.Message = "cannot reach " + endpoint + ": " + innermost(err)
		p.Hint = "is the API running and AWS_ENDPOINT_URL right? (dev: `shiftkey dev` prints it and writes it to dev.env)"
		return p
	}
	if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		p.Kind = KindTLS
		p.Hint = "the endpoint speaks plain HTTP: use an http:// AWS_ENDPOINT_URL, or configure api.tls on the server"
	}
	return p
}

// innermost is the last message of err's chain, without the SDK's
// operation and request prefixes.
func innermost(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}
