package http_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	shttp "github.com/shiftkey/shiftkey/http"
	"github.com/shiftkey/shiftkey/metrics"
)

// scrapeMetrics serves m's /metrics and parses it as Prometheus does.
func scrapeMetrics(t *testing.T, m *metrics.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler(nil).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// counterOf is the value of family name's series with exactly labels; -1
// when there is none.
func counterOf(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
next:
	for _, s := range fams[name].GetMetric() {
		if len(s.GetLabel()) != len(labels) {
			continue
		}
		for _, l := range s.GetLabel() {
			if labels[l.GetName()] != l.GetValue() {
				continue next
			}
		}
		return s.GetCounter().GetValue()
	}
	return -1
}

// A request turned away at limits.api.max_concurrent_requests is an API
// call answered with Throttling: the metrics count it as any other error,
// so that an operator sees the cap being hit.
func TestThrottledRequestsAreCounted(t *testing.T) {
	f := newFixture(t)
	m := metrics.New(shttp.RedshiftOperations())
	f.api.Observer = m
	srv := shttp.Limits{MaxConcurrentRequests: 1, ReadTimeout: time.Minute}.HTTPServer(f.api.Handler(), nil)
	addr := serveOn(t, listenLoopback(t), srv)

	// One request holds the only place: its body never ends.
	hold, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	io.WriteString(hold, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nAction=")

	// Until the server has read its headers, the next request may get
	// the place itself (and is then answered MissingAuthenticationToken).
	const query = "/?Action=DescribeClusters&Version=2012-12-01"
	throttled := 0
	deadline := time.Now().Add(10 * time.Second)
	for throttled < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests throttled in 10 s, want 3", throttled)
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET "+query+" HTTP/1.1\r\nHost: x\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20240101/us-east-1/redshift/aws4_request, SignedHeaders=host, Signature=x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		c.Close()
		if strings.Contains(string(body), "<Code>Throttling</Code>") {
			throttled++
		}
	}
	fams := scrapeMetrics(t, m)
	labels := map[string]string{"service": "redshift", "operation": "DescribeClusters", "code": "Throttling"}
	if got := counterOf(fams, "shiftkey_api_requests_total", labels); got != float64(throttled) {
		t.Fatalf("shiftkey_api_requests_total%v = %v after %d requests were throttled", labels, got, throttled)
	}
}
