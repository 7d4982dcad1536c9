package http_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// TestCreateWithTagsNeedsTagPermission: creating a user or role with Tags
// is also iam:TagUser / iam:TagRole on it (the IAM User Guide's "Create new
// users only with specific tags" grants both), and without it nothing is
// created.
func TestCreateWithTagsNeedsTagPermission(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	creator := f.newIAMUser(t, "creator", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:CreateUser","iam:CreateRole","iam:GetUser","iam:GetRole"],"Resource":"*"}]}`)
	tags := []iamtypes.Tag{{Key: aws.String("team"), Value: aws.String("data")}}

	_, err := creator.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("tagged"), Tags: tags})
	if apiCode(err) != "AccessDenied" || httpStatus(err) != 403 || !strings.Contains(err.Error(), "iam:TagUser") {
		t.Fatalf("CreateUser with Tags, no iam:TagUser: %v (status %d), want AccessDenied 403 naming iam:TagUser", err, httpStatus(err))
	}
	if _, err := creator.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("tagged")}); apiCode(err) != "NoSuchEntity" {
		t.Fatalf("GetUser after the refused CreateUser: %v, want NoSuchEntity (nothing created)", err)
	}
	_, err = creator.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("Tagged"), AssumeRolePolicyDocument: aws.String(trustUser("admin")), Tags: tags})
	if apiCode(err) != "AccessDenied" || httpStatus(err) != 403 || !strings.Contains(err.Error(), "iam:TagRole") {
		t.Fatalf("CreateRole with Tags, no iam:TagRole: %v (status %d), want AccessDenied 403 naming iam:TagRole", err, httpStatus(err))
	}
	if _, err := creator.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("Tagged")}); apiCode(err) != "NoSuchEntity" {
		t.Fatalf("GetRole after the refused CreateRole: %v, want NoSuchEntity", err)
	}
	// Without tags CreateUser alone is enough.
	_, err = creator.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("untagged")})
	mustOK(t, "CreateUser without Tags", err)

	// With iam:TagUser, limited by aws:TagKeys as the User Guide's
	// example does, the same call works, and the keys are checked.
	tagger := f.newIAMUser(t, "tagger", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:CreateUser","iam:GetUser"],"Resource":"*"},
		{"Effect":"Allow","Action":"iam:TagUser","Resource":"*","Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["team"]}}}]}`)
	out, err := tagger.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("tagged"), Tags: tags})
	mustOK(t, "CreateUser with Tags and iam:TagUser", err)
	if len(out.User.Tags) != 1 {
		t.Fatalf("CreateUser returned tags %+v", out.User.Tags)
	}
	got, err := tagger.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("tagged")})
	mustOK(t, "GetUser", err)
	if len(got.User.Tags) != 1 || aws.ToString(got.User.Tags[0].Key) != "team" {
		t.Fatalf("GetUser tags %+v", got.User.Tags)
	}
	_, err = tagger.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("other"), Tags: []iamtypes.Tag{{Key: aws.String("owner"), Value: aws.String("x")}}})
	if apiCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "iam:TagUser") {
		t.Fatalf("CreateUser with a tag key iam:TagUser does not allow: %v, want AccessDenied", err)
	}
}
