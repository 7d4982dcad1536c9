package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	rss "github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
	"github.com/aws/smithy-go"
)

// Finding 12.2: a credential for database dev does not open "DEV".
// PostgreSQL database names are case-sensitive in the startup packet, so
// the gateway compares them exactly.
func TestFinding2CredentialDatabaseIsExact(t *testing.T) {
	adminExec(t, dev, `CREATE DATABASE "DEV"`)
	t.Cleanup(func() { adminExec(t, dev, `DROP DATABASE "DEV" WITH (FORCE)`) })
	c := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String("casey"), DbName: aws.String("dev"), AutoCreate: aws.Bool(true)})
	if conn, err := connect(dev, c, "DEV"); sqlState(err) != "28000" {
		if err == nil {
			conn.Close(t.Context())
		}
		t.Fatalf("login to DEV with a credential for dev: %v, want 28000", err)
	}
	mustConnect(t, dev, c, "dev")
}

// Finding 12.7: Serverless dbName follows Redshift's naming rule and is
// folded once, like DbName.
func TestFinding7ServerlessDbName(t *testing.T) {
	ctx := context.Background()
	c := serverlessClient()
	for _, db := range []string{"1dev", "de/v", "d\x00ev", "", strings.Repeat("d", 64), "select"} {
		_, err := c.GetCredentials(ctx, &rss.GetCredentialsInput{WorkgroupName: aws.String(DevWorkgroup), DbName: aws.String(db)})
		var api smithy.APIError
		if !errors.As(err, &api) || api.ErrorCode() != "ValidationException" {
			t.Errorf("dbName %q: %v, want ValidationException", db, err)
		}
	}
	out, err := c.GetCredentials(ctx, &rss.GetCredentialsInput{WorkgroupName: aws.String(DevWorkgroup), DbName: aws.String("DEV")})
	if err != nil {
		t.Fatal(err)
	}
	wg, err := c.GetWorkgroup(ctx, &rss.GetWorkgroupInput{WorkgroupName: aws.String(DevWorkgroup)})
	if err != nil {
		t.Fatal(err)
	}
	d := &Dev{}
	d.Gateway.Address, d.Gateway.Port = aws.ToString(wg.Workgroup.Endpoint.Address), int(aws.ToInt32(wg.Workgroup.Endpoint.Port))
	mustConnect(t, d, cred{aws.ToString(out.DbUser), aws.ToString(out.DbPassword)}, "dev")
}

// Finding 12.3 for Serverless: a region the API does not serve is refused.
func TestFinding3ServerlessRegion(t *testing.T) {
	c := rss.New(serverlessClient().Options(), func(o *rss.Options) { o.Region = "us-west-2" })
	_, err := c.GetCredentials(context.Background(), &rss.GetCredentialsInput{WorkgroupName: aws.String(DevWorkgroup)})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "InvalidSignatureException" {
		t.Fatalf("us-west-2: %v, want InvalidSignatureException", err)
	}
}

// Finding 12.7: UpdateWorkgroup checks every member before it moves the
// gateway.
func TestFinding7UpdateWorkgroupChecksBeforeActing(t *testing.T) {
	ctx := context.Background()
	c := serverlessClient()
	before, err := c.GetWorkgroup(ctx, &rss.GetWorkgroupInput{WorkgroupName: aws.String(DevWorkgroup)})
	if err != nil {
		t.Fatal(err)
	}
	port := aws.ToInt32(before.Workgroup.Endpoint.Port)
	body := fmt.Sprintf(`{"workgroupName":%q,"port":%d,"baseCapacity":"lots"}`, DevWorkgroup, 8200)
	req, _ := http.NewRequest("POST", dev.APIURL+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "RedshiftServerless.UpdateWorkgroup")
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(ctx, devCreds(), req, hex.EncodeToString(sum[:]), "redshift-serverless", DevRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "ValidationException") {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	after, err := c.GetWorkgroup(ctx, &rss.GetWorkgroupInput{WorkgroupName: aws.String(DevWorkgroup)})
	if err != nil {
		t.Fatal(err)
	}
	if p := aws.ToInt32(after.Workgroup.Endpoint.Port); p != port {
		t.Fatalf("the refused update moved the gateway from %d to %d", port, p)
	}
	addr := aws.ToString(after.Workgroup.Endpoint.Address)
	if c, err := net.Dial("tcp", net.JoinHostPort(addr, "8200")); err == nil {
		c.Close()
		t.Fatal("the refused update opened a gateway on port 8200")
	}
	c2, err := net.Dial("tcp", net.JoinHostPort(addr, fmt.Sprint(port)))
	if err != nil {
		t.Fatalf("the gateway no longer listens on %d: %v", port, err)
	}
	c2.Close()
}
