package http_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
)

// onePlace serves f's API with one request doing CPU work at a time.
func onePlace(t *testing.T, f *fixture) *redshift.Client {
	t.Helper()
	f.api.CPUSlots = 1
	srv := httptest.NewServer(f.api.Handler())
	t.Cleanup(srv.Close)
	cfg := f.sdk(f.keys["admin"])
	cfg.BaseEndpoint = aws.String(srv.URL)
	return redshift.NewFromConfig(cfg)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// With one place, concurrent issues all complete and are all stored: a
// request gives its place up before it waits for the group writer, so
// that no request waits for the place of one that waits for a commit.
func TestOnePlaceConcurrentIssuesAllComplete(t *testing.T) {
	f := newFixture(t)
	client := onePlace(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := client.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
				ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String(fmt.Sprintf("u%d", i%4))})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for i := range 4 {
		creds, _, _, err := f.store.LiveCredentials(ctx, "dev-cluster", fmt.Sprintf("IAM:u%d", i), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		total += len(creds)
	}
	if total != n {
		t.Fatalf("%d credentials stored, want %d", total, n)
	}
	if w := f.api.Gate().Waiting(); w != 0 {
		t.Fatalf("%d still waiting", w)
	}
}

// A request queued for a place whose client goes away leaves the queue;
// the place, once free, serves the next request.
func TestQueuedRequestLeavesWhenItsClientGoes(t *testing.T) {
	f := newFixture(t)
	path := f.audited(t)
	client := onePlace(t, f)
	gate := f.api.Gate()
	if err := gate.Enter(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := client.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
			ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("alice")})
		done <- err
	}()
	waitUntil(t, "the request to queue", func() bool { return gate.Waiting() == 1 })
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a canceled request got an answer while the only place was held")
	}
	waitUntil(t, "the request to leave the queue", func() bool { return gate.Waiting() == 0 })
	// Its record says the client left: the Throttling it names was sent
	// to no one.
	waitUntil(t, "the left request's record", func() bool { return len(auditLines(t, path)) == 1 })
	if r := lastRecord(t, path); r.EventName != "GetClusterCredentials" || r.ErrorCode != "Throttling" || r.AdditionalEventData["clientGone"] != true {
		t.Errorf("the record of a request whose client left while it waited for a place: %s", auditLines(t, path)[0])
	}
	gate.Leave()
	out, err := client.GetClusterCredentials(context.Background(), &redshift.GetClusterCredentialsInput{
		ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("alice")})
	if err != nil || aws.ToString(out.DbPassword) == "" {
		t.Fatalf("after the place was freed: %v", err)
	}
}
