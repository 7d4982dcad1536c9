package http_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/shiftkey/shiftkey/internal/storetest"
)

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
	errs := storetest.Concurrently(20, func(int) error {
		_, err := admin.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("racer")})
		return err
	})
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
		t.Fatalf("%d of %d concurrent CreateAccessKey calls succeeded, %d keys stored; want 2", ok, len(errs), len(keys.AccessKeyMetadata))
	}
	_, err = admin.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("racer")})
	if apiCode(err) != "LimitExceeded" || httpStatus(err) != 409 {
		t.Fatalf("third key: %v", err)
	}
}

// policyOfSize is a valid policy document of exactly n non-white-space
// characters, padded with white space that IAM does not count.
func policyOfSize(t *testing.T, n int) string {
	t.Helper()
	head := "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\n      \"Effect\": \"Allow\",\n      \"Action\": \"s3:GetObject\",\n      \"Resource\": \"arn:aws:s3:::"
	tail := "\"\n    }\n  ]\n}\n\t\t   \n"
	fixed := nonSpace(head) + nonSpace(tail)
	if n < fixed+1 {
		t.Fatalf("policyOfSize(%d): at least %d", n, fixed+1)
	}
	doc := head + strings.Repeat("b", n-fixed) + tail
	if nonSpace(doc) != n || len(doc) <= n {
		t.Fatalf("policyOfSize(%d) built %d non-space of %d", n, nonSpace(doc), len(doc))
	}
	return doc
}

func nonSpace(s string) int {
	n := 0
	for _, r := range s {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	return n
}

// Finding 7 (issue 12): IAM counts policy size in non-white-space
// characters, and the inline limit is the aggregate of all inline policies
// of a user (2,048), group (5,120) or role (10,240); a managed policy may
// have 6,144 and a trust policy 2,048.
func TestFinding7PolicySizeLimits(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"sts:AssumeRole"}]}`
	_, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("sizer")})
	mustOK(t, "CreateUser", err)
	_, err = admin.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String("sizers")})
	mustOK(t, "CreateGroup", err)
	_, err = admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("Sizer"), AssumeRolePolicyDocument: aws.String(trust)})
	mustOK(t, "CreateRole", err)
	put := map[string]func(name, doc string) error{
		"user": func(name, doc string) error {
			_, err := admin.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("sizer"), PolicyName: aws.String(name), PolicyDocument: aws.String(doc)})
			return err
		},
		"group": func(name, doc string) error {
			_, err := admin.PutGroupPolicy(ctx, &iam.PutGroupPolicyInput{GroupName: aws.String("sizers"), PolicyName: aws.String(name), PolicyDocument: aws.String(doc)})
			return err
		},
		"role": func(name, doc string) error {
			_, err := admin.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("Sizer"), PolicyName: aws.String(name), PolicyDocument: aws.String(doc)})
			return err
		},
	}
	for _, tc := range []struct {
		kind, owner string
		limit       int
	}{{"user", "sizer", 2048}, {"group", "sizers", 5120}, {"role", "Sizer", 10240}} {
		t.Run(tc.kind, func(t *testing.T) {
			half := tc.limit / 2
			mustOK(t, "one policy of half the limit", put[tc.kind]("a", policyOfSize(t, half)))
			mustOK(t, "a second filling the aggregate exactly", put[tc.kind]("b", policyOfSize(t, tc.limit-half)))
			err := put[tc.kind]("c", policyOfSize(t, 200))
			want := fmt.Sprintf("Maximum policy size of %d bytes exceeded for %s %s", tc.limit, tc.kind, tc.owner)
			if apiCode(err) != "LimitExceeded" || httpStatus(err) != 409 || !strings.Contains(err.Error(), want) {
				t.Fatalf("a third policy over the aggregate: %v (status %d), want LimitExceeded 409 %q", err, httpStatus(err), want)
			}
			if err := put[tc.kind]("B", policyOfSize(t, tc.limit-half+1)); apiCode(err) != "LimitExceeded" {
				t.Fatalf("replacing b one character over the aggregate: %v", err)
			}
			mustOK(t, "replacing b at the aggregate (its old size does not count twice)", put[tc.kind]("b", policyOfSize(t, tc.limit-half)))
		})
	}
	_, err = admin.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("at-limit"), PolicyDocument: aws.String(policyOfSize(t, 6144))})
	mustOK(t, "managed policy of 6,144 non-white-space characters", err)
	_, err = admin.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("over-limit"), PolicyDocument: aws.String(policyOfSize(t, 6145))})
	if apiCode(err) != "LimitExceeded" || !strings.Contains(err.Error(), "Cannot exceed quota for PolicySize: 6144") {
		t.Fatalf("managed policy of 6,145: %v", err)
	}
	pad := func(n int) string { // a trust policy of n non-white-space characters
		base := `{"Version":"2012-10-17","Statement":[{"Sid":"","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"sts:AssumeRole"}]}`
		return strings.Replace(base, `"Sid":""`, `"Sid":"`+strings.Repeat("S", n-len(base))+`"`, 1) + strings.Repeat(" \n", 300)
	}
	_, err = admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("TrustAtLimit"), AssumeRolePolicyDocument: aws.String(pad(2048))})
	mustOK(t, "trust policy of 2,048 non-white-space characters", err)
	_, err = admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("TrustOverLimit"), AssumeRolePolicyDocument: aws.String(pad(2049))})
	if apiCode(err) != "LimitExceeded" || !strings.Contains(err.Error(), "ACLSizePerRole: 2048") {
		t.Fatalf("trust policy of 2,049: %v", err)
	}
}
