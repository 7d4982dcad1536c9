package http_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey/devca"
	shttp "github.com/shiftkey/shiftkey/http"
)

// serveOn serves h on ln until the test ends and returns ln's address.
func serveOn(t *testing.T, ln net.Listener, srv *http.Server) string {
	t.Helper()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// A connection that sends nothing holds up neither accepting nor other
// clients, and is closed when the sniff deadline passes; HTTPS and plain
// HTTP share the port.
func TestAPISilentConnectionDoesNotBlock(t *testing.T) {
	ca, err := devca.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ln := shttp.NewSniffListener(listenLoopback(t), ca.ServerConfig(nil, "127.0.0.1"), 300*time.Millisecond)
	addr := serveOn(t, ln, &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strconv.FormatBool(r.TLS != nil))
	})})

	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	get := func(c *http.Client, url, want string) {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("GET %s next to a silent connection: %v", url, err)
		}
		defer resp.Body.Close()
		if b, _ := io.ReadAll(resp.Body); string(b) != want {
			t.Fatalf("GET %s: TLS %s, want %s", url, b, want)
		}
	}
	httpsClient := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	get(httpsClient, "https://"+addr+"/", "true")
	get(&http.Client{Timeout: 5 * time.Second}, "http://"+addr+"/", "false")

	silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := silent.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("silent connection after the sniff deadline: n=%d %v, want closed by the server", n, err)
	}
}

// Listener without a TLS config is the listener itself; with require it
// speaks TLS only.
func TestListenerModes(t *testing.T) {
	inner := listenLoopback(t)
	defer inner.Close()
	if shttp.Listener(inner, nil, false, nil) != inner {
		t.Fatal("no TLS config: the listener was wrapped")
	}
	ca, err := devca.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	addr := serveOn(t, shttp.Listener(listenLoopback(t), ca.ServerConfig(nil, "127.0.0.1"), true, nil), &http.Server{Handler: http.NotFoundHandler()})
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "HTTP request to an HTTPS server") {
		t.Fatalf("plain HTTP to a TLS-only listener: %d %q", resp.StatusCode, body)
	}
	// A POST whose body is still being sent when the refusal is written
	// gets the 400 too, not a reset: the listener reads the body first.
	for i := range 20 {
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Post("http://"+addr+"/", "application/x-www-form-urlencoded", strings.NewReader(strings.Repeat("a=b&", 64<<10)))
		if err != nil {
			t.Fatalf("plain POST %d with a 256 KiB body: %v, want 400", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain POST %d: %d, want 400", i, resp.StatusCode)
		}
	}
}

// Requests beyond MaxConcurrentRequests are answered at once with the
// throttling error of their protocol: 400 in the Query protocol, 429 (as
// Redshift Serverless' model says) in the JSON one; health checks are
// never counted.
func TestLimitsThrottle(t *testing.T) {
	held, release := make(chan struct{}), make(chan struct{})
	srv := shttp.Limits{MaxConcurrentRequests: 1}.HTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			close(held)
			<-release
		}
	}), nil)
	addr := serveOn(t, listenLoopback(t), srv)
	go http.Get("http://" + addr + "/hold")
	<-held
	defer close(release)
	for _, tc := range []struct {
		name   string
		header map[string]string
		status int
		want   []string
	}{
		{"iam query", map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=AKIA/20240101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=x"},
			http.StatusBadRequest, []string{"<Code>Throttling</Code>", "https://iam.amazonaws.com/doc/2010-05-08/", "Rate exceeded"}},
		{"redshift query", nil, http.StatusBadRequest, []string{"<Code>Throttling</Code>", "http://redshift.amazonaws.com/doc/2012-12-01/"}},
		{"json", map[string]string{"X-Amz-Target": "RedshiftServerless.GetCredentials"}, http.StatusTooManyRequests, []string{`"__type":"ThrottlingException"`, "Rate exceeded"}},
	} {
		req, _ := http.NewRequest("POST", "http://"+addr+"/", nil)
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("x-amzn-RequestId") == "" {
			t.Errorf("%s over the cap: status %d, request id %q; want status %d", tc.name, resp.StatusCode, resp.Header.Get("x-amzn-RequestId"), tc.status)
		}
		for _, w := range tc.want {
			if !strings.Contains(string(body), w) {
				t.Errorf("%s over the cap: %s lacks %s", tc.name, body, w)
			}
		}
	}
	if resp, err := http.Get("http://" + addr + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("health check over the cap: %v %v", resp, err)
	}
}

// A request over the cap is answered at once even when its body has not
// all arrived: net/http would otherwise wait for the unread body (up to
// ReadTimeout) before writing the throttling answer.
func TestLimitsThrottleDoesNotWaitForBody(t *testing.T) {
	held, release := make(chan struct{}), make(chan struct{})
	srv := shttp.Limits{MaxConcurrentRequests: 1, ReadTimeout: time.Minute}.HTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			close(held)
			<-release
		}
	}), nil)
	addr := serveOn(t, listenLoopback(t), srv)
	go http.Get("http://" + addr + "/hold")
	<-held
	defer close(release)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// 7 of 100 body bytes sent; the rest never comes.
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nAction=")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("throttled request with its body pending: %v, want 400 at once", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("throttled request with its body pending: %d, want 400", resp.StatusCode)
	}
}
