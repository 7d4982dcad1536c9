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
		got := sendRequest(t, buildRequest(t, "POST", f.srv.URL+"/", `{"workgroupName":"wg"}`, hdr))
		if got.status != 403 || got.code != "MissingAuthenticationTokenException" || got.ctype != "application/x-amz-json-1.1" {
			t.Errorf("%s: %d %q %s %.100s, want 403 MissingAuthenticationTokenException in JSON", name, got.status, got.code, got.ctype, got.body)
		}
	}
	// A Query request keeps the XML envelope.
	got := sendRequest(t, buildRequest(t, "POST", f.srv.URL+"/", "Action=DescribeClusters&Version=2012-12-01", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}))
	if got.status != 403 || got.code != "MissingAuthenticationToken" || !strings.HasPrefix(got.ctype, "text/xml") {
		t.Errorf("Query without auth: %d %q %s", got.status, got.code, got.ctype)
	}
}

// TestFinding7QueryVersion: a missing or unknown Query Version is refused
// as AWS does, InvalidAction naming the action and the version.
func TestFinding7QueryVersion(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		service, body string
		wantStatus    int
		wantMessage   string
	}{
		{"redshift", "Action=DescribeClusters&Version=2012-12-01", 200, ""},
		{"redshift", "Action=DescribeClusters", 400, "Could not find operation DescribeClusters for version NO_VERSION_SPECIFIED"},
		{"redshift", "Action=DescribeClusters&Version=", 400, "Could not find operation DescribeClusters for version NO_VERSION_SPECIFIED"},
		{"redshift", "Action=DescribeClusters&Version=2011-06-15", 400, "Could not find operation DescribeClusters for version 2011-06-15"},
		{"iam", "Action=GetUser&Version=2010-05-08", 200, ""},
		{"iam", "Action=GetUser", 400, "Could not find operation GetUser for version NO_VERSION_SPECIFIED"},
		{"iam", "Action=GetUser&Version=2012-12-01", 400, "Could not find operation GetUser for version 2012-12-01"},
		{"sts", "Action=GetCallerIdentity&Version=2011-06-15", 200, ""},
		{"sts", "Action=GetCallerIdentity", 400, "Could not find operation GetCallerIdentity for version NO_VERSION_SPECIFIED"},
		{"sts", "Action=GetCallerIdentity&Version=2010-05-08", 400, "Could not find operation GetCallerIdentity for version 2010-05-08"},
	}
	for _, tt := range tests {
		status, b := f.signedPost(t, "admin", tt.body, nil, func(o *signOpts) { o.service = tt.service })
		if status != tt.wantStatus {
			t.Errorf("%s %s: %d %s, want %d", tt.service, tt.body, status, b, tt.wantStatus)
			continue
		}
		if tt.wantStatus != 200 && (errorCode(t, b) != "InvalidAction" || !strings.Contains(string(b), "<Message>"+tt.wantMessage+"</Message>")) {
			t.Errorf("%s %s: %s, want InvalidAction %q", tt.service, tt.body, b, tt.wantMessage)
		}
	}
}
