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
