package http_test

import (
	"strings"
	"testing"
)

// TestFinding7ServerlessWithoutAuthIsJSON: a Serverless (JSON 1.1) request
// without authorization gets the JSON envelope its SDK parses, with the
// status the Query form uses.
func TestFinding7ServerlessWithoutAuthIsJSON(t *testing.T) {
	f := newFixture(t)
	for name, hdr := range map[string]map[string]string{
		"target and content type": {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "RedshiftServerless.GetCredentials"},
		"target only":             {"X-Amz-Target": "RedshiftServerless.GetCredentials"},
		"content type only":       {"Content-Type": "application/x-amz-json-1.1"},
	} {
		got := send(t, newRequest(t, "POST", f.srv.URL+"/", `{"workgroupName":"wg"}`, hdr))
		if got.status != 403 || got.code != "MissingAuthenticationTokenException" || got.ctype != "application/x-amz-json-1.1" {
			t.Errorf("%s: %d %q %s %.100s, want 403 MissingAuthenticationTokenException in JSON", name, got.status, got.code, got.ctype, got.body)
		}
	}
	// A Query request keeps the XML envelope.
	got := send(t, newRequest(t, "POST", f.srv.URL+"/", "Action=DescribeClusters&Version=2012-12-01", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}))
	if got.status != 403 || got.code != "MissingAuthenticationToken" || !strings.HasPrefix(got.ctype, "text/xml") {
		t.Errorf("Query without auth: %d %q %s", got.status, got.code, got.ctype)
	}
}
