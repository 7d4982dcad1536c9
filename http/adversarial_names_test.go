package http_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// fencedPolicy allows Redshift and Serverless but denies credentials for
// the master user, the secret database and the admins group, written for
// the names as the backend spells them.
const fencedPolicy = `{"Version":"2012-10-17","Statement":[
	{"Effect":"Allow","Action":["redshift:*","redshift-serverless:*"],"Resource":"*"},
	{"Effect":"Deny","Action":"redshift:GetClusterCredentials","Resource":[
		"arn:aws:redshift:us-east-1:000000000000:dbuser:dev-cluster/awsuser",
		"arn:aws:redshift:us-east-1:000000000000:dbname:dev-cluster/secret"]},
	{"Effect":"Deny","Action":"redshift:JoinGroup","Resource":"arn:aws:redshift:us-east-1:000000000000:dbgroup:dev-cluster/admins"}]}`

// signedIn signs a request as user for service in region, as the SDKs do.
func signedIn(user, service, region, target, body string) func(*testing.T, *fixture) *http.Request {
	return func(t *testing.T, f *fixture) *http.Request {
		header := formHeader
		if target != "" {
			header = map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target}
		}
		req := buildRequest(t, "POST", f.srv.URL+"/", body, header)
		if err := v4.NewSigner().SignHTTP(context.Background(), f.keys[user], req, sha256Hex(body), service, region, time.Now()); err != nil {
			t.Fatal(err)
		}
		return req
	}
}

// credsAs is GetClusterCredentials on dev-cluster as the fenced user with
// extra (form-encoded) parameters.
func credsAs(params url.Values) func(*testing.T, *fixture) *http.Request {
	params.Set("Action", "GetClusterCredentials")
	params.Set("Version", "2012-12-01")
	if params.Get("ClusterIdentifier") == "" {
		params.Set("ClusterIdentifier", "dev-cluster")
	}
	return signedIn("fenced", "redshift", "us-east-1", "", params.Encode())
}

func user(name string, kv ...string) url.Values {
	v := url.Values{"DbUser": {name}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// adversarialNames are the name and region attacks: every spelling of a
// denied name is either denied or refused as invalid, never issued.
var adversarialNames = []adversarial{
	{"DbUser upper case of a denied user", credsAs(user("AWSUSER")), 403, "AccessDenied"},
	{"DbUser mixed case of a denied user", credsAs(user("AwsUser")), 403, "AccessDenied"},
	{"DbUser mixed case with AutoCreate", credsAs(user("awsUSER", "AutoCreate", "true")), 403, "AccessDenied"},
	{"DbUser exact denied user", credsAs(user("awsuser")), 403, "AccessDenied"},
	{"DbName upper case of a denied database", credsAs(user("alice", "DbName", "SECRET")), 403, "AccessDenied"},
	{"DbName mixed case of a denied database", credsAs(user("alice", "DbName", "Secret")), 403, "AccessDenied"},
	{"DbUser in fullwidth letters", credsAs(user("ａｗｓｕｓｅｒ")), 400, "InvalidParameterValue"},
	{"DbUser with a Cyrillic look-alike", credsAs(user("awsu\u0455er")), 400, "InvalidParameterValue"},
	{"DbUser with a combining accent", credsAs(user("awsuser\u0301")), 400, "InvalidParameterValue"},
	{"DbUser with a dotless i", credsAs(user("\u0131amuser")), 400, "InvalidParameterValue"},
	{"DbUser with a trailing space", credsAs(user("awsuser ")), 400, "InvalidParameterValue"},
	{"DbUser with a NUL byte", credsAs(user("awsuser\x00x")), 400, "InvalidParameterValue"},
	{"DbUser quoted", credsAs(user(`"awsuser"`)), 400, "InvalidParameterValue"},
	{"DbUser of 64 bytes (the backend keeps 63)", credsAs(user("a" + strings.Repeat("w", 63))), 400, "InvalidParameterValue"},
	{"DbUser of 65 bytes", credsAs(user("a" + strings.Repeat("w", 64))), 400, "InvalidParameterValue"},
	{"DbName of 64 bytes", credsAs(user("alice", "DbName", "s"+strings.Repeat("e", 63))), 400, "InvalidParameterValue"},
	{"DbUser in PostgreSQL's reserved pg_ namespace", credsAs(user("pg_signal_backend")), 400, "InvalidParameterValue"},
	{"DbUser PUBLIC", credsAs(user("PUBLIC")), 400, "InvalidParameterValue"},
	{"DbUser a reserved word", credsAs(user("select")), 400, "InvalidParameterValue"},
	{"DbGroup in upper case", credsAs(user("alice", "DbGroups.DbGroup.1", "ADMINS")), 400, "InvalidParameterValue"},
	{"DbGroup denied", credsAs(user("alice", "DbGroups.DbGroup.1", "admins")), 403, "AccessDenied"},
	{"DbGroup denied behind an allowed one", credsAs(user("alice", "DbGroups.DbGroup.1", "readers", "DbGroups.DbGroup.2", "admins")), 403, "AccessDenied"},
	{"DurationSeconds that overflows", credsAs(user("alice", "DurationSeconds", "36028797018964968")), 400, "InvalidParameterValue"},
	{"DurationSeconds below the minimum", credsAs(user("alice", "DurationSeconds", "899")), 400, "InvalidParameterValue"},
	{"ClusterIdentifier in upper case", credsAs(user("alice", "ClusterIdentifier", "DEV-CLUSTER")), 404, "ClusterNotFound"},
	{"signed for a region that does not exist", signedIn("fenced", "redshift", "xx-nowhere-9", "",
		"Action=GetClusterCredentials&Version=2012-12-01&ClusterIdentifier=dev-cluster&DbUser=awsuser"), 403, "SignatureDoesNotMatch"},
	{"signed for a region not served", signedIn("fenced", "redshift", "us-west-2", "",
		"Action=GetClusterCredentials&Version=2012-12-01&ClusterIdentifier=dev-cluster&DbUser=awsuser"), 403, "SignatureDoesNotMatch"},
	{"signed for the served region in upper case", signedIn("fenced", "redshift", "US-EAST-1", "",
		"Action=DescribeClusters&Version=2012-12-01"), 403, "SignatureDoesNotMatch"},
	{"Serverless signed for a region not served", signedIn("fenced", "redshift-serverless", "eu-west-1", "RedshiftServerless.GetCredentials",
		`{"workgroupName":"edge-wg"}`), 403, "InvalidSignatureException"},
	{"Serverless dbName with a slash", signedIn("fenced", "redshift-serverless", "us-east-1", "RedshiftServerless.GetCredentials",
		`{"workgroupName":"edge-wg","dbName":"de/v"}`), 400, "ValidationException"},
	{"Serverless dbName starting with a digit", signedIn("fenced", "redshift-serverless", "us-east-1", "RedshiftServerless.GetCredentials",
		`{"workgroupName":"edge-wg","dbName":"1dev"}`), 400, "ValidationException"},
	{"Serverless dbName with a NUL", signedIn("fenced", "redshift-serverless", "us-east-1", "RedshiftServerless.GetCredentials",
		`{"workgroupName":"edge-wg","dbName":"de\u0000v"}`), 400, "ValidationException"},
	{"Serverless durationSeconds that overflows", signedIn("fenced", "redshift-serverless", "us-east-1", "RedshiftServerless.GetCredentials",
		`{"workgroupName":"edge-wg","durationSeconds":36028797018964968}`), 400, "ValidationException"},
	{"tagging a cluster ARN of another region", signedIn("fenced", "redshift", "us-east-1", "",
		"Action=CreateTags&Version=2012-12-01&ResourceName="+url.QueryEscape("arn:aws:redshift:us-west-2:000000000000:cluster:dev-cluster")+"&Tags.Tag.1.Key=k&Tags.Tag.1.Value=v"),
		404, "ResourceNotFoundFault"},
}

func TestAdversarialNamesAndRegions(t *testing.T) {
	f := newFixture(t)
	f.workgroup(t)
	f.addUser(t, "fenced", fencedPolicy)
	if n := len(adversarialNames) + len(adversarialSigV4); n < 40 {
		t.Fatalf("only %d adversarial rows in all", n)
	}
	for _, tt := range adversarialNames {
		t.Run(tt.name, func(t *testing.T) {
			got := sendRequest(t, tt.build(t, f))
			if strings.Contains(got.body, "DbPassword") || strings.Contains(got.body, "dbPassword") {
				t.Fatalf("credential issued: %s", got.body)
			}
			if got.status != tt.wantStatus || got.code != tt.wantCode {
				t.Fatalf("got %d %q, want %d %q: %s", got.status, got.code, tt.wantStatus, tt.wantCode, got.body)
			}
		})
	}
	// The rows that are refused for their spelling are accepted when
	// spelled as the backend spells them and not denied: the table
	// does not pass because everything is refused.
	for _, ok := range []url.Values{user("Alice"), user("alice", "DbName", "DEV", "DbGroups.DbGroup.1", "readers"), user("a" + strings.Repeat("w", 62))} {
		if got := sendRequest(t, credsAs(ok)(t, f)); got.status != 200 {
			t.Fatalf("%v: %d %s", ok, got.status, got.body)
		}
	}
}
