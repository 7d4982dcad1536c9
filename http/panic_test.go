package http_test

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/shiftkey/shiftkey"
	shttp "github.com/shiftkey/shiftkey/http"
	"github.com/shiftkey/shiftkey/metrics"
)

// panickingStore is the fixture's store but for one cluster, whose lookup
// panics: a bug in a store or service, reached by an ordinary call.
type panickingStore struct {
	shiftkey.Store
}

func (s panickingStore) Cluster(ctx context.Context, id string) (*shiftkey.Cluster, error) {
	if id == "boom" {
		panic("test: the store's Cluster panics")
	}
	return s.Store.Cluster(ctx, id)
}

// callLog keeps the calls the observer heard of.
type callLog struct {
	mu    sync.Mutex
	calls []*shiftkey.APICall
	next  shttp.Observer
}

func (l *callLog) APICall(e *shiftkey.APICall) {
	l.mu.Lock()
	l.calls = append(l.calls, e)
	l.mu.Unlock()
	l.next.APICall(e)
}

// TestHandlerPanicIsInternalFailure: a call whose handler panics before
// anything is written is answered 500 InternalFailure (not a dropped
// connection the SDK cannot read), and counted and recorded as that
// failure, not as a success; the server goes on answering.
func TestHandlerPanicIsInternalFailure(t *testing.T) {
	f := newFixture(t)
	m := metrics.New(shttp.RedshiftOperations())
	log := &callLog{next: m}
	// A new server, so that no request races the changes.
	f.srv.Close()
	f.api.Redshift.Store = panickingStore{f.store}
	f.api.Observer = log
	f.srv = httptest.NewServer(f.api.Handler())
	t.Cleanup(f.srv.Close)

	ctx := context.Background()
	_, err := f.client("admin").DescribeClusters(ctx, &redshift.DescribeClustersInput{ClusterIdentifier: aws.String("boom")})
	if apiCode(err) != shiftkey.CodeInternalFailure || httpStatus(err) != 500 {
		t.Errorf("DescribeClusters whose store panics: got %v (status %d), want 500 InternalFailure", err, httpStatus(err))
	}
	// The server still answers, as the same caller.
	_, err = f.client("admin").DescribeClusters(ctx, &redshift.DescribeClustersInput{ClusterIdentifier: aws.String("dev-cluster")})
	mustOK(t, "DescribeClusters dev-cluster after the panic", err)

	log.mu.Lock()
	calls := log.calls
	log.mu.Unlock()
	if len(calls) != 2 {
		t.Fatalf("observer heard %d calls, want 2", len(calls))
	}
	if e := calls[0]; e.ErrorCode != shiftkey.CodeInternalFailure || e.Status != 500 || e.Operation != "DescribeClusters" {
		t.Errorf("panicked call reported as code %q status %d operation %q, want InternalFailure 500 DescribeClusters", e.ErrorCode, e.Status, e.Operation)
	}
	fams := scrapeMetrics(t, m)
	if got := counterOf(fams, "shiftkey_api_requests_total", map[string]string{"service": "redshift", "operation": "DescribeClusters", "code": "InternalFailure"}); got != 1 {
		t.Errorf("shiftkey_api_requests_total{DescribeClusters,InternalFailure} = %v, want 1", got)
	}
	if got := counterOf(fams, "shiftkey_api_requests_total", map[string]string{"service": "redshift", "operation": "DescribeClusters", "code": "ok"}); got != 1 {
		t.Errorf("shiftkey_api_requests_total{DescribeClusters,ok} = %v, want 1 (the call after the panic only)", got)
	}
}
