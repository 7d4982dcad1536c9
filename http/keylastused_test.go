package http_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
)

// GetAccessKeyLastUsed (aws iam get-access-key-last-used) answers as AWS
// does: N/A for a key never used, then when, for which service and in
// which region the key last signed a request; recorded at most once an
// hour per key (AWS too reports it late), so an issue costs no write.
func TestGetAccessKeyLastUsed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	bob := f.newIAMUserKey(t, "bob", allowDescribe)
	last := func() *iam.GetAccessKeyLastUsedOutput {
		t.Helper()
		out, err := admin.GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(bob.AccessKeyID)})
		mustOK(t, "GetAccessKeyLastUsed", err)
		if aws.ToString(out.UserName) != "bob" || out.AccessKeyLastUsed == nil {
			t.Fatalf("GetAccessKeyLastUsed: %+v", out)
		}
		return out
	}
	if u := last().AccessKeyLastUsed; aws.ToString(u.ServiceName) != "N/A" || aws.ToString(u.Region) != "N/A" || u.LastUsedDate != nil {
		t.Fatalf("a key never used: %+v, want N/A, N/A and no date", u)
	}
	before := time.Now().Truncate(time.Second)
	_, err := redshift.NewFromConfig(f.sdk(bob)).DescribeClusters(ctx, &redshift.DescribeClustersInput{})
	mustOK(t, "DescribeClusters as bob", err)
	after := time.Now()
	f.api.WaitBackground() // the record is written beside the call
	u := last().AccessKeyLastUsed
	if aws.ToString(u.ServiceName) != "redshift" || aws.ToString(u.Region) != "us-east-1" || u.LastUsedDate == nil ||
		u.LastUsedDate.Before(before) || u.LastUsedDate.After(after) {
		t.Fatalf("after a Redshift call: %+v (date %v), want redshift, us-east-1, a date between %v and %v", u, aws.ToTime(u.LastUsedDate), before, after)
	}

	// Another user may not read it without the permission, nor learn
	// which key ids exist: an unknown key is AccessDenied to that user
	// too, and NoSuchEntity only to one who may read any user's.
	_, err = f.iamClient(bob).GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(f.keys["admin"].AccessKeyID)})
	wantAPIError(t, err, "AccessDenied")
	_, err = f.iamClient(bob).GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String("AKIANOSUCHKEY0000000")})
	wantAPIError(t, err, "AccessDenied")
	_, err = admin.GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String("AKIANOSUCHKEY0000000")})
	wantAPIError(t, err, "NoSuchEntity")
}
