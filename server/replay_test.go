package server

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/sqlite"
)

// offsetStore is a shared store whose clock is off this machine's by off.
type offsetStore struct {
	*sqlite.DB
	off *atomic.Int64
}

func (o offsetStore) Now() time.Time { return time.Now().Add(time.Duration(o.off.Load())) }

// offsetClockAPI serves the API from a fresh SQLite store with one user
// and its access key, by a store clock off this machine's by off, and
// returns an STS client signing as that user with retryer.
func offsetClockAPI(t *testing.T, off *atomic.Int64, retryer aws.Retryer) *sts.Client {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	u := &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "u", ID: shiftkey.NewID("AIDA"), Path: "/", ARN: "arn:aws:iam::000000000000:user/u", CreatedAt: time.Now()}
	k := &shiftkey.AccessKey{ID: shiftkey.NewID("AKIA"), Secret: shiftkey.NewSecretKey(), UserName: "u", Status: "Active", CreatedAt: time.Now()}
	if err := db.CreateEntity(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAccessKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	s := &Server{Logger: slog.New(slog.DiscardHandler)}
	s.UseStore(offsetStore{db, off})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.StartAPI(ln)
	t.Cleanup(func() { s.Stop(); s.Close() })
	return sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + ln.Addr().String()), Retryer: retryer,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret}, nil
		})})
}

// An attacker who captured a signed request replays it ten minutes later
// to a replica whose machine clock is ten minutes slow: by that clock the
// request is fresh. The replica checks SigV4 time by the store's clock,
// so the replay is refused as on every other replica.
func TestReplayToASlowReplicaIsRefused(t *testing.T) {
	ctx := context.Background()
	var off atomic.Int64
	client := offsetClockAPI(t, &off, aws.NopRetryer{})
	// Signed now, by a clock that agrees with the store's: served.
	if _, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatalf("a request signed by the store's time: %v", err)
	}
	// The store's clock is ten minutes ahead of this machine's (the machine
	// is slow): a request signed by this machine's clock now is what a
	// capture from ten minutes ago is, by the store's time.
	off.Store(int64(10 * time.Minute))
	_, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err == nil {
		t.Fatal("a request ten minutes old by the store's clock was served by a replica whose own clock is ten minutes slow")
	}
	if !strings.Contains(err.Error(), "RequestExpired") && !strings.Contains(err.Error(), "Signature expired") {
		t.Errorf("refused, but not as expired: %v", err)
	}
}

// A replica whose machine clock is 20 minutes behind its store's: an SDK
// client whose clock agrees with the machine is refused (its signature is
// 20 minutes old by the store's time, the clock every replica judges by),
// and aws-sdk-go-v2's standard retryer corrects its clock from the
// answer's Date header and signs again. That works only if the Date
// header tells the clock the signature was judged by.
func TestSDKClockCorrectionFollowsTheStoreClock(t *testing.T) {
	ctx := context.Background()
	var off atomic.Int64
	off.Store(int64(20 * time.Minute))
	client := offsetClockAPI(t, &off, retry.NewStandard())
	out, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("a client 20 minutes behind the store's clock: %v", err)
	}
	if r, _ := retry.GetAttemptResults(out.ResultMetadata); len(r.Results) != 2 {
		t.Errorf("served after %d attempts, want 2 (refused, then signed by the corrected clock)", len(r.Results))
	}
}
