package http_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
)

// attempts is how many HTTP attempts an SDK call took.
func attempts(md middleware.Metadata) int {
	r, ok := retry.GetAttemptResults(md)
	if !ok {
		return 0
	}
	return len(r.Results)
}

// TestGoSDKCorrectsClockSkew: a client whose clock is 20 minutes off is
// refused once, learns the server's time from the answer's Date header
// and succeeds on its standard retryer's second attempt, on the Query
// APIs (Redshift, STS) and on Serverless' JSON 1.1. The server's clock
// (Server.Now) is moved instead of the client's, which is internal to the
// SDK: the signature check and the Date header both read it.
func TestGoSDKCorrectsClockSkew(t *testing.T) {
	for _, off := range []time.Duration{20 * time.Minute, -20 * time.Minute} {
		f := newFixture(t)
		f.workgroup(t)
		f.api.Now = func() time.Time { return time.Now().Add(off) }
		cfg := f.sdk(f.keys["admin"])
		cfg.Retryer = func() aws.Retryer { return retry.NewStandard() }
		ctx := context.Background()

		rs, err := redshift.NewFromConfig(cfg).GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
			ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("alice")})
		if err != nil {
			t.Errorf("server clock %v: GetClusterCredentials: %v", off, err)
		} else if n := attempts(rs.ResultMetadata); n != 2 {
			t.Errorf("server clock %v: GetClusterCredentials took %d attempts, want 2", off, n)
		}
		sl, err := redshiftserverless.NewFromConfig(cfg).GetCredentials(ctx, &redshiftserverless.GetCredentialsInput{WorkgroupName: aws.String("edge-wg")})
		if err != nil {
			t.Errorf("server clock %v: GetCredentials: %v", off, err)
		} else if n := attempts(sl.ResultMetadata); n != 2 {
			t.Errorf("server clock %v: GetCredentials took %d attempts, want 2", off, n)
		}
		id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			t.Errorf("server clock %v: GetCallerIdentity: %v", off, err)
		} else if n := attempts(id.ResultMetadata); n != 2 {
			t.Errorf("server clock %v: GetCallerIdentity took %d attempts, want 2", off, n)
		}
	}
}
