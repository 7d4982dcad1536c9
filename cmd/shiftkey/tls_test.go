package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	rss "github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

func caPool(t *testing.T) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(dev.CAPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatal("CA file has no certificate")
	}
	return pool
}

func TestTLSVerifyFull(t *testing.T) {
	c := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String("tina"), AutoCreate: aws.Bool(true)})
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d dbname=dev sslmode=verify-full sslrootcert=%s", dev.Gateway.Address, dev.Gateway.Port, dev.CAPath))
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Password = c.user, c.password
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("verify-full: %v", err)
	}
	defer conn.Close(context.Background())
	if _, ok := conn.PgConn().Conn().(*tls.Conn); !ok {
		t.Fatalf("connection is %T, not TLS", conn.PgConn().Conn())
	}
	if u := currentUser(t, conn); u != "tina" {
		t.Fatalf("current_user %q", u)
	}
	// pgx with channel_binding=require: SCRAM-SHA-256-PLUS.
	cfg, err = pgx.ParseConfig(fmt.Sprintf("host=%s port=%d dbname=dev sslmode=verify-full sslrootcert=%s channel_binding=require", dev.Gateway.Address, dev.Gateway.Port, dev.CAPath))
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Password = c.user, c.password
	cb, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("channel_binding=require: %v", err)
	}
	defer cb.Close(context.Background())
	if u := currentUser(t, cb); u != "tina" {
		t.Fatalf("current_user %q", u)
	}
}

// psql (libpq) with verify-full and channel_binding=require: SCRAM-SHA-256-PLUS.
func TestPsqlChannelBinding(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("psql not installed")
		}
		t.Skip("psql not installed")
	}
	c := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String("cbuser"), AutoCreate: aws.Bool(true)})
	for _, mode := range []string{"sslmode=disable", "sslmode=require", "sslmode=verify-full", "sslmode=verify-full channel_binding=require"} {
		conninfo := fmt.Sprintf("host=%s port=%d dbname=dev sslrootcert=%s %s", dev.Gateway.Address, dev.Gateway.Port, dev.CAPath, mode)
		cmd := exec.Command(psql, conninfo, "-XAtc", "SELECT current_user")
		cmd.Env = append(os.Environ(), "PGUSER="+c.user, "PGPASSWORD="+c.password, "PGCONNECT_TIMEOUT=10")
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "cbuser" {
			t.Fatalf("psql %s: %v: %s", mode, err, out)
		}
	}
	// A wrong password over channel binding still fails with 28P01.
	cmd := exec.Command(psql, fmt.Sprintf("host=%s port=%d dbname=dev sslmode=require channel_binding=require", dev.Gateway.Address, dev.Gateway.Port), "-XAtc", "SELECT 1")
	cmd.Env = append(os.Environ(), "PGUSER="+c.user, "PGPASSWORD=wrong", "PGCONNECT_TIMEOUT=10")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "password authentication failed") {
		t.Fatalf("wrong password: %v %s", err, out)
	}
}

// PostgreSQL 17's direct TLS: the ClientHello comes first, with ALPN.
func TestDirectTLS(t *testing.T) {
	addr := net.JoinHostPort(dev.Gateway.Address, strconv.Itoa(dev.Gateway.Port))
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: caPool(t), ServerName: "127.0.0.1", NextProtos: []string{"postgresql"}})
	if err != nil {
		t.Fatalf("direct TLS: %v", err)
	}
	defer conn.Close()
	if conn.ConnectionState().NegotiatedProtocol != "postgresql" {
		t.Fatalf("ALPN %q", conn.ConnectionState().NegotiatedProtocol)
	}
	buf, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "IAM:x"}}).Encode(nil)
	conn.Write(buf)
	msg, err := pgproto3.NewFrontend(conn, conn).Receive()
	if err != nil {
		t.Fatal(err)
	}
	if sasl, ok := msg.(*pgproto3.AuthenticationSASL); !ok || sasl.AuthMechanisms[0] != "SCRAM-SHA-256-PLUS" {
		t.Fatalf("got %#v, want SASL with SCRAM-SHA-256-PLUS first", msg)
	}
	// Without ALPN, direct TLS is refused.
	bare, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: caPool(t), ServerName: "127.0.0.1"})
	if err == nil {
		bare.Write(buf)
		if _, err := pgproto3.NewFrontend(bare, bare).Receive(); err == nil {
			t.Fatal("direct TLS without ALPN was served")
		}
		bare.Close()
	}
}

// A TLS client naming a custom domain (SNI) reaches the workgroup the
// domain is associated with, whichever gateway port it connects to.
func TestSNIRoutesCustomDomain(t *testing.T) {
	ctx := context.Background()
	c := serverlessClient()
	if _, err := c.CreateCustomDomainAssociation(ctx, &rss.CreateCustomDomainAssociationInput{WorkgroupName: aws.String(DevWorkgroup),
		CustomDomainName: aws.String("sni.example.com"), CustomDomainCertificateArn: aws.String(certARN)}); err != nil {
		t.Fatal(err)
	}
	defer c.DeleteCustomDomainAssociation(ctx, &rss.DeleteCustomDomainAssociationInput{WorkgroupName: aws.String(DevWorkgroup), CustomDomainName: aws.String("sni.example.com")})
	out, err := c.GetCredentials(ctx, &rss.GetCredentialsInput{CustomDomainName: aws.String("sni.example.com")})
	if err != nil {
		t.Fatal(err)
	}
	// Connect to dev-cluster's port: without SNI the workgroup's credential is unknown there.
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d dbname=dev sslmode=require", dev.Gateway.Address, dev.Gateway.Port))
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Password = aws.ToString(out.DbUser), aws.ToString(out.DbPassword)
	cfg.TLSConfig = &tls.Config{ServerName: "sni.example.com", RootCAs: caPool(t)} // verify-full against the domain
	cfg.Fallbacks = nil
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("SNI-routed login: %v", err)
	}
	defer conn.Close(ctx)
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_user || '@' || current_database()").Scan(&db); err != nil || db != "IAM:admin@dev" {
		t.Fatalf("routed session %q %v", db, err)
	}
	cfg.TLSConfig = &tls.Config{ServerName: "127.0.0.1", RootCAs: caPool(t)}
	if _, err := pgx.ConnectConfig(ctx, cfg); sqlState(err) != "28P01" {
		t.Fatalf("workgroup credential on dev-cluster without SNI: %v", err)
	}
}

// DNS names are case-insensitive: a client naming the custom domain in
// other case (SNI as typed in its connection string) reaches the same
// workgroup, and once the association is deleted it reaches it no more,
// in any case.
func TestSNIRoutesCustomDomainAnyCase(t *testing.T) {
	ctx := context.Background()
	c := serverlessClient()
	if _, err := c.CreateCustomDomainAssociation(ctx, &rss.CreateCustomDomainAssociationInput{WorkgroupName: aws.String(DevWorkgroup),
		CustomDomainName: aws.String("sni-case.example.com"), CustomDomainCertificateArn: aws.String(certARN)}); err != nil {
		t.Fatal(err)
	}
	deleted := false
	defer func() {
		if !deleted {
			c.DeleteCustomDomainAssociation(ctx, &rss.DeleteCustomDomainAssociationInput{WorkgroupName: aws.String(DevWorkgroup), CustomDomainName: aws.String("sni-case.example.com")})
		}
	}()
	out, err := c.GetCredentials(ctx, &rss.GetCredentialsInput{CustomDomainName: aws.String("SNI-Case.Example.COM")})
	if err != nil {
		t.Fatal(err)
	}
	// Connect to dev-cluster's port: only SNI routing lets the workgroup's credential in.
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d dbname=dev sslmode=require", dev.Gateway.Address, dev.Gateway.Port))
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Password = aws.ToString(out.DbUser), aws.ToString(out.DbPassword)
	cfg.TLSConfig = &tls.Config{ServerName: "SNI-Case.Example.COM", RootCAs: caPool(t)}
	cfg.Fallbacks = nil
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("SNI-routed login, domain in other case: %v", err)
	}
	conn.Close(ctx)
	if _, err := c.DeleteCustomDomainAssociation(ctx, &rss.DeleteCustomDomainAssociationInput{WorkgroupName: aws.String(DevWorkgroup),
		CustomDomainName: aws.String("sni-case.example.com")}); err != nil {
		t.Fatal(err)
	}
	deleted = true
	cfg.TLSConfig = &tls.Config{ServerName: "SNI-Case.Example.COM", InsecureSkipVerify: true} // no certificate names it now
	if conn, err := pgx.ConnectConfig(ctx, cfg); sqlState(err) != "28P01" {
		if err == nil {
			conn.Close(ctx)
		}
		t.Fatalf("SNI of a deleted association, in other case: %v, want it unrouted (28P01 on dev-cluster)", err)
	}
}
