package http_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	rstypes "github.com/aws/aws-sdk-go-v2/service/redshift/types"
	rss "github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
	"github.com/shiftkey/shiftkey"
)

// botoPagesScript walks a Serverless List* paginator of boto3 one item a
// page and prints the names it got, one a line.
const botoPagesScript = `
import sys, boto3
endpoint, key, secret, op, key_list, key_name = sys.argv[1:7]
c = boto3.client("redshift-serverless", endpoint_url=endpoint, region_name="us-east-1",
                 aws_access_key_id=key, aws_secret_access_key=secret)
for page in c.get_paginator(op).paginate(PaginationConfig={"PageSize": 1}):
    for item in page[key_list]:
        print(item[key_name])
`

// TestBoto3PaginatesServerlessLists: boto3's paginators (and
// aws-sdk-go-v2's) walk every page of Serverless' List operations. botocore checks a member's length before
// sending it, and ListCustomDomainAssociations' nextToken is modelled
// 8-1024 characters long: a shorter token the server hands out cannot be
// sent back.
func TestBoto3PaginatesServerlessLists(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	sc := f.serverlessClient(f.keys["admin"])
	var nss, wgs, domains []string
	for i := range 3 {
		nsName, name := fmt.Sprintf("page-ns-%d", i), fmt.Sprintf("page-wg-%d", i)
		ns := &shiftkey.Namespace{Name: nsName, ID: shiftkey.NewUUID(), DBName: "dev", AdminUsername: "admin", Status: "AVAILABLE", CreatedAt: time.Now()}
		mustOK(t, "CreateNamespace", f.store.CreateNamespace(ctx, ns))
		wg := &shiftkey.Workgroup{Name: name, ID: shiftkey.NewUUID(), Namespace: nsName, Status: "AVAILABLE", BaseCapacity: 128,
			Endpoint: shiftkey.Endpoint{Address: "127.0.0.1", Port: 5440 + i}, CreatedAt: time.Now()}
		mustOK(t, "CreateWorkgroup", f.store.CreateWorkgroup(ctx, wg))
		domain := fmt.Sprintf("wg%d.example.com", i)
		_, err := sc.CreateCustomDomainAssociation(ctx, &rss.CreateCustomDomainAssociationInput{WorkgroupName: aws.String(name),
			CustomDomainName: aws.String(domain), CustomDomainCertificateArn: aws.String(certA)})
		mustOK(t, "CreateCustomDomainAssociation", err)
		nss, wgs, domains = append(nss, nsName), append(wgs, name), append(domains, domain)
	}
	// aws-sdk-go-v2's paginators, one item a page.
	var got []string
	wp := rss.NewListWorkgroupsPaginator(sc, &rss.ListWorkgroupsInput{MaxResults: aws.Int32(1)})
	for wp.HasMorePages() {
		page, err := wp.NextPage(ctx)
		mustOK(t, "ListWorkgroups page", err)
		for _, w := range page.Workgroups {
			got = append(got, aws.ToString(w.WorkgroupName))
		}
	}
	dp := rss.NewListCustomDomainAssociationsPaginator(sc, &rss.ListCustomDomainAssociationsInput{MaxResults: aws.Int32(1)})
	for dp.HasMorePages() {
		page, err := dp.NextPage(ctx)
		mustOK(t, "ListCustomDomainAssociations page", err)
		for _, a := range page.Associations {
			got = append(got, aws.ToString(a.CustomDomainName))
		}
	}
	if want := append(append([]string(nil), wgs...), domains...); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("aws-sdk-go-v2 paginators: %q, want %q", got, want)
	}

	if exec.Command("python3", "-c", "import boto3").Run() != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 with boto3 is not installed (apt-get install -y python3-boto3)")
		}
		t.Skip("python3 with boto3 is not installed")
	}
	admin := f.keys["admin"]
	for _, tc := range []struct {
		op, list, name string
		want           []string
	}{
		{"list_workgroups", "workgroups", "workgroupName", wgs},
		{"list_namespaces", "namespaces", "namespaceName", nss},
		{"list_custom_domain_associations", "associations", "customDomainName", domains},
	} {
		out, err := exec.Command("python3", "-c", botoPagesScript, f.srv.URL, admin.AccessKeyID, admin.SecretAccessKey, tc.op, tc.list, tc.name).CombinedOutput()
		if err != nil {
			t.Errorf("boto3 %s paginator: %v: %s", tc.op, err, lastLine(out))
			continue
		}
		got := strings.Fields(string(out))
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("boto3 %s paginator: %q, want %q", tc.op, got, tc.want)
		}
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// TestServerlessPagesSurviveADeletion: an item deleted between two pages
// of ListWorkgroups, ListNamespaces or ListCustomDomainAssociations costs
// the paginator that item only: the next page starts after the last item
// the client got, not at an offset the deletion moved.
func TestServerlessPagesSurviveADeletion(t *testing.T) {
	// Each list walked one item a page; after the first page, the first
	// item is deleted; each function returns the names it saw.
	for _, tc := range []struct {
		name string
		walk func(ctx context.Context, sc *rss.Client, deleteFirst func()) ([]string, error)
		want string
	}{
		{"ListWorkgroups", func(ctx context.Context, sc *rss.Client, deleteFirst func()) (got []string, err error) {
			p := rss.NewListWorkgroupsPaginator(sc, &rss.ListWorkgroupsInput{MaxResults: aws.Int32(1)})
			for n := 0; p.HasMorePages() && err == nil; n++ {
				var page *rss.ListWorkgroupsOutput
				if page, err = p.NextPage(ctx); err == nil {
					for _, w := range page.Workgroups {
						got = append(got, aws.ToString(w.WorkgroupName))
					}
				}
				if n == 0 {
					deleteFirst()
				}
			}
			return got, err
		}, "del-wg-0 del-wg-1 del-wg-2"},
		{"ListNamespaces", func(ctx context.Context, sc *rss.Client, deleteFirst func()) (got []string, err error) {
			p := rss.NewListNamespacesPaginator(sc, &rss.ListNamespacesInput{MaxResults: aws.Int32(1)})
			for n := 0; p.HasMorePages() && err == nil; n++ {
				var page *rss.ListNamespacesOutput
				if page, err = p.NextPage(ctx); err == nil {
					for _, ns := range page.Namespaces {
						got = append(got, aws.ToString(ns.NamespaceName))
					}
				}
				if n == 0 {
					deleteFirst()
				}
			}
			return got, err
		}, "del-ns-0 del-ns-1 del-ns-2"},
		{"ListCustomDomainAssociations", func(ctx context.Context, sc *rss.Client, deleteFirst func()) (got []string, err error) {
			p := rss.NewListCustomDomainAssociationsPaginator(sc, &rss.ListCustomDomainAssociationsInput{MaxResults: aws.Int32(1)})
			for n := 0; p.HasMorePages() && err == nil; n++ {
				var page *rss.ListCustomDomainAssociationsOutput
				if page, err = p.NextPage(ctx); err == nil {
					for _, a := range page.Associations {
						got = append(got, aws.ToString(a.CustomDomainName))
					}
				}
				if n == 0 {
					deleteFirst()
				}
			}
			return got, err
		}, "del0.example.com del1.example.com del2.example.com"},
	} {
		f := newFixture(t)
		ctx := context.Background()
		sc := f.serverlessClient(f.keys["admin"])
		for i := range 3 {
			nsName, name := fmt.Sprintf("del-ns-%d", i), fmt.Sprintf("del-wg-%d", i)
			mustOK(t, "CreateNamespace", f.store.CreateNamespace(ctx, &shiftkey.Namespace{Name: nsName, ID: shiftkey.NewUUID(), DBName: "dev",
				AdminUsername: "admin", Status: "AVAILABLE", CreatedAt: time.Now()}))
			mustOK(t, "CreateWorkgroup", f.store.CreateWorkgroup(ctx, &shiftkey.Workgroup{Name: name, ID: shiftkey.NewUUID(), Namespace: nsName,
				Status: "AVAILABLE", BaseCapacity: 128, Endpoint: shiftkey.Endpoint{Address: "127.0.0.1", Port: 5440 + i}, CreatedAt: time.Now()}))
			_, err := sc.CreateCustomDomainAssociation(ctx, &rss.CreateCustomDomainAssociationInput{WorkgroupName: aws.String(name),
				CustomDomainName: aws.String(fmt.Sprintf("del%d.example.com", i)), CustomDomainCertificateArn: aws.String(certA)})
			mustOK(t, "CreateCustomDomainAssociation", err)
		}
		// The first workgroup with its domain, then its namespace.
		deleteFirst := func() {
			mustOK(t, "DeleteWorkgroup", f.store.DeleteWorkgroup(ctx, "del-wg-0"))
			mustOK(t, "DeleteNamespace", f.store.DeleteNamespace(ctx, "del-ns-0"))
		}
		got, err := tc.walk(ctx, sc, deleteFirst)
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("%s pages: %q %v, want %s", tc.name, got, err, tc.want)
		}
	}
}

// TestDescribeCustomDomainAssociationsPages: MaxRecords bounds a page of
// DescribeCustomDomainAssociations (one Association per certificate) and
// the Marker leads aws-sdk-go-v2's paginator through the rest, as for
// DescribeClusters.
func TestDescribeCustomDomainAssociationsPages(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rc := f.client("admin")
	var want []string
	for i := range 25 {
		id := fmt.Sprintf("dom-%02d", i)
		mustOK(t, "CreateCluster", f.store.CreateCluster(ctx, &shiftkey.Cluster{Identifier: id, NamespaceID: shiftkey.NewUUID(), NodeType: "dc2.large",
			DBName: "dev", MasterUsername: "awsuser", Status: "available", Endpoint: shiftkey.Endpoint{Address: "127.0.0.1", Port: 5439}, CreatedAt: time.Now()}))
		cert := fmt.Sprintf("arn:aws:acm:us-east-1:000000000000:certificate/c%02d", i)
		_, err := rc.CreateCustomDomainAssociation(ctx, &redshift.CreateCustomDomainAssociationInput{ClusterIdentifier: aws.String(id),
			CustomDomainName: aws.String(id + ".example.com"), CustomDomainCertificateArn: aws.String(cert)})
		mustOK(t, "CreateCustomDomainAssociation", err)
		want = append(want, cert)
	}
	var got []string
	var sizes []int
	p := redshift.NewDescribeCustomDomainAssociationsPaginator(rc, &redshift.DescribeCustomDomainAssociationsInput{MaxRecords: aws.Int32(20)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		mustOK(t, "DescribeCustomDomainAssociations page", err)
		sizes = append(sizes, len(page.Associations))
		for _, a := range page.Associations {
			got = append(got, aws.ToString(a.CustomDomainCertificateArn))
		}
	}
	if fmt.Sprint(sizes) != "[20 5]" || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("pages of %v: %q, want pages of [20 5]: %q", sizes, got, want)
	}
}

// TestDescribeTagsPages: MaxRecords bounds a page of DescribeTags and the
// Marker leads aws-sdk-go-v2's paginator through the rest.
func TestDescribeTagsPages(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rc := f.client("admin")
	var want []string
	for i := range 25 {
		id := fmt.Sprintf("tag-%02d", i)
		mustOK(t, "CreateCluster", f.store.CreateCluster(ctx, &shiftkey.Cluster{Identifier: id, NamespaceID: shiftkey.NewUUID(), NodeType: "dc2.large",
			DBName: "dev", MasterUsername: "awsuser", Status: "available", Endpoint: shiftkey.Endpoint{Address: "127.0.0.1", Port: 5439}, CreatedAt: time.Now()}))
		_, err := rc.CreateTags(ctx, &redshift.CreateTagsInput{ResourceName: aws.String("arn:aws:redshift:us-east-1:" + account + ":cluster:" + id),
			Tags: []rstypes.Tag{{Key: aws.String("team"), Value: aws.String(id)}}})
		mustOK(t, "CreateTags", err)
		want = append(want, id)
	}
	var got []string
	var sizes []int
	p := redshift.NewDescribeTagsPaginator(rc, &redshift.DescribeTagsInput{ResourceType: aws.String("cluster"), TagKeys: []string{"team"}, MaxRecords: aws.Int32(20)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		mustOK(t, "DescribeTags page", err)
		sizes = append(sizes, len(page.TaggedResources))
		for _, r := range page.TaggedResources {
			got = append(got, aws.ToString(r.Tag.Value))
		}
	}
	if fmt.Sprint(sizes) != "[20 5]" || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("pages of %v: %q, want pages of [20 5]: %q", sizes, got, want)
	}
}

// TestIAMPagesSurviveADeletion: a user or role deleted between two pages
// of ListUsers or ListRoles costs aws-sdk-go-v2's paginator that item
// only: the next page starts after the last name the client got, not at
// an offset the deletion moved.
func TestIAMPagesSurviveADeletion(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ic := f.iamClient(f.keys["admin"])
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"sts:AssumeRole"}]}`
	for i := range 3 {
		_, err := ic.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(fmt.Sprintf("pg-u%d", i)), Path: aws.String("/pg/")})
		mustOK(t, "CreateUser", err)
		_, err = ic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(fmt.Sprintf("pg-r%d", i)), Path: aws.String("/pg/"), AssumeRolePolicyDocument: aws.String(trust)})
		mustOK(t, "CreateRole", err)
	}
	var users []string
	up := iam.NewListUsersPaginator(ic, &iam.ListUsersInput{PathPrefix: aws.String("/pg/"), MaxItems: aws.Int32(1)})
	for n := 0; up.HasMorePages(); n++ {
		page, err := up.NextPage(ctx)
		mustOK(t, "ListUsers page", err)
		for _, u := range page.Users {
			users = append(users, aws.ToString(u.UserName))
		}
		if n == 0 {
			_, err := ic.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("pg-u0")})
			mustOK(t, "DeleteUser", err)
		}
	}
	var roles []string
	rp := iam.NewListRolesPaginator(ic, &iam.ListRolesInput{PathPrefix: aws.String("/pg/"), MaxItems: aws.Int32(1)})
	for n := 0; rp.HasMorePages(); n++ {
		page, err := rp.NextPage(ctx)
		mustOK(t, "ListRoles page", err)
		for _, r := range page.Roles {
			roles = append(roles, aws.ToString(r.RoleName))
		}
		if n == 0 {
			_, err := ic.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("pg-r0")})
			mustOK(t, "DeleteRole", err)
		}
	}
	if got := strings.Join(users, " ") + ", " + strings.Join(roles, " "); got != "pg-u0 pg-u1 pg-u2, pg-r0 pg-r1 pg-r2" {
		t.Errorf("pages: %s, want pg-u0 pg-u1 pg-u2, pg-r0 pg-r1 pg-r2", got)
	}
}
