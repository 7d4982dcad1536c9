package http_test

import "testing"

// Finding 12.7: a DurationSeconds that overflows a time.Duration must not
// wrap into the allowed range while the condition key sees the huge number.
func TestFinding7DurationSecondsOverflow(t *testing.T) {
	f := newFixture(t)
	for _, params := range []string{
		"&DbUser=alice&DurationSeconds=36028797018964968",
		"&DbUser=alice&DurationSeconds=-36028797018964968",
		"&DbUser=alice&DurationSeconds=9223372036854775807",
	} {
		for _, action := range []string{"GetClusterCredentials", "GetClusterCredentialsWithIAM"} {
			status, body := f.signedPost(t, "admin", "Action="+action+"&Version=2012-12-01&ClusterIdentifier=dev-cluster"+params, nil)
			if status != 400 || errorCode(t, body) != "InvalidParameterValue" {
				t.Errorf("%s %s: status %d: %s", action, params, status, body)
			}
		}
	}
}
