package http_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/shiftkey/shiftkey"
)

// TestAuditUnauthenticatedCallsNameTheirService: a call refused at or
// before SigV4 (no Authorization at all, one that does not parse, a wrong
// secret, an unknown key) is recorded with the eventSource of the service
// it asked, as CloudTrail records such calls, so that a responder's query
// by eventSource and eventName finds them. Without a credential scope the
// service is told from the request itself: a Query Action only one service
// answers, else its Version; a JSON 1.1 X-Amz-Target. Found in review: an
// unsigned Query call had "eventSource":"". A request that names no
// service it can be told by keeps "".
func TestAuditUnauthenticatedCallsNameTheirService(t *testing.T) {
	f := newFixture(t)
	path := f.audited(t)
	ctx := context.Background()
	wrong := aws.Credentials{AccessKeyID: f.keys["admin"].AccessKeyID, SecretAccessKey: "wrong-secret-wrong-secret-wrong-secret00"}
	unknown := aws.Credentials{AccessKeyID: shiftkey.NewID("AKIA"), SecretAccessKey: "unknown-key-secret-unknown-key-secret000"}
	unsigned := func(method, query, body string, header map[string]string) func() {
		return func() {
			u := f.srv.URL + "/"
			if query != "" {
				u += "?" + query
			}
			sendRequest(t, buildRequest(t, method, u, body, header))
		}
	}
	tests := []struct {
		name, source, event, code string
		send                      func()
	}{
		{"SDK, wrong secret, Redshift", "redshift.amazonaws.com", "GetClusterCredentials", "SignatureDoesNotMatch", func() {
			_, err := f.redshiftClient(wrong).GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
				ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("alice")})
			wantAPIError(t, err, "SignatureDoesNotMatch")
		}},
		{"SDK, wrong secret, Serverless", "redshift-serverless.amazonaws.com", "GetCredentials", "InvalidSignatureException", func() {
			_, err := f.serverlessClient(wrong).GetCredentials(ctx, &redshiftserverless.GetCredentialsInput{WorkgroupName: aws.String("default-workgroup")})
			wantAPIError(t, err, "InvalidSignatureException")
		}},
		{"SDK, unknown key, IAM", "iam.amazonaws.com", "ListUsers", shiftkey.CodeInvalidClientTokenID, func() {
			_, err := f.iamClient(unknown).ListUsers(ctx, &iam.ListUsersInput{})
			wantAPIError(t, err, shiftkey.CodeInvalidClientTokenID)
		}},
		{"SDK, wrong secret, STS", "sts.amazonaws.com", "GetCallerIdentity", "SignatureDoesNotMatch", func() {
			_, err := f.stsClient(wrong).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			wantAPIError(t, err, "SignatureDoesNotMatch")
		}},
		{"unsigned POST, Redshift", "redshift.amazonaws.com", "GetClusterCredentials", "MissingAuthenticationToken",
			unsigned("POST", "", "Action=GetClusterCredentials&Version=2012-12-01&ClusterIdentifier=dev-cluster&DbUser=alice", formHeader)},
		{"unsigned POST, IAM", "iam.amazonaws.com", "CreateUser", "MissingAuthenticationToken",
			unsigned("POST", "", "Action=CreateUser&Version=2010-05-08&UserName=mallory", formHeader)},
		{"unsigned POST, STS, no Version", "sts.amazonaws.com", "AssumeRole", "MissingAuthenticationToken",
			unsigned("POST", "", "Action=AssumeRole&RoleArn=arn:aws:iam::"+account+":role/Analyst&RoleSessionName=s", formHeader)},
		{"unsigned GET, STS", "sts.amazonaws.com", "GetCallerIdentity", "MissingAuthenticationToken",
			unsigned("GET", "Action=GetCallerIdentity&Version=2011-06-15", "", nil)},
		{"Authorization that does not parse, IAM", "iam.amazonaws.com", "DeleteUser", "IncompleteSignature",
			unsigned("POST", "", "Action=DeleteUser&Version=2010-05-08&UserName=admin", map[string]string{"Content-Type": formType, "Authorization": "garbage"})},
		{"unsigned JSON, Serverless", "redshift-serverless.amazonaws.com", "GetCredentials", "MissingAuthenticationTokenException",
			unsigned("POST", "", `{"workgroupName":"default-workgroup"}`, map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": getCredentialsTarget})},
		{"unsigned, unknown Action, Redshift's Version", "redshift.amazonaws.com", "NoSuchAction", "MissingAuthenticationToken",
			unsigned("POST", "", "Action=NoSuchAction&Version=2012-12-01", formHeader)},
		{"unsigned, unknown Action, no Version", "", "NoSuchAction", "MissingAuthenticationToken",
			unsigned("POST", "", "Action=NoSuchAction", formHeader)},
		{"unsigned garbage", "", "(unknown)", "MissingAuthenticationToken",
			unsigned("POST", "", "hello", formHeader)},
	}
	for _, tt := range tests {
		before := len(auditLines(t, path))
		tt.send()
		lines := auditLines(t, path)
		if len(lines) != before+1 {
			t.Fatalf("%s: %d records written, want 1", tt.name, len(lines)-before)
		}
		r := lastRecord(t, path)
		if r.EventSource != tt.source || r.EventName != tt.event || r.ErrorCode != tt.code || r.SourceIPAddress != "127.0.0.1" ||
			r.UserIdentity.Type != "Unknown" {
			t.Errorf("%s: want eventSource %q, eventName %q, errorCode %q, sourceIPAddress 127.0.0.1, userIdentity Unknown; recorded %s",
				tt.name, tt.source, tt.event, tt.code, lines[len(lines)-1])
		}
	}
}
