package main

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	rss "github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
	"github.com/shiftkey/shiftkey/devenv"
)

// A master or admin user the backend cannot have is a 400, not a 500 from
// initdb: names beginning with pg_ (PostgreSQL reserves them), and
// shiftkey's provisioning role, which must not be the server's superuser
// (and whose credential the gateway never accepts, so such a cluster's
// master could never log in).
func TestProvisionedMasterUsernameOfTheBackend(t *testing.T) {
	ctx := context.Background()
	c := apiClient(dev)
	for _, u := range []string{"pg_monitor", "pg_x", devenv.ProvisionerRole} {
		id := fresh("master-name")
		_, err := c.CreateCluster(ctx, &redshift.CreateClusterInput{ClusterIdentifier: aws.String(id), NodeType: aws.String("ra3.xlplus"),
			MasterUsername: aws.String(u), MasterUserPassword: aws.String("Probe1234")})
		if err == nil {
			c.DeleteCluster(ctx, &redshift.DeleteClusterInput{ClusterIdentifier: aws.String(id), SkipFinalClusterSnapshot: aws.Bool(true)})
		}
		if !isCode(err, "InvalidParameterValue") {
			t.Errorf("CreateCluster with MasterUsername %s: %v, want InvalidParameterValue", u, err)
		}
	}
	s := serverlessClient()
	for _, u := range []string{"pg_x", devenv.ProvisionerRole} {
		ns, wg := fresh("admin-name-ns"), fresh("admin-name-wg")
		_, err := s.CreateNamespace(ctx, &rss.CreateNamespaceInput{NamespaceName: aws.String(ns), AdminUsername: aws.String(u)})
		if err == nil {
			_, err = s.CreateWorkgroup(ctx, &rss.CreateWorkgroupInput{WorkgroupName: aws.String(wg), NamespaceName: aws.String(ns)})
			if err == nil {
				s.DeleteWorkgroup(ctx, &rss.DeleteWorkgroupInput{WorkgroupName: aws.String(wg)})
			}
			s.DeleteNamespace(ctx, &rss.DeleteNamespaceInput{NamespaceName: aws.String(ns)})
		}
		if !isCode(err, "ValidationException") {
			t.Errorf("a namespace with AdminUsername %s and its workgroup: %v, want ValidationException", u, err)
		}
	}
}
