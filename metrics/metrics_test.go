package metrics

import (
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/shiftkey/shiftkey"
)

// A denial counts whichever protocol's name the client got for it: the
// Query protocol's AccessDenied and JSON 1.1's AccessDeniedException.
func TestDenialsOfBothProtocols(t *testing.T) {
	m := New([]string{"GetClusterCredentials", "GetCredentials"})
	m.APICall(&shiftkey.APICall{Service: "redshift", Operation: "GetClusterCredentials", ErrorCode: shiftkey.CodeAccessDenied})
	m.APICall(&shiftkey.APICall{Service: "redshift-serverless", Operation: "GetCredentials", ErrorCode: "AccessDeniedException"})
	m.APICall(&shiftkey.APICall{Service: "redshift-serverless", Operation: "GetCredentials", ErrorCode: "ValidationException"})
	for op, want := range map[string]float64{"GetClusterCredentials": 1, "GetCredentials": 1} {
		var c dto.Metric
		if err := m.denials.WithLabelValues(op).Write(&c); err != nil {
			t.Fatal(err)
		}
		if got := c.GetCounter().GetValue(); got != want {
			t.Errorf("denials of %s: %v, want %v", op, got, want)
		}
	}
}
