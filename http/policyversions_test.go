package http_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
)

// Managed policies change the way AWS changes them: CreatePolicyVersion
// (SetAsDefault), SetDefaultPolicyVersion, DeletePolicyVersion, as
// Terraform's aws_iam_policy update and destroy call them.

const (
	allowCredentials = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:GetClusterCredentials","Resource":"*"}]}`
	denyCredentials  = `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"redshift:GetClusterCredentials","Resource":"*"}]}`
)

func versionIDs(vs []iamtypes.PolicyVersion) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		id := aws.ToString(v.VersionId)
		if v.IsDefaultVersion {
			id += "*"
		}
		out[i] = id
	}
	return out
}

// TestPolicyVersionsChangeTheDecision: a new default version decides the
// very next GetClusterCredentials (the services read through storecache,
// as serve's do); the versions are listed, read, made default and deleted
// as IAM does, with IAM's errors.
func TestPolicyVersionsChangeTheDecision(t *testing.T) {
	f := newCachedFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	gina := f.redshiftClient(f.newIAMUserKey(t, "gina", ""))
	call := func() error {
		_, err := gina.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("gina")})
		return err
	}
	p, err := admin.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("creds"), PolicyDocument: aws.String(allowCredentials)})
	mustOK(t, "CreatePolicy", err)
	arn := p.Policy.Arn
	_, err = admin.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String("gina"), PolicyArn: arn})
	mustOK(t, "AttachUserPolicy", err)
	mustOK(t, "gina under v1 (allow)", call())

	v2, err := admin.CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: arn, PolicyDocument: aws.String(denyCredentials), SetAsDefault: true})
	mustOK(t, "CreatePolicyVersion v2 SetAsDefault", err)
	if aws.ToString(v2.PolicyVersion.VersionId) != "v2" || !v2.PolicyVersion.IsDefaultVersion || v2.PolicyVersion.CreateDate == nil || v2.PolicyVersion.Document != nil {
		t.Fatalf("CreatePolicyVersion: %+v", v2.PolicyVersion)
	}
	if err := call(); apiCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "explicit deny") {
		t.Fatalf("gina on the very next call after v2 (deny) became the default: %v, want AccessDenied by an explicit deny", err)
	}
	gp, err := admin.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: arn})
	mustOK(t, "GetPolicy", err)
	if aws.ToString(gp.Policy.DefaultVersionId) != "v2" || !aws.ToTime(gp.Policy.UpdateDate).Equal(aws.ToTime(v2.PolicyVersion.CreateDate)) {
		t.Fatalf("GetPolicy: DefaultVersionId %q UpdateDate %v, want v2 and v2's CreateDate %v", aws.ToString(gp.Policy.DefaultVersionId),
			gp.Policy.UpdateDate, v2.PolicyVersion.CreateDate)
	}
	got, err := admin.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: arn, VersionId: aws.String("v1")})
	mustOK(t, "GetPolicyVersion v1", err)
	if doc, _ := url.QueryUnescape(aws.ToString(got.PolicyVersion.Document)); doc != allowCredentials || got.PolicyVersion.IsDefaultVersion {
		t.Fatalf("GetPolicyVersion v1: %+v (document %q), want the allow, not default", got.PolicyVersion, doc)
	}
	got, err = admin.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: arn, VersionId: aws.String("v2")})
	mustOK(t, "GetPolicyVersion v2", err)
	if doc, _ := url.QueryUnescape(aws.ToString(got.PolicyVersion.Document)); doc != denyCredentials || !got.PolicyVersion.IsDefaultVersion {
		t.Fatalf("GetPolicyVersion v2: %+v (document %q), want the deny, default", got.PolicyVersion, doc)
	}

	_, err = admin.SetDefaultPolicyVersion(ctx, &iam.SetDefaultPolicyVersionInput{PolicyArn: arn, VersionId: aws.String("v1")})
	mustOK(t, "SetDefaultPolicyVersion v1", err)
	mustOK(t, "gina on the very next call after v1 is the default again", call())

	// Non-default versions up to IAM's 5, then LimitExceeded.
	for _, want := range []string{"v3", "v4", "v5"} {
		v, err := admin.CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: arn, PolicyDocument: aws.String(denyCredentials)})
		mustOK(t, "CreatePolicyVersion "+want, err)
		if aws.ToString(v.PolicyVersion.VersionId) != want || v.PolicyVersion.IsDefaultVersion {
			t.Fatalf("CreatePolicyVersion: %+v, want %s not default", v.PolicyVersion, want)
		}
	}
	mustOK(t, "gina: versions not made default change nothing", call())
	_, err = admin.CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: arn, PolicyDocument: aws.String(denyCredentials), SetAsDefault: true})
	if apiCode(err) != "LimitExceeded" || httpStatus(err) != 409 ||
		!strings.Contains(err.Error(), "A managed policy can have up to 5 versions. Before you create a new version, you must delete an existing version.") {
		t.Fatalf("a sixth version: %v, want LimitExceeded 409", err)
	}
	mustOK(t, "gina after the refused sixth version", call())
	vs, err := admin.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: arn})
	mustOK(t, "ListPolicyVersions", err)
	if got := versionIDs(vs.Versions); !slices.Equal(got, []string{"v5", "v4", "v3", "v2", "v1*"}) || vs.IsTruncated {
		t.Fatalf("ListPolicyVersions: %v, want newest first, v1 default", got)
	}
	var paged []string
	pg := iam.NewListPolicyVersionsPaginator(admin, &iam.ListPolicyVersionsInput{PolicyArn: arn, MaxItems: aws.Int32(2)})
	for pg.HasMorePages() {
		out, err := pg.NextPage(ctx)
		mustOK(t, "ListPolicyVersions page", err)
		paged = append(paged, versionIDs(out.Versions)...)
	}
	if !slices.Equal(paged, []string{"v5", "v4", "v3", "v2", "v1*"}) {
		t.Fatalf("ListPolicyVersions by pages of 2: %v", paged)
	}

	// The default version cannot be deleted; a missing one is NoSuchEntity;
	// an id deleted is never given again.
	_, err = admin.DeletePolicyVersion(ctx, &iam.DeletePolicyVersionInput{PolicyArn: arn, VersionId: aws.String("v1")})
	if apiCode(err) != "DeleteConflict" || httpStatus(err) != 409 || !strings.Contains(err.Error(), "Cannot delete the default version of a policy.") {
		t.Fatalf("DeletePolicyVersion of the default: %v, want DeleteConflict 409", err)
	}
	for _, id := range []string{"v9", "v1.x"} {
		if _, err := admin.DeletePolicyVersion(ctx, &iam.DeletePolicyVersionInput{PolicyArn: arn, VersionId: aws.String(id)}); apiCode(err) != "NoSuchEntity" || httpStatus(err) != 404 {
			t.Fatalf("DeletePolicyVersion %s: %v, want NoSuchEntity 404", id, err)
		}
	}
	if _, err := admin.SetDefaultPolicyVersion(ctx, &iam.SetDefaultPolicyVersionInput{PolicyArn: arn, VersionId: aws.String("v9")}); apiCode(err) != "NoSuchEntity" {
		t.Fatalf("SetDefaultPolicyVersion v9: %v, want NoSuchEntity", err)
	}
	if _, err := admin.SetDefaultPolicyVersion(ctx, &iam.SetDefaultPolicyVersionInput{PolicyArn: arn, VersionId: aws.String("9")}); apiCode(err) != "ValidationError" {
		t.Fatalf("SetDefaultPolicyVersion 9: %v, want ValidationError", err)
	}
	_, err = admin.DeletePolicyVersion(ctx, &iam.DeletePolicyVersionInput{PolicyArn: arn, VersionId: aws.String("v5")})
	mustOK(t, "DeletePolicyVersion v5", err)
	v6, err := admin.CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: arn, PolicyDocument: aws.String(allowCredentials)})
	mustOK(t, "CreatePolicyVersion after a delete", err)
	if aws.ToString(v6.PolicyVersion.VersionId) != "v6" {
		t.Fatalf("the version after v5 was deleted: %s, want v6 (ids are not reused)", aws.ToString(v6.PolicyVersion.VersionId))
	}

	// DeletePolicy refuses while versions other than the default exist.
	_, err = admin.DetachUserPolicy(ctx, &iam.DetachUserPolicyInput{UserName: aws.String("gina"), PolicyArn: arn})
	mustOK(t, "DetachUserPolicy", err)
	_, err = admin.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: arn})
	if apiCode(err) != "DeleteConflict" || httpStatus(err) != 409 ||
		!strings.Contains(err.Error(), "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.") {
		t.Fatalf("DeletePolicy with versions: %v, want DeleteConflict 409", err)
	}
	for _, id := range []string{"v2", "v3", "v4", "v6"} {
		_, err := admin.DeletePolicyVersion(ctx, &iam.DeletePolicyVersionInput{PolicyArn: arn, VersionId: aws.String(id)})
		mustOK(t, "DeletePolicyVersion "+id, err)
	}
	gp, err = admin.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: arn})
	mustOK(t, "GetPolicy with one version left", err)
	if aws.ToString(gp.Policy.DefaultVersionId) != "v1" || !aws.ToTime(gp.Policy.UpdateDate).Equal(aws.ToTime(gp.Policy.CreateDate)) {
		t.Fatalf("GetPolicy with one version: %+v, want v1 and UpdateDate = CreateDate", gp.Policy)
	}
	_, err = admin.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: arn})
	mustOK(t, "DeletePolicy with the default version only", err)
	if _, err := admin.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: arn}); apiCode(err) != "NoSuchEntity" {
		t.Fatalf("ListPolicyVersions of the deleted policy: %v, want NoSuchEntity", err)
	}
}

// TestCreatePolicyVersionRefusals: the document is held to CreatePolicy's
// rules, the caller needs iam:CreatePolicyVersion (and the others their
// own actions) on the policy.
func TestCreatePolicyVersionRefusals(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	p, err := admin.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("creds"), PolicyDocument: aws.String(allowCredentials)})
	mustOK(t, "CreatePolicy", err)
	arn := p.Policy.Arn
	for name, c := range map[string]struct {
		arn, doc, code string
		status         int
	}{
		"malformed":  {aws.ToString(arn), `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:*"}]}`, "MalformedPolicyDocument", 400},
		"not JSON":   {aws.ToString(arn), `{`, "MalformedPolicyDocument", 400},
		"too large":  {aws.ToString(arn), strings.Replace(allowCredentials, `"Effect"`, `"Sid":"`+strings.Repeat("x", 6200)+`","Effect"`, 1), "LimitExceeded", 409},
		"no policy":  {"arn:aws:iam::" + account + ":policy/missing", allowCredentials, "NoSuchEntity", 404},
		"bad ARN":    {"policy/creds-but-not-an-arn", allowCredentials, "ValidationError", 400},
		"empty doc":  {aws.ToString(arn), "", "ValidationError", 400},
		"bad chars":  {aws.ToString(arn), strings.Replace(allowCredentials, "Allow", "Allow\u0100", 1), "ValidationError", 400},
		"white only": {aws.ToString(arn), " ", "MalformedPolicyDocument", 400},
	} {
		_, err := admin.CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: aws.String(c.arn), PolicyDocument: aws.String(c.doc), SetAsDefault: true})
		if apiCode(err) != c.code || httpStatus(err) != c.status {
			t.Errorf("%s: %v (status %d), want %s %d", name, err, httpStatus(err), c.code, c.status)
		}
	}
	vs, err := admin.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: arn})
	mustOK(t, "ListPolicyVersions", err)
	if got := versionIDs(vs.Versions); !slices.Equal(got, []string{"v1*"}) {
		t.Fatalf("versions after the refused calls: %v, want v1 alone", got)
	}

	// Allowed to create versions of another policy only.
	other := f.newIAMUser(t, "other", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
		"Action":["iam:CreatePolicyVersion","iam:SetDefaultPolicyVersion","iam:DeletePolicyVersion"],"Resource":"arn:aws:iam::`+account+`:policy/other"}]}`)
	for name, call := range map[string]func() error{
		"iam:CreatePolicyVersion": func() error {
			_, err := other.CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: arn, PolicyDocument: aws.String(denyCredentials), SetAsDefault: true})
			return err
		},
		"iam:SetDefaultPolicyVersion": func() error {
			_, err := other.SetDefaultPolicyVersion(ctx, &iam.SetDefaultPolicyVersionInput{PolicyArn: arn, VersionId: aws.String("v1")})
			return err
		},
		"iam:DeletePolicyVersion": func() error {
			_, err := other.DeletePolicyVersion(ctx, &iam.DeletePolicyVersionInput{PolicyArn: arn, VersionId: aws.String("v1")})
			return err
		},
	} {
		if err := call(); apiCode(err) != "AccessDenied" || !strings.Contains(err.Error(), name) {
			t.Errorf("%s on another policy: %v, want AccessDenied naming it", name, err)
		}
	}
	vs, err = admin.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: arn})
	mustOK(t, "ListPolicyVersions", err)
	if got := versionIDs(vs.Versions); !slices.Equal(got, []string{"v1*"}) {
		t.Fatalf("versions after the denied calls: %v, want v1 alone", got)
	}
}

// TestCreatePolicyVersionConcurrent: concurrent CreatePolicyVersion calls
// on one policy neither pass IAM's 5 versions nor get one id twice.
func TestCreatePolicyVersionConcurrent(t *testing.T) {
	f := newCachedFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	p, err := admin.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("busy"), PolicyDocument: aws.String(allowCredentials)})
	mustOK(t, "CreatePolicy", err)
	const n = 12
	var (
		mu     sync.Mutex
		ids    []string
		limits int
		wg     sync.WaitGroup
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := admin.CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: p.Policy.Arn, SetAsDefault: i%2 == 0,
				PolicyDocument: aws.String(strings.Replace(allowCredentials, `"Effect"`, fmt.Sprintf(`"Sid":"s%d","Effect"`, i), 1))})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ids = append(ids, aws.ToString(v.PolicyVersion.VersionId))
			case apiCode(err) == "LimitExceeded":
				limits++
			default:
				t.Errorf("CreatePolicyVersion: %v", err)
			}
		}()
	}
	wg.Wait()
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"v2", "v3", "v4", "v5"}) || limits != n-4 {
		t.Fatalf("%d concurrent calls made %v and %d LimitExceeded, want v2-v5 once each and %d LimitExceeded", n, ids, limits, n-4)
	}
	vs, err := admin.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: p.Policy.Arn})
	mustOK(t, "ListPolicyVersions", err)
	defaults := 0
	for _, v := range vs.Versions {
		if v.IsDefaultVersion {
			defaults++
		}
	}
	if len(vs.Versions) != 5 || defaults != 1 {
		t.Fatalf("ListPolicyVersions after the race: %v, want 5 versions, one default", versionIDs(vs.Versions))
	}
}
