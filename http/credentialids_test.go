package http_test

import (
	"context"
	"encoding/hex"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
)

// Credential ids begin with their creation time in milliseconds, so that
// they grow in issue order (the store's index of ids is then extended at
// its end), and stay 32 hex digits with 80 random bits after the time.
func TestCredentialIDsGrowWithTime(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var prev string
	for i := range 5 {
		before := time.Now().UnixMilli()
		out, err := f.client("admin").GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
			ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("u" + strconv.Itoa(i))})
		if err != nil {
			t.Fatal(err)
		}
		creds, _, _, err := f.store.LiveCredentials(ctx, "dev-cluster", aws.ToString(out.DbUser), time.Now())
		if err != nil || len(creds) != 1 {
			t.Fatalf("%d credentials, %v", len(creds), err)
		}
		id := creds[0].ID
		raw, err := hex.DecodeString(id)
		if err != nil || len(raw) != 16 {
			t.Fatalf("id %q is not 16 bytes of hex", id)
		}
		ms := int64(raw[0])<<40 | int64(raw[1])<<32 | int64(raw[2])<<24 | int64(raw[3])<<16 | int64(raw[4])<<8 | int64(raw[5])
		if ms != creds[0].CreatedAt.UnixMilli() || ms < before {
			t.Fatalf("id %s begins with %d, want the creation time %d (issued at or after %d)", id, ms, creds[0].CreatedAt.UnixMilli(), before)
		}
		if id <= prev {
			t.Fatalf("id %s issued after %s sorts before it", id, prev)
		}
		prev = id
		for time.Now().UnixMilli() <= ms { // the next in a later millisecond: its order is the time's, not the random bits'
		}
	}
}
