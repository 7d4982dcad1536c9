package http_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	rstypes "github.com/aws/aws-sdk-go-v2/service/redshift/types"
	rss "github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
	rsstypes "github.com/aws/aws-sdk-go-v2/service/redshiftserverless/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	shttp "github.com/shiftkey/shiftkey/http"
)

// TestGoSDKTypedErrors pins what aws-sdk-go-v2 makes of each error the
// credential operations and DescribeClusters answer: the typed error of
// the operation's model where it has one, the code and HTTP status of the
// contract, the request id (the x-amzn-RequestId header, and the body's
// RequestId the Query clients read) and that its standard retryer does
// not retry it.
func TestGoSDKTypedErrors(t *testing.T) {
	f := newFixture(t)
	f.workgroup(t)
	ctx := context.Background()
	admin, limited := f.client("admin"), f.client("limited")
	sAdmin, sLimited := f.serverlessClient(f.keys["admin"]), f.serverlessClient(f.keys["limited"])
	var (
		clusterNotFound *rstypes.ClusterNotFoundFault
		notFound        *rsstypes.ResourceNotFoundException
		validation      *rsstypes.ValidationException
	)
	for _, tc := range []struct {
		name   string
		call   func() error
		target any // nil: no modelled type (a generic smithy.APIError)
		code   string
		status int
	}{
		{"GetClusterCredentials, unknown cluster", func() error {
			_, err := admin.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("nope"), DbUser: aws.String("alice")})
			return err
		}, &clusterNotFound, "ClusterNotFound", 404},
		{"GetClusterCredentials, unknown custom domain", func() error {
			_, err := admin.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{CustomDomainName: aws.String("no.example.com"), DbUser: aws.String("alice")})
			return err
		}, &clusterNotFound, "ClusterNotFound", 404},
		{"GetClusterCredentials, denied", func() error {
			_, err := limited.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("bob")})
			return err
		}, nil, "AccessDenied", 403},
		{"GetClusterCredentials, DurationSeconds 60", func() error {
			_, err := admin.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("alice"), DurationSeconds: aws.Int32(60)})
			return err
		}, nil, "InvalidParameterValue", 400},
		{"GetClusterCredentials, no cluster named", func() error {
			_, err := admin.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{DbUser: aws.String("alice")})
			return err
		}, nil, "MissingParameter", 400},
		{"GetClusterCredentialsWithIAM, unknown cluster", func() error {
			_, err := admin.GetClusterCredentialsWithIAM(ctx, &redshift.GetClusterCredentialsWithIAMInput{ClusterIdentifier: aws.String("nope")})
			return err
		}, &clusterNotFound, "ClusterNotFound", 404},
		{"GetClusterCredentialsWithIAM, denied", func() error {
			_, err := limited.GetClusterCredentialsWithIAM(ctx, &redshift.GetClusterCredentialsWithIAMInput{ClusterIdentifier: aws.String("dev-cluster")})
			return err
		}, nil, "AccessDenied", 403},
		{"DescribeClusters, unknown cluster", func() error {
			_, err := admin.DescribeClusters(ctx, &redshift.DescribeClustersInput{ClusterIdentifier: aws.String("nope")})
			return err
		}, &clusterNotFound, "ClusterNotFound", 404},
		{"DescribeClusters, denied", func() error {
			_, err := limited.DescribeClusters(ctx, &redshift.DescribeClustersInput{ClusterIdentifier: aws.String("dev-cluster")})
			return err
		}, nil, "AccessDenied", 403},
		{"DescribeClusters, MaxRecords 5", func() error {
			_, err := admin.DescribeClusters(ctx, &redshift.DescribeClustersInput{MaxRecords: aws.Int32(5)})
			return err
		}, nil, "InvalidParameterValue", 400},
		{"Redshift action not implemented", func() error {
			_, err := admin.CreateClusterSnapshot(ctx, &redshift.CreateClusterSnapshotInput{ClusterIdentifier: aws.String("dev-cluster"), SnapshotIdentifier: aws.String("s")})
			return err
		}, nil, "InvalidAction", 400},
		{"GetCredentials, unknown workgroup", func() error {
			_, err := sAdmin.GetCredentials(ctx, &rss.GetCredentialsInput{WorkgroupName: aws.String("nope")})
			return err
		}, &notFound, "ResourceNotFoundException", 400},
		{"GetCredentials, no workgroup named", func() error {
			_, err := sAdmin.GetCredentials(ctx, &rss.GetCredentialsInput{})
			return err
		}, &validation, "ValidationException", 400},
		{"GetCredentials, durationSeconds 10", func() error {
			_, err := sAdmin.GetCredentials(ctx, &rss.GetCredentialsInput{WorkgroupName: aws.String("edge-wg"), DurationSeconds: aws.Int32(10)})
			return err
		}, &validation, "ValidationException", 400},
		{"GetCredentials, denied", func() error {
			_, err := sLimited.GetCredentials(ctx, &rss.GetCredentialsInput{WorkgroupName: aws.String("edge-wg")})
			return err
		}, nil, "AccessDeniedException", 403},
		{"GetWorkgroup, unknown workgroup", func() error {
			_, err := sAdmin.GetWorkgroup(ctx, &rss.GetWorkgroupInput{WorkgroupName: aws.String("nope")})
			return err
		}, &notFound, "ResourceNotFoundException", 400},
		{"Serverless operation not implemented", func() error {
			_, err := sAdmin.CreateSnapshot(ctx, &rss.CreateSnapshotInput{NamespaceName: aws.String("edge-ns"), SnapshotName: aws.String("s")})
			return err
		}, nil, "UnknownOperationException", 400},
	} {
		err := tc.call()
		if tc.target != nil && !errors.As(err, tc.target) {
			t.Errorf("%s: %T (%v), want %T", tc.name, errors.Unwrap(err), err, tc.target)
		}
		if apiCode(err) != tc.code || httpStatus(err) != tc.status {
			t.Errorf("%s: %s %d, want %s %d (%v)", tc.name, apiCode(err), httpStatus(err), tc.code, tc.status, err)
		}
		var re *smithyhttp.ResponseError
		var withID interface{ ServiceRequestID() string }
		if !errors.As(err, &re) || !errors.As(err, &withID) || withID.ServiceRequestID() == "" ||
			withID.ServiceRequestID() != re.Response.Header.Get("x-amzn-RequestId") {
			t.Errorf("%s: request id %v, want the x-amzn-RequestId header", tc.name, err)
		}
		if retry.NewStandard().IsErrorRetryable(err) {
			t.Errorf("%s: the standard retryer would retry %v", tc.name, err)
		}
	}

	// A success's request id, as awsmiddleware.GetRequestIDMetadata reads it.
	out, err := admin.DescribeClusters(ctx, &redshift.DescribeClustersInput{})
	mustOK(t, "DescribeClusters", err)
	if id, ok := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata); !ok || id == "" {
		t.Errorf("DescribeClusters: no request id")
	}
	gc, err := sAdmin.GetCredentials(ctx, &rss.GetCredentialsInput{WorkgroupName: aws.String("edge-wg")})
	mustOK(t, "GetCredentials", err)
	if id, ok := awsmiddleware.GetRequestIDMetadata(gc.ResultMetadata); !ok || id == "" {
		t.Errorf("GetCredentials: no request id")
	}
}

// TestGoSDKRetriesTransientErrors: aws-sdk-go-v2's standard retryer
// retries what shiftkey answers when it is busy or broken, up to its 3
// attempts: Throttling / ThrottlingException (all of
// MaxConcurrentRequests taken) and InternalFailure / InternalServerException
// (a store that fails), on the Query APIs and on Serverless.
func TestGoSDKRetriesTransientErrors(t *testing.T) {
	f := newFixture(t)
	f.workgroup(t)
	ctx := context.Background()
	hs := shttp.Limits{MaxConcurrentRequests: 1}.HTTPServer(f.api.Handler(), nil)
	srv := httptest.NewUnstartedServer(hs.Handler)
	srv.Config = hs
	srv.Start()
	t.Cleanup(srv.Close)
	cfg := f.sdk(f.keys["admin"])
	cfg.BaseEndpoint = aws.String(srv.URL)
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		})
	}
	rc, sc, stc := redshift.NewFromConfig(cfg), rss.NewFromConfig(cfg), sts.NewFromConfig(cfg)
	calls := func() map[string]error {
		_, e1 := rc.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("alice")})
		_, e2 := sc.GetCredentials(ctx, &rss.GetCredentialsInput{WorkgroupName: aws.String("edge-wg")})
		_, e3 := stc.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		return map[string]error{"GetClusterCredentials": e1, "GetCredentials": e2, "GetCallerIdentity": e3}
	}
	check := func(what string, errs map[string]error, codes map[string]string) {
		t.Helper()
		for op, err := range errs {
			var me *retry.MaxAttemptsError
			if !errors.As(err, &me) || me.Attempt != 3 || apiCode(err) != codes[op] {
				t.Errorf("%s, %s: %v, want %s after 3 attempts", what, op, err, codes[op])
			}
		}
	}

	// Probes without retries, which would spend the retryers' token buckets.
	probe := cfg.Copy()
	probe.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
	throttled := func() bool {
		_, err := sts.NewFromConfig(probe).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		return apiCode(err) == "Throttling"
	}
	// The only request slot is held by a request whose body never ends.
	conn := holdOnlySlot(t, srv.Listener.Addr().String(), throttled)
	check("throttled", calls(), map[string]string{"GetClusterCredentials": "Throttling", "GetCredentials": "ThrottlingException", "GetCallerIdentity": "Throttling"})
	conn.Close()
	waitUntil(t, "the slot to be freed", func() bool { return !throttled() })

	// A store that fails every call: InternalFailure, retried.
	f.store.Close()
	check("store closed", calls(), map[string]string{"GetClusterCredentials": "InternalFailure", "GetCredentials": "InternalServerException", "GetCallerIdentity": "InternalFailure"})
}
