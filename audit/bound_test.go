package audit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
)

// The worst API call record (every field a client fills at its largest,
// of characters JSON escapes six-fold, and invalid UTF-8) is written
// within MaxRecordBytes, as valid JSON saying it was cut; a small one is
// written whole; an operator's revocation is never cut.
func TestRecordBound(t *testing.T) {
	huge := strings.Repeat("<\xff", 1<<19)
	e := &shiftkey.APICall{Time: time.Now(), RequestID: "req-1", Service: "redshift", Operation: huge, AccessKeyID: huge,
		UserAgent: huge, ErrorCode: "MissingAuthenticationToken", ErrorMessage: huge, SourceIP: huge,
		Form: map[string][]string{"DbUser": {huge}}, Body: []byte(`{"a":"` + strings.Repeat("<", 1<<20) + `"}`),
		Principal: &shiftkey.Principal{ARN: huge, UserID: huge, Account: huge, AccessKey: huge, UserName: huge, Type: shiftkey.PrincipalAssumedRole,
			RoleARN: huge, RoleName: huge},
		Result: map[string]string{"DbUser": huge}}
	b, err := encode(apiRecord(e, "us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxRecordBytes {
		t.Fatalf("worst record: %d bytes, want at most %d", len(b), MaxRecordBytes)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("cut record is not JSON: %v", err)
	}
	if r.RequestID != "req-1" || r.ErrorCode != "MissingAuthenticationToken" || r.AdditionalEventData["recordTruncated"] != true ||
		r.RequestParameters != nil || r.AdditionalEventData["requestParametersOmittedBytes"] == nil {
		t.Fatalf("cut record: %.600s", b)
	}

	small := &shiftkey.APICall{Time: time.Now(), RequestID: "req-2", Service: "redshift", Operation: "GetClusterCredentials",
		Form: map[string][]string{"DbUser": {strings.Repeat("a", 60<<10)}}}
	if b, _ := encode(apiRecord(small, "us-east-1")); strings.Contains(string(b), "recordTruncated") || !strings.Contains(string(b), strings.Repeat("a", 60<<10)) {
		t.Fatalf("a record within the bound was cut: %.300s", b)
	}

	var revoked []*shiftkey.Credential
	for range 2000 {
		revoked = append(revoked, &shiftkey.Credential{ID: shiftkey.NewUUID(), Cluster: "c", LoginName: "IAM:alice", PrincipalARN: "arn:aws:iam::123456789012:user/alice"})
	}
	b, err = encode(revocationRecord(&Revocation{Time: time.Now(), Operator: "root", Revoked: revoked}))
	if err != nil || len(b) <= MaxRecordBytes || strings.Contains(string(b), "recordTruncated") {
		t.Fatalf("revocation of 2000 credentials: %d bytes, %v, want it whole", len(b), err)
	}
}
