package http_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// presignScript prints a URL presigned by botocore's own presigner for
// sts:GetCallerIdentity; with a cluster name it adds the x-k8s-aws-id header
// to the signature as `aws eks get-token` does.
const presignScript = `
import sys, botocore.session
endpoint, key, secret, method, cluster = sys.argv[1:6]
session = botocore.session.get_session()
session.set_credentials(key, secret)
client = session.create_client("sts", region_name="us-east-1", endpoint_url=endpoint)
if cluster:
    def add_header(request, **kwargs):
        request.headers["x-k8s-aws-id"] = cluster
    client.meta.events.register("before-sign.sts.GetCallerIdentity", add_header)
print(client.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=60, HttpMethod=method))
`

// TestBotocorePresignedGetCallerIdentity sends URLs presigned by the real
// botocore (when python3 has it): they keep working, and none runs a body.
func TestBotocorePresignedGetCallerIdentity(t *testing.T) {
	if exec.Command("python3", "-c", "import botocore").Run() != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 with botocore is not installed (apt-get install -y python3-boto3)")
		}
		t.Skip("python3 with botocore is not installed")
	}
	f := newFixture(t)
	admin := f.keys["admin"]
	presign := func(method, cluster string) string {
		out, err := exec.Command("python3", "-c", presignScript, f.srv.URL, admin.AccessKeyID, admin.SecretAccessKey, method, cluster).Output()
		if err != nil {
			t.Fatalf("botocore presign: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	for _, tc := range []struct{ method, cluster string }{{"GET", ""}, {"POST", ""}, {"GET", "dev-cluster"}} {
		u := presign(tc.method, tc.cluster)
		hdr := map[string]string{}
		if tc.cluster != "" {
			hdr["X-K8s-Aws-Id"] = tc.cluster
		}
		got := sendRequest(t, buildRequest(t, tc.method, u, "", hdr))
		if got.status != 200 || !strings.Contains(got.body, ":user/admin</Arn>") {
			t.Errorf("%s %q presigned by botocore: %d %s", tc.method, tc.cluster, got.status, got.body)
		}
		if tc.method == "POST" {
			hdr["Content-Type"] = "application/x-www-form-urlencoded"
			got := sendRequest(t, buildRequest(t, "POST", u, "Action=GetSessionToken&Version=2011-06-15", hdr))
			if got.status != 403 || got.code != "SignatureDoesNotMatch" {
				t.Errorf("botocore-presigned POST with a body: %d %q %s", got.status, got.code, got.body)
			}
		}
	}
}

// policyDocScript creates a role and an inline user policy through botocore
// with documents written as people write them (spaces, newlines, a '+'),
// reads them back and prints what the client got: botocore URL-decodes and
// JSON-parses IAM's policy documents (RFC 3986, %20 for a space), so a
// document it cannot parse reaches the caller as the encoded string.
const policyDocScript = `
import json, sys, botocore.session
endpoint, key, secret = sys.argv[1:4]
session = botocore.session.get_session()
session.set_credentials(key, secret)
iam = session.create_client("iam", region_name="us-east-1", endpoint_url=endpoint)
trust = '''{
  "Version": "2012-10-17", "Statement": [{"Effect": "Allow",
  "Principal": {"AWS": "arn:aws:iam::000000000000:user/admin"},
  "Action": ["sts:AssumeRole", "sts:TagSession"]}]}'''
policy = '''{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
  "Action": "redshift:GetClusterCredentials", "Resource": "*",
  "Condition": {"StringEquals": {"aws:PrincipalTag/team": "a+b c"}}}]}'''
iam.create_role(RoleName="Analyst", AssumeRolePolicyDocument=trust)
iam.put_user_policy(UserName="admin", PolicyName="self", PolicyDocument=policy)
got = {
    "GetRole": iam.get_role(RoleName="Analyst")["Role"]["AssumeRolePolicyDocument"],
    "ListRoles": iam.list_roles()["Roles"][0]["AssumeRolePolicyDocument"],
    "GetUserPolicy": iam.get_user_policy(UserName="admin", PolicyName="self")["PolicyDocument"],
}
want = {"GetRole": json.loads(trust), "ListRoles": json.loads(trust), "GetUserPolicy": json.loads(policy)}
for op in got:
    if got[op] != want[op]:
        print("%s: botocore got %r" % (op, got[op]))
`

// TestBotocoreDecodesPolicyDocuments: the AWS CLI and boto3 show a policy
// document as the JSON object it is, which needs IAM's encoding (a space as
// %20, not a form's '+').
func TestBotocoreDecodesPolicyDocuments(t *testing.T) {
	if exec.Command("python3", "-c", "import botocore").Run() != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 with botocore is not installed (apt-get install -y python3-boto3)")
		}
		t.Skip("python3 with botocore is not installed")
	}
	f := newFixture(t)
	admin := f.keys["admin"]
	out, err := exec.Command("python3", "-c", policyDocScript, f.srv.URL, admin.AccessKeyID, admin.SecretAccessKey).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("botocore: %v\n%s", err, out)
	}
}
