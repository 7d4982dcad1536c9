package http_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
)

// TestIAMSTSRequestContext checks, through the real SDK clients, each
// request condition key the Service Authorization Reference lists for the
// IAM and STS actions shiftkey implements: a caller whose only permission
// is conditioned on the key succeeds when the request carries the value
// and is refused when it does not. iam:PolicyARN has its own test
// (TestFinding4DelegationPolicyARN).
func TestIAMSTSRequestContext(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	tag := func(k, v string) iamtypes.Tag { return iamtypes.Tag{Key: aws.String(k), Value: aws.String(v)} }
	for name, team := range map[string]string{"dana": "data", "otto": "ops"} {
		_, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name), Tags: []iamtypes.Tag{tag("team", team)}})
		mustOK(t, "CreateUser", err)
	}
	// A role trusting the account (so the caller's own policy decides),
	// tagged env=prod, and one tagged env=dev.
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + account + `"},"Action":["sts:AssumeRole","sts:TagSession"]}]}`
	for name, env := range map[string]string{"Prod": "prod", "Dev": "dev"} {
		_, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust), Tags: []iamtypes.Tag{tag("env", env)}})
		mustOK(t, "CreateRole", err)
	}
	prod, dev := aws.String("arn:aws:iam::"+account+":role/Prod"), aws.String("arn:aws:iam::"+account+":role/Dev")
	stsTag := func(k, v string) ststypes.Tag { return ststypes.Tag{Key: aws.String(k), Value: aws.String(v)} }

	type clients struct {
		iam *iam.Client
		sts *sts.Client
	}
	tests := []struct {
		name      string
		actions   string // JSON list
		condition string
		ok, no    func(c clients) error // the call that carries the value, and one that does not
	}{
		{"sts:RoleSessionName", `["sts:AssumeRole"]`, `"StringEquals":{"sts:RoleSessionName":"good-name"}`,
			func(c clients) error {
				_, err := c.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: prod, RoleSessionName: aws.String("good-name")})
				return err
			}, func(c clients) error {
				_, err := c.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: prod, RoleSessionName: aws.String("bad-name")})
				return err
			}},
		{"sts:ExternalId", `["sts:AssumeRole"]`, `"StringEquals":{"sts:ExternalId":"ext-1"}`,
			func(c clients) error {
				_, err := c.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: prod, RoleSessionName: aws.String("s1"), ExternalId: aws.String("ext-1")})
				return err
			}, func(c clients) error {
				_, err := c.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: prod, RoleSessionName: aws.String("s1"), ExternalId: aws.String("ext-2")})
				return err
			}},
		{"sts:ExternalId absent", `["sts:AssumeRole"]`, `"Null":{"sts:ExternalId":"false"}`,
			func(c clients) error {
				_, err := c.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: prod, RoleSessionName: aws.String("s1"), ExternalId: aws.String("any-id")})
				return err
			}, func(c clients) error {
				_, err := c.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: prod, RoleSessionName: aws.String("s1")})
				return err
			}},
		{"aws:ResourceTag on AssumeRole", `["sts:AssumeRole"]`, `"StringEquals":{"aws:ResourceTag/env":"prod"}`,
			func(c clients) error {
				_, err := c.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: prod, RoleSessionName: aws.String("s1")})
				return err
			}, func(c clients) error {
				_, err := c.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: dev, RoleSessionName: aws.String("s1")})
				return err
			}},
		{"iam:ResourceTag on AssumeRole", `["sts:AssumeRole"]`, `"StringEquals":{"iam:ResourceTag/env":"prod"}`,
			func(c clients) error {
				_, err := c.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: prod, RoleSessionName: aws.String("s1")})
				return err
			}, func(c clients) error {
				_, err := c.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: dev, RoleSessionName: aws.String("s1")})
				return err
			}},
		{"aws:RequestTag on AssumeRole and TagSession", `["sts:AssumeRole","sts:TagSession"]`, `"StringEquals":{"aws:RequestTag/team":"data"}`,
			func(c clients) error {
				_, err := c.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: prod, RoleSessionName: aws.String("s1"), Tags: []ststypes.Tag{stsTag("team", "data")}})
				return err
			}, func(c clients) error {
				_, err := c.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: prod, RoleSessionName: aws.String("s1"), Tags: []ststypes.Tag{stsTag("team", "ops")}})
				return err
			}},
		{"aws:TagKeys on AssumeRole and TagSession", `["sts:AssumeRole","sts:TagSession"]`, `"ForAllValues:StringEquals":{"aws:TagKeys":["team"]},"Null":{"aws:TagKeys":"false"}`,
			func(c clients) error {
				_, err := c.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: prod, RoleSessionName: aws.String("s1"), Tags: []ststypes.Tag{stsTag("team", "x")}})
				return err
			}, func(c clients) error {
				_, err := c.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: prod, RoleSessionName: aws.String("s1"), Tags: []ststypes.Tag{stsTag("team", "x"), stsTag("cost", "y")}})
				return err
			}},
		{"aws:RequestTag on CreateUser", `["iam:CreateUser","iam:TagUser"]`, `"StringEquals":{"aws:RequestTag/team":"data"}`,
			func(c clients) error {
				_, err := c.iam.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("new-data"), Tags: []iamtypes.Tag{tag("team", "data")}})
				return err
			}, func(c clients) error {
				_, err := c.iam.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("new-ops"), Tags: []iamtypes.Tag{tag("team", "ops")}})
				return err
			}},
		{"aws:TagKeys on CreateRole", `["iam:CreateRole","iam:TagRole"]`, `"ForAllValues:StringEquals":{"aws:TagKeys":["env"]}`,
			func(c clients) error {
				_, err := c.iam.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("R1"), AssumeRolePolicyDocument: aws.String(trust), Tags: []iamtypes.Tag{tag("env", "x")}})
				return err
			}, func(c clients) error {
				_, err := c.iam.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("R2"), AssumeRolePolicyDocument: aws.String(trust), Tags: []iamtypes.Tag{tag("owner", "x")}})
				return err
			}},
		{"aws:RequestTag on TagRole", `["iam:TagRole"]`, `"StringLike":{"aws:RequestTag/env":"pr*"}`,
			func(c clients) error {
				_, err := c.iam.TagRole(ctx, &iam.TagRoleInput{RoleName: aws.String("Dev"), Tags: []iamtypes.Tag{tag("env", "preview")}})
				return err
			}, func(c clients) error {
				_, err := c.iam.TagRole(ctx, &iam.TagRoleInput{RoleName: aws.String("Dev"), Tags: []iamtypes.Tag{tag("env", "qa")}})
				return err
			}},
		{"aws:TagKeys on UntagUser", `["iam:UntagUser"]`, `"ForAllValues:StringEquals":{"aws:TagKeys":["project"]}`,
			func(c clients) error {
				_, err := c.iam.UntagUser(ctx, &iam.UntagUserInput{UserName: aws.String("otto"), TagKeys: []string{"project"}})
				return err
			}, func(c clients) error {
				_, err := c.iam.UntagUser(ctx, &iam.UntagUserInput{UserName: aws.String("otto"), TagKeys: []string{"team"}})
				return err
			}},
		{"iam:ResourceTag on GetUser", `["iam:GetUser"]`, `"StringEquals":{"iam:ResourceTag/team":"data"}`,
			func(c clients) error {
				_, err := c.iam.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("dana")})
				return err
			}, func(c clients) error {
				_, err := c.iam.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("otto")})
				return err
			}},
		{"aws:ResourceTag on ListUserTags", `["iam:ListUserTags"]`, `"StringEquals":{"aws:ResourceTag/team":"data"}`,
			func(c clients) error {
				_, err := c.iam.ListUserTags(ctx, &iam.ListUserTagsInput{UserName: aws.String("dana")})
				return err
			}, func(c clients) error {
				_, err := c.iam.ListUserTags(ctx, &iam.ListUserTagsInput{UserName: aws.String("otto")})
				return err
			}},
		{"iam:ResourceTag on GetRole", `["iam:GetRole"]`, `"StringEquals":{"iam:ResourceTag/env":"prod"}`,
			func(c clients) error {
				_, err := c.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("Prod")})
				return err
			}, func(c clients) error {
				_, err := c.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("Dev")})
				return err
			}},
		{"aws:RequestedRegion of IAM is us-east-1", `["iam:ListUsers"]`, `"StringEquals":{"aws:RequestedRegion":"us-east-1"}`,
			func(c clients) error {
				_, err := c.iam.ListUsers(ctx, &iam.ListUsersInput{})
				return err
			}, nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := "ctx" + string(rune('a'+i))
			k := f.newIAMUserKey(t, user, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":`+tt.actions+`,"Resource":"*","Condition":{`+tt.condition+`}}]}`)
			c := clients{iam: f.iamClient(k), sts: f.stsClient(k)}
			mustOK(t, "the call carrying the value", tt.ok(c))
			if tt.no == nil {
				return
			}
			if err := tt.no(c); apiCode(err) != "AccessDenied" || httpStatus(err) != 403 {
				t.Fatalf("the call without the value: %v, want AccessDenied 403", err)
			}
		})
	}
}
