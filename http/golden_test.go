package http_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/shiftkey/shiftkey"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// normalize replaces what changes from run to run (request ids, passwords,
// keys, times, generated ids) with placeholders.
func normalize(b string) string {
	for _, r := range []struct{ re, with string }{
		{`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`, "UUID"},
		{`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z`, "TIME"},
		{`"(expiration|nextRefreshTime)":\d+\.\d{3}`, `"$1":EPOCH`},
		{`<DbPassword>[^<]+</DbPassword>`, "<DbPassword>PASSWORD</DbPassword>"},
		{`"dbPassword":"[^"]+"`, `"dbPassword":"PASSWORD"`},
		{`\b(AKIA|ASIA|AIDA|AROA|AGPA|ANPA)[A-Z2-7]{16}\b`, "${1}ID"},
		{`\d{8}T\d{6}Z`, "AMZDATE"},
	} {
		b = regexp.MustCompile(r.re).ReplaceAllString(b, r.with)
	}
	return b
}

type exchange struct {
	name    string
	service string // SigV4 service
	target  string // X-Amz-Target for JSON
	body    string
	user    string
	mutate  func(*http.Request)
}

func (f *fixture) do(t *testing.T, ex exchange) string {
	t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+"/", strings.NewReader(ex.body))
	if ex.target != "" {
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", ex.target)
	} else {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	}
	sum := sha256.Sum256([]byte(ex.body))
	user := ex.user
	if user == "" {
		user = "admin"
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), f.keys[user], req, hex.EncodeToString(sum[:]), ex.service, "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if ex.mutate != nil {
		ex.mutate(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var hdr []string
	for _, h := range []string{"Content-Type", "X-Amzn-Errortype"} {
		if v := resp.Header.Get(h); v != "" {
			hdr = append(hdr, h+": "+v)
		}
	}
	return normalize(resp.Status + "\n" + strings.Join(hdr, "\n") + "\n\n" + string(b) + "\n")
}

// TestGoldenResponses pins every response body shape, success and each
// error kind, for both protocols. Run with -update to rewrite.
func TestGoldenResponses(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ns := &shiftkey.Namespace{Name: "golden-ns", ID: shiftkey.NewUUID(), DBName: "dev", AdminUsername: "admin", Status: "AVAILABLE", CreatedAt: time.Now()}
	wg := &shiftkey.Workgroup{Name: "golden-wg", ID: shiftkey.NewUUID(), Namespace: "golden-ns", Status: "AVAILABLE", BaseCapacity: 128,
		Endpoint: shiftkey.Endpoint{Address: "127.0.0.1", Port: 5440}, CreatedAt: time.Now()}
	if err := f.store.CreateNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	if err := f.store.CreateWorkgroup(ctx, wg); err != nil {
		t.Fatal(err)
	}
	const q = "Version=2012-12-01&Action="
	const iamQ = "Version=2010-05-08&Action="
	const goldenCert = "arn:aws:acm:us-east-1:000000000000:certificate/golden"
	const goldenPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:DescribeClusters","Resource":"*"}]}`
	const goldenTrust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}]}`
	badSig := func(r *http.Request) {
		r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "Signature=", "Signature=0", 1))
	}
	exchanges := []exchange{
		{name: "GetClusterCredentials", service: "redshift", body: q + "GetClusterCredentials&ClusterIdentifier=dev-cluster&DbUser=alice&DbName=dev&AutoCreate=true&DbGroups.DbGroup.1=readers"},
		{name: "GetClusterCredentialsWithIAM", service: "redshift", body: q + "GetClusterCredentialsWithIAM&ClusterIdentifier=dev-cluster&DbName=dev"},
		{name: "DescribeClusters", service: "redshift", body: q + "DescribeClusters"},
		{name: "DescribeCustomDomainAssociations", service: "redshift", body: q + "DescribeCustomDomainAssociations"},
		{name: "error-ClusterNotFound", service: "redshift", body: q + "GetClusterCredentials&ClusterIdentifier=nope&DbUser=alice"},
		{name: "error-InvalidParameterValue", service: "redshift", body: q + "GetClusterCredentials&ClusterIdentifier=dev-cluster&DbUser=select"},
		{name: "error-MissingParameter", service: "redshift", body: q + "GetClusterCredentials&ClusterIdentifier=dev-cluster"},
		{name: "error-InvalidParameterCombination", service: "redshift", body: q + "DeleteCluster&ClusterIdentifier=dev-cluster"},
		{name: "error-AccessDenied", service: "redshift", user: "denied", body: q + "GetClusterCredentials&ClusterIdentifier=dev-cluster&DbUser=alice"},
		{name: "error-UnsupportedOperation", service: "redshift", body: q + "CreateCluster&ClusterIdentifier=new-one&NodeType=dc2.large&MasterUsername=admin1&MasterUserPassword=Passw0rdX"},
		{name: "error-CustomDomainAssociationNotFoundFault", service: "redshift", body: q + "DescribeCustomDomainAssociations&CustomDomainName=nope.example.com"},
		{name: "error-MissingAction", service: "redshift", body: "Version=2012-12-01"},
		{name: "error-InvalidAction", service: "redshift", body: q + "Nope"},
		{name: "error-MalformedQueryString", service: "redshift", body: "Action=%zz"},
		{name: "error-SignatureDoesNotMatch", service: "redshift", body: q + "DescribeClusters", mutate: badSig},
		{name: "error-MissingAuthenticationToken", service: "redshift", body: q + "DescribeClusters", mutate: func(r *http.Request) { r.Header.Del("Authorization") }},
		{name: "iam-CreateUser", service: "iam", body: "Version=2010-05-08&Action=CreateUser&UserName=golden&Tags.member.1.Key=team&Tags.member.1.Value=data"},
		{name: "iam-error-NoSuchEntity", service: "iam", body: "Version=2010-05-08&Action=GetUser&UserName=ghost"},
		{name: "iam-error-MalformedPolicyDocument", service: "iam", body: "Version=2010-05-08&Action=PutUserPolicy&UserName=admin&PolicyName=p&PolicyDocument=%7B%7D"},
		{name: "sts-GetCallerIdentity", service: "sts", body: "Version=2011-06-15&Action=GetCallerIdentity"},
		{name: "serverless-GetCredentials", service: "redshift-serverless", target: "RedshiftServerless.GetCredentials", body: `{"workgroupName":"golden-wg","dbName":"dev"}`},
		{name: "serverless-GetWorkgroup", service: "redshift-serverless", target: "RedshiftServerless.GetWorkgroup", body: `{"workgroupName":"golden-wg"}`},
		{name: "serverless-ListNamespaces", service: "redshift-serverless", target: "RedshiftServerless.ListNamespaces", body: `{}`},
		{name: "serverless-error-ValidationException", service: "redshift-serverless", target: "RedshiftServerless.GetCredentials", body: `{}`},
		{name: "serverless-error-ResourceNotFoundException", service: "redshift-serverless", target: "RedshiftServerless.GetCredentials", body: `{"workgroupName":"nope-wg"}`},
		{name: "serverless-error-AccessDeniedException", service: "redshift-serverless", user: "limited", target: "RedshiftServerless.GetCredentials", body: `{"workgroupName":"golden-wg"}`},
		{name: "serverless-error-ConflictException", service: "redshift-serverless", target: "RedshiftServerless.CreateNamespace", body: `{"namespaceName":"golden-ns"}`},
		{name: "serverless-error-UnknownOperationException", service: "redshift-serverless", target: "RedshiftServerless.Nope", body: `{}`},
		{name: "serverless-error-InvalidSignatureException", service: "redshift-serverless", target: "RedshiftServerless.ListWorkgroups", body: `{}`, mutate: badSig},
		// List and get shapes of IAM (paging, tags, owners) and the custom
		// domain calls of both APIs.
		{name: "iam-ListUsers-page", service: "iam", body: iamQ + "ListUsers&MaxItems=2&Marker=1"},
		{name: "iam-GetUser", service: "iam", body: iamQ + "GetUser&UserName=golden"},
		{name: "iam-ListUserTags", service: "iam", body: iamQ + "ListUserTags&UserName=golden"},
		{name: "iam-CreateRole", service: "iam", body: iamQ + "CreateRole&RoleName=golden-role&Description=d&MaxSessionDuration=7200&Tags.member.1.Key=env&Tags.member.1.Value=dev&AssumeRolePolicyDocument=" + url.QueryEscape(goldenTrust)},
		{name: "iam-GetRole", service: "iam", body: iamQ + "GetRole&RoleName=golden-role"},
		{name: "iam-ListRoles", service: "iam", body: iamQ + "ListRoles&PathPrefix=/"},
		{name: "iam-CreateGroup", service: "iam", body: iamQ + "CreateGroup&GroupName=golden-group&Path=/g/"},
		{name: "iam-AddUserToGroup", service: "iam", body: iamQ + "AddUserToGroup&GroupName=golden-group&UserName=golden"},
		{name: "iam-GetGroup", service: "iam", body: iamQ + "GetGroup&GroupName=golden-group"},
		{name: "iam-ListGroupsForUser", service: "iam", body: iamQ + "ListGroupsForUser&UserName=golden"},
		{name: "iam-error-DeleteConflict", service: "iam", body: iamQ + "DeleteGroup&GroupName=golden-group"},
		{name: "iam-ListAccessKeys", service: "iam", body: iamQ + "ListAccessKeys&UserName=admin"},
		{name: "iam-PutGroupPolicy", service: "iam", body: iamQ + "PutGroupPolicy&GroupName=golden-group&PolicyName=gp&PolicyDocument=" + url.QueryEscape(goldenPolicy)},
		{name: "iam-GetGroupPolicy", service: "iam", body: iamQ + "GetGroupPolicy&GroupName=golden-group&PolicyName=gp"},
		{name: "iam-ListGroupPolicies", service: "iam", body: iamQ + "ListGroupPolicies&GroupName=golden-group"},
		{name: "iam-CreatePolicy", service: "iam", body: iamQ + "CreatePolicy&PolicyName=golden-mp&Description=m&PolicyDocument=" + url.QueryEscape(goldenPolicy)},
		{name: "iam-AttachRolePolicy", service: "iam", body: iamQ + "AttachRolePolicy&RoleName=golden-role&PolicyArn=arn:aws:iam::" + account + ":policy/golden-mp"},
		{name: "iam-GetPolicy", service: "iam", body: iamQ + "GetPolicy&PolicyArn=arn:aws:iam::" + account + ":policy/golden-mp"},
		{name: "iam-ListAttachedRolePolicies", service: "iam", body: iamQ + "ListAttachedRolePolicies&RoleName=golden-role"},
		{name: "iam-TagPolicy", service: "iam", body: iamQ + "TagPolicy&PolicyArn=arn:aws:iam::" + account + ":policy/golden-mp&Tags.member.1.Key=ManagedBy&Tags.member.1.Value=terraform&Tags.member.2.Key=team&Tags.member.2.Value=data"},
		{name: "iam-GetPolicy-tagged", service: "iam", body: iamQ + "GetPolicy&PolicyArn=arn:aws:iam::" + account + ":policy/golden-mp"},
		{name: "iam-UntagPolicy", service: "iam", body: iamQ + "UntagPolicy&PolicyArn=arn:aws:iam::" + account + ":policy/golden-mp&TagKeys.member.1=team"},
		{name: "iam-ListPolicyTags", service: "iam", body: iamQ + "ListPolicyTags&PolicyArn=arn:aws:iam::" + account + ":policy/golden-mp"},
		{name: "iam-error-DeleteConflict-role", service: "iam", body: iamQ + "DeleteRole&RoleName=golden-role"},
		{name: "iam-error-InvalidInput-marker", service: "iam", body: iamQ + "ListUsers&Marker=99"},
		// Permissions boundaries: set, shown by GetRole (not ListRoles), counted by GetPolicy.
		{name: "iam-PutRolePermissionsBoundary", service: "iam", body: iamQ + "PutRolePermissionsBoundary&RoleName=golden-role&PermissionsBoundary=arn:aws:iam::" + account + ":policy/golden-mp"},
		{name: "iam-GetRole-boundary", service: "iam", body: iamQ + "GetRole&RoleName=golden-role"},
		{name: "iam-GetPolicy-boundary", service: "iam", body: iamQ + "GetPolicy&PolicyArn=arn:aws:iam::" + account + ":policy/golden-mp"},
		{name: "iam-error-NoSuchEntity-boundary", service: "iam", body: iamQ + "PutUserPermissionsBoundary&UserName=golden&PermissionsBoundary=arn:aws:iam::" + account + ":policy/nope"},
		{name: "iam-DeleteRolePermissionsBoundary", service: "iam", body: iamQ + "DeleteRolePermissionsBoundary&RoleName=golden-role"},
		{name: "CreateCustomDomainAssociation", service: "redshift", body: q + "CreateCustomDomainAssociation&ClusterIdentifier=dev-cluster&CustomDomainName=Golden.Example.com&CustomDomainCertificateArn=" + goldenCert},
		{name: "ModifyCustomDomainAssociation", service: "redshift", body: q + "ModifyCustomDomainAssociation&ClusterIdentifier=dev-cluster&CustomDomainName=golden.example.com&CustomDomainCertificateArn=" + goldenCert + "2"},
		{name: "DescribeCustomDomainAssociations-one", service: "redshift", body: q + "DescribeCustomDomainAssociations"},
		{name: "error-CustomCnameAssociationFault", service: "redshift", body: q + "CreateCustomDomainAssociation&ClusterIdentifier=dev-cluster&CustomDomainName=golden.example.com&CustomDomainCertificateArn=" + goldenCert},
		{name: "serverless-CreateCustomDomainAssociation", service: "redshift-serverless", target: "RedshiftServerless.CreateCustomDomainAssociation", body: `{"workgroupName":"golden-wg","customDomainName":"Lake.Example.com","customDomainCertificateArn":"` + goldenCert + `"}`},
		{name: "serverless-UpdateCustomDomainAssociation", service: "redshift-serverless", target: "RedshiftServerless.UpdateCustomDomainAssociation", body: `{"workgroupName":"golden-wg","customDomainName":"lake.example.com","customDomainCertificateArn":"` + goldenCert + `2"}`},
		{name: "serverless-GetCustomDomainAssociation", service: "redshift-serverless", target: "RedshiftServerless.GetCustomDomainAssociation", body: `{"workgroupName":"golden-wg","customDomainName":"lake.example.com"}`},
		{name: "serverless-ListCustomDomainAssociations", service: "redshift-serverless", target: "RedshiftServerless.ListCustomDomainAssociations", body: `{}`},
		{name: "serverless-DeleteCustomDomainAssociation", service: "redshift-serverless", target: "RedshiftServerless.DeleteCustomDomainAssociation", body: `{"workgroupName":"golden-wg","customDomainName":"lake.example.com"}`},
		{name: "serverless-error-ResourceNotFoundException-domain", service: "redshift-serverless", target: "RedshiftServerless.GetCustomDomainAssociation", body: `{"workgroupName":"golden-wg","customDomainName":"lake.example.com"}`},
		{name: "DeleteCustomDomainAssociation", service: "redshift", body: q + "DeleteCustomDomainAssociation&ClusterIdentifier=dev-cluster&CustomDomainName=golden.example.com"},
	}
	for _, ex := range exchanges {
		t.Run(ex.name, func(t *testing.T) {
			got := f.do(t, ex)
			path := filepath.Join("testdata", ex.name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./http -run Golden -update)", err)
			}
			if got != string(want) {
				t.Fatalf("response differs from %s:\n got:\n%s\nwant:\n%s", path, got, want)
			}
		})
	}
}
