package http_test

import "testing"

// GetCredentials' customDomainName has the model's constraints (1–253
// characters, a domain name's pattern): one that breaks them is a
// ValidationException, as AWS answers, not a lookup that finds nothing.
func TestServerlessCustomDomainNameIsValidated(t *testing.T) {
	f := newFixture(t)
	f.workgroup(t)
	for _, body := range []string{
		`{"customDomainName":""}`,
		`{"customDomainName":"nodots"}`,
		`{"customDomainName":"under_score.example.com"}`,
		`{"customDomainName":"-lead.example.com"}`,
	} {
		got := sendRequest(t, signedIn("admin", "redshift-serverless", "us-east-1", getCredentialsTarget, body)(t, f))
		if got.status != 400 || got.code != "ValidationException" {
			t.Errorf("%s: %d %q, want 400 ValidationException", body, got.status, got.code)
		}
	}
	got := sendRequest(t, signedIn("admin", "redshift-serverless", "us-east-1", getCredentialsTarget, `{"customDomainName":"unclaimed.example.com"}`)(t, f))
	if got.code != "ResourceNotFoundException" {
		t.Errorf("a valid name associated with nothing: %d %q, want ResourceNotFoundException", got.status, got.code)
	}
}
