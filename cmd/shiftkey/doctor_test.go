package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/shiftkey/shiftkey/devca"
	"github.com/shiftkey/shiftkey/doctor"
)

// devEnv is dev.env as doctor reads it.
func devEnv() doctor.Env {
	return doctor.Env{EndpointURL: dev.APIHTTPSURL, AccessKeyID: dev.AccessKey.ID, SecretAccessKey: dev.AccessKey.Secret,
		Region: DevRegion, CABundle: dev.CAPath}
}

// wantOutcomes checks every method's outcome and, when given, the exchange.
func wantOutcomes(t *testing.T, r *doctor.Report, want map[doctor.Method]doctor.Outcome, auth map[doctor.Method]string) {
	t.Helper()
	if r.Problem != nil {
		t.Fatalf("API step failed: %+v", r.Problem)
	}
	if len(r.Results) != len(doctor.Methods) {
		t.Fatalf("%d results, want %d", len(r.Results), len(doctor.Methods))
	}
	for m, o := range want {
		got := r.Result(m)
		if got.Outcome != o {
			t.Errorf("%s: %s (%s %s; hint %q), want %s", m, got.Outcome, got.SQLState, got.Message, got.Hint, o)
		}
		if a, ok := auth[m]; ok && !strings.Contains(got.Auth, a) {
			t.Errorf("%s: exchange %q, want %q", m, got.Auth, a)
		}
	}
}

func client(r *doctor.Report, family string) doctor.Client {
	for _, c := range r.Clients {
		if strings.HasPrefix(c.Family, family) {
			return c
		}
	}
	return doctor.Client{}
}

var healthy = map[doctor.Method]doctor.Outcome{
	doctor.SCRAMPlain: doctor.OK, doctor.SCRAMRequire: doctor.OK, doctor.SCRAMVerifyFull: doctor.OK, doctor.SCRAMPlus: doctor.OK,
	doctor.DriverTLS: doctor.OK, doctor.DriverPlain: doctor.NotOffered,
}

var healthyAuth = map[doctor.Method]string{
	doctor.SCRAMVerifyFull: "SCRAM-SHA-256", doctor.SCRAMPlus: "SCRAM-SHA-256-PLUS",
	doctor.DriverTLS: "code 13", doctor.DriverPlain: "SCRAM",
}

// Against dev-cluster every method gets its real answer: SCRAM in every TLS
// mode, channel binding, code 13 for a driver over TLS, and SCRAM (so "not
// offered") for a driver without TLS; every client family works. The
// command prints the table and exits 0.
func TestDoctorDevCluster(t *testing.T) {
	user := fresh("doctorix")
	r := doctor.Run(context.Background(), doctor.Options{Cluster: DevCluster, DBUser: user, AutoCreate: true, CA: dev.CAPath, Env: devEnv()})
	wantOutcomes(t, r, healthy, healthyAuth)
	if !r.OK || r.DBUser != "IAMA:"+user || r.DBName != DevDatabase || r.Host != dev.Gateway.Address || r.Port != dev.Gateway.Port {
		t.Fatalf("report %+v", r)
	}
	for _, c := range r.Clients {
		if !c.Works {
			t.Errorf("%s: does not work: %s", c.Family, c.Needs)
		}
	}
	// By hand, redshift_connector's boto3 needed endpoint_url and trusted
	// the API's CA only through AWS_CA_BUNDLE (SSL_CERT_FILE is not read).
	if py := client(r, "redshift_connector"); !strings.Contains(py.Needs, "SSL_CERT_FILE="+dev.CAPath) || !strings.Contains(py.Needs, "database='dev'") ||
		!strings.Contains(py.Needs, "endpoint_url='"+dev.APIHTTPSURL+"'") || !strings.Contains(py.Needs, "AWS_CA_BUNDLE="+dev.CAPath) {
		t.Errorf("redshift_connector advice %q", py.Needs)
	}
	if pq := client(r, "psql"); !strings.Contains(pq.Needs, "sslmode=verify-full sslrootcert="+dev.CAPath) || !strings.Contains(pq.Needs, "channel_binding=require") {
		t.Errorf("psql advice %q", pq.Needs)
	}

	for k, v := range map[string]string{"AWS_ENDPOINT_URL": dev.APIHTTPSURL, "AWS_ACCESS_KEY_ID": dev.AccessKey.ID, "AWS_SECRET_ACCESS_KEY": dev.AccessKey.Secret,
		"AWS_REGION": DevRegion, "AWS_CA_BUNDLE": dev.CAPath, "PGSSLROOTCERT": dev.CAPath, "AWS_SESSION_TOKEN": ""} {
		t.Setenv(k, v)
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"doctor", "--cluster", DevCluster, "--db-user", user}, &out, &errOut); err != nil {
		t.Fatalf("doctor: %v\n%s%s", err, out.String(), errOut.String())
	}
	for _, w := range []string{"SCRAM-SHA-256-PLUS (channel_binding=require)", "code 13 (SHA-256 digest)", "not offered", "recommended path (SCRAM-SHA-256 over verify-full TLS) works"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
}

// default-workgroup through Serverless GetWorkgroup and GetCredentials.
func TestDoctorDefaultWorkgroup(t *testing.T) {
	r := doctor.Run(context.Background(), doctor.Options{Workgroup: DevWorkgroup, CA: dev.CAPath, Env: devEnv()})
	wantOutcomes(t, r, healthy, healthyAuth)
	if !r.OK || r.DBUser != "IAM:"+DevAdminUser || r.Port == dev.Gateway.Port {
		t.Fatalf("report %+v", r)
	}
}

// A CA that does not sign the gateway's certificate: verify-full and the
// driver over TLS fail with what to do (the dev CA, named), the unverified
// modes still work, and the command exits non-zero. A CA file that cannot
// be read says so.
func TestDoctorWrongCA(t *testing.T) {
	other, err := devca.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := doctor.Run(context.Background(), doctor.Options{Cluster: DevCluster, DBUser: fresh("doctorca"), AutoCreate: true, CA: other.Path, Env: devEnv()})
	wantOutcomes(t, r, map[doctor.Method]doctor.Outcome{
		doctor.SCRAMPlain: doctor.OK, doctor.SCRAMRequire: doctor.OK, doctor.SCRAMPlus: doctor.OK,
		doctor.SCRAMVerifyFull: doctor.Failed, doctor.DriverTLS: doctor.Failed, doctor.DriverPlain: doctor.NotOffered,
	}, nil)
	if r.OK {
		t.Fatal("report OK with a wrong CA")
	}
	for _, m := range []doctor.Method{doctor.SCRAMVerifyFull, doctor.DriverTLS} {
		res := r.Result(m)
		if res.TLS == nil || !res.TLS.UnknownAuthority {
			t.Errorf("%s: TLS diagnosis %+v, want unknown authority", m, res.TLS)
		}
		for _, w := range []string{"signed by an unknown authority", other.Path + " does not sign it", "$AWS_CA_BUNDLE in dev.env", dev.CAPath} {
			if !strings.Contains(res.Hint, w) {
				t.Errorf("%s: hint %q lacks %q", m, res.Hint, w)
			}
		}
	}
	if h := r.Result(doctor.SCRAMVerifyFull).Hint; !strings.Contains(h, "set PGSSLROOTCERT to the CA that does") {
		t.Errorf("verify-full hint %q does not name PGSSLROOTCERT", h)
	}
	if py := client(r, "redshift_connector"); py.Works || !strings.Contains(py.Needs, "set SSL_CERT_FILE") {
		t.Errorf("redshift_connector advice %+v", py)
	}

	t.Setenv("PGSSLROOTCERT", other.Path)
	for k, v := range map[string]string{"AWS_ENDPOINT_URL": dev.APIHTTPSURL, "AWS_ACCESS_KEY_ID": dev.AccessKey.ID, "AWS_SECRET_ACCESS_KEY": dev.AccessKey.Secret,
		"AWS_REGION": DevRegion, "AWS_CA_BUNDLE": dev.CAPath} {
		t.Setenv(k, v)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"doctor", "--cluster", DevCluster, "--db-user", "doctorca", "--auto-create"}, &out, &out); !errors.Is(err, doctor.ErrNotHealthy) {
		t.Fatalf("doctor with a wrong PGSSLROOTCERT: %v, want ErrNotHealthy\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "does NOT work") || !strings.Contains(out.String(), "set PGSSLROOTCERT to the CA that does") {
		t.Errorf("output:\n%s", out.String())
	}

	missing := filepath.Join(t.TempDir(), "nope.crt")
	r = doctor.Run(context.Background(), doctor.Options{Cluster: DevCluster, DBUser: "doctorca", CA: missing, Env: devEnv()})
	if res := r.Result(doctor.SCRAMVerifyFull); res.Outcome != doctor.Failed || !strings.Contains(res.Message, missing) || !strings.Contains(res.Hint, "--ca / PGSSLROOTCERT") {
		t.Errorf("unreadable CA file: %+v", res)
	}
}

// The API step's failures, each with its diagnosis: AccessDenied naming the
// action the principal lacks, an unknown cluster, the API's CA unset or
// wrong, and nothing listening.
func TestDoctorAPIProblems(t *testing.T) {
	ctx := context.Background()
	admin := iam.New(iam.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Retryer: aws.NopRetryer{}, Credentials: provider(devCreds())})
	keyOf := func(name, policy string) doctor.Env {
		t.Helper()
		if _, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
		if policy != "" {
			if _, err := admin.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String("p"), PolicyDocument: aws.String(policy)}); err != nil {
				t.Fatal(err)
			}
		}
		k, err := admin.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		env := devEnv()
		env.AccessKeyID, env.SecretAccessKey = aws.ToString(k.AccessKey.AccessKeyId), aws.ToString(k.AccessKey.SecretAccessKey)
		return env
	}
	problem := func(opts doctor.Options, kind doctor.Kind, step, code string, hint ...string) {
		t.Helper()
		r := doctor.Run(ctx, opts)
		p := r.Problem
		if p == nil || p.Kind != kind || p.Step != step || p.Code != code || len(r.Results) != 0 {
			t.Fatalf("problem %+v, results %d; want %s at %s (%q)", p, len(r.Results), kind, step, code)
		}
		for _, h := range hint {
			if !strings.Contains(p.Hint, h) {
				t.Errorf("%s: hint %q lacks %q", kind, p.Hint, h)
			}
		}
	}

	nobody := keyOf(fresh("doctor-nobody"), "")
	problem(doctor.Options{Cluster: DevCluster, DBUser: "x", Env: nobody}, doctor.KindAccessDenied, "redshift:DescribeClusters", "AccessDenied", "may not call redshift:DescribeClusters")
	problem(doctor.Options{Workgroup: DevWorkgroup, Env: nobody}, doctor.KindAccessDenied, "redshift-serverless:GetWorkgroup", "AccessDeniedException", "may not call redshift-serverless:GetWorkgroup")
	describer := keyOf(fresh("doctor-describer"), `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:DescribeClusters","Resource":"*"}]}`)
	problem(doctor.Options{Cluster: DevCluster, DBUser: "x", AutoCreate: true, Env: describer}, doctor.KindAccessDenied, "redshift:GetClusterCredentials", "AccessDenied",
		"may not call redshift:GetClusterCredentials", "redshift:CreateClusterUser")

	problem(doctor.Options{Cluster: "no-such-cluster", DBUser: "x", Env: devEnv()}, doctor.KindNotFound, "redshift:DescribeClusters", "ClusterNotFound", `no cluster "no-such-cluster"`)
	problem(doctor.Options{Workgroup: "no-such-wg", Env: devEnv()}, doctor.KindNotFound, "redshift-serverless:GetWorkgroup", "ResourceNotFoundException", `no workgroup "no-such-wg"`)

	noBundle := devEnv()
	noBundle.CABundle = ""
	// The AWS SDK for JavaScript reads no AWS_CA_BUNDLE: Node users are
	// told what it does read.
	problem(doctor.Options{Cluster: DevCluster, DBUser: "x", Env: noBundle}, doctor.KindTLS, "redshift:DescribeClusters", "", "unknown authority: set AWS_CA_BUNDLE=", "NODE_EXTRA_CA_CERTS")
	other, err := devca.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	wrongBundle := devEnv()
	wrongBundle.CABundle = other.Path
	problem(doctor.Options{Cluster: DevCluster, DBUser: "x", Env: wrongBundle}, doctor.KindTLS, "redshift:DescribeClusters", "", "AWS_CA_BUNDLE="+other.Path+" does not sign", "NODE_EXTRA_CA_CERTS")

	closed := devEnv()
	closed.EndpointURL = "https://" + freePort(t)
	problem(doctor.Options{Cluster: DevCluster, DBUser: "x", Env: closed}, doctor.KindUnreachable, "redshift:DescribeClusters", "", "AWS_ENDPOINT_URL")

	badKey := devEnv()
	badKey.SecretAccessKey += "x"
	problem(doctor.Options{Cluster: DevCluster, DBUser: "x", Env: badKey}, doctor.KindBadKeys, "redshift:DescribeClusters", "SignatureDoesNotMatch", "AWS_SECRET_ACCESS_KEY")

	problem(doctor.Options{Cluster: DevCluster, Env: devEnv()}, doctor.KindConfig, "options", "", "")
}

// A gateway with redshift_auth: off offers SCRAM to Redshift drivers over
// TLS too: code 13 shows as not offered, redshift_connector will not log
// in, the Redshift JDBC driver does with SCRAM; the recommended path works.
func TestDoctorRedshiftAuthOff(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeServerCert(t, dir)
	yaml := `
store: {sqlite: ` + filepath.Join(dir, "serve.db") + `}
api: {listen: "127.0.0.1:0"}
tls: {cert_file: ` + certFile + `, key_file: ` + keyFile + `}
clusters:
  - identifier: noauth13
    database: dev
    gateway: {listen: "127.0.0.1:0", redshift_auth: "off"}
    backend: {host: ` + dev.PG.SocketDir() + `, port: ` + itoa(dev.PG.Port()) + `, admin_user: ` + dev.PG.Superuser() + `}
iam:
  users:
    - name: ci
      access_keys: [{id: "${TEST_KEY_ID}", secret: "${TEST_SECRET}"}]
      policies:
        creds: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["redshift:DescribeClusters","redshift:GetClusterCredentials","redshift:CreateClusterUser"],"Resource":"*"}]}'
`
	env := map[string]string{"TEST_KEY_ID": "AKIADOCTORKEY0000015", "TEST_SECRET": "doctor-secret-0123456789"}
	s := startServe(t, yaml, env)
	r := doctor.Run(context.Background(), doctor.Options{Cluster: "noauth13", DBUser: "doctoroff", AutoCreate: true, CA: dev.CAPath,
		Env: doctor.Env{EndpointURL: s.APIURL, AccessKeyID: env["TEST_KEY_ID"], SecretAccessKey: env["TEST_SECRET"], Region: "us-east-1"}})
	wantOutcomes(t, r, map[doctor.Method]doctor.Outcome{
		doctor.SCRAMPlain: doctor.OK, doctor.SCRAMRequire: doctor.OK, doctor.SCRAMVerifyFull: doctor.OK, doctor.SCRAMPlus: doctor.OK,
		doctor.DriverTLS: doctor.NotOffered, doctor.DriverPlain: doctor.NotOffered,
	}, map[doctor.Method]string{doctor.DriverTLS: "SCRAM"})
	if h := r.Result(doctor.DriverTLS).Hint; !strings.Contains(h, "redshift_auth: sha256") {
		t.Errorf("driver over TLS: hint %q", h)
	}
	if !r.OK || client(r, "redshift_connector").Works || !client(r, "Redshift JDBC").Works {
		t.Fatalf("OK %v, clients %+v", r.OK, r.Clients)
	}
}
