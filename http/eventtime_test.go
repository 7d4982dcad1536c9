package http_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/redshift"
)

// An API call's audit record carries the server's time (shared PostgreSQL:
// the store's), not the machine's clock read beside it: `audit tail`
// merges the logs of replicas by it, and a replica whose machine clock is
// off would otherwise place its calls minutes away from the others'.
func TestAuditEventTimeIsTheServersTime(t *testing.T) {
	f := newFixture(t)
	path := f.audited(t)
	ahead := 3 * time.Minute // within SigV4's 5 minutes of the client's time
	f.api.Now = func() time.Time { return time.Now().Add(ahead) }
	before := time.Now().Add(ahead).Truncate(time.Second)
	if _, err := f.client("admin").DescribeClusters(context.Background(), &redshift.DescribeClustersInput{}); err != nil {
		t.Fatal(err)
	}
	after := time.Now().Add(ahead)
	r := lastRecord(t, path)
	at, err := time.Parse(time.RFC3339, r.EventTime)
	if err != nil {
		t.Fatal(err)
	}
	if at.Before(before) || at.After(after) {
		t.Errorf("eventTime %s, want the server's time, between %s and %s", r.EventTime, before.UTC().Format(time.RFC3339), after.UTC().Format(time.RFC3339))
	}
}
