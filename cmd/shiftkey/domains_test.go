package main

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/redshift/types"
	rss "github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
	rsstypes "github.com/aws/aws-sdk-go-v2/service/redshiftserverless/types"
)

const certARN = "arn:aws:acm:us-east-1:000000000000:certificate/0b6a4a43-9d4b-4b5a-8a4e-1f2b3c4d5e6f"

func TestClusterCustomDomain(t *testing.T) {
	ctx := context.Background()
	c := apiClient(dev)
	if _, err := c.CreateCustomDomainAssociation(ctx, &redshift.CreateCustomDomainAssociationInput{ClusterIdentifier: aws.String(DevCluster),
		CustomDomainName: aws.String("warehouse.example.com"), CustomDomainCertificateArn: aws.String(certARN)}); err != nil {
		t.Fatal(err)
	}
	defer c.DeleteCustomDomainAssociation(ctx, &redshift.DeleteCustomDomainAssociationInput{ClusterIdentifier: aws.String(DevCluster), CustomDomainName: aws.String("warehouse.example.com")})
	var fault *types.CustomCnameAssociationFault
	if _, err := c.CreateCustomDomainAssociation(ctx, &redshift.CreateCustomDomainAssociationInput{ClusterIdentifier: aws.String(DevCluster),
		CustomDomainName: aws.String("Warehouse.Example.com"), CustomDomainCertificateArn: aws.String(certARN)}); !errors.As(err, &fault) {
		t.Fatalf("second association of the name: %v", err)
	}
	out, err := c.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{CustomDomainName: aws.String("warehouse.example.com"), DbUser: aws.String("dom"), AutoCreate: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	conn := mustConnect(t, dev, cred{aws.ToString(out.DbUser), aws.ToString(out.DbPassword)}, "dev")
	if u := currentUser(t, conn); u != "dom" {
		t.Fatalf("current_user %q", u)
	}
	if _, err := c.GetClusterCredentialsWithIAM(ctx, &redshift.GetClusterCredentialsWithIAMInput{CustomDomainName: aws.String("warehouse.example.com")}); err != nil {
		t.Fatalf("WithIAM by domain: %v", err)
	}
	_, err = c.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("other"), CustomDomainName: aws.String("warehouse.example.com"), DbUser: aws.String("dom")})
	if !isCode(err, "InvalidParameterCombination") {
		t.Fatalf("identifier and domain disagree: %v", err)
	}
	desc, err := c.DescribeCustomDomainAssociations(ctx, &redshift.DescribeCustomDomainAssociationsInput{CustomDomainName: aws.String("warehouse.example.com")})
	if err != nil || len(desc.Associations) != 1 || aws.ToString(desc.Associations[0].CertificateAssociations[0].ClusterIdentifier) != DevCluster {
		t.Fatalf("describe: %+v %v", desc, err)
	}
	if _, err := c.ModifyCustomDomainAssociation(ctx, &redshift.ModifyCustomDomainAssociationInput{ClusterIdentifier: aws.String(DevCluster),
		CustomDomainName: aws.String("warehouse.example.com"), CustomDomainCertificateArn: aws.String(certARN + "0")}); err != nil {
		t.Fatal(err)
	}
	var nf *types.CustomDomainAssociationNotFoundFault
	if _, err := c.DescribeCustomDomainAssociations(ctx, &redshift.DescribeCustomDomainAssociationsInput{CustomDomainName: aws.String("nope.example.com")}); !errors.As(err, &nf) {
		t.Fatalf("describe unknown: %v", err)
	}
	if _, err := c.CreateCustomDomainAssociation(ctx, &redshift.CreateCustomDomainAssociationInput{ClusterIdentifier: aws.String(DevCluster),
		CustomDomainName: aws.String("-bad.example.com"), CustomDomainCertificateArn: aws.String(certARN)}); !isCode(err, "InvalidParameterValue") {
		t.Fatalf("bad domain: %v", err)
	}
	if _, err := c.DeleteCustomDomainAssociation(ctx, &redshift.DeleteCustomDomainAssociationInput{ClusterIdentifier: aws.String(DevCluster), CustomDomainName: aws.String("warehouse.example.com")}); err != nil {
		t.Fatal(err)
	}
	var cnf *types.ClusterNotFoundFault
	if _, err := c.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{CustomDomainName: aws.String("warehouse.example.com"), DbUser: aws.String("dom")}); !errors.As(err, &cnf) {
		t.Fatalf("after delete: %v", err)
	}
}

func TestWorkgroupCustomDomain(t *testing.T) {
	ctx := context.Background()
	c := serverlessClient()
	created, err := c.CreateCustomDomainAssociation(ctx, &rss.CreateCustomDomainAssociationInput{WorkgroupName: aws.String(DevWorkgroup),
		CustomDomainName: aws.String("lake.example.com"), CustomDomainCertificateArn: aws.String(certARN)})
	if err != nil {
		t.Fatal(err)
	}
	if created.CustomDomainCertificateExpiryTime == nil {
		t.Fatal("no certificate expiry time")
	}
	out, err := c.GetCredentials(ctx, &rss.GetCredentialsInput{CustomDomainName: aws.String("lake.example.com")})
	if err != nil || aws.ToString(out.DbUser) != "IAM:admin" {
		t.Fatalf("GetCredentials by domain: %v %v", out, err)
	}
	var ve *rsstypes.ValidationException
	if _, err := c.GetCredentials(ctx, &rss.GetCredentialsInput{CustomDomainName: aws.String("lake.example.com"), WorkgroupName: aws.String("other-wg")}); !errors.As(err, &ve) {
		t.Fatalf("domain and workgroup disagree: %v", err)
	}
	if _, err := c.GetCustomDomainAssociation(ctx, &rss.GetCustomDomainAssociationInput{WorkgroupName: aws.String(DevWorkgroup), CustomDomainName: aws.String("lake.example.com")}); err != nil {
		t.Fatal(err)
	}
	list, err := c.ListCustomDomainAssociations(ctx, &rss.ListCustomDomainAssociationsInput{})
	if err != nil || len(list.Associations) != 1 {
		t.Fatalf("list: %+v %v", list, err)
	}
	if _, err := c.UpdateCustomDomainAssociation(ctx, &rss.UpdateCustomDomainAssociationInput{WorkgroupName: aws.String(DevWorkgroup),
		CustomDomainName: aws.String("lake.example.com"), CustomDomainCertificateArn: aws.String(certARN + "1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteCustomDomainAssociation(ctx, &rss.DeleteCustomDomainAssociationInput{WorkgroupName: aws.String(DevWorkgroup), CustomDomainName: aws.String("lake.example.com")}); err != nil {
		t.Fatal(err)
	}
	var nf *rsstypes.ResourceNotFoundException
	if _, err := c.GetCredentials(ctx, &rss.GetCredentialsInput{CustomDomainName: aws.String("lake.example.com")}); !errors.As(err, &nf) {
		t.Fatalf("after delete: %v", err)
	}
}
