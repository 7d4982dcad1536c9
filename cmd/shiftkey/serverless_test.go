package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	rss "github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
	rsstypes "github.com/aws/aws-sdk-go-v2/service/redshiftserverless/types"
)

func serverlessClient() *rss.Client {
	return rss.New(rss.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: provider(devCreds()), Retryer: aws.NopRetryer{}})
}

func TestServerlessDefaultWorkgroupLogin(t *testing.T) {
	ctx := context.Background()
	c := serverlessClient()
	wg, err := c.GetWorkgroup(ctx, &rss.GetWorkgroupInput{WorkgroupName: aws.String(DevWorkgroup)})
	if err != nil {
		t.Fatal(err)
	}
	ep := wg.Workgroup.Endpoint
	if aws.ToString(wg.Workgroup.NamespaceName) != DevNamespace || aws.ToString(ep.Address) == "" || aws.ToInt32(ep.Port) == 0 || wg.Workgroup.CreationDate == nil {
		t.Fatalf("workgroup %+v endpoint %+v", wg.Workgroup, ep)
	}
	before := time.Now()
	out, err := c.GetCredentials(ctx, &rss.GetCredentialsInput{WorkgroupName: aws.String(DevWorkgroup), DbName: aws.String("dev"), DurationSeconds: aws.Int32(1200)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.DbUser) != "IAM:admin" {
		t.Fatalf("dbUser %q", aws.ToString(out.DbUser))
	}
	if d := out.Expiration.Sub(before); d < 1199*time.Second || d > 1201*time.Second {
		t.Fatalf("expiration in %v, want 1200s", d)
	}
	d := &Dev{}
	d.Gateway.Address, d.Gateway.Port = aws.ToString(ep.Address), int(aws.ToInt32(ep.Port))
	conn := mustConnect(t, d, cred{aws.ToString(out.DbUser), aws.ToString(out.DbPassword)}, "dev")
	if u := currentUser(t, conn); u != "IAM:admin" {
		t.Fatalf("current_user %q", u)
	}
	// The workgroup's credentials are not the cluster's, and vice versa.
	if _, err := connect(dev, cred{aws.ToString(out.DbUser), aws.ToString(out.DbPassword)}, "dev"); sqlState(err) != "28P01" {
		t.Fatalf("workgroup credential on dev-cluster: %v", err)
	}
}

func TestServerlessLifecycle(t *testing.T) {
	ctx := context.Background()
	c := serverlessClient()
	if _, err := c.CreateNamespace(ctx, &rss.CreateNamespaceInput{NamespaceName: aws.String("sales-ns"), DbName: aws.String("sales"), AdminUsername: aws.String("salesadmin")}); err != nil {
		t.Fatal(err)
	}
	ns, err := c.GetNamespace(ctx, &rss.GetNamespaceInput{NamespaceName: aws.String("sales-ns")})
	if err != nil || aws.ToString(ns.Namespace.DbName) != "sales" || aws.ToString(ns.Namespace.AdminUsername) != "salesadmin" {
		t.Fatalf("GetNamespace %+v %v", ns, err)
	}
	nss, err := c.ListNamespaces(ctx, &rss.ListNamespacesInput{MaxResults: aws.Int32(1)})
	if err != nil || len(nss.Namespaces) != 1 || nss.NextToken == nil {
		t.Fatalf("ListNamespaces page of 1: %+v %v", nss, err)
	}
	cw, err := c.CreateWorkgroup(ctx, &rss.CreateWorkgroupInput{WorkgroupName: aws.String("sales-wg"), NamespaceName: aws.String("sales-ns"), Port: aws.Int32(8213)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(cw.Workgroup.Endpoint.Port) != 8213 || cw.Workgroup.Status != rsstypes.WorkgroupStatusAvailable {
		t.Fatalf("created %+v", cw.Workgroup)
	}
	login := func(port int32) string {
		out, err := c.GetCredentials(ctx, &rss.GetCredentialsInput{WorkgroupName: aws.String("sales-wg")})
		if err != nil {
			t.Fatal(err)
		}
		d := &Dev{}
		d.Gateway.Address, d.Gateway.Port = aws.ToString(cw.Workgroup.Endpoint.Address), int(port)
		conn, err := connect(d, cred{aws.ToString(out.DbUser), aws.ToString(out.DbPassword)}, "sales")
		if err != nil {
			t.Fatalf("login on %d: %v", port, err)
		}
		defer conn.Close(ctx)
		var db string
		conn.QueryRow(ctx, "SELECT current_database()").Scan(&db)
		return db
	}
	if db := login(8213); db != "sales" {
		t.Fatalf("database %q", db)
	}
	up, err := c.UpdateWorkgroup(ctx, &rss.UpdateWorkgroupInput{WorkgroupName: aws.String("sales-wg"), Port: aws.Int32(8214)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(up.Workgroup.Port) != 8214 || login(8214) != "sales" {
		t.Fatalf("after port change %+v", up.Workgroup)
	}
	list, err := c.ListWorkgroups(ctx, &rss.ListWorkgroupsInput{})
	if err != nil || len(list.Workgroups) != 2 {
		t.Fatalf("ListWorkgroups %v %v", list, err)
	}
	if _, err := c.DeleteNamespace(ctx, &rss.DeleteNamespaceInput{NamespaceName: aws.String("sales-ns")}); !isCode(err, "ConflictException") {
		t.Fatalf("delete a namespace with a workgroup: %v", err)
	}
	if _, err := c.DeleteWorkgroup(ctx, &rss.DeleteWorkgroupInput{WorkgroupName: aws.String("sales-wg")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetWorkgroup(ctx, &rss.GetWorkgroupInput{WorkgroupName: aws.String("sales-wg")})
	var nf *rsstypes.ResourceNotFoundException
	if !errors.As(err, &nf) || nf.ErrorMessage() != "Serverless workgroup sales-wg not found." {
		t.Fatalf("deleted workgroup: %v", err)
	}
	if _, err := c.DeleteNamespace(ctx, &rss.DeleteNamespaceInput{NamespaceName: aws.String("sales-ns")}); err != nil {
		t.Fatal(err)
	}
}

func isCode(err error, code string) bool {
	var api interface{ ErrorCode() string }
	return errors.As(err, &api) && api.ErrorCode() == code
}

func TestServerlessErrors(t *testing.T) {
	ctx := context.Background()
	c := serverlessClient()
	_, err := c.GetCredentials(ctx, &rss.GetCredentialsInput{})
	var ve *rsstypes.ValidationException
	if !errors.As(err, &ve) {
		t.Fatalf("no workgroup: %v", err)
	}
	_, err = c.GetCredentials(ctx, &rss.GetCredentialsInput{WorkgroupName: aws.String("nope-wg")})
	var nf *rsstypes.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("unknown workgroup: %v", err)
	}
	for _, in := range []*rss.GetCredentialsInput{
		{WorkgroupName: aws.String("Bad_Name")},
		{WorkgroupName: aws.String(DevWorkgroup), DurationSeconds: aws.Int32(899)},
		{WorkgroupName: aws.String(DevWorkgroup), DurationSeconds: aws.Int32(3601)},
	} {
		if _, err := c.GetCredentials(ctx, in); !errors.As(err, &ve) {
			t.Errorf("%+v: %v, want ValidationException", in, err)
		}
	}
	if _, err := c.CreateWorkgroup(ctx, &rss.CreateWorkgroupInput{WorkgroupName: aws.String("x-wg"), NamespaceName: aws.String(DevNamespace), Port: aws.Int32(6000)}); !errors.As(err, &ve) {
		t.Fatalf("port outside the ranges: %v", err)
	}
	if _, err := c.CreateNamespace(ctx, &rss.CreateNamespaceInput{NamespaceName: aws.String(DevNamespace)}); !isCode(err, "ConflictException") {
		t.Fatalf("duplicate namespace: %v", err)
	}
}
