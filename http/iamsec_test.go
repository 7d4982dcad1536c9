package http_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// httpStatus is the HTTP status of an SDK error, 0 when there is none.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// newIAMUser creates a user with an inline policy and an access key and
// returns an IAM client signed with that key.
func (f *fixture) newIAMUser(t *testing.T, name, policy string) *iam.Client {
	t.Helper()
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	_, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)})
	mustOK(t, "CreateUser "+name, err)
	if policy != "" {
		_, err = admin.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String("p"), PolicyDocument: aws.String(policy)})
		mustOK(t, "PutUserPolicy "+name, err)
	}
	k, err := admin.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(name)})
	mustOK(t, "CreateAccessKey "+name, err)
	return f.iamClient(aws.Credentials{AccessKeyID: aws.ToString(k.AccessKey.AccessKeyId), SecretAccessKey: aws.ToString(k.AccessKey.SecretAccessKey)})
}

// Finding 4 (issue 12): Attach/Detach*Policy must put iam:PolicyARN in the
// request context. Without it the negated ARN operators AWS documents for
// delegation ("allow attaching anything but Admin") are true on the
// missing key, and a delegated user could attach Admin to itself.
func TestFinding4DelegationPolicyARN(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	adminARN := "arn:aws:iam::" + account + ":policy/Admin"
	for _, name := range []string{"Admin", "ReadOnly"} {
		_, err := admin.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String(name),
			PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)})
		mustOK(t, "CreatePolicy "+name, err)
	}
	_, err := admin.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String("team")})
	mustOK(t, "CreateGroup", err)
	for _, op := range []string{"ArnNotEquals", "ArnNotLike", "StringNotEquals", "StringNotLike"} {
		t.Run(op, func(t *testing.T) {
			name := "deleg" + op
			c := f.newIAMUser(t, name, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
				"Action":["iam:AttachUserPolicy","iam:DetachUserPolicy","iam:AttachGroupPolicy","iam:DetachGroupPolicy"],"Resource":"*",
				"Condition":{"`+op+`":{"iam:PolicyARN":"`+adminARN+`"}}}]}`)
			_, err := c.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String(name), PolicyArn: aws.String(adminARN)})
			if apiCode(err) != "AccessDenied" || httpStatus(err) != 403 {
				t.Fatalf("attaching Admin to itself: got %v (status %d), want AccessDenied 403", err, httpStatus(err))
			}
			_, err = c.AttachGroupPolicy(ctx, &iam.AttachGroupPolicyInput{GroupName: aws.String("team"), PolicyArn: aws.String(adminARN)})
			if apiCode(err) != "AccessDenied" {
				t.Fatalf("attaching Admin to a group: %v", err)
			}
			attached, err := admin.ListAttachedUserPolicies(ctx, &iam.ListAttachedUserPoliciesInput{UserName: aws.String(name)})
			mustOK(t, "ListAttachedUserPolicies", err)
			if len(attached.AttachedPolicies) != 0 {
				t.Fatalf("a refused attach left %+v attached", attached.AttachedPolicies)
			}
			other := "arn:aws:iam::" + account + ":policy/ReadOnly"
			_, err = c.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String(name), PolicyArn: aws.String(other)})
			mustOK(t, "attaching another policy", err)
			_, err = c.DetachUserPolicy(ctx, &iam.DetachUserPolicyInput{UserName: aws.String(name), PolicyArn: aws.String(other)})
			mustOK(t, "detaching another policy", err)
		})
	}
	// Detach is keyed the same way: a user allowed to detach anything but
	// Admin cannot take Admin off someone.
	_, err = admin.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String("limited"), PolicyArn: aws.String(adminARN)})
	mustOK(t, "admin attaches Admin to limited", err)
	c := f.newIAMUser(t, "detacher", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:DetachUserPolicy","Resource":"*",
		"Condition":{"ArnNotEquals":{"iam:PolicyARN":"`+adminARN+`"}}}]}`)
	_, err = c.DetachUserPolicy(ctx, &iam.DetachUserPolicyInput{UserName: aws.String("limited"), PolicyArn: aws.String(adminARN)})
	if apiCode(err) != "AccessDenied" {
		t.Fatalf("detaching Admin: %v", err)
	}
}

// Finding 7 (issue 12): the two-keys-per-user quota was checked and then
// written in separate steps, so concurrent CreateAccessKey calls exceeded
// it. The store now enforces it in the write.
func TestFinding7AccessKeyQuotaConcurrent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	_, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("racer")})
	mustOK(t, "CreateUser", err)
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = admin.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("racer")})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case apiCode(err) == "LimitExceeded" && httpStatus(err) == 409:
		default:
			t.Errorf("CreateAccessKey: %v (status %d), want success or LimitExceeded 409", err, httpStatus(err))
		}
	}
	keys, err := admin.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("racer")})
	mustOK(t, "ListAccessKeys", err)
	if ok != 2 || len(keys.AccessKeyMetadata) != 2 {
		t.Fatalf("%d of %d concurrent CreateAccessKey calls succeeded, %d keys stored; want 2", ok, n, len(keys.AccessKeyMetadata))
	}
	_, err = admin.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("racer")})
	if apiCode(err) != "LimitExceeded" || httpStatus(err) != 409 {
		t.Fatalf("third key: %v", err)
	}
}
