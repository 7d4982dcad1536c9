package http_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	shttp "github.com/shiftkey/shiftkey/http"
	"github.com/shiftkey/shiftkey/iamapi"
	"github.com/shiftkey/shiftkey/metrics"
	"github.com/shiftkey/shiftkey/serverless"
	sksts "github.com/shiftkey/shiftkey/sts"
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

	// Each probe is counted by the code its client got.
	const query = "/?Action=DescribeClusters&Version=2012-12-01"
	throttled := 0
	probe := func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET "+query+" HTTP/1.1\r\nHost: x\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20240101/us-east-1/redshift/aws4_request, SignedHeaders=host, Signature=x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), "<Code>Throttling</Code>") {
			throttled++
			return true
		}
		return false
	}
	// One request holds the only place: its body never ends. (A probe
	// that got the place before it was answered, not throttled.)
	hold := holdOnlySlot(t, addr, probe)
	defer hold.Close()
	for throttled < 3 {
		if !probe() {
			t.Fatal("a request got through while the only place was held")
		}
	}
	fams := scrapeMetrics(t, m)
	labels := map[string]string{"service": "redshift", "operation": "DescribeClusters", "code": "Throttling"}
	if got := counterOf(fams, "shiftkey_api_requests_total", labels); got != float64(throttled) {
		t.Fatalf("shiftkey_api_requests_total%v = %v after %d requests were throttled", labels, got, throttled)
	}
}

// apiSeries is every series of shiftkey_api_requests_total, by its labels
// service/operation/code.
func apiSeries(t *testing.T, m *metrics.Metrics) map[string]float64 {
	out := map[string]float64{}
	for _, s := range scrapeMetrics(t, m)["shiftkey_api_requests_total"].GetMetric() {
		l := map[string]string{}
		for _, p := range s.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		out[l["service"]+"/"+l["operation"]+"/"+l["code"]] += s.GetCounter().GetValue()
	}
	return out
}

// Each API call is counted once, under the operation it asked for and the
// error code the client got (ok when none), whichever way it failed:
// through the SDKs (Query and JSON 1.1) and by hand.
func TestAPICallsCountedOnceAsTheClientSawThem(t *testing.T) {
	f := newFixture(t)
	f.workgroup(t)
	m := metrics.New(slices.Concat(shttp.RedshiftOperations(), serverless.Operations(), sksts.Operations(), iamapi.Operations()))
	f.api.Observer = m
	ctx := context.Background()
	wrong := f.keys["admin"]
	wrong.SecretAccessKey = "not-the-secret-0123456789"
	unknown := aws.Credentials{AccessKeyID: "AKIAUNKNOWNKEY000001", SecretAccessKey: "x"}
	cluster := aws.String("dev-cluster")
	sdkCode := func(err error) string {
		if err == nil {
			return "ok"
		}
		return apiCode(err)
	}
	raw := func(method, body string, header map[string]string) string {
		req, _ := http.NewRequest(method, f.srv.URL+"/", strings.NewReader(body))
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if _, after, ok := strings.Cut(string(b), "<Code>"); ok {
			code, _, _ := strings.Cut(after, "</Code>")
			return code
		}
		return "?"
	}
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	codes := map[string]bool{}
	for _, tc := range []struct {
		series string // service/operation, the code appended
		call   func() string
	}{
		{"redshift/GetClusterCredentials", func() string {
			_, err := f.client("admin").GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: cluster, DbUser: aws.String("alice")})
			return sdkCode(err)
		}},
		{"redshift/GetClusterCredentials", func() string {
			_, err := f.client("denied").GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: cluster, DbUser: aws.String("alice")})
			return sdkCode(err)
		}},
		{"redshift/GetClusterCredentials", func() string {
			_, err := f.redshiftClient(wrong).GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: cluster, DbUser: aws.String("alice")})
			return sdkCode(err)
		}},
		{"redshift/GetClusterCredentials", func() string {
			_, err := f.redshiftClient(unknown).GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: cluster, DbUser: aws.String("alice")})
			return sdkCode(err)
		}},
		{"redshift/GetClusterCredentials", func() string {
			_, err := f.client("admin").GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("nope"), DbUser: aws.String("alice")})
			return sdkCode(err)
		}},
		{"redshift/GetClusterCredentials", func() string {
			_, err := f.client("admin").GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: cluster, DbUser: aws.String("alice"), DurationSeconds: aws.Int32(1)})
			return sdkCode(err)
		}},
		{"redshift/DescribeClusters", func() string {
			_, err := f.client("admin").DescribeClusters(ctx, &redshift.DescribeClustersInput{})
			return sdkCode(err)
		}},
		{"redshift-serverless/GetCredentials", func() string {
			_, err := f.serverlessClient(f.keys["admin"]).GetCredentials(ctx, &redshiftserverless.GetCredentialsInput{WorkgroupName: aws.String("edge-wg")})
			return sdkCode(err)
		}},
		{"redshift-serverless/GetCredentials", func() string {
			_, err := f.serverlessClient(f.keys["limited"]).GetCredentials(ctx, &redshiftserverless.GetCredentialsInput{WorkgroupName: aws.String("edge-wg")})
			return sdkCode(err)
		}},
		{"redshift-serverless/GetCredentials", func() string {
			_, err := f.serverlessClient(f.keys["admin"]).GetCredentials(ctx, &redshiftserverless.GetCredentialsInput{WorkgroupName: aws.String("no-such-wg")})
			return sdkCode(err)
		}},
		{"redshift-serverless/GetCredentials", func() string {
			_, err := f.serverlessClient(unknown).GetCredentials(ctx, &redshiftserverless.GetCredentialsInput{WorkgroupName: aws.String("edge-wg")})
			return sdkCode(err)
		}},
		{"sts/AssumeRole", func() string {
			_, err := f.stsClient(f.keys["admin"]).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::" + account + ":role/none"), RoleSessionName: aws.String("sess")})
			return sdkCode(err)
		}},
		{"iam/GetUser", func() string {
			_, err := f.iamClient(f.keys["limited"]).GetUser(ctx, &iam.GetUserInput{UserName: aws.String("admin")})
			return sdkCode(err)
		}},
		// Unsigned: no credential scope; the service is the one whose
		// Action it names, as the audit record's eventSource.
		{"redshift/DescribeClusters", func() string { return raw("POST", "Action=DescribeClusters&Version=2012-12-01", form) }},
		// Refused before its body is read: nothing names a service.
		{"other/other", func() string { return raw("PUT", "Action=DescribeClusters", form) }},
		{"other/other", func() string { return raw("POST", strings.Repeat("a", 1<<20+1), form) }},
	} {
		before := apiSeries(t, m)
		code := tc.call()
		after := apiSeries(t, m)
		for k, v := range after {
			if d := v - before[k]; k == tc.series+"/"+code && d != 1 || k != tc.series+"/"+code && d != 0 {
				t.Errorf("%s answered %s: %s went up by %v", tc.series, code, k, d)
			}
		}
		if after[tc.series+"/"+code] != before[tc.series+"/"+code]+1 {
			t.Errorf("%s answered %s: not counted so (after: %v)", tc.series, code, after)
		}
		codes[code] = true
	}
	// The calls met every kind of answer they were written for.
	for _, c := range []string{"ok", "AccessDenied", "AccessDeniedException", "SignatureDoesNotMatch", "InvalidClientTokenId", "ClusterNotFound",
		"InvalidParameterValue", "ResourceNotFoundException", "UnrecognizedClientException", "MissingAuthenticationToken", "InvalidAction", "RequestEntityTooLarge"} {
		if !codes[c] {
			t.Errorf("no call was answered %s (answers: %v)", c, codes)
		}
	}
	// Denials by policy, of both protocols: GetClusterCredentials,
	// GetCredentials, AssumeRole (trust), GetUser.
	denials := 0.0
	for _, s := range scrapeMetrics(t, m)["shiftkey_authorization_denials_total"].GetMetric() {
		denials += s.GetCounter().GetValue()
	}
	if denials != 4 {
		t.Errorf("shiftkey_authorization_denials_total = %v, want 4", denials)
	}
}

// The last note's known gap: a throttled answer's Date came from the
// machine's clock while every other answer's comes from the store's (the
// time signatures are judged by on replicas), so an SDK that corrects its
// clock from Date corrected it to the wrong time after a throttle.
func TestThrottledAnswerIsDatedByTheStoreClock(t *testing.T) {
	f := newFixture(t)
	const offset = -20 * time.Minute
	f.api.Now = func() time.Time { return time.Now().Add(offset) }
	srv := shttp.Limits{MaxConcurrentRequests: 1, ReadTimeout: time.Minute}.HTTPServer(f.api.Handler(), nil)
	addr := serveOn(t, listenLoopback(t), srv)
	var date string
	probe := func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /?Action=DescribeClusters&Version=2012-12-01 HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		date = resp.Header.Get("Date")
		return strings.Contains(string(body), "<Code>Throttling</Code>")
	}
	hold := holdOnlySlot(t, addr, probe)
	defer hold.Close()
	got, err := http.ParseTime(date)
	if want := time.Now().Add(offset); err != nil || got.Before(want.Add(-5*time.Second)) || got.After(want.Add(5*time.Second)) {
		t.Fatalf("the throttled answer's Date is %q (%v); want the store's clock, about %s", date, err, want.UTC().Format(http.TimeFormat))
	}
}
