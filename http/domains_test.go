package http_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	rss "github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
)

const certA = "arn:aws:acm:us-east-1:000000000000:certificate/aaaa"
const certB = "arn:aws:acm:us-east-1:000000000000:certificate/bbbb"

// TestCustomDomainsBothAPIs pins each API's answers about custom domains,
// which share one implementation (shiftkey.Domains): Redshift's faults for
// clusters, Serverless's exceptions for workgroups, and that neither API
// sees the other's associations.
func TestCustomDomainsBothAPIs(t *testing.T) {
	f := newFixture(t)
	f.workgroup(t)
	ctx := context.Background()
	rc := f.client("admin")
	sc := f.serverlessClient(f.keys["admin"])

	created, err := rc.CreateCustomDomainAssociation(ctx, &redshift.CreateCustomDomainAssociationInput{ClusterIdentifier: aws.String("dev-cluster"),
		CustomDomainName: aws.String("Warehouse.Example.com"), CustomDomainCertificateArn: aws.String(certA)})
	mustOK(t, "CreateCustomDomainAssociation", err)
	if got := aws.ToString(created.CustomDomainName); got != "warehouse.example.com" {
		t.Errorf("created name %q, want it lower-cased", got)
	}
	_, err = rc.CreateCustomDomainAssociation(ctx, &redshift.CreateCustomDomainAssociationInput{ClusterIdentifier: aws.String("dev-cluster"),
		CustomDomainName: aws.String("warehouse.example.com"), CustomDomainCertificateArn: aws.String(certA)})
	wantAPIError(t, err, "CustomCnameAssociationFault")
	_, err = rc.ModifyCustomDomainAssociation(ctx, &redshift.ModifyCustomDomainAssociationInput{ClusterIdentifier: aws.String("dev-cluster"),
		CustomDomainName: aws.String("nope.example.com"), CustomDomainCertificateArn: aws.String(certA)})
	wantAPIError(t, err, "CustomDomainAssociationNotFoundFault")
	modified, err := rc.ModifyCustomDomainAssociation(ctx, &redshift.ModifyCustomDomainAssociationInput{ClusterIdentifier: aws.String("dev-cluster"),
		CustomDomainName: aws.String("warehouse.example.com"), CustomDomainCertificateArn: aws.String(certB)})
	mustOK(t, "ModifyCustomDomainAssociation", err)
	if aws.ToString(modified.CustomDomainCertificateArn) != certB || modified.CustomDomainCertExpiryTime == nil {
		t.Errorf("modified: cert %q, expiry %v", aws.ToString(modified.CustomDomainCertificateArn), modified.CustomDomainCertExpiryTime)
	}

	// The workgroup's side: the same names, Serverless's codes.
	_, err = sc.CreateCustomDomainAssociation(ctx, &rss.CreateCustomDomainAssociationInput{WorkgroupName: aws.String("edge-wg"),
		CustomDomainName: aws.String("warehouse.example.com"), CustomDomainCertificateArn: aws.String(certA)})
	wantAPIError(t, err, "ConflictException")
	_, err = sc.CreateCustomDomainAssociation(ctx, &rss.CreateCustomDomainAssociationInput{WorkgroupName: aws.String("edge-wg"),
		CustomDomainName: aws.String("lake.example.com"), CustomDomainCertificateArn: aws.String(certA)})
	mustOK(t, "Serverless CreateCustomDomainAssociation", err)
	_, err = sc.GetCustomDomainAssociation(ctx, &rss.GetCustomDomainAssociationInput{WorkgroupName: aws.String("edge-wg"), CustomDomainName: aws.String("warehouse.example.com")})
	wantAPIError(t, err, "ResourceNotFoundException")
	_, err = sc.UpdateCustomDomainAssociation(ctx, &rss.UpdateCustomDomainAssociationInput{WorkgroupName: aws.String("edge-wg"),
		CustomDomainName: aws.String("nope.example.com"), CustomDomainCertificateArn: aws.String(certB)})
	wantAPIError(t, err, "ResourceNotFoundException")
	updated, err := sc.UpdateCustomDomainAssociation(ctx, &rss.UpdateCustomDomainAssociationInput{WorkgroupName: aws.String("edge-wg"),
		CustomDomainName: aws.String("LAKE.example.com"), CustomDomainCertificateArn: aws.String(certB)})
	mustOK(t, "UpdateCustomDomainAssociation", err)
	if aws.ToString(updated.CustomDomainCertificateArn) != certB || aws.ToString(updated.CustomDomainName) != "lake.example.com" {
		t.Errorf("updated: %q %q", aws.ToString(updated.CustomDomainName), aws.ToString(updated.CustomDomainCertificateArn))
	}
	list, err := sc.ListCustomDomainAssociations(ctx, &rss.ListCustomDomainAssociationsInput{})
	mustOK(t, "ListCustomDomainAssociations", err)
	if len(list.Associations) != 1 || aws.ToString(list.Associations[0].CustomDomainName) != "lake.example.com" {
		t.Errorf("Serverless lists %+v, want lake.example.com alone", list.Associations)
	}
	desc, err := rc.DescribeCustomDomainAssociations(ctx, &redshift.DescribeCustomDomainAssociationsInput{})
	mustOK(t, "DescribeCustomDomainAssociations", err)
	if len(desc.Associations) != 1 || len(desc.Associations[0].CertificateAssociations) != 1 ||
		aws.ToString(desc.Associations[0].CertificateAssociations[0].CustomDomainName) != "warehouse.example.com" {
		t.Errorf("Redshift describes %+v, want warehouse.example.com alone", desc.Associations)
	}

	// A domain names a target of its own kind only.
	_, err = rc.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{CustomDomainName: aws.String("lake.example.com"), DbUser: aws.String("alice")})
	wantAPIError(t, err, "ClusterNotFound")
	_, err = sc.GetCredentials(ctx, &rss.GetCredentialsInput{CustomDomainName: aws.String("warehouse.example.com")})
	wantAPIError(t, err, "ResourceNotFoundException")
	_, err = sc.DeleteCustomDomainAssociation(ctx, &rss.DeleteCustomDomainAssociationInput{WorkgroupName: aws.String("edge-wg"), CustomDomainName: aws.String("warehouse.example.com")})
	wantAPIError(t, err, "ResourceNotFoundException")
	_, err = rc.DeleteCustomDomainAssociation(ctx, &redshift.DeleteCustomDomainAssociationInput{ClusterIdentifier: aws.String("dev-cluster"), CustomDomainName: aws.String("lake.example.com")})
	wantAPIError(t, err, "CustomDomainAssociationNotFoundFault")

	_, err = rc.DeleteCustomDomainAssociation(ctx, &redshift.DeleteCustomDomainAssociationInput{ClusterIdentifier: aws.String("dev-cluster"), CustomDomainName: aws.String("warehouse.example.com")})
	mustOK(t, "DeleteCustomDomainAssociation", err)
	_, err = rc.DescribeCustomDomainAssociations(ctx, &redshift.DescribeCustomDomainAssociationsInput{CustomDomainName: aws.String("warehouse.example.com")})
	wantAPIError(t, err, "CustomDomainAssociationNotFoundFault")
	_, err = sc.DeleteCustomDomainAssociation(ctx, &rss.DeleteCustomDomainAssociationInput{WorkgroupName: aws.String("edge-wg"), CustomDomainName: aws.String("lake.example.com")})
	mustOK(t, "Serverless DeleteCustomDomainAssociation", err)
	_, err = sc.GetCustomDomainAssociation(ctx, &rss.GetCustomDomainAssociationInput{WorkgroupName: aws.String("edge-wg"), CustomDomainName: aws.String("lake.example.com")})
	wantAPIError(t, err, "ResourceNotFoundException")
}
