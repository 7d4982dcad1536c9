package audit

import (
	"bytes"
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
)

// TestQueryParametersTypedAsCloudTrail: a Query call's boolean and
// integer parameters are recorded as JSON booleans and numbers, as
// CloudTrail writes them and as a Serverless (JSON) call's are: as
// strings, `select(.requestParameters.durationSeconds > 900)` in jq is
// true of every Query call (a string sorts after any number) and
// `.autoCreate == true` of none. A value the service would refuse stays
// as sent.
func TestQueryParametersTypedAsCloudTrail(t *testing.T) {
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	p := &shiftkey.Principal{ARN: "arn:aws:iam::123456789012:user/a", Account: "123456789012", UserName: "a", AccessKey: "AKIAA"}
	params := func(service, op string, form url.Values) map[string]any {
		t.Helper()
		b, err := json.Marshal(apiRecord(&shiftkey.APICall{Time: at, Service: service, Operation: op, Principal: p, Form: form}, "us-east-1"))
		if err != nil {
			t.Fatal(err)
		}
		var r map[string]any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		m, _ := r["requestParameters"].(map[string]any)
		return m
	}
	got := params("redshift", "GetClusterCredentials", url.Values{"ClusterIdentifier": {"c"}, "DbUser": {"alice"}, "AutoCreate": {"True"},
		"DurationSeconds": {"1800"}, "DbGroups.DbGroup.1": {"g"}})
	if got["autoCreate"] != true || got["durationSeconds"] != json.Number("1800") || got["dbUser"] != "alice" {
		t.Errorf("GetClusterCredentials: requestParameters %#v, want autoCreate true and durationSeconds 1800 typed", got)
	}
	got = params("sts", "AssumeRole", url.Values{"RoleArn": {"arn:aws:iam::123456789012:role/r"}, "RoleSessionName": {"s"}, "DurationSeconds": {"900"}})
	if got["durationSeconds"] != json.Number("900") {
		t.Errorf("AssumeRole: requestParameters %#v, want durationSeconds 900", got)
	}
	got = params("iam", "CreateRole", url.Values{"RoleName": {"r"}, "MaxSessionDuration": {"7200"}})
	if got["maxSessionDuration"] != json.Number("7200") {
		t.Errorf("CreateRole: requestParameters %#v, want maxSessionDuration 7200", got)
	}
	got = params("redshift", "DescribeClusters", url.Values{"MaxRecords": {"20"}})
	if got["maxRecords"] != json.Number("20") {
		t.Errorf("DescribeClusters: requestParameters %#v, want maxRecords 20", got)
	}
	// CreatePolicyVersion as CloudTrail records it: the document as
	// sent, as CreatePolicy's, and setAsDefault a boolean.
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"redshift:*","Resource":"*"}]}`
	got = params("iam", "CreatePolicyVersion", url.Values{"PolicyArn": {"arn:aws:iam::123456789012:policy/p"}, "PolicyDocument": {doc}, "SetAsDefault": {"true"}})
	if got["setAsDefault"] != true || got["policyDocument"] != doc || got["policyArn"] != "arn:aws:iam::123456789012:policy/p" {
		t.Errorf("CreatePolicyVersion: requestParameters %#v, want policyArn, policyDocument as sent and setAsDefault true", got)
	}
	got = params("redshift", "GetClusterCredentials", url.Values{"AutoCreate": {"yes"}, "DurationSeconds": {"1e3"}})
	if got["autoCreate"] != "yes" || got["durationSeconds"] != "1e3" {
		t.Errorf("values the service refuses: requestParameters %#v, want them as sent", got)
	}
}
