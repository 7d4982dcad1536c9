package http_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/internal/storetest"
)

// IAM's quotas on what hangs off one identity ("IAM and AWS STS quotas"):
// 10 managed policies attached to a user, group or role, and 10 groups a
// user is a member of. Past them AWS answers LimitExceeded (409).

const allowDescribe = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:DescribeClusters","Resource":"*"}]}`

// managedPolicies creates n managed policies called prefix0… and returns
// their ARNs.
func managedPolicies(t *testing.T, admin *iam.Client, prefix string, n int) []string {
	t.Helper()
	arns := make([]string, n)
	for i := range n {
		out, err := admin.CreatePolicy(context.Background(), &iam.CreatePolicyInput{PolicyName: aws.String(fmt.Sprintf("%s%d", prefix, i)), PolicyDocument: aws.String(allowDescribe)})
		mustOK(t, "CreatePolicy", err)
		arns[i] = aws.ToString(out.Policy.Arn)
	}
	return arns
}

func TestAttachedManagedPolicyQuota(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	_, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("attachee")})
	mustOK(t, "CreateUser", err)
	_, err = admin.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String("attachees")})
	mustOK(t, "CreateGroup", err)
	f.createRole(t, "Attachee", trustUser("admin"), allowDescribe)
	arns := managedPolicies(t, admin, "quota", 11)
	attach := map[string]func(arn string) error{
		"User": func(arn string) error {
			_, err := admin.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String("attachee"), PolicyArn: aws.String(arn)})
			return err
		},
		"Group": func(arn string) error {
			_, err := admin.AttachGroupPolicy(ctx, &iam.AttachGroupPolicyInput{GroupName: aws.String("attachees"), PolicyArn: aws.String(arn)})
			return err
		},
		"Role": func(arn string) error {
			_, err := admin.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("Attachee"), PolicyArn: aws.String(arn)})
			return err
		},
	}
	for _, kind := range []string{"User", "Group", "Role"} {
		t.Run(kind, func(t *testing.T) {
			for _, arn := range arns[:10] {
				mustOK(t, "attaching one of the first 10", attach[kind](arn))
			}
			mustOK(t, "attaching one of them again (a no-op)", attach[kind](arns[0]))
			err := attach[kind](arns[10])
			want := "Cannot exceed quota for PoliciesPer" + kind + ": 10"
			if apiCode(err) != "LimitExceeded" || httpStatus(err) != 409 || !strings.Contains(err.Error(), want) {
				t.Fatalf("an 11th attached policy: %v (status %d), want LimitExceeded 409 %q", err, httpStatus(err), want)
			}
		})
	}

	// Concurrent attachments cannot pass the quota together.
	f.createRole(t, "Racer", trustUser("admin"), allowDescribe)
	many := managedPolicies(t, admin, "race", 20)
	errs := storetest.Concurrently(len(many), func(i int) error {
		_, err := admin.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("Racer"), PolicyArn: aws.String(many[i])})
		return err
	})
	ok := storetest.Succeeded(t, "concurrent AttachRolePolicy", errs, limitExceeded)
	got, err := admin.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String("Racer")})
	mustOK(t, "ListAttachedRolePolicies", err)
	if ok != 10 || len(got.AttachedPolicies) != 10 {
		t.Fatalf("%d of %d concurrent attachments succeeded, %d attached; want 10", ok, len(many), len(got.AttachedPolicies))
	}
}

func TestGroupsPerUserQuota(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	for _, u := range []string{"joiner", "racer"} {
		_, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(u)})
		mustOK(t, "CreateUser", err)
	}
	for i := range 20 {
		_, err := admin.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String(fmt.Sprintf("g%02d", i))})
		mustOK(t, "CreateGroup", err)
	}
	join := func(user string, i int) error {
		_, err := admin.AddUserToGroup(ctx, &iam.AddUserToGroupInput{UserName: aws.String(user), GroupName: aws.String(fmt.Sprintf("g%02d", i))})
		return err
	}
	for i := range 10 {
		mustOK(t, "joining one of the first 10 groups", join("joiner", i))
	}
	mustOK(t, "joining one of them again (a no-op)", join("joiner", 0))
	err := join("joiner", 10)
	if apiCode(err) != "LimitExceeded" || httpStatus(err) != 409 || !strings.Contains(err.Error(), "Cannot exceed quota for GroupsPerUser: 10") {
		t.Fatalf("an 11th group: %v (status %d), want LimitExceeded 409", err, httpStatus(err))
	}

	errs := storetest.Concurrently(20, func(i int) error { return join("racer", i) })
	ok := storetest.Succeeded(t, "concurrent AddUserToGroup", errs, limitExceeded)
	got, err := admin.ListGroupsForUser(ctx, &iam.ListGroupsForUserInput{UserName: aws.String("racer")})
	mustOK(t, "ListGroupsForUser", err)
	if ok != 10 || len(got.Groups) != 10 {
		t.Fatalf("%d of 20 concurrent joins succeeded, %d groups; want 10", ok, len(got.Groups))
	}
}

// Tag keys and values are counted in characters and drawn from IAM's set
// (tagKeyType [\p{L}\p{Z}\p{N}_.:/=+\-@]+, 1-128; tagValueType the same, 0-256):
// a value with a control character or a quote is refused with
// ValidationError, a key of 128 accented letters is not.
func TestTagCharactersAndLengths(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	_, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("tagged")})
	mustOK(t, "CreateUser", err)
	tag := func(k, v string) error {
		_, err := admin.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("tagged"), Tags: []iamtypes.Tag{{Key: aws.String(k), Value: aws.String(v)}}})
		return err
	}
	for _, tc := range []struct{ k, v string }{
		{strings.Repeat("é", 128), strings.Repeat("ü", 256)},
		{"team name_1.:/=+-@", "Data Eng: ü 7"},
		{"empty", ""},
	} {
		if err := tag(tc.k, tc.v); err != nil {
			t.Errorf("TagUser %q=%q: %v", tc.k, tc.v, err)
		}
	}
	for _, tc := range []struct{ k, v string }{
		{"RedshiftDbRoles", "reader\nadmin"},
		{"RedshiftDbRoles", `reader"; DROP`},
		{"key;", "v"},
		{"tab\tkey", "v"},
		{strings.Repeat("é", 129), "v"},
		{"k", strings.Repeat("ü", 257)},
	} {
		if err := tag(tc.k, tc.v); apiCode(err) != "ValidationError" || httpStatus(err) != 400 {
			t.Errorf("TagUser %q=%q: %v (status %d), want ValidationError 400", tc.k, tc.v, err, httpStatus(err))
		}
	}
	_, err = admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("Tagged"), AssumeRolePolicyDocument: aws.String(trustUser("admin")),
		Tags: []iamtypes.Tag{{Key: aws.String("k"), Value: aws.String("a\x00b")}}})
	if apiCode(err) != "ValidationError" {
		t.Errorf("CreateRole with a NUL in a tag value: %v", err)
	}
}

// What IAM's service model constrains (botocore's iam 2010-05-08
// service-2.json): a policy document (policyDocumentType) is at most
// 131,072 characters, white space included, of tab, LF, CR and U+0020 to
// U+00FF; a path (pathType) is "/" or "/…/" with something between; a
// managed policy's path (policyPathType) has letters, digits and .,+@=_-
// between its slashes; a policy's description is at most 1,000 characters
// and a role's at most 1,000 of tab, LF, CR, U+0020-U+007E and
// U+00A1-U+00FF; UntagUser takes at most 50 keys (tagKeyListType), each a
// tag key. Each violation is ValidationError (400).
func TestIAMParameterConstraints(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	_, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("bounded")})
	mustOK(t, "CreateUser", err)
	f.createRole(t, "Bounded", trustUser("admin"), allowDescribe)
	padded := func(doc string, n int) string {
		return strings.Replace(doc, "{", "{"+strings.Repeat(" ", n-len(doc)), 1)
	}
	trust := trustUser("admin")
	keys := make([]string, 51)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
	}
	refused := map[string]error{}
	refuse := func(what string, err error) { refused[what] = err }
	_, err = admin.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("bounded"), PolicyName: aws.String("padded"), PolicyDocument: aws.String(padded(allowDescribe, 131073))})
	refuse("an inline policy of 131,073 characters, most of them white space", err)
	_, err = admin.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("Bounded"), PolicyName: aws.String("cjk"), PolicyDocument: aws.String(strings.Replace(allowDescribe, `"*"`, `"arn:aws:s3:::部"`, 1))})
	refuse("an inline policy with U+90E8", err)
	_, err = admin.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("padded"), PolicyDocument: aws.String(padded(allowDescribe, 131073))})
	refuse("a managed policy of 131,073 characters", err)
	_, err = admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("Padded"), AssumeRolePolicyDocument: aws.String(padded(trust, 131073))})
	refuse("a trust policy of 131,073 characters", err)
	_, err = admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("slashes"), Path: aws.String("//")})
	refuse("path //", err)
	for _, path := range []string{"/a*b/", "/a:b/", "//x/"} {
		_, err = admin.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("pathed"), Path: aws.String(path), PolicyDocument: aws.String(allowDescribe)})
		refuse("managed policy path "+path, err)
	}
	_, err = admin.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("described"), PolicyDocument: aws.String(allowDescribe), Description: aws.String(strings.Repeat("d", 1001))})
	refuse("a policy description of 1,001 characters", err)
	_, err = admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("Ctrl"), AssumeRolePolicyDocument: aws.String(trust), Description: aws.String("a\x01b")})
	refuse("a role description with U+0001", err)
	_, err = admin.UntagUser(ctx, &iam.UntagUserInput{UserName: aws.String("bounded"), TagKeys: keys})
	refuse("UntagUser with 51 keys", err)
	_, err = admin.UntagUser(ctx, &iam.UntagUserInput{UserName: aws.String("bounded"), TagKeys: []string{strings.Repeat("k", 129)}})
	refuse("UntagUser with a key of 129 characters", err)
	for what, err := range refused {
		if apiCode(err) != "ValidationError" || httpStatus(err) != 400 {
			t.Errorf("%s: %v (status %d), want ValidationError 400", what, err, httpStatus(err))
		}
	}

	// At the limits, and in characters rather than bytes: allowed.
	_, err = admin.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("Bounded"), PolicyName: aws.String("padded"), PolicyDocument: aws.String(padded(allowDescribe, 131072))})
	mustOK(t, "an inline policy of 131,072 characters", err)
	_, err = admin.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("latin1"), Path: aws.String("/a.b,c+d@e=f_g-h/i/"),
		PolicyDocument: aws.String(strings.Replace(allowDescribe, `"*"`, `"arn:aws:s3:::ü"`, 1)), Description: aws.String(strings.Repeat("é", 1000))})
	mustOK(t, "a managed policy with Latin-1, a path of every allowed character and a description of 1,000 accented letters", err)
	_, err = admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("Described"), AssumeRolePolicyDocument: aws.String(trust), Description: aws.String(strings.Repeat("é", 1000))})
	mustOK(t, "a role description of 1,000 accented letters", err)
	_, err = admin.UntagUser(ctx, &iam.UntagUserInput{UserName: aws.String("bounded"), TagKeys: keys[:50]})
	mustOK(t, "UntagUser with 50 keys", err)
}

// The inline quota is the aggregate of an entity's inline policies:
// concurrent puts of policies under different names cannot pass it
// together (as concurrent CreateAccessKey calls cannot pass theirs).
func TestInlinePolicyAggregateConcurrent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	_, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("crowded")})
	mustOK(t, "CreateUser", err)
	doc := policyOfSize(t, 500) // four fit in 2,048, a fifth does not
	errs := storetest.Concurrently(20, func(i int) error {
		_, err := admin.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("crowded"), PolicyName: aws.String(fmt.Sprintf("p%02d", i)), PolicyDocument: aws.String(doc)})
		return err
	})
	ok := storetest.Succeeded(t, "concurrent PutUserPolicy", errs, limitExceeded409)
	names, err := admin.ListUserPolicies(ctx, &iam.ListUserPoliciesInput{UserName: aws.String("crowded")})
	mustOK(t, "ListUserPolicies", err)
	if ok != 4 || len(names.PolicyNames) != 4 {
		t.Fatalf("%d of 20 concurrent puts of 500 characters succeeded, %d stored; want 4 (2,048 in all)", ok, len(names.PolicyNames))
	}
}

// IAM's account quotas: 5,000 users, 300 groups, 1,000 roles and 1,500
// customer managed policies; past them AWS answers LimitExceeded (409).
// (A caller allowed CreateUser, even on one path only, could otherwise
// fill the store: every list call reads all the entities of its kind.)
func TestAccountEntityQuotas(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	// Fill the store directly up to one short of each quota, then let the
	// API create the last one and refuse the next.
	fill := func(kind shiftkey.EntityKind, prefix string, n int) {
		t.Helper()
		have, err := f.store.Entities(ctx, kind, "/")
		mustOK(t, "Entities", err)
		for i := len(have); i < n-1; i++ {
			name := fmt.Sprintf("%s%05d", prefix, i)
			mustOK(t, "CreateEntity", f.store.CreateEntity(ctx, &shiftkey.Entity{Kind: kind, Name: name, ID: shiftkey.NewID("AIDA"), Path: "/",
				ARN: "arn:aws:iam::" + account + ":" + string(kind) + "/" + name, AssumeRolePolicy: trustUser("admin"), CreatedAt: time.Now()}))
		}
	}
	fill(shiftkey.KindUser, "u", 5000)
	fill(shiftkey.KindGroup, "g", 300)
	fill(shiftkey.KindRole, "r", 1000)
	for i := range 1499 {
		name := fmt.Sprintf("p%05d", i)
		mustOK(t, "CreateManagedPolicy", f.store.CreateManagedPolicy(ctx, &shiftkey.ManagedPolicy{ARN: "arn:aws:iam::" + account + ":policy/" + name, Name: name,
			ID: shiftkey.NewID("ANPA"), Path: "/", Document: allowDescribe, CreatedAt: time.Now(), UpdatedAt: time.Now()}))
	}
	create := map[string]func(name string) error{
		"Users": func(name string) error {
			_, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)})
			return err
		},
		"Groups": func(name string) error {
			_, err := admin.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String(name)})
			return err
		},
		"Roles": func(name string) error {
			_, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trustUser("admin"))})
			return err
		},
		"Policies": func(name string) error {
			_, err := admin.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String(name), PolicyDocument: aws.String(allowDescribe)})
			return err
		},
	}
	for _, tc := range []struct {
		what  string
		quota int
	}{{"Users", 5000}, {"Groups", 300}, {"Roles", 1000}, {"Policies", 1500}} {
		if err := create[tc.what]("last"); err != nil {
			t.Errorf("%s: the %dth: %v", tc.what, tc.quota, err)
		}
		err := create[tc.what]("over")
		want := fmt.Sprintf("Cannot exceed quota for %sPerAccount: %d", tc.what, tc.quota)
		if apiCode(err) != "LimitExceeded" || httpStatus(err) != 409 || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: one past the quota: %v (status %d), want LimitExceeded 409 %q", tc.what, err, httpStatus(err), want)
		}
	}
}

// The 50 tags of a user or role are counted in the write: concurrent
// TagUser calls adding different keys cannot pass the quota together.
func TestTagQuotaConcurrent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	_, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("labelled")})
	mustOK(t, "CreateUser", err)
	errs := storetest.Concurrently(25, func(i int) error {
		tags := make([]iamtypes.Tag, 5)
		for j := range tags {
			tags[j] = iamtypes.Tag{Key: aws.String(fmt.Sprintf("k%d-%d", i, j)), Value: aws.String("v")}
		}
		_, err := admin.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("labelled"), Tags: tags})
		return err
	})
	ok := storetest.Succeeded(t, "concurrent TagUser", errs, limitExceeded409)
	got, err := admin.ListUserTags(ctx, &iam.ListUserTagsInput{UserName: aws.String("labelled")})
	mustOK(t, "ListUserTags", err)
	if ok != 10 || len(got.Tags) != 50 {
		t.Fatalf("%d of 25 concurrent TagUser calls of 5 new keys succeeded, %d tags stored; want 10 and 50", ok, len(got.Tags))
	}
}

// limitExceeded and limitExceeded409 accept IAM's quota refusal, the
// second only with its status.
func limitExceeded(err error) bool    { return apiCode(err) == "LimitExceeded" }
func limitExceeded409(err error) bool { return limitExceeded(err) && httpStatus(err) == 409 }
