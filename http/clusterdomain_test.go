package http_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
)

// DescribeClusters reports a cluster's custom domain association as AWS
// does (the Cluster shape's CustomDomainName, CustomDomainCertificateArn,
// CustomDomainCertificateExpiryDate), the same as
// DescribeCustomDomainAssociations says; a cluster without one has none
// of them, and once the association is deleted they are gone.
func TestDescribeClustersReportsCustomDomain(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rc := f.client("admin")
	describe := func() *redshift.DescribeClustersOutput {
		t.Helper()
		out, err := rc.DescribeClusters(ctx, &redshift.DescribeClustersInput{ClusterIdentifier: aws.String("dev-cluster")})
		mustOK(t, "DescribeClusters", err)
		if len(out.Clusters) != 1 {
			t.Fatalf("DescribeClusters: %d clusters", len(out.Clusters))
		}
		return out
	}
	none := func(when string) {
		t.Helper()
		if c := describe().Clusters[0]; c.CustomDomainName != nil || c.CustomDomainCertificateArn != nil || c.CustomDomainCertificateExpiryDate != nil {
			t.Errorf("%s: CustomDomainName %q, CustomDomainCertificateArn %q, CustomDomainCertificateExpiryDate %v; want none",
				when, aws.ToString(c.CustomDomainName), aws.ToString(c.CustomDomainCertificateArn), c.CustomDomainCertificateExpiryDate)
		}
	}
	none("without an association")

	_, err := rc.CreateCustomDomainAssociation(ctx, &redshift.CreateCustomDomainAssociationInput{ClusterIdentifier: aws.String("dev-cluster"),
		CustomDomainName: aws.String("Warehouse.Example.com"), CustomDomainCertificateArn: aws.String(certA)})
	mustOK(t, "CreateCustomDomainAssociation", err)
	assoc, err := rc.DescribeCustomDomainAssociations(ctx, &redshift.DescribeCustomDomainAssociationsInput{CustomDomainName: aws.String("warehouse.example.com")})
	mustOK(t, "DescribeCustomDomainAssociations", err)
	if len(assoc.Associations) != 1 || len(assoc.Associations[0].CertificateAssociations) != 1 {
		t.Fatalf("DescribeCustomDomainAssociations: %+v", assoc.Associations)
	}
	want := assoc.Associations[0]
	for _, out := range []*redshift.DescribeClustersOutput{describe(), func() *redshift.DescribeClustersOutput {
		all, err := rc.DescribeClusters(ctx, &redshift.DescribeClustersInput{})
		mustOK(t, "DescribeClusters (all)", err)
		return all
	}()} {
		c := out.Clusters[0]
		if aws.ToString(c.CustomDomainName) != "warehouse.example.com" || aws.ToString(c.CustomDomainCertificateArn) != certA ||
			c.CustomDomainCertificateExpiryDate == nil || !c.CustomDomainCertificateExpiryDate.Equal(aws.ToTime(want.CustomDomainCertificateExpiryDate)) {
			t.Errorf("DescribeClusters with an association: CustomDomainName %q, CustomDomainCertificateArn %q, CustomDomainCertificateExpiryDate %v; want %q, %q, %v",
				aws.ToString(c.CustomDomainName), aws.ToString(c.CustomDomainCertificateArn), c.CustomDomainCertificateExpiryDate,
				"warehouse.example.com", certA, aws.ToTime(want.CustomDomainCertificateExpiryDate))
		}
	}

	_, err = rc.DeleteCustomDomainAssociation(ctx, &redshift.DeleteCustomDomainAssociationInput{ClusterIdentifier: aws.String("dev-cluster"),
		CustomDomainName: aws.String("warehouse.example.com")})
	mustOK(t, "DeleteCustomDomainAssociation", err)
	none("after the association was deleted")
}
