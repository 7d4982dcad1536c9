package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	rss "github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
	"github.com/aws/smithy-go"
	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey/config"
)

// limitsYAML is a serve config with one cluster, "limited", on dev's
// PostgreSQL and a user ci who may get its credentials; extra is added at
// the top level (a limits block).
func limitsYAML(dir, extra string) string {
	return `
store: {sqlite: ` + filepath.Join(dir, "serve.db") + `}
api: {listen: "127.0.0.1:0"}
` + extra + `
` + declaredClusterYAML("limited", `"redshift:GetClusterCredentials","redshift:CreateClusterUser","redshift-serverless:GetCredentials"`)
}

var limitsEnv = map[string]string{"TEST_KEY_ID": "AKIACONFIGKEY0000013", "TEST_SECRET": "config-secret-0123456789"}

func limitsCreds() aws.CredentialsProviderFunc {
	return provider(aws.Credentials{AccessKeyID: limitsEnv["TEST_KEY_ID"], SecretAccessKey: limitsEnv["TEST_SECRET"]})
}

// getLimited asks the API at url for credentials of the cluster "limited".
func getLimited(ctx context.Context, url string) (*redshift.GetClusterCredentialsOutput, error) {
	rs := redshift.New(redshift.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: limitsCreds(), Retryer: aws.NopRetryer{}})
	return rs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("limited"),
		DbUser: aws.String("limits_user"), AutoCreate: aws.Bool(true)})
}

// closedByServer reports whether the server ends c before deadline: it
// reads (and drops) whatever comes until EOF or a reset.
func closedByServer(c net.Conn, deadline time.Time) bool {
	c.SetReadDeadline(deadline)
	_, err := io.Copy(io.Discard, c)
	return !errors.Is(err, os.ErrDeadlineExceeded)
}

// Finding 3: connections that send their headers and stall the body, and
// idle keep-alive connections, are closed after limits.api's read and idle
// timeouts (before: only ReadHeaderTimeout, none of them was closed).
func TestFinding3APIClosesStalledConnections(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, limitsYAML(dir, `limits: {api: {read_timeout: 500ms, idle_timeout: 500ms, write_timeout: 2s}}`), limitsEnv)
	host := strings.TrimPrefix(s.APIURL, "http://")
	dial := func() net.Conn {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	var stalled, idle []net.Conn
	for range 20 {
		c := dial()
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nAction=", host)
		stalled = append(stalled, c)
	}
	for range 20 {
		c := dial()
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", host)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close {
			t.Fatalf("healthz: %d, close %v; want 200 on a keep-alive connection", resp.StatusCode, resp.Close)
		}
		idle = append(idle, c)
	}
	start := time.Now()
	deadline := start.Add(5 * time.Second)
	count := func(cs []net.Conn) int {
		var wg sync.WaitGroup
		var mu sync.Mutex
		n := 0
		for _, c := range cs {
			wg.Go(func() {
				if closedByServer(c, deadline) {
					mu.Lock()
					n++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return n
	}
	var nStalled, nIdle int
	var wg sync.WaitGroup
	wg.Go(func() { nStalled = count(stalled) })
	wg.Go(func() { nIdle = count(idle) })
	wg.Wait()
	if nStalled != len(stalled) || nIdle != len(idle) {
		t.Fatalf("within %v the server closed %d of %d connections with a stalled body and %d of %d idle keep-alive connections",
			deadline.Sub(start), nStalled, len(stalled), nIdle, len(idle))
	}
	t.Logf("all %d connections closed within %v", len(stalled)+len(idle), time.Since(start).Round(10*time.Millisecond))
}

// Finding 3: requests beyond limits.api.max_concurrent_requests are
// answered at once with AWS's throttling error: Throttling (400) on the
// Query APIs, ThrottlingException (429) on the JSON one; the SDKs retry both.
func TestFinding3APIConcurrencyCap(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := startServe(t, limitsYAML(dir, `limits: {api: {max_concurrent_requests: 1}}`), limitsEnv)
	host := strings.TrimPrefix(s.APIURL, "http://")
	// A request that holds the one slot: its body never comes.
	var holder net.Conn
	hold := func() {
		var err error
		if holder, err = net.Dial("tcp", host); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(holder, "POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nAction=", host)
	}
	hold()
	defer func() { holder.Close() }()
	// refused reports whether the holder was answered (throttled, because
	// a call reached the slot first on a loaded machine): anything but
	// the read deadline passing.
	refused := func() bool {
		holder.SetReadDeadline(time.Now().Add(time.Millisecond))
		defer holder.SetReadDeadline(time.Time{})
		var b [1]byte
		n, err := holder.Read(b[:])
		return n > 0 || err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
	}

	check := func(name, wantCode string, wantStatus int, call func() error) {
		t.Helper()
		var err error
		// A hang guard, not a wait: the loop ends as soon as the cap answers.
		for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			// Until the holder's handler has started, a call may get through.
			if err = call(); err != nil {
				break
			}
			if refused() {
				holder.Close()
				hold()
			}
		}
		var ae smithy.APIError
		var re *awshttp.ResponseError
		if !errors.As(err, &ae) || ae.ErrorCode() != wantCode || !errors.As(err, &re) || re.HTTPStatusCode() != wantStatus {
			t.Fatalf("%s over the cap: %v, want %s with status %d", name, err, wantCode, wantStatus)
		}
		if !strings.Contains(ae.ErrorMessage(), "Rate exceeded") {
			t.Errorf("%s message %q", name, ae.ErrorMessage())
		}
	}
	check("redshift", "Throttling", http.StatusBadRequest, func() error { _, err := getLimited(ctx, s.APIURL); return err })
	sl := rss.New(rss.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.APIURL), Credentials: limitsCreds(), Retryer: aws.NopRetryer{}})
	check("redshift-serverless", "ThrottlingException", http.StatusTooManyRequests, func() error {
		_, err := sl.GetCredentials(ctx, &rss.GetCredentialsInput{WorkgroupName: aws.String("nowhere")})
		if ae, ok := errors.AsType[smithy.APIError](err); ok && ae.ErrorCode() != "ThrottlingException" {
			return nil // an answer from the handler: the slot was free
		}
		return err
	})
	holder.Close()
	var lerr error
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if _, lerr = getLimited(ctx, s.APIURL); lerr == nil {
			return
		}
	}
	t.Fatalf("after the holder left: %v", lerr)
}

// childEnv names the config file of a serve run as a child process of the
// test binary (see runTestChild).
const childEnv = "SHIFTKEY_TEST_SERVE_CONFIG"

// childFDLimit is the child's RLIMIT_NOFILE margin above the descriptors
// it has open once it serves.
const childFDLimit = 64

// runTestChild runs serve from the config that childEnv names, with few
// descriptors to spare: it prints "READY <api URL> <gateway address>",
// serves until its standard input closes, and logs to standard error. ok is
// false in an ordinary test run.
func runTestChild() (code int, ok bool) {
	path := os.Getenv(childEnv)
	if path == "" {
		return 0, false
	}
	fail := func(err error) (int, bool) { fmt.Fprintln(os.Stderr, "child:", err); return 2, true }
	cfg, err := config.Load(path)
	if err != nil {
		return fail(err)
	}
	s := &Serve{Config: cfg, Logger: slog.New(slog.NewJSONHandler(os.Stderr, nil))}
	defer s.Close()
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		return fail(err)
	}
	c, err := s.Store.Cluster(ctx, "limited")
	if err != nil {
		return fail(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fail(err)
	}
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	lim.Cur = uint64(len(fds) + childFDLimit)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fail(err)
	}
	fmt.Printf("READY %s %s\n", s.APIURL, net.JoinHostPort(c.Endpoint.Address, itoa(c.Endpoint.Port)))
	io.Copy(io.Discard, os.Stdin)
	return 0, true
}

// Finding 3: with its descriptors exhausted by a flood of unauthenticated
// connections (the per-source caps raised so that they do not stop it
// first), serve keeps its gateway: once the flood is gone, an API call
// and a login through the gateway succeed. serve runs in a child process
// of the test binary, whose RLIMIT_NOFILE is lowered to a few dozen above
// what it uses.
func TestFinding3DescriptorExhaustion(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "serve.yaml")
	yaml := limitsYAML(dir, `limits: {max_connections_per_source: 100000, max_auth_per_source: 100000}`)
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+cfgPath, "TEST_KEY_ID="+limitsEnv["TEST_KEY_ID"], "TEST_SECRET="+limitsEnv["TEST_SECRET"])
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	// The child's log: accept errors are what the test waits for.
	var logMu sync.Mutex
	var logLines []string
	exhausted := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			logMu.Lock()
			logLines = append(logLines, sc.Text())
			logMu.Unlock()
			if strings.Contains(sc.Text(), "too many open files") {
				once.Do(func() { close(exhausted) })
			}
		}
	}()
	childLog := func() string {
		logMu.Lock()
		defer logMu.Unlock()
		if len(logLines) > 20 {
			return strings.Join(logLines[:20], "\n") + "\n…"
		}
		return strings.Join(logLines, "\n")
	}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		t.Fatalf("the child did not start:\n%s", childLog())
	}
	var apiURL, gateway string
	if _, err := fmt.Sscanf(sc.Text(), "READY %s %s", &apiURL, &gateway); err != nil {
		t.Fatalf("child said %q: %v", sc.Text(), err)
	}

	// The flood: connections that stall (to the gateway, and some to the API)
	// until the child's accept runs out of descriptors.
	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	apiHost := strings.TrimPrefix(apiURL, "http://")
	for i := 0; ; i++ {
		addr := gateway
		if i%4 == 3 {
			addr = apiHost
		}
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if addr == gateway {
			// The gateway's listener defers accept until a client speaks:
			// the first bytes of a startup packet, then silence.
			c.Write([]byte{0, 0, 0})
		}
		flood = append(flood, c)
		select {
		case <-exhausted:
		default:
			if i < 4*childFDLimit {
				continue
			}
			select {
			case <-exhausted:
			case <-time.After(10 * time.Second):
				t.Fatalf("%d connections and the child did not run out of descriptors:\n%s", len(flood), childLog())
			}
		}
		break
	}
	t.Logf("%d connections exhausted the child's descriptors", len(flood))
	for _, c := range flood {
		c.Close()
	}
	flood = nil

	var out *redshift.GetClusterCredentialsOutput
	var apiErr error
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
		out, apiErr = getLimited(cctx, apiURL)
		ccancel()
		if apiErr == nil {
			break
		}
	}
	if apiErr != nil {
		t.Fatalf("API call after the flood: %v\n%s", apiErr, childLog())
	}
	host, port, _ := net.SplitHostPort(gateway)
	var loginErr error
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		var conn *pgx.Conn
		conn, loginErr = pgx.Connect(ctx, "host="+host+" port="+port+" dbname=dev sslmode=disable connect_timeout=3 user="+
			aws.ToString(out.DbUser)+" password="+aws.ToString(out.DbPassword))
		if loginErr == nil {
			conn.Close(ctx)
			return
		}
	}
	t.Fatalf("login through the gateway after the flood: %v\n%s", loginErr, childLog())
}
